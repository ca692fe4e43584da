"""Survey-grounded training targets: the people's answer shares as what a culture's persona should answer.

In: :class:`SurveyQuestion` records (the training side of a split). Out: per (question, culture) that the survey
answered, either one :class:`SoftLabel` (``target="distribution"``: the shares themselves) or ``k``
:class:`ChatSample` records (``target="samples"``: reply codes drawn, seeded, from the shares, shaped like
CultureSPA's samples). The prompt is exactly the culture-aware prompt ``eval wvs --prompt aware`` asks.

Controls, built identically (same questions, same prompts, same count) so that only the culture signal differs:

- ``pooled``: every culture's prompt gets the mean of the training cultures' shares for the question (answer style
  with no culture in it);
- ``shuffled``: each culture's prompt gets another culture's shares, by a seeded derangement of the cultures (the
  culture signal scrambled); an item whose partner culture did not answer the question is dropped and counted.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence

from culturealign.cultures import Culture
from culturealign.data.survey import Survey
from culturealign.errors import UserError
from culturealign.prompting import persona_system, survey_messages
from culturealign.records import ChatSample, SoftLabel, SurveyQuestion
from culturealign.steps.base import Step

TARGETS = ("distribution", "samples")
CONTROLS = ("none", "pooled", "shuffled")


def derangement(codes: Sequence[str], seed: int = 0) -> dict[str, str]:
    """A seeded permutation of ``codes`` that moves every one of them (needs at least two)."""
    if len(codes) < 2:
        raise UserError("the shuffled control needs at least two training cultures")
    rng = random.Random(seed)
    order = list(codes)
    while True:
        perm = order[:]
        rng.shuffle(perm)
        if all(a != b for a, b in zip(order, perm, strict=True)):
            return dict(zip(order, perm, strict=True))


def pooled(dists: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of several distributions over the same codes."""
    return {c: sum(d[c] for d in dists) / len(dists) for c in dists[0]}


class SurveyTargets(Step):
    """Training examples whose targets are the survey's answer shares (or a control built from them)."""

    name = "survey-targets"

    def __init__(
        self,
        survey: Survey,
        cultures: Sequence[Culture],
        target: str = "distribution",
        k: int = 4,
        control: str = "none",
        seed: int = 0,
    ):
        super().__init__()
        if target not in TARGETS:
            raise UserError(f"train.target must be one of {', '.join(TARGETS)}, got {target!r}")
        if control not in CONTROLS:
            raise UserError(f"unknown control {control!r}: use one of {', '.join(CONTROLS)}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise UserError(f"train.samples_per_item must be a whole number >= 1, got {k!r}")
        self.survey, self.cultures, self.target, self.k, self.control, self.seed = (
            survey,
            list(cultures),
            target,
            k,
            control,
            seed,
        )
        self.partner = derangement([c.code for c in cultures], seed) if control == "shuffled" else {}

    def _share(self, q: SurveyQuestion, culture: str) -> dict[str, float] | None:
        d = self.survey.distributions
        if self.control == "pooled":
            return pooled([d[c.code][q.id] for c in self.cultures if q.id in d.get(c.code, {})])
        source = self.partner.get(culture, culture)
        return d.get(source, {}).get(q.id)

    def run(self, records: Iterable[SurveyQuestion]) -> Iterator[SoftLabel | ChatSample]:
        n = 0
        for q in records:
            for c in self.cultures:
                if q.id not in self.survey.distributions.get(c.code, {}):
                    continue  # the culture was not asked this question
                share = self._share(q, c.code)
                meta = {"culture": c.code, "question_id": q.id, "topic": q.topic, "control": self.control}
                if share is None:
                    self.drop({**meta}, "the shuffled partner culture did not answer the question")
                    continue
                messages = survey_messages(q, persona_system(c, "aware"))
                n += 1
                if self.target == "distribution":
                    yield SoftLabel(messages, {code: float(share[code]) for code in q.codes}, meta)
                    continue
                rng = random.Random(f"{self.seed}:{c.code}:{q.id}")
                for code in rng.choices(list(share), weights=list(share.values()), k=self.k):
                    yield ChatSample([*messages, {"role": "assistant", "content": code}], meta)
        self.stats.update(items=n, target=self.target, control=self.control, partner=self.partner or None)
