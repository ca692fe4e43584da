"""WVS alignment: ask every answered survey question for every culture, score the model's option distribution.

dataset (survey questions answered by a culture) -> solver (option scoring under a persona prompt) ->
scorer (per-item JSD, W1, hit) -> metrics (per culture, per topic, overall). Every question is scored for
every culture from option probabilities, so no culture is scored on a different subset because a reply
failed to parse (a pitfall of the paper's scripts); the count of questions is reported per culture.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from culturealign.cultures import Culture, load_similarity
from culturealign.data.survey import Survey
from culturealign.errors import UserError
from culturealign.evaluate import metrics as M
from culturealign.llm.base import Engine
from culturealign.progress import progress_bar
from culturealign.prompting import persona_system, survey_messages
from culturealign.records import SurveyQuestion

METRIC_NAMES = ("culturespa", "one_minus_jsd", "accuracy", "wasserstein")


@dataclass
class WVSItem:
    """One (culture, question) scored: the model's distribution next to the people's."""

    culture: str
    question_id: str
    topic: str
    scale: str
    model: dict[str, float]
    human: dict[str, float]
    choice: str
    majority: str
    mass: float
    one_minus_jsd: float
    wasserstein: float | None
    cross_one_minus_jsd: float | None = None  # mean 1-JSD to the *other* evaluated cultures' people (see below)


@dataclass
class WVSResult:
    mode: str
    items: list[WVSItem]
    metrics: dict[str, Any] = field(default_factory=dict)


def select_questions(
    survey: Survey, culture: str, topics: Sequence[str] | None = None, limit: int | None = None, seed: int = 0
) -> list[SurveyQuestion]:
    """The culture's answered questions, filtered by topic, and a seeded sample of ``limit`` (survey order kept)."""
    qs = survey.answered(culture)
    if topics:
        unknown = set(topics) - set(survey.topics())
        if unknown:
            raise UserError(f"unknown topics {sorted(unknown)}: the survey has {survey.topics()}")
        qs = [q for q in qs if q.topic in topics]
    if limit is not None and limit < len(qs):
        keep = set(random.Random(seed).sample([q.id for q in qs], limit))
        qs = [q for q in qs if q.id in keep]
    return qs


def score_item(culture: str, q: SurveyQuestion, probs: dict[str, float], mass: float, human: dict) -> WVSItem:
    codes = q.codes
    p = [probs[c] for c in codes]
    h = [human[c] for c in codes]
    w1 = M.wasserstein_normalized([float(c) for c in codes], p, h) if q.scale.startswith("numeric") else None
    return WVSItem(
        culture,
        q.id,
        q.topic,
        q.scale,
        probs,
        human,
        max(codes, key=lambda c: probs[c]),
        M.majority(human),
        mass,
        M.one_minus_jsd(p, h),
        w1,
    )


def with_cross_culture(items: Sequence[WVSItem]) -> list[WVSItem]:
    """Set each item's ``cross_one_minus_jsd``: the mean, over the other evaluated cultures that answered the same
    question, of 1-JSD between the model answering as this culture and *those* people (None without one)."""
    by_question: dict[str, list[WVSItem]] = defaultdict(list)
    for it in items:
        by_question[it.question_id].append(it)
    for group in by_question.values():
        for it in group:
            others = [o for o in group if o.culture != it.culture]
            codes = list(it.human)
            it.cross_one_minus_jsd = (
                M.mean([M.one_minus_jsd([it.model[c] for c in codes], [o.human[c] for c in codes]) for o in others])
                if others
                else None
            )
    return list(items)


