"""CAReDiO steps: the parsers, the rewrite loops on recorded outputs, and the real model end to end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from culturealign.cultures import Culture, parse_cultures
from culturealign.llm.base import GenParams
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import ChatSample, CulturalQuery, Messages
from culturealign.runs.runner import run_steps
from culturealign.steps import caredio
from culturealign.steps.caredio import (
    GenerateQueries,
    OptimizeQueries,
    OptimizeResponses,
    RespondDistinctive,
    assistant_system,
    parse_query,
    parse_response,
    persona_messages,
    score_relatedness,
    should_stop,
)
from culturealign.steps.objectives import culture_relatedness


@dataclass
class TableEngine(ScriptedEngine):
    """Scores completions from a table ``(country in the persona, completion) -> log p`` (0 when absent), rates
    replies from ``judge`` (P(Yes) by reply text, 0.9 when absent), counts each public call by kind and keeps what
    it scored."""

    table: dict[tuple[str, str], float] = field(default_factory=dict)
    judge: dict[str, float] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    scored: list[str] = field(default_factory=list)  # every completion scored (cache misses)

    def generate(self, prompts: Sequence[Messages], params: GenParams | None = None, progress=None):
        self.calls["generate"] += 1
        return super().generate(prompts, params, progress)

    def score_completions(self, prompts, completions, progress=None):
        self.calls["score_completions"] += 1
        return super().score_completions(prompts, completions, progress)

    def score_options(self, prompts, options, progress=None):
        self.calls["score_options"] += 1
        return super().score_options(prompts, options, progress)

    def _score_completions(self, prompts: Sequence[Messages], completions: Sequence[str]) -> list[float]:
        self.scored += completions
        return [self.table.get((_country(p), c), 0.0) for p, c in zip(prompts, completions, strict=True)]

    def _score_options(self, prompts, options):
        def yes(messages: Messages, opts: Sequence[str]) -> dict[str, float]:
            reply = messages[-1]["content"].split("An assistant replied: ")[1].split("\n")[0]
            p = self.judge.get(reply, 0.9)
            return {"Yes": p, "No": 1 - p}

        self.option_fn = yes
        return super()._score_options(prompts, options)


def _country(messages: Messages) -> str:
    return next(c for c in ("GBR", "CHN", "USA", "JPN") if messages[0]["content"] == assistant_system(_C[c]))


_C: dict[str, Culture] = {c.code: c for c in parse_cultures("GBR,CHN,USA,JPN")}


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


def test_parse_response():
    assert parse_response('New reply: "A cup of tea, of course."') == "A cup of tea, of course."
    assert parse_response("**Response:** Bring flowers.\n") == "Bring flowers."
    assert parse_response("  \n") is None


def test_relatedness_weighs_each_answer_per_byte_not_by_its_length():
    """A short and a long answer: per byte, GBR fits the short one better and CHN the long one."""
    short, long = "Tea, milk.", "Rice porridge with pickled vegetables and a fried dough stick."
    n_short, n_long = len(short.encode()), len(long.encode())
    per_byte = {"GBR": (-1.0, -2.0), "CHN": (-2.0, -1.0)}  # (short, long)
    table = {
        (c, a): fit[i] * n
        for c, fit in per_byte.items()
        for i, (a, n) in enumerate([(short, n_short), (long, n_long)])
    }
    answers = iter([short, long])
    engine = TableEngine(fn=lambda m: next(answers), table=table)
    got = score_relatedness(engine, ["What do people have for breakfast?"], parse_cultures("GBR,CHN"), samples=2)
    assert got == [pytest.approx(culture_relatedness(np.exp([[-1.0, -2.0], [-2.0, -1.0]])), rel=1e-12)]
    assert got[0] > 0.1  # summed, both rows put all their mass on the short answer and relatedness is about 0


def test_relatedness_leaves_empty_answers_out():
    answers = iter(["", "Tea.", " "])
    engine = TableEngine(fn=lambda m: next(answers), table={("GBR", "Tea."): -4.0, ("CHN", "Tea."): -8.0})
    assert score_relatedness(engine, ["What to drink?"], parse_cultures("GBR,CHN"), samples=3) == [0.0]
    assert engine.scored == ["Tea.", "Tea."]  # under each culture; "" and " " are left out


def _conversation(code: str, reply: str, d: float, judge_yes: float = 0.9) -> ChatSample:
    messages = [
        *persona_messages(_C[code], f"What should I bring ({reply[:4]})?"),
        {"role": "assistant", "content": reply},
    ]
    return ChatSample(messages, {"culture": code, "distinctiveness": d, "judge_yes": judge_yes, "relatedness": 0.01})


def _response_step(**kw) -> tuple[OptimizeResponses, TableEngine, list[ChatSample]]:
    rewrites = {
        "Tea is fine.": "New reply: A cuppa with milk, of course.",  # more distinctive, accepted: kept
        "Flowers.": "Flowers and wine.",  # less distinctive: not kept
        "Rice is fine.": "Congee with youtiao.",  # more distinctive, but the judge refuses it
    }
    # distinctiveness = log p(y | own) - log p(y | related), the related culture's log p left at 0
    table = {("GBR", "A cuppa with milk, of course."): 7.0, ("GBR", "Flowers and wine."): 5.5}
    table |= {("CHN", "Congee with youtiao."): 9.0}
    engine = TableEngine(
        fn=lambda m: rewrites[m[-1]["content"].split("An assistant replied: ")[1].split("\n")[0]],
        table=table,
        judge={"Congee with youtiao.": 0.2},
    )
    cultures = [_C["GBR"], _C["CHN"]]
    step = OptimizeResponses(engine, engine, cultures, {"GBR": [_C["USA"]], "CHN": [_C["JPN"]]}, **kw)
    samples = [
        _conversation("GBR", "Tea is fine.", 5.0),
        _conversation("GBR", "Flowers.", 6.0),
        _conversation("CHN", "Rice is fine.", 0.3),
        _conversation("CHN", "Fruit.", 0.4),
    ]
    return step, engine, samples


def test_optimize_responses_keeps_a_rewrite_only_when_more_distinctive_and_accepted():
    step, engine, samples = _response_step(rounds=2, rewrite_fraction=0.5, judge_threshold=0.5)
    out = list(step.run(samples))
    assert [(s.meta["culture"], s.messages[-1]["content"], s.meta["response_rounds"]) for s in out] == [
        ("GBR", "A cuppa with milk, of course.", 1),
        ("GBR", "Flowers.", 0),
        ("CHN", "Rice is fine.", 0),
        ("CHN", "Fruit.", 0),
    ]
    assert [s.meta["distinctiveness"] for s in out] == [7.0, 6.0, 0.3, 0.4]
    # round 1 rewrites the least distinctive of each culture (not the two CHN ones, lowest overall): Tea and Rice;
    # round 2: Flowers (now GBR's lowest) and Rice again
    asked = [m[-1]["content"] for m in engine.seen if "Rewrite the reply" in m[-1]["content"]]
    assert [x.split("replied: ")[1].split("\n")[0] for x in asked] == [
        "Tea is fine.",
        "Rice is fine.",
        "Flowers.",
        "Rice is fine.",
    ]
    assert "Distinctiveness of the reply: 5.00" in asked[0] and "helpful and faithful to British" in asked[0]
    assert "United States" in asked[0]  # GBR's related culture
    assert step.stats["mean_distinctiveness_per_round"] == pytest.approx([2.925, 3.425, 3.425])
    assert step.stats["mean_judge_yes_per_round"] == pytest.approx([0.9, 0.9, 0.9])
    assert step.stats["rewrites_tried"] == 4 and step.stats["rewrites_kept"] == 1
    assert step.stats["rewrites_refused_by_judge"] == 2 and step.stats["mean_relatedness"] == pytest.approx(0.01)
    # batched: per round one generation call, one scoring call and one judge call over every rewrite
    assert engine.calls == {"generate": 2, "score_completions": 2, "score_options": 2}


def test_optimize_responses_stops_when_a_round_keeps_nothing():
    step, engine, samples = _response_step(rounds=5, rewrite_fraction=0.5, judge_threshold=0.5)
    list(step.run(samples))
    assert len(step.stats["mean_distinctiveness_per_round"]) == 3  # round 2 kept nothing: no round 3
    step, engine, samples = _response_step(rounds=0)
    assert [s.messages[-1]["content"] for s in step.run(samples)] == [
        "Tea is fine.",
        "Flowers.",
        "Rice is fine.",
        "Fruit.",
    ]
    assert engine.calls == {}


def test_optimize_responses_resumes_under_the_runner(tmp_path):
    step, engine, samples = _response_step(rounds=1)
    first = run_steps([step], tmp_path, samples)
    calls = dict(engine.calls)
    step, engine, samples = _response_step(rounds=1)
    again = run_steps([step], tmp_path, samples)  # finished: read back, no model call
    assert engine.calls == {} and calls["generate"] == 1
    assert [s.messages for s in again] == [s.messages for s in first]
    assert again[0].meta["distinctiveness"] == 7.0


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
