"""CLCA role-play (Liu, Korhonen, Gurevych, ACL 2025): culturally adapted scenarios and two-agent conversations.

- :func:`culture_profile`: short sentences on a culture from its Hofstede scores and its survey value axes.
- :class:`AdaptScenarios`: in: nothing (reads the shipped bank ``resources/clca_scenarios.json``); out: one
  :class:`Scenario` per (generic scenario, culture), rewritten for the culture by an LLM (setting and names).
  A field the LLM does not deliver after ``max_retries`` falls back to the generic text (counted in stats).
- :func:`parse_turn`: one agent reply -> (action, content), or ``None`` when malformed.
- :class:`RolePlay`: in: :class:`Scenario`; out: :class:`Conversation`. Two agents alternate, every active
  conversation advancing one turn per batched engine call; a conversation ends when an agent leaves, after
  ``max_turns`` turn pairs, or, marked ``malformed``, when a turn is still malformed after ``max_retries``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources

from culturealign.cultures import Culture, get_culture
from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import templates
from culturealign.records import Conversation, Messages, Persona, Scenario, Turn
from culturealign.steps.base import Step

log = logging.getLogger(__name__)
ACTIONS = ("speak", "non-verbal", "leave", "none")
_ACTION_ALIASES = {
    "speak": "speak",
    "say": "speak",
    "non-verbal": "non-verbal",
    "nonverbal": "non-verbal",
    "non verbal": "non-verbal",
    "non-verbal communication": "non-verbal",
    "action": "non-verbal",
    "leave": "leave",
    "none": "none",
    "do nothing": "none",
}


def load_scenario_bank() -> list[dict]:
    """The generic scenarios shipped with the project (culture-neutral, SOTOPIA style)."""
    text = resources.files("culturealign.resources").joinpath("clca_scenarios.json").read_text("utf-8")
    return json.loads(text)["scenarios"]


def culture_profile(
    culture: Culture,
    hofstede: dict[str, float | None] | None = None,
    axes: dict[str, float] | None = None,
) -> str:
    """Sentences on a culture: each Hofstede dimension outside the middle band (< 40 or > 60), and each survey
    value axis more than half a standard deviation from the surveyed countries' mean."""
    t = templates()["clca"]
    parts = []
    for dim, (low, high) in t["hofstede"].items():
        score = (hofstede or {}).get(dim)
        if score is not None and (score < 40 or score > 60):
            parts.append(high if score > 60 else low)
    for axis, (low, high) in t["axes"].items():
        z = (axes or {}).get(axis)
        if z is not None and abs(z) > 0.5:
            parts.append(high if z > 0 else low)
    if not parts:
        return f"the everyday customs and social norms of {culture.name}."
    return "; ".join(parts) + "."


def parse_adaptation(text: str, culture: Culture) -> dict[str, str]:
    """Fields of an adaptation reply: ``setting`` (labelled, or a first paragraph naming the country or its
    people), ``name_a`` and ``name_b`` (labelled only). Missing fields are absent."""
    out: dict[str, str] = {}
    for key, label in (("setting", "setting"), ("name_a", r"name\s*a"), ("name_b", r"name\s*b")):
        m = re.search(rf"^[^\w\n]*{label}[^\w\n]*:[ \t*_]*(.+)$", text, flags=re.I | re.M)
        if m and (value := m.group(1).strip().strip("*\"' ")) and not value.startswith("<"):
            out[key] = value
    if "setting" not in out:
        first = text.strip().split("\n\n")[0].strip()
        named = culture.name.lower() in first.lower() or culture.adjective.lower() in first.lower()
        if named and 8 <= len(first.split()) <= 120:
            out["setting"] = first
    for key in ("name_a", "name_b"):  # a name is 1-5 capitalized words, nothing else
        if key in out and not re.fullmatch(r"(?:[A-Z][\w'.-]*\s?){1,5}", out[key]):
            del out[key]
    return out


