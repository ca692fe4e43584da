"""Unaware/aware answers: the choice rule (``choose_option``), the step's records on a scripted engine, the real
model."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from culturealign.cultures import parse_cultures
from culturealign.errors import UserError
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import AnswerPair, SurveyQuestion
from culturealign.steps.answers import AnswerUnawareAware, choose_option

PROBS = {"1": 0.1, "2": 0.4, "3": 0.3, "4": 0.2}

QUESTIONS = [
    SurveyQuestion(
        "Q1",
        "Social Values, Attitudes & Stereotypes",
        "How important is family in your life?",
        {"1": "Very important", "2": "Rather important", "3": "Not very important", "4": "Not at all"},
    ),
    SurveyQuestion(
        "Q57",
        "Social Capital, Trust & Organizational Membership",
        "Generally speaking, would you say that most people can be trusted?",
        {"1": "Most people can be trusted", "2": "Need to be very careful"},
    ),
]


# -- choose_option ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_temperature_zero_and_top_pick_the_argmax(seed):
    assert choose_option(PROBS, "sample", 0, random.Random(seed)) == "2"
    assert choose_option(PROBS, "top", 0.6, random.Random(seed)) == "2"
    assert choose_option({"a": 0.2, "b": 0.7, "c": 0.1}, "top", 1.0, random.Random(seed)) == "b"


def test_seeded_sampling_is_deterministic():
    def draws(seed):
        rng = random.Random(seed)
        return [choose_option(PROBS, "sample", 0.6, rng) for _ in range(200)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert set(draws(7)) == set(PROBS)  # at T=0.6 every option still comes up in 200 draws


def _top_share(temperature: float, n: int = 2000, seed: int = 0) -> float:
    rng = random.Random(seed)
    return Counter(choose_option(PROBS, "sample", temperature, rng) for _ in range(n))["2"] / n


def test_sampling_at_temperature_one_follows_the_probabilities():
    rng = random.Random(0)
    counts = Counter(choose_option(PROBS, "sample", 1.0, rng) for _ in range(4000))
    for code, p in PROBS.items():
        assert counts[code] / 4000 == pytest.approx(p, abs=0.03)


def test_lower_temperature_approaches_the_argmax():
    shares = [_top_share(t) for t in (1.0, 0.5, 0.2, 0.01)]
    assert shares == sorted(shares) and shares[0] < shares[-1]
    assert shares[0] == pytest.approx(0.4, abs=0.04)
    assert shares[-1] == 1.0


# -- the step on a scripted engine (control flow, no model) --------------------------------------------------


def _scripted() -> ScriptedEngine:
    def option_fn(messages, options):
        system = messages[0]["content"]
        favourite = "1" if "German" in system else options[-1] if "Japanese" in system else "2"
        return {o: (5.0 if o == favourite else 1.0) for o in options}

    return ScriptedEngine(outputs=["Because family comes first.\nAnd more."], option_fn=option_fn)


def test_step_pairs_each_question_with_each_culture():
    engine = _scripted()
    step = AnswerUnawareAware(engine, parse_cultures("DEU,JPN"), choice="top", reasons=True)
    pairs = list(step.run(QUESTIONS))
    assert [(p.question.id, p.culture) for p in pairs] == [
        ("Q1", "DEU"),
        ("Q1", "JPN"),
        ("Q57", "DEU"),
        ("Q57", "JPN"),
    ]
    assert len(engine.seen) == 2 * 3 + 4  # one unaware + two aware scorings per question, then 4 reasons
    assert step.stats == {"questions": 2, "pairs": 4, "model_calls": 6}
    for p in pairs:
        assert p.unaware.culture is None and p.aware.culture == p.culture
        assert p.unaware.choice == "2"
        assert p.aware.choice == ("1" if p.culture == "DEU" else p.question.codes[-1])
        assert p.aware.reason == "Because family comes first."  # first line only
        assert p.unaware.reason is None


def test_bad_choice_is_a_user_error():
    with pytest.raises(UserError, match="choice"):
        AnswerUnawareAware(_scripted(), parse_cultures("DEU"), choice="argmax")


# -- the real embedded model ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_answers_unaware_and_aware(engine):
    cultures = parse_cultures("DEU,JPN")
    step = AnswerUnawareAware(engine, cultures, choice="top")
    pairs = list(step.run(QUESTIONS))
    assert len(pairs) == 4 and all(isinstance(p, AnswerPair) for p in pairs)
    assert [(p.question.id, p.culture) for p in pairs] == [
        ("Q1", "DEU"),
        ("Q1", "JPN"),
        ("Q57", "DEU"),
        ("Q57", "JPN"),
    ]
    for p in pairs:
        for answer in (p.unaware, p.aware):
            assert answer.question_id == p.question.id
            assert list(answer.probs) == p.question.codes
            assert sum(answer.probs.values()) == pytest.approx(1.0)
            assert all(v >= 0 for v in answer.probs.values())
            assert 0 < answer.mass <= 1 and answer.method == "logits"
            assert answer.choice == max(answer.probs, key=answer.probs.get)
        assert p.unaware.culture is None and p.aware.culture == p.culture
    for q in QUESTIONS:
        deu, jpn = [p for p in pairs if p.question.id == q.id]
        assert deu.unaware == jpn.unaware
        # the persona reaches the model: the aware distribution is not the unaware one
        assert deu.aware.probs != deu.unaware.probs
        assert deu.aware.probs != jpn.aware.probs
    assert step.stats == {"questions": 2, "pairs": 4, "model_calls": 6}

    # sampling from the same scores: seeded, so a second step gives the same choices
    sampled = [list(AnswerUnawareAware(engine, cultures, choice="sample", seed=3).run(QUESTIONS)) for _ in range(2)]
    assert [(p.unaware.choice, p.aware.choice) for p in sampled[0]] == [
        (p.unaware.choice, p.aware.choice) for p in sampled[1]
    ]
    for p, s in zip(pairs, sampled[0], strict=True):
        assert s.aware.probs == pytest.approx(p.aware.probs, abs=1e-5)
        assert s.aware.choice in p.question.codes
