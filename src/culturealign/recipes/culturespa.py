"""CultureSPA (Xu et al., NAACL 2025): self-pluralising culture alignment, as a composition of steps.

generate questions -> dedup (against each other and every evaluation question) -> answer unaware/aware ->
keep culture-related pairs -> chat training data -> LoRA (culture-joint or culture-specific) -> WVS before
/after + general-ability check. Every stage is resumable through the run folder and the call cache.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturealign.config import Rule, load_config
from culturealign.cultures import Culture, load_similarity, parse_cultures
from culturealign.data.survey import Survey, load_survey
from culturealign.errors import UserError
from culturealign.evaluate.before_after import evaluate_on
from culturealign.llm.local import LocalEngine
from culturealign.llm.spec import ENGINE_SECTION, EngineSpec
from culturealign.recipes.common import (
    data_redo,
    recipe_run,
    record_cost,
    show_comparison,
    train_and_evaluate,
    tune_and_compare,
    wvs_evaluation,
)
from culturealign.records import ChatSample
from culturealign.runs import RunFolder, write_json
from culturealign.runs.runner import run_steps, step_records
from culturealign.steps.answers import AnswerUnawareAware
from culturealign.steps.dedup import Deduplicate
from culturealign.steps.questions import GenerateQuestions
from culturealign.steps.select import SelectCultureRelated
from culturealign.steps.views import SurveyAnswerSamples
from culturealign.train.distribution import SOFT_DEFAULTS
from culturealign.train.lora import LORA_DEFAULTS, SFT_DEFAULTS

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "out": "runs/culturespa",
    "survey": "../shared/data/wvs7",
    "cultures": ["DEU", "CHN", "NGA"],
    "generator": dict(ENGINE_SECTION),
    "student": {"model": "smollm2", "dtype": "float32", "batch_size": 16},
    "questions": {
        "per_topic": 3,
        "examples": 3,
        "topics": None,
        "temperature": 0.8,
        "max_tokens": 160,
        "max_retries": 3,
        "seed": 0,
    },
    "dedup": {"threshold": 0.9},
    "answers": {"choice": "sample", "temperature": 0.6, "cross_culture": False, "reasons": False, "seed": 0},
    "select": {"criterion": "differ", "threshold": 0.1},
    "train": {
        "mode": "joint",
        "target": "code",  # or distribution: the aware option distribution as a soft label
        "min_examples": 8,
        "lora": dict(LORA_DEFAULTS),
        "sft": dict(SFT_DEFAULTS),
        "soft": dict(SOFT_DEFAULTS),
    },
    "eval": {"topics": None, "limit": None, "general": True, "general_limit": None},
}
# What each key accepts beyond its type (config.COMMON_RULES covers the keys every recipe shares).
RULES = {
    "questions.examples": Rule(int, low=0),
    "dedup.threshold": Rule(float, low=0, high=1, open_low=True),
    "answers.choice": Rule(choices=("top", "sample")),
    "select.criterion": Rule(choices=("differ", "divergence")),
    "select.threshold": Rule(float, low=0, high=1),
    "train.target": Rule(choices=("code", "distribution")),
}
STAGES = ("generate-questions", "dedup", "answer", "select", "training-data", "train", "eval")


def data_steps(cfg: dict, survey: Survey, cultures: Sequence[Culture], run: RunFolder) -> list:
    """The recipe's record steps, built from the config (the generator engine writes and answers)."""
    g = cfg["generator"]
    engine = EngineSpec.from_section(g, "generator").build(run.cache)
    a = cfg["answers"]
    similarity = None
    if a["cross_culture"]:
        if survey.similarity_path is None:
            raise UserError("answers.cross_culture needs country_similarity.json in the survey folder")
        similarity = load_similarity(survey.similarity_path)
    q = cfg["questions"]
    return [
        GenerateQuestions(
            engine,
            survey,
            q["per_topic"],
            q["examples"],
            q["topics"],
            q["temperature"],
            q["max_tokens"],
            q["max_retries"],
            q["seed"],
        ),
        Deduplicate([x.text for x in survey.questions.values()], cfg["dedup"]["threshold"]),
        AnswerUnawareAware(
            engine, cultures, a["choice"], a["temperature"], a["cross_culture"], similarity, a["reasons"], a["seed"]
        ),
        SelectCultureRelated(cfg["select"]["criterion"], cfg["select"]["threshold"]),
        SurveyAnswerSamples(cultures, target=cfg["train"]["target"]),
    ]


