"""WVS respondent files with their own labels: SPSS and Stata files written here with pyreadstat, shares by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from culturealign.data import labelled
from culturealign.data.labelled import load_labelled_respondents, wvs7_topic
from culturealign.data.survey import load_wvs_folder, write_survey_folder
from culturealign.errors import UserError

NAN = math.nan
# respondent: country, weight, Q1 (4-point), Q48 (1-10, only its ends labelled), Q260 (sex), Q262 (age), Y001 (index)
ROWS = [
    ("DEU", 1.0, 1, 5, 1, 30, 2),
    ("DEU", 2.0, 2, 10, 2, 40, 3),
    ("DEU", NAN, -1, 1, 1, 50, 1),  # unreadable weight: counts 1; Q1 "don't know"
    ("JPN", 0.5, 1, 5, 2, 60, 0),
    ("JPN", 1.5, 4, NAN, 1, 20, 5),  # Q48 empty
    ("JPN", 1.0, -2, 3, 2, 25, 4),  # Q1 "no answer" (SPSS: declared user-missing)
    ("", 1.0, 1, 1, 1, 33, 1),  # no country: skipped
]
COLUMNS = ["B_COUNTRY_ALPHA", "W_WEIGHT", "Q1", "Q48", "Q260", "Q262", "Y001"]
TEXT = {
    "Q1": "Q1 Important in life: Family",
    "Q48": "Q48. Freedom of choice and control over own life",
    "Q260": "Sex",
    "Q262": "Age",
    "Y001": "Post-Materialist index 12-item",
}
MISSING = {-1: "Don't know", -2: "No answer", -4: "Not asked", -5: "Missing; Not available"}
VALUES = {
    "Q1": {1: "Very important", 2: "Rather important", 3: "Not very important", 4: "Not at all important", **MISSING},
    "Q48": {1: "No choice at all", 10: "A great deal of choice", **MISSING},
    "Q260": {1: "Male", 2: "Female", **MISSING},
    "Q262": dict(MISSING),  # a number: no labels for its answers
    "Y001": {0: "Materialist", 5: "Postmaterialist"},
}


def write(path: Path, rows: list[tuple] = ROWS, columns: list[str] = COLUMNS, **labels) -> Path:
    df = pd.DataFrame(rows, columns=columns)
    text = labels.get("column_labels", {k: v for k, v in TEXT.items() if k in columns})
    values = labels.get("variable_value_labels", {k: v for k, v in VALUES.items() if k in columns})
    if path.suffix == ".sav":
        missing = {"Q1": [-2]} if "Q1" in columns else None
        pyreadstat.write_sav(df, path, column_labels=text, variable_value_labels=values, missing_ranges=missing)
    else:
        pyreadstat.write_dta(df, path, column_labels=text, variable_value_labels=values)
    return path


def approx(dist: dict[str, float], expected: dict[str, float]) -> None:
    assert list(dist) == list(expected)
    assert dist == pytest.approx(expected)


@pytest.mark.parametrize("suffix", [".sav", ".dta"])
def test_items_options_and_weighted_shares_come_from_the_file(tmp_path: Path, suffix: str, monkeypatch) -> None:
    monkeypatch.setattr(labelled, "CHUNK_ROWS", 3)  # shares add up over chunks
    survey = load_labelled_respondents(write(tmp_path / f"wvs{suffix}"))

    assert list(survey.questions) == ["Q1", "Q48", "Q260"]  # Q262 has no answer labels; Y001 is no item
    q1, q48, q260 = survey.questions.values()
    assert (q1.topic, q1.text) == ("Social Values, Attitudes & Stereotypes", "Important in life: Family")
    assert q1.options == dict(zip("1234", list(VALUES["Q1"].values())[:4], strict=False))
    assert (q48.topic, q48.text) == ("Happiness and Well-being", "Freedom of choice and control over own life")
    # the ends come from the labels; 3 and 5 were answered between them and keep their number as label
    assert q48.options == {"1": "No choice at all", "3": "3", "5": "5", "10": "A great deal of choice"}
    assert (q260.topic, q260.options) == ("Demographics", {"1": "Male", "2": "Female"})
    assert survey.countries == ["DEU", "JPN"]
    # DEU weights 1, 2 and 1 (unreadable); JPN 0.5, 1.5, 1; negative and empty answers left out
    approx(survey.distributions["DEU"]["Q1"], {"1": 1 / 3, "2": 2 / 3, "3": 0.0, "4": 0.0})
    approx(survey.distributions["JPN"]["Q1"], {"1": 0.25, "2": 0.0, "3": 0.0, "4": 0.75})
    approx(survey.distributions["DEU"]["Q48"], {"1": 0.25, "3": 0.0, "5": 0.25, "10": 0.5})
    approx(survey.distributions["JPN"]["Q48"], {"1": 0.0, "3": 2 / 3, "5": 1 / 3, "10": 0.0})
    assert all("Q260" not in d for d in survey.distributions.values())  # demographics: no shares
    assert survey.skipped["respondent without a country"] == 1
    assert survey.skipped["respondent with an unreadable weight (weighted 1)"] == 1
    assert survey.skipped["missing answer (negative code or empty)"] == 3
    assert survey.skipped["item without value labels for its answers (a number: age, year)"] == 1
    assert survey.notes == []


def test_the_folder_written_reads_back(tmp_path: Path) -> None:
    survey = load_labelled_respondents(write(tmp_path / "wvs.sav"))
    back = load_wvs_folder(write_survey_folder(survey, tmp_path / "survey"))
    assert back.questions == survey.questions
    for country, per_q in survey.distributions.items():
        for qid, dist in per_q.items():
            approx(back.distributions[country][qid], dist)


def test_a_ten_point_scale_labelled_at_its_ends_is_numeric(tmp_path: Path) -> None:
    rows = [("DEU", 1.0, v) for v in range(1, 11)]
    path = write(
        tmp_path / "god.sav",
        rows,
        ["B_COUNTRY_ALPHA", "W_WEIGHT", "Q164"],
        column_labels={"Q164": "Importance of God"},
        variable_value_labels={"Q164": {1: "Not at all important", 10: "Very important", -1: "Don't know"}},
    )
    q = load_labelled_respondents(path).questions["Q164"]
    assert (q.topic, q.scale) == ("Religious Values", "numeric-1-10")
    assert list(q.options.values()) == ["Not at all important", *map(str, range(2, 10)), "Very important"]


def test_without_a_weight_column_shares_are_unweighted_and_noted(tmp_path: Path) -> None:
    survey = load_labelled_respondents(write(tmp_path / "wvs.dta"), weight_column="S017")
    approx(survey.distributions["DEU"]["Q1"], {"1": 0.5, "2": 0.5, "3": 0.0, "4": 0.0})
    assert survey.notes == ["wvs.dta has no 'S017' column: answer shares are unweighted"]


def test_topics_follow_the_wvs7_questionnaire(wvs_path: Path) -> None:
    rows = [json.loads(line) for line in (wvs_path / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["id"]: wvs7_topic(r["id"]) for r in rows} == {r["id"]: r["topic"] for r in rows}
    assert [wvs7_topic(c) for c in ("q57", "Q82_EU", "Q94R", "Q291", "Q0", "Y001", "B_COUNTRY")] == [
        "Social Capital, Trust & Organizational Membership",
        "Social Capital, Trust & Organizational Membership",
        "Social Capital, Trust & Organizational Membership",
        None,
        None,
        None,
        None,
    ]


def test_errors_name_the_problem_and_the_fix(tmp_path: Path) -> None:
    sav = write(tmp_path / "wvs.sav")
    with pytest.raises(UserError, match=r"no 'COUNTRY' column: pass country_column="):
        load_labelled_respondents(sav, country_column="COUNTRY")
    with pytest.raises(UserError, match=r"'276' in 'B_COUNTRY' is not an ISO 3166 alpha-3 code"):
        load_labelled_respondents(
            write(tmp_path / "num.sav", [(276, 1.0, 1)], ["B_COUNTRY", "W_WEIGHT", "Q1"]), country_column="B_COUNTRY"
        )
    no_items = write(tmp_path / "none.dta", [("DEU", 1.0, 1)], ["B_COUNTRY_ALPHA", "W_WEIGHT", "Y001"])
    with pytest.raises(UserError, match=r"no item columns with labels \(named Q1 \.\. Q290"):
        load_labelled_respondents(no_items)
    with pytest.raises(UserError, match=r"not found: .*download WVS Wave 7"):
        load_labelled_respondents(tmp_path / "missing.sav")
    (tmp_path / "wvs.csv").write_text("B_COUNTRY_ALPHA,Q1\nDEU,1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"is a CSV, which has no labels: pass a questions.jsonl"):
        load_labelled_respondents(tmp_path / "wvs.csv")
    (tmp_path / "wvs.xlsx").write_bytes(b"PK")
    with pytest.raises(UserError, match=r"is not an SPSS \(\.sav\) or Stata \(\.dta\) file"):
        load_labelled_respondents(tmp_path / "wvs.xlsx")
    (tmp_path / "broken.sav").write_text("not spss", encoding="utf-8")
    with pytest.raises(UserError, match=r"is not a readable SPSS file .*: download or export it again"):
        load_labelled_respondents(tmp_path / "broken.sav")
    all_missing = write(
        tmp_path / "dk.dta", [("DEU", 1.0, -1), ("JPN", 1.0, -2)], ["B_COUNTRY_ALPHA", "W_WEIGHT", "Q1"]
    )
    with pytest.raises(UserError, match=r"no valid answers to its items \(missing answer"):
        load_labelled_respondents(all_missing)


def _cli(*args: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    code = "from culturealign.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env or os.environ)


def test_build_survey_takes_an_spss_file_without_a_question_list(tmp_path):
    src = write(tmp_path / "wvs.sav")
    proc = _cli("build-survey", "--respondents", str(src), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 countries" in proc.stdout and "skipped 1" in proc.stdout  # the respondent without a country
    assert load_wvs_folder(tmp_path / "out").questions["Q1"].options["1"] == "Very important"
    proc = _cli("build-survey", "--respondents", str(src), "--questions", "q.jsonl", "--out", str(tmp_path / "o2"))
    assert proc.returncode == 2 and "leave out --questions" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("build-survey", "--respondents", str(tmp_path / "wvs.csv"), "--out", str(tmp_path / "o3"))
    assert proc.returncode == 2 and "pass --questions questions.jsonl" in proc.stderr


def test_a_missing_survey_names_the_three_ways_to_get_one(tmp_path):
    proc = _cli("eval", "wvs", "--survey", str(tmp_path / "none"), "--cultures", "DEU", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    for way in ("culturealign data get globalopinionqa", "culturealign build-survey --respondents", "questions.jsonl"):
        assert way in proc.stderr
