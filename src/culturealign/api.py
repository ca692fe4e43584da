"""Public entry points a notebook user calls; the CLI is a thin layer over these functions."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.evaluate.wvs import WVSResult, evaluate_wvs, save_result
from culturealign.llm import Engine, make_engine
from culturealign.llm.cache import CallCache
from culturealign.runs import RunFolder, write_json


def build_engine(
    engine: str = "local",
    model: str = "smollm2",
    adapter: str | None = None,
    base_url: str | None = None,
    dtype: str = "float32",
    batch_size: int = 16,
    cache: CallCache | None = None,
) -> Engine:
    """An engine from flat settings (what the CLI and recipe YAML carry)."""
    if engine == "openai":
        from culturealign.errors import UserError

        if not base_url:
            raise UserError("engine 'openai' needs --base-url (e.g. http://localhost:8000/v1)")
        return make_engine("openai", cache, base_url=base_url, model=model, batch_size=batch_size)
    return make_engine(engine, cache, model=model, adapter=adapter, dtype=dtype, batch_size=batch_size)


def eval_wvs(
    survey: str | Path,
    cultures: str | Sequence[str],
    model: str = "smollm2",
    prompt: str = "aware",
    adapter: str | None = None,
    topics: Sequence[str] | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    engine: str = "local",
    base_url: str | None = None,
    dtype: str = "float32",
    batch_size: int = 16,
    progress: bool = True,
    icl: int = 0,
) -> WVSResult:
    """Evaluate a model's WVS alignment and write a run folder (config, cache, eval/wvs-<prompt>[-icl<k>]/)."""
    survey_data = load_survey(survey)
    culture_list = parse_cultures(cultures)
    out = Path(out or f"runs/eval-wvs-{time.strftime('%Y%m%d-%H%M%S')}")
    with RunFolder(out) as run:
        config = {
            "command": "eval wvs",
            "survey": str(survey),
            "cultures": [c.code for c in culture_list],
            "model": model,
            "prompt": prompt,
            "adapter": adapter,
            "topics": list(topics or []),
            "limit": limit,
            "engine": engine,
            "base_url": base_url,
            "dtype": dtype,
        }
        run.write_config(config)
        eng = build_engine(engine, model, adapter, base_url, dtype, batch_size, run.cache)
        start = time.time()
        result = evaluate_wvs(eng, survey_data, culture_list, prompt, topics, limit, progress, icl)
        save_result(result, run.eval_dir(f"wvs-{prompt}" + (f"-icl{icl}" if icl else "")))
        write_cost(run.path, eng, time.time() - start)
    return result


def write_cost_seconds(run_dir: Path, seconds: float) -> None:
    """Add wall time to ``cost.json``."""
    path = run_dir / "cost.json"
    cost: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    cost["wall_seconds"] = round(cost.get("wall_seconds", 0) + seconds, 2)
    write_json(path, cost)


def write_cost(run_dir: Path, engine: Engine, seconds: float) -> None:
    """Accumulate wall time, model calls, tokens and cache hits in ``cost.json``."""
    path = run_dir / "cost.json"
    cost: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for k, v in {"wall_seconds": round(seconds, 2), **asdict(engine.stats)}.items():
        cost[k] = cost.get(k, 0) + v
    write_json(path, cost)


def eval_blend(
    data: str | Path,
    cultures: str | Sequence[str] | None = None,
    model: str = "smollm2",
    adapter: str | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    engine: str = "local",
    base_url: str | None = None,
    dtype: str = "float32",
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """BLEnD short-answer accuracy per region (plain and vote-weighted); writes eval/blend/."""
    from culturealign.data.blend import resolve_regions
    from culturealign.evaluate.blend import evaluate_blend, save_blend

    regions = resolve_regions(data, cultures)
    out = Path(out or f"runs/eval-blend-{time.strftime('%Y%m%d-%H%M%S')}")
    with RunFolder(out) as run:
        run.write_config(
            {
                "command": "eval blend",
                "data": str(data),
                "cultures": regions,
                "model": model,
                "adapter": adapter,
                "limit": limit,
                "engine": engine,
                "base_url": base_url,
                "dtype": dtype,
            }
        )
        eng = build_engine(engine, model, adapter, base_url, dtype, batch_size, run.cache)
        start = time.time()
        items, metrics = evaluate_blend(eng, data, regions, limit, progress=progress)
        save_blend(items, metrics, run.eval_dir("blend"))
        write_cost(run.path, eng, time.time() - start)
    return metrics


def eval_relations(
    survey: str | Path,
    cultures: str | Sequence[str] | None = None,
    model: str = "smollm2",
    adapter: str | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    engine: str = "local",
    base_url: str | None = None,
    dtype: str = "float32",
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """The model's culture x culture map (culture-aware answers) next to the survey's; writes eval/relations/."""
    from culturealign.evaluate.relations import cultural_relations

    survey_data = load_survey(survey)
    culture_list = parse_cultures(cultures or survey_data.countries)
    if len(culture_list) < 3:
        from culturealign.errors import UserError

        raise UserError("cultural relations need at least 3 cultures (a rank correlation over culture pairs)")
    out = Path(out or f"runs/eval-relations-{time.strftime('%Y%m%d-%H%M%S')}")
    with RunFolder(out) as run:
        run.write_config(
            {
                "command": "eval relations",
                "survey": str(survey),
                "model": model,
                "adapter": adapter,
                "cultures": [c.code for c in culture_list],
                "limit": limit,
                "engine": engine,
                "base_url": base_url,
                "dtype": dtype,
            }
        )
        eng = build_engine(engine, model, adapter, base_url, dtype, batch_size, run.cache)
        start = time.time()
        result = evaluate_wvs(eng, survey_data, culture_list, "aware", None, limit, progress)
        save_result(result, run.eval_dir("wvs-aware"))
        relations = cultural_relations(result.items)
        write_json(run.eval_dir("relations") / "metrics.json", relations)
        write_cost(run.path, eng, time.time() - start)
    return relations
