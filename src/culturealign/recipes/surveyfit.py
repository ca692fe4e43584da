"""SurveyFit: tune a model on human answer distributions and measure it on survey questions it never saw.

The survey-grounded recipe (in the spirit of SubPOP, Suh et al. 2025, and CultureLLM, Li et al. 2024): split the
answered questions into train / validation / eval by topic and by item battery (:mod:`culturealign.data.split`),
turn each (training question, culture) into a target built from that culture's human answer shares
(:mod:`culturealign.steps.targets`: soft labels or sampled reply codes), train LoRA adapters (one per seed), and
score WVS before/after on the eval questions (the result), the validation questions (for choosing settings) and a
sample of the training questions (the plumbing check), with held-out cultures reported apart. ``ablate RUN --what
controls`` trains the pooled and shuffled controls identically and reports what is culture-specific.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from culturealign.config import Section, library, load, setting
from culturealign.cultures import Culture, parse_cultures
from culturealign.data.split import QuestionSplit, split_questions
from culturealign.data.survey import Survey, load_survey
from culturealign.errors import UserError
from culturealign.evaluate.base import EvalResult, before_after_table, format_before_after
from culturealign.evaluate.before_after import student_engine
from culturealign.evaluate.wvs import WVS, skip_line, summarize, survey_accounts
from culturealign.llm.base import Engine
from culturealign.llm.models import resolve_model
from culturealign.llm.spec import EngineSpec
from culturealign.recipes.common import Train, eval_variants, intervals, recipe_run, record_cost, section, student
from culturealign.records import ChatSample, SoftLabel
from culturealign.runs import RunFolder, write_json
from culturealign.runs.runner import run_steps
from culturealign.runs.store import check_fingerprint, fingerprint
from culturealign.steps.targets import SurveyTargets
from culturealign.train.distribution import SOFT_DEFAULTS, train_distribution, write_soft_labels
from culturealign.train.lora import LORA_DEFAULTS, train_lora, write_training_data

log = logging.getLogger(__name__)


@dataclass
class Split(Section):
    key: ClassVar[str] = "split"
    eval_fraction: float = setting(
        0.3, "share of each topic's questions held out (whole batteries)", low=0, high=1, open_low=True
    )
    validation_fraction: float = setting(0.2, "share of the rest kept for choosing settings", low=0, high=1)
    seed: int = setting(0)
    topics: list[str] | None = setting(None, "null = every topic the survey answers")


@dataclass
class FitTrain(Train):
    target: str = setting(
        "distribution",
        "distribution (soft labels: the human shares) or samples (K sampled codes)",
        choices=("distribution", "samples"),
    )
    samples_per_item: int = setting(4, "K reply codes per (question, culture), for target: samples", low=1)
    seeds: list[int] = setting([0], "one adapter per seed; several give the spread over seeds", each=int)
    min_examples: int = setting(8, "fewer examples than this: the run stops")
    lora: dict = library({**LORA_DEFAULTS, "r": 16, "lora_alpha": 32}, "peft.LoraConfig settings")
    soft: dict = library(SOFT_DEFAULTS, "the soft-label trainer (target: distribution)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.seeds:
            raise UserError("config key 'train.seeds' must be a non-empty list of whole numbers, e.g. [0, 1, 2]")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"config key 'train.seeds' repeats a seed: {self.seeds}")


@dataclass
class FitEval(Section):
    key: ClassVar[str] = "eval"
    cultures: list[str] = setting([], "also scored, never trained on: what transfers (reported apart)", each=str)
    survey: str | None = setting(
        None, "a second survey folder to score (questions seen in training left out)", type=str
    )
    dedup_threshold: float = setting(
        0.9, "near-duplicate text (all-MiniLM-L6-v2 cosine) counts as seen in training", low=0, high=1, open_low=True
    )
    train_limit: int | None = setting(
        30, "training questions per culture in the plumbing check (null = all)", low=1, nullable=True
    )
    validation: bool = setting(True, "score the validation questions (for choosing settings)")
    limit: int | None = setting(None, "eval questions per culture (null = all)")
    variants: list[str] | None = setting(
        None,
        "evaluation variants of the eval questions (and eval.survey), the same before and after: e.g. [standard] or "
        "[default, reversed, template-interview]; figures are means over variants with their spread; null = default",
    )
    paraphrases: str | None = setting(
        None, "JSON/YAML file of question id -> paraphrase, for the 'paraphrase' variant"
    )


@dataclass
class Config(Section):
    """SurveyFit: LoRA-tune on human answer distributions, measure on survey questions the model never saw."""

    out: str = setting("runs/surveyfit", "the run folder")
    survey: str = setting("../shared/data/wvs7", "a survey folder (README: Survey data)")
    cultures: list[str] = setting(["DEU", "CHN", "NGA"], "trained on (ISO 3166 alpha-3)")
    student: EngineSpec = student()
    split: Split = section(Split)
    train: FitTrain = section(FitTrain)
    eval: FitEval = section(FitEval)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.cultures:
            raise UserError("config key 'cultures' is empty: name at least one culture to train on, e.g. [DEU, CHN]")


CONFIG = Config
STAGES = ("survey-targets", "train", "eval")
SETS = ("eval", "validation", "train")


def _cultures(survey: Survey, codes: list[str], key: str) -> list[Culture]:
    cultures = parse_cultures(codes)
    missing = [c.code for c in cultures if not survey.distributions.get(c.code)]
    if missing:
        raise UserError(
            f"config key {key!r}: the survey has no answers for {missing}; it covers {', '.join(survey.countries)}"
        )
    return cultures


def make_split(cfg: Config, survey: Survey, cultures: Sequence[Culture]) -> QuestionSplit:
    """The seeded split of the questions any training culture answered (optionally some topics only)."""
    sp = cfg.split
    answered = {qid for c in cultures for qid in survey.distributions.get(c.code, {})}
    questions = [q for q in survey.questions.values() if q.id in answered]
    if sp.topics:
        topics = [sp.topics] if isinstance(sp.topics, str) else list(sp.topics)
        unknown = sorted(set(topics) - set(survey.topics()))
        if unknown:
            raise UserError(f"config key 'split.topics': unknown topics {unknown}; the survey has {survey.topics()}")
        questions = [q for q in questions if q.topic in topics]
    return split_questions(questions, sp.eval_fraction, sp.validation_fraction, sp.seed)


# -- training -------------------------------------------------------------------------------------------------------
def train_targets(
    run_dir: Path, name: str, examples: Sequence[SoftLabel | ChatSample], cfg: Config, seed: int
) -> Path:
    """Train (or keep, when its fingerprint matches) one adapter ``train/<name>`` on ``examples`` with ``seed``."""
    t = cfg.train
    folder = run_dir / "train" / name
    settings = {
        "target": t.target,
        "lora": t.lora,
        "soft" if t.target == "distribution" else "sft": t.soft if t.target == "distribution" else t.sft,
        "seed": seed,
        "student": cfg.student.model,
        "examples": [e.meta.get("culture", "") + "|" + e.meta.get("question_id", "") for e in examples],
        "targets": [getattr(e, "target", None) or e.messages[-1]["content"] for e in examples],
    }
    stamp = fingerprint(settings)
    info = folder / "train_info.json"
    if info.is_file() and (folder / "adapter_config.json").is_file():
        if json.loads(info.read_text()).get("fingerprint") == stamp:
            return folder
        log.warning("adapter %s was trained on other data or settings: training it again", folder)
    base = resolve_model(cfg.student.model)
    if t.target == "distribution":
        write_soft_labels(examples, run_dir / "train" / "data", name)
        train_distribution(base, examples, folder, t.lora, {**t.soft, "seed": seed})
    else:
        write_training_data(examples, run_dir / "train" / "data", name)
        train_lora(base, examples, folder, t.lora, {**t.sft, "seed": seed})
    data = json.loads(info.read_text()) if info.is_file() else {}
    write_json(info, {**data, "fingerprint": stamp})
    return folder


# -- evaluation -----------------------------------------------------------------------------------------------------
def _split_items(result: EvalResult, codes: set[str]) -> EvalResult:
    items = [i for i in result.items if i.culture in codes]
    kept = {k: result.metrics[k] for k in ("survey_skipped", "survey_notes") if k in result.metrics}
    return EvalResult(
        result.name, items, {"mode": result.metrics["mode"], **summarize(items), **kept} if items else {}
    )


def evaluate_sets(
    engine: Engine,
    sets: dict[str, Survey],
    trained: Sequence[Culture],
    heldout: Sequence[Culture],
    cfg: Config,
    run: RunFolder,
    label: str,
) -> dict[str, EvalResult]:
    """WVS (culture-aware) of one engine on each question set; trained and held-out cultures saved apart.

    Every set is scored for trained and held-out cultures together (so discrimination compares each persona with
    every evaluated culture), then written as ``eval/wvs-<set>-<label>`` (trained cultures; ``wvs-<label>`` for the
    eval set, the run's headline) and ``eval/wvs-heldout-<set>-<label>`` (held-out cultures).
    """
    out = {}
    for name, survey in sets.items():
        limit = cfg.eval.train_limit if name == "train" else cfg.eval.limit
        groups = [*trained, *heldout] if name in ("eval", "survey2") else list(trained)
        groups = [c for c in groups if survey.answered(c.code)]
        if not groups:
            continue
        names, texts = eval_variants(cfg.eval, None) if name in ("eval", "survey2") else ([], None)
        if texts:  # a second survey has its own ids: only the paraphrases of its questions apply
            texts = {k: v for k, v in texts.items() if k in survey.questions} or None
            names = names if texts else [n for n in names if "paraphrase" not in n.split("+")]
        result = WVS(survey, groups, "aware", None, limit, variants=names, paraphrases=texts).run(engine)
        prefix = "wvs" if name == "eval" else f"wvs-{name}"
        own = _split_items(result, {c.code for c in trained})
        if own.items:
            own.save(run.eval_dir(f"{prefix}-{label}"))
            out[name] = own
        others = _split_items(result, {c.code for c in heldout})
        if others.items:
            heldout_prefix = "wvs-heldout" if name == "eval" else f"wvs-heldout-{name}"
            others.save(run.eval_dir(f"{heldout_prefix}-{label}"))
            out[f"heldout-{name}"] = others
    return out


def second_survey(cfg: Config, split: QuestionSplit, survey: Survey) -> tuple[Survey | None, dict[str, int]]:
    """``eval.survey`` without the questions that reached training (same id, or near-duplicate text)."""
    path = cfg.eval.survey
    if not path:
        return None, {}
    import numpy as np

    from culturealign.steps.dedup import embed
    from culturealign.text import normalize

    other = load_survey(path)
    train_ids = set(split.train) | set(split.validation)
    train_texts = [survey.questions[q].text for q in sorted(train_ids)]
    rest = [q for q in other.questions.values() if q.id not in train_ids]
    seen = {normalize(t) for t in train_texts}
    near = 0
    kept = []
    if rest:
        vecs = embed([q.text for q in rest] + train_texts)
        sims = vecs[: len(rest)] @ vecs[len(rest) :].T
        for q, row in zip(rest, sims, strict=True):
            if normalize(q.text) in seen or float(np.max(row)) >= cfg.eval.dedup_threshold:
                near += 1
            else:
                kept.append(q)
    counts = {
        "questions": len(other.questions),
        "same_id_as_training": len(other.questions) - len(rest),
        "near_duplicate_of_training": near,
        "kept": len(kept),
    }
    return other.subset(q.id for q in kept), counts


def seed_spread(before: EvalResult, afters: dict[int, EvalResult]) -> dict[str, Any]:
    """Per metric (overall): each seed's after - before, with their mean, SD and min-max."""
    out: dict[str, Any] = {}
    for m in WVS.metrics:
        diffs = {s: r.metrics["overall"][m] - before.metrics["overall"][m] for s, r in afters.items()}
        vals = [v for v in diffs.values() if not math.isnan(v)]
        out[m] = {
            "diff_by_seed": diffs,
            "mean": statistics.fmean(vals) if vals else math.nan,
            "sd": statistics.stdev(vals) if len(vals) > 1 else math.nan,
            "min": min(vals) if vals else math.nan,
            "max": max(vals) if vals else math.nan,
        }
    return out


# -- the recipe -----------------------------------------------------------------------------------------------------
def prepare(cfg: Config) -> tuple[Survey, list[Culture], list[Culture], QuestionSplit]:
    survey = load_survey(cfg.survey)
    trained = _cultures(survey, cfg.cultures, "cultures")
    heldout = [c for c in _cultures(survey, cfg.eval.cultures, "eval.cultures") if c not in trained]
    eval_variants(cfg.eval, survey)  # a bad variant or paraphrase file: one line before any work
    return survey, trained, heldout, make_split(cfg, survey, trained)


def run_surveyfit(
    config: str | Path | None = None, overrides: Sequence[str] = (), redo_from: str | None = None
) -> dict[str, Any]:
    """Run the recipe; returns the comparison (also in ``eval/comparison.json``)."""
    cfg = load(config, Config, list(overrides))
    survey, trained, heldout, split = prepare(cfg)
    data_keys = {"survey": cfg.survey, "cultures": cfg.cultures, "split": cfg.split.to_dict()} | {
        "target": cfg.train.target,
        "samples_per_item": cfg.train.samples_per_item,
    }
    stamp = Path(cfg.out) / "steps" / "fingerprint.json"
    what, fix = "the split and training data", "use another --out, or add --from survey-targets to redo them"
    if redo_from != "survey-targets":  # refuse before anything of the run folder (config.yaml) is overwritten
        check_fingerprint(stamp, data_keys, what, fix, write=False)
    with recipe_run(cfg, "surveyfit", STAGES, redo_from) as run:
        if redo_from == "survey-targets":
            shutil.rmtree(run.path / "steps", ignore_errors=True)
        check_fingerprint(stamp, data_keys, what, fix)
        write_json(run.path / "split.json", split.to_dict())
        t = cfg.train
        steps = [SurveyTargets(survey, trained, t.target, t.samples_per_item, "none", cfg.split.seed)]
        examples = run_steps(steps, run.path, [survey.questions[q] for q in split.train])
        outside = sorted({e.meta["question_id"] for e in examples} - set(split.train))
        if outside:  # the split's promise, checked on what really reached training (not stripped by python -O)
            raise AssertionError(f"training data holds questions outside the training split: {outside}")
        return train_and_compare(run, cfg, survey, trained, heldout, split, examples)


def train_and_compare(
    run: RunFolder,
    cfg: Config,
    survey: Survey,
    trained: list[Culture],
    heldout: list[Culture],
    split: QuestionSplit,
    examples: list,
) -> dict[str, Any]:
    t = cfg.train
    comparison: dict[str, Any] = {
        "recipe": "surveyfit",
        "target": t.target,
        "examples": len(examples),
        "split": {k: len(getattr(split, k)) for k in ("train", "validation", "eval")},
        "eval_questions_in_training": len(set(split.eval) & {e.meta["question_id"] for e in examples}),
        "cultures": {"trained": [c.code for c in trained], "heldout": [c.code for c in heldout]},
        **survey_accounts(survey),
    }
    if len(examples) < t.min_examples:
        raise UserError(
            f"only {len(examples)} training examples (< train.min_examples={t.min_examples}): add cultures or "
            "lower split.eval_fraction"
        )
    adapters = {s: train_targets(run.path, "surveyfit" + (f"-s{s}" if len(t.seeds) > 1 else ""), examples, cfg, s)
                for s in t.seeds}  # fmt: skip
    sets = {"eval": survey.subset(split.eval), "train": survey.subset(split.train)}
    if cfg.eval.validation and split.validation:
        sets["validation"] = survey.subset(split.validation)
    other, counts = second_survey(cfg, split, survey)
    if other is not None and other.questions:
        sets["survey2"] = other
        comparison["survey2"] = counts
    engines: list[Engine] = []
    st = cfg.student

    def score(adapter: Path | None, label: str, which: dict[str, Survey]) -> dict[str, EvalResult]:
        engine = student_engine(run, st, adapter, engines)
        out = evaluate_sets(engine, which, trained, heldout, cfg, run, label)
        engine.unload()
        return out

    before = score(None, "before", sets)
    first, *rest = t.seeds
    after = score(adapters[first], "after", sets)
    comparison["sets"] = {
        name: {
            "before_after": before_after_table(WVS, before[name].metrics, after[name].metrics),
            "intervals": intervals(run, *_folders(name, "before", "after")),
        }
        for name in before
        if name in after
    }
    comparison["wvs"] = comparison["sets"]["eval"]["before_after"]
    if rest:
        afters = {first: after["eval"]}
        for s in rest:
            afters[s] = score(adapters[s], f"after-s{s}", {"eval": sets["eval"]})["eval"]
        comparison["seeds"] = seed_spread(before["eval"], afters)
    comparison["trained"] = True
    comparison["adapters"] = {str(s): str(p) for s, p in adapters.items()}
    write_json(run.path / "eval" / "comparison.json", comparison)
    record_cost(run, engines)
    return comparison


def _folders(name: str, before: str, after: str) -> tuple[str, str]:
    heldout = name.startswith("heldout-")
    base = name.removeprefix("heldout-")
    prefix = ("wvs-heldout" if heldout else "wvs") + ("" if base == "eval" else f"-{base}")
    return f"{prefix}-{before}", f"{prefix}-{after}"


# -- controls -------------------------------------------------------------------------------------------------------
CONTROLS = ("pooled", "shuffled")


def ablate_controls(run_dir: str | Path) -> dict[str, Any]:
    """Train the pooled and shuffled controls as the run trained its adapter (same questions, settings, first seed)
    and score them on the eval questions; ``eval/ablation-controls/metrics.json`` holds real - pooled (what is
    culture-specific) and shuffled - pooled, each with joint-bootstrap CIs, permutation p and BH q."""
    run_dir = Path(run_dir)
    if not (run_dir / "eval" / "wvs-after" / "metrics.json").is_file():
        raise UserError(f"{run_dir} is not a finished surveyfit run: run `culturealign run recipes/surveyfit.yaml`")
    cfg = load(run_dir / "config.yaml", Config)
    survey, trained, heldout, split = prepare(cfg)
    if json.loads((run_dir / "split.json").read_text())["eval"] != split.eval:
        raise UserError(f"{run_dir}/split.json no longer matches its config's split: rerun the recipe first")
    t = cfg.train
    results: dict[str, Any] = {}
    with RunFolder(run_dir) as run:
        engines: list[Engine] = []
        for control in CONTROLS:
            step = SurveyTargets(survey, trained, t.target, t.samples_per_item, control, cfg.split.seed)
            examples = list(step.run([survey.questions[q] for q in split.train]))
            adapter = train_targets(run.path, f"control-{control}", examples, cfg, t.seeds[0])
            engine = student_engine(run, cfg.student, adapter, engines)
            evaluate_sets(engine, {"eval": survey.subset(split.eval)}, trained, [], cfg, run, f"control-{control}")
            engine.unload()
            results[control] = {"examples": len(examples), "dropped": step.stats.get("dropped_by_reason", {})}
            results[control]["partner"] = step.partner or None
        results["real_minus_pooled"] = intervals(run, "wvs-control-pooled", "wvs-after")
        results["shuffled_minus_pooled"] = intervals(run, "wvs-control-pooled", "wvs-control-shuffled")
        results["pooled_minus_before"] = intervals(run, "wvs-before", "wvs-control-pooled")
        write_json(run.eval_dir("ablation-controls") / "metrics.json", results)
        record_cost(run, engines)
    return results


# -- tables ---------------------------------------------------------------------------------------------------------
SHOWN = ("one_minus_jsd", "discrimination", "accuracy", "culturespa")
SET_TITLES = {
    "eval": "held-out eval questions, trained cultures (the result)",
    "heldout-eval": "held-out eval questions, cultures never trained on",
    "validation": "validation questions (for choosing settings)",
    "train": "training questions (plumbing check)",
    "survey2": "second survey (questions seen in training left out)",
}


def interval_table(title: str, block: dict[str, Any]) -> Any:
    """One question set's before → after per culture and overall, with 95% CIs, permutation p and BH q."""
    return format_before_after(WVS, block["before_after"], title, block["intervals"], SHOWN)


def format_surveyfit(result: dict[str, Any]) -> list[Any]:
    """What ``culturealign run`` prints for this recipe: a line on the data, then one table per question set."""
    s = result["split"]
    out: list[Any] = [
        f"split: {s['train']} train / {s['validation']} validation / {s['eval']} eval questions (whole batteries); "
        f"{result['examples']} {result['target']} examples; eval questions in training: "
        f"{result['eval_questions_in_training']}"
    ]
    for name in ("eval", "heldout-eval", "survey2", "validation", "train"):
        if name in result["sets"]:
            out.append(interval_table(f"WVS alignment before → after: {SET_TITLES[name]}", result["sets"][name]))
    if skip_line(result):
        out.append(skip_line(result))
    if "seeds" in result:
        j = result["seeds"]["one_minus_jsd"]
        out.append(f"1-JSD gain over seeds {list(j['diff_by_seed'])}: mean {j['mean']:+.3f}, SD {j['sd']:.3f}, "
                   f"min {j['min']:+.3f}, max {j['max']:+.3f}")  # fmt: skip
    return out


def format_controls(results: dict[str, Any]) -> Any:
    """The controls' table: each contrast's overall difference per metric with CI and p."""
    from rich.table import Table

    table = Table(title="SurveyFit controls on the eval questions (overall, mean over trained cultures)")
    table.add_column("contrast")
    for m in SHOWN:
        table.add_column(m, justify="right")
    for name in ("real_minus_pooled", "shuffled_minus_pooled", "pooled_minus_before"):
        row = results[name]["overall"]
        cells = [f"{row[m]['diff']:+.3f} [{row[m]['ci'][0]:+.3f}, {row[m]['ci'][1]:+.3f}] p={row[m]['p']:.3g}"
                 for m in SHOWN]  # fmt: skip
        table.add_row(name.replace("_", " "), *cells)
    return table


run = run_surveyfit
show = format_surveyfit
ABLATIONS = ("controls",)


def ablate(run_dir: str | Path, what: str) -> dict[str, Any]:
    """``controls``: the pooled and shuffled controls (see :func:`ablate_controls`)."""
    if what not in ABLATIONS:
        raise UserError(f"surveyfit runs have one ablation: --what controls, not {what!r}")
    return ablate_controls(run_dir)


def show_ablation(results: dict[str, Any], what: str) -> list[Any]:
    return [format_controls(results)]
