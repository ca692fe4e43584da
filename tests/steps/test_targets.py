"""Survey-grounded targets: the people's shares as soft labels or sampled codes, and the two controls."""

from __future__ import annotations

from collections import Counter

import pytest

from culturealign.cultures import parse_cultures
from culturealign.data.survey import Survey
from culturealign.errors import UserError
from culturealign.prompting import persona_system, survey_messages
from culturealign.records import ChatSample, SoftLabel, SurveyQuestion
from culturealign.steps.targets import SurveyTargets, derangement

Q1 = SurveyQuestion("Q1", "T", "Is work important?", {"1": "Yes", "2": "No"})
Q2 = SurveyQuestion("Q2", "T", "Is God important?", {"1": "Yes", "2": "No"})
DISTS = {
    "DEU": {"Q1": {"1": 0.9, "2": 0.1}, "Q2": {"1": 0.2, "2": 0.8}},
    "NGA": {"Q1": {"1": 0.3, "2": 0.7}, "Q2": {"1": 0.95, "2": 0.05}},
    "CHN": {"Q1": {"1": 0.6, "2": 0.4}},  # not asked Q2
}
SURVEY = Survey({"Q1": Q1, "Q2": Q2}, DISTS)
CULTURES = parse_cultures(["DEU", "NGA", "CHN"])


def test_distribution_targets_are_the_shares_under_the_evaluators_prompt():
    out = list(SurveyTargets(SURVEY, CULTURES).run([Q1, Q2]))
    assert all(isinstance(x, SoftLabel) for x in out) and len(out) == 5  # CHN has no Q2
    deu = next(x for x in out if x.meta["culture"] == "DEU" and x.meta["question_id"] == "Q2")
    assert deu.target == {"1": 0.2, "2": 0.8}
    assert deu.messages == survey_messages(Q2, persona_system(CULTURES[0], "aware"))


def test_samples_draw_k_codes_from_the_shares_seeded():
    step = SurveyTargets(SURVEY, CULTURES[:1], "samples", k=400, seed=3)
    out = list(step.run([Q1]))
    assert len(out) == 400 and all(isinstance(x, ChatSample) for x in out)
    counts = Counter(x.messages[-1]["content"] for x in out)
    assert 0.85 < counts["1"] / 400 < 0.95
    again = [x.messages[-1]["content"] for x in SurveyTargets(SURVEY, CULTURES[:1], "samples", 400, seed=3).run([Q1])]
    assert again == [x.messages[-1]["content"] for x in out]


def test_pooled_control_gives_every_culture_the_mean_share():
    out = list(SurveyTargets(SURVEY, CULTURES, control="pooled").run([Q1, Q2]))
    q1 = {x.meta["culture"]: x.target for x in out if x.meta["question_id"] == "Q1"}
    assert q1["DEU"] == q1["NGA"] == q1["CHN"] == pytest.approx({"1": 0.6, "2": 0.4})
    q2 = next(x.target for x in out if x.meta["question_id"] == "Q2")
    assert q2 == pytest.approx({"1": 0.575, "2": 0.425})  # the cultures that answered it


def test_shuffled_control_gives_each_culture_another_cultures_shares():
    step = SurveyTargets(SURVEY, CULTURES, control="shuffled", seed=0)
    out = list(step.run([Q1, Q2]))
    assert all(a != b for a, b in step.partner.items())
    for x in out:
        assert x.target == DISTS[step.partner[x.meta["culture"]]][x.meta["question_id"]]
    # the item whose partner did not answer is dropped and counted, not filled in
    assert len(out) + sum(step.stats.get("dropped_by_reason", {}).values()) == 5


def test_derangement_moves_everyone_and_needs_two():
    for seed in range(20):
        d = derangement(["A", "B", "C", "D"], seed)
        assert sorted(d.values()) == ["A", "B", "C", "D"] and all(k != v for k, v in d.items())
    with pytest.raises(UserError, match="at least two"):
        derangement(["A"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"target": "soft"}, "train.target"), ({"k": 0}, "samples_per_item"), ({"control": "x"}, "unknown control")],
)
def test_bad_settings_name_the_key(kwargs, message):
    with pytest.raises(UserError, match=message):
        SurveyTargets(SURVEY, CULTURES, **kwargs)