def run_culturespa(
    config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None
) -> dict[str, Any]:
    """Run the whole recipe; returns the before/after comparison (also in ``eval/comparison.json``)."""
    cfg = load_config(config, DEFAULTS, list(overrides), RULES)
    survey = load_survey(cfg["survey"])
    cultures = parse_cultures(cfg["cultures"])
    with recipe_run(cfg, "culturespa", STAGES, redo_from) as run:
        steps = data_steps(cfg, survey, cultures, run)
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        hint = "Generate more questions or try select.criterion=divergence."
        evaluations = [wvs_evaluation(cfg, survey, cultures)]
        return tune_and_compare(run, cfg, survey, evaluations, samples, [steps[0].engine], hint=hint)


def subsample(samples: list[ChatSample], fraction: float, seed: int = 0) -> list[ChatSample]:
    """A seeded random ``fraction`` of the samples (at least one)."""
    k = max(1, round(len(samples) * fraction))
    return random.Random(seed).sample(samples, k)


ABLATIONS = ("joint-vs-specific", "quantity", "quality")


def ablate(run_dir: str | Path, what: str, fractions: Sequence[float] = (0.1, 0.3, 1.0)) -> dict[str, Any]:
    """Train and evaluate variants on a finished run's data; results in ``eval/ablation-<what>/metrics.json``.

    - ``joint-vs-specific``: one culture-joint adapter vs one adapter per culture, same kept pairs;
    - ``quantity``: culture-joint on ``fractions`` of the kept pairs (seeded subsamples);
    - ``quality``: the kept (culture-related) pairs vs as many pairs drawn at random from all answered pairs.
    """

    if what not in ABLATIONS:
        raise UserError(f"unknown ablation {what!r}: use one of {', '.join(ABLATIONS)}")
    run_dir = Path(run_dir)
    kept = step_records(run_dir, "training-data", "culturespa run")
    cfg = load_config(run_dir / "config.yaml", DEFAULTS, rules=RULES)
    survey = load_survey(cfg["survey"])
    cultures = parse_cultures(cfg["cultures"])
    if what == "joint-vs-specific":
        plan = {"joint": (kept, "joint"), "specific": (kept, "specific")}
    elif what == "quantity":
        plan = {f"quantity-{round(f * 100)}pct": (subsample(kept, f), "joint") for f in fractions}
    else:
        pairs = step_records(run_dir, "answer", "culturespa run")
        random_pairs = random.Random(0).sample(pairs, min(len(kept), len(pairs)))
        plan = {
            "quality-kept": (kept, "joint"),
            "quality-random": (
                list(SurveyAnswerSamples(cultures, target=cfg["train"]["target"]).run(random_pairs)),
                "joint",
            ),
        }
    with RunFolder(run_dir) as run:
        engines: list[LocalEngine] = []
        wvs = wvs_evaluation(cfg, survey, cultures)
        base = evaluate_on(run, cfg["student"], [wvs], engines=engines)["wvs"]
        results: dict[str, Any] = {"base": {"examples": 0, **base.metrics["overall"]}}
        for name, (samples, mode) in plan.items():
            out_dir = run.eval_dir(f"ablation-{what}") / name
            after = train_and_evaluate(run, cfg, wvs, name, samples, mode, out_dir, engines)
            results[name] = {"examples": len(samples), **after.metrics["overall"]}
        write_json(run.eval_dir(f"ablation-{what}") / "metrics.json", results)
        record_cost(run, engines)
    return results


run = run_culturespa
show = show_comparison


def show_ablation(results: dict[str, Any], what: str) -> list[Any]:
    """The ablation's table: one row per variant, overall (mean over cultures)."""
    from rich.table import Table

    from culturealign.evaluate.wvs import METRIC_NAMES

    table = Table(title=f"CultureSPA ablation: {what} (overall, mean over cultures)")
    for col in ("variant", "examples", *METRIC_NAMES):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, row in results.items():
        table.add_row(name, str(row["examples"]), *(f"{row[m]:.3f}" for m in METRIC_NAMES))
    return [table]
