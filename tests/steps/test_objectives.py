"""CAReDiO objectives against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from culturealign.steps.objectives import (
    coverage,
    culture_relatedness,
    culture_relatedness_from_logprobs,
    distinctiveness,
)


def test_relatedness_is_zero_when_cultures_agree():
    assert culture_relatedness(np.array([[0.2, 0.5, 0.3]] * 4)) == pytest.approx(0.0, abs=1e-15)


def test_relatedness_of_opposite_one_hot_rows_is_log_2():
    # mixture m = (1/2, 1/2); each KL = 1 * log(1 / (1/2)) = log 2, the zero entries contribute 0 * log 0 = 0
    assert culture_relatedness(np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(math.log(2), rel=1e-12)


def test_relatedness_reaches_log_c_when_every_culture_gives_its_own_answer():
    assert culture_relatedness(np.eye(3)) == pytest.approx(math.log(3), rel=1e-12)


def test_relatedness_two_by_two_by_hand():
    # p1 = (0.8, 0.2), p2 = (0.4, 0.6) -> m = (0.6, 0.4)
    # KL1 = 0.8 log(0.8/0.6) + 0.2 log(0.2/0.4) = 0.230146 - 0.138629 = 0.091517
    # KL2 = 0.4 log(0.4/0.6) + 0.6 log(0.6/0.4) = 0.2 log(1.5)          = 0.081093
    # mean = 0.086305
    by_hand = (0.8 * math.log(4 / 3) + 0.2 * math.log(0.5) + 0.4 * math.log(2 / 3) + 0.6 * math.log(1.5)) / 2
    assert by_hand == pytest.approx(0.086305, abs=1e-6)
    assert culture_relatedness(np.array([[0.8, 0.2], [0.4, 0.6]])) == pytest.approx(by_hand, rel=1e-12)


def test_relatedness_renormalizes_rows():
    assert culture_relatedness(np.array([[2.0, 0.0], [0.0, 0.5]])) == pytest.approx(math.log(2), rel=1e-12)


@pytest.mark.parametrize(
    ("dists", "match"),
    [
        (np.array([[0.5, -0.1, 0.6]]), "non-negative"),
        (np.array([[0.0, 0.0], [0.5, 0.5]]), "sums to 0"),
        (np.array([0.5, 0.5]), r"\[cultures, answers\]"),
    ],
)
def test_relatedness_rejects_bad_input(dists, match):
    with pytest.raises(ValueError, match=match):
        culture_relatedness(dists)


def test_relatedness_from_logprobs_matches_probabilities_when_rows_are_normalized():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]])
    assert culture_relatedness_from_logprobs(np.log(p), np.ones(3)) == pytest.approx(culture_relatedness(p), rel=1e-12)


def test_relatedness_from_logprobs_renormalizes_over_the_samples():
    # the K sampled answers hold only part of each culture's mass: a per-row constant must not matter
    p = np.array([[0.8, 0.2], [0.4, 0.6]])
    logp = np.log(p) + np.array([[-3.0], [-7.5]])
    assert culture_relatedness_from_logprobs(logp, [1, 1]) == pytest.approx(culture_relatedness(p), rel=1e-12)


def test_relatedness_from_logprobs_takes_minus_inf_as_zero_probability():
    assert culture_relatedness_from_logprobs(np.array([[0.0, -np.inf], [-np.inf, 0.0]]), [3, 7]) == pytest.approx(
        math.log(2), rel=1e-12
    )


def test_answers_of_equal_per_token_fit_weigh_the_same_whatever_their_lengths():
    # per-token fit (mean log-likelihood) under [culture 1, culture 2]: answers a and b fit alike, c tells them apart
    fit = {"a": [-2.0, -2.0], "b": [-2.0, -2.0], "c": [-1.0, -3.0]}
    lengths = {"a": 5, "b": 50, "c": 20}
    logp = np.array([[fit[k][c] * lengths[k] for k in "abc"] for c in range(2)])  # summed over the tokens
    # by hand: row 1 softmax(-2, -2, -1), row 2 softmax(-2, -2, -3): a and b get the same weight in each row
    by_hand = culture_relatedness(np.exp([[-2.0, -2.0, -1.0], [-2.0, -2.0, -3.0]]))
    got = culture_relatedness_from_logprobs(logp, [lengths[k] for k in "abc"])
    assert got == pytest.approx(by_hand, rel=1e-12) and by_hand > 0.05
    short_b = np.array([[fit[k][c] * (5 if k == "b" else lengths[k]) for k in "abc"] for c in range(2)])
    assert culture_relatedness_from_logprobs(short_b, [5, 5, 20]) == pytest.approx(got, rel=1e-12)
    # summed, the 5-token answer takes nearly all of both rows and the culture-telling answer c hardly counts
    assert culture_relatedness_from_logprobs(logp, [1, 1, 1]) < by_hand / 10


def test_relatedness_does_not_change_when_every_answer_is_longer_at_the_same_fit():
    logp = np.array([[-30.0, -12.0, -50.0], [-36.0, -9.0, -45.0]])
    lengths = np.array([10.0, 3.0, 25.0])
    assert culture_relatedness_from_logprobs(logp * 4, lengths * 4) == pytest.approx(
        culture_relatedness_from_logprobs(logp, lengths), rel=1e-12
    )


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        ([1.0], "one entry per sampled answer"),
        ([3.0, 0.0], "positive: leave empty answers out"),
        ([1, np.nan], "finite"),
    ],
)
def test_relatedness_from_logprobs_rejects_bad_lengths(lengths, match):
    with pytest.raises(ValueError, match=match):
        culture_relatedness_from_logprobs(np.zeros((2, 2)), lengths)


def test_distinctiveness_by_hand_uniform_weights():
    # log 0.5 - log((0.1 + 0.3) / 2) = log(0.5 / 0.2)
    got = distinctiveness(math.log(0.5), [math.log(0.1), math.log(0.3)])
    assert got == pytest.approx(math.log(2.5), rel=1e-12)


def test_distinctiveness_by_hand_with_weights():
    # mixture 0.25 * 0.1 + 0.75 * 0.3 = 0.25 -> log(0.5 / 0.25) = log 2
    got = distinctiveness(math.log(0.5), [math.log(0.1), math.log(0.3)], weights=[0.25, 0.75])
    assert got == pytest.approx(math.log(2), rel=1e-12)


def test_distinctiveness_is_stable_for_tiny_probabilities():
    # exp(-1000) underflows to 0 in float64; logsumexp keeps the answer exact
    assert distinctiveness(-1000.0, [-1000.0, -1000.0]) == pytest.approx(0.0, abs=1e-12)
    assert distinctiveness(-1000.0, [-1001.0], weights=[1.0]) == pytest.approx(1.0, rel=1e-12)


def test_distinctiveness_weights_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1.*divide them by their sum"):
        distinctiveness(math.log(0.5), [math.log(0.1), math.log(0.3)], weights=[0.5, 0.4])


def test_distinctiveness_needs_one_weight_per_related_culture():
    with pytest.raises(ValueError, match="one per culture"):
        distinctiveness(0.0, [-1.0, -2.0], weights=[1.0])
    with pytest.raises(ValueError, match="at least one related culture"):
        distinctiveness(0.0, [])


S = 1 / math.sqrt(2)
FOUR = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [S, S]])


@pytest.mark.parametrize(
    ("selected", "by_hand"),
    [
        # cos to (1,0): 1, 0, -1 -> 0 (clipped), s
        ([0], (1 + 0 + 0 + S) / 4),
        # best of (1,0) and (0,1): 1, 1, 0, s
        ([0, 1], (2 + S) / 4),
        # cos to (s,s): s, s, -s -> 0, 1
        ([3], (2 * S + 1) / 4),
        # everything covers itself
        ([0, 1, 2, 3], 1.0),
        ([], 0.0),
    ],
)
def test_coverage_by_hand(selected, by_hand):
    assert coverage(FOUR, selected) == pytest.approx(by_hand, rel=1e-12)


def test_coverage_of_a_separate_reference():
    # cover only (-1, 0) and (0, 1) with (1, 0): both similarities clip to 0
    assert coverage(FOUR, [0], reference=FOUR[[2, 1]]) == 0.0
    assert coverage(FOUR, [3], reference=FOUR[[2, 1]]) == pytest.approx(S / 2, rel=1e-12)
