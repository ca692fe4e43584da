"""Public entry points a notebook user calls; the CLI is a thin layer over these functions."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.errors import UserError
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
    chat_template_from: str | None = None,
) -> Engine:
    """An engine from flat settings (what the CLI and recipe YAML carry).

    ``chat_template_from`` (openai only): the served model's tokenizer, needed to score completions.
    """
    if engine == "openai":
        if not base_url:
            raise UserError("engine 'openai' needs --base-url (e.g. http://localhost:8000/v1)")
        if adapter:
            raise UserError(
                "--adapter applies to the local engine; for a server, serve the adapter there "
                "(e.g. vllm serve --lora-modules) and pass its name as --model"
            )
        return make_engine(
            "openai",
            cache,
            base_url=base_url,
            model=model,
            batch_size=batch_size,
            chat_template_from=chat_template_from,
        )
    return make_engine(engine, cache, model=model, adapter=adapter, dtype=dtype, batch_size=batch_size)


@dataclass
class EngineSettings:
    """Where answers come from: the flat settings the CLI and recipe YAML carry."""

    engine: str = "local"
    model: str = "smollm2"
    adapter: str | None = None
    base_url: str | None = None
    dtype: str = "float32"
    batch_size: int = 16

    def build(self, cache: CallCache | None = None) -> Engine:
        return build_engine(self.engine, self.model, self.adapter, self.base_url, self.dtype, self.batch_size, cache)


@contextmanager
def eval_run(kind: str, out: str | Path | None, config: dict[str, Any], settings: EngineSettings):
    """A run folder for one evaluation: writes its config, yields (run, engine), then adds the cost."""
    out = Path(out or f"runs/eval-{kind}-{time.strftime('%Y%m%d-%H%M%S')}")
    with RunFolder(out) as run:
        run.write_config({"command": f"eval {kind}", **config, **asdict(settings)})
        engine = settings.build(run.cache)
        start = time.time()
        yield run, engine
        write_cost(run.path, engine, time.time() - start)


def eval_wvs(
    survey: str | Path,
    cultures: str | Sequence[str],
    settings: EngineSettings | None = None,
    prompt: str = "aware",
    topics: Sequence[str] | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    icl: int = 0,
    progress: bool = True,
) -> WVSResult:
    """Evaluate a model's WVS alignment and write a run folder (config, cache, eval/wvs-<prompt>[-icl<k>]/)."""
    survey_data = load_survey(survey)
    culture_list = parse_cultures(cultures)
    config = {
        "survey": str(survey),
        "cultures": [c.code for c in culture_list],
        "prompt": prompt,
        "topics": list(topics or []),
        "limit": limit,
        "icl": icl,
    }
    with eval_run("wvs", out, config, settings or EngineSettings()) as (run, engine):
        result = evaluate_wvs(engine, survey_data, culture_list, prompt, topics, limit, progress, icl)
        save_result(result, run.eval_dir(f"wvs-{prompt}" + (f"-icl{icl}" if icl else "")))
    return result


def eval_blend(
    data: str | Path,
    cultures: str | Sequence[str] | None = None,
    settings: EngineSettings | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """BLEnD short-answer accuracy per region (plain and vote-weighted); writes eval/blend/."""
    from culturealign.data.blend import resolve_regions
    from culturealign.evaluate.blend import evaluate_blend, save_blend

    regions = resolve_regions(data, cultures)
    with eval_run(
        "blend", out, {"data": str(data), "cultures": regions, "limit": limit}, settings or EngineSettings()
    ) as (run, engine):
        items, metrics = evaluate_blend(engine, data, regions, limit, progress=progress)
        save_blend(items, metrics, run.eval_dir("blend"))
    return metrics


def eval_relations(
    survey: str | Path,
    cultures: str | Sequence[str] | None = None,
    settings: EngineSettings | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The model's culture x culture map (culture-aware answers) next to the survey's; writes eval/relations/.

    Pointing ``out`` at the run folder of an earlier culture-aware ``eval_wvs`` reuses its cached answers.
    """
    from culturealign.evaluate.relations import cultural_relations

    survey_data = load_survey(survey)
    culture_list = parse_cultures(cultures or survey_data.countries)
    if len(culture_list) < 3:
        raise UserError("cultural relations need at least 3 cultures (a rank correlation over culture pairs)")
    config = {"survey": str(survey), "cultures": [c.code for c in culture_list], "limit": limit}
    with eval_run("relations", out, config, settings or EngineSettings()) as (run, engine):
        result = evaluate_wvs(engine, survey_data, culture_list, "aware", None, limit, progress)
        save_result(result, run.eval_dir("wvs-aware"))
        relations = cultural_relations(result.items)
        write_json(run.eval_dir("relations") / "metrics.json", relations)
    return relations


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
