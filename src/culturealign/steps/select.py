"""Culture-related pair selection (CultureSPA step 3).

In/out: :class:`AnswerPair` records. ``criterion="differ"`` (the paper's): keep a pair when the culture-aware
answer differs from the culture-unaware one. ``criterion="divergence"`` (documented alternative for models
whose persona barely moves their answers): keep when the Jensen-Shannon distance between the aware and
unaware option distributions reaches ``threshold``. Kept counts per culture and per topic go to stats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from scipy.spatial.distance import jensenshannon

from culturealign.errors import UserError
from culturealign.records import AnswerPair
from culturealign.steps.base import Filter


class SelectCultureRelated(Filter):
    name = "select"

    def __init__(self, criterion: str = "differ", threshold: float = 0.1):
        super().__init__()
        if criterion not in ("differ", "divergence"):
            raise UserError(f"select.criterion must be 'differ' or 'divergence', got {criterion!r}")
        self.criterion, self.threshold = criterion, threshold

    def keep(self, pair: AnswerPair) -> bool | tuple[bool, str]:
        if self.criterion == "differ":
            return (pair.aware.choice != pair.unaware.choice), "aware answer equals unaware answer"
        codes = pair.question.codes
        d = float(jensenshannon([pair.aware.probs[c] for c in codes], [pair.unaware.probs[c] for c in codes], base=2))
        return d >= self.threshold, f"aware/unaware divergence below {self.threshold}"

    def run(self, records: Iterable[AnswerPair]) -> Iterator[AnswerPair]:
        per_culture: Counter = Counter()
        per_topic: Counter = Counter()
        for pair in super().run(records):
            per_culture[pair.culture] += 1
            per_topic[pair.question.topic] += 1
            yield pair
        self.stats.update(kept_per_culture=dict(per_culture), kept_per_topic=dict(per_topic))
