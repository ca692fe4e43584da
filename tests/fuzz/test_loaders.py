"""Property-based tests of every data loader: whatever bytes a user hands over, a loader returns records with a count
of what it skipped, or raises a one-line :class:`UserError`; never another exception, never a silent drop.

Two kinds of property per loader: *robustness* (random bytes, wrong encodings, broken CSV/JSON, missing columns,
wrong types, huge fields, template braces and chat special tokens in every cell: only a result or a UserError) and
*accounting* (files built from known-valid and known-invalid rows: every valid row is loaded exactly, every other
row is counted in ``skipped``). Examples are derandomized (the same cases on every run, CI included); raise
``CULTUREALIGN_FUZZ_EXAMPLES`` to search longer.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culturealign.data.blend import load_blend, resolve_regions
from culturealign.data.culturax import REQUIRED as CULTURAX_COLUMNS
from culturealign.data.culturax import load_culturax
from culturealign.data.goqa import load_globalopinionqa
from culturealign.data.hofstede import DIMENSIONS, load_hofstede
from culturealign.data.survey import Survey, load_survey, load_wvs_folder, load_wvs_respondents, write_survey_folder
from culturealign.errors import UserError
from culturealign.evaluate.individual import load_respondents
from culturealign.records import SurveyQuestion
from culturealign.steps.hhh import read_questions
from culturealign.train.lora import read_training_data

T = TypeVar("T")
EXAMPLES = int(os.environ.get("CULTUREALIGN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# What users paste into files: template braces, chat special tokens, CSV and JSON syntax, line breaks that
# str.splitlines() honours but "\n" does not, NUL, a byte-order mark, numbers that are not numbers.
SPECIALS = [
    "{country}", "{{", "}}", "{", "}", "{0}", "{question!r}", "%s", "<|im_end|>", "<|im_start|>system\n",
    "<|endoftext|>", '"', "'", ",", ";", "\t", "\n", "\r\n", "\r", "\x00", "\ufeff", "\u2028", "\x85", "\x0b",
    "#NULL!", "-1", "nan", "inf", "1e999", "é", "𝄞", "[", "]", "{'a': 1}", "defaultdict(<class 'list'>, {})",
]  # fmt: skip
nasty = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SPECIALS)), max_size=6).map("".join)
cell = st.one_of(nasty, st.sampled_from(["", "1", "0.5", "DEU", "Germany", "x" * 200_000]))  # 200 KB > csv limit


def outcome(load: Callable[[], T]) -> T | UserError:
    """What a loader gives: its result, or the UserError it raised (one non-empty line, as the CLI prints it)."""
    try:
        return load()
    except UserError as e:
        message = str(e)
        assert message.strip() and "\n" not in message and "\r" not in message, repr(message)
        return e


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",", quoted: bool = True) -> str:
    """Rows written properly (``quoted``) or joined raw, so that quotes and line breaks in cells break the file."""
    if not quoted:
        return "\n".join(delimiter.join(r) for r in [header, *rows]) + "\n"
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows([header, *rows])
    return buf.getvalue()


@st.composite
def csv_bytes(draw: st.DrawFn, columns: list[str], delimiter: str = ",") -> bytes:
    """A CSV meant to have ``columns``: some dropped, shuffled or renamed; rows short, long or nasty; and encoded
    as UTF-8, UTF-16, cp1252 or latin-1, or replaced by random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000))
    header = draw(st.one_of(st.just(columns), st.permutations(columns), st.lists(st.sampled_from(columns) | nasty)))
    row = st.lists(cell, min_size=0, max_size=len(columns) + 2)
    rows = draw(st.lists(row, max_size=6))
    text = csv_text(header, rows, delimiter, quoted=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    return text.encode(encoding, errors="replace") + draw(st.sampled_from([b"", b"\xff\xfe", b"\x81\x8d"]))


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(nasty | st.sampled_from(["id", "text"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def jsonl_bytes(draw: st.DrawFn, good_row: st.SearchStrategy[dict]) -> bytes:
    """JSON lines: some valid rows, some of the wrong shape, some not JSON; or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000))
    line = st.one_of(
        good_row.map(lambda r: json.dumps(r, ensure_ascii=False)),
        json_value.map(lambda v: json.dumps(v, ensure_ascii=False)),
        nasty,
    )
    text = "\n".join(draw(st.lists(line, max_size=6)))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "cp1252"])), errors="replace")


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- WVS aggregate folder ----------------------------------------------------------------------------------------

GOOD_QUESTION = {"id": "Q1", "topic": "T", "text": "Is {country} <|im_end|> fine?", "options": {"1": "Yes", "2": "No"}}
GOOD_DIST = "country,question,answer,proportion\nDEU,Q1,1,0.25\nDEU,Q1,2,0.5\n"
question_row = st.fixed_dictionaries(
    {"id": nasty | st.integers(), "text": nasty, "options": st.dictionaries(nasty, nasty, max_size=4)},
    optional={"topic": json_value, "scale": json_value},
)


@FUZZ
@given(
    questions=st.one_of(st.just(json.dumps(GOOD_QUESTION).encode()), jsonl_bytes(question_row)),
    distributions=st.one_of(st.just(GOOD_DIST.encode()), csv_bytes(["country", "question", "answer", "proportion"])),
    countries=st.none() | csv_bytes(["code", "name", "culture", "region"]),
    similarity=st.none() | json_value.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200),
)
def test_survey_folder_gives_a_survey_or_a_user_error(questions, distributions, countries, similarity):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, "questions.jsonl", questions)
        write(folder, "distributions.csv", distributions)
        if countries is not None:
            write(folder, "countries.csv", countries)
        if similarity is not None:
            write(folder, "country_similarity.json", similarity)
        survey = outcome(lambda: load_survey(folder))
    if isinstance(survey, Survey):
        for per_q in survey.distributions.values():
            for qid, dist in per_q.items():
                assert list(dist) == list(survey.questions[qid].options)
                assert math.isclose(sum(dist.values()), 1.0) and all(0 <= p <= 1 for p in dist.values())


code = st.integers(0, 12).map(str) | st.sampled_from(["A", "B", "yes"])
survey_question = st.builds(
    SurveyQuestion,
    id=st.from_regex(r"Q[0-9]{1,4}", fullmatch=True),
    topic=nasty,
    text=nasty,
    options=st.dictionaries(code, nasty, min_size=2, max_size=5),
    scale=st.sampled_from(["categorical", "numeric-1-10"]),
)


@FUZZ
@given(
    questions=st.lists(survey_question, min_size=1, max_size=5, unique_by=lambda q: q.id),
    countries=st.lists(st.from_regex(r"[A-Z]{3}", fullmatch=True), min_size=1, max_size=3, unique=True),
    data=st.data(),
)
def test_a_written_survey_folder_loads_back_unchanged(questions, countries, data):
    """Every valid question and share survives write -> load (text with U+2028, braces, special tokens included)."""
    by_id = {q.id: q for q in questions}
    distributions: dict[str, dict[str, dict[str, float]]] = {}
    for country in countries:
        for q in data.draw(st.lists(st.sampled_from(questions), unique_by=lambda q: q.id)):
            weights = data.draw(st.lists(st.integers(0, 9), min_size=len(q.options), max_size=len(q.options)))
            if sum(weights):
                distributions.setdefault(country, {})[q.id] = {
                    c: w / sum(weights) for c, w in zip(q.options, weights, strict=True)
                }
    with tempfile.TemporaryDirectory() as tmp:
        write_survey_folder(Survey(by_id, distributions), tmp)
        if not distributions:  # a header-only distributions.csv is refused, not loaded as a survey without answers
            with pytest.raises(UserError, match="has a header but no data rows"):
                load_wvs_folder(tmp)
            return
        back = load_wvs_folder(tmp)
    assert back.questions == by_id
    assert back.skipped == Counter()
    assert sorted(back.distributions) == sorted(distributions)
    for country, per_q in distributions.items():
        assert back.distributions[country].keys() == per_q.keys()
        for qid, dist in per_q.items():
            assert back.distributions[country][qid] == pytest.approx(dist, abs=1e-5)


# --- WVS respondent-level CSV ------------------------------------------------------------------------------------

OPTIONS = {"Q1": ["1", "2", "3"], "Q2": ["1", "2"]}
QUESTIONS_JSONL = "\n".join(
    json.dumps({"id": k, "text": k, "options": dict.fromkeys(v, "x")}) for k, v in OPTIONS.items()
)


@FUZZ
@given(
    data=csv_bytes(["B_COUNTRY_ALPHA", "W_WEIGHT", "Q1", "Q2"]) | csv_bytes(["B_COUNTRY_ALPHA", "Q1"], ";"),
)
def test_respondent_csv_gives_a_survey_or_a_user_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        questions = write(Path(tmp), "questions.jsonl", QUESTIONS_JSONL)
        result = outcome(lambda: load_wvs_respondents(write(Path(tmp), "r.csv", data), questions))
    assert isinstance(result, Survey | UserError)


respondent = st.tuples(
    st.sampled_from(["DEU", "jpn ", ""]),
    st.sampled_from(["1", "0.5", "2.25", "0", "", "abc", "nan", "-1", "inf"]),
    st.sampled_from(["1", "2", "3", "-1", "-5", "", "99"]),
    st.sampled_from(["1", "2", "-2", "", "7"]),
)


def _weight(text: str) -> float | None:
    """The weight a respondent's row carries, or None when it is unreadable (the loader then weighs it 1)."""
    try:
        w = float(text)
    except ValueError:
        return None
    return w if math.isfinite(w) and w >= 0 else None


@FUZZ
@given(rows=st.lists(respondent, max_size=25))
def test_every_valid_respondent_answer_is_counted_and_every_other_one_is_skipped(rows):
    """An independent tally of the weighted shares, against the loader's; invalid rows and answers are counted."""
    tally: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    negative = unknown = no_country = bad_weight = 0
    for country, weight, *answers in rows:
        if not country.strip():
            no_country += 1
            continue
        w = _weight(weight)
        bad_weight += w is None
        for qid, value in zip(OPTIONS, answers, strict=True):
            if not value or value.startswith("-"):
                negative += 1
            else:
                tally[country.strip().upper()][qid][value] += 1.0 if w is None else w
    expected, empty = {}, 0
    for country, per_q in tally.items():
        for qid, counts in per_q.items():
            unknown += sum(c not in OPTIONS[qid] for c in counts)
            valid = {c: counts[c] for c in OPTIONS[qid] if counts[c] > 0}
            if sum(valid.values()) > 0:
                expected.setdefault(country, {})[qid] = {
                    c: valid.get(c, 0) / sum(valid.values()) for c in OPTIONS[qid]
                }
            else:
                empty += 1
    with tempfile.TemporaryDirectory() as tmp:
        questions = write(Path(tmp), "questions.jsonl", QUESTIONS_JSONL)
        path = write(
            Path(tmp), "r.csv", csv_text(["B_COUNTRY_ALPHA", "W_WEIGHT", "Q1", "Q2"], [list(r) for r in rows])
        )
        survey = outcome(lambda: load_wvs_respondents(path, questions))
    if not expected:  # no valid answer at all: refused, not loaded as a survey without answers
        assert isinstance(survey, UserError) and "has no answers to the questions" in str(survey)
        return
    assert isinstance(survey, Survey)
    assert survey.distributions.keys() == expected.keys()
    for country, per_q in expected.items():
        assert survey.distributions[country].keys() == per_q.keys()
        for qid, dist in per_q.items():
            assert survey.distributions[country][qid] == pytest.approx(dist)
    assert survey.skipped["respondent without a country"] == no_country
    assert survey.skipped["respondent with an unreadable weight (weighted 1)"] == bad_weight
    assert survey.skipped["missing answer code (negative)"] == negative
    assert survey.skipped["answer code not among the question's options"] == unknown
    assert survey.skipped["question without valid answers for a country"] == empty


# --- GlobalOpinionQA ---------------------------------------------------------------------------------------------

selections = st.dictionaries(
    st.sampled_from(["Germany", "Japan", "Atlantis"]) | nasty,
    st.lists(st.floats(0, 1) | st.integers(-1, 3) | nasty, max_size=4) | json_value,
    max_size=4,
).map(lambda d: f"defaultdict(<class 'list'>, {d!r})")
goqa_row = st.tuples(nasty, selections | nasty, st.lists(nasty, max_size=4).map(repr) | nasty, nasty)


@FUZZ
@given(
    data=csv_bytes(["question", "selections", "options", "source"])
    | st.lists(goqa_row, max_size=6).map(
        lambda rows: csv_text(["question", "selections", "options", "source"], [list(r) for r in rows]).encode()
    )
)
def test_globalopinionqa_gives_a_survey_or_a_user_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "goqa.csv", data)
        result = outcome(lambda: load_globalopinionqa(path))
        via_dispatch = outcome(lambda: load_survey(path, questions=path))  # the CLI's entry point
    assert isinstance(result, Survey | UserError) and isinstance(via_dispatch, Survey | UserError)


@FUZZ
@given(
    good=st.lists(
        st.tuples(nasty, st.lists(st.integers(1, 9), min_size=2, max_size=2)).filter(lambda r: r[0].strip()),
        min_size=1,
        max_size=5,
        unique_by=lambda r: r[0].strip(),
    ),
    bad=st.lists(st.sampled_from(["[", "'one'", "['only']", "5"]), max_size=3),
)
def test_globalopinionqa_loads_every_valid_row_and_counts_the_others(good, bad):
    header = ["question", "selections", "options", "source"]
    rows = [[q, f"defaultdict(<class 'list'>, {{'Germany': {shares!r}}})", "['Yes', 'No']", "S"] for q, shares in good]
    rows += [["bad question", "{'Germany': [1, 1]}", options, "S"] for options in bad]
    with tempfile.TemporaryDirectory() as tmp:
        survey = load_globalopinionqa(write(Path(tmp), "goqa.csv", csv_text(header, rows)))
    assert len(survey.questions) == len(good)
    for q, shares in good:
        (qid,) = [k for k, v in survey.questions.items() if v.text == q.strip()]
        assert survey.distributions["DEU"][qid] == pytest.approx(
            {"1": shares[0] / sum(shares), "2": shares[1] / sum(shares)}
        )
    assert sum(survey.skipped.values()) == len(bad)


# --- BLEnD -------------------------------------------------------------------------------------------------------

blend_answer = st.fixed_dictionaries(
    {"answers": st.lists(nasty, max_size=3) | nasty | json_value, "count": json_value}
)
blend_row = st.fixed_dictionaries(
    {"id": json_value, "question": json_value}, optional={"answers": st.lists(blend_answer, max_size=3) | json_value}
)


@FUZZ
@given(data=jsonl_bytes(blend_row))
def test_blend_file_gives_questions_or_a_user_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), "UK.jsonl", data)
        skipped: Counter = Counter()
        result = outcome(lambda: load_blend(tmp, "UK", skipped))
    if not isinstance(result, UserError):
        assert all(q.answers and all(spellings for spellings, _ in q.answers) for q in result)


@FUZZ
@given(
    rows=st.lists(
        st.tuples(nasty, st.lists(st.lists(nasty, min_size=1, max_size=3), max_size=3), st.integers(1, 5)), max_size=8
    )
)
def test_blend_loads_every_answered_question_and_counts_the_unanswered(rows):
    lines = [
        json.dumps(
            {"id": i, "question": q, "answers": [{"answers": a, "count": n} for a in answers]}, ensure_ascii=False
        )
        for i, (q, answers, n) in enumerate(rows)
    ]
    answered = [
        i for i, (_, answers, _) in enumerate(rows) if any(v.strip() for a in answers for s in a for v in s.split(","))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), "UK.jsonl", "\n".join(lines))
        skipped: Counter = Counter()
        questions = load_blend(tmp, "UK", skipped)
    assert [q.id for q in questions] == [str(i) for i in answered]
    assert [q.question for q in questions] == [rows[i][0] for i in answered]  # U+2028 and braces kept verbatim
    assert skipped["question without annotated answers"] == len(rows) - len(answered)


