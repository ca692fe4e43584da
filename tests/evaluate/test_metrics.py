import math

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
