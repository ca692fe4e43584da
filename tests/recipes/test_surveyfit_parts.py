"""SurveyFit's pieces that need no model: the seed spread, the eval folder names, the run-folder fingerprint."""

from __future__ import annotations

import math

import pytest

from culturealign.errors import UserError
from culturealign.evaluate.base import EvalResult
from culturealign.recipes.surveyfit import _folders, seed_spread
from culturealign.runs.store import check_fingerprint


def _result(jsd: float) -> EvalResult:
    overall = {"culturespa": 0.5, "one_minus_jsd": jsd, "accuracy": 0.3, "wasserstein": 0.2, "discrimination": 0.0}
    return EvalResult("wvs", [], {"overall": overall})


def test_seed_spread_reports_each_seeds_gain_and_their_spread():
    spread = seed_spread(_result(0.5), {0: _result(0.6), 1: _result(0.7), 2: _result(0.65)})
    j = spread["one_minus_jsd"]
    assert j["diff_by_seed"] == pytest.approx({0: 0.1, 1: 0.2, 2: 0.15})
    assert j["mean"] == pytest.approx(0.15) and j["sd"] == pytest.approx(0.05)
    assert (j["min"], j["max"]) == pytest.approx((0.1, 0.2))
    assert math.isnan(seed_spread(_result(0.5), {0: _result(0.6)})["one_minus_jsd"]["sd"])  # one seed: no spread


def test_eval_folder_names():
    assert _folders("eval", "before", "after") == ("wvs-before", "wvs-after")
    assert _folders("heldout-eval", "before", "after") == ("wvs-heldout-before", "wvs-heldout-after")
    assert _folders("train", "before", "after") == ("wvs-train-before", "wvs-train-after")


def test_fingerprint_refuses_other_settings_and_names_the_keys(tmp_path):
    path = tmp_path / "fingerprint.json"
    check_fingerprint(path, {"cultures": ["DEU"]}, "the data", "fix", write=False)
    assert not path.exists()  # a check only
    check_fingerprint(path, {"cultures": ["DEU"], "split": {"seed": 0}}, "the data", "use another --out")
    check_fingerprint(path, {"cultures": ["DEU"], "split": {"seed": 0}}, "the data", "use another --out")  # same: ok
    with pytest.raises(UserError, match=r"other settings \(split\): use another --out"):
        check_fingerprint(path, {"cultures": ["DEU"], "split": {"seed": 1}}, "the data", "use another --out")
