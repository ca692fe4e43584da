"""Deduplication: exact (normalized) duplicates, embedding near-duplicates of evaluation questions, stats."""

from __future__ import annotations

import pytest

from culturealign.errors import UserError
from culturealign.records import SurveyQuestion
from culturealign.steps.dedup import Deduplicate, normalize

REFERENCE = [
    "How important is family in your life?",
    "How much do you trust people you meet for the first time?",
]


def _q(qid: str, text: str) -> SurveyQuestion:
    return SurveyQuestion(qid, "Social Values, Attitudes & Stereotypes", text, {"1": "Yes", "2": "No"})


def test_normalize_ignores_case_punctuation_and_spacing():
    assert normalize("  How OFTEN, do you   pray?! ") == "how often do you pray"
    assert normalize("How often do you pray?") != normalize("How often do you sing?")


def test_dedup_drops_duplicates_and_keeps_unrelated():
    records = [
        _q("a", "How often do you eat seafood at restaurants?"),
        _q("b", "how often do you eat SEAFOOD, at restaurants"),  # exact duplicate of a after normalizing
        _q("c", "In your life, how important is family?"),  # paraphrase of an evaluation question
        _q("d", "How important is family in your life!"),  # an evaluation question, other punctuation
        _q("e", "Would you like to live abroad for a few years?"),  # unrelated
    ]
    step = Deduplicate(reference=REFERENCE, threshold=0.8)
    out = list(step.run(records))
    assert [r.id for r in out] == ["a", "e"]
    reasons = {r.id: why for r, why in step.dropped}
    assert reasons == {
        "b": "same text as a kept record",
        "c": "near-duplicate of an evaluation question",
        "d": "same text as an evaluation question",
    }
    assert step.stats["total"] == 5
    assert step.stats["kept"] == 2
    assert step.stats["dropped"] == 3
    assert step.stats["kept"] + step.stats["dropped"] == step.stats["total"]
    assert sum(step.stats["dropped_by_reason"].values()) == step.stats["dropped"]
    assert step.stats["dropped_by_reason"]["near-duplicate of an evaluation question"] == 1


def test_near_duplicate_among_records_is_dropped_and_threshold_matters():
    records = [
        _q("a", "How important is your family in your life?"),
        _q("b", "In your life, how important is family?"),
    ]
    strict = Deduplicate(threshold=0.8)
    assert [r.id for r in strict.run(records)] == ["a"]
    assert [why for _, why in strict.dropped] == ["near-duplicate of a kept record"]
    lenient = Deduplicate(threshold=1.0)  # only (numerically) identical embeddings count
    assert [r.id for r in lenient.run(records)] == ["a", "b"]
    assert lenient.dropped == []


def test_dedup_of_nothing():
    step = Deduplicate(reference=REFERENCE)
    assert list(step.run([])) == []
    assert step.stats == {"total": 0, "kept": 0, "dropped": 0}


def test_text_of_picks_the_text():
    rows = [{"q": "Do you go to church?"}, {"q": "do you go to church"}]
    step = Deduplicate(text_of=lambda r: r["q"])
    assert list(step.run(rows)) == [rows[0]]


@pytest.mark.parametrize("threshold", [0, -0.5, 1.01, 2])
def test_threshold_outside_unit_interval_is_a_user_error(threshold):
    with pytest.raises(UserError, match="threshold"):
        Deduplicate(threshold=threshold)
