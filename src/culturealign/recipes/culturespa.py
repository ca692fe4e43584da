"""CultureSPA (Xu et al., NAACL 2025): self-pluralising culture alignment, as a composition of steps.

generate questions -> dedup (against each other and every evaluation question) -> answer unaware/aware ->
keep culture-related pairs -> chat training data -> LoRA (culture-joint or culture-specific) -> WVS before
/after + general-ability check. Every stage is resumable through the run folder and the call cache.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from culturealign.config import Section, library, load, setting
from culturealign.cultures import Culture, load_similarity, parse_cultures
from culturealign.data.survey import Survey, load_survey
from culturealign.errors import UserError
from culturealign.evaluate.before_after import evaluate_on
from culturealign.llm.local import LocalEngine
from culturealign.llm.spec import EngineSpec
from culturealign.recipes.common import (
    Eval,
    Train,
    data_redo,
    engine,
    recipe_run,
    record_cost,
    section,
    show_comparison,
    student,
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

log = logging.getLogger(__name__)


@dataclass
class Questions(Section):
    key: ClassVar[str] = "questions"
    per_topic: int = setting(3, "questions written per WVS topic (the paper: ~1,000)")
    examples: int = setting(3, "real survey questions of the topic shown per call (drawn at random)", low=0)
    topics: list[str] | None = setting(None, "null = the 13 WVS topics")
    temperature: float = setting(0.8)
    max_tokens: int = setting(160)
    max_retries: int = setting(3, "re-asks of slots whose reply held no valid question")
    seed: int = setting(0)


@dataclass
class Dedup(Section):
    key: ClassVar[str] = "dedup"
    threshold: float = setting(
        0.9, "cosine similarity (all-MiniLM-L6-v2) at which two questions are duplicates", low=0, high=1, open_low=True
    )


@dataclass
class Answers(Section):
    key: ClassVar[str] = "answers"
    choice: str = setting(
        "sample", "sample (as the paper, at the temperature below) or top", choices=("top", "sample")
    )
    temperature: float = setting(0.6)
    cross_culture: bool = setting(False, "answer as each culture with its most similar cultures named")
    reasons: bool = setting(False, "also generate a one-sentence reason for each aware answer")
    seed: int = setting(0)


@dataclass
class Select(Section):
    key: ClassVar[str] = "select"
    criterion: str = setting(
        "differ", "differ (the paper's) or divergence (JS distance >= threshold)", choices=("differ", "divergence")
    )
    threshold: float = setting(0.1, "for criterion divergence", low=0, high=1)


@dataclass
class SpaTrain(Train):
    target: str = setting(
        "code",
        "code (the paper: one sampled aware code as the reply) or distribution (the option distribution, soft label)",
        choices=("code", "distribution"),
    )
    min_examples: int = setting(8, "fewer kept pairs than this: nothing is trained, the base model is reported")
    soft: dict = library(SOFT_DEFAULTS, "the soft-label trainer (target: distribution)")


@dataclass
class SpaEval(Eval):
    general: bool = setting(True, "general-ability check after tuning: next-token KL and multiple-choice agreement")


@dataclass
class Config(Section):
    """CultureSPA: self-pluralising culture alignment (Xu et al., NAACL 2025)."""

    out: str = setting("runs/culturespa", "the run folder")
    survey: str = setting("../shared/data/wvs7", "survey folder (README: Survey data)")
    cultures: list[str] = setting(["DEU", "CHN", "NGA"], "ISO 3166 alpha-3 codes")
    generator: EngineSpec = engine("generator", "writes and answers the questions (self-alignment: the student)")
    student: EngineSpec = student()
    questions: Questions = section(Questions)
    dedup: Dedup = section(Dedup)
    answers: Answers = section(Answers)
    select: Select = section(Select)
    train: SpaTrain = section(SpaTrain)
    eval: SpaEval = section(SpaEval)


CONFIG = Config
STAGES = ("generate-questions", "dedup", "answer", "select", "training-data", "train", "eval")


def data_steps(cfg: Config, survey: Survey, cultures: Sequence[Culture], run: RunFolder) -> list:
    """The recipe's record steps, built from the config (the generator engine writes and answers)."""
    engine = cfg.generator.build(run.cache)
    similarity = None
    if cfg.answers.cross_culture:
        if survey.similarity_path is None:
            raise UserError("answers.cross_culture needs country_similarity.json in the survey folder")
        similarity = load_similarity(survey.similarity_path)
    return [
        GenerateQuestions(engine, survey, **cfg.questions.kwargs()),
        Deduplicate([x.text for x in survey.questions.values()], cfg.dedup.threshold),
        AnswerUnawareAware(engine, cultures, similarity=similarity, **cfg.answers.kwargs()),
        SelectCultureRelated(**cfg.select.kwargs()),
        SurveyAnswerSamples(cultures, target=cfg.train.target),
    ]


def run_culturespa(
    config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None
) -> dict[str, Any]:
    """Run the whole recipe; returns the before/after comparison (also in ``eval/comparison.json``)."""
    cfg = load(config, Config, list(overrides))
    survey = load_survey(cfg.survey)
    cultures = parse_cultures(cfg.cultures)
    with recipe_run(cfg, "culturespa", STAGES, redo_from) as run:
        steps = data_steps(cfg, survey, cultures, run)
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        hint = "Generate more questions or try select.criterion=divergence."
        evaluations = [wvs_evaluation(cfg.eval, survey, cultures)]
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
    cfg = load(run_dir / "config.yaml", Config)
    survey = load_survey(cfg.survey)
    cultures = parse_cultures(cfg.cultures)
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
                list(SurveyAnswerSamples(cultures, target=cfg.train.target).run(random_pairs)),
                "joint",
            ),
        }
    with RunFolder(run_dir) as run:
        engines: list[LocalEngine] = []
        wvs = wvs_evaluation(cfg.eval, survey, cultures)
        base = evaluate_on(run, cfg.student, [wvs], engines=engines)["wvs"]
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
