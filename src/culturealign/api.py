"""Public entry points a notebook user calls; the CLI is a thin layer over these functions."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.errors import UserError
from culturealign.evaluate.base import EvalResult, Evaluation
from culturealign.evaluate.wvs import WVS
from culturealign.llm.spec import EngineSpec
from culturealign.runs import RunFolder, write_json
from culturealign.runs.store import write_cost, write_cost_seconds

EngineSettings = EngineSpec  # the name notebooks know: one spec, one factory (``EngineSpec.build``)


@contextmanager
def eval_run(kind: str, out: str | Path | None, config: dict[str, Any], settings: EngineSettings):
    """A run folder for one evaluation: writes its config, yields (run, engine), then adds the cost."""
    out = Path(out or f"runs/eval-{kind}-{time.strftime('%Y%m%d-%H%M%S')}")
    engine = settings.build(None)  # a bad model or adapter fails here, before a run folder exists
    with RunFolder(out) as run:
        run.write_config({"command": f"eval {kind}", **config, **settings.settings()})
        engine.cache = run.cache
        start = time.time()
        yield run, engine
        write_cost(run.path, engine, time.time() - start)


def evaluate(
    evaluation: Evaluation,
    settings: EngineSettings | None = None,
    out: str | Path | None = None,
    config: dict[str, Any] | None = None,
    folder: str | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run any evaluation on the engine of ``settings`` in a run folder: ``eval/<folder or its name>/`` holds the
    result, ``config.yaml`` the ``config`` given (what the evaluation was built from) and the engine settings."""
    with eval_run(evaluation.name, out, config or {}, settings or EngineSettings()) as (run, engine):
        result = evaluation.run(engine, progress)
        result.save(run.eval_dir(folder or evaluation.name))
    return result


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
    variants: str | Sequence[str] | None = None,
    paraphrases: str | Path | None = None,
) -> EvalResult:
    """Evaluate a model's WVS alignment and write a run folder (config, cache, eval/wvs-<prompt>[-icl<k>]/).

    ``variants`` (``prompting.parse_variants``: option orders, instruction templates, paraphrases) scores the same
    items under each; the figures are then means over variants with their spread and the answers' sensitivity.
    """
    from culturealign.prompting import load_paraphrases, parse_variants

    survey_data = load_survey(survey)
    culture_list = parse_cultures(cultures)
    texts = load_paraphrases(paraphrases, list(survey_data.questions))
    names = [v.name for v in parse_variants(variants, texts)]  # bad names: one line before the model loads
    config = {
        "survey": str(survey),
        "cultures": [c.code for c in culture_list],
        "prompt": prompt,
        "topics": list(topics or []),
        "limit": limit,
        "icl": icl,
        **({"variants": names, "paraphrases": str(paraphrases) if paraphrases else None} if variants else {}),
    }
    wvs = WVS(survey_data, culture_list, prompt, topics, limit, icl, variants=names, paraphrases=texts)
    return evaluate(wvs, settings, out, config, f"wvs-{prompt}" + (f"-icl{icl}" if icl else ""), progress)


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
    from culturealign.evaluate.blend import Blend

    regions = resolve_regions(data, cultures)
    config = {"data": str(data), "cultures": regions, "limit": limit}
    return evaluate(Blend(data, {r: r for r in regions}, limit), settings, out, config, progress=progress).metrics


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
        result = WVS(survey_data, culture_list, "aware", None, limit).run(engine, progress)
        result.save(run.eval_dir("wvs-aware"))
        relations = cultural_relations(result.items)
        write_json(run.eval_dir("relations") / "metrics.json", relations)
    return relations


