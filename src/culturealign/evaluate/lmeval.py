"""General ability through lm-evaluation-harness: base vs tuned (PEFT adapter) per task, with standard errors.

The harness runs in process through its Python API (``simple_evaluate``, model ``hf``, the adapter as
``peft=``), so any of its tasks can be named (``mmlu``, ``hellaswag`` ... downloaded by the harness, which needs
the internet) beside the project's own offline task ``culturealign_general_mc`` (``resources/general/
lmeval_task``: 62 general-knowledge questions written for this project, nothing from a culture survey). Each
(task, metric) row holds the harness's score and standard error for the base and the tuned model, their
difference, and the standard error of the difference paired over the same documents.

An optional extra: ``pip install 'culturealign[lmeval]'``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.llm.models import check_adapter, resolve_model
from culturealign.runs.store import write_json, write_jsonl

log = logging.getLogger(__name__)

LOCAL_TASK = "culturealign_general_mc"
INSTALL = "pip install 'culturealign[lmeval]'"
TASK_FILES = ("culturealign_general_mc.yaml", "general_mc.jsonl")


def parse_tasks(tasks: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or a list into task names (at least one)."""
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    if not names:
        raise UserError(f"no lm-evaluation-harness task given: pass --tasks, e.g. {LOCAL_TASK} or mmlu,hellaswag")
    return names


def require_lm_eval() -> Any:
    """The ``lm_eval`` module, or a user error naming the install command."""
    try:
        import lm_eval
    except ImportError as e:
        raise UserError(f"lm-evaluation-harness is not installed: {INSTALL}") from e
    return lm_eval


def local_task_folder(dest: Path) -> Path:
    """Copy the project's task (YAML + JSONL) into ``dest`` with its ``data_files`` made absolute.

    The harness hands ``data_files`` to ``datasets``, which reads a relative path from the working directory;
    the copy in the run folder also records exactly which task was run.
    """
    dest.mkdir(parents=True, exist_ok=True)
    source = resources.files("culturealign.resources").joinpath("general/lmeval_task")
    for name in TASK_FILES:
        (dest / name).write_text(source.joinpath(name).read_text("utf-8"), encoding="utf-8")
    yaml_path = dest / TASK_FILES[0]
    data = (dest / TASK_FILES[1]).resolve()
    yaml_path.write_text(yaml_path.read_text("utf-8").replace(f"test: {TASK_FILES[1]}", f"test: {data}"), "utf-8")
    return dest


def harness_evaluate(
    model_path: str,
    adapter: str | None,
    tasks: Sequence[str],
    limit: int | None,
    task_manager: Any,
    batch_size: int = 16,
) -> dict[str, Any]:
    """One ``simple_evaluate`` call (samples logged, for paired differences); returns the harness's result dict."""
    import torch

    lm_eval = require_lm_eval()
    model_args: dict[str, Any] = {"pretrained": model_path}
    if adapter:
        model_args["peft"] = str(adapter)
    result = lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=list(tasks),
        limit=limit,
        batch_size=batch_size,
        device="cuda" if torch.cuda.is_available() else "cpu",  # the harness defaults to cuda
        task_manager=task_manager,
        log_samples=True,
    )
    if result is None:  # only on non-zero ranks of a distributed run
        raise UserError("lm-evaluation-harness returned no result: run culturealign eval lmeval in one process")
    return result


