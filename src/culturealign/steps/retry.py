"""Generate, parse, ask again: the one loop of every step that needs replies in a format (questions, queries).

Each slot (a topic and a slot number, a subdomain and a culture...) is asked until its reply parses, at most
``max_retries + 1`` times. Every slot of a round goes to the engine in one batched call (large batches are where a
local model is fast), under the seed of its first slot: the cache key holds the prompt and the seed, so distinct
prompts never share an answer. Slots whose prompts are equal must still get different samples: they go to
further calls ("waves"), each under its own first slot's seed. Every call stays in the run's cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.records import Messages

K = TypeVar("K", bound=Hashable)


@dataclass
class Parsed(Generic[K]):
    """What the loop got: the parsed value per slot, the last failure per slot never parsed, prompts asked."""

    values: dict[K, Any] = field(default_factory=dict)
    failures: dict[K, str] = field(default_factory=dict)
    asked: int = 0


def ask_until_parsed(
    engine: Engine,
    slots: Sequence[K],
    prompt: Callable[[K, int], Messages],
    parse: Callable[[str], tuple[Any, str | None]],
    params: Callable[[K, int], GenParams],
    max_retries: int,
    label: str,
) -> Parsed[K]:
    """Ask every slot (``prompt(slot, attempt)``, sampled with ``params(slot, attempt)``) until ``parse(reply)``
    gives ``(value, None)``; ``(None, reason)`` asks again. Slots whose parameters differ only in the seed share
    one call (see the module's docstring for the seed it gets)."""
    out: Parsed[K] = Parsed()
    pending = list(slots)
    for attempt in range(max_retries + 1):
        if not pending:
            break
        calls = [(params(w[0], attempt), w) for w in _waves(pending, attempt, prompt, params)]
        with progress_bar(f"{label} (try {attempt + 1})", len(pending)) as advance:
            for call_params, group in calls:
                replies = engine.generate([prompt(s, attempt) for s in group], call_params, progress=advance)
                out.asked += len(group)
                _parsed(out, group, replies, parse)
        pending = [s for s in pending if s not in out.values]
    return out


def _waves(
    pending: Sequence[K], attempt: int, prompt: Callable[[K, int], Messages], params: Callable[[K, int], GenParams]
) -> list[list[K]]:
    """The slots in calls: one per sampling setting (the seed aside), split where two prompts are equal."""
    waves: list[tuple[GenParams, list[K], set[str]]] = []
    for slot in pending:
        setting, text = replace(params(slot, attempt), seed=0), json.dumps(prompt(slot, attempt), sort_keys=True)
        wave = next((w for w in waves if w[0] == setting and text not in w[2]), None)
        if wave is None:
            waves.append((setting, [], set()))
            wave = waves[-1]
        wave[1].append(slot)
        wave[2].add(text)
    return [w[1] for w in waves]


def _parsed(out: Parsed[K], group: Sequence[K], replies: list[list[str]], parse: Callable) -> None:
    for slot, (reply,) in zip(group, replies, strict=True):
        value, reason = parse(reply)
        if reason is None:
            out.values[slot] = value
            out.failures.pop(slot, None)
        else:
            out.failures[slot] = reason