def aggregate(items: Sequence[WVSItem]) -> dict[str, float]:
    """The four metrics over a set of items (one culture, or one culture x topic)."""

    def code(c: str) -> float:
        return float(c)

    qs = list(items)
    return {
        "culturespa": M.culturespa_score(
            [code(i.choice) for i in qs], [code(i.majority) for i in qs], [len(i.model) for i in qs]
        ),
        "one_minus_jsd": M.mean([i.one_minus_jsd for i in qs]),
        "accuracy": M.mean([float(i.choice == i.majority) for i in qs]),
        "wasserstein": M.mean([i.wasserstein for i in qs if i.wasserstein is not None]),
        # culture discrimination: own people minus the other evaluated cultures' people (> 0: the persona matches
        # its own culture better than the others; the model-vs-survey analogue of C-Dist, Lazuarda et al. 2025)
        "discrimination": M.mean(
            [i.one_minus_jsd - i.cross_one_minus_jsd for i in qs if i.cross_one_minus_jsd is not None]
        ),
        "mass_on_options": M.mean([i.mass for i in qs]),
        # reference: what answering every question with a uniform distribution would score
        "one_minus_jsd_uniform": M.mean([M.one_minus_jsd([1.0] * len(i.human), list(i.human.values())) for i in qs]),
        "n_questions": len(qs),
    }


def summarize(items: Sequence[WVSItem]) -> dict[str, Any]:
    """Metrics per culture, per culture x topic, per topic (mean over cultures) and overall (mean over cultures)."""
    by_culture: dict[str, list[WVSItem]] = defaultdict(list)
    by_pair: dict[tuple[str, str], list[WVSItem]] = defaultdict(list)
    for it in items:
        by_culture[it.culture].append(it)
        by_pair[(it.culture, it.topic)].append(it)
    per_culture = {c: aggregate(v) for c, v in sorted(by_culture.items())}
    per_pair = {f"{c}|{t}": aggregate(v) for (c, t), v in sorted(by_pair.items())}
    topics = sorted({t for _, t in by_pair})
    per_topic = {
        t: {m: M.mean([per_pair[f"{c}|{t}"][m] for c in per_culture if f"{c}|{t}" in per_pair]) for m in METRIC_NAMES}
        for t in topics
    }
    extra = ("discrimination", "mass_on_options", "one_minus_jsd_uniform")
    overall = {m: M.mean([v[m] for v in per_culture.values()]) for m in (*METRIC_NAMES, *extra)}
    overall["n_items"] = len(items)
    return {"overall": overall, "per_culture": per_culture, "per_topic": per_topic, "per_culture_topic": per_pair}


def divergences(items: Sequence[WVSItem], eps: float = 1e-6) -> dict[str, Any]:
    """CLCA's culture-level view: per question, the Jensen-Shannon distance and KL(people || model) (``eps``
    smoothed) between the two answer distributions, averaged per culture and over cultures (lower is better)."""
    by_culture: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for it in items:
        codes = list(it.human)
        p, h = [it.model[c] for c in codes], [it.human[c] for c in codes]
        by_culture[it.culture].append((M.js_distance(h, p), M.kl_divergence(h, p, eps)))
    per_culture = {
        c: {"js_distance": M.mean([v[0] for v in vs]), "kl": M.mean([v[1] for v in vs]), "n_questions": len(vs)}
        for c, vs in sorted(by_culture.items())
    }
    overall = {k: M.mean([m[k] for m in per_culture.values()]) for k in ("js_distance", "kl")}
    return {"eps": eps, "overall": overall, "per_culture": per_culture}


