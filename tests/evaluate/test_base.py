"""The evaluation contract: one result type saved and read back, generic tables, and split-by-culture runs that
give the same figures as one run over every culture (what one adapter per culture relies on)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.evaluate import evaluation_class
from culturealign.evaluate.base import EvalResult, before_after_table, format_before_after, format_metrics
from culturealign.evaluate.blend import Blend
from culturealign.evaluate.hhh import HHH
from culturealign.evaluate.individual import Individuals, load_respondents
from culturealign.evaluate.wvs import WVS, WVSItem
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import SurveyQuestion

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wvs_respondents_demo.csv"
QUESTIONS = {
    "Q260": SurveyQuestion("Q260", "Demographics", "What is your sex?", {"1": "Male", "2": "Female"}),
    "Q57": SurveyQuestion("Q57", "Social Capital", "Can most people be trusted?", {"1": "Trusted", "2": "Careful"}),
    "Q1": SurveyQuestion("Q1", "Social Values", "Is family important?", {"1": "Very", "2": "Rather"}),
}


def _text(renderable) -> str:
    console = Console(width=220, record=True)
    console.print(renderable)
    return console.export_text()


def _skewed(messages, options):
    """A scripted model whose answer depends on the persona: the first option, more so for some cultures."""
    weight = 1 + len(messages[0]["content"]) % 5
    return {o: (weight if i == 0 else 1.0) for i, o in enumerate(options)}


def test_a_result_is_saved_and_read_back_as_strict_json(tmp_path, wvs_path):
    result = WVS(load_survey(wvs_path), parse_cultures("DEU"), limit=3).run(ScriptedEngine(option_fn=_skewed), False)
    result.save(tmp_path / "wvs")
    back = EvalResult.load(tmp_path / "wvs")
    assert back.name == "wvs" and back.metrics == json.loads((tmp_path / "wvs" / "metrics.json").read_text())
    assert back.metrics["mode"] == "aware" and len(back.items) == 3
    assert WVSItem(**back.items[0]) == result.items[0]


def test_wvs_scored_per_culture_and_combined_equals_one_run(wvs_path):
    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU,CHN,NGA"), limit=6)
    engine = ScriptedEngine(option_fn=_skewed)
    whole = wvs.run(engine, progress=False)
    parts = [wvs.subset([c]).run(engine, progress=False) for c in wvs.cultures()]
    combined = wvs.combine(parts)
    assert wvs.cultures() == ["DEU", "CHN", "NGA"] and [len(p.items) for p in parts] == [6, 6, 6]
    assert combined.metrics == whole.metrics  # discrimination too: recomputed across cultures after combining
    assert not math.isnan(whole.metrics["overall"]["discrimination"])


def test_blend_scored_per_culture_and_combined_equals_one_run(blend_path):
    blend = Blend(blend_path, {"CHN": "China", "GBR": "UK"}, limit=4)
    engine = ScriptedEngine(fn=lambda m: "rice" if "China" in m[-1]["content"] else "tea")
    whole = blend.run(engine, progress=False)
    combined = blend.combine([blend.subset([c]).run(engine, progress=False) for c in blend.cultures()])
    assert combined.metrics == whole.metrics and set(whole.metrics["per_region"]) == {"China", "UK"}


def test_individuals_sample_the_same_respondents_alone_or_together():
    people = Individuals(load_respondents(FIXTURE, QUESTIONS), QUESTIONS, per_country=1, seed=3)
    engine = ScriptedEngine(outputs=["x"], option_fn=_skewed)
    whole = people.run(engine, progress=False)
    combined = people.combine([people.subset([c]).run(engine, progress=False) for c in people.cultures()])
    assert people.cultures() == ["DEU", "JPN"]
    assert combined.metrics == whole.metrics and combined.metrics["per_country"]["DEU"]["respondents"] == 1


def test_an_evaluation_without_cultures_cannot_be_split():
    hhh = HHH([], ScriptedEngine(outputs=["x"]))
    assert hhh.cultures() == [] and hhh.subset(["DEU"]) is hhh
    with pytest.raises(NotImplementedError, match="hhh cannot be split"):
        hhh.combine([EvalResult("hhh", [], {}), EvalResult("hhh", [], {})])


def test_evaluations_are_found_by_name():
    assert [evaluation_class(n) for n in ("wvs", "blend", "hhh", "individual")] == [WVS, Blend, HHH, Individuals]


def test_before_after_table_for_any_evaluation_and_its_gap():
    before = {"overall": {"one_minus_jsd": 0.6, "accuracy": 0.2}, "per_culture": {"DEU": {"one_minus_jsd": 0.5}}}
    after = {"overall": {"one_minus_jsd": 0.7, "accuracy": 0.3}, "per_culture": {"DEU": {"one_minus_jsd": 0.75}}}
    table = before_after_table(WVS, before, after)
    assert list(table) == ["DEU", "overall"]
    assert table["overall"]["one_minus_jsd"]["diff"] == pytest.approx(0.1)
    assert table["overall"]["one_minus_jsd"]["gap_closed"] == pytest.approx(0.25)  # 0.1 of the 0.4 left
    assert table["DEU"]["one_minus_jsd"]["gap_closed"] == pytest.approx(0.5)
    assert math.isnan(table["DEU"]["accuracy"]["after"])  # a figure missing after is undefined, not zero
    untrained = before_after_table(WVS, before, None)
    assert math.isnan(untrained["overall"]["one_minus_jsd"]["diff"])
    text = _text(format_before_after(WVS, table))
    assert "WVS alignment before / after tuning" in text and "0.600 → 0.700 (+0.100)" in text and "+25.0%" in text
    blend = before_after_table(Blend, {"overall": {"accuracy": 0.5}, "per_region": {"UK": {"accuracy": 0.5}}}, None)
    assert (
        list(blend) == ["UK", "overall"] and "accuracy" in blend["UK"] and "gap_closed" not in blend["UK"]["accuracy"]
    )


def test_a_one_result_table_shows_declared_and_nested_columns():
    metrics = {
        "overall": {"n": 2, "WR": 0.5, "SS": 0.0, "TI": 1.0, "Avg": 0.5, "failure_rates": {"stereotyping": 0.25}},
        "per_domain": {},
        "efficiency": {"latency_per_answer_s": 1, "tokens_per_second": 2, "peak_memory_mib": 3},
        "parse_failures": {"win_ab": 1},
        "judge_prompts_version": 1,
    }
    text = _text(format_metrics(HHH, metrics, "HHH of m"))
    assert "stereotyping" in text and "0.250" in text and "parse failures 1" in text
