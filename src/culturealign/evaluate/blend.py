"""BLEnD short-answer evaluation: the model answers each everyday-culture question in a few words.

Scorer: the answer is correct when some annotated answer, normalized (lower case, punctuation removed,
lemmatized with simplemma), occurs as a whole-word sequence in the normalized model answer. The weighted
variant gives credit in proportion to the matched answer's annotator votes (best match / most-voted answer).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import ClassVar

from culturealign.data.blend import BlendQuestion, load_blend
from culturealign.evaluate.base import EvalResult, Evaluation
from culturealign.evaluate.metrics import mean
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.text import words

PROMPT = (
    "Read the following question and provide a single answer of a few words, without any explanation.\n\n"
    "Question: {question}\nAnswer:"
)


@cache
def _lemma(word: str) -> str:
    import simplemma

    return simplemma.lemmatize(word, lang="en")


def normalize(text: str) -> list[str]:
    """Lower-cased, punctuation-free, lemmatized word list."""
    return [_lemma(w) for w in words(text)]


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def score_answer(answer: str, q: BlendQuestion) -> tuple[bool, float, str | None]:
    """(correct, vote-weighted credit, the matched spelling) for one model answer."""
    said = normalize(answer)
    top = max(votes for _, votes in q.answers)
    best: tuple[float, str | None] = (0.0, None)
    for spellings, votes in q.answers:
        for s in spellings:
            if _contains(said, normalize(s)) and votes / top > best[0]:
                best = (votes / top, s)
    return best[1] is not None, best[0], best[1]


@dataclass
class BlendItem:
    region: str
    question_id: str
    question: str
    answer: str
    correct: bool
    weighted: float
    matched: str | None


@dataclass
class Blend(Evaluation):
    """Answer and score BLEnD questions per region; metrics per region and overall (mean over regions).

    ``regions`` maps a culture code to its BLEnD region, so that one adapter per culture answers its region.
    """

    name: ClassVar[str] = "blend"
    title: ClassVar[str] = "BLEnD accuracy"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "weighted_accuracy")
    scope: ClassVar[str] = "per_region"

    folder: str | Path
    regions: dict[str, str]
    limit: int | None = None
    max_tokens: int = 16
    seed: int = 0

    def cultures(self) -> list[str]:
        return list(self.regions)

    def subset(self, codes: Sequence[str]) -> Blend:
        return replace(self, regions={c: r for c, r in self.regions.items() if c in codes})

    def combine(self, results: Sequence[EvalResult]) -> EvalResult:
        skipped: Counter = Counter()
        for r in results:
            skipped.update(r.metrics["skipped"])
        return self.result([it for r in results for it in r.items], skipped)

    def result(self, items: list[BlendItem], skipped: Counter) -> EvalResult:
        per_region = {
            r: {
                "accuracy": mean([float(i.correct) for i in items if i.region == r]),
                "weighted_accuracy": mean([i.weighted for i in items if i.region == r]),
                "n_questions": sum(i.region == r for i in items),
            }
            for r in self.regions.values()
        }
        overall = {m: mean([v[m] for v in per_region.values()]) for m in self.metrics}
        metrics = {"overall": {**overall, "n_items": len(items)}, "per_region": per_region, "skipped": dict(skipped)}
        return EvalResult(self.name, items, metrics)

    def run(self, engine: Engine, progress: bool = True) -> EvalResult:
        skipped: Counter = Counter()
        questions: list[BlendQuestion] = []
        for region in self.regions.values():
            qs = load_blend(self.folder, region, skipped)
            if self.limit is not None and self.limit < len(qs):
                qs = sorted(random.Random(self.seed).sample(qs, self.limit), key=lambda q: q.id)
            questions += qs
        prompts = [[{"role": "user", "content": PROMPT.format(question=q.question)}] for q in questions]
        params = GenParams(temperature=0.0, max_tokens=self.max_tokens, seed=self.seed)
        with progress_bar("BLEnD", len(prompts), progress) as advance:
            replies = engine.generate(prompts, params, advance)
        items = []
        for q, (reply,) in zip(questions, replies, strict=True):
            answer = reply.strip().split("\n")[0]
            correct, weighted, matched = score_answer(answer, q)
            items.append(BlendItem(q.region, q.id, q.question, answer, correct, weighted, matched))
        return self.result(items, skipped)
