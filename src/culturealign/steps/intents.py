"""Intent annotation (CLCA): a culture-expert pass writes a short intent for every utterance of a conversation,
with a cultural reason only where a norm of the culture explains it.

In/out: :class:`Conversation`; each speak / non-verbal :class:`Turn` gets ``intent`` and ``reason`` (``None``
when the expert says no cultural norm applies). A reply with no ``Intent:`` line is re-asked up to
``max_retries`` times; a turn still unannotated keeps ``intent=None`` and is counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from culturealign.cultures import get_culture
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import templates
from culturealign.records import Conversation, Messages
from culturealign.steps.base import Step
from culturealign.steps.roleplay import render_turn, transcript

NO_REASON = re.compile(r"^\W*(none|n/?a|no(ne)? (cultural )?(norm|reason)( applies)?)\W*$", re.I)


def parse_intent(text: str) -> tuple[str, str | None] | None:
    """``Intent: …`` (required) and ``Cultural reason: …`` (``none`` -> no reason) -> (intent, reason)."""
    intent = re.search(r"^[^\w\n]*intent[^\w\n]*:[ \t*_]*(.+)$", text, re.I | re.M)
    if not intent or not intent.group(1).strip() or intent.group(1).strip().startswith("<"):
        return None  # no intent, or the template's placeholder echoed back
    reason = re.search(r"^[^\w\n]*(?:cultural[ \t]+)?reason[^\w\n]*:[ \t*_]*(.+)$", text, re.I | re.M)
    why = reason.group(1).strip() if reason else None
    return intent.group(1).strip(), (None if why is None or NO_REASON.match(why) else why)


class AnnotateIntents(Step):
    """Write an intent (and a cultural reason where one applies) for every utterance."""

    name = "intents"

    def __init__(self, engine: Engine, max_retries: int = 2, max_tokens: int = 64, seed: int = 0):
        super().__init__()
        self.engine, self.max_retries, self.max_tokens, self.seed = engine, max_retries, max_tokens, seed

    def _prompt(self, conv: Conversation, index: int) -> Messages:
        c = get_culture(conv.scenario.culture)
        turn = conv.turns[index]
        t = templates()["clca"]
        return [
            {"role": "system", "content": t["intent_system"].format(adjective=c.adjective)},
            {
                "role": "user",
                "content": t["intent_user"].format(
                    country=c.name,
                    adjective=c.adjective,
                    setting=conv.scenario.setting,
                    transcript=transcript(conv),
                    speaker=conv.scenario.agents[turn.speaker].name,
                    utterance=render_turn(turn),
                ),
            },
        ]

    def run(self, records: Iterable[Conversation]) -> Iterator[Conversation]:
        convs = list(records)
        pending = [(c, i) for c in convs for i, t in enumerate(c.turns) if t.action in ("speak", "non-verbal")]
        total = len(pending)
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            params = GenParams(0.0 if attempt == 0 else 0.7, 0.9, self.max_tokens, seed=self.seed * 100 + attempt)
            with progress_bar(f"intents (try {attempt + 1})", len(pending)) as advance:
                replies = self.engine.generate([self._prompt(c, i) for c, i in pending], params, advance)
            failed = []
            for (conv, i), (reply,) in zip(pending, replies, strict=True):
                parsed = parse_intent(reply)
                if parsed is None:
                    failed.append((conv, i))
                else:
                    conv.turns[i].intent, conv.turns[i].reason = parsed
            pending = failed
        turns = [t for c in convs for t in c.turns if t.action in ("speak", "non-verbal")]
        self.stats.update(
            utterances=total,
            annotated=total - len(pending),
            unannotated=len(pending),
            with_cultural_reason=sum(t.reason is not None for t in turns),
        )
        yield from convs
