"""Judged filtering on recorded judge outputs, and intent annotation."""

from __future__ import annotations

import pytest

from culturealign.errors import UserError
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import Conversation, Persona, Scenario, Turn
from culturealign.steps.intents import AnnotateIntents, parse_intent
from culturealign.steps.judge import JudgeConversations, expected_rating, p_bad


def conv(cid: str, n_turns: int = 4) -> Conversation:
    agents = [
        Persona("Anna", 58, "teacher", "", "g", "s", "DEU", "p"),
        Persona("Ben", 29, "developer", "", "g", "s", "DEU", "p"),
    ]
    turns = [Turn(i % 2, "speak", f"{cid} line {i}") for i in range(n_turns)]
    return Conversation(Scenario(cid, "family", "DEU", "Lunch.", agents), turns, "max-turns")


# recorded judge: conversation "bad" gets low ratings with confidence, "meh" low ratings without, "good" high
RECORDED = {
    "bad": {"1": 0.6, "2": 0.3, "3": 0.05, "4": 0.03, "5": 0.02},  # P(<=2) = 0.9
    "meh": {"1": 0.3, "2": 0.3, "3": 0.2, "4": 0.1, "5": 0.1},  # P(<=2) = 0.6
    "good": {"1": 0.02, "2": 0.03, "3": 0.15, "4": 0.5, "5": 0.3},
}


def recorded_judge() -> ScriptedEngine:
    def option_fn(messages, options):
        text = messages[-1]["content"]
        return RECORDED[next(k for k in RECORDED if f"{k} line" in text)]

    return ScriptedEngine(fn=lambda m: "The ratings look fair.", option_fn=option_fn)


def test_p_bad_and_expected_rating():
    assert p_bad(RECORDED["bad"], 2) == pytest.approx(0.9)
    assert expected_rating({"1": 0.5, "5": 0.5}) == pytest.approx(3.0)


def test_judge_drops_bad_with_high_confidence_only():
    step = JudgeConversations(recorded_judge(), bad_max=2, confidence=0.7)
    kept = list(step.run([conv("bad"), conv("meh"), conv("good"), conv("short", 1)]))
    assert [c.scenario.id for c in kept] == ["meh", "good"]
    assert step.stats["total"] == 4 and step.stats["kept"] == 2 and step.stats["dropped"] == 2
    reasons = dict(step.stats["dropped_by_reason"])
    assert reasons == {
        "rated bad with confidence >= 0.7 for quality and fidelity": 1,
        "fewer than 2 turns": 1,
    }
    good = kept[1].judge
    assert good["critique"] == "The ratings look fair."
    assert good["p_bad"]["quality"] == pytest.approx(0.05)
    assert set(good["first"]) == set(good["final"]) == {"quality", "fidelity"}


def test_judge_critique_prompt_carries_first_ratings():
    engine = recorded_judge()
    list(JudgeConversations(engine).run([conv("good")]))
    critique_prompts = [m[-1]["content"] for m in engine.seen if "criticize" in m[-1]["content"]]
    assert len(critique_prompts) == 1 and "4/5" in critique_prompts[0]
    rerates = [m[-1]["content"] for m in engine.seen if "Critique of these ratings" in m[-1]["content"]]
    assert len(rerates) == 2 and all("The ratings look fair." in r for r in rerates)


def test_judge_checks_its_settings():
    with pytest.raises(UserError, match=r"^filter\.bad_max must be in 1\.\.4 and filter\.confidence"):
        JudgeConversations(ScriptedEngine(outputs=["x"]), bad_max=5)  # named as the recipe's YAML key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Intent: to greet warmly\nCultural reason: none", ("to greet warmly", None)),
        (
            "Intent: to decline politely\nCultural reason: saving face matters",
            ("to decline politely", "saving face matters"),
        ),
        ("**Intent:** refuse\nReason: N/A", ("refuse", None)),
        ("She wants to leave.", None),
        ("Intent: <one short sentence>", None),
    ],
)
def test_parse_intent(text, expected):
    assert parse_intent(text) == expected


def test_annotate_intents_retries_then_counts_unannotated():
    replies = iter(["no format here", "Intent: to thank\nCultural reason: none"] + ["nothing"] * 10)
    engine = ScriptedEngine(fn=lambda m: next(replies))
    c = conv("good", 2)
    c.turns.append(Turn(0, "leave", ""))
    step = AnnotateIntents(engine, method="free", max_retries=1)
    (out,) = list(step.run([c]))
    assert step.stats["utterances"] == 2  # the leave turn is not an utterance
    assert step.stats["annotated"] == 1 and step.stats["unannotated"] == 1
    assert step.stats["annotated_share"] == 0.5  # the parse rate
    assert sum(t.intent == "to thank" for t in out.turns) == 1


def test_malformed_conversations_are_dropped_unless_kept():
    broken = conv("good", 4)
    broken.status = "malformed"
    step = JudgeConversations(recorded_judge())
    kept = list(step.run([conv("good"), broken, conv("short", 1)]))
    assert len(kept) == 1 and kept[0].status == "max-turns"
    assert step.stats["total"] == 3 and step.stats["kept"] == 1 and step.stats["dropped"] == 2
    assert dict(step.stats["dropped_by_reason"]) == {"closed malformed by the role-play": 1, "fewer than 2 turns": 1}
    assert [r for _, r in step.dropped] == ["closed malformed by the role-play", "fewer than 2 turns"]

    step = JudgeConversations(recorded_judge(), keep_malformed=True)
    assert [c.status for c in step.run([conv("good"), broken])] == ["max-turns", "malformed"]
    assert "dropped_by_reason" not in step.stats and step.stats["kept"] == 2


def test_parse_intent_never_takes_the_next_line():
    assert parse_intent("Intent:\nCultural reason: none") is None


def test_calibration_removes_a_judge_bias_towards_one_rating():
    from culturealign.steps.judge import calibrated

    biased = {"1": 0.7, "2": 0.1, "3": 0.1, "4": 0.05, "5": 0.05}
    assert calibrated(biased, biased) == pytest.approx({r: 0.2 for r in biased})

    def option_fn(messages, options):  # says "1" to anything, a bit less to the good conversation
        text = messages[-1]["content"]
        return {"1": 0.5, "2": 0.1, "3": 0.1, "4": 0.2, "5": 0.1} if "good line" in text else biased

    engine = ScriptedEngine(fn=lambda m: "fine", option_fn=option_fn)
    assert list(JudgeConversations(engine, confidence=0.55).run([conv("good")])) == []  # raw P(<=2) = 0.6
    step = JudgeConversations(engine, confidence=0.55, calibrate=True)
    kept = list(step.run([conv("good")]))
    assert len(kept) == 1 and kept[0].judge["calibrated"]
    # calibrated: (.5/.7, .1/.1, .1/.1, .2/.05, .1/.05) renormalized -> P(<=2) = (5/7 + 1) / (5/7 + 1 + 1 + 4 + 2)
    assert kept[0].judge["p_bad"]["quality"] == pytest.approx((5 / 7 + 1) / (5 / 7 + 8), abs=1e-4)
    assert kept[0].judge["final_raw"]["quality"]["1"] == pytest.approx(0.5)
