"""CLCA's recipe without a model: how its config reaches the steps, and what it prints about the intent view."""

from __future__ import annotations

import pytest

from culturealign.config import load
from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.errors import UserError
from culturealign.recipes import clca
from culturealign.runs import RunFolder
from culturealign.steps.intents import AnnotateIntents
from culturealign.steps.judge import JudgeConversations


def _step(kind: type, tmp_path, wvs_path, *overrides: str):
    """The recipe's data step of this kind, built from the default config with ``overrides``."""
    cfg = load(None, clca.Config, [f"hofstede={wvs_path.parent / 'hofstede'}", *overrides])
    with RunFolder(tmp_path / "run") as run:  # engines are built, not loaded
        steps = clca.data_steps(cfg, load_survey(wvs_path), parse_cultures("DEU,CHN"), run)
    (step,) = [s for s in steps if isinstance(s, kind)]
    return step


def test_malformed_conversations_are_filtered_by_default(tmp_path, wvs_path):
    assert _step(JudgeConversations, tmp_path, wvs_path).keep_malformed is False
    assert _step(JudgeConversations, tmp_path, wvs_path, "filter.keep_malformed=true").keep_malformed is True


def test_intents_are_scored_choices_by_default(tmp_path, wvs_path):
    assert _step(AnnotateIntents, tmp_path, wvs_path).method == "choice"
    assert _step(AnnotateIntents, tmp_path, wvs_path, "intents.method=free").method == "free"
    with pytest.raises(UserError, match=r"intents\.method"):
        load(None, clca.Config, ["intents.method=guess"])


FUNNEL = {
    "judge": {"total": 4, "kept": 3, "dropped": 1, "dropped_by_reason": {"closed malformed by the role-play": 1}},
    "intents": {"utterances": 36, "annotated": 0, "annotated_share": 0.0, "unannotated": 36},
    "views": {"samples": {"speaker": 6, "intent": 0}},
}


def _result(funnel: dict, trained: bool = True, **overrides: str) -> dict:
    cfg = load(None, clca.Config, [f"{k}={v}" for k, v in overrides.items()])
    data = {"scenarios": 4, "conversations": {"max-turns": 3, "malformed": 1}, "judge": funnel["judge"]}
    return {
        "trained": trained,
        "examples": 6,
        "evaluations": [],
        "data": {**data, "intents": clca.intent_summary(cfg, funnel)},
    }


def test_an_empty_intent_view_is_said_plainly():
    result = _result(FUNNEL, **{"intents.method": "free"})
    assert result["data"]["intents"] == {
        "enabled": True,
        "method": "free",
        "utterances": 36,
        "annotated": 0,
        "annotated_share": 0.0,
        "mean_option_mass": None,
        "samples": 0,
        "view_empty": True,
    }
    lines = clca.show(result)
    assert lines[0].startswith("scenarios 4;") and "closed malformed by the role-play" in lines[0]
    assert lines[1] == (
        "[yellow]intent view: EMPTY, 0 of 36 utterances got an intent (method free): the training data has the "
        "speaker views only; try intents.method=choice"
    )
    untrained = clca.show(_result(FUNNEL, trained=False))
    assert "too few to train on" in untrained[0] and untrained[2].startswith("[yellow]intent view: EMPTY")
    off = clca.show(_result(FUNNEL, **{"intents.enabled": "false"}))
    assert off[1] == "intent view: empty (intents.enabled=false): the training data has the speaker views only"


def test_a_full_intent_view_is_counted():
    funnel = {
        **FUNNEL,
        "intents": {"utterances": 36, "annotated": 36, "annotated_share": 1.0, "mean_option_mass": {"intent": 0.2}},
        "views": {"samples": {"speaker": 6, "intent": 3}},
    }
    result = _result(funnel)
    assert result["data"]["intents"]["view_empty"] is False
    assert clca.show(result)[1] == (
        "intent view: 3 samples, 36 of 36 utterances got an intent (method choice, mean probability on the labels 0.2)"
    )