class AdaptScenarios(Step):
    """Adapt ``per_culture`` generic scenarios (the bank, in order, or ``domains`` only) to each culture."""

    name = "adapt-scenarios"

    def __init__(
        self,
        engine: Engine,
        cultures: Sequence[Culture],
        profiles: dict[str, str],
        per_culture: int = 3,
        domains: Sequence[str] | None = None,
        max_retries: int = 2,
        temperature: float = 0.7,
        seed: int = 0,
        bank: list[dict] | None = None,
    ):
        super().__init__()
        self.engine, self.cultures, self.profiles = engine, list(cultures), profiles
        self.per_culture, self.domains, self.max_retries = per_culture, domains, max_retries
        self.temperature, self.seed = temperature, seed
        self.bank = bank if bank is not None else load_scenario_bank()

    def _pick(self, culture_index: int) -> list[dict]:
        """Scenarios for one culture: the bank interleaved across domains (one of each domain in turn), each
        culture starting where the previous one stopped, so a handful of scenarios still spans domains."""
        pool = [s for s in self.bank if not self.domains or s["domain"] in self.domains]
        by_domain: dict[str, list[dict]] = {}
        for s in pool:
            by_domain.setdefault(s["domain"], []).append(s)
        columns = list(by_domain.values())
        mixed = [col[i] for i in range(max(map(len, columns), default=0)) for col in columns if i < len(col)]
        start = (culture_index * self.per_culture) % max(len(mixed), 1)
        return [mixed[(start + i) % len(mixed)] for i in range(min(self.per_culture, len(mixed)))]

    def run(self, records: Iterable) -> Iterator[Scenario]:
        t = templates()["clca"]["adapt_user"]
        jobs = [(g, c) for i, c in enumerate(self.cultures) for g in self._pick(i)]
        found: list[dict[str, str]] = [{} for _ in jobs]
        for attempt in range(self.max_retries + 1):
            todo = [i for i, f in enumerate(found) if len(f) < 3]
            if not todo:
                break
            prompts = []
            for i in todo:
                g, c = jobs[i]
                a, b = g["agents"]
                fields = {
                    "country": c.name,
                    "adjective": c.adjective,
                    "setting": g["setting"],
                    **{f"{k}_a": a[k] for k in ("role", "age", "occupation")},
                    **{f"{k}_b": b[k] for k in ("role", "age", "occupation")},
                }
                prompts.append([{"role": "user", "content": t.format(**fields)}])
            params = GenParams(self.temperature, 0.9, 160, seed=self.seed * 100 + attempt)
            with progress_bar(f"adapt scenarios (try {attempt + 1})", len(prompts)) as advance:
                replies = self.engine.generate(prompts, params, advance)
            for i, (reply,) in zip(todo, replies, strict=True):
                found[i] = {**parse_adaptation(reply, jobs[i][1]), **found[i]}
        fallbacks: Counter = Counter()
        for (g, c), f in zip(jobs, found, strict=True):
            for key in ("setting", "name_a", "name_b"):
                fallbacks[key] += key not in f
            a, b = g["agents"]
            setting = f.get("setting") or f"{g['setting']} This takes place in {c.name}."
            names = [f.get("name_a") or a["role"].capitalize(), f.get("name_b") or b["role"].capitalize()]
            if names[0] == names[1]:
                names[1] += " (2)"
            agents = [
                Persona(
                    name=n,
                    age=int(x["age"]),
                    occupation=x["occupation"],
                    background=f"{n} is the {x['role']} in this situation and grew up in {c.name}.",
                    goal=x["goal"],
                    secret=x["secret"],
                    culture=c.code,
                    profile=self.profiles.get(c.code, ""),
                )
                for n, x in zip(names, (a, b), strict=True)
            ]
            yield Scenario(f"{g['id']}-{c.code}", g["domain"], c.code, setting, agents, g["id"])
        self.stats.update(scenarios=len(jobs), fallback_to_generic=dict(fallbacks))


_TURN_LABEL = re.compile(r"^[^\w\n]*(action|content)[^\w\n]*:[ \t*_]*(.*)$", re.I)


