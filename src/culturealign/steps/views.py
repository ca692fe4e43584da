"""Training views: turn selected records into chat samples (prompt + the assistant reply to learn).

In: :class:`AnswerPair`. Out: :class:`ChatSample` whose messages are the culture-aware survey prompt (the
culture named in the system prompt) and the aware answer's code as the reply, with the culture in ``meta``
so that culture-specific training can split the same set per culture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from culturealign.cultures import Culture
from culturealign.prompting import persona_system, survey_messages
from culturealign.records import AnswerPair, ChatSample
from culturealign.steps.base import Step


class SurveyAnswerSamples(Step):
    name = "training-data"

    def __init__(self, cultures: Sequence[Culture], with_reason: bool = False):
        super().__init__()
        self.cultures = {c.code: c for c in cultures}
        self.with_reason = with_reason

    def run(self, records: Iterable[AnswerPair]) -> Iterator[ChatSample]:
        n = 0
        for pair in records:
            messages = survey_messages(pair.question, persona_system(self.cultures[pair.culture], "aware"))
            reply = pair.aware.choice
            if self.with_reason and pair.aware.reason:
                reply = f"{reply}\n{pair.aware.reason}"
            messages.append({"role": "assistant", "content": reply})
            n += 1
            yield ChatSample(
                messages, {"culture": pair.culture, "question_id": pair.question.id, "topic": pair.question.topic}
            )
        self.stats.update(samples=n)
