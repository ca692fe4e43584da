"""AlignCultura (Kashyap, Dras, Naseem, 2026): an HHH dataset over the UNESCO cultural subdomains, and its benchmark.

Stage I: source queries (a user file, or generated per subdomain x culture) -> multi-label reclassification ->
expansion of thin subdomains -> SimHash removal of near-duplicates and of queries near an evaluation item -> seeded
80/10/10 split with leakage figures -> two-stage rejection sampling of HHH responses. Optionally LoRA on the train
split. Stage II (also on its own: ``culturealign eval hhh``): the HHH benchmark on CulturaX-format data before (and
after) tuning.

When the queries are CulturaX itself (``queries.file`` is the file ``eval.data`` names: the paper's setting), the
benchmark runs on the CulturaX items of the held-out test split only, and CulturaX is no reference of the dedup
(every query would leak): the split's ``test_vs_train`` leakage is then the figure that counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from culturealign.config import Section, load, setting
from culturealign.cultures import parse_cultures
from culturealign.data.culturax import culturax_file, load_culturax
from culturealign.data.unesco import load_taxonomy
from culturealign.errors import UserError
from culturealign.evaluate.before_after import before_after
from culturealign.evaluate.hhh import HHH, check_sampling
from culturealign.llm.spec import EngineSpec
from culturealign.prompting import hhh_prompts
from culturealign.recipes.common import (
    Train,
    data_redo,
    engine,
    engines_from,
    enough_to_train,
    recipe_run,
    record_cost,
    section,
    student,
)
from culturealign.records import ChatSample, HHHItem, HHHQuery, HHHSample
from culturealign.runs import RunFolder, write_json
from culturealign.runs.runner import run_steps, step_records, step_stats
from culturealign.steps.hhh import AssignSplits, Expand, GenerateHHHQueries, LoadQueries, Reclassify, RejectionSample
from culturealign.steps.simhash import SimHashDedup
from culturealign.train.variants import train_variant

log = logging.getLogger(__name__)


@dataclass
class Queries(Section):
    key: ClassVar[str] = "queries"
    file: str | None = setting(
        None, "JSONL/CSV with a question-like column; null = generate per subdomain x culture", type=str
    )
    column: str | None = setting(
        None, "the file's question column (null: question, query, prompt, instruction, text or input)", type=str
    )
    subdomains: list[str] | None = setting(None, "UNESCO subdomain ids; null = every subdomain of the taxonomy")
    per_pair: int = setting(1, "queries generated per (subdomain, culture)")
    temperature: float = setting(0.9)
    max_retries: int = setting(2)
    seed: int = setting(0)


@dataclass
class ReclassifySection(Section):
    key: ClassVar[str] = "reclassify"
    threshold: float = setting(
        0.5, "P(Yes) for a subdomain label (the paper: delta 0.5)", low=0, high=1, open_low=True
    )
    keep_none: bool = setting(False, "keep queries that fit no subdomain")


@dataclass
class ExpandSection(Section):
    key: ClassVar[str] = "expand"
    target: int = setting(2, "queries wanted per subdomain; thinner ones are expanded", low=0)
    max_attempts: int = setting(2, low=1)


@dataclass
class Dedup(Section):
    key: ClassVar[str] = "dedup"
    threshold: int = setting(
        10, "SimHash Hamming distance (of 64 bits) at which two texts are near duplicates", low=0, high=64
    )
    ngram: int = setting(3, "word n-grams hashed", low=1)


@dataclass
class Split(Section):
    key: ClassVar[str] = "split"
    fractions: list[float] = setting([0.8, 0.1, 0.1], "train / val / test", each=float, low=0, high=1)
    eval_sets: dict = setting(
        {"culturax": "../shared/data/culturax"},
        "evaluation sets: queries near their items are removed (simhash-dedup), the leakage left is reported",
    )


@dataclass
class Responses(Section):
    key: ClassVar[str] = "responses"
    k: int = setting(3, "candidates per query (two-stage rejection sampling)", low=1)
    rounds: int = setting(2, "regeneration rounds with the critic's feedback", low=0)
    temperature: float = setting(0.7)
    top_p: float = setting(0.9)
    max_tokens: int = setting(512)
    pass_threshold: float = setting(0.5, "the critic's P(Yes) a response needs on each axis", low=0, high=1)


@dataclass
class AlignTrain(Train):
    enabled: bool = setting(False, "LoRA on the train split (Stage I data), then the benchmark before/after")
    reference: str = setting(
        "helpful", "which reference(s) become training replies", choices=("helpful", "harmless", "honest", "all")
    )


@dataclass
class AlignEval(Section):
    key: ClassVar[str] = "eval"
    data: str = setting("../shared/data/culturax", "CulturaX (CSV or folder): the HHH benchmark's items")
    limit: int | None = setting(50, "benchmark items (a seeded sample); null = all")
    max_tokens: int = setting(128)
    min_mass: float = setting(
        0.01, "a judge verdict with less probability on the allowed answers fails", low=0, high=1
    )
    seed: int = setting(0, "the items' seeded sample, and the answers' sampling seeds (run r: seed * 100 + r)")
    runs: int = setting(1, "answer runs averaged, with their SD and min-max (the paper: 3, sampled)", low=1)
    temperature: float = setting(0.0, "0 = greedy (the CPU demo); the paper: 0.7", low=0)
    top_p: float = setting(1.0, "the paper: 0.9", low=0, high=1, open_low=True)
    repetition_penalty: float = setting(1.0, "1.0 = none; the paper: 1.1", low=0, open_low=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.runs > 1 and self.temperature == 0:
            raise UserError(
                f"eval.runs={self.runs} with eval.temperature=0 would repeat the same greedy answers: set "
                "eval.temperature > 0 (the paper: eval.runs=3 eval.temperature=0.7 eval.top_p=0.9 "
                "eval.repetition_penalty=1.1) or eval.runs=1"
            )

    def sampling(self) -> dict[str, Any]:
        """The HHH benchmark's answer settings, as its keyword arguments."""
        return self.kwargs("data", "limit", "max_tokens", "min_mass")


