"""What every survey loader returns: a :class:`Survey` of questions and per-country answer shares.

Below the loaders (``survey.py`` for WVS folders and respondent files, ``goqa.py`` for GlobalOpinionQA), so that
they share it without importing each other.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from culturealign.records import SurveyQuestion

Distribution = dict[str, float]

# How ``is_ordinal`` reads option labels (whole words, any case). An ordered scale names a degree, a frequency, an
# agreement, a quantity, a likelihood or an evaluation at both of its ends ("Very important" .. "Not at all
# important", "Daily" .. "Never", "None of them" .. "All of them").
SCALE_WORDS = re.compile(
    r"\b(very|rather|quite|fairly|somewhat|completely|totally|entirely|extremely|strongly|slightly|a great deal|"
    r"a good deal|a lot|much|little|some|none|few|most|all|agree|disagree|always|usually|often|sometimes|"
    r"occasionally|frequently|rarely|seldom|never|daily|weekly|monthly|yearly|once|times|good|bad|better|worse|"
    r"definitely|probably|likely|unlikely|certainly|satisfied|dissatisfied|have done|might do|active|inactive|"
    r"belong|upper|lower)\b",
    re.IGNORECASE,
)
# an answer off the scale (its code has no place on it): the question is nominal for W1
OFF_SCALE = re.compile(r"\b(other|don'?t know|dk|refused?|no answer|not applicable|not allowed|write in|etc)\b", re.I)
# a midpoint: on the scale between its ends ("Disagree, Hard to say, Agree"), off it at an end ("Better off, Worse
# off, About the same"; "Hard to say, Strongly agree .. Strongly disagree")
MIDPOINT = re.compile(r"\b(neither|hard to say|don'?t mind|about the same|in between|neutral|depends)\b", re.I)
INTEGER_CODE = re.compile(r"-?\d+")


@dataclass
class Survey:
    """Questions by id and, per country (alpha-3), the renormalized answer shares per question."""

    questions: dict[str, SurveyQuestion]
    distributions: dict[str, dict[str, Distribution]]
    skipped: Counter = field(default_factory=Counter)
    similarity_path: Path | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)  # what the loader noticed but kept (shares far from summing to 1)

    @property
    def countries(self) -> list[str]:
        return sorted(self.distributions)

    def answered(self, country: str) -> list[SurveyQuestion]:
        """Questions with answer shares for ``country``, in survey order."""
        dists = self.distributions.get(country, {})
        return [q for qid, q in self.questions.items() if qid in dists]

    def topics(self) -> list[str]:
        return sorted({q.topic for q in self.questions.values()})

    def subset(self, question_ids: Iterable[str]) -> Survey:
        """The same survey restricted to ``question_ids`` (survey order kept), e.g. one side of a split."""
        keep = set(question_ids)
        return Survey(
            {qid: q for qid, q in self.questions.items() if qid in keep},
            {c: {qid: d for qid, d in ds.items() if qid in keep} for c, ds in self.distributions.items()},
            Counter(self.skipped),
            self.similarity_path,
            self.source,
            list(self.notes),
        )


def normalize_shares(counts: dict[str, float], question: SurveyQuestion, skipped: Counter) -> Distribution | None:
    """Shares over the question's options summing to 1 (codes outside them and WVS missing codes left out, counted);
    None when no valid answer is left."""
    unknown = sum(c not in question.options and not c.startswith("-") for c in counts)  # negative: WVS missing
    if unknown:
        skipped["answer code not among the question's options"] += unknown
    valid = {c: v for c, v in counts.items() if c in question.options and v > 0}
    total = sum(valid.values())
    if total <= 0 or not math.isfinite(total):
        skipped["question without valid answers for a country"] += 1
        return None
    return {c: valid.get(c, 0.0) / total for c in question.options}


def answer_code(value: str) -> str:
    """Answer codes as strings without float noise: '3.0' -> '3'."""
    value = value.strip()
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if math.isfinite(f) and f == int(f) else value


def is_ordinal(question: SurveyQuestion) -> bool:
    """Whether the question's options, in code order, are an ordered scale (so that W1 over its codes means something).

    The question's own ``ordinal`` when set (``questions.jsonl`` may say ``"ordinal": true``); otherwise inferred,
    because WVS files do not say it (their ``scale`` tag calls the 0-10 and 4-point scales ``categorical``):
    ordinal when the scale is tagged ``numeric-*``, or the codes are integers, there are at least 3 options and
    either every label is a number (a rating scale: "0" .. "10") or both end labels name a degree, frequency,
    agreement, quantity or evaluation (``SCALE_WORDS``), no label is an off-scale answer ("Other", "Don't know",
    "Not allowed to vote": ``OFF_SCALE``) and no end is a midpoint ("About the same": ``MIDPOINT``). A dichotomy
    is nominal: it has no order between its ends to measure (its W1 would be the total variation distance).
    """
    if question.ordinal is not None:
        return question.ordinal
    if question.scale.startswith("numeric"):
        return True
    codes, labels = question.codes, list(question.options.values())
    if len(codes) < 3 or not all(INTEGER_CODE.fullmatch(c) for c in codes):
        return False
    if all(INTEGER_CODE.fullmatch(label.strip()) for label in labels):
        return True
    ends = (labels[0], labels[-1])
    return (
        not any(OFF_SCALE.search(label) for label in labels)
        and not any(MIDPOINT.search(label) for label in ends)
        and all(SCALE_WORDS.search(label) for label in ends)
    )
