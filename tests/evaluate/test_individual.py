"""Individual-level evaluation on a small file in the official respondent-level layout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from culturealign.errors import UserError
from culturealign.evaluate.individual import Individuals, Respondent, load_respondents, persona_prompt
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import SurveyQuestion

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wvs_respondents_demo.csv"
QUESTIONS = {
    "Q260": SurveyQuestion("Q260", "Demographics", "What is your sex?", {"1": "Male", "2": "Female"}),
    "Q262": SurveyQuestion("Q262", "Demographics", "How old are you?", {}),
    "Q275": SurveyQuestion(
        "Q275", "Demographics", "Highest education?", {"2": "Primary", "3": "Secondary", "4": "Tertiary"}
    ),
    "Q57": SurveyQuestion("Q57", "Social Capital", "Can most people be trusted?", {"1": "Trusted", "2": "Careful"}),
    "Q1": SurveyQuestion("Q1", "Social Values", "Is family important?", {"1": "Very", "2": "Rather"}),
}


def test_load_respondents_keeps_valid_codes_only():
    rs = load_respondents(FIXTURE, QUESTIONS)
    assert [r.country for r in rs] == ["DEU", "DEU", "DEU", "JPN", "JPN"]
    assert rs[0].answers == {"Q260": "1", "Q262": "34", "Q275": "3", "Q57": "1", "Q1": "1"}
    assert "Q275" not in rs[2].answers and "Q1" not in rs[2].answers  # negative = missing
    assert "Q1" not in rs[4].answers  # 9 is not an option code


def test_persona_prompt_from_demographics():
    r = load_respondents(FIXTURE, QUESTIONS)[1]
    text = persona_prompt(r, QUESTIONS)
    assert "Germany" in text and "Age: 61" in text and "Female" in text and "Primary" in text


def test_accuracy_against_each_respondents_own_answer():
    # the scripted model answers "1" to everything for men and "2" for women
    def option_fn(messages, options):
        female = "Female" in messages[0]["content"]
        return {o: (1.0 if o == ("2" if female else "1") else 0.0) + 0.01 for o in options}

    evaluation = Individuals(load_respondents(FIXTURE, QUESTIONS), QUESTIONS, per_country=None, question_ids="all")
    result = evaluation.run(ScriptedEngine(outputs=["x"], option_fn=option_fn), progress=False)
    items, metrics = result.items, result.metrics
    # DEU: r1 (male) Q57=1 hit, Q1=1 hit; r2 (female) Q57=2 hit, Q1=1 miss; r3 (female) Q57=2 hit -> 4/5
    # JPN: r4 (male) Q57=2 miss, Q1=2 miss; r5 (female) Q57=1 miss -> 0/3
    assert metrics["per_country"]["DEU"]["accuracy"] == pytest.approx(4 / 5)
    assert metrics["per_country"]["JPN"]["accuracy"] == pytest.approx(0.0)
    assert metrics["overall"]["accuracy"] == pytest.approx(0.4)
    assert metrics["per_country"]["DEU"]["n_items"] == 5 and metrics["per_country"]["JPN"]["respondents"] == 2
    assert {i.question_id for i in items} == {"Q57", "Q1"}  # demographics are never asked


def test_missing_country_column_is_a_user_error(tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_text("country,Q57\nDEU,1\n")
    with pytest.raises(UserError, match="B_COUNTRY_ALPHA"):
        load_respondents(bad, QUESTIONS)


def test_a_semicolon_file_reads_as_build_survey_and_the_map_read_it(tmp_path):
    """One respondent reader for all three: a semicolon-separated export gives the same respondents."""
    text = FIXTURE.read_text(encoding="utf-8-sig")
    semi = tmp_path / "semi.csv"
    semi.write_text(text.replace(",", ";"))
    as_comma = [(r.country, r.answers) for r in load_respondents(FIXTURE, QUESTIONS)]
    assert [(r.country, r.answers) for r in load_respondents(semi, QUESTIONS)] == as_comma


def test_a_country_that_is_not_alpha3_is_refused_at_its_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("B_COUNTRY_ALPHA,Q1\nDEU,1\n../../ESCAPED,2\n")
    with pytest.raises(UserError, match=r"line 3 of .*bad\.csv: country '\.\./\.\./ESCAPED' is not an ISO 3166"):
        load_respondents(bad, QUESTIONS)


def _people(answers: dict[str, list[dict[str, str]]]) -> list[Respondent]:
    return [Respondent(f"{c}{n}", c, a) for c, rows in answers.items() for n, a in enumerate(rows)]


def test_majority_baseline_leaves_the_scored_respondent_out():
    """DEU: two say 1, one says 2 on Q1. Leave-one-out, each "1" sees {1, 2} (a tie: the first code, 1: a hit)
    and the "2" sees {1, 1} (a miss): 2/3. JPN: one says 1, one 2: each sees only the other's answer, so both
    miss: 0, where counting their own answers made it 0.5. NGA: one respondent, nobody else: no baseline."""
    people = _people(
        {"DEU": [{"Q1": "1"}, {"Q1": "1"}, {"Q1": "2"}], "JPN": [{"Q1": "1"}, {"Q1": "2"}], "NGA": [{"Q1": "2"}]}
    )
    result = Individuals(people, QUESTIONS, per_country=None).run(ScriptedEngine(), progress=False)
    per = result.metrics["per_country"]
    assert per["DEU"]["majority_accuracy"] == pytest.approx(2 / 3)
    assert per["JPN"]["majority_accuracy"] == 0.0
    assert [i.majority for i in result.items if i.country == "JPN"] == ["2", "1"]
    assert math.isnan(per["NGA"]["majority_accuracy"]) and per["NGA"]["n_majority"] == 0
    assert [i.majority for i in result.items if i.country == "NGA"] == [None]
    assert result.metrics["overall"]["majority_accuracy"] == pytest.approx(1 / 3)  # over countries that have one


def test_clca_questions_by_default_all_on_request():
    people = _people({"DEU": [{"Q1": "1", "Q57": "2", "Q260": "1"}, {"Q1": "2", "Q57": "1"}]})
    engine = ScriptedEngine()
    default = Individuals(people, QUESTIONS).run(engine, progress=False)
    assert {i.question_id for i in default.items} == {"Q1"}  # Q57 is not among CLCA's Q1-Q45
    every = Individuals(people, QUESTIONS, question_ids="all").run(engine, progress=False)
    assert {i.question_id for i in every.items} == {"Q1", "Q57"}  # never the demographics
    assert every.metrics["overall"]["n_questions"] == 2
    chosen = Individuals(people, QUESTIONS, question_ids=["Q57"]).run(engine, progress=False)
    assert {i.question_id for i in chosen.items} == {"Q57"}
    with pytest.raises(ValueError, match="a list of question ids or 'all'"):
        Individuals(people, QUESTIONS, question_ids="Q57")
    only_q57 = _people({"DEU": [{"Q57": "2"}]})
    with pytest.raises(UserError, match="answered any of CLCA's Q1-Q45: pass question_ids='all'"):
        Individuals(only_q57, QUESTIONS).run(engine, progress=False)


def test_an_undefined_baseline_is_null_in_metrics_json_and_a_dash_in_the_table(tmp_path):
    from rich.console import Console

    from culturealign.evaluate.base import format_metrics

    result = Individuals(_people({"DEU": [{"Q1": "1"}]}), QUESTIONS).run(ScriptedEngine(), progress=False)
    result.save(tmp_path)

    def refuse(constant: str):
        raise ValueError(f"{constant} in metrics.json")

    metrics = json.loads((tmp_path / "metrics.json").read_text("utf-8"), parse_constant=refuse)
    assert (
        metrics["per_country"]["DEU"]["majority_accuracy"] is None and metrics["overall"]["majority_accuracy"] is None
    )
    console = Console(width=200, record=True)
    console.print(format_metrics(Individuals, metrics))
    rows = [line for line in console.export_text().splitlines() if "overall" in line or "DEU" in line]
    assert len(rows) == 2 and all(line.rstrip(" │|").endswith("-") for line in rows), rows
