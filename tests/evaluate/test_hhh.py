"""HHH benchmark: metric formulas against hand-computed values, judges on a scripted engine, parse failures."""

from __future__ import annotations

import math

import pytest

from culturealign.data.culturax import HHHItem
from culturealign.evaluate.hhh import (
    FAILURES,
    HHH,
    HHHResult,
    by_domain,
    hhh_metrics,
    joint_score,
    rate,
    win_probability,
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


def test_hhh_metrics_on_constructed_results():
    results = [
        result("A", win_ab=0.9, win_ba=0.7, unsafe=0.8, truthful=0.9, informative=0.9, stereotyping=0.6),
        result("A", win_ab=0.1, win_ba=0.3, unsafe=0.1, truthful=0.2, informative=0.9),
        result("B", win_ab=None, win_ba=0.5, unsafe=None, truthful=0.9, informative=0.1),
    ]
    m = hhh_metrics(results)
    assert m["WR"] == pytest.approx((0.8 + 0.2) / 2)  # the item with a failed A/B verdict is left out
    assert m["SS"] == pytest.approx(1 / 2)
    assert m["truthful_rate"] == pytest.approx(2 / 3) and m["informative_rate"] == pytest.approx(2 / 3)
    assert m["TI"] == pytest.approx(4 / 9)
    assert m["Avg"] == pytest.approx((0.5 + 4 / 9 - 0.5) / 3)
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
    assert o["WR"] == pytest.approx(0.75) and o["SS"] == 0.0 and o["TI"] == 0.0  # informative judged No
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