@dataclass
class Config(Section):
    """AlignCultura (Kashyap, Dras, Naseem, 2026): UNESCO-grounded HHH data and its benchmark."""

    out: str = setting("runs/alignculture", "the run folder")
    cultures: list[str] = setting(["GBR", "CHN", "IND"], "ISO 3166 alpha-3 codes")
    generator: EngineSpec = engine("generator", "writes, reclassifies and expands queries, and answers them")
    critic: EngineSpec = engine("critic", "the HHH critic of rejection sampling, and the benchmark's judge")
    student: EngineSpec = student()
    queries: Queries = section(Queries)
    reclassify: ReclassifySection = section(ReclassifySection)
    expand: ExpandSection = section(ExpandSection)
    dedup: Dedup = section(Dedup)
    split: Split = section(Split)
    responses: Responses = section(Responses)
    train: AlignTrain = section(AlignTrain)
    eval: AlignEval = section(AlignEval)


CONFIG = Config
STAGES = (
    "load-queries",
    "generate-hhh-queries",
    "reclassify",
    "expand",
    "simhash-dedup",
    "split",
    "rejection-sample",
    "train",
    "eval",
)


def eval_set_texts(path: str | Path) -> list[str]:
    """Questions of an evaluation set named in the config (a CulturaX CSV or folder, or any question file)."""
    from culturealign.steps.hhh import read_questions

    path = Path(path)
    if path.is_dir() or path.name.lower().startswith("culturax"):
        return [it.question for it in load_culturax(path)[0]]
    return read_questions(path)[0]


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two config paths (a CulturaX path may name its folder) are one file."""
    if not a or not b:
        return False
    a, b = culturax_file(a), culturax_file(b)
    try:
        return a.samefile(b)
    except OSError:  # one of them does not exist (yet): compare the paths
        return a.resolve() == b.resolve()


def data_steps(cfg: Config, run: RunFolder, benchmark: Sequence[str] = ()) -> list:
    """The Stage I steps. Queries near a ``benchmark`` question or an item of ``split.eval_sets`` are removed by the
    dedup; a set that is the queries' own file is no reference (the held-out split keeps it clean instead)."""
    engine, critic = engines_from(cfg.generator, cfg.critic, run)
    taxonomy = load_taxonomy()
    q = cfg.queries
    if q.subdomains:
        known = {s.id for s in taxonomy}
        unknown = [s for s in q.subdomains if s not in known]
        if unknown:
            raise UserError(f"unknown subdomains {unknown}: known are {', '.join(sorted(known))}")
        chosen = [s for s in taxonomy if s.id in q.subdomains]
    else:
        chosen = taxonomy
    source = (
        LoadQueries(q.file, q.column)
        if q.file
        else GenerateHHHQueries(
            engine, chosen, parse_cultures(cfg.cultures), q.per_pair, q.temperature, q.max_retries, q.seed
        )
    )
    eval_sets = {
        name: eval_set_texts(path) for name, path in (cfg.split.eval_sets or {}).items() if not same_file(path, q.file)
    }
    reference = list(dict.fromkeys([*benchmark, *(t for texts in eval_sets.values() for t in texts)]))
    return [
        source,
        Reclassify(engine, taxonomy, **cfg.reclassify.kwargs()),
        Expand(engine, chosen, **cfg.expand.kwargs(), seed=q.seed),
        SimHashDedup(lambda x: x.text, **cfg.dedup.kwargs(), reference_texts=reference),
        AssignSplits(q.seed, cfg.split.fractions, cfg.dedup.threshold, eval_sets),
        RejectionSample(engine, critic, **cfg.responses.kwargs(), seed=q.seed),
    ]


