"""AlignCultura (Kashyap, Dras, Naseem, 2026): an HHH dataset over the UNESCO cultural subdomains, and its benchmark.

Stage I: source queries (a user file, or generated per subdomain x culture) -> multi-label reclassification ->
expansion of thin subdomains -> SimHash near-duplicate removal -> seeded 80/10/10 split with leakage figures ->
two-stage rejection sampling of HHH responses. Optionally LoRA on the train split. Stage II (also on its own:
``culturealign eval hhh``): the HHH benchmark on CulturaX-format data before (and after) tuning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturealign.config import Rule, load_config
from culturealign.cultures import parse_cultures
from culturealign.data.culturax import load_culturax
from culturealign.data.unesco import load_taxonomy
from culturealign.errors import UserError
from culturealign.evaluate.before_after import before_after
from culturealign.evaluate.hhh import HHH
from culturealign.llm.spec import ENGINE_SECTION, EngineSpec
from culturealign.prompting import hhh_prompts
from culturealign.recipes.common import data_redo, engines_from, enough_to_train, recipe_run, record_cost
from culturealign.records import ChatSample, HHHSample
from culturealign.runs import RunFolder, write_json
from culturealign.runs.runner import run_steps, step_dir
from culturealign.steps.hhh import AssignSplits, Expand, GenerateHHHQueries, LoadQueries, Reclassify, RejectionSample
from culturealign.steps.simhash import SimHashDedup
from culturealign.train.lora import LORA_DEFAULTS, SFT_DEFAULTS
from culturealign.train.variants import train_variant

log = logging.getLogger(__name__)

ENGINE = {**ENGINE_SECTION}
DEFAULTS: dict[str, Any] = {
    "out": "runs/alignculture",
    "cultures": ["GBR", "CHN", "IND"],
    "generator": dict(ENGINE),
    "critic": dict(ENGINE),
    "student": {"model": "smollm2", "dtype": "float32", "batch_size": 16},
    "queries": {
        "file": None,  # JSONL/CSV with a question-like column; null = generate per subdomain x culture
        "column": None,
        "subdomains": None,  # ids; null = every subdomain of the taxonomy
        "per_pair": 1,
        "temperature": 0.9,
        "max_retries": 2,
        "seed": 0,
    },
    "reclassify": {"threshold": 0.5, "keep_none": False},
    "expand": {"target": 2, "max_attempts": 2},
    "dedup": {"threshold": 10, "ngram": 3},
    "split": {"fractions": [0.8, 0.1, 0.1], "eval_sets": {"culturax": "../shared/data/culturax"}},
    "responses": {"k": 3, "rounds": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "pass_threshold": 0.5},
    "train": {
        "enabled": False,
        "mode": "joint",
        "min_examples": 4,
        "reference": "helpful",  # helpful | harmless | honest | all: which reference(s) become training replies
        "lora": dict(LORA_DEFAULTS),
        "sft": dict(SFT_DEFAULTS),
    },
    "eval": {"data": "../shared/data/culturax", "limit": 50, "max_tokens": 128, "min_mass": 0.01, "seed": 0},
}
# What each key accepts beyond its type (config.COMMON_RULES covers the keys every recipe shares).
RULES = {
    "queries.file": Rule(str),
    "queries.column": Rule(str),
    "reclassify.threshold": Rule(float, low=0, high=1, open_low=True),
    "expand.target": Rule(int, low=0),
    "expand.max_attempts": Rule(int, low=1),
    "dedup.threshold": Rule(int, low=0, high=64),
    "dedup.ngram": Rule(int, low=1),
    "split.fractions": Rule(each=float, low=0, high=1),
    "responses.k": Rule(int, low=1),
    "responses.rounds": Rule(int, low=0),
    "responses.pass_threshold": Rule(float, low=0, high=1),
    "train.reference": Rule(choices=("helpful", "harmless", "honest", "all")),
    "eval.min_mass": Rule(float, low=0, high=1),
}
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


def data_steps(cfg: dict, run: RunFolder) -> list:
    engine, critic = engines_from(cfg, "generator", "critic", run)
    taxonomy = load_taxonomy()
    q = cfg["queries"]
    if q["subdomains"]:
        known = {s.id for s in taxonomy}
        unknown = [s for s in q["subdomains"] if s not in known]
        if unknown:
            raise UserError(f"unknown subdomains {unknown}: known are {', '.join(sorted(known))}")
        chosen = [s for s in taxonomy if s.id in q["subdomains"]]
    else:
        chosen = taxonomy
    source = (
        LoadQueries(q["file"], q["column"])
        if q["file"]
        else GenerateHHHQueries(
            engine,
            chosen,
            parse_cultures(cfg["cultures"]),
            q["per_pair"],
            q["temperature"],
            q["max_retries"],
            q["seed"],
        )
    )
    r, d, s, rs = cfg["reclassify"], cfg["dedup"], cfg["split"], cfg["responses"]
    eval_sets = {name: eval_set_texts(path) for name, path in (s["eval_sets"] or {}).items()}
    return [
        source,
        Reclassify(engine, taxonomy, r["threshold"], r["keep_none"]),
        Expand(engine, chosen, cfg["expand"]["target"], cfg["expand"]["max_attempts"], seed=q["seed"]),
        SimHashDedup(lambda x: x.text, threshold=d["threshold"], ngram=d["ngram"]),
        AssignSplits(q["seed"], s["fractions"], d["threshold"], eval_sets),
        RejectionSample(
            engine,
            critic,
            rs["k"],
            rs["rounds"],
            rs["temperature"],
            rs["top_p"],
            rs["max_tokens"],
            rs["pass_threshold"],
            q["seed"],
        ),
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
    cfg = load_config(config, DEFAULTS, list(overrides), RULES)
    ev = cfg["eval"]
    items, skipped = load_culturax(ev["data"])
    items = seeded_slice(items, ev["limit"], ev["seed"])
    with recipe_run(cfg, "alignculture", STAGES, redo_from) as run:
        steps = data_steps(cfg, run)
        samples = run_steps(steps, run.path, redo_from=data_redo(redo_from))
        train = training_samples(samples, cfg["train"]["reference"])
        comparison: dict[str, Any] = {"dataset": len(samples), "train_examples": len(train), "trained": False}
        comparison["funnel"] = {st.name: _stats(run.path, i, st.name) for i, st in enumerate(steps, 1)}
        adapters = {}
        if cfg["train"]["enabled"] and enough_to_train(train, cfg, "(train-split examples)"):
            adapters = train_variant(run.path, "hhh", train, cfg, "joint")
            comparison["trained"] = True
        train_texts = [s.query.text for s in samples if s.query.split == "train"]
        hhh = HHH(
            items,
            steps[-1].critic,
            ev["max_tokens"],
            ev["min_mass"],
            train_texts,
            notes={"data_skipped": dict(skipped)},
        )
        engines: list = []
        result = before_after(run, cfg["student"], [hhh], adapters, "joint", engines)["hhh"]
        comparison["hhh_before"] = result.before.metrics
        if result.after is not None:
            comparison["hhh_after"] = result.after.metrics
        comparison["hhh"] = result.table
        write_json(run.path / "eval" / "comparison.json", comparison)
        # the writer and the critic, as the last step holds them (the first has none when queries come from a file)
        record_cost(run, [steps[-1].generator, steps[-1].critic, *engines])
        return comparison


def _stats(run_dir: Path, index: int, name: str) -> dict:
    import json

    path = step_dir(run_dir, index, name) / "stats.json"
    return json.loads(path.read_text()) if path.is_file() else {}


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
) -> dict[str, Any]:
    """``culturealign eval hhh``: the HHH benchmark of any model with any judge; writes ``eval/hhh/``.

    ``safety_classifier``: a Hugging Face text-classification model to judge safety instead of the LLM judge.
    """
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
            items, judge, max_tokens, train_texts=train_texts, safety=safety, notes={"data_skipped": dict(skipped)}
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
        f"dataset: {result['dataset']} items; splits {f.get('split', {}).get('sizes')}; leakage "
        f"{f.get('split', {}).get('leakage')}; {result['train_examples']} training examples"
        + (" (trained)" if result["trained"] else "")
    ]
    for when in ("before", "after"):
        if f"hhh_{when}" in result:
            out.append(format_metrics(HHH, result[f"hhh_{when}"], f"HHH benchmark, {when} tuning"))
    return out