@FUZZ
@given(names=st.lists(nasty | st.sampled_from(["uk", " South Korea", "south_korea"]), max_size=3) | nasty)
def test_blend_region_names_resolve_or_are_a_user_error(names):
    with tempfile.TemporaryDirectory() as tmp:
        for region in ("UK", "South_Korea"):
            write(Path(tmp), f"{region}.jsonl", "")
        result = outcome(lambda: resolve_regions(tmp, names))
    if not isinstance(result, UserError):
        assert set(result) <= {"UK", "South_Korea"}


# --- CulturaX ----------------------------------------------------------------------------------------------------


@FUZZ
@given(data=csv_bytes([*CULTURAX_COLUMNS, "simhash_id", "pass_hhh"]))
def test_culturax_gives_items_or_a_user_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: load_culturax(write(Path(tmp), "CulturaX.csv", data)))
    if not isinstance(result, UserError):
        items, skipped = result
        assert items and all(i.question and i.helpful and i.harmless and i.honest for i in items)


@FUZZ
@given(
    rows=st.lists(
        st.tuples(nasty, st.sampled_from(["1", "12", " 7 ", "x", "", "1.5"]), nasty, nasty, nasty, nasty), max_size=10
    ),
    encoding=st.sampled_from(["utf-8", "cp1252"]),
)
def test_culturax_accounts_for_every_row(rows, encoding):
    """Rows in = items + skipped (by reason): nothing vanishes, whatever the text or the encoding."""
    text = csv_text([*CULTURAX_COLUMNS, "pass_hhh"], [[*r, "1,1,1"] for r in rows])
    data = text.encode(encoding, errors="replace")
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: load_culturax(write(Path(tmp), "CulturaX.csv", data)))
    n_rows = sum(1 for _ in csv.reader(io.StringIO(data.decode(encoding), newline=""))) - 1
    if isinstance(result, UserError):
        # cp1252 bytes may hold a valid UTF-8 sequence ("\xa0Â\xa0" is A0 C2 A0): read as UTF-8 with a stray byte
        assert "no usable CulturaX rows" in str(result) or (encoding == "cp1252" and "otherwise UTF-8" in str(result))
        return
    items, skipped = result
    assert len(items) + sum(skipped.values()) == n_rows


