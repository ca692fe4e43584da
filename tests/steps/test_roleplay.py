"""CLCA role-play: turn parser, stop conditions, scenario adaptation and culture profiles."""

from __future__ import annotations

import pytest

from culturealign.cultures import get_culture
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import Persona, Scenario
from culturealign.steps.roleplay import (
    AdaptScenarios,
    RolePlay,
    agent_messages,
    culture_profile,
    load_scenario_bank,
    parse_adaptation,
    parse_turn,
)


def scenario(culture: str = "DEU") -> Scenario:
    agents = [
        Persona("Anna", 58, "teacher", "", "get help", "is lonely", culture, "profile"),
        Persona("Ben", 29, "developer", "", "stay free", "is moving", culture, "profile"),
    ]
    return Scenario("s1", "family", culture, "Sunday lunch.", agents, "family-01")


# -- parser -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Action: speak\nContent: Hello, Ben.", ("speak", "Hello, Ben.")),
        ("action: Non-verbal\ncontent: smiles and pours tea", ("non-verbal", "smiles and pours tea")),
        ("Action: leave\nContent: I have to go now.", ("leave", "I have to go now.")),
        ("Action: leave", ("leave", "")),
        ("Action: none", ("none", "")),
        ('{"action_type": "speak", "argument": "Good morning"}', ("speak", "Good morning")),
        ("[non-verbal] nods slowly", ("non-verbal", "nods slowly")),
        ("Hello Ben, how are you?", ("speak", "Hello Ben, how are you?")),  # lenient: plain text is speech
        ("Anna: Lunch is ready.", ("speak", "Lunch is ready.")),  # own name label dropped
        ("Lunch is ready.\nBen: Thanks!\nAnna: More?", ("speak", "Lunch is ready.")),  # speaking for Ben is cut
        ("Action: speak\nContent: Hi.\nAction: speak\nContent: Again.", ("speak", "Hi.")),
    ],
)
def test_parse_turn_valid(text, expected):
    assert parse_turn(text, "Anna", ["Ben"]) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Action: dance\nContent: twirls",  # unknown action
        "Action: speak\nContent:",  # nothing said
        "",  # empty
        "Ben: I am Ben now.",  # only speaks for the other agent
        "Action: non-verbal",  # a non-verbal act with no content
    ],
)
def test_parse_turn_malformed(text):
    assert parse_turn(text, "Anna", ["Ben"]) is None


def test_parse_turn_strict_needs_a_label():
    assert parse_turn("Hello there", "Anna", ["Ben"], lenient=False) is None
    assert parse_turn("Action: speak\nContent: Hello", "Anna", ["Ben"], lenient=False) == ("speak", "Hello")


# -- stop conditions ----------------------------------------------------------------------------------
def run_play(replies, max_turns=10, max_retries=2, n=1):
    engine = ScriptedEngine(outputs=replies)
    step = RolePlay(engine, max_turns=max_turns, max_retries=max_retries)
    convs = list(step.run([scenario() for _ in range(n)]))
    return convs, step.stats, engine


def test_max_turns_ends_the_conversation():
    convs, stats, _ = run_play([f"Action: speak\nContent: Hello {i}." for i in range(6)], max_turns=3)
    assert [t.speaker for t in convs[0].turns] == [0, 1, 0, 1, 0, 1]
    assert convs[0].status == "max-turns"
    assert stats["ended_by"] == {"max-turns": 1}


def test_leave_ends_the_conversation():
    replies = ["Action: speak\nContent: Hi.", "Action: speak\nContent: Hello.", "Action: leave\nContent: Bye."]
    convs, stats, engine = run_play(replies, max_turns=10)
    assert [t.action for t in convs[0].turns] == ["speak", "speak", "leave"]
    assert convs[0].status == "left"
    assert len(engine.seen) == 3  # no call after the agent left


def test_malformed_turn_is_retried_then_accepted():
    replies = ["Action: speak\nContent: Hi.", "Action: dance\nContent: x", "Action: speak\nContent: Fine."]
    convs, stats, _ = run_play(replies, max_turns=1)
    assert [t.content for t in convs[0].turns] == ["Hi.", "Fine."]
    assert stats["retried_turns"] == 1


def test_malformed_after_retries_closes_and_marks():
    def reply(messages):  # agent 0 is fine, agent 1 never answers in a valid form
        return "Action: speak\nContent: Hi." if "You are Anna" in messages[0]["content"] else "Action: ??"

    engine = ScriptedEngine(fn=reply)
    step = RolePlay(engine, max_turns=5, max_retries=2)
    convs = list(step.run([scenario()]))
    assert convs[0].status == "malformed"
    assert [t.speaker for t in convs[0].turns] == [0]  # the good turn is kept, nothing after
    assert len(engine.seen) == 1 + 3  # agent 1 asked 1 + 2 times, then the conversation closed
    assert step.stats["ended_by"] == {"malformed": 1}


