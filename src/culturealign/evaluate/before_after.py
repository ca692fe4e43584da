"""Any list of evaluations on the student before tuning and with its adapter(s): the one before/after loop.

The student is built through the one engine factory on the run's cache (so ``cost.json`` counts its calls),
loaded once per adapter, given every evaluation, and freed before the next adapter is loaded. With one adapter per
culture (``mode="specific"``), each culture's items are scored by its own adapter and put back together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from culturealign.evaluate.base import EvalResult, Evaluation, before_after_table
from culturealign.llm.base import Engine
from culturealign.llm.spec import EngineSpec
from culturealign.runs import RunFolder

log = logging.getLogger(__name__)


def adapter_for(adapters: dict[str, Path], culture: str, mode: str) -> Path | None:
    """The adapter that serves ``culture``: the joint one, or the culture's own (named ``<variant>-<CODE>``)."""
    if not adapters:
        return None
    if mode == "joint":
        return next(iter(adapters.values()))
    return next((p for n, p in adapters.items() if n.endswith(f"-{culture}")), None)


def student_engine(run: RunFolder, student: EngineSpec, adapter: Path | None, engines: list | None) -> Engine:
    """The student model (with an adapter or none) on the run's cache; remembered in ``engines`` for cost.json."""
    engine = replace(student, adapter=str(adapter) if adapter else None).build(run.cache)
    if engines is not None:
        engines.append(engine)
    return engine


def evaluate_on(
    run: RunFolder,
    student: EngineSpec,
    evaluations: Sequence[Evaluation],
    adapters: dict[str, Path] | None = None,
    mode: str = "joint",
    engines: list[Engine] | None = None,
) -> dict[str, EvalResult]:
    """Every evaluation on the student with no adapter, the joint adapter, or each culture's own adapter."""
    if not adapters or mode == "joint":
        engine = student_engine(run, student, adapter_for(adapters or {}, "", "joint"), engines)
        out = {ev.name: ev.run(engine) for ev in evaluations}
        engine.unload()  # one model copy per adapter would otherwise stay in memory until the run ends
        return out
    codes = sorted({c for ev in evaluations for c in ev.cultures()})
    parts: dict[str, list[EvalResult]] = {ev.name: [] for ev in evaluations}
    for code in codes:
        adapter = adapter_for(adapters, code, mode)
        if adapter is None:
            log.warning("no adapter for %s (no kept pairs): evaluating the base model for it", code)
        engine = student_engine(run, student, adapter, engines)
        for ev in evaluations:
            if code in ev.cultures():
                parts[ev.name].append(ev.subset([code]).run(engine))
        engine.unload()
    return {ev.name: ev.combine(parts[ev.name]) for ev in evaluations}


@dataclass
class BeforeAfter:
    """One evaluation before and after tuning (``after`` is None when nothing was trained) and their table."""

    before: EvalResult
    after: EvalResult | None
    table: dict[str, Any]  # base.before_after_table: {group: {metric: {before, after, diff}}}


def before_after(
    run: RunFolder,
    student: EngineSpec,
    evaluations: Sequence[Evaluation],
    adapters: dict[str, Path] | None,
    mode: str = "joint",
    engines: list[Engine] | None = None,
) -> dict[str, BeforeAfter]:
    """Evaluate before and (when adapters exist) after tuning; writes ``eval/<name>-before|after``."""
    before = evaluate_on(run, student, evaluations, None, mode, engines)
    after = evaluate_on(run, student, evaluations, adapters, mode, engines) if adapters else {}
    out = {}
    for ev in evaluations:
        b, a = before[ev.name], after.get(ev.name)
        b.save(run.eval_dir(f"{ev.name}-before"))
        if a is not None:
            a.save(run.eval_dir(f"{ev.name}-after"))
        out[ev.name] = BeforeAfter(b, a, before_after_table(ev, b.metrics, a.metrics if a else None))
    return out
