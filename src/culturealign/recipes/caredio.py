"""CAReDiO (Yao et al., arXiv 2504.08820) as a composition of steps, in this project's reading of the paper.

generate queries (34 everyday-culture topics) -> optimize their culture-relatedness in context -> drop queries
that duplicate an evaluation question (WVS, BLEnD of the evaluated cultures) or each other -> K persona responses
per (query, culture), keep the most distinctive the judge accepts -> optimize the responses' distinctiveness in
context -> select N per culture by facility-location coverage + distinctiveness -> LoRA -> WVS and BLEnD
before/after. The objectives are plain functions in ``culturealign.steps.objectives`` (swap them there); see the
README for their definitions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from culturealign.config import Section, load, setting
from culturealign.cultures import Culture, get_culture, load_similarity, parse_cultures, related_cultures
from culturealign.data.blend import load_blend, region_for
from culturealign.data.survey import Survey, load_survey
from culturealign.errors import UserError
from culturealign.evaluate.base import Evaluation
from culturealign.evaluate.blend import Blend
from culturealign.llm.spec import EngineSpec
from culturealign.recipes.common import (
    Eval,
    Train,
    data_redo,
    engine,
    engines_from,
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
from culturealign.runs import RunFolder
from culturealign.runs.runner import run_steps, step_records
from culturealign.steps.caredio import GenerateQueries, OptimizeQueries, OptimizeResponses, RespondDistinctive
from culturealign.steps.dedup import Deduplicate
from culturealign.steps.representative import SelectRepresentativeDistinctive


@dataclass
class Queries(Section):
    key: ClassVar[str] = "queries"
    topics: list[str] | None = setting(None, "null = the 34 shipped everyday-culture topics")
    per_topic: int = setting(1)
    temperature: float = setting(0.9)
    max_tokens: int = setting(64)
    max_retries: int = setting(3)
    seed: int = setting(0)


@dataclass
class Optimize(Section):
    key: ClassVar[str] = "optimize"
    rounds: int = setting(
        2, "in-context rewriting rounds of the queries (culture-relatedness), then as many of the responses", low=0
    )
    min_gain: float = setting(
        0.0, "stop the query rounds when one raises the mean relatedness (nats, per byte) by this or less", low=0
    )
    response_min_gain: float = setting(
        0.0, "stop the response rounds when one raises the mean distinctiveness (nats) by this or less", low=0
    )
    rewrite_fraction: float = setting(
        0.5,
        "the lowest-scoring share rewritten each round (of the queries; of each culture's responses)",
        low=0,
        high=1,
    )
    samples: int = setting(3, "sampled answers per query for the relatedness estimate", low=1)


@dataclass
class Dedup(Section):
    key: ClassVar[str] = "dedup"
    threshold: float = setting(
        0.9,
        "cosine similarity (all-MiniLM-L6-v2) at which a query duplicates an evaluation question or a kept query",
        low=0,
        high=1,
        open_low=True,
    )


@dataclass
class Responses(Section):
    key: ClassVar[str] = "responses"
    candidates: int = setting(3, "K persona responses per (query, culture)", low=1)
    temperature: float = setting(0.8)
    max_tokens: int = setting(96)
    related_k: int = setting(2, "R(c): the most similar cultures by survey similarity", low=0)
    judge_threshold: float = setting(0.5, "P(Yes) that the response is helpful and faithful", low=0, high=1)


@dataclass
class Select(Section):
    key: ClassVar[str] = "select"
    n: int = setting(100, "samples per culture (the paper: 100-200)", low=1)
    lam: float = setting(0.5, "weight of the z-scored distinctiveness against coverage", low=0)
    method: str = setting("lazy", "lazy | stochastic | naive greedy", choices=("naive", "lazy", "stochastic"))


@dataclass
class CaredioEval(Eval):
    blend_limit: int | None = setting(50, "BLEnD questions per region")


@dataclass
class Config(Section):
    """CAReDiO: cultural conversations optimized for representativeness and distinctiveness (Yao et al., 2025)."""

    out: str = setting("runs/caredio", "the run folder")
    survey: str = setting("../shared/data/wvs7", "survey folder: evaluation, and culture similarity for R(c)")
    blend: str | None = setting(
        "../shared/data/blend", "BLEnD folder: before/after accuracy where BLEnD covers the culture", nullable=True
    )
    cultures: list[str] = setting(["GBR", "CHN"], "ISO 3166 alpha-3 codes")
    generator: EngineSpec = engine("generator", "writes queries and responses (an openai engine scores completions "
                                                "with chat_template_from: the served model's tokenizer)")  # fmt: skip
    judge: EngineSpec = engine("judge", "judges responses (the same model is loaded once)")
    student: EngineSpec = student()
    queries: Queries = section(Queries)
    optimize: Optimize = section(Optimize)
    dedup: Dedup = section(Dedup)
    responses: Responses = section(Responses)
    select: Select = section(Select)
    train: Train = section(Train)
    eval: CaredioEval = section(CaredioEval)


CONFIG = Config
STAGES = (
    "generate-queries",
    "optimize-queries",
    "dedup",
    "respond",
    "optimize-responses",
    "select-representative",
    "train",
    "eval",
)


def related_map(cultures: Sequence[Culture], survey: Survey, k: int) -> dict[str, list[Culture]]:
    """R(c): the k most similar cultures by survey similarity; the other target cultures where c has none."""
    similarity = load_similarity(survey.similarity_path) if survey.similarity_path else {}
    out = {}
    for c in cultures:
        similar, _ = related_cultures(c.code, similarity, k) if c.code in similarity else ([], [])
        out[c.code] = [get_culture(x) for x in similar] or [o for o in cultures if o.code != c.code][:k]
    return out


def evaluation_questions(survey: Survey, blend: str | None, regions: Sequence[str]) -> list[str]:
    """What generated queries must not repeat: every survey question and the BLEnD questions of ``regions``."""
    return [q.text for q in survey.questions.values()] + [q.question for r in regions for q in load_blend(blend, r)]


def data_steps(
    cfg: Config, survey: Survey, cultures: Sequence[Culture], run: RunFolder, reference: Sequence[str] = ()
) -> list:
    """The recipe's record steps; ``reference`` holds the evaluation questions the queries are deduplicated against."""
    engine, judge = engines_from(cfg.generator, cfg.judge, run)
    seed, o, r = cfg.queries.seed, cfg.optimize, cfg.responses
    related = related_map(cultures, survey, r.related_k)
    return [
        GenerateQueries(engine, **cfg.queries.kwargs()),
        OptimizeQueries(engine, cultures, **o.kwargs("response_min_gain"), seed=seed),
        Deduplicate(reference, cfg.dedup.threshold),
        RespondDistinctive(engine, judge, cultures, related, **r.kwargs("related_k"), seed=seed),
        OptimizeResponses(
            engine,
            judge,
            cultures,
            related,
            rounds=o.rounds,
            min_gain=o.response_min_gain,
            rewrite_fraction=o.rewrite_fraction,
            temperature=r.temperature,
            max_tokens=r.max_tokens,
            judge_threshold=r.judge_threshold,
            seed=seed,
        ),
        SelectRepresentativeDistinctive(
            sample_text,
            lambda x: x.meta["culture"],
            lambda x: x.meta["distinctiveness"],
            k=cfg.select.n,
            **cfg.select.kwargs("n"),
            seed=seed,
        ),
    ]


