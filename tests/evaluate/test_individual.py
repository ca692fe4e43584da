"""Individual-level evaluation on a small file in the official respondent-level layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturealign.errors import UserError
from culturealign.evaluate.individual import Individuals, load_respondents, persona_prompt
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

    evaluation = Individuals(load_respondents(FIXTURE, QUESTIONS), QUESTIONS, per_country=None)
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
