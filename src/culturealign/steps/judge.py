"""Judged filtering of role-played conversations (CLCA): rate, critique the ratings, rate again, drop the bad.

In/out: :class:`Conversation`. The judge (any engine with option scoring) gives a distribution over ratings
1-5 for quality (natural, coherent, on the situation) and for fidelity to the culture, writes a critique of
its own two ratings, and rates both again with the critique in view. A conversation is dropped when, after the
critique, P(rating <= ``bad_max``) >= ``confidence`` for either aspect: bad with high confidence. Conversations
with fewer than ``min_turns`` turns are dropped before judging, and so are those the role-play closed ``malformed``
unless ``keep_malformed``: a turn there stayed unparsable (or a verbatim repeat) after its re-asks, so the model had
lost the thread and the conversation stops mid-exchange, which is not behaviour to train on (and the judge, scoring
the transcript only, cannot see it). Verdicts land in ``Conversation.judge``.

With ``calibrate`` (contextual calibration, Zhao et al., ICML 2021), each rating distribution is divided by the
judge's distribution for a content-free conversation ("N/A") of the same culture and renormalized, so a judge
that says "1" to anything (small models favour the first option) does not drop everything; the raw
distributions are kept beside the calibrated ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from culturealign.cultures import get_culture
from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import templates
from culturealign.records import Conversation, Messages
from culturealign.steps.base import Step
from culturealign.steps.roleplay import transcript

RATINGS = ["1", "2", "3", "4", "5"]
ASPECTS = {"quality": "naturalness and coherence", "fidelity": "faithfulness to the culture"}


def p_bad(probs: dict[str, float], bad_max: int) -> float:
    """Probability mass on ratings at or below ``bad_max``."""
    return sum(p for r, p in probs.items() if int(r) <= bad_max)


def calibrated(probs: dict[str, float], prior: dict[str, float]) -> dict[str, float]:
    """``probs`` divided by the content-free ``prior`` and renormalized (contextual calibration)."""
    raw = {r: p / max(prior.get(r, 0.0), 1e-9) for r, p in probs.items()}
    total = sum(raw.values())
    return {r: v / total for r, v in raw.items()}


def expected_rating(probs: dict[str, float]) -> float:
    return sum(int(r) * p for r, p in probs.items())


class JudgeConversations(Step):
    """Rate -> critique -> re-rate each conversation; drop those rated bad with high confidence."""

    name = "judge"

    def __init__(
        self,
        judge: Engine,
        bad_max: int = 2,
        confidence: float = 0.7,
        min_turns: int = 2,
        calibrate: bool = False,
        keep_malformed: bool = False,
    ):
        super().__init__()
        if not 1 <= bad_max < 5 or not 0 < confidence <= 1:
            raise UserError(
                f"filter.bad_max must be in 1..4 and filter.confidence in (0, 1], not {bad_max!r} and {confidence!r}"
            )
        self.judge, self.bad_max, self.confidence, self.min_turns = judge, bad_max, confidence, min_turns
        self.calibrate, self.keep_malformed = calibrate, keep_malformed

    def _unjudged(self, conv: Conversation) -> str | None:
        """Why a conversation is dropped before judging, if it is."""
        if len(conv.turns) < self.min_turns:
            return f"fewer than {self.min_turns} turns"
        if conv.status == "malformed" and not self.keep_malformed:
            return "closed malformed by the role-play"
        return None

    def _priors(self, cultures: list[str]) -> dict[str, dict[str, dict[str, float]]]:
        """aspect -> culture -> the judge's rating distribution for a content-free conversation."""
        t = templates()["clca"]
        out: dict[str, dict[str, dict[str, float]]] = {}
        for aspect in ASPECTS:
            prompts = []
            for code in cultures:
                c = get_culture(code)
                fields = {"country": c.name, "adjective": c.adjective, "setting": "N/A", "transcript": "N/A"}
                prompts.append([{"role": "user", "content": t[f"judge_{aspect}"].format(**fields)}])
            out[aspect] = dict(zip(cultures, self._rate(prompts, f"{aspect} prior"), strict=True))
        return out

    def _fields(self, conv: Conversation) -> dict[str, str]:
        c = get_culture(conv.scenario.culture)
        return {
            "country": c.name,
            "adjective": c.adjective,
            "setting": conv.scenario.setting,
            "transcript": transcript(conv),
        }

    def _rate(self, prompts: list[Messages], label: str) -> list[dict[str, float]]:
        with progress_bar(f"judge: {label}", len(prompts)) as advance:
            scores = self.judge.score_options(prompts, [RATINGS] * len(prompts), advance)
        return [s.probs for s in scores]

    def run(self, records: Iterable[Conversation]) -> Iterator[Conversation]:
        t = templates()["clca"]
        convs, unjudged = [], 0
        for conv in records:
            if reason := self._unjudged(conv):
                unjudged += 1
                self.drop(conv, reason)
            else:
                convs.append(conv)
        fields = [self._fields(c) for c in convs]
        first = {
            aspect: self._rate(
                [[{"role": "user", "content": t[f"judge_{aspect}"].format(**f)}] for f in fields], aspect
            )
            for aspect in ASPECTS
        }
        tops = [{a: max(first[a][i], key=first[a][i].get) for a in ASPECTS} for i in range(len(convs))]
        critique_prompts = [
            [{"role": "user", "content": t["critique"].format(**f, **top)}]
            for f, top in zip(fields, tops, strict=True)
        ]
        with progress_bar("judge: critique", len(convs)) as advance:
            critiques = [r[0].strip() for r in self.judge.generate(critique_prompts, GenParams(0.0, 1.0, 80), advance)]
        final = {
            aspect: self._rate(
                [
                    [{"role": "user", "content": t["rerate"].format(**f, **top, critique=cr, aspect=words)}]
                    for f, top, cr in zip(fields, tops, critiques, strict=True)
                ],
                f"{aspect} after critique",
            )
            for aspect, words in ASPECTS.items()
        }
        raw_final = final
        if self.calibrate and convs:
            priors = self._priors(sorted({c.scenario.culture for c in convs}))
            final = {
                a: [calibrated(final[a][i], priors[a][c.scenario.culture]) for i, c in enumerate(convs)]
                for a in ASPECTS
            }
        kept = 0
        for i, conv in enumerate(convs):
            conv.judge = {
                "first": {a: first[a][i] for a in ASPECTS},
                "critique": critiques[i],
                "final": {a: final[a][i] for a in ASPECTS},
                "final_raw": {a: raw_final[a][i] for a in ASPECTS},
                "calibrated": self.calibrate,
                "expected": {a: round(expected_rating(final[a][i]), 3) for a in ASPECTS},
                "p_bad": {a: round(p_bad(final[a][i], self.bad_max), 4) for a in ASPECTS},
            }
            bad = [a for a in ASPECTS if conv.judge["p_bad"][a] >= self.confidence]
            if bad:
                self.drop(conv, f"rated bad with confidence >= {self.confidence} for {' and '.join(bad)}")
                continue
            kept += 1
            yield conv
        total = len(convs) + unjudged
        self.stats.update(total=total, kept=kept, dropped=total - kept)
