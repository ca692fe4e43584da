"""CAReDiO (Yao et al., arXiv 2504.08820) as a composition of steps, in this project's reading of the paper.

generate queries (34 everyday-culture topics) -> optimize their culture-relatedness in context -> K persona
responses per (query, culture), keep the most distinctive the judge accepts -> select N per culture by
facility-location coverage + distinctiveness -> LoRA -> WVS and BLEnD before/after. The objectives are plain
functions in ``culturealign.steps.objectives`` (swap them there); see the README for their definitions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturealign.config import Rule, load_config
from culturealign.cultures import Culture, get_culture, load_similarity, parse_cultures, related_cultures
from culturealign.data.blend import region_for
from culturealign.data.survey import Survey, load_survey
from culturealign.errors import UserError
from culturealign.evaluate.base import Evaluation
from culturealign.evaluate.blend import Blend
from culturealign.llm.spec import ENGINE_SECTION
from culturealign.recipes.common import (
    data_redo,
    engines_from,
    recipe_run,
    record_cost,
    show_comparison,
    train_and_evaluate,
    tune_and_compare,
    wvs_evaluation,
)
from culturealign.records import ChatSample
from culturealign.runs import RunFolder
from culturealign.runs.runner import run_steps, step_records
from culturealign.steps.caredio import GenerateQueries, OptimizeQueries, RespondDistinctive
from culturealign.steps.representative import SelectRepresentativeDistinctive
from culturealign.train.lora import LORA_DEFAULTS, SFT_DEFAULTS

# openai engine: chat_template_from is the served model's tokenizer, to score completions
ENGINE = {**ENGINE_SECTION, "chat_template_from": None}
DEFAULTS: dict[str, Any] = {
    "out": "runs/caredio",
    "survey": "../shared/data/wvs7",
    "blend": "../shared/data/blend",
    "cultures": ["GBR", "CHN"],
    "generator": dict(ENGINE),
    "judge": dict(ENGINE),
    "student": {"model": "smollm2", "dtype": "float32", "batch_size": 16},
    "queries": {"topics": None, "per_topic": 1, "temperature": 0.9, "max_retries": 3, "seed": 0},
    "optimize": {"rounds": 2, "min_gain": 0.01, "rewrite_fraction": 0.5, "samples": 3},
    "responses": {"candidates": 3, "temperature": 0.8, "max_tokens": 96, "related_k": 2, "judge_threshold": 0.5},
    "select": {"n": 100, "lam": 0.5, "method": "lazy"},
    "train": {"mode": "joint", "min_examples": 4, "lora": dict(LORA_DEFAULTS), "sft": dict(SFT_DEFAULTS)},
    "eval": {"topics": None, "limit": None, "blend_limit": 50, "general": False, "general_limit": None},
}
# What each key accepts beyond its type (config.COMMON_RULES covers the keys every recipe shares).
RULES = {
    "blend": Rule(str, nullable=True),  # null: no BLEnD evaluation
    "optimize.rounds": Rule(int, low=0),
    "optimize.min_gain": Rule(float, low=0),
    "optimize.rewrite_fraction": Rule(float, low=0, high=1),
    "optimize.samples": Rule(int, low=1),
    "responses.candidates": Rule(int, low=1),
    "responses.related_k": Rule(int, low=0),
    "responses.judge_threshold": Rule(float, low=0, high=1),
    "select.n": Rule(int, low=1),
    "select.lam": Rule(float, low=0),
    "select.method": Rule(choices=("naive", "lazy", "stochastic")),
}
STAGES = ("generate-queries", "optimize-queries", "respond", "select-representative", "train", "eval")


def related_map(cultures: Sequence[Culture], survey: Survey, k: int) -> dict[str, list[Culture]]:
    """R(c): the k most similar cultures by survey similarity; the other target cultures where c has none."""
    similarity = load_similarity(survey.similarity_path) if survey.similarity_path else {}
    out = {}
    for c in cultures:
        similar, _ = related_cultures(c.code, similarity, k) if c.code in similarity else ([], [])
        out[c.code] = [get_culture(x) for x in similar] or [o for o in cultures if o.code != c.code][:k]
    return out


def data_steps(cfg: dict, survey: Survey, cultures: Sequence[Culture], run: RunFolder) -> list:
    engine, judge = engines_from(cfg, "generator", "judge", run)
    q, o, r, s = cfg["queries"], cfg["optimize"], cfg["responses"], cfg["select"]
    return [
        GenerateQueries(
            engine, q["topics"], q["per_topic"], q["temperature"], max_retries=q["max_retries"], seed=q["seed"]
        ),
        OptimizeQueries(engine, cultures, o["rounds"], o["min_gain"], o["rewrite_fraction"], o["samples"], q["seed"]),
        RespondDistinctive(
            engine,
            judge,
            cultures,
            related_map(cultures, survey, r["related_k"]),
            r["candidates"],
            r["temperature"],
            r["max_tokens"],
            r["judge_threshold"],
            q["seed"],
        ),
        SelectRepresentativeDistinctive(
            sample_text,
            lambda x: x.meta["culture"],
            lambda x: x.meta["distinctiveness"],
            s["n"],
            s["lam"],
            s["method"],
            q["seed"],
        ),
    ]


def sample_text(sample: ChatSample) -> str:
    """What a conversation is embedded as for coverage: the query and the response."""
    return f"{sample.messages[-2]['content']}\n{sample.messages[-1]['content']}"


def run_caredio(config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None):
    """Run the whole recipe; returns the before/after comparison (also in ``eval/comparison.json``)."""
    cfg = load_config(config, DEFAULTS, list(overrides), RULES)
    survey = load_survey(cfg["survey"])
    cultures = parse_cultures(cfg["cultures"])
    blend = {}
    if cfg["blend"] and Path(cfg["blend"]).is_dir():
        blend = {c.code: r for c in cultures if (r := region_for(cfg["blend"], c.code, c.name))}
    with recipe_run(cfg, "caredio", STAGES, redo_from) as run:
        steps = data_steps(cfg, survey, cultures, run)
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        evaluations: list[Evaluation] = [wvs_evaluation(cfg, survey, cultures)]
        if blend:
            evaluations.append(Blend(cfg["blend"], blend, cfg["eval"]["blend_limit"]))
        return tune_and_compare(
            run,
            cfg,
            survey,
            evaluations,
            samples,
            [steps[0].engine],
            hint="Generate more queries (queries.per_topic) or lower responses.judge_threshold.",
        )


def ablate_selection(run_dir: str | Path) -> dict[str, Any]:
    """At the same budget N: the selected set vs a random set of the same candidates (coverage, distinctiveness,
    WVS after training). Results in ``eval/ablation-selection/metrics.json``."""
    from culturealign.runs import write_json
    from culturealign.steps.dedup import embed
    from culturealign.steps.objectives import coverage

    run_dir = Path(run_dir)
    selected = step_records(run_dir, "select-representative", "caredio run")
    cfg = load_config(run_dir / "config.yaml", DEFAULTS, rules=RULES)
    survey, cultures = load_survey(cfg["survey"]), parse_cultures(cfg["cultures"])
    candidates = step_records(run_dir, "respond", "caredio run")
    rng = random.Random(0)
    random_set: list[ChatSample] = []
    for c in cultures:  # same budget per culture as the selection
        pool = [s for s in candidates if s.meta["culture"] == c.code]
        random_set += rng.sample(pool, sum(s.meta["culture"] == c.code for s in selected))
    pools = {c.code: [s for s in candidates if s.meta["culture"] == c.code] for c in cultures}
    embeddings = {code: embed([sample_text(s) for s in pool]) for code, pool in pools.items()}  # once per culture
    results: dict[str, Any] = {}
    wvs = wvs_evaluation(cfg, survey, cultures)
    with RunFolder(run_dir) as run:
        engines: list = []
        for name, chosen in (("selected", selected), ("random", random_set)):
            per_culture = {}
            for code, pool in pools.items():
                picked = [i for i, s in enumerate(pool) if s in chosen]
                per_culture[code] = {
                    "coverage": coverage(embeddings[code], picked),
                    "mean_distinctiveness": sum(pool[i].meta["distinctiveness"] for i in picked) / max(len(picked), 1),
                    "n": len(picked),
                }
            out_dir = run.eval_dir("ablation-selection") / name
            after = train_and_evaluate(
                run, cfg, wvs, f"ablation-{name}", chosen, cfg["train"]["mode"], out_dir, engines
            )
            results[name] = {"per_culture": per_culture, "wvs_after": after.metrics["overall"]}
        write_json(run.eval_dir("ablation-selection") / "metrics.json", results)
        record_cost(run, engines)
    return results


run = run_caredio
show = show_comparison
ABLATIONS = ("selection",)


def ablate(run_dir: str | Path, what: str) -> dict[str, Any]:
    """``selection``: the selected set vs a random one at the same budget (see :func:`ablate_selection`)."""
    if what not in ABLATIONS:
        raise UserError(f"caredio runs have one ablation: --what selection, not {what!r}")
    return ablate_selection(run_dir)


def show_ablation(results: dict[str, Any], what: str) -> list[Any]:
    from rich.table import Table

    from culturealign.evaluate.wvs import METRIC_NAMES

    table = Table(title="CAReDiO: selected vs random set at the same budget")
    for col in ("set", "culture", "n", "coverage", "mean distinctiveness", *METRIC_NAMES):
        table.add_column(col)
    for name, res in results.items():
        for code, m in res["per_culture"].items():
            table.add_row(
                name,
                code,
                str(m["n"]),
                f"{m['coverage']:.3f}",
                f"{m['mean_distinctiveness']:.3f}",
                *(f"{res['wvs_after'][k]:.3f}" for k in METRIC_NAMES),
            )
    return [table]