@FUZZ
@given(
    rows=st.lists(st.tuples(nasty, nasty, nasty, nasty, nasty), min_size=1, max_size=6),
    at=st.floats(0, 1, exclude_max=True),
)
def test_culturax_utf8_with_a_stray_byte_is_refused_at_its_line_never_read_as_cp1252(rows, at):
    """One Latin-1 byte in a UTF-8 file: a UserError naming the byte's line, not a whole file of mojibake."""
    text = csv_text([*CULTURAX_COLUMNS, "pass_hhh"], [["\u2019 " + q, "10", *r, "1,1,1"] for q, *r in rows])
    data = text.encode("utf-8", errors="replace")
    pos = int(at * len(data))
    data = data[:pos] + b"\xe9" + data[pos:]
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: load_culturax(write(Path(tmp), "CulturaX.csv", data)))
    line = data.count(b"\n", 0, pos) + 1
    assert isinstance(result, UserError)
    assert str(result).startswith(f"line {line} of ") and "otherwise UTF-8" in str(result)


# --- Hofstede ----------------------------------------------------------------------------------------------------

HOFSTEDE_COLUMNS = ["ctr", "country", *DIMENSIONS]


@FUZZ
@given(data=csv_bytes(HOFSTEDE_COLUMNS, ";"))
def test_hofstede_gives_scores_or_a_user_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: load_hofstede(write(Path(tmp), "h.csv", data)))
    if not isinstance(result, UserError):
        for scores in result.scores.values():
            assert all(v is None or (math.isfinite(v)) for v in scores.values())


