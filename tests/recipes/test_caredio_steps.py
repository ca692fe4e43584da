"""The CAReDiO recipe's data steps without a model: their order, the dedup against the evaluation sets, the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturealign.config import load
from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.recipes import caredio
from culturealign.records import CulturalQuery
from culturealign.runs import RunFolder
from culturealign.steps.caredio import OptimizeResponses
from culturealign.steps.dedup import Deduplicate

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "wvs_small"
BLEND = {
    "Germany": "What is the most popular breakfast food in Germany?",
    "Japan": "What do people in Japan usually give as a wedding gift?",
    "Spain": "What time do people in Spain usually eat dinner?",  # not an evaluated culture
}


@pytest.fixture
def blend(tmp_path: Path) -> Path:
    folder = tmp_path / "blend"
    folder.mkdir()
    for region, question in BLEND.items():
        row = {"id": f"{region}-1", "question": question, "answers": [{"answers": ["x"], "count": 1}]}
        (folder / f"{region}.jsonl").write_text(json.dumps(row) + "\n")
    return folder


def test_data_steps_are_the_stages_with_dedup_after_the_query_rounds(tmp_path):
    cfg = load(None, caredio.Config, ["dedup.threshold=0.8", "optimize.rounds=3", "optimize.response_min_gain=0.2"])
    survey = load_survey(SMALL)
    with RunFolder(tmp_path / "run") as run:
        steps = caredio.data_steps(cfg, survey, parse_cultures("DEU,JPN"), run, ["a question?"])
    assert tuple(s.name for s in steps) == caredio.STAGES[:-2]
    assert caredio.STAGES[2:5] == ("dedup", "respond", "optimize-responses")
    dedup, responses = steps[2], steps[4]
    assert isinstance(dedup, Deduplicate) and (dedup.threshold, dedup.reference) == (0.8, ["a question?"])
    assert isinstance(responses, OptimizeResponses)
    assert (responses.rounds, responses.min_gain) == (3, 0.2)
    assert (responses.max_tokens, responses.judge_threshold) == (cfg.responses.max_tokens, 0.5)
    assert steps[1].rounds == 3 and steps[1].min_gain == 0.0


def test_the_dedup_threshold_is_checked():
    with pytest.raises(Exception, match="dedup.threshold"):
        load(None, caredio.Config, ["dedup.threshold=0"])


def test_evaluation_questions_are_the_survey_and_the_evaluated_cultures_blend(blend):
    survey = load_survey(SMALL)
    got = caredio.evaluation_questions(survey, str(blend), ["Germany", "Japan"])
    assert got == [q.text for q in survey.questions.values()] + [BLEND["Germany"], BLEND["Japan"]]
    assert caredio.evaluation_questions(survey, None, []) == [q.text for q in survey.questions.values()]


def test_run_dedups_against_the_evaluated_cultures_blend_and_the_survey(tmp_path, blend, monkeypatch):
    seen: dict = {}

    def stop(cfg, survey, cultures, run, reference):
        seen["reference"] = list(reference)
        raise KeyboardInterrupt  # the wiring is what is tested: no step runs

    monkeypatch.setattr(caredio, "data_steps", stop)
    with pytest.raises(KeyboardInterrupt):
        caredio.run_caredio(
            None, [f"out={tmp_path / 'run'}", f"survey={SMALL}", f"blend={blend}", "cultures=[DEU,JPN]"]
        )
    survey = load_survey(SMALL)
    assert seen["reference"] == [q.text for q in survey.questions.values()] + [BLEND["Germany"], BLEND["Japan"]]


def test_dedup_step_drops_and_counts_queries_that_repeat_evaluation_questions(blend):
    survey = load_survey(SMALL)
    reference = caredio.evaluation_questions(survey, str(blend), ["Germany", "Japan"])
    queries = [
        CulturalQuery("q-food-0", "food", "What is the most popular breakfast food in Germany?"),  # BLEnD verbatim
        CulturalQuery("q-gifts-0", "gifts", "In Japan, what do people usually give as a wedding gift?"),  # paraphrase
        CulturalQuery("q-family-0", "family", "How important is family in your life?"),  # a WVS question
        CulturalQuery("q-greet-0", "greetings", "How should I greet my host's grandparents at dinner?"),
        CulturalQuery("q-greet-1", "greetings", "How should I greet my host's grandparents at dinner?"),
        CulturalQuery(
            "q-dinner-0", "food", "What time do people in Spain usually eat dinner?"
        ),  # Spain: not evaluated
    ]
    step = Deduplicate(reference, load(None, caredio.Config).dedup.threshold)
    assert [q.id for q in step.run(queries)] == ["q-greet-0", "q-dinner-0"]
    assert step.stats["total"] == 6 and step.stats["dropped"] == 4
    assert step.stats["dropped_by_reason"] == {
        "same text as an evaluation question": 2,
        "near-duplicate of an evaluation question": 1,
        "same text as a kept record": 1,
    }