def cultural_map(
    survey: str | Path,
    cultures: str | Sequence[str],
    settings: EngineSettings | None = None,
    questions: str | Path | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Place the model (culture-unaware and as each culture) on the survey countries' Inglehart-Welzel map.

    ``survey`` is an aggregate folder, or the official respondent-level CSV with ``questions`` (the indicators
    then come from respondents, weighted). With ``settings.adapter`` the base model and the tuned one are both
    placed, so the run reports the distance before and after tuning. Writes ``eval/iwmap/{coordinates.json,
    metrics.json, answers.jsonl, map.png, map.svg}``; returns the coordinates.
    """
    from dataclasses import replace

    from culturealign.evaluate import iwmap
    from culturealign.report.plots import iw_map_figure
    from culturealign.runs import write_jsonl

    settings = settings or EngineSettings()
    survey_data = load_survey(survey, questions)
    culture_list = parse_cultures(cultures)
    indicators, missing = iwmap.available_indicators(survey_data)
    if not indicators:
        raise UserError(
            f"{survey} has none of the Inglehart-Welzel indicator items (WVS Wave 7 codes Q164, Q8, Q14, Q15, Q17, "
            "Q184, Q254, Q45, Q46, Q57, Q182, Q209, Q154, Q155): pass a WVS survey"
        )
    respondents = Path(survey).is_file()
    if respondents:
        scores = iwmap.respondent_indicators(survey, indicators)
    else:
        scores = iwmap.country_indicators(survey_data, indicators)
    fit = iwmap.fit_map(scores, indicators)
    absent = [c.code for c in culture_list if c.code not in fit.countries]
    if absent:
        raise UserError(f"the survey has no indicator answers for {absent}: its map covers {', '.join(fit.countries)}")
    config = {
        "survey": str(survey),
        "questions": str(questions) if questions else None,
        "cultures": [c.code for c in culture_list],
        "tuned_adapter": settings.adapter,
    }
    with eval_run("map", out, config, replace(settings, adapter=None)) as (run, engine):
        variants = [("base", engine)]
        if settings.adapter:
            variants.append(("tuned", settings.build(run.cache)))
        models, answers = {}, []
        for name, eng in variants:
            model_scores, rows = iwmap.model_indicators(eng, survey_data, indicators, [None, *culture_list], progress)
            label = settings.model + (f" + {Path(settings.adapter).name}" if name == "tuned" else "")
            models[name] = iwmap.place_model(fit, model_scores, label)
            answers += [{"model": name, **r} for r in rows]
            if eng is not engine:
                write_cost(run.path, eng, 0.0)
        source = "respondents (weighted)" if respondents else "country aggregates"
        result = iwmap.map_result(fit, models, missing, source, scores)
        folder = run.eval_dir("iwmap")
        write_json(folder / "coordinates.json", result)
        write_json(folder / "metrics.json", iwmap.map_metrics(result))
        write_jsonl(folder / "answers.jsonl", answers)
        fig = iw_map_figure(result)
        fig.savefig(folder / "map.png", dpi=150, bbox_inches="tight")
        fig.savefig(folder / "map.svg", bbox_inches="tight")
    return result


def compare_maps(before_run: str | Path, after_run: str | Path) -> dict[str, Any]:
    """Mean persona-to-country distance before vs after tuning from two run folders of ``cultural_map``."""
    from culturealign.evaluate.iwmap import compare_maps as compare

    def read(run: str | Path) -> dict[str, Any]:
        path = Path(run) / "eval" / "iwmap" / "coordinates.json"
        if not path.is_file():
            raise UserError(f"{run} has no eval/iwmap/coordinates.json: run culturealign map with --out {run}")
        return json.loads(path.read_text("utf-8"))

    return compare(read(before_run), read(after_run))


def eval_lmeval(
    model: str = "smollm2",
    adapter: str | None = None,
    tasks: str | Sequence[str] = "culturealign_general_mc",
    limit: int | None = None,
    out: str | Path | None = None,
    batch_size: int = 16,
) -> dict[str, Any]:
    """General ability through lm-evaluation-harness, base vs tuned (with ``adapter``); writes eval/lmeval/.

    Needs the optional extra: ``pip install 'culturealign[lmeval]'``.
    """
    from culturealign.evaluate.lmeval import parse_tasks, require_lm_eval, run_general

    task_list = parse_tasks(tasks)
    require_lm_eval()  # before a run folder is made
    out = Path(out or f"runs/eval-lmeval-{time.strftime('%Y%m%d-%H%M%S')}")
    with RunFolder(out) as run:
        config = {"command": "eval lmeval", "model": model, "adapter": adapter, "tasks": task_list, "limit": limit}
        run.write_config(config)
        start = time.time()
        result = run_general(model, adapter, task_list, limit, run.eval_dir("lmeval"), batch_size)
        write_cost_seconds(run.path, time.time() - start)
    return result
