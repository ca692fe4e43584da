"""The SimHash dedup step (AlignCultura: Hamming distance <= 10) over :mod:`culturealign.simhash`'s fingerprints
and exact pair search, which sit below ``steps/`` and ``evaluate/`` (the HHH benchmark's leakage uses them too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from culturealign.errors import UserError
from culturealign.simhash import (
    DEFAULT_THRESHOLD,
    check_threshold,
    dedup_parents,
    near_any,
    simhash,
)
from culturealign.steps.base import Step


class SimHashDedup(Step):
    """Drop SimHash near-duplicates of earlier kept records, and records near any evaluation (reference) text.

    Reasons: ``"leaks evaluation item"`` and ``"near-duplicate (hamming <= k) of <id>"`` (the record's ``id``,
    or ``record <position>`` when it has none). ``dropped_by_reason`` counts the latter without its ``of`` part,
    so the stats (and the report's plot) keep one entry per reason, not one per kept record. ``leaked`` (records
    near a reference text, 0 included) and ``reference_texts`` (how many were given) are always in the stats, so
    a run that removed no leak says so.
    """

    name = "simhash-dedup"

    def __init__(
        self,
        text_of: Callable[[Any], str] = lambda r: r.text,
        threshold: int = DEFAULT_THRESHOLD,
        reference_texts: Iterable[str] = (),
        ngram: int = 3,
    ):
        super().__init__()
        self.threshold = check_threshold(threshold)
        if ngram < 1:
            raise UserError(f"simhash ngram must be >= 1, got {ngram}")
        self.text_of, self.reference_texts, self.ngram = text_of, list(reference_texts), ngram

    def run(self, records: Iterable[Any]) -> Iterator[Any]:
        items = list(records)
        fps = simhash((self.text_of(r) for r in items), self.ngram)
        leaks = near_any(fps, simhash(self.reference_texts, self.ngram), self.threshold)
        clean = np.flatnonzero(~leaks)
        parent = np.full(len(items), -1, np.int64)
        sub = dedup_parents(fps[clean], self.threshold)
        parent[clean] = np.where(sub < 0, -1, clean[np.maximum(sub, 0)])
        counted = Counter()
        near = f"near-duplicate (hamming <= {self.threshold})"
        for i, rec in enumerate(items):
            if leaks[i]:
                self.dropped.append((rec, "leaks evaluation item"))
                counted["leaks evaluation item"] += 1
            elif parent[i] >= 0:
                self.dropped.append((rec, f"{near} of {_label(items[parent[i]], int(parent[i]))}"))
                counted[near] += 1
            else:
                yield rec
        if counted:
            self.stats["dropped_by_reason"] = counted
        dropped = int(leaks.sum() + (parent >= 0).sum())
        self.stats.update(
            total=len(items),
            kept=len(items) - dropped,
            dropped=dropped,
            leaked=int(leaks.sum()),
            reference_texts=len(self.reference_texts),
        )


def _label(record: Any, position: int) -> str:
    rid = record.get("id") if isinstance(record, dict) else getattr(record, "id", None)
    return str(rid) if rid is not None else f"record {position}"
