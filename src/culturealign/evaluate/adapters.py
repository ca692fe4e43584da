"""WVS evaluation of a student model with no adapter, a culture-joint adapter, or one adapter per culture."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from culturealign.cultures import Culture
from culturealign.data.survey import Survey
from culturealign.evaluate.wvs import WVSResult, evaluate_wvs, summarize, survey_accounts, with_cross_culture
from culturealign.llm.local import LocalEngine
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


def student_engine(run: RunFolder, student: dict, adapter: Path | None, engines: list | None) -> LocalEngine:
    """The student model (with an adapter or none) on the run's cache; remembered in ``engines`` for cost.json."""
    spec = EngineSpec.from_section(student, "student", adapter=str(adapter) if adapter else None)
    engine = spec.build(run.cache)
    if engines is not None:
        engines.append(engine)
    return engine


def evaluate_adapters(
    run: RunFolder,
    cfg: dict,
    survey: Survey,
    cultures: Sequence[Culture],
    adapters: dict[str, Path] | None,
    mode: str = "joint",
    engines: list[LocalEngine] | None = None,
) -> WVSResult:
    """WVS (culture-aware) of the student with no adapter, one joint adapter, or each culture's own adapter.

    The engines used are appended to ``engines`` so that their calls can be counted in ``cost.json``.
    """
    st, ev = cfg["student"], cfg["eval"]

    def score(adapter: Path | None, group: Sequence[Culture]) -> WVSResult:
        engine = student_engine(run, st, adapter, engines)
        result = evaluate_wvs(engine, survey, group, "aware", ev["topics"], ev["limit"])
        engine.unload()  # one model copy per adapter would otherwise stay in memory until the run ends
        return result

    if not adapters or mode == "joint":
        return score(adapter_for(adapters, "", "joint"), cultures)
    items = []
    for c in cultures:
        adapter = adapter_for(adapters, c.code, mode)
        if adapter is None:
            log.warning("no adapter for %s (no kept pairs): evaluating the base model for it", c.code)
        items += score(adapter, [c]).items
    items = with_cross_culture(items)  # across cultures: each culture was scored with its own adapter
    return WVSResult("aware", items, {**summarize(items), **survey_accounts(survey)})


def blend_adapters(
    run: RunFolder,
    cfg: dict,
    regions: dict[str, str],
    adapters: dict[str, Path],
    mode: str,
    engines: list[LocalEngine] | None = None,
) -> dict[str, dict[str, float]]:
    """BLEnD accuracy per culture's region, before and (when adapters exist) after tuning.

    ``regions`` maps culture code -> BLEnD region; results also go to ``eval/blend-before|after/``.
    """
    from culturealign.evaluate.blend import evaluate_blend, save_blend

    st, ev = cfg["student"], cfg["eval"]
    out: dict[str, dict[str, float]] = {}
    for stage in ("before", "after") if adapters else ("before",):
        items_all, per_region = [], {}
        for code, region in regions.items():
            adapter = adapter_for(adapters, code, mode) if stage == "after" else None
            engine = student_engine(run, st, adapter, engines)
            items, metrics = evaluate_blend(engine, cfg["blend"], [region], ev["blend_limit"])
            engine.unload()
            items_all += items
            per_region[region] = metrics["per_region"][region]
        acc = [m["accuracy"] for m in per_region.values()]
        summary = {"overall": {"accuracy": sum(acc) / len(acc)}, "per_region": per_region}
        save_blend(items_all, summary, run.eval_dir(f"blend-{stage}"))
        for code, region in regions.items():
            out.setdefault(code, {"region": region})[stage] = per_region[region]["accuracy"]
    return out
