"""Intent annotation by scored choices: every utterance gets an intent from the fixed lists, calibrated, counted."""

from __future__ import annotations

import pytest

from culturealign.errors import UserError
from culturealign.llm.base import OptionScores
from culturealign.llm.scripted import ScriptedEngine
from culturealign.prompting import templates
from culturealign.records import Conversation, Persona, Scenario, Turn
from culturealign.steps.intents import AnnotateIntents
from culturealign.steps.views import DialogueViews

ACTS, NORMS = templates()["clca"]["intent_acts"], templates()["clca"]["intent_norms"]


def conv() -> Conversation:
    agents = [
        Persona("Anna", 58, "teacher", "", "g", "s", "DEU", "p"),
        Persona("Ben", 29, "developer", "", "g", "s", "DEU", "p"),
    ]
    turns = [
        Turn(0, "speak", "Guten Tag, Ben."),
        Turn(1, "speak", "Thanks a lot for the lunch."),
        Turn(0, "leave", "Bye."),
    ]
    return Conversation(Scenario("family-01-DEU", "family", "DEU", "Lunch.", agents), turns, "left")


def biased_annotator() -> ScriptedEngine:
    """Says "greet" and "none" to anything (as a small model favours some labels), a bit less to the thanks."""

    def option_fn(messages, options):
        text = messages[-1]["content"]
        if "greet" in options:
            probs = {o: 0.02 for o in options} | {"greet": 0.6}
            return probs | {"thank": 0.1} if '"Thanks a lot' in text else probs
        probs = {o: 0.02 for o in options} | {"none": 0.6}
        return probs | {"hospitality": 0.1} if '"Thanks a lot' in text else probs

    return ScriptedEngine(fn=lambda m: "She wants to greet him.", option_fn=option_fn)


def test_choices_give_every_utterance_an_intent_from_the_lists_calibrated():
    engine = biased_annotator()
    step = AnnotateIntents(engine)  # method "choice" is the default
    (out,) = list(step.run([conv()]))
    hello, thanks, leave = out.turns
    # the content-free prompt says "greet"/"none" as much as the greeting does: calibration keeps the greeting's
    # answer there and moves the thanks to the labels it raised
    assert hello.intent == ACTS["greet"] and hello.reason is None  # norm "none": no cultural reason
    assert thanks.intent == ACTS["thank"] and thanks.reason == NORMS["hospitality"]
    assert leave.intent is None  # not an utterance
    assert not any(m[-1]["content"].startswith("She") for m in engine.seen)  # nothing generated, nothing parsed
    stats = step.stats
    assert stats["utterances"] == 2 and stats["annotated"] == 2 and stats["annotated_share"] == 1.0
    assert stats["with_cultural_reason"] == 1
    assert stats["mean_option_mass"] == {"intent": 1.0, "reason": 1.0}  # the scripted engine's mass
    assert stats["chosen"] == {"intent": {"greet": 1, "thank": 1}, "reason": {"none": 1, "hospitality": 1}}
    assert 0 < stats["mean_choice_prob"]["intent"] <= 1
    # the lists are in the prompt, and one content-free prompt per question calibrates them
    assert sum('"N/A"' in m[-1]["content"] for m in engine.seen) == 2
    assert all(f"- greet: {ACTS['greet']}" in m[-1]["content"] for m in engine.seen if "intend" in m[-1]["content"])


def test_choices_fill_the_intent_view_where_free_text_fails_to_parse():
    """The embedded model's case: replies in no format, so free text leaves the intent view empty."""
    free = AnnotateIntents(biased_annotator(), method="free", max_retries=0)
    assert [s.meta["view"] for s in DialogueViews().run(free.run([conv()]))] == ["speaker", "speaker"]
    assert free.stats["annotated_share"] == 0.0
    views = list(DialogueViews().run(AnnotateIntents(biased_annotator()).run([conv()])))
    assert [s.meta["view"] for s in views] == ["speaker", "speaker", "intent"]
    assert views[-1].messages[-1]["content"] == (
        f"Anna: {ACTS['greet']}\nBen: {ACTS['thank']} (Cultural reason: {NORMS['hospitality']})"
    )


class NoMass(ScriptedEngine):
    """An engine that never answers with a label (no probability mass on the options)."""

    def _score_options(self, prompts, options):
        return [OptionScores({o: 1 / len(opts) for o in opts}, 0.0, "sampling") for opts in options]


def test_an_utterance_with_no_mass_on_the_labels_stays_unannotated():
    step = AnnotateIntents(NoMass())
    (out,) = list(step.run([conv()]))
    assert all(t.intent is None and t.reason is None for t in out.turns)
    assert step.stats["annotated"] == 0 and step.stats["unannotated"] == 2 and step.stats["annotated_share"] == 0
    assert step.stats["mean_option_mass"] == {"intent": 0.0, "reason": 0.0}


def test_method_is_checked():
    with pytest.raises(UserError, match=r"^intents\.method must be one of choice, free, not 'guess'"):
        AnnotateIntents(ScriptedEngine(outputs=["x"]), method="guess")


def test_no_utterances_no_calls():
    engine = biased_annotator()
    empty = Conversation(conv().scenario, [], "malformed")
    step = AnnotateIntents(engine)
    assert list(step.run([empty])) == [empty]
    assert engine.seen == [] and step.stats["utterances"] == 0 and step.stats["annotated_share"] is None
