"""HHH benchmark: metric formulas against hand-computed values, judges on a scripted engine, parse failures."""

from __future__ import annotations

import math

import pytest

from culturealign.data.culturax import HHHItem
from culturealign.errors import UserError
from culturealign.evaluate.hhh import (
    FAILURES,
    HHH,
    HHHResult,
    by_domain,
    hhh_metrics,
    joint_rate,
    joint_score,
    mean_over_runs,
    rate,
    spread,
    win_probability,
    win_rate,
)
from culturealign.llm.scripted import ScriptedEngine


def result(domain: str, **verdicts) -> HHHResult:
    base = {"win_ab": 0.5, "win_ba": 0.5, "unsafe": 0.0, "truthful": 1.0, "informative": 1.0}
    base.update({f: 0.0 for f in FAILURES})
    base.update(verdicts)
    return HHHResult("x", "q", domain, None, "a", base)


def test_formulas_by_hand():
    assert win_probability(0.8, 0.6) == pytest.approx(0.7)
    assert rate([0.9, 0.2, None, 0.5]) == pytest.approx(2 / 3)  # failed verdicts are left out
    assert math.isnan(rate([None]))
    assert joint_score(0.6, 0.5, 0.2) == pytest.approx(0.3)
    assert win_rate([0.9, 0.5, 0.2, None]) == pytest.approx(1 / 3)  # a tie is no win; a failed verdict is left out
    assert joint_rate([0.9, 0.9, None], [0.9, 0.1, 0.9]) == pytest.approx(1 / 2)


def test_ti_is_the_share_judged_both_truthful_and_informative():
    results = [result("A", truthful=0.9, informative=0.1), result("A", truthful=0.1, informative=0.9)]
    m = hhh_metrics(results)
    assert m["truthful_rate"] == 0.5 and m["informative_rate"] == 0.5  # their product would be 0.25
    assert m["TI"] == 0.0  # no answer is both


def test_wr_is_the_share_of_items_judged_better_and_wr_prob_the_mean_probability():
    results = [result("A", win_ab=0.9, win_ba=0.7), result("A", win_ab=0.4, win_ba=0.4), result("A")]  # 0.8, 0.4, tie
    m = hhh_metrics(results)
    assert m["WR"] == pytest.approx(1 / 3)
    assert m["WR_prob"] == pytest.approx((0.8 + 0.4 + 0.5) / 3)
    assert m["Avg"] == pytest.approx((1 / 3 + 1.0 - 0.0) / 3)  # Avg takes the proportion


def test_runs_are_averaged_with_their_spread():
    runs = [{"WR": 0.2, "n": 3, "f": {"x": 0.5}}, {"WR": 0.4, "n": 3, "f": {"x": math.nan}}, {"WR": 0.9, "n": 3,
            "f": {"x": 0.7}}]  # fmt: skip
    m = mean_over_runs(runs)
    assert m["WR"] == pytest.approx(0.5) and m["n"] == 3 and m["f"]["x"] == pytest.approx(0.6)
    s = spread([r["WR"] for r in runs])
    assert s["sd"] == pytest.approx(0.3605551, abs=1e-6) and (s["min"], s["max"]) == (0.2, 0.9)
    assert math.isnan(spread([0.5])["sd"])


def test_hhh_metrics_on_constructed_results():
    results = [
        result("A", win_ab=0.9, win_ba=0.7, unsafe=0.8, truthful=0.9, informative=0.9, stereotyping=0.6),
        result("A", win_ab=0.1, win_ba=0.3, unsafe=0.1, truthful=0.2, informative=0.9),
        result("B", win_ab=None, win_ba=0.5, unsafe=None, truthful=0.9, informative=0.1),
    ]
    m = hhh_metrics(results)
    assert m["WR"] == pytest.approx(1 / 2)  # 0.8 wins, 0.2 loses; the item with a failed A/B verdict is left out
    assert m["WR_prob"] == pytest.approx((0.8 + 0.2) / 2)
    assert m["SS"] == pytest.approx(1 / 2)
    assert m["truthful_rate"] == pytest.approx(2 / 3) and m["informative_rate"] == pytest.approx(2 / 3)
    assert m["TI"] == pytest.approx(1 / 3)  # only the first answer is both
    assert m["Avg"] == pytest.approx((0.5 + 1 / 3 - 0.5) / 3)
    assert m["failure_rates"]["stereotyping"] == pytest.approx(1 / 3)
    assert set(by_domain(results)) == {"A", "B"} and by_domain(results)["A"]["n"] == 2


def item(i: int) -> HHHItem:
    return HHHItem(
        f"id{i}",
        f"question {i}?",
        7,
        "Festivals",
        "Performance and celebration",
        "tag",
        "ref-help",
        "ref-harm",
        "ref-honest",
        (1, 1, 1),
    )


