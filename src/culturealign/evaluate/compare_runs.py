"""Compare one WVS evaluation across runs: each metric per culture and overall, with bootstrap CIs of differences.

A difference between two runs of a few points can be noise from which questions were asked, so every
difference against the first run comes with a 95% percentile-bootstrap interval from resampling questions.
Runs are paired on the (culture, question id) items present in all of them; items only some runs have are
dropped and counted, so each value and difference is on the same questions. Resampling is stratified by
culture (the unit is a culture's question) and ``overall`` is the mean over cultures, as in ``metrics.json``.
Reads only ``eval/<name>/metrics.json`` and ``items.jsonl``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from culturealign.errors import UserError
from culturealign.evaluate.wvs import METRIC_NAMES
from culturealign.runs.store import read_jsonl

PREFERRED_EVAL = "wvs-after"


def _read_metrics(folder: Path) -> dict:
    path = folder / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg}); rerun the evaluation") from e


def _is_wvs(folder: Path) -> bool:
    """A WVS eval folder: items plus metrics per culture (BLEnD's folders have items but no per_culture)."""
    return (folder / "items.jsonl").is_file() and "per_culture" in _read_metrics(folder)


def find_eval(run_dir: Path, eval_name: str | None = None) -> Path:
    """The WVS eval folder to compare in ``run_dir``.

    ``run_dir`` may be an eval folder itself (to compare e.g. ``wvs-before`` with ``wvs-after`` of one run).
    Without ``eval_name``: ``wvs-after`` if the run has it, else the run's only top-level WVS evaluation.
    """
    if _is_wvs(run_dir):
        return run_dir
    root = run_dir / "eval"
    found = sorted(p.parent.relative_to(root).as_posix() for p in root.glob("**/items.jsonl") if _is_wvs(p.parent))
    if eval_name is not None:
        if eval_name not in found:
            raise UserError(f"{run_dir} has no WVS evaluation {eval_name!r}: it has {found or 'none'}")
        return root / eval_name
    top = [n for n in found if "/" not in n]
    if PREFERRED_EVAL in top or len(top) == 1:
        return root / (PREFERRED_EVAL if PREFERRED_EVAL in top else top[0])
    raise UserError(f"{run_dir} has WVS evaluations {found or 'none'}: name the one to compare (eval_name)")


def _arrays(items: list[dict]) -> dict[str, np.ndarray]:
    """Item-level terms from which every metric of a resample is computed."""
    choice = np.array([float(i["choice"]) for i in items])
    majority = np.array([float(i["majority"]) for i in items])
    n_options = np.array([len(i["model"]) for i in items], dtype=float)
    return {
        "sq_err": (choice - majority) ** 2,
        "sq_worst": (n_options - 1) ** 2,
        "one_minus_jsd": np.array([i["one_minus_jsd"] for i in items], dtype=float),
        "accuracy": (choice == majority).astype(float),
        "wasserstein": np.array([math.nan if i["wasserstein"] is None else i["wasserstein"] for i in items]),
    }


def _metrics(a: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric on each row of ``idx`` (resample x question indices); culturespa as in ``culturespa_score``."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (no numeric question) give NaN
        worst = np.sqrt(a["sq_worst"][idx].sum(axis=-1))
        out = {"culturespa": np.where(worst > 0, 1 - np.sqrt(a["sq_err"][idx].sum(axis=-1)) / worst, np.nan)}
        for m in ("one_minus_jsd", "accuracy", "wasserstein"):
            out[m] = np.nanmean(a[m][idx], axis=-1)
    return out


def _nanmean0(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0)


def _labels(run_dirs: list[Path]) -> list[str]:
    labels: list[str] = []
    for d in run_dirs:
        name = f"{d.parent.parent.name}/{d.name}" if d.parent.name == "eval" else d.name
        labels.append(name if name not in labels else f"{name} #{len(labels) + 1}")
    return labels


def compare_runs(run_dirs: list[Path], eval_name: str | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """Metric values per culture and overall for every run, differences vs the first run and their 95% CIs.

    Returns ``{"runs", "evals", "n_boot", "seed", "paired_items", "unpaired_items": {run: n},
    "n_questions": {scope: n}, "scopes": {scope: {metric: {"values": {run: v}, "reported": {run: v},
    "diff": {run: d}, "ci": {run: [lo, hi]}}}}}``; ``values`` are on the paired questions, ``reported`` is
    ``metrics.json`` (all of that run's questions); ``diff`` and ``ci`` exist for every run but the first.
    """
    if len(run_dirs) < 2:
        raise UserError("compare needs at least two runs (or two eval folders)")
    if n_boot < 1:
        raise UserError("n_boot must be >= 1")
    run_dirs = [Path(d) for d in run_dirs]
    folders = [find_eval(d, eval_name) for d in run_dirs]
    labels = _labels(run_dirs)
    reported = [_read_metrics(f) for f in folders]
    items = [{(i["culture"], i["question_id"]): i for i in read_jsonl(f / "items.jsonl")} for f in folders]
    common = sorted(set.intersection(*(set(it) for it in items)))
    if not common:
        raise UserError("no (culture, question) is in every run: compare evaluations of the same cultures and items")
    cultures = sorted({c for c, _ in common})
    rng = np.random.default_rng(seed)
    point: dict[str, list[dict]] = {}
    boot: dict[str, list[dict]] = {}
    for c in cultures:
        keys = [k for k in common if k[0] == c]
        idx = rng.integers(0, len(keys), size=(n_boot, len(keys)))
        arrays = [_arrays([it[k] for k in keys]) for it in items]
        point[c] = [{m: v[0] for m, v in _metrics(a, np.arange(len(keys))[None]).items()} for a in arrays]
        boot[c] = [_metrics(a, idx) for a in arrays]
    point["overall"], boot["overall"] = [], []
    for r in range(len(folders)):
        point["overall"].append({m: _nanmean0(np.array([point[c][r][m] for c in cultures])) for m in METRIC_NAMES})
        boot["overall"].append({m: _nanmean0(np.stack([boot[c][r][m] for c in cultures])) for m in METRIC_NAMES})
    scopes = {}
    for scope in ["overall", *cultures]:
        scopes[scope] = {}
        for m in METRIC_NAMES:
            row: dict[str, Any] = {"values": {}, "reported": {}, "diff": {}, "ci": {}}
            for r, label in enumerate(labels):
                row["values"][label] = float(point[scope][r][m])
                group = reported[r]["overall"] if scope == "overall" else reported[r]["per_culture"].get(scope, {})
                row["reported"][label] = group.get(m, math.nan)
                if r:
                    row["diff"][label] = float(point[scope][r][m] - point[scope][0][m])
                    row["ci"][label] = _ci(boot[scope][r][m] - boot[scope][0][m])
            scopes[scope][m] = row
    return {
        "runs": labels,
        "evals": {label: str(f) for label, f in zip(labels, folders, strict=True)},
        "n_boot": n_boot,
        "seed": seed,
        "paired_items": len(common),
        "unpaired_items": {label: len(it) - len(common) for label, it in zip(labels, items, strict=True)},
        "n_questions": {"overall": len(common), **{c: sum(k[0] == c for k in common) for c in cultures}},
        "scopes": scopes,
    }


def _ci(diffs: np.ndarray) -> list[float]:
    diffs = diffs[~np.isnan(diffs)]
    return [float(x) for x in np.percentile(diffs, [2.5, 97.5])] if diffs.size else [math.nan, math.nan]


def format_comparison(result: dict) -> Any:
    """A rich table: one row per scope and metric; each later run as ``value (Δ [95% CI])``, * if CI excludes 0."""
    from rich.table import Table

    runs = result["runs"]
    dropped = ", ".join(f"{k}: {v}" for k, v in result["unpaired_items"].items())
    table = Table(
        title="WVS comparison (Δ vs the first run, 95% bootstrap CI)",
        caption=f"paired on {result['paired_items']} items (unpaired dropped: {dropped}); "
        f"{result['n_boot']} resamples; * CI excludes 0",
    )
    table.add_column("scope")
    table.add_column("metric")
    table.add_column("n", justify="right")
    for label in runs:
        table.add_column(label, justify="right")
    for scope, row in result["scopes"].items():
        for m, v in row.items():
            cells = [_num(v["values"][runs[0]])]
            for label in runs[1:]:
                lo, hi = v["ci"][label]
                star = " *" if lo > 0 or hi < 0 else ""
                diff = f"{_num(v['diff'][label], '+')} [{_num(lo, '+')}, {_num(hi, '+')}]"
                cells.append(f"{_num(v['values'][label])} ({diff}){star}")
            table.add_row(scope, m, str(result["n_questions"][scope]), *cells)
    return table


def _num(x: float, sign: str = "") -> str:
    return "-" if math.isnan(x) else f"{x:{sign}.3f}"