@FUZZ
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["GER", "USA", "CHI", "AFE", "", "XXX"]),
            st.sampled_from(["Germany", "U.S.A.", "China", "Africa East", "", "Atlantis"]) | nasty,
            *[st.sampled_from(["12", "#NULL!", "nan", "", "55.5", "1e999"]) for _ in DIMENSIONS],
        ),
        max_size=10,
    )
)
def test_hofstede_accounts_for_every_row(rows):
    text = csv_text(HOFSTEDE_COLUMNS, [list(r) for r in rows], ";")
    with tempfile.TemporaryDirectory() as tmp:
        result = load_hofstede(write(Path(tmp), "h.csv", text))
    n_rows = sum(1 for _ in csv.reader(io.StringIO(text, newline=""), delimiter=";")) - 1
    assert len(result.scores) + sum(result.skipped.values()) == n_rows


# --- AlignCultura query files ------------------------------------------------------------------------------------


@FUZZ
@given(
    data=jsonl_bytes(st.fixed_dictionaries({"question": json_value})) | csv_bytes(["question", "id"]),
    suffix=st.sampled_from([".jsonl", ".csv", ".txt"]),
    column=st.none() | st.sampled_from(["question", "Prompt", "nope"]),
)
def test_query_file_gives_questions_or_a_user_error(data, suffix, column):
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: read_questions(write(Path(tmp), f"q{suffix}", data), column))
    if not isinstance(result, UserError):
        questions, skipped = result
        assert all(isinstance(q, str) and q == q.strip() and q for q in questions)