def test_agent_sees_other_agent_as_user():
    convs, _, _ = run_play(["Action: speak\nContent: Hello.", "Action: speak\nContent: Hi."], max_turns=1)
    conv = convs[0]
    for speaker in (0, 1):
        msgs = agent_messages(conv, speaker)
        assert msgs[0]["role"] == "system" and conv.scenario.agents[speaker].name in msgs[0]["content"]
        roles = [m["role"] for m in msgs[1:]]
        assert roles == (["user", "assistant", "user"] if speaker == 0 else ["user", "assistant"])


# -- adaptation and profiles --------------------------------------------------------------------------
def test_bank_has_at_least_50_scenarios_across_domains():
    bank = load_scenario_bank()
    assert len(bank) >= 50
    domains = {s["domain"] for s in bank}
    assert {"family", "work", "neighbours", "hospitality", "negotiation", "celebrations"} <= domains
    assert all(len(s["agents"]) == 2 for s in bank)


def test_parse_adaptation_fields_and_fallback_paragraph():
    mex = get_culture("MEX")
    text = "Setting: A Sunday comida in Puebla.\nName A: Rosa Hernández\nName B: Luis Hernández"
    assert parse_adaptation(text, mex) == {
        "setting": "A Sunday comida in Puebla.",
        "name_a": "Rosa Hernández",
        "name_b": "Luis Hernández",
    }
    loose = "The story is set in Mexico, where a parent and a child meet after months away."
    assert parse_adaptation(loose, mex) == {"setting": loose}
    assert parse_adaptation("A story about lunch, somewhere nice and sunny today.", mex) == {}
    assert "name_a" not in parse_adaptation("Name A: <a typical name>", mex)


def test_adapt_scenarios_falls_back_per_field_and_counts():
    bank = load_scenario_bank()[:2]
    engine = ScriptedEngine(fn=lambda m: "Setting: Lunch in Berlin.\nName A: Anna Weber\nName B: no name here")
    step = AdaptScenarios(engine, [get_culture("DEU")], {"DEU": "p"}, per_culture=2, max_retries=1, bank=bank)
    out = list(step.run([]))
    assert [s.setting for s in out] == ["Lunch in Berlin."] * 2
    assert out[0].agents[0].name == "Anna Weber"
    assert out[0].agents[1].name == bank[0]["agents"][1]["role"].capitalize()  # fallback to the role
    assert step.stats["fallback_to_generic"] == {"setting": 0, "name_a": 0, "name_b": 2}
    assert len(engine.seen) == 4  # 2 scenarios x (1 + 1 retry), the name never came
    assert out[0].culture == "DEU" and out[0].agents[0].profile == "p"


def test_culture_profile_uses_extremes_only():
    deu = get_culture("DEU")
    text = culture_profile(deu, {"pdi": 35, "idv": 67, "mas": 50, "uai": None}, {"traditional_secular": 0.9})
    assert "hierarchy is flat" in text and "directness" in text and "secular-rational" in text
    assert "competition" not in text  # 50 is in the middle band
    assert culture_profile(deu, None, None).startswith("the everyday customs")


def test_parse_adaptation_never_takes_a_label_from_the_next_line():
    text = "Setting:\nSetting:\nLocation:\nName A:\nName B:"
    assert parse_adaptation(text, get_culture("CHN")) == {}


def test_one_turn_is_one_utterance():
    text = "The Anna: I am glad you came.\nThe Anna: I am not sure.\nBen: ok"
    assert parse_turn(text, "Anna", ["Ben"]) == ("speak", "I am glad you came.")
    assert parse_turn("I am glad. And then I was going to", "Anna", ["Ben"]) == ("speak", "I am glad.")


def test_verbatim_repeat_is_asked_again():
    replies = iter(["Action: speak\nContent: Hi.", "Action: speak\nContent: Hi.", "Action: speak\nContent: Hello."])
    engine = ScriptedEngine(fn=lambda m: next(replies))
    convs = list(RolePlay(engine, max_turns=1, max_retries=2).run([scenario()]))
    assert [t.content for t in convs[0].turns] == ["Hi.", "Hello."]


def test_a_handful_of_scenarios_spans_domains_and_cultures_differ():
    step = AdaptScenarios(ScriptedEngine(outputs=["x"]), [get_culture("DEU"), get_culture("JPN")], {}, per_culture=4)
    deu, jpn = step._pick(0), step._pick(1)
    assert len({s["domain"] for s in deu}) == 4
    assert not {s["id"] for s in deu} & {s["id"] for s in jpn}


def test_role_play_runs_with_progress_bars_off(monkeypatch):
    monkeypatch.setenv("CULTUREALIGN_NO_PROGRESS", "1")
    convs, stats, _ = run_play(["Action: speak\nContent: Hi.", "Action: leave\nContent: Bye."], max_turns=2)
    assert convs[0].status == "left"
