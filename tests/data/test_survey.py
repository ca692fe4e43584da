"""Survey loaders: aggregate WVS folder, respondent-level CSV, GlobalOpinionQA CSV and ``load_survey`` dispatch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from culturealign import cultures
from culturealign.data.goqa import load_globalopinionqa
from culturealign.data.survey import (
    load_questions,
    load_survey,
    load_wvs_folder,
    load_wvs_respondents,
    write_survey_folder,
)
from culturealign.errors import UserError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WVS_SMALL = FIXTURES / "wvs_small"
RESPONDENTS = FIXTURES / "wvs_respondents.csv"
GOQA = FIXTURES / "goqa_small.csv"
REAL_WVS7 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "wvs7"


def assert_dist(got: dict[str, float], expected: dict[str, float], tol: float = 1e-9) -> None:
    assert list(got) == list(expected)
    for code, p in expected.items():
        assert got[code] == pytest.approx(p, abs=tol), code


def write_folder(folder: Path, questions: str, distributions: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "questions.jsonl").write_text(questions, encoding="utf-8")
    (folder / "distributions.csv").write_text(distributions, encoding="utf-8")
    return folder


# --- aggregate folder -------------------------------------------------------------------------------------------


def test_folder_loads_questions_in_order_and_countries():
    survey = load_wvs_folder(WVS_SMALL)
    assert list(survey.questions) == ["Q1", "Q119", "Q48", "Q57"]
    assert survey.countries == ["DEU", "JPN"]
    assert survey.topics() == ["Corruption", "Happiness and Well-being", "Social Capital", "Social Values"]
    assert survey.questions["Q48"].scale == "numeric-1-10"
    assert survey.questions["Q57"].scale == "categorical"  # default when absent
    assert survey.questions["Q57"].topic == "Social Capital"
    assert survey.similarity_path == WVS_SMALL / "country_similarity.json"
    assert survey.source == str(WVS_SMALL)


def test_folder_renormalizes_shares_over_valid_codes():
    survey = load_wvs_folder(WVS_SMALL)
    deu, jpn = survey.distributions["DEU"], survey.distributions["JPN"]
    # DEU Q1: 0.2, 0.2, 0.05, 0.05 sum to 0.5; the -1 row (0.3) is not an option and is ignored.
    assert_dist(deu["Q1"], {"1": 0.4, "2": 0.4, "3": 0.1, "4": 0.1})
    # DEU Q57: 0.3 + 0.6 = 0.9
    assert_dist(deu["Q57"], {"1": 1 / 3, "2": 2 / 3})
    # JPN Q119: 0.4, 0.3, 0.1, 0.1, 0.0 sum to 0.9
    assert_dist(jpn["Q119"], {"0": 4 / 9, "1": 3 / 9, "2": 1 / 9, "3": 1 / 9, "4": 0.0})
    # JPN Q1 with an explicit zero share
    assert_dist(jpn["Q1"], {"1": 0.5, "2": 0.25, "3": 0.25, "4": 0.0})
    for per_q in survey.distributions.values():
        for dist in per_q.values():
            assert math.fsum(dist.values()) == pytest.approx(1.0, abs=1e-12)


def test_folder_keeps_zero_based_codes():
    survey = load_wvs_folder(WVS_SMALL)
    assert survey.questions["Q119"].codes == ["0", "1", "2", "3", "4"]
    assert survey.questions["Q119"].options["0"] == "Hard to say"
    assert_dist(survey.distributions["DEU"]["Q119"], {"0": 0.1, "1": 0.2, "2": 0.3, "3": 0.2, "4": 0.2})


def test_folder_numeric_scale_fills_unseen_codes_with_zero():
    dist = load_wvs_folder(WVS_SMALL).distributions["DEU"]["Q48"]
    assert list(dist) == [str(i) for i in range(1, 11)]
    assert dist["1"] == pytest.approx(0.25)
    assert dist["5"] == pytest.approx(0.5)
    assert dist["10"] == pytest.approx(0.25)
    assert sum(v for k, v in dist.items() if k not in {"1", "5", "10"}) == 0.0


def test_folder_normalizes_country_case_and_float_codes():
    # The fixture writes "jpn" and answer "2.0" for JPN Q57.
    assert_dist(load_wvs_folder(WVS_SMALL).distributions["JPN"]["Q57"], {"1": 0.5, "2": 0.5})


def test_folder_missing_question_for_a_country():
    survey = load_wvs_folder(WVS_SMALL)
    assert [q.id for q in survey.answered("DEU")] == ["Q1", "Q119", "Q48", "Q57"]
    assert [q.id for q in survey.answered("JPN")] == ["Q1", "Q119", "Q57"]
    assert "Q48" not in survey.distributions["JPN"]
    assert survey.answered("XXX") == []


def test_folder_counts_skipped_rows():
    survey = load_wvs_folder(WVS_SMALL)
    assert survey.skipped == {"row for a question not in questions.jsonl": 1}


def test_folder_registers_its_countries_csv(tmp_path):
    folder = write_folder(
        tmp_path / "s",
        '{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}}\n',
        "country,question,answer,proportion\nXAT,Q1,1,0.25\nXAT,Q1,2,0.25\n",
    )
    (folder / "countries.csv").write_text("code,name,culture,region\nXAT,Atlantis,Atlantean,Myth\n", encoding="utf-8")
    survey = load_wvs_folder(folder)
    assert cultures.get_culture("XAT").adjective == "Atlantean"
    assert survey.similarity_path is None
    assert_dist(survey.distributions["XAT"]["Q1"], {"1": 0.5, "2": 0.5})


def test_folder_question_without_valid_answers_is_skipped(tmp_path):
    folder = write_folder(
        tmp_path / "s",
        '{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}}\n'
        '{"id": "Q2", "text": "u", "options": {"1": "a", "2": "b"}}\n',
        "country,question,answer,proportion\nDEU,Q1,-1,0.5\nDEU,Q1,1,0\nDEU,Q2,1,1\n",
    )
    survey = load_wvs_folder(folder)
    assert [q.id for q in survey.answered("DEU")] == ["Q2"]
    assert survey.skipped["question without valid answers for a country"] == 1


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="survey folder not found"):
        load_wvs_folder(tmp_path / "nowhere")


def test_missing_distributions_file_is_a_user_error(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "questions.jsonl").write_text('{"id": "Q1", "text": "t", "options": {"1": "a"}}\n', encoding="utf-8")
    with pytest.raises(UserError, match="distributions.csv"):
        load_wvs_folder(folder)


def test_missing_distributions_columns_is_a_user_error(tmp_path):
    folder = write_folder(
        tmp_path / "s",
        '{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}}\n',
        "country,question,share\nDEU,Q1,0.5\n",
    )
    with pytest.raises(UserError, match=r"lacks columns \['answer', 'proportion'\]"):
        load_wvs_folder(folder)


def test_non_numeric_proportion_names_the_line(tmp_path):
    folder = write_folder(
        tmp_path / "s",
        '{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}}\n',
        "country,question,answer,proportion\nDEU,Q1,1,0.5\nDEU,Q1,2,lots\n",
    )
    with pytest.raises(UserError, match="line 3 of"):
        load_wvs_folder(folder)


# --- questions.jsonl --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_line",
    [
        "{not json",
        '{"id": "Q2", "text": "no options"}',
        '{"id": "Q2", "text": "list options", "options": ["a", "b"]}',
        '["not", "an", "object"]',
    ],
)
def test_malformed_question_line_names_the_line_number(tmp_path, bad_line):
    path = tmp_path / "questions.jsonl"
    good = '{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}}'
    path.write_text(f"{good}\n\n{bad_line}\n", encoding="utf-8")  # line 2 is blank, the bad line is line 3
    with pytest.raises(UserError, match=r"^line 3 of .*questions\.jsonl"):
        load_questions(path)


def test_questions_file_missing_or_empty(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_questions(tmp_path / "questions.jsonl")
    (tmp_path / "questions.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError, match="holds no questions"):
        load_questions(tmp_path / "questions.jsonl")


def test_question_codes_are_strings_without_float_noise(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps({"id": 7, "text": "t", "options": {"1.0": "a", "2": "b"}}) + "\n", encoding="utf-8")
    q = load_questions(path)["7"]
    assert q.codes == ["1", "2"]


# --- respondent-level CSV ---------------------------------------------------------------------------------------


def test_respondents_weighted_shares():
    survey = load_wvs_respondents(RESPONDENTS, WVS_SMALL / "questions.jsonl")
    assert survey.countries == ["DEU", "JPN"]  # "jpn" is upper-cased
    deu, jpn = survey.distributions["DEU"], survey.distributions["JPN"]
    # DEU Q1: code 1 weights 1.0 + 0.5, code 2 weight 2.0 (the -2 row is dropped) -> 1.5/3.5, 2.0/3.5
    assert_dist(deu["Q1"], {"1": 3 / 7, "2": 4 / 7, "3": 0.0, "4": 0.0})
    # DEU Q119: 0 -> 1.0, 1 -> 2.0, 3 -> 1.5 (the -1 row is dropped); total 4.5
    assert_dist(deu["Q119"], {"0": 2 / 9, "1": 4 / 9, "2": 0.0, "3": 1 / 3, "4": 0.0})
    # DEU Q57: 1 -> 1.0, 2 -> 2.0 + 1.5 (the -2 row is dropped); total 4.5
    assert_dist(deu["Q57"], {"1": 2 / 9, "2": 7 / 9})
    # JPN Q1: 4 -> 1.0, 3 -> 3.0 + 1.0; total 5
    assert_dist(jpn["Q1"], {"1": 0.0, "2": 0.0, "3": 0.8, "4": 0.2})
    # JPN Q119: 2 -> 1.0 + 3.0, 0 -> 1.0
    assert_dist(jpn["Q119"], {"0": 0.2, "1": 0.0, "2": 0.8, "3": 0.0, "4": 0.0})
    # JPN Q57: 1 -> 1.0, 2 -> 1.0 (the -1 row is dropped)
    assert_dist(jpn["Q57"], {"1": 0.5, "2": 0.5})


def test_respondents_drop_negative_codes_and_count_them():
    survey = load_wvs_respondents(RESPONDENTS, WVS_SMALL / "questions.jsonl")
    assert survey.skipped == {"missing answer code (negative)": 4}
    for per_q in survey.distributions.values():
        for dist in per_q.values():
            assert all(not code.startswith("-") for code in dist)


def test_respondents_question_without_column_is_not_answered():
    survey = load_wvs_respondents(RESPONDENTS, WVS_SMALL / "questions.jsonl")
    assert [q.id for q in survey.answered("DEU")] == ["Q1", "Q119", "Q57"]
    assert survey.similarity_path is None


def test_respondents_without_weight_column_count_each_row_once(tmp_path):
    path = tmp_path / "resp.csv"
    path.write_text("B_COUNTRY_ALPHA,Q57\nDEU,1\nDEU,2\nDEU,2\nDEU,-5\n", encoding="utf-8")
    survey = load_wvs_respondents(path, WVS_SMALL / "questions.jsonl")
    assert_dist(survey.distributions["DEU"]["Q57"], {"1": 1 / 3, "2": 2 / 3})


def test_respondents_errors(tmp_path):
    questions = WVS_SMALL / "questions.jsonl"
    with pytest.raises(UserError, match="respondent file not found"):
        load_wvs_respondents(tmp_path / "missing.csv", questions)
    no_country = tmp_path / "no_country.csv"
    no_country.write_text("COUNTRY,W_WEIGHT,Q1\nDEU,1.0,1\n", encoding="utf-8")
    with pytest.raises(UserError, match="B_COUNTRY_ALPHA"):
        load_wvs_respondents(no_country, questions)
    no_questions = tmp_path / "no_questions.csv"
    no_questions.write_text("B_COUNTRY_ALPHA,W_WEIGHT,V1\nDEU,1.0,1\n", encoding="utf-8")
    with pytest.raises(UserError, match="no column named like the question ids"):
        load_wvs_respondents(no_questions, questions)


def test_respondents_wide_file_like_the_official_wvs_csv(tmp_path):
    columns = ["B_COUNTRY_ALPHA", "W_WEIGHT"] + [f"Q{i}" for i in range(1, 301)]
    rows = [",".join(columns)] + [",".join(["DEU", "1.0"] + ["1"] * 300) for _ in range(20)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    survey = load_wvs_respondents(path, WVS_SMALL / "questions.jsonl")
    assert_dist(survey.distributions["DEU"]["Q57"], {"1": 1.0, "2": 0.0})


def test_write_survey_folder_round_trips(tmp_path):
    survey = load_wvs_respondents(RESPONDENTS, WVS_SMALL / "questions.jsonl")
    out = write_survey_folder(survey, tmp_path / "converted")
    assert out == tmp_path / "converted"
    assert (out / "countries.csv").read_text("utf-8").splitlines() == [
        "code,name,culture,region",
        "DEU,Germany,German,Europe",
        "JPN,Japan,Japanese,Asia",
    ]
    back = load_wvs_folder(out)
    assert back.countries == survey.countries
    assert {qid: (q.topic, q.text, q.options, q.scale) for qid, q in back.questions.items()} == {
        qid: (q.topic, q.text, q.options, q.scale) for qid, q in survey.questions.items()
    }
    for country in survey.countries:
        assert list(back.distributions[country]) == list(survey.distributions[country])
        for qid, dist in survey.distributions[country].items():
            assert_dist(back.distributions[country][qid], dist, tol=1e-5)


def test_write_survey_folder_unknown_country(tmp_path):
    path = tmp_path / "resp.csv"
    path.write_text("B_COUNTRY_ALPHA,Q57\nQQQ,1\nQQQ,2\n", encoding="utf-8")
    out = write_survey_folder(load_wvs_respondents(path, WVS_SMALL / "questions.jsonl"), tmp_path / "out")
    assert (out / "countries.csv").read_text("utf-8").splitlines()[1] == "QQQ,QQQ,QQQ,"


# --- GlobalOpinionQA --------------------------------------------------------------------------------------------


def test_goqa_loader_codes_options_one_to_n():
    survey = load_globalopinionqa(GOQA)
    assert len(survey.questions) == 3
    by_text = {q.text: q for q in survey.questions.values()}
    approve = by_text["Do you approve of the new policy?"]
    trust = by_text["How much do you trust the press?"]
    assert approve.options == {"1": "Yes", "2": "No"}
    assert trust.options == {"1": "A lot", "2": "Some", "3": "Not at all"}
    assert approve.topic == "GAS" and trust.topic == "WVS"
    assert all(qid.startswith("GOQA-") and len(qid) == 15 for qid in survey.questions)


def test_goqa_loader_renormalizes_and_skips_unknown_countries():
    survey = load_globalopinionqa(GOQA)
    by_text = {q.text: q.id for q in survey.questions.values()}
    approve, trust = by_text["Do you approve of the new policy?"], by_text["How much do you trust the press?"]
    assert survey.countries == ["DEU", "JPN"]  # Atlantis is not a known culture
    assert_dist(survey.distributions["DEU"][approve], {"1": 0.2, "2": 0.8})
    assert_dist(survey.distributions["JPN"][approve], {"1": 0.5, "2": 0.5})  # 0.3, 0.3
    assert_dist(survey.distributions["DEU"][trust], {"1": 0.2, "2": 0.4, "3": 0.4})  # 0.1, 0.2, 0.2
    assert_dist(survey.distributions["JPN"][trust], {"1": 0.5, "2": 0.25, "3": 0.25})
    assert survey.skipped["country name not in the culture registry"] == 1
    assert survey.skipped["line 4: shares do not match the options"] == 1
    assert sum(survey.skipped.values()) == 2
    assert [q.id for q in survey.answered("DEU")] == [approve, trust]


def test_goqa_missing_columns_is_a_user_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("question,options\nq,\"['a', 'b']\"\n", encoding="utf-8")
    with pytest.raises(UserError, match="selections"):
        load_globalopinionqa(path)


# --- load_survey dispatch ---------------------------------------------------------------------------------------


def test_load_survey_dispatches_on_folder():
    survey = load_survey(WVS_SMALL)
    assert survey.source == str(WVS_SMALL)
    assert "Q119" in survey.questions


def test_load_survey_dispatches_on_goqa_csv():
    survey = load_survey(GOQA)
    assert all(qid.startswith("GOQA-") for qid in survey.questions)
    assert survey.countries == ["DEU", "JPN"]


def test_load_survey_respondent_csv_needs_questions():
    with pytest.raises(UserError, match="--questions"):
        load_survey(RESPONDENTS)
    survey = load_survey(RESPONDENTS, WVS_SMALL / "questions.jsonl")
    assert survey.source == str(RESPONDENTS)
    assert survey.countries == ["DEU", "JPN"]


def test_load_survey_missing_path(tmp_path):
    with pytest.raises(UserError, match="survey not found"):
        load_survey(tmp_path / "nothing.csv")


# --- real data --------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_WVS7.is_dir(), reason=f"real WVS wave 7 data not present at {REAL_WVS7}")
def test_real_wvs7():
    survey = load_wvs_folder(REAL_WVS7)
    assert len(survey.countries) == 14
    for country, per_q in survey.distributions.items():
        for qid, dist in per_q.items():
            assert abs(math.fsum(dist.values()) - 1.0) < 1e-9, (country, qid)
    q119 = [per_q["Q119"] for per_q in survey.distributions.values() if "Q119" in per_q]
    assert q119, "no country answers Q119"
    assert all("0" in dist for dist in q119)
    assert survey.questions["Q119"].options["0"] == "Hard to say"


# --- hostile input (issue 20) -----------------------------------------------------------------------------------

Q1 = '{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}}\n'
HEADER = "country,question,answer,proportion\n"


@pytest.mark.parametrize("value", ["7.5", "25", "1.0001", "-0.1"])
def test_proportion_outside_0_1_names_file_line_value_and_fix(tmp_path, value):
    # 7.5 among fractions would be renormalized into a majority answer
    folder = write_folder(tmp_path / "s", Q1, f"{HEADER}DEU,Q1,1,0.25\nDEU,Q1,2,{value}\n")
    with pytest.raises(UserError) as info:
        load_wvs_folder(folder)
    assert str(info.value) == (
        f"line 3 of {folder / 'distributions.csv'}: proportion {value!r} is not a share from 0 to 1; write each "
        "answer's share of respondents as a fraction (0.25, not 25)"
    )


def test_shares_far_from_1_are_noted_once_per_file_with_counts(tmp_path):
    questions = Q1 + '{"id": "Q2", "text": "u", "options": {"1": "a", "2": "b"}}\n'
    rows = [
        "DEU,Q1,1,0.25\nDEU,Q1,2,0.25\n",  # sums to 0.5: off
        "DEU,Q2,1,0.5\nDEU,Q2,2,0.4\n",  # 0.9: off
        "JPN,Q1,1,0.5\nJPN,Q1,2,0.47\n",  # 0.97: within the tolerance
        "JPN,Q2,1,0.5\nJPN,Q2,-1,0.5\n",  # 1 with the missing code counted
    ]
    folder = write_folder(tmp_path / "s", questions, HEADER + "".join(rows))
    survey = load_wvs_folder(folder)
    assert_dist(survey.distributions["DEU"]["Q1"], {"1": 0.5, "2": 0.5})  # still renormalized, not refused
    assert survey.skipped == {}
    (note,) = survey.notes
    assert note.startswith(
        "2 of 4 answer distributions (country, question) in distributions.csv have shares summing to 0.5-0.9, not 1"
    )
    assert survey.subset(["Q1"]).notes == survey.notes  # a split keeps what the file said
    assert load_wvs_folder(write_folder(tmp_path / "ok", Q1, f"{HEADER}DEU,Q1,1,0.5\nDEU,Q1,2,0.5\n")).notes == []


def test_skip_counts_and_notes_reach_metrics_and_the_printed_table(tmp_path):
    from rich.console import Console

    from culturealign.cultures import get_culture
    from culturealign.evaluate.base import format_metrics
    from culturealign.evaluate.wvs import WVS
    from culturealign.llm.scripted import ScriptedEngine

    rows = "DEU,Q1,1,0.25\nDEU,Q1,2,0.25\nDEU,Q1,2,0.25\nDEU,Q9,1,0.5\n"  # a repeat, an unknown question
    survey = load_wvs_folder(write_folder(tmp_path / "s", Q1, HEADER + rows))
    metrics = WVS(survey, [get_culture("DEU")]).run(ScriptedEngine(), progress=False).metrics
    assert metrics["survey_skipped"] == {
        "repeated country, question and answer (last kept)": 1,
        "row for a question not in questions.jsonl": 1,
    }
    assert len(metrics["survey_notes"]) == 1
    console = Console(width=200, record=True)
    console.print(format_metrics(WVS, metrics))
    text = console.export_text()
    assert "survey rows skipped: 1 repeated country, question and answer (last kept)" in text
    assert "survey notes: 1 of 1 answer distributions" in text


@pytest.mark.parametrize("country", ["../../../../../ESCAPED", "DE", "D3U", "GERMANY", "DE U"])
def test_distributions_country_not_alpha3_is_refused(tmp_path, country):
    folder = write_folder(tmp_path / "s", Q1, f"{HEADER}DEU,Q1,1,0.5\n{country},Q1,1,0.5\n")
    with pytest.raises(UserError, match=r"^line 3 of .*distributions\.csv: country .* is not an ISO 3166 alpha-3"):
        load_wvs_folder(folder)


def test_countries_csv_code_that_escapes_the_run_folder_is_refused(tmp_path):
    folder = write_folder(tmp_path / "s", Q1, f"{HEADER}DEU,Q1,1,0.5\n")
    (folder / "countries.csv").write_text(
        "code,name,culture,region\nDEU,Germany,German,Europe\n../../../../../ESCAPED,X,X,X\n", encoding="utf-8"
    )
    with pytest.raises(UserError, match=r"^line 3 of .*countries\.csv: culture code '\.\./.*' is not an ISO 3166"):
        load_wvs_folder(folder)
    assert "../../../../../ESCAPED" not in {c.code for c in cultures.all_cultures()}


@pytest.mark.parametrize("country", ["../../x", "DE", "276"])
def test_respondent_country_not_alpha3_is_refused(tmp_path, country):
    path = tmp_path / "resp.csv"
    path.write_text(f"B_COUNTRY_ALPHA,Q57\nDEU,1\n{country},2\n", encoding="utf-8")
    with pytest.raises(
        UserError, match=r"^line 3 of .*resp\.csv: country .* is not an ISO 3166 alpha-3 .*country_col"
    ):
        load_wvs_respondents(path, WVS_SMALL / "questions.jsonl")


def _long_rows(n: int) -> list[str]:
    return [f"DEU,Q1,{1 + i % 2},0.{i % 10}\n" for i in range(n)]


def test_bad_byte_in_distributions_names_its_own_line(tmp_path):
    rows = _long_rows(1000)
    rows[499] = "DEU,Q1,1,0.5 caf\xe9\n"  # line 501 (the header is line 1)
    folder = write_folder(tmp_path / "s", Q1, "")
    (folder / "distributions.csv").write_bytes((HEADER + "".join(rows)).encode("latin-1"))
    with pytest.raises(UserError, match=r"^line 501 of .*distributions\.csv is not UTF-8 text .*re-save"):
        load_wvs_folder(folder)


def test_bad_byte_in_respondents_names_its_own_line(tmp_path):
    path = tmp_path / "resp.csv"
    rows = ["DEU,1\n"] * 3000
    rows[2000] = "D\xc9U,1\n"  # line 2002
    path.write_bytes(("B_COUNTRY_ALPHA,Q57\n" + "".join(rows)).encode("latin-1"))
    with pytest.raises(UserError, match=r"^line 2002 of .*resp\.csv is not UTF-8 text"):
        load_wvs_respondents(path, WVS_SMALL / "questions.jsonl")


def test_unclosed_quote_names_the_line_where_the_record_starts(tmp_path):
    rows = _long_rows(100)
    rows[40] = 'DEU,"Q1,1,0.5\n'  # line 42; the csv module runs on to the end of the file
    folder = write_folder(tmp_path / "s", Q1, HEADER + "".join(rows))
    with pytest.raises(UserError, match=r"^line 42 of .*distributions\.csv: a quoted field is never closed"):
        load_wvs_folder(folder)
    path = tmp_path / "resp.csv"
    path.write_text('B_COUNTRY_ALPHA,Q57\nDEU,1\nDEU,"2\n' + "DEU,1\n" * 50, encoding="utf-8")
    with pytest.raises(UserError, match=r"^line 3 of .*resp\.csv: a quoted field is never closed"):
        load_wvs_respondents(path, WVS_SMALL / "questions.jsonl")


def test_header_only_distributions_say_there_are_no_data_rows(tmp_path):
    folder = write_folder(tmp_path / "s", Q1, HEADER)
    with pytest.raises(UserError, match=r"distributions\.csv has a header but no data rows: add one"):
        load_wvs_folder(folder)
    folder = write_folder(tmp_path / "t", Q1, f"{HEADER}DEU,Q7,1,0.5\n")  # rows, but none for a known question
    with pytest.raises(UserError, match=r"has no answer shares for the questions of questions\.jsonl \(row for a q"):
        load_wvs_folder(folder)
    path = tmp_path / "resp.csv"
    path.write_text("B_COUNTRY_ALPHA,W_WEIGHT,Q57\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"resp\.csv has no answers to the questions of .*nothing skipped"):
        load_wvs_respondents(path, WVS_SMALL / "questions.jsonl")


# --- ordinal scales (issue 19) -----------------------------------------------------------------------------------

# every WVS Wave 7 item of three or more options that ``is_ordinal`` calls nominal (``/tmp/notes`` and the README
# list them with the reasons); the two-option items are all nominal
WVS7_NOMINAL = {
    "Q42", "Q56", "Q92", "Q93", "Q111", "Q119", "Q130", "Q152", "Q153", "Q156", "Q157", "Q173", "Q221", "Q223",
    "Q271", "Q273", "Q275", "Q276", "Q277", "Q278", "Q279", "Q280", "Q281", "Q282", "Q283", "Q284", "Q286", "Q289",
    "Q290",
}  # fmt: skip


def test_ordinal_is_read_when_given_and_inferred_when_absent(tmp_path):
    from culturealign.data.base import is_ordinal

    four = '{"1": "Very important", "2": "Rather important", "3": "Not very important", "4": "Not at all important"}'
    eleven = json.dumps({str(c): str(c) for c in range(11)})
    lines = [
        f'{{"id": "A", "text": "t", "options": {four}}}',  # an ordered 4-point scale tagged categorical
        f'{{"id": "B", "text": "t", "options": {four}, "ordinal": false}}',  # the user says otherwise
        f'{{"id": "C", "text": "t", "options": {eleven}, "scale": "categorical"}}',  # WVS's 0-10 scales
        '{"id": "D", "text": "t", "options": {"1": "Yes", "2": "No"}}',  # a dichotomy
        '{"id": "E", "text": "t", "options": {"1": "Yes", "2": "No"}, "ordinal": true}',
        '{"id": "F", "text": "t", "options": {"1": "London", "2": "Paris", "3": "Rome"}}',
        '{"id": "G", "text": "t", "options": {"0": "Disagree", "1": "Hard to say", "2": "Agree"}}',  # a midpoint
        '{"id": "H", "text": "t", "options": {"1": "Better off", "2": "Worse off", "3": "About the same"}}',
        '{"id": "I", "text": "t", "options": {"1": "Always", "2": "Usually", "3": "Never", "4": "Not allowed"}}',
    ]
    (tmp_path / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    questions = load_questions(tmp_path / "questions.jsonl")
    assert {qid: is_ordinal(q) for qid, q in questions.items()} == {
        "A": True, "B": False, "C": True, "D": False, "E": True, "F": False, "G": True, "H": False, "I": False,
    }  # fmt: skip
    assert questions["A"].ordinal is None and questions["B"].ordinal is False  # inferred when asked, not stored


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}, "ordinal": "yes"}', "'ordinal' is 'yes'"),
        ('{"id": "Q1", "text": "t", "options": {"1": "a", "2": "b"}, "ordinal": 1}', "'ordinal' is 1"),
        ('{"id": "Q1", "text": "t", "options": {"a": "x", "b": "y"}, "ordinal": true}', "not whole numbers"),
    ],
)
def test_a_bad_ordinal_names_the_line(tmp_path, row, message):
    (tmp_path / "questions.jsonl").write_text(row + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"line 1 of .*questions.jsonl.*{message}"):
        load_questions(tmp_path / "questions.jsonl")


def test_write_survey_folder_keeps_a_given_ordinal_only(tmp_path):
    survey = load_wvs_folder(WVS_SMALL)
    survey.questions["Q1"].ordinal = False
    out = write_survey_folder(survey, tmp_path / "out")
    rows = {r["id"]: r for r in map(json.loads, (out / "questions.jsonl").read_text("utf-8").splitlines())}
    assert rows["Q1"]["ordinal"] is False and "ordinal" not in rows["Q48"]
    assert load_wvs_folder(out).questions["Q1"].ordinal is False


def test_goqa_questions_are_inferred_from_their_labels():
    from culturealign.data.base import is_ordinal

    by_text = {q.text: q for q in load_globalopinionqa(GOQA).questions.values()}
    assert is_ordinal(by_text["How much do you trust the press?"])  # A lot, Some, Not at all
    assert not is_ordinal(by_text["Do you approve of the new policy?"])  # Yes, No


@pytest.mark.skipif(not REAL_WVS7.is_dir(), reason=f"real WVS wave 7 data not present at {REAL_WVS7}")
def test_ordinal_inference_on_the_real_questionnaire():
    from culturealign.data.base import is_ordinal

    questions = load_questions(REAL_WVS7 / "questions.jsonl")
    nominal = {qid for qid, q in questions.items() if len(q.options) >= 3 and not is_ordinal(q)}
    assert nominal == WVS7_NOMINAL
    assert not any(is_ordinal(q) for q in questions.values() if len(q.options) < 3)
    zero_to_ten = [f"Q{n}" for n in (241, 242, 243, 245, 246, 247, 248, 249)]
    assert all(questions[q].scale == "categorical" and is_ordinal(questions[q]) for q in zero_to_ten)
    assert all(is_ordinal(q) for q in questions.values() if q.scale == "numeric-1-10")
    for qid in ("Q2", "Q27", "Q34", "Q45", "Q94", "Q113", "Q122", "Q172", "Q201", "Q209", "Q255"):
        assert is_ordinal(questions[qid]), qid
