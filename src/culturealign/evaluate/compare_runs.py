"""Compare one WVS evaluation across runs: each metric per culture and overall, with CIs and p-values of differences.

A difference between two runs of a few points can be noise from which questions were asked, so every
difference against the first run comes with a 95% percentile-bootstrap interval from resampling questions,
a paired permutation p-value, and a Benjamini-Hochberg q-value over all scopes x metrics of that run.
Runs are paired on the (culture, question id) items present in all of them; items only some runs have are
dropped and counted, so each value and difference is on the same questions.

The resampling unit follows what a change can move together. For a culture's scope it is that culture's
question. For ``overall`` (the mean over cultures, as in ``metrics.json``) it is the question id: a
culture-joint adapter moves one question in every culture at once, so resampling cultures independently
would make the overall interval too narrow. Each bootstrap resample draws the distinct question ids with
replacement and weights every culture's item of a drawn id by how often it was drawn (culturespa's sums and
the means alike); the permutation test swaps the two runs on all cultures' items of a question id together.
Every value is computed from the saved items by the functions of ``evaluate.metrics`` that ``metrics.json`` was
computed with (the bootstrap passes them weights), so a run compared on all its items reproduces its ``metrics.json``
exactly. Reads only ``eval/<name>/metrics.json`` and ``items.jsonl``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control, permutation_test

from culturealign.errors import UserError
from culturealign.evaluate import metrics as M
from culturealign.evaluate.wvs import METRIC_NAMES
from culturealign.runs.store import read_jsonl

PREFERRED_EVAL = "wvs-after"
# discrimination: 1-JSD to the culture's own people minus the mean 1-JSD to the other cultures' people
COMPARED_METRICS = (*METRIC_NAMES, "discrimination")
MULTIPLE_COMPARISONS = "Benjamini-Hochberg over scopes x metrics per run"
PERM_BATCH_ELEMENTS = 2_000_000  # floats per permutation batch, to bound memory on large evaluations


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
    """The item fields every metric of a resample is computed from (by ``evaluate.metrics``, as metrics.json is)."""
    return {
        "choice": np.array([i["choice"] for i in items]),
        "majority": np.array([i["majority"] for i in items]),
        "n_options": np.array([len(i["model"]) for i in items], dtype=float),
        "one_minus_jsd": np.array([i["one_minus_jsd"] for i in items], dtype=float),
        "wasserstein": np.array([i["wasserstein"] for i in items], dtype=float),  # None: a nominal question (NaN)
        # runs from before the field existed have no cross term: NaN, so they still compare on the rest
        "cross": np.array([i.get("cross_one_minus_jsd") for i in items], dtype=float),
    }


def _metrics(a: dict[str, np.ndarray], w: np.ndarray | None) -> dict[str, Any]:
    """Each metric of ``wvs.aggregate`` on these items: floats without ``w``, else one per row of ``w`` (resample x
    item weights: how often each item was drawn)."""
    return {
        "culturespa": M.culturespa_score(a["choice"].astype(float), a["majority"].astype(float), a["n_options"], w),
        "one_minus_jsd": M.mean(a["one_minus_jsd"], w),
        "accuracy": M.accuracy(a["choice"], a["majority"], w),
        "wasserstein": M.mean(a["wasserstein"], w),
        "discrimination": M.discrimination(a["one_minus_jsd"], a["cross"], w),
    }


def _unit_terms(m: str, a: dict[str, np.ndarray]) -> np.ndarray:
    """Per item, what a scope's value of ``m`` is computed from after a permutation (``_scope_value``): culturespa's
    two squared terms (item x 2), the hit, the item's own term."""
    if m == "culturespa":
        return np.stack(M.culturespa_terms(a["choice"].astype(float), a["majority"].astype(float), a["n_options"]), -1)
    if m == "accuracy":
        return M.hits(a["choice"], a["majority"])
    if m == "discrimination":
        return M.discrimination_terms(a["one_minus_jsd"], a["cross"])
    return a[m]


