"""Before/after tables of WVS metrics (per culture and overall)."""

from __future__ import annotations

import math
from typing import Any

from culturealign.evaluate.wvs import METRIC_NAMES

BEFORE_AFTER_METRICS = (*METRIC_NAMES, "discrimination")


def before_after(before: dict[str, Any], after: dict[str, Any] | None) -> dict[str, Any]:
    """``{scope: {metric: {before, after, diff}}}`` for each culture and ``overall``; after may be missing."""
    out: dict[str, Any] = {}
    scopes = [*before["per_culture"], "overall"]
    for scope in scopes:
        b = before["overall"] if scope == "overall" else before["per_culture"][scope]
        a = None
        if after is not None:
            a = after["overall"] if scope == "overall" else after["per_culture"].get(scope)
        row = {}
        for m in BEFORE_AFTER_METRICS:
            bv = b.get(m, math.nan)
            av = a.get(m, math.nan) if a else math.nan
            row[m] = {"before": bv, "after": av, "diff": av - bv}
        # SubPOP's figure: the share of the distance to a perfect 1-JSD that tuning closed
        j = row["one_minus_jsd"]
        j["gap_closed"] = j["diff"] / (1 - j["before"]) if j["before"] < 1 else math.nan
        out[scope] = row
    return out


def format_before_after(table: dict[str, Any], title: str = "WVS alignment before / after tuning") -> Any:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("culture")
    for m in BEFORE_AFTER_METRICS:
        t.add_column(f"{m}\nbefore → after (Δ)", justify="right")
    t.add_column("1-JSD gap\nclosed", justify="right")
    for scope, row in table.items():
        cells = []
        for m in BEFORE_AFTER_METRICS:
            v = {k: _number(x) for k, x in row[m].items()}  # read back from strict JSON, undefined is null
            if math.isnan(v["after"]):
                cells.append(f"{v['before']:.3f}" if not math.isnan(v["before"]) else "-")
            else:
                cells.append(f"{v['before']:.3f} → {v['after']:.3f} ({v['diff']:+.3f})")
        gap = _number(row["one_minus_jsd"].get("gap_closed"))
        cells.append("-" if math.isnan(gap) else f"{gap:+.1%}")
        t.add_row(scope, *cells)
    return t


def _number(x: Any) -> float:
    return math.nan if x is None else float(x)