def training_samples(samples: Sequence[HHHSample], reference: str) -> list[ChatSample]:
    """Chat samples of the train split: the answer system prompt, the query, a reference as the reply."""
    axes = ("helpful", "harmless", "honest") if reference == "all" else (reference,)
    if any(a not in ("helpful", "harmless", "honest") for a in axes):
        raise UserError(f"train.reference must be helpful, harmless, honest or all, got {reference!r}")
    system = {"role": "system", "content": hhh_prompts()["answer_system"]}
    return [
        ChatSample(
            [system, {"role": "user", "content": s.query.text}, {"role": "assistant", "content": getattr(s, a)}],
            {"culture": s.query.culture or "any", "labels": s.query.labels, "axis": a},
        )
        for s in samples
        if s.query.split == "train"
        for a in axes
    ]


def run_alignculture(config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None):
    """Build the dataset, optionally tune on it, benchmark before/after; returns ``eval/comparison.json``'s dict."""
    cfg = load(config, Config, list(overrides))
    ev = cfg.eval
    items, skipped = load_culturax(ev.data)
    held_out = same_file(cfg.queries.file, ev.data)  # the paper's setting: the queries are CulturaX itself
    with recipe_run(cfg, "alignculture", STAGES, redo_from) as run:
        steps = data_steps(cfg, run, [] if held_out else [it.question for it in items])
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        notes: dict[str, Any] = {"data_skipped": dict(skipped)}
        if held_out:
            items, notes["benchmark_split"] = held_out_items(items, step_records(run.path, "split"))
        items = seeded_slice(items, ev.limit, ev.seed)
        train = training_samples(samples, cfg.train.reference)
        comparison: dict[str, Any] = {"dataset": len(samples), "train_examples": len(train), "trained": False}
        comparison["funnel"] = {st.name: {} for st in steps} | step_stats(run.path, steps)
        adapters = {}
        if cfg.train.enabled and enough_to_train(train, cfg.train.min_examples, "(train-split examples)"):
            adapters = train_variant(run.path, "hhh", train, cfg.student.model, cfg.train, "joint")
            comparison["trained"] = True
        train_texts = [s.query.text for s in samples if s.query.split == "train"]
        hhh = HHH(items, steps[-1].critic, ev.max_tokens, ev.min_mass, train_texts, notes=notes, **ev.sampling())
        engines: list = []
        result = before_after(run, cfg.student, [hhh], adapters, "joint", engines)["hhh"]
        comparison["hhh_before"] = result.before.metrics
        if result.after is not None:
            comparison["hhh_after"] = result.after.metrics
        comparison["hhh"] = result.table
        write_json(run.path / "eval" / "comparison.json", comparison)
        # the writer and the critic, as the last step holds them (the first has none when queries come from a file)
        record_cost(run, [steps[-1].generator, steps[-1].critic, *engines])
        return comparison


def held_out_items(items: Sequence[HHHItem], queries: Sequence[HHHQuery]) -> tuple[list[HHHItem], dict[str, int]]:
    """The CulturaX items whose question the split step put in ``test`` (never a train or val question, nor one the
    steps before dropped), and how many items the file and the test split held."""
    test = {q.text for q in queries if q.split == "test"}
    kept = [it for it in items if it.question in test]
    if not kept:
        raise UserError(
            f"no CulturaX question reached the test split ({len(test)} test queries): the benchmark runs on the "
            "held-out split when queries.file is eval.data; raise split.fractions' test share or use more queries"
        )
    return kept, {"split": "test", "items_in_file": len(items), "test_queries": len(test), "items": len(kept)}