def sample_text(sample: ChatSample) -> str:
    """What a conversation is embedded as for coverage: the query and the response."""
    return f"{sample.messages[-2]['content']}\n{sample.messages[-1]['content']}"


def run_caredio(config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None):
    """Run the whole recipe; returns the before/after comparison (also in ``eval/comparison.json``)."""
    cfg = load(config, Config, list(overrides))
    survey = load_survey(cfg.survey)
    cultures = parse_cultures(cfg.cultures)
    blend = {}
    if cfg.blend and Path(cfg.blend).is_dir():
        blend = {c.code: r for c in cultures if (r := region_for(cfg.blend, c.code, c.name))}
    with recipe_run(cfg, "caredio", STAGES, redo_from) as run:
        steps = data_steps(cfg, survey, cultures, run, evaluation_questions(survey, cfg.blend, list(blend.values())))
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        evaluations: list[Evaluation] = [wvs_evaluation(cfg.eval, survey, cultures)]
        if blend:
            evaluations.append(Blend(cfg.blend, blend, cfg.eval.blend_limit))
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
    cfg = load(run_dir / "config.yaml", Config)
    survey, cultures = load_survey(cfg.survey), parse_cultures(cfg.cultures)
    candidates = step_records(run_dir, "optimize-responses", "caredio run")  # what the selection chose from
    rng = random.Random(0)
    random_set: list[ChatSample] = []
    for c in cultures:  # same budget per culture as the selection
        pool = [s for s in candidates if s.meta["culture"] == c.code]
        random_set += rng.sample(pool, sum(s.meta["culture"] == c.code for s in selected))
    pools = {c.code: [s for s in candidates if s.meta["culture"] == c.code] for c in cultures}
    embeddings = {code: embed([sample_text(s) for s in pool]) for code, pool in pools.items()}  # once per culture
    results: dict[str, Any] = {}
    wvs = wvs_evaluation(cfg.eval, survey, cultures)
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
            after = train_and_evaluate(run, cfg, wvs, f"ablation-{name}", chosen, cfg.train.mode, out_dir, engines)
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
