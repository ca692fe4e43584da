"""The one step contract: a step takes an iterable of records and yields records.

A pipeline is a plain list of steps; :func:`culturealign.runs.runner.run_steps` feeds one into the next and
writes each step's output and stats. Filters give reasons: ``keep(record) -> bool | (bool, reason)``; the
base class counts total, kept and dropped per reason, and keeps what it dropped for the side file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any


class Step:
    """Base of every step. Subclasses set ``name`` and implement :meth:`run`; ``stats`` lands in stats.json."""

    name: str = "step"

    def __init__(self) -> None:
        self.stats: dict[str, Any] = {}
        self.dropped: list[tuple[Any, str]] = []

    def run(self, records: Iterable[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def drop(self, record: Any, reason: str) -> None:
        """Record a dropped item with its reason (written to dropped.jsonl, counted in stats)."""
        self.dropped.append((record, reason))
        self.stats.setdefault("dropped_by_reason", Counter())[reason] += 1


class Filter(Step):
    """A step that keeps or drops each record, with a reason for every drop."""

    def keep(self, record: Any) -> bool | tuple[bool, str]:
        raise NotImplementedError

    def run(self, records: Iterable[Any]) -> Iterator[Any]:
        total = kept = 0
        for record in records:
            total += 1
            verdict = self.keep(record)
            ok, reason = verdict if isinstance(verdict, tuple) else (verdict, self.name)
            if ok:
                kept += 1
                yield record
            else:
                self.drop(record, reason)
        self.stats.update(total=total, kept=kept, dropped=total - kept)
