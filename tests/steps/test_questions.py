"""Question generation: the reply parser, retries of invalid replies, ids, drops and the in-context examples."""

from __future__ import annotations

import pytest

from culturealign.data.survey import Survey
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import SurveyQuestion
from culturealign.steps.questions import GenerateQuestions, parse_question

HAPPY = "Happiness and Well-being"
TRUST = "Social Capital, Trust & Organizational Membership"

VALID = "Question: How often do you feel rested when you wake up?\n1. Always\n2. Often\n3. Rarely\n4. Never"
INVALID = "I am sorry, I cannot write a survey question."


def _survey() -> Survey:
    texts = {
        HAPPY: [
            "Taking all things together, would you say you are happy?",
            "All in all, how would you describe your state of health these days?",
            "How satisfied are you with your life as a whole these days?",
            "How much freedom of choice and control do you feel you have over your life?",
            "How satisfied are you with the financial situation of your household?",
        ],
        TRUST: [
            "Generally speaking, would you say that most people can be trusted?",
            "How much confidence do you have in the courts of your country?",
            "How much do you trust your neighbourhood?",
            "Are you an active member of a sport or recreational organization?",
        ],
    }
    questions = {}
    for topic, items in texts.items():
        for i, text in enumerate(items):
            qid = f"{topic[:5]}{i}"
            questions[qid] = SurveyQuestion(qid, topic, text, {"1": f"Yes {qid}", "2": f"No {qid}"})
    return Survey(questions, {})


# -- parse_question ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        VALID,
        "Question: How often do you feel rested when you wake up?\n1) Always\n2) Often\n3) Rarely\n4) Never",
        "Sure! Here is a new one.\n\n**Question:** How often do you feel rested when you wake up?\n\n"
        "1. Always.\n2. Often\n3. Rarely\n4. Never\n\nI hope this helps.",
    ],
)
def test_parse_question_accepts_well_formed_replies(reply):
    parsed = parse_question(reply)
    assert isinstance(parsed, tuple), parsed
    question, options = parsed
    assert question == "How often do you feel rested when you wake up?"
    assert options == {"1": "Always", "2": "Often", "3": "Rarely", "4": "Never"}


def test_parse_question_stops_at_a_second_question():
    reply = VALID + "\nQuestion: Do you like tea?\n1. Yes\n2. No\n3. Maybe"
    question, options = parse_question(reply)
    assert question.startswith("How often")
    assert list(options) == ["1", "2", "3", "4"]
    assert "Yes" not in options.values()


def test_parse_question_keeps_eleven_options():
    reply = "Question: On a scale of 0 to 10, how happy are you?\n" + "\n".join(
        f"{i}. Level {i}" for i in range(1, 12)
    )
    question, options = parse_question(reply)
    assert len(options) == 11


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("How often do you feel rested?\n1. Always\n2. Never", "no question line"),
        (INVALID, "no question line"),
        ("Question: How often do you feel rested when you wake up?\n1. Always", "not 2-11 options"),
        ("Question: How often do you feel rested when you wake up?", "not 2-11 options"),
        (
            "Question: On a scale of 1 to 12, how happy are you?\n"
            + "\n".join(f"{i}. Level {i}" for i in range(1, 13)),
            "not 2-11 options",
        ),
        (
            "Question: How often do you feel rested when you wake up?\n1. Always\n2. always\n3. Never",
            "options not distinct",
        ),
        # numbering restarts after the first option: the second "1." is another list, not option 2
        (
            "Question: How often do you feel rested when you wake up?\n1. Always\n1. Never\n2. Rarely",
            "not 2-11 options",
        ),
        # numbering skips a number
        (
            "Question: How often do you feel rested when you wake up?\n1. Always\n3. Never\n4. Rarely",
            "not 2-11 options",
        ),
    ],
)
def test_parse_question_rejects_with_a_reason(reply, reason):
    assert parse_question(reply) == reason


# -- GenerateQuestions -------------------------------------------------------------------------------------


