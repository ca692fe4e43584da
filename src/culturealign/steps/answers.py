"""Culture-unaware and culture-aware answers (CultureSPA step 2).

In: :class:`SurveyQuestion` records. Out: one :class:`AnswerPair` per (question, culture): the answer of a
real person with no culture named, and of a person with that culture's background (optionally with
cross-culture thinking). Each answer is scored from option probabilities (every question answered for every
culture, no parse failures); the chosen option is either the top option (``choice="top"``) or drawn from the
distribution sharpened by ``temperature`` with a seeded generator (``choice="sample"``, as the paper samples
its answers at T=0.6). An optional short reason is generated for the aware answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence

from culturealign.cultures import Culture
from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import format_options, persona_system, survey_messages, templates
from culturealign.records import Answer, AnswerPair, SurveyQuestion
from culturealign.steps.base import Step


def choose_option(probs: dict[str, float], choice: str, temperature: float, rng: random.Random) -> str:
    """The answer code: top option, or a draw from ``probs ** (1 / temperature)`` renormalized."""
    if choice == "top" or temperature == 0:
        return max(probs, key=lambda c: probs[c])
    weights = [p ** (1 / temperature) for p in probs.values()]
    return rng.choices(list(probs), weights=weights)[0]


class AnswerUnawareAware(Step):
    """Answer each question culture-unaware once and culture-aware for each culture."""

    name = "answer"

    def __init__(
        self,
        engine: Engine,
        cultures: Sequence[Culture],
        choice: str = "sample",
        temperature: float = 0.6,
        cross_culture: bool = False,
        similarity: dict[str, dict[str, float]] | None = None,
        reasons: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if choice not in ("top", "sample"):
            raise UserError(f"answers.choice must be 'top' or 'sample', got {choice!r}")
        self.engine, self.cultures, self.choice, self.temperature = engine, list(cultures), choice, temperature
        self.mode = "cross-culture" if cross_culture else "aware"
        self.similarity, self.reasons, self.seed = similarity, reasons, seed

    def run(self, records: Iterable[SurveyQuestion]) -> Iterator[AnswerPair]:
        questions = list(records)
        personas: list[Culture | None] = [None, *self.cultures]
        systems = [persona_system(c, "unaware" if c is None else self.mode, self.similarity) for c in personas]
        prompts = [survey_messages(q, s) for q in questions for s in systems]
        with progress_bar("answers (unaware + aware)", len(prompts)) as advance:
            scores = self.engine.score_options(prompts, [q.codes for q in questions for _ in systems], advance)
        pairs = []
        for qi, q in enumerate(questions):
            answers = []
            for pi, persona in enumerate(personas):
                s = scores[qi * len(personas) + pi]
                code = persona.code if persona else None
                rng = random.Random(f"{self.seed}:{q.id}:{code}")
                answers.append(
                    Answer(
                        q.id,
                        code,
                        s.probs,
                        choose_option(s.probs, self.choice, self.temperature, rng),
                        s.mass,
                        s.method,
                    )
                )
            pairs += [AnswerPair(q, c.code, answers[0], a) for c, a in zip(self.cultures, answers[1:], strict=True)]
        if self.reasons:
            self._add_reasons(pairs)
        self.stats.update(questions=len(questions), pairs=len(pairs), model_calls=len(prompts))
        yield from pairs

    def _add_reasons(self, pairs: list[AnswerPair]) -> None:
        t = templates()["survey"]
        prompts = []
        for p in pairs:
            culture = next(c for c in self.cultures if c.code == p.culture)
            user = t["reason_user"].format(
                question=p.question.text, options=format_options(p.question), choice=p.aware.choice
            )
            prompts.append(
                [
                    {"role": "system", "content": persona_system(culture, self.mode, self.similarity)},
                    {"role": "user", "content": user},
                ]
            )
        replies = self.engine.generate(prompts, GenParams(temperature=0.0, max_tokens=48, seed=self.seed))
        for p, (reason,) in zip(pairs, replies, strict=True):
            p.aware.reason = reason.split("\n")[0].strip()
