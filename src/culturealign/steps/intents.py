"""Intent annotation (CLCA): a culture-expert pass gives every utterance of a conversation an intent and, where a
norm of the culture explains it, a cultural reason.

In/out: :class:`Conversation`; each speak / non-verbal :class:`Turn` gets ``intent`` and ``reason`` (``None``
when no cultural norm applies). Two methods:

- ``choice`` (default): the annotator's option scores pick the intent from a fixed list of social acts and the
  reason from a fixed list of cultural norms (``intent_acts`` and ``intent_norms`` in ``resources/prompts.yaml``;
  the norm ``none`` gives no reason). Why: CLCA has GPT-4 write free-text intents, but a small annotator keeps
  to no format (the embedded SmolLM2-135M wrote 0 of 36 utterances' intents in the requested one), which left the
  intent-prediction view, half of CLCA's training signal, empty. Option scoring needs no parsing and works on every
  engine; the norms mirror the Hofstede dimensions the personas' culture profiles were written from. Each
  distribution is divided by the annotator's distribution for a content-free utterance ("N/A") of the same
  culture (contextual calibration, as the judge's ``calibrate``), since a small model favours some labels whatever
  the utterance; labels tied after it (an utterance answered just as the content-free one) go to the uncalibrated
  favourite. An utterance whose options got no probability mass at all stays unannotated.
- ``free``: CLCA's own free-text reply (``Intent:`` / ``Cultural reason:``), for an annotator that can keep to
  it; a reply with no ``Intent:`` line is re-asked up to ``max_retries`` times, then the turn keeps
  ``intent=None``.

stats.json: ``utterances``, ``annotated``, ``unannotated``, ``annotated_share`` (for ``free``: the parse rate) and
``with_cultural_reason``; for ``choice`` also, per question (``intent``, ``reason``), the mean raw probability mass
the annotator put on the labels (``mean_option_mass``: how much it wanted to answer with one at all), the mean
calibrated probability of the label chosen (``mean_choice_prob``) and how often each label was chosen.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from culturealign.cultures import get_culture
from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import templates
from culturealign.records import Conversation, Messages
from culturealign.steps.base import Step
from culturealign.steps.judge import calibrated
from culturealign.steps.roleplay import render_turn, transcript

METHODS = ("choice", "free")
NO_REASON = re.compile(r"^\W*(none|n/?a|no(ne)? (cultural )?(norm|reason)( applies)?)\W*$", re.I)
# question -> (its template, the labels offered: label -> the text written into the turn)
QUESTIONS = {"intent": ("intent_act_user", "intent_acts"), "reason": ("intent_norm_user", "intent_norms")}


def parse_intent(text: str) -> tuple[str, str | None] | None:
    """``Intent: …`` (required) and ``Cultural reason: …`` (``none`` -> no reason) -> (intent, reason)."""
    intent = re.search(r"^[^\w\n]*intent[^\w\n]*:[ \t*_]*(.+)$", text, re.I | re.M)
    if not intent or not intent.group(1).strip() or intent.group(1).strip().startswith("<"):
        return None  # no intent, or the template's placeholder echoed back
    reason = re.search(r"^[^\w\n]*(?:cultural[ \t]+)?reason[^\w\n]*:[ \t*_]*(.+)$", text, re.I | re.M)
    why = reason.group(1).strip() if reason else None
    return intent.group(1).strip(), (None if why is None or NO_REASON.match(why) else why)


def label_list(labels: dict[str, str]) -> str:
    """The labels as the prompt lists them, one ``- label: meaning`` line each."""
    return "\n".join(f"- {label}: {text}" for label, text in labels.items())


class AnnotateIntents(Step):
    """Give every utterance an intent (and a cultural reason where one applies), chosen from lists or written."""

    name = "intents"

    def __init__(
        self, engine: Engine, method: str = "choice", max_retries: int = 2, max_tokens: int = 64, seed: int = 0
    ):
        super().__init__()
        if method not in METHODS:
            raise UserError(f"intents.method must be one of {', '.join(METHODS)}, not {method!r}")
        self.engine, self.method = engine, method
        self.max_retries, self.max_tokens, self.seed = max_retries, max_tokens, seed

    def _fields(self, conv: Conversation, index: int | None) -> dict[str, str]:
        """A prompt's fields for one utterance; ``index=None``: the content-free utterance of the culture."""
        c = get_culture(conv.scenario.culture)
        fields = {"country": c.name, "adjective": c.adjective}
        if index is None:
            return {**fields, "setting": "N/A", "transcript": "N/A", "speaker": "N/A", "utterance": "N/A"}
        turn = conv.turns[index]
        return {
            **fields,
            "setting": conv.scenario.setting,
            "transcript": transcript(conv),
            "speaker": conv.scenario.agents[turn.speaker].name,
            "utterance": render_turn(turn),
        }

    def _messages(self, conv: Conversation, user: str) -> Messages:
        system = templates()["clca"]["intent_system"].format(adjective=get_culture(conv.scenario.culture).adjective)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _prompt(self, conv: Conversation, index: int) -> Messages:
        return self._messages(conv, templates()["clca"]["intent_user"].format(**self._fields(conv, index)))

    def _write(self, pending: list[tuple[Conversation, int]]) -> list[tuple[Conversation, int]]:
        """``free``: ask for the free-text reply, re-ask the unparsed; returns the turns still unannotated."""
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
        return pending

    def _choose(self, pending: list[tuple[Conversation, int]]) -> list[tuple[Conversation, int]]:
        """``choice``: score the act and the norm labels of every utterance; returns the turns left unannotated."""
        t = templates()["clca"]
        neutral = list({c.scenario.culture: c for c, _ in pending}.values())  # one per culture: content-free prompts
        items: list[tuple[Conversation, int | None]] = [(c, None) for c in neutral] + list(pending)
        chosen: dict[str, list[str | None]] = {}
        for question, (template, key) in QUESTIONS.items():
            listed = label_list(t[key])
            prompts = [self._messages(c, t[template].format(**self._fields(c, i), options=listed)) for c, i in items]
            with progress_bar(f"intents: {question}", len(prompts)) as advance:
                scores = self.engine.score_options(prompts, [list(t[key])] * len(prompts), advance)
            priors = {c.scenario.culture: s.probs for c, s in zip(neutral, scores[: len(neutral)], strict=True)}
            picks, masses, probs = [], [], []
            for (conv, _), s in zip(pending, scores[len(neutral) :], strict=True):
                masses.append(s.mass)
                if s.mass <= 0:  # the annotator never answered with a label: nothing to choose from
                    picks.append(None)
                    continue
                dist = calibrated(s.probs, priors[conv.scenario.culture])
                picks.append(max(dist, key=lambda label: (dist[label], s.probs[label])))  # ties: the raw favourite
                probs.append(dist[picks[-1]])
            chosen[question] = picks
            self.stats.setdefault("mean_option_mass", {})[question] = float(f"{sum(masses) / max(len(masses), 1):.3g}")
            self.stats.setdefault("mean_choice_prob", {})[question] = round(sum(probs) / max(len(probs), 1), 4)
            self.stats.setdefault("chosen", {})[question] = dict(Counter(p for p in picks if p).most_common())
        left = []
        for (conv, i), act, norm in zip(pending, chosen["intent"], chosen["reason"], strict=True):
            if act is None:
                left.append((conv, i))
                continue
            conv.turns[i].intent = t["intent_acts"][act]
            conv.turns[i].reason = t["intent_norms"][norm] if norm and norm != "none" else None
        return left

    def run(self, records: Iterable[Conversation]) -> Iterator[Conversation]:
        convs = list(records)
        pending = [(c, i) for c in convs for i, t in enumerate(c.turns) if t.action in ("speak", "non-verbal")]
        total = len(pending)
        left = (self._choose if self.method == "choice" else self._write)(pending) if pending else []
        turns = [t for c in convs for t in c.turns if t.action in ("speak", "non-verbal")]
        self.stats.update(
            utterances=total,
            annotated=total - len(left),
            unannotated=len(left),
            annotated_share=round((total - len(left)) / total, 4) if total else None,
            with_cultural_reason=sum(t.reason is not None for t in turns),
        )
        yield from convs
