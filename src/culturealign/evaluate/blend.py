"""BLEnD short-answer evaluation: the model answers each everyday-culture question in a few words.

Scorer: the answer is correct when some annotated answer, normalized (lower case, punctuation removed,
lemmatized with simplemma), occurs as a whole-word sequence in the normalized model answer. The weighted
variant gives credit in proportion to the matched answer's annotator votes (best match / most-voted answer).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from culturealign.data.blend import BlendQuestion, load_blend
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


def evaluate_blend(
    engine: Engine,
    folder: str | Path,
    regions: Sequence[str],
    limit: int | None = None,
    max_tokens: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[BlendItem], dict[str, Any]]:
    """Answer and score BLEnD questions per region; metrics per region and overall (mean over regions)."""
    skipped: Counter = Counter()
    questions: list[BlendQuestion] = []
    for region in regions:
        qs = load_blend(folder, region, skipped)
        if limit is not None and limit < len(qs):
            qs = sorted(random.Random(seed).sample(qs, limit), key=lambda q: q.id)
        questions += qs
    prompts = [[{"role": "user", "content": PROMPT.format(question=q.question)}] for q in questions]
    with progress_bar("BLEnD", len(prompts), progress) as advance:
        replies = engine.generate(prompts, GenParams(temperature=0.0, max_tokens=max_tokens, seed=seed), advance)
    items = []
    for q, (reply,) in zip(questions, replies, strict=True):
        answer = reply.strip().split("\n")[0]
        correct, weighted, matched = score_answer(answer, q)
        items.append(BlendItem(q.region, q.id, q.question, answer, correct, weighted, matched))
    per_region = {
        r: {
            "accuracy": mean([float(i.correct) for i in items if i.region == r]),
            "weighted_accuracy": mean([i.weighted for i in items if i.region == r]),
            "n_questions": sum(i.region == r for i in items),
        }
        for r in regions
    }
    overall = {m: mean([v[m] for v in per_region.values()]) for m in ("accuracy", "weighted_accuracy")}
    return items, {"overall": {**overall, "n_items": len(items)}, "per_region": per_region, "skipped": dict(skipped)}


def save_blend(items: list[BlendItem], metrics: dict[str, Any], folder: Path) -> None:
    from culturealign.runs import write_json, write_jsonl

    write_jsonl(folder / "items.jsonl", (asdict(i) for i in items))
    write_json(folder / "metrics.json", metrics)