def test_invalid_reply_is_retried_then_valid_records_with_ids():
    engine = ScriptedEngine(outputs=[INVALID, VALID, VALID, VALID, VALID])  # cycled: the 5th call is valid
    step = GenerateQuestions(engine, _survey(), per_topic=2, examples=2, topics=[HAPPY, TRUST], max_retries=2)
    out = list(step.run([]))
    # attempt 0: 4 slots (first reply invalid), attempt 1: the one invalid slot again
    assert len(engine.seen) == 5
    assert [q.id for q in out] == [
        "gen-happiness-and-well-being-0",
        "gen-happiness-and-well-being-1",
        "gen-social-capital-trust-organizational-membership-0",
        "gen-social-capital-trust-organizational-membership-1",
    ]
    assert [q.topic for q in out] == [HAPPY, HAPPY, TRUST, TRUST]
    assert all(q.text == "How often do you feel rested when you wake up?" and len(q.options) == 4 for q in out)
    assert step.dropped == []
    assert step.stats["requested"] == 4
    assert step.stats["valid"] == 4
    assert step.stats["llm_calls"] == 5


def test_slot_invalid_after_all_tries_is_dropped_with_reason():
    replies = iter([VALID, INVALID, INVALID, INVALID])  # slot 0 valid at once, slot 1 never
    engine = ScriptedEngine(fn=lambda messages: next(replies))
    step = GenerateQuestions(engine, _survey(), per_topic=2, examples=2, topics=[HAPPY], max_retries=2)
    out = list(step.run([]))
    assert len(engine.seen) == 4  # 2 slots, then the invalid one twice more (max_retries=2)
    assert [q.id for q in out] == ["gen-happiness-and-well-being-0"]
    assert len(step.dropped) == 1
    record, reason = step.dropped[0]
    assert record == {"topic": HAPPY, "slot": 1}
    assert reason == "invalid after 3 tries: no question line"
    assert step.stats["dropped_by_reason"] == {reason: 1}
    assert step.stats["valid"] + len(step.dropped) == step.stats["requested"] == 2


def test_every_call_shows_examples_from_its_topic():
    survey = _survey()
    engine = ScriptedEngine(outputs=[INVALID])  # never valid: every slot is asked max_retries + 1 times
    step = GenerateQuestions(engine, survey, per_topic=2, examples=3, topics=[HAPPY, TRUST], max_retries=1)
    assert list(step.run([])) == []
    assert len(engine.seen) == 2 * 2 * 2
    assert step.stats["valid"] + len(step.dropped) == step.stats["requested"] == 4
    by_topic = {t: [q.text for q in survey.questions.values() if q.topic == t] for t in (HAPPY, TRUST)}
    for messages in engine.seen:
        user = messages[-1]["content"]
        topic = HAPPY if f'"{HAPPY}"' in user else TRUST
        assert f'"{topic}"' in user
        other = TRUST if topic == HAPPY else HAPPY
        shown = [t for t in by_topic[topic] if t in user]
        assert len(shown) == 3, user
        assert not any(t in user for t in by_topic[other])
        # each example comes with its options
        for qid, q in survey.questions.items():
            if q.text in user:
                assert f"1. Yes {qid}" in user
    # the examples are drawn per call: not every prompt shows the same three questions
    assert len({m[-1]["content"] for m in engine.seen}) > 2


def test_default_topics_are_those_of_the_survey():
    engine = ScriptedEngine(outputs=[VALID])
    step = GenerateQuestions(engine, _survey(), per_topic=1, examples=1)
    assert sorted(step.topics) == sorted([HAPPY, TRUST])
    assert len(list(step.run([]))) == 2


@pytest.mark.slow
def test_real_model_writes_or_drops_every_slot(engine, wvs_path):
    from culturealign.data.survey import load_survey

    survey = load_survey(wvs_path)
    step = GenerateQuestions(
        engine, survey, per_topic=2, topics=["Security", "Religious Values"], max_retries=1, max_tokens=96
    )
    out = list(step.run([]))
    dropped = sum(step.stats.get("dropped_by_reason", {}).values())
    assert step.stats["requested"] == 4 and len(out) + dropped == 4
    assert len({q.id for q in out}) == len(out)
    for q in out:
        assert q.topic in ("Security", "Religious Values")
        assert 2 <= len(q.options) <= 11 and list(q.options) == [str(i) for i in range(1, len(q.options) + 1)]