def _strip_speaker_lines(text: str, own: str, others: Sequence[str]) -> str:
    """One turn is one utterance: drop the own-name label, and cut the reply at a line that speaks for someone
    else, narrates the next turn, or starts a second labelled utterance of the speaker."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if any(re.match(rf"^\W*(the\s+)?{re.escape(o)}\s*:", stripped, re.I) for o in others):
            break
        if re.match(r"^\W*(it is )?(your|my) turn\b", stripped, re.I):
            break
        own_label = re.compile(rf"^\W*(the\s+)?{re.escape(own)}\s*:\s*", re.I) if own else None
        if own_label and own_label.match(stripped):
            if any(k.strip() for k in kept):
                break
            stripped = own_label.sub("", stripped)
        kept.append(stripped)
    return _complete_sentences("\n".join(kept).strip())


def _complete_sentences(text: str) -> str:
    """Cut a reply that stopped mid-sentence (the token limit) after its last complete sentence, if it has one."""
    if not text or text[-1] in ".!?*\"')":
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return text[: ends[-1]].strip() if ends else text


def parse_turn(text: str, own: str = "", others: Sequence[str] = (), lenient: bool = True) -> tuple[str, str] | None:
    """One agent reply -> ``(action, content)``; ``None`` when malformed.

    Accepted: the prompt's ``Action: …`` / ``Content: …`` lines, SOTOPIA's JSON (``{"action_type", "argument"}``)
    and ``[action] content``. With ``lenient`` (default), a plain reply with no action label counts as speech:
    small models ignore formats, and their text is still an utterance. Lines speaking for another person are cut.
    Malformed: an unknown action, or a speak / non-verbal turn with nothing left to say. (:class:`RolePlay` also
    re-asks a turn that repeats one of the last two verbatim.)
    """
    text = text.strip()
    action, content = None, None
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "action_type" in data:
            action, content = str(data["action_type"]), str(data.get("argument", ""))
    except (json.JSONDecodeError, ValueError):
        pass
    if action is None:
        labelled = {}
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if m := _TURN_LABEL.match(line):
                key = m.group(1).lower()
                if key in labelled:
                    break  # a second Action/Content block is the model writing the next turn
                labelled[key] = m.group(2) if key == "action" else "\n".join([m.group(2), *lines[i + 1 :]])
        if "action" in labelled:
            action, content = labelled["action"], labelled.get("content", "")
            content = content.split("\nAction", 1)[0]
        elif m := re.match(r"^\[([\w -]+)\]\s*(.*)$", text, re.S):
            action, content = m.group(1), m.group(2)
        elif lenient and text:
            action, content = "speak", text
        else:
            return None
    action = _ACTION_ALIASES.get(action.strip().strip("*<>").lower())
    if action is None:
        return None
    content = _strip_speaker_lines(content or "", own, others)
    if action in ("speak", "non-verbal") and not content:
        return None
    return action, content


def render_turn(turn: Turn) -> str:
    """How a turn reads to the other agent and in transcripts."""
    if turn.action == "speak":
        return turn.content
    if turn.action == "non-verbal":
        return f"*{turn.content}*"
    if turn.action == "leave":
        return f"*leaves* {turn.content}".strip()
    return "*says nothing*"


def transcript(conv: Conversation) -> str:
    names = [a.name for a in conv.scenario.agents]
    return "\n".join(f"{names[t.speaker]}: {render_turn(t)}" for t in conv.turns)


def agent_system(scenario: Scenario, speaker: int) -> str:
    """The system prompt of one agent: their persona, culture profile, the situation, their goal and secret."""
    me, other = scenario.agents[speaker], scenario.agents[1 - speaker]
    culture = get_culture(me.culture)
    return templates()["clca"]["agent_system"].format(
        name=me.name,
        age=me.age,
        occupation=me.occupation,
        country=culture.name,
        adjective=culture.adjective,
        background=me.background,
        profile=me.profile,
        setting=scenario.setting,
        other_name=other.name,
        other_age=other.age,
        other_occupation=other.occupation,
        goal=me.goal,
        secret=me.secret,
    )


def agent_messages(conv: Conversation, speaker: int) -> Messages:
    """The chat one agent sees: its system prompt, the other agent's turns as user turns, its own as assistant."""
    messages: Messages = [{"role": "system", "content": agent_system(conv.scenario, speaker)}]
    if not conv.turns or conv.turns[0].speaker == speaker:
        messages.append({"role": "user", "content": templates()["clca"]["first_turn"]})
    for turn in conv.turns:
        role = "assistant" if turn.speaker == speaker else "user"
        messages.append({"role": role, "content": render_turn(turn)})
    return messages


class RolePlay(Step):
    """Two agents alternate turns (agent 0 first) until one leaves, ``max_turns`` pairs pass, or a turn stays
    malformed after ``max_retries`` re-asks (the conversation is then closed and marked ``malformed``)."""

    name = "role-play"

    def __init__(
        self,
        engine: Engine,
        max_turns: int = 10,
        max_retries: int = 2,
        temperature: float = 0.7,
        max_tokens: int = 80,
        lenient: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        if max_turns < 1:
            raise UserError(f"roleplay.max_turns must be a whole number >= 1, not {max_turns!r}")
        self.engine, self.max_turns, self.max_retries = engine, max_turns, max_retries
        self.temperature, self.max_tokens, self.lenient, self.seed = temperature, max_tokens, lenient, seed

    def run(self, records: Iterable[Scenario]) -> Iterator[Conversation]:
        convs = [Conversation(s, [], "running") for s in records]
        retries = 0
        with progress_bar("role-play turns", 2 * self.max_turns * len(convs)) as advance:
            for step in range(2 * self.max_turns):
                speaker = step % 2
                active = [c for c in convs if c.status == "running"]
                pending = list(active)
                for attempt in range(self.max_retries + 1):
                    if not pending:
                        break
                    params = GenParams(self.temperature, 0.9, self.max_tokens, seed=self.seed * 1000 + attempt)
                    replies = self.engine.generate([agent_messages(c, speaker) for c in pending], params)
                    failed = []
                    for conv, (reply,) in zip(pending, replies, strict=True):
                        names = [a.name for a in conv.scenario.agents]
                        parsed = parse_turn(reply, names[speaker], [names[1 - speaker]], self.lenient)
                        if parsed is not None and parsed[1] and parsed[1] in {t.content for t in conv.turns[-2:]}:
                            parsed = None  # a verbatim repeat of the last turns: a degenerate loop, ask again
                        if parsed is None:
                            failed.append(conv)
                            continue
                        conv.turns.append(Turn(speaker, *parsed))
                        if parsed[0] == "leave":
                            conv.status = "left"
                    retries += len(failed) if attempt < self.max_retries else 0
                    pending = failed
                for conv in pending:
                    conv.status = "malformed"
                if advance:  # None when progress bars are off
                    advance(len(convs))
        statuses: Counter = Counter()
        for conv in convs:
            if conv.status == "running":
                conv.status = "max-turns"
            statuses[conv.status] += 1
            yield conv
        self.stats.update(
            conversations=len(convs),
            ended_by=dict(statuses),
            turns=sum(len(c.turns) for c in convs),
            retried_turns=retries,
            actions=dict(Counter(t.action for c in convs for t in c.turns)),
        )
