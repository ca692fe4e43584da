"""Training views: the culture-aware survey prompt with the aware answer as the reply."""

from __future__ import annotations

from culturealign.cultures import parse_cultures
from culturealign.records import Answer, AnswerPair, ChatSample, SurveyQuestion
from culturealign.steps.views import SurveyAnswerSamples

Q = SurveyQuestion(
    "Q57",
    "Social Capital, Trust & Organizational Membership",
    "Can most people be trusted?",
    {"1": "Most people can be trusted", "2": "Need to be very careful"},
)


def _pair(culture: str, aware: str, reason: str | None = None) -> AnswerPair:
    return AnswerPair(
        Q,
        culture,
        Answer(Q.id, None, {"1": 0.5, "2": 0.5}, "1"),
        Answer(Q.id, culture, {"1": 0.2, "2": 0.8}, aware, reason=reason),
    )


def test_samples_are_aware_prompt_and_aware_choice():
    step = SurveyAnswerSamples(parse_cultures("DEU,JPN"))
    out = list(step.run([_pair("DEU", "2"), _pair("JPN", "1")]))
    assert all(isinstance(s, ChatSample) for s in out)
    assert [[m["role"] for m in s.messages] for s in out] == [["system", "user", "assistant"]] * 2
    deu, jpn = out
    assert "German" in deu.messages[0]["content"] and "Germany" in deu.messages[0]["content"]
    assert "Japanese" in jpn.messages[0]["content"] and "German" not in jpn.messages[0]["content"]
    for s in out:
        user = s.messages[1]["content"]
        assert "Can most people be trusted?" in user
        assert "1. Most people can be trusted" in user and "2. Need to be very careful" in user
    assert deu.messages[2] == {"role": "assistant", "content": "2"}
    assert jpn.messages[2] == {"role": "assistant", "content": "1"}
    assert deu.meta == {"culture": "DEU", "question_id": "Q57", "topic": Q.topic}
    assert jpn.meta["culture"] == "JPN"
    assert step.stats == {"samples": 2}


def test_reason_is_appended_only_when_asked():
    pair = _pair("DEU", "2", reason="Germans are careful with strangers.")
    plain = list(SurveyAnswerSamples(parse_cultures("DEU")).run([pair]))[0]
    assert plain.messages[-1]["content"] == "2"
    with_reason = list(SurveyAnswerSamples(parse_cultures("DEU"), with_reason=True).run([pair]))[0]
    assert with_reason.messages[-1]["content"] == "2\nGermans are careful with strangers."
    no_reason = list(SurveyAnswerSamples(parse_cultures("DEU"), with_reason=True).run([_pair("DEU", "1")]))[0]
    assert no_reason.messages[-1]["content"] == "1"


def test_distribution_target_is_the_aware_distribution_on_the_same_prompt():
    from culturealign.records import SoftLabel

    code = list(SurveyAnswerSamples(parse_cultures("DEU")).run([_pair("DEU", "2")]))[0]
    soft = list(SurveyAnswerSamples(parse_cultures("DEU"), target="distribution").run([_pair("DEU", "2")]))[0]
    assert isinstance(soft, SoftLabel)
    assert soft.target == {"1": 0.2, "2": 0.8}  # the aware answer's probabilities, not one code drawn from them
    assert soft.messages == code.messages[:-1] and soft.meta == code.meta