@FUZZ
@given(values=st.lists(nasty | st.integers() | st.none(), max_size=10))
def test_query_file_accounts_for_every_line(values):
    lines = [json.dumps({"question": v}, ensure_ascii=False) for v in values]
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: read_questions(write(Path(tmp), "q.jsonl", "\n".join(lines))))
    if isinstance(result, UserError):
        assert not values  # only an empty file has no question column
        return
    questions, skipped = result
    assert questions == [v.strip() for v in values if isinstance(v, str) and v.strip()]
    assert len(questions) + sum(skipped.values()) == len(values)


# --- individual-level respondents (CLCA) -------------------------------------------------------------------------


@FUZZ
@given(data=csv_bytes(["B_COUNTRY_ALPHA", "Q1", "Q2", "Q262"]))
def test_individual_respondents_give_a_list_or_a_user_error(data):
    questions = {q: SurveyQuestion(q, "", q, dict.fromkeys(OPTIONS.get(q, []), "x")) for q in ("Q1", "Q2", "Q262")}
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: load_respondents(write(Path(tmp), "r.csv", data), questions))
    if not isinstance(result, UserError):
        for r in result:
            assert all(qid == "Q262" or code in questions[qid].options for qid, code in r.answers.items())


# --- training data -----------------------------------------------------------------------------------------------

