"""Training views: turn selected records into chat samples (the assistant turns are what is learned).

:class:`SurveyAnswerSamples` (CultureSPA) -- in: :class:`AnswerPair`; out: :class:`ChatSample` whose messages
are the culture-aware survey prompt (the culture named in the system prompt) and the aware answer's code as the
reply, with the culture in ``meta`` so that culture-specific training can split the same set per culture.
:class:`DialogueViews` (CLCA) -- in: :class:`Conversation`; out: per-speaker and intent-prediction samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from culturealign.cultures import Culture, get_culture
from culturealign.errors import UserError
from culturealign.prompting import persona_system, survey_messages, templates
from culturealign.records import AnswerPair, ChatSample, Conversation, Messages, SoftLabel
from culturealign.steps.base import Step
from culturealign.steps.roleplay import agent_messages, transcript


class SurveyAnswerSamples(Step):
    name = "training-data"

    def __init__(self, cultures: Sequence[Culture], with_reason: bool = False, target: str = "code"):
        super().__init__()
        if target not in ("code", "distribution"):
            raise UserError(f"train.target must be 'code' or 'distribution', got {target!r}")
        self.cultures = {c.code: c for c in cultures}
        self.with_reason = with_reason
        self.target = target

    def run(self, records: Iterable[AnswerPair]) -> Iterator[ChatSample | SoftLabel]:
        n = 0
        for pair in records:
            messages = survey_messages(pair.question, persona_system(self.cultures[pair.culture], "aware"))
            meta = {"culture": pair.culture, "question_id": pair.question.id, "topic": pair.question.topic}
            if self.target == "distribution":  # the aware option distribution itself, not one code drawn from it
                n += 1
                yield SoftLabel(messages, {c: float(pair.aware.probs[c]) for c in pair.question.codes}, meta)
                continue
            reply = pair.aware.choice
            if self.with_reason and pair.aware.reason:
                reply = f"{reply}\n{pair.aware.reason}"
            messages.append({"role": "assistant", "content": reply})
            n += 1
            yield ChatSample(messages, meta)
        self.stats.update(samples=n)


class DialogueViews(Step):
    """CLCA training views. In: :class:`Conversation`; out: :class:`ChatSample`.

    Per conversation, one sample per speaker (system prompt = that speaker's persona and situation, the other
    speaker's turns as user turns, its own as assistant turns: the loss falls on that speaker's turns only)
    and one intent-prediction sample (the transcript in, every utterance's intent and cultural reason out).
    """

    name = "views"

    def __init__(self, intents: bool = True):
        super().__init__()
        self.intents = intents

    def run(self, records: Iterable[Conversation]) -> Iterator[ChatSample]:
        counts = {"speaker": 0, "intent": 0}
        for conv in records:
            meta = {"culture": conv.scenario.culture, "scenario": conv.scenario.id}
            for speaker in (0, 1):
                messages = agent_messages(conv, speaker)
                while messages and messages[-1]["role"] != "assistant":
                    messages.pop()
                if any(m["role"] == "assistant" for m in messages):
                    counts["speaker"] += 1
                    yield ChatSample(messages, {**meta, "view": "speaker", "speaker": speaker})
            annotated = [t for t in conv.turns if t.intent]
            if self.intents and annotated:
                counts["intent"] += 1
                yield ChatSample(intent_messages(conv), {**meta, "view": "intent"})
        self.stats.update(samples=counts)


def intent_messages(conv: Conversation) -> Messages:
    """The intent-prediction view: the transcript in; each annotated utterance's intent (and reason) out."""
    c = get_culture(conv.scenario.culture)
    t = templates()["clca"]
    names = [a.name for a in conv.scenario.agents]
    lines = [
        f"{names[turn.speaker]}: {turn.intent}" + (f" (Cultural reason: {turn.reason})" if turn.reason else "")
        for turn in conv.turns
        if turn.intent
    ]
    user = t["intent_view_user"].format(
        country=c.name, adjective=c.adjective, setting=conv.scenario.setting, transcript=transcript(conv)
    )
    return [
        {"role": "system", "content": t["intent_system"].format(adjective=c.adjective)},
        {"role": "user", "content": user},
        {"role": "assistant", "content": "\n".join(lines)},
    ]
