"""CAReDiO steps: the parser, the rewrite loop's stopping rule on recorded outputs, and the real model end to end."""

from __future__ import annotations

import numpy as np
import pytest

from culturealign.cultures import parse_cultures
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import CulturalQuery
from culturealign.steps import caredio
from culturealign.steps.caredio import GenerateQueries, OptimizeQueries, RespondDistinctive, parse_query, should_stop


def test_parse_query():
    assert parse_query('Question: "How do families celebrate a birthday where you live?"') == (
        "How do families celebrate a birthday where you live?"
    )
    assert parse_query("Sure!\nWhat should a guest bring when invited to dinner?") == (
        "What should a guest bring when invited to dinner?"
    )
    assert parse_query("Birthdays are fun.") is None
    assert parse_query("Why?") is None  # too short


@pytest.mark.parametrize(
    ("history", "rounds", "stop"),
    [
        ([0.10], 2, False),
        ([0.10, 0.20], 2, False),
        ([0.10, 0.20, 0.35], 2, True),
        ([0.10, 0.105], 5, True),
        ([0.1], 0, True),
    ],
)
def test_should_stop(history, rounds, stop):
    assert should_stop(history, min_gain=0.01, rounds=rounds) is stop


def test_rewrite_loop_on_recorded_outputs(monkeypatch):
    """Recorded scores: round 1 improves the weak query by 0.3, round 2 gains nothing -> two rounds, then stop."""
    recorded = {
        "How do people greet?": 0.1,
        "What do people eat at weddings in your country?": 0.5,
        "How do you greet an elder in your culture?": 0.4,
        "How do you greet your grandmother at home?": 0.39,
    }
    monkeypatch.setattr(caredio, "score_relatedness", lambda e, texts, c, s, seed: [recorded[t] for t in texts])
    replies = iter(["How do you greet an elder in your culture?", "How do you greet your grandmother at home?"])
    engine = ScriptedEngine(fn=lambda m: next(replies))
    step = OptimizeQueries(engine, parse_cultures("DEU,JPN"), rounds=5, min_gain=0.01, rewrite_fraction=0.5)
    queries = [
        CulturalQuery("a", "greetings", "How do people greet?"),
        CulturalQuery("b", "food", "What do people eat at weddings in your country?"),
    ]
    out = list(step.run(queries))
    assert out[0].text == "How do you greet an elder in your culture?" and out[0].rounds == 1
    assert out[0].relatedness == 0.4  # the second rewrite (0.39) scored lower and was not kept
    assert step.stats["mean_relatedness_per_round"] == pytest.approx([0.3, 0.45, 0.45])
    assert step.stats["rewrites_kept"] == 1
    assert len(engine.seen) == 2  # one rewrite per round, two rounds


def test_generate_queries_retries_and_drops():
    replies = iter(["not a question", "What do people eat at a wedding in your country?", "still nothing", "no"])
    step = GenerateQueries(
        ScriptedEngine(fn=lambda m: next(replies)), topics=["food and cuisine", "humour"], max_retries=1
    )
    out = list(step.run([]))
    assert [q.topic for q in out] == ["humour"] or [q.topic for q in out] == ["food and cuisine"]
    assert step.stats["valid"] == 1 and sum(step.stats["dropped_by_reason"].values()) == 1


@pytest.mark.slow
def test_respond_distinctive_on_the_real_model(engine):
    cultures = parse_cultures("GBR,CHN")
    related = {"GBR": parse_cultures("USA,AUS"), "CHN": parse_cultures("JPN")}
    step = RespondDistinctive(engine, engine, cultures, related, candidates=2, max_tokens=24, judge_threshold=0.0)
    query = CulturalQuery("q1", "food and cuisine", "What do people usually eat for breakfast?", 0.2)
    out = list(step.run([query]))
    assert [s.meta["culture"] for s in out] == ["GBR", "CHN"]
    for s in out:
        assert s.messages[0]["role"] == "system" and s.messages[-1]["role"] == "assistant"
        assert np.isfinite(s.meta["distinctiveness"]) and 0 <= s.meta["judge_yes"] <= 1
    assert step.stats["kept"] == 2
