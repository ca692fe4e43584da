"""What every recipe does after its data steps: train the student, evaluate it before and after, count the cost.

Recipes stay compositions: their own file lists steps and defaults; this module holds the shared tail
(``--from`` handling, training when enough examples were kept, WVS before/after, BLEnD before/after where the
culture is in BLEnD, the general-ability check, ``comparison.json`` and ``cost.json``).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from culturealign.config import Section, library, setting
from culturealign.cultures import Culture
from culturealign.data.survey import Survey
from culturealign.errors import UserError
from culturealign.evaluate.base import EvalResult, Evaluation
from culturealign.evaluate.before_after import before_after, evaluate_on
from culturealign.evaluate.general import general_check
from culturealign.evaluate.wvs import WVS, survey_accounts
from culturealign.llm.base import Engine
from culturealign.llm.spec import EngineSpec
from culturealign.records import ChatSample
from culturealign.runs import RunFolder, write_json
from culturealign.runs.store import stage_cost, write_cost, write_cost_seconds
from culturealign.train.lora import LORA_DEFAULTS, SFT_DEFAULTS
from culturealign.train.variants import train_variant

log = logging.getLogger(__name__)
TAIL_STAGES = ("train", "eval")


# -- config sections every training recipe shares (each recipe subclasses them for its own defaults and keys) ------
def engine(where: str, help: str = "", **settings: Any) -> Any:
    """An engine section (``generator``, ``judge``, ``student``...): an EngineSpec that checks itself."""
    return field(default_factory=lambda: EngineSpec(**settings, where=where), metadata={"help": help})


def section(kind: type[Section], help: str = "") -> Any:
    """A nested config section with its own defaults."""
    return field(default_factory=kind, metadata={"help": help})


def student(help: str = "the model being tuned (a local Hugging Face model)") -> Any:
    return engine("student", help)


@dataclass
class Train(Section):
    key: ClassVar[str] = "train"
    mode: str = setting("joint", "joint (one adapter, the culture in the system prompt) or specific (one per culture)")
    min_examples: int = setting(4, "fewer kept examples than this: nothing is trained, the base model is reported")
    lora: dict = library(LORA_DEFAULTS, "peft.LoraConfig settings")
    sft: dict = library(SFT_DEFAULTS, "trl.SFTConfig settings")


@dataclass
class Eval(Section):
    key: ClassVar[str] = "eval"
    topics: list[str] | None = setting(None, "WVS topics evaluated; null = all")
    limit: int | None = setting(None, "WVS questions per culture (a seeded sample); null = all")
    general: bool = setting(False, "general-ability check after tuning: next-token KL and multiple-choice agreement")
    general_limit: int | None = setting(None, "prompts and items of the general-ability check; null = all")
    variants: list[str] | None = setting(
        None,
        "WVS evaluation variants, the same on both sides of before/after (e.g. [default, reversed, shuffle-1, "
        "template-interview, template-nosystem] or [standard]): figures are means over variants with their spread "
        "and sensitivity; null = the default prompt only",
    )
    paraphrases: str | None = setting(
        None, "JSON/YAML file of question id -> paraphrase, for the 'paraphrase' variant"
    )


def check_student(cfg: Any) -> None:
    """The student is trained in process: a local model."""
    if cfg.student.engine != "local":
        raise UserError(
            f"config key 'student.engine' must be local (the student is trained here), not {cfg.student.engine!r}"
        )


@contextmanager
def recipe_run(cfg: Any, recipe: str, stages: Sequence[str], redo_from: str | None) -> Iterator[RunFolder]:
    """Open the run folder, record the config and clear what ``--from train|eval`` redoes; time the run."""
    if redo_from is not None and redo_from not in stages:
        raise UserError(f"unknown stage {redo_from!r} for --from: stages are {', '.join(stages)}")
    start = time.time()
    check_student(cfg)
    with RunFolder(cfg.out) as run:
        run.write_config({"recipe": recipe, **cfg.to_dict()})
        if redo_from is not None:  # every stage after the one redone depends on it: evaluation always
            shutil.rmtree(run.path / "eval", ignore_errors=True)
            if redo_from != "eval":  # and training, unless only the evaluation is redone
                shutil.rmtree(run.path / "train", ignore_errors=True)
        yield run
        write_cost_seconds(run.path, time.time() - start)


def engines_from(writer: EngineSpec, reviewer: EngineSpec, run: RunFolder) -> tuple[Engine, Engine]:
    """The recipe's writing engine and its judging one (the same object when both sections are equal, so one model
    is loaded once)."""
    engine = writer.build(run.cache)
    if reviewer.settings() == writer.settings():
        return engine, engine
    return engine, reviewer.build(run.cache)


def data_redo(redo_from: str | None) -> str | None:
    """The ``--from`` value that concerns the data steps (None for train/eval)."""
    return None if redo_from in TAIL_STAGES else redo_from


def wvs_evaluation(ev: Eval, survey: Survey, cultures: Sequence[Culture]) -> WVS:
    """The culture-aware WVS evaluation every training recipe reports (``eval.topics``, ``eval.limit``,
    ``eval.variants``)."""
    names, texts = eval_variants(ev, survey)
    return WVS(survey, cultures, "aware", ev.topics, ev.limit, variants=names, paraphrases=texts)


def eval_variants(ev: Any, survey: Survey | None) -> tuple[list[str], dict[str, str] | None]:
    """``eval.variants`` and ``eval.paraphrases`` checked (a mistake names its config key): names and texts; the
    paraphrases' ids against ``survey``'s questions (None: not checked)."""
    from culturealign.prompting import load_paraphrases, parse_variants

    try:
        texts = load_paraphrases(ev.paraphrases, list(survey.questions) if survey is not None else None)
    except UserError as e:
        raise UserError(f"config key 'eval.paraphrases': {e}") from e
    try:
        return [v.name for v in parse_variants(ev.variants, texts)], texts
    except UserError as e:
        raise UserError(f"config key 'eval.variants': {e}") from e


def tune_and_compare(
    run: RunFolder,
    cfg: Any,
    survey: Survey,
    evaluations: Sequence[Evaluation],
    samples: list[ChatSample],
    engines: list[Engine],
    hint: str = "",
) -> dict[str, Any]:
    """Train (when enough examples), run ``evaluations`` before/after, write ``eval/comparison.json``; returns it.

    ``comparison[name]`` is each evaluation's before/after table, ``comparison["evaluations"]`` their names.
    """
    mode = cfg.train.mode
    trained = enough_to_train(samples, cfg.train.min_examples, hint)
    with stage_cost(run.path, "train"):
        adapters = train_variant(run.path, mode, samples, cfg.student.model, cfg.train, mode) if trained else {}
    comparison: dict[str, Any] = {
        "trained": bool(adapters),
        "examples": len(samples),
        "adapters": {k: str(v) for k, v in adapters.items()},
        **survey_accounts(survey),
    }
    students: list[Engine] = []
    with stage_cost(run.path, "eval", students):  # the list fills as the evaluation builds its engines
        results = before_after(run, cfg.student, evaluations, adapters, mode, students)
    engines = [*engines, *students]
    comparison |= {name: ba.table for name, ba in results.items()}
    comparison["evaluations"] = list(results)
    if "wvs" in results and results["wvs"].after is not None:  # every change with its interval, not a bare delta
        comparison["intervals"] = {"wvs": intervals(run, "wvs-before", "wvs-after")}
    if "wvs" in results and (spread := variant_summary(results["wvs"])):
        comparison["variants"] = spread
    if adapters and cfg.eval.general:
        # next-token distributions, not cached calls: these engines stay off the run's cache
        base = cfg.student.build()
        tuned = replace(cfg.student, adapter=str(next(iter(adapters.values())))).build()
        comparison["general"] = general_check(base, tuned, cfg.eval.general_limit, run.eval_dir("general"))
    write_json(run.path / "eval" / "comparison.json", comparison)
    record_cost(run, engines)
    return comparison


def intervals(run: RunFolder, before: str, after: str) -> dict[str, Any]:
    """``compare`` of two of the run's WVS eval folders: each change with its joint-bootstrap 95% interval, paired
    permutation p and BH q, per culture and overall (the items are paired on culture and question)."""
    from culturealign.evaluate.compare_runs import compare_runs

    c = compare_runs([run.eval_dir(before), run.eval_dir(after)], n_boot=1000, seed=0)
    label = c["runs"][1]
    return {
        scope: {
            m: {"diff": v["diff"][label], "ci": v["ci"][label], "p": v["p"][label], "q": v["q"][label]}
            for m, v in metrics.items()
        }
        for scope, metrics in c["scopes"].items()
    } | {"n_questions": c["n_questions"]}


def variant_summary(ba: Any) -> dict[str, Any] | None:
    """Under several evaluation variants: each side's spread over variants and sensitivity, to read the before/after
    change against (None with one variant)."""
    sides = {"before": ba.before, "after": ba.after}
    out = {
        when: {
            "variants": r.metrics["variants"],
            "spread": r.metrics["variant_spread"]["overall"],
            "sensitivity": r.metrics["overall"].get("sensitivity"),
        }
        for when, r in sides.items()
        if r is not None and r.metrics.get("variants")
    }
    return out or None


def variant_line(result: dict[str, Any]) -> str:
    """One line: the change of overall 1-JSD beside its spread over the variants (is it larger than that?)."""
    v = result.get("variants")
    if not v:
        return ""
    sd = {w: s["spread"]["one_minus_jsd"]["sd"] for w, s in v.items()}
    sens = {w: s["sensitivity"] for w, s in v.items()}
    text = f"means over variants {', '.join(v['before']['variants'])}; 1-JSD SD over variants " + ", ".join(
        f"{w} {x:.3f}" for w, x in sd.items()
    )
    return (
        text
        + "; sensitivity (mean TV between variants' answers) "
        + ", ".join(f"{w} {x:.3f}" for w, x in sens.items())
    )


def enough_to_train(samples: Sequence[Any], min_examples: int, hint: str = "") -> bool:
    """Whether ``train.min_examples`` are there; if not, one warning saying so (every recipe's one check)."""
    if len(samples) >= min_examples:
        return True
    log.warning(
        "kept only %d training examples (< train.min_examples=%d): too few to train on. %s",
        len(samples),
        min_examples,
        hint,
    )
    return False


def train_and_evaluate(
    run: RunFolder,
    cfg: Any,
    evaluation: Evaluation,
    name: str,
    samples: list[ChatSample],
    mode: str,
    out_dir: Path,
    engines: list[Engine],
) -> EvalResult:
    """One ablation variant: train its adapter(s) under ``train/<name>``, write its evaluation to ``out_dir``."""
    adapters = train_variant(run.path, name, samples, cfg.student.model, cfg.train, mode)
    result = evaluate_on(run, cfg.student, [evaluation], adapters, mode, engines)[evaluation.name]
    result.save(out_dir)
    return result


def record_cost(run: RunFolder, engines: Sequence[Engine]) -> None:
    """Add the calls, tokens and cache hits of ``engines`` to the run's ``cost.json`` (an engine listed twice, e.g.
    one model that writes and judges, once)."""
    for engine in {id(e): e for e in engines}.values():
        write_cost(run.path, engine, 0.0)


def show_comparison(result: dict[str, Any]) -> list[Any]:
    """What ``culturealign run`` prints for a recipe that trains and compares: each evaluation's before/after."""
    from culturealign.evaluate import evaluation_class
    from culturealign.evaluate.base import format_before_after
    from culturealign.evaluate.wvs import skip_line

    out: list[Any] = []
    if not result["trained"]:
        out.append(f"[yellow]kept {result['examples']} examples: too few to train on, showing the base model only")
    if "data" in result:
        d = result["data"]
        j = d["judge"]
        out.append(
            f"scenarios {d['scenarios']}; conversations ended by {d['conversations']}; judge kept {j['kept']} of "
            f"{j['total']}, dropped {dict(j['dropped_by_reason'] or {})}"
        )
    for name in result.get("evaluations", ["wvs"]):
        iv = result.get("intervals", {}).get(name)
        out.append(format_before_after(evaluation_class(name), result[name], intervals=iv))
        if name == "wvs" and variant_line(result):
            out.append(variant_line(result))
        if name == "wvs" and skip_line(result):
            out.append(skip_line(result))
    for when, div in result.get("divergence", {}).items():
        per = ", ".join(f"{c} {m['js_distance']:.3f}/{m['kl']:.3f}" for c, m in div["per_culture"].items())
        out.append(
            f"JS distance / KL(people||model) {when}: overall {div['overall']['js_distance']:.3f}/"
            f"{div['overall']['kl']:.3f} ({per})"
        )
    if "general" in result:
        g = result["general"]
        out.append(
            f"general ability: mean KL(base||tuned) {g['mean_kl_base_tuned']:.4f} over {g['general_prompts']} prompts;"
            f" multiple-choice agreement {g['mc_agreement']:.2f}, accuracy {g['mc_accuracy_base']:.2f} → "
            f"{g['mc_accuracy_tuned']:.2f}"
        )
    return out
