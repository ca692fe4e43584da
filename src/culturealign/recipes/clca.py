"""CLCA (Liu, Korhonen, Gurevych, ACL 2025): learning culture from simulated social interactions.

adapt generic scenarios to each culture (personas with a culture profile from Hofstede scores and survey value
axes) -> two agents role-play -> a judge rates, critiques and re-rates; the bad are dropped -> a culture
expert annotates intents -> per-speaker and intent-prediction training views -> LoRA (r 4 on q/v, lr 1e-4,
3 epochs; 4-bit where a GPU and bitsandbytes are present) -> WVS before/after with CLCA's JS distance and KL
per question, and the individual-level evaluation when a respondent-level WVS file is given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from culturealign.config import Section, library, load, setting
from culturealign.cultures import Culture, parse_cultures
from culturealign.data.hofstede import load_hofstede
from culturealign.data.survey import Survey, load_survey
from culturealign.data.value_axes import axis_positions
from culturealign.evaluate.base import Evaluation
from culturealign.evaluate.individual import Individuals, load_respondents
from culturealign.evaluate.wvs import WVSItem, divergences
from culturealign.llm.spec import EngineSpec
from culturealign.recipes.common import (
    Eval,
    Train,
    data_redo,
    engine,
    engines_from,
    recipe_run,
    section,
    show_comparison,
    student,
    tune_and_compare,
    wvs_evaluation,
)
from culturealign.runs import RunFolder, write_json
from culturealign.runs.runner import run_steps, step_stats
from culturealign.runs.store import read_jsonl
from culturealign.steps.intents import AnnotateIntents
from culturealign.steps.judge import JudgeConversations
from culturealign.steps.roleplay import AdaptScenarios, RolePlay, culture_profile
from culturealign.steps.views import DialogueViews
from culturealign.train.lora import SFT_DEFAULTS

log = logging.getLogger(__name__)


@dataclass
class Scenarios(Section):
    key: ClassVar[str] = "scenarios"
    per_culture: int = setting(3, "generic scenarios adapted per culture (the bank holds 70)")
    domains: list[str] | None = setting(None, "e.g. [family, work, hospitality]; null = all")
    max_retries: int = setting(2, "re-asks when the setting or a name is missing (then: the generic text)")
    temperature: float = setting(0.7)
    seed: int = setting(0)


@dataclass
class RolePlaySection(Section):
    key: ClassVar[str] = "roleplay"
    max_turns: int = setting(10, "turn pairs", low=1)
    max_retries: int = setting(2, "re-asks of a malformed turn before the conversation is closed")
    temperature: float = setting(0.7)
    max_tokens: int = setting(80)
    lenient: bool = setting(True, "a reply with no action label counts as speech")


@dataclass
class Filter(Section):
    key: ClassVar[str] = "filter"
    bad_max: int = setting(2, "ratings 1..bad_max (of 5) are bad", low=1, high=4)
    confidence: float = setting(
        0.7, "drop when P(bad) >= this for quality or cultural fidelity", low=0, high=1, open_low=True
    )
    min_turns: int = setting(2, low=0)
    calibrate: bool = setting(True, "divide by the judge's ratings of a content-free conversation")
    keep_malformed: bool = setting(
        False, "keep conversations the role-play closed malformed (a turn still unparsable after its re-asks)"
    )


@dataclass
class Intents(Section):
    key: ClassVar[str] = "intents"
    enabled: bool = setting(True, "annotate intents (the intent-prediction training view)")
    method: str = setting(
        "choice",
        "choice: the judge's option scores pick each utterance's intent and cultural norm from fixed lists (any "
        "model); free: CLCA's free-text intents, for a judge that keeps to the format",
        choices=("choice", "free"),
    )
    max_retries: int = setting(2, "method free: re-asks of a reply with no 'Intent:' line")


@dataclass
class ClcaTrain(Train):
    qlora: Any = setting(
        "auto", "4-bit quantized LoRA where a CUDA GPU and bitsandbytes are present", choices=("auto", True, False)
    )
    lora: dict = library({"r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
                         "peft.LoraConfig settings (the paper: r 4 on q/v)")  # fmt: skip
    sft: dict = library({**SFT_DEFAULTS, "num_train_epochs": 3, "learning_rate": 1e-4, "max_length": 1024},
                        "trl.SFTConfig settings (the paper: lr 1e-4, 3 epochs)")  # fmt: skip


@dataclass
class ClcaEval(Eval):
    kl_eps: float = setting(1e-6, "smoothing of KL(people || model)", low=0, open_low=True)
    respondents_per_country: int = setting(50, "respondents sampled per country for the individual level", low=1)


@dataclass
class Config(Section):
    """CLCA: learning culture from simulated social interactions (Liu, Korhonen, Gurevych, ACL 2025)."""

    out: str = setting("runs/clca", "the run folder")
    survey: str = setting("../shared/data/wvs7", "survey folder: evaluation and the cultures' value axes")
    hofstede: str | None = setting(
        "../shared/data/hofstede", "Hofstede scores for culture profiles (null: survey axes only)", nullable=True
    )
    respondents: str | None = setting(
        None, "official WVS Wave 7 respondent CSV: the individual-level evaluation", type=str
    )
    cultures: list[str] = setting(["GBR", "DEU", "MEX", "CHN", "JPN"], "ISO 3166 alpha-3 codes")
    generator: EngineSpec = engine("generator", "adapts scenarios and role-plays both agents")
    judge: EngineSpec = engine("judge", "rates conversations and annotates intents")
    student: EngineSpec = student()
    scenarios: Scenarios = section(Scenarios)
    roleplay: RolePlaySection = section(RolePlaySection)
    filter: Filter = section(Filter)
    intents: Intents = section(Intents)
    train: ClcaTrain = section(ClcaTrain)
    eval: ClcaEval = section(ClcaEval)


CONFIG = Config
STAGES = ("adapt-scenarios", "role-play", "judge", "intents", "views", "train", "eval")


def profiles(cfg: Config, survey: Survey, cultures: Sequence[Culture]) -> dict[str, str]:
    """Culture profiles for personas; a culture without Hofstede scores still works (with a warning)."""
    scores = load_hofstede(cfg.hofstede).scores if cfg.hofstede else {}
    axes = axis_positions(survey)
    out = {}
    for c in cultures:
        if not any(v is not None for v in scores.get(c.code, {}).values()):
            log.warning(
                "no Hofstede scores for %s (%s): its personas' profile uses the survey's value axes only",
                c.code,
                c.name,
            )
        out[c.code] = culture_profile(c, scores.get(c.code), axes.get(c.code))
    return out


def data_steps(cfg: Config, survey: Survey, cultures: Sequence[Culture], run: RunFolder) -> list:
    engine, judge = engines_from(cfg.generator, cfg.judge, run)
    seed = cfg.scenarios.seed
    steps = [
        AdaptScenarios(engine, cultures, profiles(cfg, survey, cultures), **cfg.scenarios.kwargs()),
        RolePlay(engine, **cfg.roleplay.kwargs(), seed=seed),
        JudgeConversations(judge, **cfg.filter.kwargs()),
    ]
    if cfg.intents.enabled:
        steps.append(AnnotateIntents(judge, **cfg.intents.kwargs("enabled"), seed=seed))
    steps.append(DialogueViews(intents=cfg.intents.enabled))
    return steps


def _items(folder: Path) -> list[WVSItem]:
    return [WVSItem(**row) for row in read_jsonl(folder / "items.jsonl")] if (folder / "items.jsonl").is_file() else []


def evaluations(cfg: Config, survey: Survey, cultures: Sequence[Culture]) -> list[Evaluation]:
    """WVS, and the individual level when a respondent-level file is given."""
    out: list[Evaluation] = [wvs_evaluation(cfg.eval, survey, cultures)]
    if cfg.respondents:
        respondents = load_respondents(cfg.respondents, survey.questions)
        codes = [c.code for c in cultures]
        out.append(Individuals(respondents, survey.questions, codes, cfg.eval.respondents_per_country))
    return out


def run_clca(config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None):
    """Run the whole recipe; returns the before/after comparison (also in ``eval/comparison.json``)."""
    cfg = load(config, Config, list(overrides))
    survey = load_survey(cfg.survey)
    cultures = parse_cultures(cfg.cultures)
    with recipe_run(cfg, "clca", STAGES, redo_from) as run:
        steps = data_steps(cfg, survey, cultures, run)
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        funnel = step_stats(run.path, steps)
        write_json(run.eval_dir("clca-data") / "metrics.json", funnel)
        comparison = tune_and_compare(
            run,
            cfg,
            survey,
            evaluations(cfg, survey, cultures),
            samples,
            [steps[0].engine],
            hint="Role-play more scenarios (scenarios.per_culture) or relax the judge (filter.confidence).",
        )
        eps = cfg.eval.kl_eps
        comparison["divergence"] = {
            when: divergences(items, eps)
            for when in ("before", "after")
            if (items := _items(run.eval_dir(f"wvs-{when}")))
        }
        comparison["data"] = {
            "scenarios": funnel.get("adapt-scenarios", {}).get("output"),
            "conversations": funnel.get("role-play", {}).get("ended_by"),
            "judge": {k: funnel.get("judge", {}).get(k) for k in ("total", "kept", "dropped", "dropped_by_reason")},
            "intents": intent_summary(cfg, funnel),
        }
        if (intents := comparison["data"]["intents"])["view_empty"] and intents["enabled"]:
            log.warning(intent_line(intents))
        write_json(run.path / "eval" / "comparison.json", comparison)
        return comparison


def intent_summary(cfg: Config, funnel: dict[str, dict]) -> dict[str, Any]:
    """How much of the intent-prediction view (half of CLCA's training signal) the run produced."""
    stats = funnel.get("intents", {})
    samples = funnel.get("views", {}).get("samples", {})
    keys = ("utterances", "annotated", "annotated_share", "mean_option_mass")
    return {
        "enabled": cfg.intents.enabled,
        "method": cfg.intents.method,
        **{k: stats.get(k) for k in keys},
        "samples": samples.get("intent", 0),
        "view_empty": not samples.get("intent"),
    }


def intent_line(s: dict[str, Any]) -> str:
    """One line on the intent view; it says plainly when the view is empty, and why."""
    if not s["enabled"]:
        return "intent view: empty (intents.enabled=false): the training data has the speaker views only"
    mass = (s["mean_option_mass"] or {}).get("intent")
    how = f"method {s['method']}" + (f", mean probability on the labels {mass:.3g}" if mass is not None else "")
    got = f"{s['annotated']} of {s['utterances']} utterances got an intent ({how})"
    if s["view_empty"]:
        hint = "" if s["method"] == "choice" else "; try intents.method=choice"
        return f"intent view: EMPTY, {got}: the training data has the speaker views only{hint}"
    return f"intent view: {s['samples']} samples, {got}"


def show(result: dict[str, Any]) -> list[Any]:
    """What ``culturealign run`` prints: the before/after comparison, then how full the intent view was."""
    out = show_comparison(result)
    intents = result.get("data", {}).get("intents")
    if intents:  # right after show_comparison's line on the data (its second line when nothing was trained)
        line = intent_line(intents)
        warn = intents["view_empty"] and intents["enabled"]
        out.insert(1 if result["trained"] else 2, f"[yellow]{line}" if warn else line)
    return out


run = run_clca
ABLATIONS: tuple[str, ...] = ()