def _paired_stderr(base: list[dict], tuned: list[dict], metric: str, filt: str) -> float | None:
    """Standard error of mean(tuned - base) over the documents both scored (None below two documents)."""
    a = {s["doc_id"]: s[metric] for s in base if s.get("filter", "none") == filt and metric in s}
    b = {s["doc_id"]: s[metric] for s in tuned if s.get("filter", "none") == filt and metric in s}
    diffs = [float(b[d]) - float(a[d]) for d in a if d in b and _number(a[d]) and _number(b[d])]
    if len(diffs) < 2:
        return None
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return math.sqrt(var / len(diffs))


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def score_table(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``"task/metric"`` -> base, base_stderr, [tuned, tuned_stderr, change, change_stderr], n.

    Metrics are the harness's ``"<metric>,<filter>"`` keys that come with a ``"<metric>_stderr,<filter>"``;
    a filter other than ``none`` stays in the metric's name (``exact_match,strict-match``).
    """
    base = runs["base"]
    rows: dict[str, dict[str, Any]] = {}
    for task, values in base["results"].items():
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if metric.endswith("_stderr") or f"{metric}_stderr,{filt}" not in values or not _number(value):
                continue
            name = metric if filt == "none" else f"{metric},{filt}"
            row: dict[str, Any] = {
                "task": task,
                "metric": name,
                "n": base.get("n-samples", {}).get(task, {}).get("effective"),
                "base": value,
                "base_stderr": _stderr(values[f"{metric}_stderr,{filt}"]),
            }
            tuned = runs.get("tuned", {}).get("results", {}).get(task)
            if tuned is not None and _number(tuned.get(key)):
                row["tuned"] = tuned[key]
                row["tuned_stderr"] = _stderr(tuned.get(f"{metric}_stderr,{filt}"))
                row["change"] = tuned[key] - value
                samples = (base.get("samples", {}).get(task), runs["tuned"].get("samples", {}).get(task))
                if all(samples):
                    row["change_stderr"] = _paired_stderr(samples[0], samples[1], metric, filt)
            rows[f"{task}/{name}"] = row
    return rows


def _stderr(value: Any) -> float | None:
    """The harness writes ``"N/A"`` where it has no standard error."""
    return float(value) if _number(value) else None


def _items(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per document and model: the per-document metric values and the choices' log-likelihoods (``items.jsonl``)."""
    rows = []
    for name, result in runs.items():
        for task, samples in result.get("samples", {}).items():
            for s in samples:
                resps = s.get("filtered_resps") or []
                loglik = [r[0] if isinstance(r, list | tuple) else r for r in resps]
                rows.append(
                    {
                        "model": name,
                        "task": task,
                        "doc_id": s["doc_id"],
                        "filter": s.get("filter", "none"),
                        "target": s.get("target"),
                        "metrics": {m: s[m] for m in s.get("metrics", []) if m in s},
                        "loglikelihoods": [x for x in loglik if _number(x)] or None,
                    }
                )
    return rows


def run_general(
    model: str, adapter: str | None, tasks: Sequence[str], limit: int | None, out_dir: str | Path, batch_size: int = 16
) -> dict[str, dict[str, Any]]:
    """Run the harness on the base model and, with ``adapter``, on the tuned one; write and return the table.

    The recipe hook: call it after training with the run's adapter. Writes into ``out_dir``: ``metrics.json``
    (the table of :func:`score_table`), ``items.jsonl`` (per-document scores), ``results-<model>.json`` (the
    harness's own results, configs and versions) and ``tasks/`` (the project's task as run).
    """
    require_lm_eval()
    from lm_eval.tasks import TaskManager

    tasks = parse_tasks(tasks)
    if adapter:
        check_adapter(adapter)
    out_dir = Path(out_dir)
    task_dir = local_task_folder(out_dir / "tasks")
    manager = TaskManager(include_path=str(task_dir), include_defaults=any(t != LOCAL_TASK for t in tasks))
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise UserError(f"unknown lm-evaluation-harness tasks {unknown}: list them with `lm_eval ls tasks`")
    model_path = resolve_model(model)
    runs = {"base": harness_evaluate(model_path, None, tasks, limit, manager, batch_size)}
    if adapter:
        runs["tuned"] = harness_evaluate(model_path, adapter, tasks, limit, manager, batch_size)
    table = score_table(runs)
    for name, result in runs.items():
        keep = ("results", "groups", "configs", "versions", "n-shot", "n-samples", "config", "lm_eval_version")
        write_json(out_dir / f"results-{name}.json", {k: result[k] for k in keep if k in result})
    write_jsonl(out_dir / "items.jsonl", _items(runs))
    write_json(out_dir / "metrics.json", table)
    return table


def format_table(table: dict[str, dict[str, Any]], title: str = "") -> Any:
    """A rich table: one row per task and metric, base and tuned with the harness's standard errors."""
    from rich.table import Table

    tuned = any("tuned" in r for r in table.values())
    out = Table(title=title or None)
    for col in ("task", "metric", "n", "base", *(("tuned", "change") if tuned else ())):
        out.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for row in table.values():
        cells = [row["task"], row["metric"], str(row.get("n") or "-"), _pm(row["base"], row.get("base_stderr"))]
        if tuned:
            cells += [
                _pm(row.get("tuned"), row.get("tuned_stderr")),
                _pm(row.get("change"), row.get("change_stderr"), signed=True),
            ]
        out.add_row(*cells)
    out.caption = "± standard error (harness); change ± paired standard error over the same documents"
    return out


def _pm(value: float | None, err: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return (f"{value:+.3f}" if signed else f"{value:.3f}") + (f" ± {err:.3f}" if err is not None else "")