def test_benchmark_end_to_end_on_a_scripted_judge():
    model = ScriptedEngine(fn=lambda m: "my answer")

    def option_fn(messages, options):
        text = messages[-1]["content"]
        if options == ["A", "B"]:  # prefers whichever answer is "my answer"
            return {"A": 0.8, "B": 0.2} if "Answer A: my answer" in text else {"A": 0.3, "B": 0.7}
        return {"Yes": 0.9, "No": 0.1} if "truthful" in text else {"Yes": 0.1, "No": 0.9}

    judge = ScriptedEngine(fn=lambda m: "x", option_fn=option_fn)
    metrics = HHH([item(0), item(1)], judge, train_texts=["question 0?"]).run(model, progress=False).metrics
    o = metrics["overall"]
    assert o["WR"] == 1.0 and o["WR_prob"] == pytest.approx(0.75)  # P 0.8 and 0.7: both items judged better
    assert o["SS"] == 0.0 and o["TI"] == 0.0  # informative judged No
    assert metrics["parse_failures"] == dict.fromkeys(metrics["parse_failures"], 0)
    assert metrics["leakage"]["rate"] == pytest.approx(0.5)
    assert metrics["judge_prompts_version"] == 1
    assert metrics["per_domain"]["Performance and celebration"]["n"] == 2
    assert metrics["efficiency"]["answers_generated"] == 2


def test_low_mass_verdicts_are_counted_as_parse_failures_not_scored():
    from culturealign.evaluate.hhh import judge_all
    from culturealign.llm.base import OptionScores

    class LowMassJudge(ScriptedEngine):
        def _score_options(self, prompts, options):
            return [OptionScores({o: 1 / len(opts) for o in opts}, 0.001, "logits") for opts in options]

    results, failures = judge_all(LowMassJudge(outputs=["x"]), [item(0)], ["a"], min_mass=0.01, progress=False)
    assert all(v is None for v in results[0].verdicts.values())
    assert sum(failures.values()) == len(results[0].verdicts)
    assert math.isnan(hhh_metrics(results)["SS"])


def test_a_safety_classifier_replaces_the_llm_safety_judge():
    model = ScriptedEngine(fn=lambda m: "a harmful answer" if "question 0" in m[-1]["content"] else "fine")
    judge = ScriptedEngine(fn=lambda m: "x", option_fn=lambda m, o: dict.fromkeys(o, 1.0))

    def classifier(texts):
        return [0.9 if "harmful" in t else 0.05 for t in texts]

    classifier.name = "keyword-classifier"
    metrics = HHH([item(0), item(1)], judge, safety=classifier).run(model, progress=False).metrics
    assert metrics["overall"]["SS"] == pytest.approx(0.5) and metrics["safety_judge"] == "keyword-classifier"


def test_sampled_runs_differ_are_averaged_and_resume_from_the_cache(tmp_path):
    from culturealign.llm.cache import CallCache

    asked = []

    class Recording(ScriptedEngine):
        def _generate(self, prompts, params):
            asked.append(params)
            return super()._generate(prompts, params)

    answers = iter(["GOOD", "GOOD", "GOOD", "POOR", "POOR", "POOR"])  # run 1: both good; run 2: one; run 3: none

    def option_fn(messages, options):
        text = messages[-1]["content"]
        if options == ["A", "B"]:  # the model's answer wins when it is GOOD, else the reference does
            a_wins = "Answer A: GOOD" in text or ("Answer B: POOR" in text)
            return {"A": 0.9, "B": 0.1} if a_wins else {"A": 0.1, "B": 0.9}
        return {"Yes": 0.9, "No": 0.1} if "GOOD" in text else {"Yes": 0.1, "No": 0.9}

    def judge():
        return ScriptedEngine(name="judge", option_fn=option_fn, cache=CallCache(tmp_path / "c.sqlite"))

    model = Recording(cache=CallCache(tmp_path / "c.sqlite"), fn=lambda m: next(answers))
    hhh = HHH([item(0), item(1)], judge(), runs=3, temperature=0.7, top_p=0.9, repetition_penalty=1.1, seed=42)
    result = hhh.run(model, progress=False)
    assert len(model.seen) == 6  # every run reached the model: no run was a cache hit of another
    assert [p.seed for p in asked] == [4200, 4201, 4202] and {p.repetition_penalty for p in asked} == {1.1}
    m = result.metrics
    assert m["runs"] == 3 and len(m["per_run"]) == 3 and len(result.items) == 6
    assert [r.run for r in result.items] == [0, 0, 1, 1, 2, 2]
    assert [o["WR"] for o in m["per_run"]] == [1.0, 0.5, 0.0] and m["overall"]["WR"] == pytest.approx(0.5)
    assert m["spread"]["WR"] == {"sd": pytest.approx(0.5), "min": 0.0, "max": 1.0}
    assert m["overall"]["Avg"] == pytest.approx(sum((w + w - w) / 3 for w in (1.0, 0.5, 0.0)) / 3)  # TI = SS = WR
    assert m["overall"]["n"] == 2 and m["sampling"]["seeds"] == [4200, 4201, 4202]

    again = Recording(cache=CallCache(tmp_path / "c.sqlite"), fn=lambda m: "never asked")
    rerun = HHH([item(0), item(1)], judge(), runs=3, temperature=0.7, top_p=0.9, repetition_penalty=1.1, seed=42)
    assert rerun.run(again, progress=False).metrics["overall"] == m["overall"] and again.seen == []


def test_greedy_runs_are_refused():
    with pytest.raises(UserError, match="set a temperature > 0"):
        HHH([item(0)], ScriptedEngine(outputs=["x"]), runs=3)
