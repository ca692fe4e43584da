"""The survey model (coded questions + per-country answer distributions) and WVS loaders.

Two WVS layouts are read: the aggregate folder (``questions.jsonl``, ``distributions.csv``,
``countries.csv``, optional ``country_similarity.json``) and the official respondent-level Wave 7 CSV
(weighted shares, negative missing codes dropped). Shares are always renormalized over the question's valid
codes, because the published aggregates leave missing answers in the denominator.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from culturealign.cultures import register_countries_csv
from culturealign.errors import UserError
from culturealign.records import SurveyQuestion

Distribution = dict[str, float]


@dataclass
class Survey:
    """Questions by id and, per country (alpha-3), the renormalized answer shares per question."""

    questions: dict[str, SurveyQuestion]
    distributions: dict[str, dict[str, Distribution]]
    skipped: Counter = field(default_factory=Counter)
    similarity_path: Path | None = None
    source: str = ""

    @property
    def countries(self) -> list[str]:
        return sorted(self.distributions)

    def answered(self, country: str) -> list[SurveyQuestion]:
        """Questions with answer shares for ``country``, in survey order."""
        dists = self.distributions.get(country, {})
        return [q for qid, q in self.questions.items() if qid in dists]

    def topics(self) -> list[str]:
        return sorted({q.topic for q in self.questions.values()})


def _normalize(counts: dict[str, float], question: SurveyQuestion, skipped: Counter) -> Distribution | None:
    valid = {c: v for c, v in counts.items() if c in question.options and v > 0}
    total = sum(valid.values())
    if total <= 0 or not math.isfinite(total):
        skipped["question without valid answers for a country"] += 1
        return None
    return {c: valid.get(c, 0.0) / total for c in question.options}


def _code(value: str) -> str:
    """Answer codes as strings without float noise: '3.0' -> '3'."""
    value = value.strip()
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if f == int(f) else value


def load_questions(path: str | Path) -> dict[str, SurveyQuestion]:
    """Read ``questions.jsonl``: one question a line with id, topic, text, options (code -> label), scale."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"survey questions file not found: {path}; pass the folder that holds questions.jsonl")
    questions: dict[str, SurveyQuestion] = {}
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = SurveyQuestion(
                id=str(row["id"]),
                topic=str(row.get("topic", "")),
                text=str(row["text"]),
                options={_code(str(k)): str(v) for k, v in row["options"].items()},
                scale=str(row.get("scale", "categorical")),
            )
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as e:
            raise UserError(f"line {n} of {path} is not a question ({e!r}): each line needs id, text, options") from e
        questions[q.id] = q
    if not questions:
        raise UserError(f"{path} holds no questions")
    return questions


def load_wvs_folder(path: str | Path) -> Survey:
    """Load the aggregate WVS layout (see ``../shared/data/README.md``) from a folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"survey folder not found: {folder}; pass a folder with questions.jsonl and distributions.csv")
    questions = load_questions(folder / "questions.jsonl")
    if (folder / "countries.csv").is_file():
        register_countries_csv(folder / "countries.csv")
    dist_path = folder / "distributions.csv"
    if not dist_path.is_file():
        raise UserError(f"{dist_path} not found: the survey folder needs country,question,answer,proportion rows")
    skipped: Counter = Counter()
    raw: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    with dist_path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"country", "question", "answer", "proportion"} - set(reader.fieldnames or [])
        if missing:
            raise UserError(
                f"{dist_path} lacks columns {sorted(missing)}: expected country,question,answer,proportion"
            )
        for n, row in enumerate(reader, 2):
            try:
                share = float(row["proportion"])
            except (TypeError, ValueError) as e:
                raise UserError(f"line {n} of {dist_path}: proportion {row['proportion']!r} is not a number") from e
            if row["question"] not in questions:
                skipped["row for a question not in questions.jsonl"] += 1
                continue
            raw[row["country"].strip().upper()][row["question"]][_code(row["answer"])] = share
    distributions = _finish(raw, questions, skipped)
    sim = folder / "country_similarity.json"
    return Survey(questions, distributions, skipped, sim if sim.is_file() else None, str(folder))


def _finish(raw, questions: dict[str, SurveyQuestion], skipped: Counter) -> dict[str, dict[str, Distribution]]:
    out: dict[str, dict[str, Distribution]] = {}
    for country, per_q in raw.items():
        for qid, counts in per_q.items():
            dist = _normalize(counts, questions[qid], skipped)
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
    comes from a ``questions.jsonl`` (the CSV carries codes only).
    """
    csv_path = Path(csv_path)
    questions = load_questions(questions_path)
    if not csv_path.is_file():
        raise UserError(f"respondent file not found: {csv_path}; download WVS Wave 7 (CSV) from worldvaluessurvey.org")
    skipped: Counter = Counter()
    raw: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        header = f.readline()
        f.seek(0)
        delimiter = max(",;\t", key=header.count)  # the official file is wide: sniff the header line only
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = set(reader.fieldnames or [])
        if country_column not in columns:
            raise UserError(
                f"{csv_path} has no {country_column!r} column: pass country_column= the ISO alpha-3 column"
            )
        asked = [qid for qid in questions if qid in columns]
        if not asked:
            raise UserError(f"{csv_path} has no column named like the question ids of {questions_path} (e.g. Q57)")
        for row in reader:
            country = row[country_column].strip().upper()
            try:
                weight = float(row[weight_column]) if weight_column in columns else 1.0
            except ValueError:
                weight = 1.0
            for qid in asked:
                value = (row[qid] or "").strip()
                if not value or value.startswith("-"):
                    skipped["missing answer code (negative)"] += 1
                    continue
                raw[country][qid][_code(value)] += weight
    return Survey(questions, _finish(raw, questions, skipped), skipped, None, str(csv_path))


def write_survey_folder(survey: Survey, folder: str | Path) -> Path:
    """Write a survey in the aggregate layout, so that a respondent file is converted once."""
    from culturealign.cultures import get_culture

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in survey.questions.values():
            row = {"id": q.id, "topic": q.topic, "text": q.text, "options": q.options, "scale": q.scale}
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


def load_survey(path: str | Path, questions: str | Path | None = None) -> Survey:
    """Load a survey from an aggregate folder, a respondent CSV (with ``questions``) or a GlobalOpinionQA CSV."""
    path = Path(path)
    if path.is_dir():
        return load_wvs_folder(path)
    if not path.exists():
        raise UserError(f"survey not found: {path}; pass a WVS folder (questions.jsonl + distributions.csv) or a CSV")
    with path.open(encoding="utf-8-sig") as f:
        header = f.readline()
    if "selections" in header and "options" in header:
        from culturealign.data.goqa import load_globalopinionqa

        return load_globalopinionqa(path)
    if questions is None:
        raise UserError(f"{path} looks like a respondent file: also pass --questions questions.jsonl")
    return load_wvs_respondents(path, questions)