def evaluate_wvs(
    engine: Engine,
    survey: Survey,
    cultures: Sequence[Culture],
    mode: str = "aware",
    topics: Sequence[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
    icl: int = 0,
    seed: int = 0,
) -> WVSResult:
    """Score ``engine`` on the survey for each culture under one prompt mode (unaware, aware, cross-culture).

    ``icl > 0`` adds the self-alignment baseline: ``icl`` other survey questions of the same culture, answered
    with that culture's majority answer, shown as earlier chat turns (never the question being asked).
    """
    missing = [c.code for c in cultures if c.code not in survey.distributions]
    if missing:
        raise UserError(f"the survey has no answers for {missing}: it covers {', '.join(survey.countries)}")
    similarity = (
        load_similarity(survey.similarity_path) if mode == "cross-culture" and survey.similarity_path else None
    )
    jobs: list[tuple[Culture, SurveyQuestion]] = []
    prompts = []
    for culture in cultures:
        system = persona_system(culture, mode, similarity)
        answered = survey.answered(culture.code)
        for q in select_questions(survey, culture.code, topics, limit, seed):
            jobs.append((culture, q))
            messages = survey_messages(q, system)
            if icl:
                messages = _with_examples(messages, survey, culture.code, q, answered, icl, seed)
            prompts.append(messages)
    if not jobs:
        raise UserError("no survey questions to ask: check --topics and --cultures")
    with progress_bar(f"WVS ({mode})", len(jobs), progress) as advance:
        scores = engine.score_options(prompts, [q.codes for _, q in jobs], progress=advance)
    items = with_cross_culture(
        [
            score_item(c.code, q, s.probs, s.mass, survey.distributions[c.code][q.id])
            for (c, q), s in zip(jobs, scores, strict=True)
        ]
    )
    # what the loader left out of the survey, by reason: a figure is read with the data it stands on
    return WVSResult(mode, items, {**summarize(items), **survey_accounts(survey)})


def survey_accounts(survey: Survey) -> dict[str, Any]:
    """What the loader skipped (by reason) and noticed, kept beside every figure computed on the survey."""
    return {"survey_skipped": dict(survey.skipped), "survey_notes": list(survey.notes)}


def skip_line(metrics: dict[str, Any]) -> str:
    """What the survey loader skipped (by reason) and noticed, as lines for the output ('' when nothing)."""
    skipped = metrics.get("survey_skipped") or {}
    lines = [f"survey notes: {n}" for n in metrics.get("survey_notes") or []]
    if skipped:
        lines.insert(0, "survey rows skipped: " + "; ".join(f"{n:,} {r}" for r, n in sorted(skipped.items())))
    return "\n".join(lines)


def _with_examples(messages, survey: Survey, culture: str, asked: SurveyQuestion, pool, k: int, seed: int):
    """Insert k answered questions of the culture (majority answers) before the asked one."""
    others = [q for q in pool if q.id != asked.id]
    shots = random.Random(f"{seed}:{culture}:{asked.id}").sample(others, min(k, len(others)))
    turns = []
    for q in shots:
        turns += survey_messages(q, "")[1:]
        turns.append({"role": "assistant", "content": M.majority(survey.distributions[culture][q.id])})
    return [messages[0], *turns, *messages[1:]]


def save_result(result: WVSResult, folder: Path) -> None:
    """Write ``items.jsonl`` and ``metrics.json`` (the layout ``compare`` and the report read)."""
    from culturealign.runs import write_json, write_jsonl

    write_jsonl(folder / "items.jsonl", (asdict(i) for i in result.items))
    write_json(folder / "metrics.json", {"mode": result.mode, **result.metrics})


def format_table(metrics: dict[str, Any], title: str = "") -> Any:
    """A rich table: one row per culture plus the overall mean."""
    from rich.table import Table

    table = Table(title=title or None)
    for col in ("culture", "n", "CultureSPA", "1-JSD", "accuracy", "W1 (1-10)", "discrimination", "mass on options"):
        table.add_column(col, justify="right" if col != "culture" else "left")
    rows = list(metrics["per_culture"].items()) + [("overall", {**metrics["overall"], "n_questions": ""})]
    for name, m in rows:
        table.add_row(
            name,
            str(m["n_questions"]),
            *(_fmt(m.get(k)) for k in (*METRIC_NAMES, "discrimination", "mass_on_options")),
        )
    table.caption = "\n".join(
        line
        for line in (
            f"a uniform answer to every question would score 1-JSD "
            f"{_fmt(metrics['overall'].get('one_minus_jsd_uniform'))}",
            skip_line(metrics),
        )
        if line
    )
    return table


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