def _scope_value(m: str, x: np.ndarray, axis: int) -> np.ndarray:
    """A scope's metric from per-unit values: units along ``axis``, then cultures (then sq_err, sq_worst for
    culturespa), NaN where a culture lacks the unit. Per culture over its units, then the mean over cultures."""
    x = np.moveaxis(x, axis, -1)  # (..., culture[, 2], unit)
    if m == "culturespa":
        per_culture = M.culturespa_from_sums(np.nansum(x[..., 0, :], axis=-1), np.nansum(x[..., 1, :], axis=-1))
    else:
        per_culture = M.mean(x)
    return np.asarray(M.mean(per_culture))


def _units(
    m: str, arrays: dict[str, dict[str, np.ndarray]], unit_of: dict[str, np.ndarray], n_units: int
) -> np.ndarray:
    """Per-unit values of one run: shape (unit, culture) or (unit, culture, 2) for culturespa, NaN-filled."""
    shape = (n_units, len(arrays), 2) if m == "culturespa" else (n_units, len(arrays))
    out = np.full(shape, np.nan)
    for j, (c, a) in enumerate(arrays.items()):
        out[unit_of[c], j] = _unit_terms(m, a)
    return out


def _p_value(m: str, base: np.ndarray, other: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided paired permutation p of ``other - base``: the runs swapped within each unit (axis 0)."""

    def statistic(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return _scope_value(m, y, axis) - _scope_value(m, x, axis)

    if len(base) < 2 or np.isnan(statistic(base, other, 0)):
        return math.nan
    res = permutation_test(
        (base, other),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_perm,
        batch=max(1, PERM_BATCH_ELEMENTS // base.size),
        axis=0,
        random_state=rng,
    )
    return float(res.pvalue)


def _labels(run_dirs: list[Path]) -> list[str]:
    labels: list[str] = []
    for d in run_dirs:
        name = f"{d.parent.parent.name}/{d.name}" if d.parent.name == "eval" else d.name
        labels.append(name if name not in labels else f"{name} #{len(labels) + 1}")
    return labels


def compare_runs(
    run_dirs: list[Path], eval_name: str | None = None, n_boot: int = 1000, seed: int = 0, n_perm: int = 2000
) -> dict:
    """Metric values per culture and overall for every run, differences vs the first run, CIs, p and q.

    Returns ``{"runs", "evals", "n_boot", "n_perm", "seed", "multiple_comparisons", "paired_items",
    "unpaired_items": {run: n}, "n_questions": {scope: n}, "scopes": {scope: {metric: {"values": {run: v},
    "reported": {run: v}, "diff": {run: d}, "ci": {run: [lo, hi]}, "p": {run: p}, "q": {run: q}}}}}``;
    ``values`` are on the paired questions, ``reported`` is ``metrics.json`` (all of that run's questions);
    ``diff``, ``ci``, ``p`` (paired permutation, two-sided) and ``q`` (Benjamini-Hochberg over that run's
    scopes x metrics) exist for every run but the first; NaN where a metric has no value (e.g. discrimination
    of runs whose items lack ``cross_one_minus_jsd``).
    """
    if len(run_dirs) < 2:
        raise UserError("compare needs at least two runs (or two eval folders)")
    if n_boot < 1:
        raise UserError("n_boot must be >= 1")
    if n_perm < 1:
        raise UserError("n_perm must be >= 1")
    run_dirs = [Path(d) for d in run_dirs]
    folders = [find_eval(d, eval_name) for d in run_dirs]
    labels = _labels(run_dirs)
    reported = [_read_metrics(f) for f in folders]
    items = [{_key(i): i for i in read_jsonl(f / "items.jsonl")} for f in folders]
    common = sorted(set.intersection(*(set(it) for it in items)))
    if not common:
        raise UserError(
            "no (variant, culture, question) is in every run: compare evaluations of the same cultures and items"
        )
    # a group is one (culture, variant): a scope's value is the mean over its groups, as metrics.json's is
    groups = sorted({(c, v) for c, v, _ in common})
    cultures = sorted({c for c, _ in groups})
    variants = sorted({v for _, v in groups})
    keys = {g: [k for k in common if k[:2] == g] for g in groups}
    arrays = [{g: _arrays([it[k] for k in keys[g]]) for g in groups} for it in items]  # run -> group -> terms
    qids = sorted({q for _, _, q in common})
    qid_index = {q: n for n, q in enumerate(qids)}
    unit_of = {g: np.array([qid_index[q] for _, _, q in keys[g]]) for g in groups}  # item -> its question id
    local = {c: sorted({q for cc, _, q in common if cc == c}) for c in cultures}  # a culture's question ids
    local_of = {g: np.array([local[g[0]].index(q) for _, _, q in keys[g]]) for g in groups}
    in_culture = {c: [g for g in groups if g[0] == c] for c in cultures}

    rng = np.random.default_rng(seed)
    point: dict[str, list[dict]] = {}
    boot: dict[str, list[dict]] = {}
    for c in cultures:  # a culture's questions resampled, each drawn with every variant of it
        n = len(local[c])
        draws = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)  # resample x question: times drawn
        vw = _variant_weights(rng, n_boot, variants, in_culture[c])
        point[c] = [_mean_over(in_culture[c], {g: _metrics(a[g], None) for g in in_culture[c]}) for a in arrays]
        boot[c] = [
            _mean_over(in_culture[c], {g: _metrics(a[g], draws[:, local_of[g]]) for g in in_culture[c]}, vw)
            for a in arrays
        ]
    draws = rng.multinomial(len(qids), np.full(len(qids), 1 / len(qids)), size=n_boot)  # resample x question id
    vw = _variant_weights(rng, n_boot, variants, groups)
    point["overall"], boot["overall"] = [], []
    for r in range(len(folders)):  # overall: the mean over cultures (and variants), as in metrics.json
        per_group = {g: _metrics(arrays[r][g], draws[:, unit_of[g]]) for g in groups}
        point["overall"].append({m: M.mean([point[c][r][m] for c in cultures]) for m in COMPARED_METRICS})
        boot["overall"].append(_mean_over(groups, per_group, vw))

    perm_rng = np.random.default_rng([seed, 1])  # its own stream: changing n_perm leaves the bootstrap as it was
    scopes: dict[str, dict[str, dict[str, Any]]] = {}
    for scope in ["overall", *cultures]:
        scopes[scope] = {}
        in_scope = groups if scope == "overall" else in_culture[scope]
        units = unit_of if scope == "overall" else {g: local_of[g] for g in in_scope}
        n_units = len(qids) if scope == "overall" else len(local[scope])
        for m in COMPARED_METRICS:
            row: dict[str, Any] = {"values": {}, "reported": {}, "diff": {}, "ci": {}, "p": {}, "q": {}}
            per_unit = [_units(m, {c: a[c] for c in in_scope}, units, n_units) for a in arrays]
            for r, label in enumerate(labels):
                row["values"][label] = float(point[scope][r][m])
                group = reported[r]["overall"] if scope == "overall" else reported[r]["per_culture"].get(scope, {})
                row["reported"][label] = group.get(m, math.nan)
                if r:
                    row["diff"][label] = float(point[scope][r][m] - point[scope][0][m])
                    row["ci"][label] = _ci(boot[scope][r][m] - boot[scope][0][m])
                    row["p"][label] = _p_value(m, per_unit[0], per_unit[r], n_perm, perm_rng)
            scopes[scope][m] = row
    rows = [row for scope in scopes.values() for row in scope.values()]
    for label in labels[1:]:
        ps = np.array([row["p"][label] for row in rows])
        qs = np.full(len(ps), np.nan)
        ok = ~np.isnan(ps)
        if ok.any():
            qs[ok] = false_discovery_control(ps[ok])
        for row, q in zip(rows, qs, strict=True):
            row["q"][label] = float(q)
    return {
        "runs": labels,
        "evals": {label: str(f) for label, f in zip(labels, folders, strict=True)},
        "n_boot": n_boot,
        "n_perm": n_perm,
        "seed": seed,
        "multiple_comparisons": MULTIPLE_COMPARISONS,
        "paired_items": len(common),
        "unpaired_items": {label: len(it) - len(common) for label, it in zip(labels, items, strict=True)},
        "variants": variants,
        "n_questions": {"overall": len({k[::2] for k in common}), **{c: len(local[c]) for c in cultures}},
        "scopes": scopes,
    }


def _key(item: dict) -> tuple[str, str, str]:
    """What an item is paired on across runs: (culture, variant, question id); items before variants: default."""
    return item["culture"], item.get("variant", "default"), item["question_id"]


def _variant_weights(
    rng: np.random.Generator, n_boot: int, variants: list[str], groups: list[tuple[str, str]]
) -> np.ndarray | None:
    """Resample x group weights: how often each group's variant was drawn when variants are resampled too (the
    variant is what else a figure depends on, so the interval covers another choice of presentations); None for
    one variant (nothing drawn, so a run without variants keeps its figures)."""
    if len(variants) < 2:
        return None
    drawn = rng.multinomial(len(variants), np.full(len(variants), 1 / len(variants)), size=n_boot)
    return drawn[:, [variants.index(v) for _, v in groups]].astype(float)


def _mean_over(
    groups: list[tuple[str, str]], values: dict[tuple[str, str], dict[str, Any]], weights: np.ndarray | None = None
) -> dict[str, Any]:
    """Each metric's mean over groups (NaN-aware); with ``weights`` (resample x group), one weighted mean per row."""
    out = {}
    for m in COMPARED_METRICS:
        x = np.stack([np.asarray(values[g][m], dtype=float) for g in groups], axis=-1)
        if weights is None:
            out[m] = M.mean(x) if x.ndim > 1 else M.mean(list(x))
            continue
        w = np.where(np.isnan(x), 0.0, weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[m] = np.nansum(np.nan_to_num(x) * w, axis=-1) / w.sum(axis=-1)
        out[m] = np.where(w.sum(axis=-1) > 0, out[m], np.nan)
    return out


def _ci(diffs: np.ndarray) -> list[float]:
    diffs = diffs[~np.isnan(diffs)]
    return [float(x) for x in np.percentile(diffs, [2.5, 97.5])] if diffs.size else [math.nan, math.nan]


def format_comparison(result: dict) -> Any:
    """A rich table: one row per scope and metric; each later run as ``value (Δ [95% CI])`` over ``p q``.

    * marks a difference with q < 0.05 or a 95% CI that excludes 0.
    """
    from rich.table import Table

    runs = result["runs"]
    dropped = ", ".join(f"{k}: {v}" for k, v in result["unpaired_items"].items())
    table = Table(
        title="WVS comparison (Δ vs the first run, 95% bootstrap CI; paired permutation p, BH q)",
        caption=f"paired on {result['paired_items']} items (unpaired dropped: {dropped}); "
        f"{result['n_boot']} bootstrap resamples (overall: of question ids, all cultures together), "
        f"{result['n_perm']} permutations; q: {result['multiple_comparisons']}; * q < 0.05 or 95% CI excludes 0",
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
                star = " *" if lo > 0 or hi < 0 or v["q"][label] < 0.05 else ""
                diff = f"{_num(v['diff'][label], '+')} [{_num(lo, '+')}, {_num(hi, '+')}]"
                cells.append(f"{_num(v['values'][label])} ({diff}){star}\np {_p(v['p'][label])} q {_p(v['q'][label])}")
            table.add_row(scope, m, str(result["n_questions"][scope]), *cells)
    return table


def _num(x: float, sign: str = "") -> str:
    return "-" if math.isnan(x) else f"{x:{sign}.3f}"


def _p(x: float) -> str:
    return "-" if math.isnan(x) else "<.001" if x < 0.001 else f"{x:.3f}"
