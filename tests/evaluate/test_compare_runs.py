"""Comparing runs: paired bootstrap intervals that cover the truth, zero for identical runs, unpaired items counted,
overall resampled by question id across cultures, permutation p-values and BH q-values, discrimination."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from scipy.stats import false_discovery_control

from culturealign.errors import UserError
from culturealign.evaluate import metrics as M
from culturealign.evaluate.base import EvalResult
from culturealign.evaluate.compare_runs import COMPARED_METRICS, compare_runs, find_eval, format_comparison
from culturealign.evaluate.wvs import WVSItem, summarize
from culturealign.runs import read_jsonl, write_json, write_jsonl


def item(culture: str, qid: str, jsd: float, choice: int, majority: int, k: int = 4, w1: float | None = None):
    dist = {str(i + 1): 1 / k for i in range(k)}
    return WVSItem(culture, qid, "Security", "numeric", dist, dist, str(choice), str(majority), 1.0, jsd, w1)


def write_eval(run: Path, items: list[WVSItem], name: str = "wvs-after") -> Path:
    EvalResult("wvs", items, {"mode": "aware", **summarize(items)}).save(run / "eval" / name)
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
    assert result["multiple_comparisons"] == "Benjamini-Hochberg over scopes x metrics per run"
    for scope in result["scopes"].values():
        assert tuple(scope) == COMPARED_METRICS
        for m, row in scope.items():
            if m == "discrimination":  # these items have no cross_one_minus_jsd
                assert all(math.isnan(row[k]["b"]) for k in ("diff", "p", "q")) and math.isnan(row["values"]["a"])
                continue
            assert row["diff"]["b"] == 0 and row["ci"]["b"] == [0, 0], m
            assert row["p"]["b"] == 1 and row["q"]["b"] == 1, m
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
        result = compare_runs([a, b], n_boot=500, seed=t, n_perm=20)  # the CI is under test
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
    with pytest.raises(UserError, match="no \\(variant, culture, question\\) is in every run"):
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
    assert "p <.001 q <.001" in text and "* q < 0.05 or 95% CI excludes 0" in " ".join(text.split())
    assert not math.isnan(result["scopes"]["overall"]["wasserstein"]["values"]["base"])


def set_cross(run: Path, cross, name: str = "wvs-after") -> Path:
    """Give every item of ``run`` a ``cross_one_minus_jsd`` from ``cross(item row)`` (a float or None)."""
    path = run / "eval" / name / "items.jsonl"
    write_jsonl(path, [{**row, "cross_one_minus_jsd": cross(row)} for row in read_jsonl(path)])
    return run


def test_overall_interval_resamples_question_ids_jointly(tmp_path):
    """Every culture moves together on each question: the overall CI must be as wide as question ids allow,
    wider than the mean over cultures of independent per-culture resamples."""
    rng = np.random.default_rng(6)
    cultures, n = ("DEU", "CHN", "NGA"), 60
    base = rng.uniform(0.3, 0.7, size=(3, n))
    shift = rng.normal(0.02, 0.05, size=n)  # shared by every culture on the question
    tuned = base + shift + rng.normal(0, 0.005, size=(3, n))
    a_items = [item(c, f"Q{q}", float(base[j, q]), 1, 1) for j, c in enumerate(cultures) for q in range(n)]
    b_items = [item(c, f"Q{q}", float(tuned[j, q]), 1, 1) for j, c in enumerate(cultures) for q in range(n)]
    result = compare_runs([write_eval(tmp_path / "a", a_items), write_eval(tmp_path / "b", b_items)], n_boot=2000)
    lo, hi = result["scopes"]["overall"]["one_minus_jsd"]["ci"]["b"]
    d = tuned - base
    independent = np.mean([d[j][rng.integers(0, n, size=(2000, n))].mean(axis=1) for j in range(3)], axis=0)
    ind_lo, ind_hi = np.percentile(independent, [2.5, 97.5])
    assert lo < d.mean() < hi
    assert hi - lo > 1.4 * (ind_hi - ind_lo), (hi - lo, ind_hi - ind_lo)  # about sqrt(3) times wider
    joint = d.mean(axis=0)[rng.integers(0, n, size=(2000, n))].mean(axis=1)  # resampling question ids directly
    assert hi - lo == pytest.approx(np.subtract(*np.percentile(joint, [97.5, 2.5])), rel=0.15)


def test_consistent_shift_is_significant_and_q_is_benjamini_hochberg(tmp_path):
    rng = np.random.default_rng(7)
    a_items = random_items(rng, n=40)
    b_items = [
        item(
            i.culture,
            i.question_id,
            i.one_minus_jsd + 0.1 + float(rng.normal(0, 0.01)),
            1,
            1,
            len(i.model),
            i.wasserstein,
        )
        for i in a_items
    ]
    result = compare_runs([write_eval(tmp_path / "a", a_items), write_eval(tmp_path / "b", b_items)], n_boot=200)
    for scope in ("overall", "DEU", "CHN"):
        row = result["scopes"][scope]["one_minus_jsd"]
        assert row["p"]["b"] < 0.01 and row["q"]["b"] < 0.01 and row["ci"]["b"][0] > 0, scope
    rows = [row for scope in result["scopes"].values() for row in scope.values()]
    ps, qs = np.array([r["p"]["b"] for r in rows]), np.array([r["q"]["b"] for r in rows])
    ok = ~np.isnan(ps)
    assert ok.sum() == 12 and np.isnan(qs[~ok]).all()  # discrimination has no data: NaN p, NaN q
    assert qs[ok] == pytest.approx(false_discovery_control(ps[ok]))
    assert (qs[ok] >= ps[ok]).all() and not np.allclose(qs[ok], ps[ok])


def test_overall_permutation_swaps_whole_question_ids(tmp_path):
    """Against brute force: all 2^5 swaps of the two runs per question id (every culture's item together), on
    culturespa's non-linear formula and a mean, with one culture lacking a question."""
    rng = np.random.default_rng(8)
    runs = {}
    for run in ("a", "b"):
        runs[run] = [
            item(c, f"Q{q}", float(rng.uniform(0.3, 0.7)), int(rng.integers(1, 6)), 3, 5)
            for c in ("DEU", "CHN")
            for q in range(5)
            if (c, q) != ("CHN", 4)
        ]
    result = compare_runs([write_eval(tmp_path / r, runs[r]) for r in runs], n_boot=10, n_perm=2000)

    def overall(m: str, its: list[WVSItem]) -> float:
        per_culture = []
        for c in ("DEU", "CHN"):
            mine = [i for i in its if i.culture == c]
            if m == "culturespa":
                per_culture.append(
                    M.culturespa_score([float(i.choice) for i in mine], [3.0] * len(mine), [5] * len(mine))
                )
            else:
                per_culture.append(np.mean([i.one_minus_jsd for i in mine]))
        return float(np.mean(per_culture))

    for m in ("culturespa", "one_minus_jsd"):
        null = []
        for mask in itertools.product((False, True), repeat=5):
            x = [(b if mask[int(a.question_id[1:])] else a) for a, b in zip(runs["a"], runs["b"], strict=True)]
            y = [(a if mask[int(a.question_id[1:])] else b) for a, b in zip(runs["a"], runs["b"], strict=True)]
            null.append(overall(m, y) - overall(m, x))
        null, observed = np.array(null), null[0]
        assert result["scopes"]["overall"][m]["diff"]["b"] == pytest.approx(observed)
        expected = min(1.0, 2 * min(np.mean(null <= observed + 1e-12), np.mean(null >= observed - 1e-12)))
        assert result["scopes"]["overall"][m]["p"]["b"] == pytest.approx(expected), m


def test_discrimination_is_compared_from_the_cross_field(tmp_path):
    rng = np.random.default_rng(9)
    items = random_items(rng, n=20)
    a = set_cross(write_eval(tmp_path / "a", items), lambda r: None if r["question_id"] == "Q0" else 0.5)
    b = set_cross(write_eval(tmp_path / "b", items), lambda r: 0.3)
    metrics = json.loads((a / "eval" / "wvs-after" / "metrics.json").read_text())
    write_json(
        a / "eval" / "wvs-after" / "metrics.json",
        {**metrics, "overall": {**metrics["overall"], "discrimination": 0.1}},
    )
    old = write_eval(tmp_path / "old", items)  # a run from before the field existed
    metrics = json.loads((old / "eval" / "wvs-after" / "metrics.json").read_text())
    metrics["overall"].pop("discrimination", None)
    write_json(old / "eval" / "wvs-after" / "metrics.json", metrics)
    result = compare_runs([a, b, old], n_boot=200)
    jsd = {c: np.array([i.one_minus_jsd for i in items if i.culture == c]) for c in ("DEU", "CHN")}
    for c in ("DEU", "CHN"):
        row = result["scopes"][c]["discrimination"]
        assert row["values"]["a"] == pytest.approx(np.mean(jsd[c][1:] - 0.5))  # Q0 has no cross term
        assert row["values"]["b"] == pytest.approx(np.mean(jsd[c] - 0.3))
    row = result["scopes"]["overall"]["discrimination"]
    assert row["values"]["a"] == pytest.approx(np.mean([np.mean(jsd[c][1:] - 0.5) for c in jsd]))
    assert row["diff"]["b"] == pytest.approx(row["values"]["b"] - row["values"]["a"])
    assert row["diff"]["b"] > 0.15 and row["ci"]["b"][0] > 0 and row["p"]["b"] < 0.01
    assert row["reported"]["a"] == 0.1 and math.isnan(row["reported"]["old"])
    assert math.isnan(row["values"]["old"]) and math.isnan(row["diff"]["old"]) and math.isnan(row["p"]["old"])
    assert math.isnan(row["q"]["old"]) and all(math.isnan(x) for x in row["ci"]["old"])
    assert not math.isnan(result["scopes"]["overall"]["one_minus_jsd"]["q"]["old"])  # the rest still compares


def test_compare_reproduces_each_runs_metrics_json_exactly(tmp_path, wvs_path):
    """One definition per metric: ``compare`` on a run's saved items gives the very figures of its metrics.json,
    per culture and overall, to the last bit (the items listed in survey order, compare pairing them sorted)."""
    from culturealign.cultures import parse_cultures
    from culturealign.data.survey import load_survey
    from culturealign.evaluate.wvs import WVS
    from culturealign.llm.scripted import ScriptedEngine

    def skewed(messages, options):
        weight = 1 + len(messages[0]["content"] + messages[-1]["content"]) % 7
        return {o: (weight if i == len(options) // 2 else 1.0 + i) for i, o in enumerate(options)}

    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU,CHN,NGA"), limit=60)
    runs = []
    for name, engine in (("a", ScriptedEngine(option_fn=skewed)), ("b", ScriptedEngine())):
        wvs.run(engine, progress=False).save(tmp_path / name / "eval" / "wvs-after")
        runs.append(tmp_path / name)
    result = compare_runs(runs, n_boot=10, n_perm=10)
    assert result["unpaired_items"] == {"a": 0, "b": 0}
    assert set(result["scopes"]) == {"overall", "DEU", "CHN", "NGA"}
    for scope, rows in result["scopes"].items():
        for m, row in rows.items():
            for run in ("a", "b"):
                value, reported = row["values"][run], row["reported"][run]
                assert value == reported or (math.isnan(value) and reported is None), (scope, m, run, value, reported)
    assert not math.isnan(result["scopes"]["overall"]["wasserstein"]["values"]["a"])
