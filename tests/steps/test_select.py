"""Culture-related selection: the paper's "answers differ" criterion and the divergence alternative."""

from __future__ import annotations

import pytest
from scipy.spatial.distance import jensenshannon

from culturealign.errors import UserError
from culturealign.records import Answer, AnswerPair, SurveyQuestion
from culturealign.steps.select import SelectCultureRelated

Q1 = SurveyQuestion("Q1", "Economic Values", "Is competition good?", {"1": "Good", "2": "Neutral", "3": "Harmful"})
Q2 = SurveyQuestion("Q2", "Migration", "Do immigrants fill jobs?", {"1": "Agree", "2": "Disagree"})


def _pair(q: SurveyQuestion, culture: str, unaware: dict[str, float], aware: dict[str, float], choices: str):
    return AnswerPair(
        q,
        culture,
        Answer(q.id, None, unaware, choices[0]),
        Answer(q.id, culture, aware, choices[1]),
    )


U1 = {"1": 0.5, "2": 0.3, "3": 0.2}
U2 = {"1": 0.6, "2": 0.4}
PAIRS = [
    _pair(Q1, "DEU", U1, {"1": 0.2, "2": 0.3, "3": 0.5}, "13"),  # differ, far
    _pair(Q1, "JPN", U1, {"1": 0.45, "2": 0.35, "3": 0.2}, "11"),  # same, close
    _pair(Q1, "CHN", U1, {"1": 0.3, "2": 0.5, "3": 0.2}, "12"),  # differ, middle
    _pair(Q2, "DEU", U2, {"1": 0.55, "2": 0.45}, "12"),  # differ (sampled), close
    _pair(Q2, "JPN", U2, {"1": 0.05, "2": 0.95}, "22"),  # same (sampled), far
]


def _js(pair: AnswerPair) -> float:
    codes = pair.question.codes
    return float(jensenshannon([pair.aware.probs[c] for c in codes], [pair.unaware.probs[c] for c in codes], base=2))


def test_differ_keeps_pairs_whose_choices_differ():
    step = SelectCultureRelated("differ")
    out = list(step.run(PAIRS))
    assert out == [PAIRS[0], PAIRS[2], PAIRS[3]]
    assert [why for _, why in step.dropped] == ["aware answer equals unaware answer"] * 2
    assert [p for p, _ in step.dropped] == [PAIRS[1], PAIRS[4]]
    assert step.stats["dropped_by_reason"] == {"aware answer equals unaware answer": 2}
    assert (step.stats["total"], step.stats["kept"], step.stats["dropped"]) == (5, 3, 2)
    assert step.stats["kept_per_culture"] == {"DEU": 2, "CHN": 1}
    assert step.stats["kept_per_topic"] == {"Economic Values": 2, "Migration": 1}


def test_divergence_keeps_pairs_at_or_above_threshold():
    dists = [_js(p) for p in PAIRS]
    threshold = 0.15
    expected = [p for p, d in zip(PAIRS, dists, strict=True) if d >= threshold]
    # the hand-picked distributions straddle the threshold, so the test tells kept from dropped
    assert 0 < len(expected) < len(PAIRS)
    assert expected == [PAIRS[0], PAIRS[2], PAIRS[4]], dists
    step = SelectCultureRelated("divergence", threshold=threshold)
    out = list(step.run(PAIRS))
    assert out == expected
    assert step.stats["kept"] == 3 and step.stats["dropped"] == 2
    assert step.stats["dropped_by_reason"] == {f"aware/unaware divergence below {threshold}": 2}
    assert step.stats["kept_per_culture"] == {"DEU": 1, "CHN": 1, "JPN": 1}
    assert step.stats["kept_per_topic"] == {"Economic Values": 2, "Migration": 1}


def test_divergence_threshold_is_inclusive_and_identical_distributions_are_dropped():
    same = _pair(Q2, "DEU", U2, dict(U2), "12")
    d = _js(PAIRS[0])
    step = SelectCultureRelated("divergence", threshold=d)
    assert list(step.run([PAIRS[0], same])) == [PAIRS[0]]
    assert step.stats["kept_per_culture"] == {"DEU": 1}


def test_divergence_ignores_key_order_of_probs():
    shuffled = _pair(Q1, "DEU", U1, {"3": 0.5, "1": 0.2, "2": 0.3}, "13")
    step = SelectCultureRelated("divergence", threshold=_js(PAIRS[0]))
    assert list(step.run([shuffled])) == [shuffled]


def test_empty_input_gives_empty_stats():
    step = SelectCultureRelated()
    assert list(step.run([])) == []
    assert step.stats["total"] == 0
    assert step.stats["kept_per_culture"] == {} and step.stats["kept_per_topic"] == {}


@pytest.mark.parametrize("criterion", ["different", "js", ""])
def test_bad_criterion_is_a_user_error(criterion):
    with pytest.raises(UserError, match="criterion"):
        SelectCultureRelated(criterion)
