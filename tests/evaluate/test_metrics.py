import math

import numpy as np
import pytest

from culturealign.evaluate import metrics as M


def test_culturespa_score_by_hand():
    # a - g = (1, 0, -2); ||.|| = sqrt(5); n - 1 = (3, 3, 9); ||.|| = sqrt(99)
    assert M.culturespa_score([2, 3, 1], [1, 3, 3], [4, 4, 10]) == pytest.approx(1 - math.sqrt(5) / math.sqrt(99))
    assert M.culturespa_score([1, 2], [1, 2], [4, 4]) == 1.0
    assert math.isnan(M.culturespa_score([], [], []))


def test_one_minus_jsd_by_hand():
    assert M.one_minus_jsd([0.5, 0.5], [0.5, 0.5]) == pytest.approx(1.0)
    assert M.one_minus_jsd([1, 0], [0, 1]) == pytest.approx(0.0)
    # p=(1,0), q=(.5,.5): m=(.75,.25); JS div = .5*KL(p||m)+.5*KL(q||m) in bits
    kl_p = math.log2(1 / 0.75)
    kl_q = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    assert M.one_minus_jsd([1, 0], [0.5, 0.5]) == pytest.approx(1 - math.sqrt(0.5 * kl_p + 0.5 * kl_q))


def test_wasserstein_normalized_by_hand():
    codes = list(range(1, 11))
    p = [1] + [0] * 9
    q = [0] * 9 + [1]
    assert M.wasserstein_normalized(codes, p, q) == pytest.approx(1.0)
    half = [0.5] + [0] * 8 + [0.5]
    assert M.wasserstein_normalized(codes, p, half) == pytest.approx(0.5)


def test_majority_and_mean():
    assert M.majority({"0": 0.1, "1": 0.6, "2": 0.3}) == "1"
    assert M.mean([1.0, math.nan, 3.0]) == 2.0


def test_js_distance_and_smoothed_kl_by_hand():
    assert M.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert M.js_distance([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0)
    # KL((.5,.5) || (.25,.75)) = .5 ln 2 + .5 ln(2/3)
    assert M.kl_divergence([0.5, 0.5], [0.25, 0.75], eps=0) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    # a zero in q stays finite with eps: p=(1,0), q=(0,1), eps=0.1 -> p'=(1.1,.1)/1.2, q'=(.1,1.1)/1.2
    a, b = (1.1 / 1.2, 0.1 / 1.2), (0.1 / 1.2, 1.1 / 1.2)
    expected = a[0] * math.log(a[0] / b[0]) + a[1] * math.log(a[1] / b[1])
    assert M.kl_divergence([1, 0], [0, 1], eps=0.1) == pytest.approx(expected)


def test_wasserstein_span_comes_from_the_codes():
    zero_to_ten = list(range(11))
    # all mass on 0 against all mass on 5: distance 5 on a span of 10
    assert M.wasserstein_normalized(zero_to_ten, [1] + [0] * 10, [0] * 5 + [1] + [0] * 5) == pytest.approx(0.5)
    # a 0-2 membership scale: (1, 0, 0) against (0, .5, .5) moves .5 by 1 and .5 by 2 -> 1.5 / 2
    assert M.wasserstein_normalized([0, 1, 2], [1, 0, 0], [0, 0.5, 0.5]) == pytest.approx(0.75)


def test_weights_count_items_as_often_as_drawn():
    """The bootstrap's call: each weight row gives what the metric is on the items repeated that often."""
    a, g, n = [2, 3, 1], [1, 3, 3], [4, 4, 10]
    w = np.array([[2, 0, 1], [1, 1, 1], [0, 0, 0]])
    assert M.culturespa_score(a, g, n, w)[0] == pytest.approx(M.culturespa_score([2, 2, 1], [1, 1, 3], [4, 4, 10]))
    assert M.culturespa_score(a, g, n, w)[1] == pytest.approx(M.culturespa_score(a, g, n))
    assert math.isnan(M.culturespa_score(a, g, n, w)[2])  # nothing drawn
    values = [0.2, math.nan, 0.8]
    assert M.mean(values, w).tolist()[:2] == pytest.approx([0.4, 0.5]) and math.isnan(M.mean(values, w)[2])
    assert M.accuracy(["1", "2", "3"], ["1", "1", None]) == 0.5  # no reference: left out
    assert M.accuracy(["1", "2", "3"], ["1", "1", None], w).tolist()[:2] == [1.0, 0.5]
    assert M.discrimination([0.6, 0.5], [0.4, None]) == pytest.approx(0.2)
    assert M.mean(np.array([[1.0, math.nan], [math.nan, math.nan]])).tolist()[0] == 1.0  # one mean per row


def test_sums_are_exact_so_a_figure_does_not_depend_on_item_order():
    values = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3]
    assert M.mean(values) == M.mean(values[::-1]) == math.fsum(values) / 6
    assert M.mean([1e16, 1.0, -1e16]) == 1 / 3  # a plain float sum gives 0
    a, g, n = [1e8, 1, 2, 3], [0, 2, 2, 1], [1e8, 4, 4, 4]
    assert M.culturespa_score(a, g, n) == M.culturespa_score(a[::-1], g[::-1], n[::-1])
    assert math.isnan(M.mean([])) and math.isnan(M.mean([None, math.nan]))
