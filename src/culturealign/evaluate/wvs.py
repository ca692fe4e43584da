"""WVS alignment: ask every answered survey question for every culture, score the model's option distribution.

dataset (survey questions answered by a culture) -> solver (option scoring under a persona prompt) ->
scorer (per-item JSD, W1 on ordered scales, hit) -> metrics (per culture, per topic, overall). Every question is
scored for every culture from option probabilities, so no culture is scored on a different subset because a reply
failed to parse (a pitfall of the paper's scripts); the count of questions is reported per culture.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from culturealign.cultures import Culture, load_similarity
from culturealign.data.base import is_ordinal
from culturealign.data.survey import Survey
from culturealign.errors import UserError
from culturealign.evaluate import metrics as M
from culturealign.evaluate.base import EvalResult, Evaluation, fmt
from culturealign.llm.base import Engine
from culturealign.progress import progress_bar
from culturealign.prompting import parse_variants, persona_system, survey_messages
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
    variant: str = "default"  # the evaluation variant (option order, template, paraphrase) it was asked under


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


def score_item(
    culture: str, q: SurveyQuestion, probs: dict[str, float], mass: float, human: dict, variant: str = "default"
) -> WVSItem:
    codes = q.codes
    p = [probs[c] for c in codes]
    h = [human[c] for c in codes]
    # W1 on every ordered scale (its span from the codes: 1-10, 0-10, 1-4 ...); a nominal question has no distance
    w1 = M.wasserstein_normalized([float(c) for c in codes], p, h) if is_ordinal(q) else None
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
        variant=variant,
    )


def with_cross_culture(items: Sequence[WVSItem]) -> list[WVSItem]:
    """Set each item's ``cross_one_minus_jsd``: the mean, over the other evaluated cultures that answered the same
    question, of 1-JSD between the model answering as this culture and *those* people (None without one)."""
    by_question: dict[tuple[str, str], list[WVSItem]] = defaultdict(list)
    for it in items:  # within one variant: the model asked the same way
        by_question[(it.variant, it.question_id)].append(it)
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
    """The four metrics over a set of items (one culture, or one culture x topic); ``compare_runs`` computes them
    from saved items with the same functions."""
    qs = list(items)
    return {
        "culturespa": M.culturespa_score(
            [float(i.choice) for i in qs], [float(i.majority) for i in qs], [len(i.model) for i in qs]
        ),
        "one_minus_jsd": M.mean([i.one_minus_jsd for i in qs]),
        "accuracy": M.accuracy([i.choice for i in qs], [i.majority for i in qs]),
        "wasserstein": M.mean([i.wasserstein for i in qs]),  # None (a nominal question) is left out
        # culture discrimination: own people minus the other evaluated cultures' people (> 0: the persona matches
        # its own culture better than the others; the model-vs-survey analogue of C-Dist, Lazuarda et al. 2025)
        "discrimination": M.discrimination([i.one_minus_jsd for i in qs], [i.cross_one_minus_jsd for i in qs]),
        "mass_on_options": M.mean([i.mass for i in qs]),
        # reference: what answering every question with a uniform distribution would score
        "one_minus_jsd_uniform": M.mean([M.one_minus_jsd([1.0] * len(i.human), list(i.human.values())) for i in qs]),
        "n_questions": len(qs),
    }


def summarize(items: Sequence[WVSItem]) -> dict[str, Any]:
    """Metrics per culture, per culture x topic, per topic (mean over cultures) and overall (mean over cultures).

    Items of several evaluation variants: each figure is the mean over variants of that variant's figure, with the
    spread over variants (``variant_spread``), every variant's own figures (``per_variant``) and each culture's
    ``sensitivity`` (:func:`sensitivity`) beside it.
    """
    variants = list(dict.fromkeys(getattr(i, "variant", "default") for i in items))
    if len(variants) > 1:
        return summarize_variants(items, variants)
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


def summarize_variants(items: Sequence[WVSItem], variants: Sequence[str]) -> dict[str, Any]:
    """:func:`summarize` of each variant, their mean (the headline figures), spread and the answers' sensitivity."""
    per_variant = {v: summarize([i for i in items if i.variant == v]) for v in variants}
    first = per_variant[variants[0]]

    def over_variants(pick) -> tuple[dict, dict]:  # pick: a variant's summary -> {metric: value}
        rows = [pick(per_variant[v]) for v in variants]
        keys = [k for k in rows[0] if isinstance(rows[0][k], int | float) and not k.startswith("n_")]
        mean = {**rows[0], **{k: M.mean([r.get(k) for r in rows]) for k in keys}}
        return mean, {
            k: M.spread([r.get(k) for r in rows]) for k in keys if k in METRIC_NAMES or k == "discrimination"
        }

    out: dict[str, Any] = {"variants": list(variants)}
    spread: dict[str, Any] = {"per_culture": {}}
    out["overall"], spread["overall"] = over_variants(lambda m: m["overall"])
    out["overall"]["n_items"] = len(items)
    sens = sensitivity(items)
    out["per_culture"] = {}
    for c in first["per_culture"]:
        out["per_culture"][c], spread["per_culture"][c] = over_variants(lambda m, c=c: m["per_culture"].get(c, {}))
        out["per_culture"][c]["sensitivity"] = sens.get(c)
    out["overall"]["sensitivity"] = M.mean(list(sens.values()))
    for key in ("per_topic", "per_culture_topic"):
        out[key] = {g: over_variants(lambda m, g=g, key=key: m[key].get(g, {}))[0] for g in first[key]}
    out["variant_spread"] = spread
    out["per_variant"] = per_variant
    return out


