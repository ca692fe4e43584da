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
from pathlib import Path
from typing import Any

from culturealign.config import Rule, load_config
from culturealign.cultures import Culture, parse_cultures
from culturealign.data.hofstede import load_hofstede
from culturealign.data.survey import Survey, load_survey
from culturealign.data.value_axes import axis_positions
from culturealign.evaluate.base import Evaluation
from culturealign.evaluate.individual import Individuals, load_respondents
from culturealign.evaluate.wvs import WVSItem, divergences
from culturealign.llm.spec import ENGINE_SECTION
from culturealign.recipes.common import (
    data_redo,
    engines_from,
    recipe_run,
    show_comparison,
    tune_and_compare,
    wvs_evaluation,
)
from culturealign.runs import RunFolder, write_json
from culturealign.runs.runner import run_steps
from culturealign.runs.store import read_jsonl
from culturealign.steps.intents import AnnotateIntents
from culturealign.steps.judge import JudgeConversations
from culturealign.steps.roleplay import AdaptScenarios, RolePlay, culture_profile
from culturealign.steps.views import DialogueViews
from culturealign.train.lora import SFT_DEFAULTS

log = logging.getLogger(__name__)

ENGINE = {**ENGINE_SECTION}
DEFAULTS: dict[str, Any] = {
    "out": "runs/clca",
    "survey": "../shared/data/wvs7",
    "hofstede": "../shared/data/hofstede",
    "respondents": None,  # the official WVS Wave 7 respondent-level CSV, for the individual-level evaluation
    "cultures": ["GBR", "DEU", "MEX", "CHN", "JPN"],
    "generator": dict(ENGINE),
    "judge": dict(ENGINE),
    "student": {"model": "smollm2", "dtype": "float32", "batch_size": 16},
    "scenarios": {"per_culture": 3, "domains": None, "max_retries": 2, "temperature": 0.7, "seed": 0},
    "roleplay": {"max_turns": 10, "max_retries": 2, "temperature": 0.7, "max_tokens": 80, "lenient": True},
    "filter": {"bad_max": 2, "confidence": 0.7, "min_turns": 2, "calibrate": True},
    "intents": {"enabled": True, "max_retries": 2},
    "train": {
        "mode": "joint",
        "min_examples": 4,
        "qlora": "auto",  # 4-bit quantized LoRA where a CUDA GPU and bitsandbytes are present
        "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
        "sft": {**SFT_DEFAULTS, "num_train_epochs": 3, "learning_rate": 1e-4, "max_length": 1024},
    },
    "eval": {
        "topics": None,
        "limit": None,
        "general": False,
        "general_limit": None,
        "kl_eps": 1e-6,
        "respondents_per_country": 50,
    },
}
# What each key accepts beyond its type (config.COMMON_RULES covers the keys every recipe shares).
RULES = {
    "hofstede": Rule(str, nullable=True),  # null: no Hofstede scores in the prompts
    "roleplay.max_turns": Rule(int, low=1),
    "filter.bad_max": Rule(int, low=1, high=4),
    "filter.confidence": Rule(float, low=0, high=1, open_low=True),
    "filter.min_turns": Rule(int, low=0),
    "train.qlora": Rule(choices=("auto", True, False)),
    "eval.kl_eps": Rule(float, low=0, open_low=True),
    "eval.respondents_per_country": Rule(int, low=1),
    "respondents": Rule(str),
}
STAGES = ("adapt-scenarios", "role-play", "judge", "intents", "views", "train", "eval")


def profiles(cfg: dict, survey: Survey, cultures: Sequence[Culture]) -> dict[str, str]:
    """Culture profiles for personas; a culture without Hofstede scores still works (with a warning)."""
    scores = load_hofstede(cfg["hofstede"]).scores if cfg["hofstede"] else {}
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


def data_steps(cfg: dict, survey: Survey, cultures: Sequence[Culture], run: RunFolder) -> list:
    engine, judge = engines_from(cfg, "generator", "judge", run)
    s, r, f, i = cfg["scenarios"], cfg["roleplay"], cfg["filter"], cfg["intents"]
    steps = [
        AdaptScenarios(
            engine,
            cultures,
            profiles(cfg, survey, cultures),
            s["per_culture"],
            s["domains"],
            s["max_retries"],
            s["temperature"],
            s["seed"],
        ),
        RolePlay(engine, r["max_turns"], r["max_retries"], r["temperature"], r["max_tokens"], r["lenient"], s["seed"]),
        JudgeConversations(judge, f["bad_max"], f["confidence"], f["min_turns"], f["calibrate"]),
    ]
    if i["enabled"]:
        steps.append(AnnotateIntents(judge, i["max_retries"], seed=s["seed"]))
    steps.append(DialogueViews(intents=i["enabled"]))
    return steps


def data_funnel(run_dir: Path) -> dict[str, Any]:
    """Every data step's stats (counts kept and dropped, with reasons), for the run's metrics."""
    import json

    return {
        folder.name: json.loads((folder / "stats.json").read_text())
        for folder in sorted((run_dir / "steps").glob("*"))
        if (folder / "stats.json").is_file()
    }


def _items(folder: Path) -> list[WVSItem]:
    return [WVSItem(**row) for row in read_jsonl(folder / "items.jsonl")] if (folder / "items.jsonl").is_file() else []


def evaluations(cfg: dict, survey: Survey, cultures: Sequence[Culture]) -> list[Evaluation]:
    """WVS, and the individual level when a respondent-level file is given."""
    out: list[Evaluation] = [wvs_evaluation(cfg, survey, cultures)]
    if cfg["respondents"]:
        respondents = load_respondents(cfg["respondents"], survey.questions)
        codes = [c.code for c in cultures]
        out.append(Individuals(respondents, survey.questions, codes, cfg["eval"]["respondents_per_country"]))
    return out


def run_clca(config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None):
    """Run the whole recipe; returns the before/after comparison (also in ``eval/comparison.json``)."""
    cfg = load_config(config, DEFAULTS, list(overrides), RULES)
    survey = load_survey(cfg["survey"])
    cultures = parse_cultures(cfg["cultures"])
    with recipe_run(cfg, "clca", STAGES, redo_from) as run:
        steps = data_steps(cfg, survey, cultures, run)
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        funnel = data_funnel(run.path)
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
        eps = cfg["eval"]["kl_eps"]
        comparison["divergence"] = {
            when: divergences(items, eps)
            for when in ("before", "after")
            if (items := _items(run.eval_dir(f"wvs-{when}")))
        }
        comparison["data"] = {
            "scenarios": funnel.get("01-adapt-scenarios", {}).get("output"),
            "conversations": funnel.get("02-role-play", {}).get("ended_by"),
            "judge": {k: funnel.get("03-judge", {}).get(k) for k in ("total", "kept", "dropped", "dropped_by_reason")},
        }
        write_json(run.path / "eval" / "comparison.json", comparison)
        return comparison


run = run_clca
show = show_comparison
ABLATIONS: tuple[str, ...] = ()
