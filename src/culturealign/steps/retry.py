"""Generate, parse, ask again: the one loop of every step that needs replies in a format (questions, queries).

Each slot (a topic and a slot number, a subdomain and a culture...) is asked until its reply parses, at most
``max_retries + 1`` times. Prompts that share a seed go to the engine in one batched call, so equal prompts of
different slots still get different samples when their seeds differ, and every call stays in the run's cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
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
    gives ``(value, None)``; ``(None, reason)`` asks again. Slots asked with equal parameters share one call."""
    out: Parsed[K] = Parsed()
    pending = list(slots)
    for attempt in range(max_retries + 1):
        if not pending:
            break
        groups: dict[GenParams, list[K]] = {}
        for slot in pending:
            groups.setdefault(params(slot, attempt), []).append(slot)
        for group_params, group in sorted(groups.items(), key=lambda g: g[0].seed):
            with progress_bar(f"{label} (try {attempt + 1})", len(group)) as advance:
                replies = engine.generate([prompt(s, attempt) for s in group], group_params, progress=advance)
            out.asked += len(group)
            for slot, (reply,) in zip(group, replies, strict=True):
                value, reason = parse(reply)
                if reason is None:
                    out.values[slot] = value
                    out.failures.pop(slot, None)
                else:
                    out.failures[slot] = reason
        pending = [s for s in pending if s not in out.values]
    return out
