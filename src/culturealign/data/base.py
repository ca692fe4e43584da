"""What every survey loader returns: a :class:`Survey` of questions and per-country answer shares.

Below the loaders (``survey.py`` for WVS folders and respondent files, ``goqa.py`` for GlobalOpinionQA), so that
they share it without importing each other.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from culturealign.records import SurveyQuestion

Distribution = dict[str, float]


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