message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]) | json_value, "content": json_value}
)


@FUZZ
@given(data=jsonl_bytes(st.fixed_dictionaries({"messages": st.lists(message, max_size=3) | json_value})))
def test_training_data_gives_samples_or_a_user_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        result = outcome(lambda: read_training_data(write(Path(tmp), "train.jsonl", data)))
    if not isinstance(result, UserError):
        assert all(s.messages[-1]["role"] == "assistant" for s in result)


@FUZZ
@given(
    chats=st.lists(
        st.tuples(nasty, nasty, st.dictionaries(st.sampled_from(["culture", "view"]), nasty, max_size=2)), max_size=5
    )
)
def test_valid_training_data_loads_verbatim(chats):
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], **meta}
        for q, a, meta in chats
    ]
    with tempfile.TemporaryDirectory() as tmp:
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
        samples = read_training_data(write(Path(tmp), "train.jsonl", text))
    assert [{"messages": s.messages, **s.meta} for s in samples] == rows


def test_missing_files_are_user_errors(tmp_path):
    missing = tmp_path / "nope"
    loaders: list[Callable[[], Any]] = [
        lambda: load_survey(missing),
        lambda: load_wvs_folder(missing),
        lambda: load_wvs_respondents(missing, missing),
        lambda: load_globalopinionqa(missing),
        lambda: load_blend(tmp_path, "Nowhere"),
        lambda: load_culturax(missing),
        lambda: load_hofstede(missing),
        lambda: read_questions(missing),
        lambda: load_respondents(missing, {}),
        lambda: read_training_data(missing),
    ]
    for load in loaders:
        assert isinstance(outcome(load), UserError)


def test_a_bad_byte_is_reported_at_its_own_line_by_every_csv_loader(tmp_path):
    """Not the line a chunked decoder had reached ("near line 404" for a bad byte on line 501)."""

    def body(row: str, bad: str) -> bytes:
        rows = [row] * 2000
        rows[1499] = bad  # line 1501, after the header
        return "".join(rows).encode("latin-1")

    questions = write(tmp_path, "questions.jsonl", QUESTIONS_JSONL)
    header = b"country,question,answer,proportion\n"
    write(tmp_path, "distributions.csv", header + body("DEU,Q1,1,0.5\n", "DEU,Q1,caf\xe9,0.5\n"))
    respondents = write(tmp_path, "r.csv", b"B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q2\n" + body("DEU,1,1,2\n", "DEU,1,\xe9,2\n"))
    parsed = {q: SurveyQuestion(q, "", q, dict.fromkeys(v, "x")) for q, v in OPTIONS.items()}
    loaders: list[Callable[[], Any]] = [
        lambda: load_wvs_folder(tmp_path),
        lambda: load_wvs_respondents(respondents, questions),
        lambda: load_respondents(respondents, parsed),  # a stream read through textfile.csv_errors
    ]
    for load in loaders:
        result = outcome(load)
        assert isinstance(result, UserError) and str(result).startswith("line 1501 of "), result


def test_deeply_nested_json_is_a_user_error_not_a_recursion_error(tmp_path):
    deep = "[" * 100_000 + "\n"
    write(tmp_path, "questions.jsonl", deep)
    write(tmp_path, "distributions.csv", GOOD_DIST)
    write(tmp_path, "UK.jsonl", deep)
    assert isinstance(outcome(lambda: load_wvs_folder(tmp_path)), UserError)
    assert isinstance(outcome(lambda: load_blend(tmp_path, "UK")), UserError)
    assert read_questions(write(tmp_path, "q.jsonl", deep + '{"question": "kept"}\n'))[0] == ["kept"]
