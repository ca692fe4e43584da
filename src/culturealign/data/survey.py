"""The survey model (coded questions + per-country answer distributions) and WVS loaders.

Two WVS layouts are read: the aggregate folder (``questions.jsonl``, ``distributions.csv``,
``countries.csv``, optional ``country_similarity.json``) and the official respondent-level Wave 7 CSV
(weighted shares, negative missing codes dropped). Shares are always renormalized over the question's valid
codes, because the published aggregates leave missing answers in the denominator.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from culturealign.cultures import ALPHA3, load_similarity, register_countries_csv
from culturealign.data.base import INTEGER_CODE, Distribution, Survey, answer_code, normalize_shares
from culturealign.data.goqa import load_globalopinionqa
from culturealign.errors import UserError
from culturealign.records import SurveyQuestion
from culturealign.textfile import csv_dicts, read_text

log = logging.getLogger(__name__)
SUM_TOLERANCE = 0.05  # |sum of a country's raw shares for a question - 1| above this is reported (not refused)


def load_questions(path: str | Path) -> dict[str, SurveyQuestion]:
    """Read ``questions.jsonl``: one question a line with id, topic, text, options (code -> label), scale and an
    optional ``ordinal`` (true/false: whether the options are an ordered scale; absent, ``is_ordinal`` infers it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"survey questions file not found: {path}; pass the folder that holds questions.jsonl")
    questions: dict[str, SurveyQuestion] = {}
    first_line: dict[str, int] = {}
    # split on "\n" only: splitlines() also breaks at U+2028 or U+0085, which JSON strings may hold unescaped (as
    # write_survey_folder writes them)
    for n, line in enumerate(read_text(path, "the survey questions").split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = SurveyQuestion(
                id=str(row["id"]),
                topic=str(row.get("topic", "")),
                text=str(row["text"]),
                options={answer_code(str(k)): str(v) for k, v in row["options"].items()},
                scale=str(row.get("scale", "categorical")),
                ordinal=row.get("ordinal"),
            )
            if len(q.options) < len(row["options"]):
                raise ValueError(f"two option codes are one number ({', '.join(map(str, row['options']))})")
            if q.ordinal is not None and not isinstance(q.ordinal, bool):
                raise ValueError(f"'ordinal' is {q.ordinal!r}: write true or false, or leave it out to infer it")
            if q.ordinal and not all(INTEGER_CODE.fullmatch(c) for c in q.options):
                raise ValueError(f"'ordinal' is true but the codes {', '.join(q.options)} are not whole numbers")
        except (ValueError, KeyError, AttributeError, TypeError, RecursionError) as e:  # JSON, shape
            raise UserError(f"line {n} of {path} is not a question ({e!r}): each line needs id, text, options") from e
        if q.id in first_line:  # a silent overwrite would drop the first question
            raise UserError(
                f"line {n} of {path} repeats question id {q.id!r} (line {first_line[q.id]}): ids must be unique"
            )
        first_line[q.id] = n
        questions[q.id] = q
    if not questions:
        raise UserError(f"{path} holds no questions")
    return questions


def load_wvs_folder(path: str | Path) -> Survey:
    """Load the aggregate WVS layout (see ``../shared/data/README.md``) from a folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"survey folder not found: {folder}; {GET_A_SURVEY}")
    questions = load_questions(folder / "questions.jsonl")
    if (folder / "countries.csv").is_file():
        register_countries_csv(folder / "countries.csv")
    dist_path = folder / "distributions.csv"
    if not dist_path.is_file():
        raise UserError(f"{dist_path} not found: the survey folder needs country,question,answer,proportion rows")
    skipped: Counter = Counter()
    raw: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    header, rows = csv_dicts(dist_path, read_text(dist_path, "distributions.csv"))
    missing = {"country", "question", "answer", "proportion"} - set(header)
    if missing:
        raise UserError(f"{dist_path} lacks columns {sorted(missing)}: expected country,question,answer,proportion")
    n_rows = 0
    for n, row in rows:
        n_rows += 1
        try:
            share = float(row["proportion"])
        except ValueError:
            share = math.nan
        if not 0 <= share <= 1:  # a percentage or a count would be renormalized into a plausible, wrong share
            raise UserError(
                f"line {n} of {dist_path}: proportion {row['proportion']!r} is not a share from 0 to 1; write each "
                "answer's share of respondents as a fraction (0.25, not 25)"
            )
        if row["question"] not in questions:
            skipped["row for a question not in questions.jsonl"] += 1
            continue
        country, code = row["country"].strip().upper(), answer_code(row["answer"])
        if not country:
            skipped["row without a country"] += 1
            continue
        if not ALPHA3.fullmatch(country):
            raise UserError(
                f"line {n} of {dist_path}: country {row['country']!r} is not an ISO 3166 alpha-3 code (three "
                "letters A-Z, e.g. DEU); fix that line"
            )
        if code in raw[country][row["question"]]:
            skipped["repeated country, question and answer (last kept)"] += 1
        raw[country][row["question"]][code] = share
    if not n_rows:
        raise UserError(
            f"{dist_path} has a header but no data rows: add one country,question,answer,proportion row per answer"
        )
    notes = [note] if (note := _sums_note(raw, dist_path)) else []
    distributions = _finish(raw, questions, skipped)
    if not distributions:
        raise UserError(
            f"{dist_path} has no answer shares for the questions of questions.jsonl ({_skips(skipped)}): use the same "
            "question ids and answer codes in both files"
        )
    sim = folder / "country_similarity.json"
    if sim.is_file():
        try:  # read it now, so that a broken table fails here and not in the middle of a cross-culture run
            load_similarity(sim)
        except (AttributeError, TypeError, ValueError) as e:  # not a mapping of mappings of numbers; bad bytes
            raise UserError(
                f"{sim} must map each country code to {{country code: similarity 0-100}} ({type(e).__name__}: "
                f"{' '.join(str(e).split())[:80]}); fix it or remove it"
            ) from e
    return Survey(questions, distributions, skipped, sim if sim.is_file() else None, str(folder), notes)


def _sums_note(raw: dict[str, dict[str, dict[str, float]]], path: Path) -> str:
    """Say once per file how many (country, question) shares sum far from 1: renormalizing hides a wrong file.

    Raw WVS shares leave missing answers in the denominator and sum to less than 1 (as low as 0.23 in the dev copy),
    so this is a note shown with the results (``Survey.notes``, ``survey_notes`` in metrics.json), not an error;
    ``SUM_TOLERANCE`` keeps rounding to a few decimals quiet.
    """
    sums = [math.fsum(shares.values()) for per_q in raw.values() for shares in per_q.values()]
    off = [t for t in sums if abs(t - 1) > SUM_TOLERANCE]
    if not off:
        return ""
    note = (
        f"{len(off)} of {len(sums)} answer distributions (country, question) in {path.name} have shares summing to "
        f"{min(off):.3g}-{max(off):.3g}, not 1 (+-{SUM_TOLERANCE}): renormalized over the valid answer codes"
    )
    log.info("%s", note)
    return note


def _skips(skipped: Counter) -> str:
    return "; ".join(f"{reason}: {n}" for reason, n in skipped.items()) or "nothing skipped"


def _finish(raw, questions: dict[str, SurveyQuestion], skipped: Counter) -> dict[str, dict[str, Distribution]]:
    out: dict[str, dict[str, Distribution]] = {}
    for country, per_q in raw.items():
        for qid, counts in per_q.items():
            dist = normalize_shares(counts, questions[qid], skipped)
            if dist is not None:
                out.setdefault(country, {})[qid] = dist
    return out


def load_wvs_respondents(
    csv_path: str | Path,
    questions_path: str | Path,
    country_column: str = "B_COUNTRY_ALPHA",
    weight_column: str = "W_WEIGHT",
) -> Survey:
    """Weighted country shares from the official WVS Wave 7 respondent-level CSV.

    The CSV has one respondent a row, a country column (ISO alpha-3), a weight column and one column per
    question code (``Q57``); negative codes are WVS missing codes and are dropped. The questionnaire text
    comes from a ``questions.jsonl`` (the CSV carries codes only). Respondents without a country are skipped;
    an unreadable weight counts as 1; both are counted.
    """
    csv_path = Path(csv_path)
    questions = load_questions(questions_path)
    skipped: Counter = Counter()
    raw: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    columns, rows = respondent_rows(csv_path, country_column, skipped)
    asked = [qid for qid in questions if qid in columns]
    if not asked:
        raise UserError(f"{csv_path} has no column named like the question ids of {questions_path} (e.g. Q57)")
    for country, row in rows:
        weight = _weight(row.get(weight_column), skipped) if weight_column in columns else 1.0
        for qid in asked:
            value = row[qid].strip()
            if not value or value.startswith("-"):
                skipped["missing answer code (negative)"] += 1
                continue
            raw[country][qid][answer_code(value)] += weight
    distributions = _finish(raw, questions, skipped)
    if not distributions:
        raise UserError(
            f"{csv_path} has no answers to the questions of {questions_path} ({_skips(skipped)}): it needs one "
            "respondent a row, with answer codes in the question columns"
        )
    return Survey(questions, distributions, skipped, None, str(csv_path))


def respondent_rows(
    csv_path: str | Path, country_column: str, skipped: Counter
) -> tuple[set[str], Iterator[tuple[str, dict[str, str]]]]:
    """The one reader of WVS respondent files (``build-survey``, the map, CLCA's individual level): its columns and
    ``(country, row)`` per respondent.

    Comma, semicolon or tab separated (told from the header: the official file is wide), UTF-8; the country column
    must hold ISO 3166 alpha-3 codes (a code becomes a file name); respondents without a country are skipped and
    counted in ``skipped``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(f"respondent file not found: {csv_path}; download WVS Wave 7 (CSV) from worldvaluessurvey.org")
    text = read_text(csv_path, "the WVS respondent file")
    end = text.find("\n")
    delimiter = max(",;\t", key=text[: end if end >= 0 else None].count)
    header, rows = csv_dicts(csv_path, text, delimiter=delimiter)
    if country_column not in header:
        raise UserError(f"{csv_path} has no {country_column!r} column: pass country_column= the ISO alpha-3 column")

    def each() -> Iterator[tuple[str, dict[str, str]]]:
        for n, row in rows:
            country = row[country_column].strip().upper()
            if not country:
                skipped["respondent without a country"] += 1
                continue
            if not ALPHA3.fullmatch(country):
                raise UserError(
                    f"line {n} of {csv_path}: country {row[country_column]!r} is not an ISO 3166 alpha-3 code "
                    "(three letters A-Z, e.g. DEU); pass country_column= the alpha-3 column (B_COUNTRY_ALPHA) or fix "
                    "that line"
                )
            yield country, row

    return set(header), each()


def _weight(text: str | None, skipped: Counter) -> float:
    """A respondent's survey weight; one that is not a finite number >= 0 counts as 1 (and is counted)."""
    try:
        weight = float(text or "")
    except ValueError:
        weight = math.nan
    if math.isfinite(weight) and weight >= 0:
        return weight
    skipped["respondent with an unreadable weight (weighted 1)"] += 1
    return 1.0


def write_survey_folder(survey: Survey, folder: str | Path) -> Path:
    """Write a survey in the aggregate layout, so that a respondent file is converted once."""
    from culturealign.cultures import get_culture

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in survey.questions.values():
            row = {"id": q.id, "topic": q.topic, "text": q.text, "options": q.options, "scale": q.scale}
            if q.ordinal is not None:  # what the user set; an inferred value is inferred again when read back
                row["ordinal"] = q.ordinal
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (folder / "distributions.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["country", "question", "answer", "proportion"])
        for country in survey.countries:
            for qid, dist in survey.distributions[country].items():
                for code, p in dist.items():
                    w.writerow([country, qid, code, f"{p:.6f}"])
    with (folder / "countries.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "culture", "region"])
        for country in survey.countries:
            try:
                c = get_culture(country)
                w.writerow([c.code, c.name, c.adjective, c.region])
            except UserError:
                w.writerow([country, country, country, ""])
    return folder


GET_A_SURVEY = (
    "get one with `culturealign data get globalopinionqa --out DIR`, or `culturealign build-survey --respondents "
    "WVS_Wave_7.sav --out DIR` (the official SPSS/Stata download), or pass a folder of questions.jsonl + "
    "distributions.csv"
)


def load_survey(path: str | Path, questions: str | Path | None = None) -> Survey:
    """Load a survey from an aggregate folder, a respondent CSV (with ``questions``) or a GlobalOpinionQA CSV."""
    path = Path(path)
    if path.is_dir():
        return load_wvs_folder(path)
    if not path.exists():
        raise UserError(f"survey not found: {path}; {GET_A_SURVEY}")
    with path.open(encoding="utf-8-sig", errors="replace") as f:  # only a sniff: the loader reports bad bytes
        header = f.readline()
    if "selections" in header and "options" in header:
        return load_globalopinionqa(path)
    if questions is None:
        raise UserError(f"{path} looks like a respondent file: also pass --questions questions.jsonl")
    return load_wvs_respondents(path, questions)
