"""Train / validation / eval splits of a survey's questions that keep item batteries whole.

Survey items come in batteries: questions that share a stem and an answer scale ("how much confidence do you have
in: the police / the courts / ...", "can ... always be justified", the 0-10 "essential for democracy" items). A
model trained on some items of a battery has seen the stem and the scale of the others, so a split by question
would leak. The battery rule (:func:`infer_batteries`):

- two questions are linked when they are **neighbours** in the survey's order (the file's order, which follows the
  questionnaire's ids), have **the same options** (codes and labels), and their texts share at least
  ``min_shared_words`` words as a common prefix plus a common suffix, that being at least ``min_shared_share`` of
  the shorter text's words;
- a battery is a maximal run of linked neighbours (a question linked to no neighbour is a battery of one).

:func:`split_questions` then assigns whole batteries, seeded, topic by topic: within each topic the batteries are
shuffled and moved to the eval side while that brings the eval count closer to ``eval_fraction`` of the topic's
questions; the train side is split the same way into train and validation. Validation is for choosing settings;
eval questions are never used for that and never reach training (asserted by the recipe).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from culturealign.errors import UserError
from culturealign.records import SurveyQuestion
from culturealign.text import words


def shared_words(a: str, b: str) -> int:
    """Words of a common prefix plus a common suffix (not overlapping) of two texts."""
    x, y = words(a), words(b)
    n = min(len(x), len(y))
    pre = 0
    while pre < n and x[pre] == y[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and x[-1 - suf] == y[-1 - suf]:
        suf += 1
    return pre + suf


def linked(a: SurveyQuestion, b: SurveyQuestion, min_shared_words: int = 4, min_shared_share: float = 0.2) -> bool:
    """True when two neighbouring questions belong to one battery (same options, a shared stem)."""
    if a.options != b.options:
        return False
    shared = shared_words(a.text, b.text)
    shortest = min(len(words(a.text)), len(words(b.text))) or 1
    return shared >= min_shared_words and shared / shortest >= min_shared_share


def infer_batteries(
    questions: Sequence[SurveyQuestion], min_shared_words: int = 4, min_shared_share: float = 0.2
) -> dict[str, str]:
    """Question id -> battery id (the id of the battery's first question), by the rule in the module docstring."""
    battery: dict[str, str] = {}
    for i, q in enumerate(questions):
        if i and linked(questions[i - 1], q, min_shared_words, min_shared_share):
            battery[q.id] = battery[questions[i - 1].id]
        else:
            battery[q.id] = q.id
    return battery


@dataclass
class QuestionSplit:
    """Which question ids are trained on, used to choose settings, and evaluated; with the batteries behind it."""

    train: list[str]
    validation: list[str]
    eval: list[str]
    batteries: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    eval_fraction: float = 0.3
    validation_fraction: float = 0.2

    def side(self, qid: str) -> str | None:
        for name in ("train", "validation", "eval"):
            if qid in getattr(self, name):
                return name
        return None

    def check(self) -> None:
        """No question on two sides, and no battery on two sides (the leak the split exists to prevent)."""
        sides = {name: set(getattr(self, name)) for name in ("train", "validation", "eval")}
        if (
            sides["train"] & sides["eval"]
            or sides["validation"] & sides["eval"]
            or sides["train"] & sides["validation"]
        ):
            raise AssertionError("a question is on two sides of the split")
        where: dict[str, set[str]] = defaultdict(set)
        for name, ids in sides.items():
            for qid in ids:
                where[self.batteries.get(qid, qid)].add(name)
        split_batteries = sorted(b for b, s in where.items() if len(s) > 1)
        if split_batteries:
            raise AssertionError(f"batteries on two sides of the split: {split_batteries}")

    def to_dict(self) -> dict:
        return {**asdict(self), "sizes": {k: len(getattr(self, k)) for k in ("train", "validation", "eval")}}


def _assign(groups: list[list[str]], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """Move whole groups to the second side while that brings its size closer to ``fraction`` of the total."""
    target = fraction * sum(map(len, groups))
    order = list(range(len(groups)))
    rng.shuffle(order)
    rest: list[str] = []
    picked: list[str] = []
    for g in order:
        if abs(len(picked) + len(groups[g]) - target) < abs(len(picked) - target):
            picked += groups[g]
        else:
            rest += groups[g]
    return rest, picked


def split_questions(
    questions: Sequence[SurveyQuestion],
    eval_fraction: float = 0.3,
    validation_fraction: float = 0.2,
    seed: int = 0,
    min_shared_words: int = 4,
    min_shared_share: float = 0.2,
) -> QuestionSplit:
    """Split ``questions`` (in survey order) into train / validation / eval by topic and by battery (seeded)."""
    if not 0 < eval_fraction < 1:
        raise UserError(f"split.eval_fraction must be between 0 and 1, got {eval_fraction}")
    if not 0 <= validation_fraction < 1:
        raise UserError(f"split.validation_fraction must be in [0, 1), got {validation_fraction}")
    batteries = infer_batteries(questions, min_shared_words, min_shared_share)
    by_topic: dict[str, dict[str, list[str]]] = defaultdict(dict)
    topic_of = {q.id: q.topic for q in questions}
    for q in questions:  # a battery belongs to the topic of its first question
        by_topic[topic_of[batteries[q.id]]].setdefault(batteries[q.id], []).append(q.id)
    order = {q.id: i for i, q in enumerate(questions)}
    train: list[str] = []
    validation: list[str] = []
    evaluation: list[str] = []
    for topic in sorted(by_topic):
        rng = random.Random(f"{seed}:{topic}")
        groups = list(by_topic[topic].values())
        rest, picked = _assign(groups, eval_fraction, rng)
        evaluation += picked
        rest_groups = [g for g in groups if g[0] in set(rest)]
        tr, val = _assign(rest_groups, validation_fraction, rng) if validation_fraction else (rest, [])
        train += tr
        validation += val
    split = QuestionSplit(
        *(sorted(x, key=order.__getitem__) for x in (train, validation, evaluation)),
        batteries=batteries,
        seed=seed,
        eval_fraction=eval_fraction,
        validation_fraction=validation_fraction,
    )
    if not split.eval:
        raise UserError(
            f"the split left no eval question ({len(questions)} questions): raise split.eval_fraction or use a survey "
            "with more questions"
        )
    if not split.train:
        raise UserError(
            f"the split left no training question ({len(questions)} questions): lower split.eval_fraction or "
            "split.validation_fraction"
        )
    split.check()
    return split