def sensitivity(items: Sequence[WVSItem]) -> dict[str, float]:
    """Per culture, how much the model's answer depends on presentation: for each question, the mean total-variation
    distance between the option distributions of every pair of variants, averaged over questions (0: the same
    answer under every variant; 1: disjoint answers)."""
    by_key: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for it in items:
        by_key[(it.culture, it.question_id)].append(it.model)
    per_culture: dict[str, list[float]] = defaultdict(list)
    for (culture, _), dists in sorted(by_key.items()):
        if len(dists) < 2:
            continue
        pairs = [(a, b) for n, a in enumerate(dists) for b in dists[n + 1 :]]
        per_culture[culture].append(M.mean([M.total_variation(list(a.values()), [b[k] for k in a]) for a, b in pairs]))
    return {c: M.mean(v) for c, v in per_culture.items()}


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


@dataclass
class WVS(Evaluation):
    """Score an engine on the survey for each culture under one prompt mode (unaware, aware, cross-culture).

    ``icl > 0`` adds the self-alignment baseline: ``icl`` other survey questions of the same culture, answered
    with that culture's majority answer, shown as earlier chat turns (never the question being asked).
    """

    name: ClassVar[str] = "wvs"
    title: ClassVar[str] = "WVS alignment"
    metrics: ClassVar[tuple[str, ...]] = (*METRIC_NAMES, "discrimination")
    scope: ClassVar[str] = "per_culture"
    gap_metrics: ClassVar[tuple[str, ...]] = ("one_minus_jsd",)

    survey: Survey
    groups: Sequence[Culture]
    mode: str = "aware"
    topics: Sequence[str] | None = None
    limit: int | None = None
    icl: int = 0
    seed: int = 0
    variants: Sequence[str] = ()  # evaluation variants (``prompting.parse_variants``); none: the default only
    paraphrases: dict[str, str] | None = None  # question id -> text, for the ``paraphrase`` variant

    extra_columns: ClassVar[tuple[str, ...]] = ("mass_on_options",)

    @staticmethod
    def caption(metrics: dict[str, Any]) -> str:
        uniform = fmt(metrics["overall"].get("one_minus_jsd_uniform"))
        return "\n".join(
            x
            for x in (
                f"a uniform answer to every question would score 1-JSD {uniform}",
                variant_line(metrics),
                skip_line(metrics),
            )
            if x
        )

    def cultures(self) -> list[str]:
        return [c.code for c in self.groups]

    def subset(self, codes: Sequence[str]) -> WVS:
        return replace(self, groups=[c for c in self.groups if c.code in codes])

    def combine(self, results: Sequence[EvalResult]) -> EvalResult:
        # 1-JSD across cultures is recomputed: each culture was scored apart, often with its own adapter
        return self.result(with_cross_culture([it for r in results for it in r.items]))

    def result(self, items: list[WVSItem]) -> EvalResult:
        # what the loader left out of the survey, by reason: a figure is read with the data it stands on
        return EvalResult(self.name, items, {"mode": self.mode, **summarize(items), **survey_accounts(self.survey)})

    def run(self, engine: Engine, progress: bool = True) -> EvalResult:
        survey = self.survey
        missing = [c.code for c in self.groups if c.code not in survey.distributions]
        if missing:
            raise UserError(f"the survey has no answers for {missing}: it covers {', '.join(survey.countries)}")
        similarity = (
            load_similarity(survey.similarity_path)
            if self.mode == "cross-culture" and survey.similarity_path
            else None
        )
        variants = parse_variants(self.variants, self.paraphrases)
        persona_system(None, self.mode)  # an unknown mode is one line before any work
        jobs: list[tuple[Culture, SurveyQuestion, str]] = []
        prompts = []
        for variant in variants:  # the same items under each variant (same seeded sample of questions)
            for culture in self.groups:
                answered = survey.answered(culture.code)
                for q in select_questions(survey, culture.code, self.topics, self.limit, self.seed):
                    jobs.append((culture, q, variant.name))
                    messages = variant.messages(q, culture, self.mode, similarity, self.paraphrases)
                    if self.icl:
                        messages = _with_examples(messages, survey, culture.code, q, answered, self.icl, self.seed)
                    prompts.append(messages)
        if not jobs:
            raise UserError("no survey questions to ask: check --topics and --cultures")
        with progress_bar(f"WVS ({self.mode})", len(jobs), progress) as advance:
            scores = engine.score_options(prompts, [q.codes for _, q, _ in jobs], progress=advance)
        return self.result(
            with_cross_culture(
                [
                    score_item(c.code, q, s.probs, s.mass, survey.distributions[c.code][q.id], v)
                    for (c, q, v), s in zip(jobs, scores, strict=True)
                ]
            )
        )


def survey_accounts(survey: Survey) -> dict[str, Any]:
    """What the loader skipped (by reason) and noticed, kept beside every figure computed on the survey."""
    return {"survey_skipped": dict(survey.skipped), "survey_notes": list(survey.notes)}


def variant_line(metrics: dict[str, Any]) -> str:
    """Under a table of several variants: what the figures are, and each metric's spread over the variants."""
    spread = (metrics.get("variant_spread") or {}).get("overall")
    if not spread:
        return ""
    parts = [f"{m} SD {fmt(s['sd'])} (min {fmt(s['min'])}, max {fmt(s['max'])})" for m, s in spread.items()]
    sens = fmt(metrics["overall"].get("sensitivity"))
    return (
        f"mean over {len(metrics['variants'])} variants ({', '.join(metrics['variants'])}); spread over variants: "
        + "; ".join(parts)
        + f"; sensitivity (mean TV distance between variants' answers) {sens}"
    )


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