def seeded_slice(items: list, limit: int | None, seed: int) -> list:
    """A seeded slice of ``limit`` items (file order kept)."""
    import random

    if limit is None or limit >= len(items):
        return items
    keep = set(random.Random(seed).sample(range(len(items)), limit))
    return [it for i, it in enumerate(items) if i in keep]


def eval_hhh(
    data: str | Path,
    model: str = "smollm2",
    adapter: str | None = None,
    judge_model: str | None = None,
    engine: str = "local",
    base_url: str | None = None,
    judge_engine: str | None = None,
    judge_base_url: str | None = None,
    limit: int | None = 50,
    max_tokens: int = 128,
    train_data: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    safety_classifier: str | None = None,
    runs: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
) -> dict[str, Any]:
    """``culturealign eval hhh``: the HHH benchmark of any model with any judge; writes ``eval/hhh/``.

    ``safety_classifier``: a Hugging Face text-classification model to judge safety instead of the LLM judge.
    ``runs`` answer runs sampled with ``temperature``, ``top_p``, ``repetition_penalty`` are averaged (greedy, one
    run by default; the paper: 3 runs, 0.7, 0.9, 1.1).
    """
    check_sampling(runs, temperature, top_p, repetition_penalty)
    items, skipped = load_culturax(data)
    items = seeded_slice(items, limit, seed)
    out = Path(out or f"runs/eval-hhh-{time.strftime('%Y%m%d-%H%M%S')}")
    config = {
        "command": "eval hhh",
        "data": str(data),
        "model": model,
        "adapter": adapter,
        "engine": engine,
        "base_url": base_url,
        "judge_model": judge_model or model,
        "judge_engine": judge_engine or engine,
        "judge_base_url": judge_base_url or base_url,
        "limit": limit,
        "max_tokens": max_tokens,
        "train_data": str(train_data) if train_data else None,
        "seed": seed,
        "safety_classifier": safety_classifier,
        "runs": runs,
        "temperature": temperature,
        "top_p": top_p,
        "repetition_penalty": repetition_penalty,
    }
    train_texts = eval_set_texts(train_data) if train_data else None
    start = time.time()
    with RunFolder(out) as run:
        run.write_config(config)
        tested = EngineSpec(engine, model, adapter, base_url).build(run.cache)
        same = judge_model in (None, model) and judge_engine in (None, engine) and not adapter
        judge = (
            tested
            if same
            else EngineSpec(
                config["judge_engine"] or engine, config["judge_model"] or model, None, config["judge_base_url"]
            ).build(run.cache)
        )
        from culturealign.evaluate.hhh import HFSafetyClassifier

        safety = HFSafetyClassifier(safety_classifier) if safety_classifier else None
        hhh = HHH(
            items,
            judge,
            max_tokens,
            train_texts=train_texts,
            safety=safety,
            notes={"data_skipped": dict(skipped)},
            runs=runs,
            temperature=temperature,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
        )
        result = hhh.run(tested)
        result.save(run.eval_dir("hhh"))
        record_cost(run, [tested] if judge is tested else [tested, judge])
        from culturealign.runs.store import write_cost_seconds

        write_cost_seconds(run.path, time.time() - start)
    return result.metrics


run = run_alignculture
ABLATIONS: tuple[str, ...] = ()


def show(result: dict[str, Any]) -> list[Any]:
    """The dataset's funnel line, then the HHH benchmark before (and after) tuning."""
    from culturealign.evaluate.base import format_metrics

    f = result["funnel"]
    out: list[Any] = [
        f"dataset: {result['dataset']} items; {f.get('simhash-dedup', {}).get('leaked')} queries near evaluation "
        f"items removed; splits {f.get('split', {}).get('sizes')}; leakage {f.get('split', {}).get('leakage')}; "
        f"{result['train_examples']} training examples" + (" (trained)" if result["trained"] else "")
    ]
    for when in ("before", "after"):
        if f"hhh_{when}" in result:
            out.append(format_metrics(HHH, result[f"hhh_{when}"], f"HHH benchmark, {when} tuning"))
    return out
