"""Comparing runs: paired bootstrap intervals that cover the truth, zero for identical runs, unpaired items counted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from culturealign.errors import UserError
from culturealign.evaluate import metrics as M
from culturealign.evaluate.compare_runs import compare_runs, find_eval, format_comparison
from culturealign.evaluate.wvs import WVSItem, WVSResult, save_result, summarize
from culturealign.runs import write_json, write_jsonl


def item(culture: str, qid: str, jsd: float, choice: int, majority: int, k: int = 4, w1: float | None = None):
    dist = {str(i + 1): 1 / k for i in range(k)}
    return WVSItem(culture, qid, "Security", "numeric", dist, dist, str(choice), str(majority), 1.0, jsd, w1)


def write_eval(run: Path, items: list[WVSItem], name: str = "wvs-after") -> Path:
    save_result(WVSResult("aware", items, summarize(items)), run / "eval" / name)
    return run


def random_items(rng: np.random.Generator, cultures=("DEU", "CHN"), n: int = 40) -> list[WVSItem]:
    out = []
    for c in cultures:
        for q in range(n):
            k = int(rng.integers(2, 6))
            choice, majority = rng.integers(1, k + 1, size=2)
            out.append(item(c, f"Q{q}", float(rng.uniform(0.3, 0.7)), int(choice), int(majority), k, rng.uniform()))
    return out


def test_identical_runs_differ_by_zero_with_a_zero_interval(tmp_path):
    items = random_items(np.random.default_rng(0))
    a, b = write_eval(tmp_path / "a", items), write_eval(tmp_path / "b", items)
    result = compare_runs([a, b], n_boot=200)
    assert result["runs"] == ["a", "b"] and result["unpaired_items"] == {"a": 0, "b": 0}
    assert set(result["scopes"]) == {"overall", "DEU", "CHN"}
    for scope in result["scopes"].values():
        for m, row in scope.items():
            assert row["diff"]["b"] == 0 and row["ci"]["b"] == [0, 0], m
            # every question is paired, so the values are the ones metrics.json reports
            assert row["values"]["a"] == pytest.approx(row["reported"]["a"]), m


def test_culturespa_is_recomputed_from_choices(tmp_path):
    items = random_items(np.random.default_rng(1), cultures=("DEU",))
    result = compare_runs([write_eval(tmp_path / "a", items), write_eval(tmp_path / "b", items)], n_boot=10)
    choices, majorities = [float(i.choice) for i in items], [float(i.majority) for i in items]
    expected = M.culturespa_score(choices, majorities, [len(i.model) for i in items])
    assert result["scopes"]["DEU"]["culturespa"]["values"]["a"] == pytest.approx(expected)


def test_interval_covers_the_true_difference(tmp_path):
    """Run b = run a + 0.05 on 1-JSD (plus noise), and b picks the majority 20 points more often: check coverage."""
    rng = np.random.default_rng(2)
    covered = {"one_minus_jsd": 0, "accuracy": 0}
    trials = 30
    for t in range(trials):
        a_items, b_items = [], []
        for c in ("DEU", "CHN"):
            for q in range(80):
                jsd = float(rng.uniform(0.3, 0.7))
                a_hit, b_hit = rng.uniform() < 0.4, rng.uniform() < 0.6
                a_items.append(item(c, f"Q{q}", jsd, 1 if a_hit else 2, 1))
                b_items.append(item(c, f"Q{q}", jsd + 0.05 + float(rng.normal(0, 0.05)), 1 if b_hit else 2, 1))
        a, b = write_eval(tmp_path / f"a{t}", a_items), write_eval(tmp_path / f"b{t}", b_items)
        result = compare_runs([a, b], n_boot=500, seed=t)
        for metric, truth in (("one_minus_jsd", 0.05), ("accuracy", 0.2)):
            lo, hi = result["scopes"]["overall"][metric]["ci"][f"b{t}"]
            covered[metric] += lo <= truth <= hi
    assert covered["one_minus_jsd"] >= 0.8 * trials and covered["accuracy"] >= 0.8 * trials, covered
    assert lo > 0  # a 20-point gain on 160 items is clearly resolved


def test_unpaired_questions_are_dropped_and_counted(tmp_path):
    rng = np.random.default_rng(3)
    items = random_items(rng, cultures=("DEU", "CHN"), n=10)
    b_items = [i for i in items if i.question_id not in ("Q0", "Q1")] + [item("DEU", "Q99", 0.5, 1, 1)]
    b_items += [item("NGA", "Q0", 0.5, 1, 1)]  # a culture only run b has
    result = compare_runs([write_eval(tmp_path / "a", items), write_eval(tmp_path / "b", b_items)], n_boot=50)
    assert result["paired_items"] == 16
    assert result["unpaired_items"] == {"a": 4, "b": 2}
    assert result["n_questions"] == {"overall": 16, "CHN": 8, "DEU": 8}
    assert "NGA" not in result["scopes"]
    with pytest.raises(UserError, match="no \\(culture, question\\) is in every run"):
        compare_runs([write_eval(tmp_path / "c", items[:3]), write_eval(tmp_path / "d", items[3:6])])


def test_which_evaluation_is_compared(tmp_path):
    items = random_items(np.random.default_rng(4), n=5)
    run = write_eval(write_eval(tmp_path / "run", items, "wvs-before"), items, "wvs-after")
    write_jsonl(run / "eval" / "blend" / "items.jsonl", [{"region": "UK"}])  # not a WVS evaluation
    write_json(run / "eval" / "blend" / "metrics.json", {"overall": {}, "per_region": {}})
    assert find_eval(run) == run / "eval" / "wvs-after"
    assert find_eval(run, "wvs-before") == run / "eval" / "wvs-before"
    assert find_eval(run / "eval" / "wvs-before") == run / "eval" / "wvs-before"  # an eval folder itself
    with pytest.raises(UserError, match="no WVS evaluation 'blend'"):
        find_eval(run, "blend")
    only_two = write_eval(write_eval(tmp_path / "two", items, "wvs-aware"), items, "wvs-unaware")
    with pytest.raises(UserError, match="name the one to compare"):
        find_eval(only_two)
    before_after = compare_runs([run / "eval" / "wvs-before", run / "eval" / "wvs-after"], n_boot=20)
    assert before_after["runs"] == ["run/wvs-before", "run/wvs-after"]
    with pytest.raises(UserError, match="at least two"):
        compare_runs([run])


def test_format_comparison_marks_clear_differences(tmp_path):
    items = random_items(np.random.default_rng(5), n=30)
    better = [item(i.culture, i.question_id, i.one_minus_jsd + 0.2, 1, 1) for i in items]
    result = compare_runs([write_eval(tmp_path / "base", items), write_eval(tmp_path / "tuned", better)], n_boot=200)
    console = Console(record=True, width=200)
    console.print(format_comparison(result))
    text = console.export_text()
    assert "base" in text and "tuned" in text and "overall" in text and " *" in text
    assert not math.isnan(result["scopes"]["overall"]["wasserstein"]["values"]["base"])
