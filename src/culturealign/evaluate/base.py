"""One contract for every evaluation: built with its data and options, run on an engine, one result type.

inspect_ai's vocabulary, datatrove's plainness: an ``Evaluation`` holds its dataset and options, ``run(engine)``
solves and scores every item and returns an ``EvalResult`` (name, items, metrics). Each evaluation declares its
metrics and the key its per-group figures sit under once, so saving, loading, tables and before/after are
written here and nowhere else. An evaluation whose items belong to cultures can be cut to some of them
(``subset``) and put back together (``combine``), which is how one adapter per culture is evaluated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

from culturealign.llm.base import Engine


@dataclass
class EvalResult:
    """What every evaluation returns; ``save`` writes the layout ``compare`` and the report read."""

    name: str
    items: list[Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> None:
        """``items.jsonl`` (one scored item per line) and ``metrics.json`` (strict JSON), each written atomically."""
        from culturealign.runs import write_json, write_jsonl

        folder = Path(folder)
        write_jsonl(folder / "items.jsonl", (asdict(i) if is_dataclass(i) else i for i in self.items))
        write_json(folder / "metrics.json", self.metrics)

    @classmethod
    def load(cls, folder: str | Path, name: str = "") -> EvalResult:
        """A saved result, its items as dicts (an evaluation's item type is not needed to read one back)."""
        from culturealign.runs.store import read_jsonl

        folder = Path(folder)
        items = read_jsonl(folder / "items.jsonl") if (folder / "items.jsonl").is_file() else []
        return cls(name or folder.name, items, json.loads((folder / "metrics.json").read_text("utf-8")))


class Evaluation:
    """Subclasses set the class fields and ``run``; cultures-aware ones also ``cultures``, ``subset``, ``combine``."""

    name: ClassVar[str]
    title: ClassVar[str]  # what its tables are called
    metrics: ClassVar[tuple[str, ...]]  # headline metrics, under ``overall`` and under each group of ``scope``
    scope: ClassVar[str]  # the metrics key of per-group figures: per_culture, per_region, per_domain ...
    gap_metrics: ClassVar[tuple[str, ...]] = ()  # metrics bounded by 1 whose "share of the gap closed" is shown
    extra_columns: ClassVar[tuple[str, ...]] = ()  # shown beside the metrics in a one-result table

    @staticmethod
    def caption(metrics: dict[str, Any]) -> str:
        """Notes printed under a table of this evaluation's metrics (references, skipped data)."""
        return ""

    def run(self, engine: Engine, progress: bool = True) -> EvalResult:
        raise NotImplementedError

    def cultures(self) -> list[str]:
        """The culture codes the items belong to ([] when they belong to none: one engine serves them all)."""
        return []

    def subset(self, codes: Sequence[str]) -> Evaluation:
        return self

    def combine(self, results: Sequence[EvalResult]) -> EvalResult:
        """One result from results of ``subset``s (each culture scored by its own adapter)."""
        if len(results) != 1:
            raise NotImplementedError(f"{self.name} cannot be split by culture")
        return results[0]


# -- before/after tables: any evaluation's metrics, per group and overall ------------------------------------------
def before_after_table(
    evaluation: type[Evaluation] | Evaluation, before: dict[str, Any], after: dict[str, Any] | None
) -> dict[str, Any]:
    """``{group: {metric: {before, after, diff}}}`` for each group of ``evaluation.scope`` and ``overall``.

    ``after`` may be missing (nothing was trained: diffs are NaN). Gap metrics add ``gap_closed``, SubPOP's figure:
    the share of the distance to a perfect score that tuning closed.
    """
    out: dict[str, Any] = {}
    for group in [*before.get(evaluation.scope, {}), "overall"]:
        b = before["overall"] if group == "overall" else before[evaluation.scope][group]
        a = None
        if after is not None:
            a = after["overall"] if group == "overall" else after.get(evaluation.scope, {}).get(group)
        row = {}
        for m in evaluation.metrics:
            bv, av = _number(b.get(m)), _number(a.get(m)) if a else math.nan
            row[m] = {"before": bv, "after": av, "diff": av - bv}
        for m in evaluation.gap_metrics:
            row[m]["gap_closed"] = row[m]["diff"] / (1 - row[m]["before"]) if row[m]["before"] < 1 else math.nan
        out[group] = row
    return out


def format_before_after(
    evaluation: type[Evaluation] | Evaluation,
    table: dict[str, Any],
    title: str = "",
    intervals: dict[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> Any:
    """A rich table of ``before_after_table``: one row per group, ``before → after (Δ)`` per metric.

    With ``intervals`` (``{group: {metric: {ci, p, q}}, "n_questions": {group: n}}``, what ``compare`` of the two
    folders gives) each change shows its 95% interval and permutation p, starred where BH q < 0.05.
    """
    from rich.table import Table

    shown = tuple(metrics or evaluation.metrics)
    caption = "95% bootstrap CI of the change (overall: question ids resampled jointly); * BH q < 0.05"
    t = Table(title=title or f"{evaluation.title} before / after tuning", caption=caption if intervals else None)
    t.add_column(evaluation.scope.removeprefix("per_"))
    if intervals:
        t.add_column("n", justify="right")
    for m in shown:
        t.add_column(f"{m}\nbefore → after (Δ)", justify="right")
    for m in evaluation.gap_metrics:
        t.add_column(f"{m}\ngap closed", justify="right")
    for group, row in table.items():
        iv = (intervals or {}).get(group, {})
        cells = [str((intervals or {}).get("n_questions", {}).get(group, ""))] if intervals else []
        cells += [_change(row[m], iv.get(m)) for m in shown]
        for m in evaluation.gap_metrics:
            gap = _number(row[m].get("gap_closed"))
            cells.append("-" if math.isnan(gap) else f"{gap:+.1%}")
        t.add_row(group, *cells)
    return t


def _change(row: dict[str, Any], interval: dict[str, Any] | None) -> str:
    v = {k: _number(x) for k, x in row.items() if k in ("before", "after", "diff")}  # strict JSON: null is NaN
    if math.isnan(v["after"]):
        return "-" if math.isnan(v["before"]) else f"{v['before']:.3f}"
    text = f"{v['before']:.3f} → {v['after']:.3f} ({v['diff']:+.3f})"
    ci = [_number(x) for x in (interval or {}).get("ci") or [None, None]]
    if not math.isnan(ci[0]):
        star = " *" if _number(interval.get("q")) < 0.05 else ""
        text += f"\n[{ci[0]:+.3f}, {ci[1]:+.3f}] p={_number(interval.get('p')):.3g}{star}"
    return text


def format_metrics(evaluation: type[Evaluation] | Evaluation, metrics: dict[str, Any], title: str = "") -> Any:
    """A rich table of one result: one row per group plus ``overall``, one column per declared metric."""
    from rich.table import Table

    table = Table(title=title or evaluation.title)
    table.add_column(evaluation.scope.removeprefix("per_"))
    table.add_column("n", justify="right")
    columns = (*evaluation.metrics, *evaluation.extra_columns)
    for m in columns:
        table.add_column(m.rpartition(".")[2], justify="right")  # a dotted column is a nested figure
    for group, m in [("overall", metrics["overall"]), *metrics.get(evaluation.scope, {}).items()]:
        n = next((m[k] for k in ("n_questions", "n_items", "n") if k in m), "")
        table.add_row(group, str(n), *(fmt(_dig(m, k)) for k in columns))
    table.caption = evaluation.caption(metrics) or None
    return table


def fmt(x: Any) -> str:
    """A metric cell: three decimals, '-' for a missing or undefined figure."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _dig(metrics: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        metrics = metrics.get(part) if isinstance(metrics, dict) else None
    return metrics


def _number(x: Any) -> float:
    return math.nan if x is None else float(x)
