"""Typed records that flow between steps, engines and evaluations.

Plain dataclasses that serialize to JSON dicts with a ``type`` tag, so that a step's ``data.jsonl`` can be
read back into the records it was written from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, str]]


@dataclass
class SurveyQuestion:
    """A multiple-choice survey question. ``options`` maps answer code (as written in the survey) to label."""

    id: str
    topic: str
    text: str
    options: dict[str, str]
    scale: str = "categorical"  # "categorical" or "numeric-1-10"
    ordinal: bool | None = None  # an ordered scale (W1 is defined on it); None: inferred, see data.base.is_ordinal

    @property
    def codes(self) -> list[str]:
        return list(self.options)


@dataclass
class Answer:
    """One model answer to a survey question, for one culture (``None`` = culture-unaware)."""

    question_id: str
    culture: str | None
    probs: dict[str, float]  # renormalized over the options
    choice: str  # the chosen option code
    mass: float = 1.0  # raw probability on the option codes (diagnostic); 1.0 for parsed answers
    method: str = "logits"
    reason: str | None = None


@dataclass
class ChatSample:
    """A training example in chat format: ``messages`` ends with the assistant turn to learn."""

    messages: Messages
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SoftLabel:
    """A soft-label training example: a prompt that ends where the reply starts, and the answer distribution over
    option codes to learn (code -> share; the codes in the order the question lists them)."""

    messages: Messages
    target: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnswerPair:
    """A question answered culture-unaware and culture-aware for one culture."""

    question: SurveyQuestion
    culture: str
    unaware: Answer
    aware: Answer


@dataclass
class CulturalQuery:
    """An open question whose good answer depends on the asker's culture, with its culture-relatedness score."""

    id: str
    topic: str
    text: str
    relatedness: float | None = None
    rounds: int = 0  # how many times it was rewritten to raise its score


@dataclass
class Persona:
    """One role-play agent: who they are, what they want, what they hide, and their culture's profile."""

    name: str
    age: int
    occupation: str
    background: str
    goal: str
    secret: str
    culture: str  # alpha-3 code
    profile: str = ""  # short description of the culture (Hofstede dimensions, survey value axes)


@dataclass
class Scenario:
    """A social scenario adapted to a culture: a setting and two personas (``source_id``: the generic one)."""

    id: str
    domain: str
    culture: str
    setting: str
    agents: list[Persona]
    source_id: str = ""


@dataclass
class Turn:
    """One role-play turn: ``action`` is speak, non-verbal, leave or none; intents are added by annotation."""

    speaker: int  # index into the scenario's agents
    action: str
    content: str
    intent: str | None = None
    reason: str | None = None  # the cultural reason behind the intent, only where one applies


@dataclass
class Conversation:
    """A role-played scenario. ``status``: ``left`` (an agent left), ``max-turns`` or ``malformed``."""

    scenario: Scenario
    turns: list[Turn]
    status: str = "max-turns"
    judge: dict[str, Any] = field(default_factory=dict)


@dataclass
class HHHQuery:
    """A query of an HHH dataset with its UNESCO subdomain labels (``["none"]`` when off the taxonomy)."""

    id: str
    text: str
    culture: str | None = None
    labels: list[str] = field(default_factory=list)
    label_probs: dict[str, float] = field(default_factory=dict)
    source: str = "file"  # file | generated | expanded
    split: str | None = None  # train | val | test


@dataclass
class HHHSample:
    """A query with one reference response per axis (helpful, harmless, honest) and its pass flags."""

    query: HHHQuery
    helpful: str
    harmless: str
    honest: str
    pass_hhh: list[int]
    rounds: int = 0  # regeneration rounds the kept candidates needed
    critic: dict[str, Any] = field(default_factory=dict)


@dataclass
class HHHItem:
    """A question with one reference answer per HHH axis, and its cultural subdomain."""

    id: str  # "CX-" + first 10 hex digits of the question's SHA-1: stable when rows are reordered or subset
    question: str
    subdomain_id: int | None  # CulturaX "class"
    subdomain: str | None  # its name in the taxonomy, None when the authors' table lacks the id
    domain: str | None  # the UNESCO domain of that subdomain
    tag: str  # CulturaX's free-text "domain" column
    helpful: str
    harmless: str
    honest: str
    pass_hhh: tuple[int, int, int] | None = None


RECORD_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        SurveyQuestion,
        Answer,
        ChatSample,
        SoftLabel,
        AnswerPair,
        CulturalQuery,
        Persona,
        Scenario,
        Turn,
        Conversation,
        HHHQuery,
        HHHSample,
    )
}


def to_dict(record: Any) -> dict[str, Any]:
    """Serialize a record to a JSON-ready dict tagged with its type (plain dicts pass through)."""
    if isinstance(record, dict):
        return record
    return {"type": type(record).__name__, **dataclasses.asdict(record)}


def from_dict(data: dict[str, Any]) -> Any:
    """Rebuild a record written by :func:`to_dict` (nested records included)."""
    data = dict(data)
    if "type" not in data:
        return data  # a plain dict record
    cls = RECORD_TYPES[data.pop("type")]
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if cls is AnswerPair and f.name == "question":
            value = SurveyQuestion(**value)
        elif cls is AnswerPair and f.name in ("unaware", "aware"):
            value = Answer(**value)
        elif cls is Scenario and f.name == "agents":
            value = [Persona(**a) for a in value]
        elif cls is Conversation and f.name == "scenario":
            value = from_dict({"type": "Scenario", **value})
        elif cls is Conversation and f.name == "turns":
            value = [Turn(**t) for t in value]
        elif cls is HHHSample and f.name == "query":
            value = HHHQuery(**value)
        kwargs[f.name] = value
    return cls(**kwargs)
