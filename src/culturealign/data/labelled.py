"""WVS Wave 7 respondent files that carry their own labels (SPSS ``.sav``, Stata ``.dta``): a survey with no
hand-written question list.

The official CSV holds answer codes only (``survey.load_wvs_respondents`` takes the questions from a
``questions.jsonl``); the SPSS and Stata files also hold each variable's label (the item's text) and value labels
(its options), so both come from the file itself:

- items are the columns named like WVS Wave 7 items, ``Q`` + number 1-290 with an optional letter or ``_`` suffix
  (``Q57``, ``Q234A``, ``Q82_EU``; any case), topic by number (``WVS7_TOPICS``); every other column is ignored;
- an item's options are its value labels for codes >= 0 (negative codes are WVS missing codes: don't know, no
  answer, not asked), plus the unlabelled whole codes that respondents gave between its lowest and highest labelled
  code: a 1-10 scale whose file labels only its ends keeps its answers 2-9 (labelled "2" .. "9");
- an item without a valid value label (age, year of birth) or without a variable label is left out and counted;
- shares are weighted by ``weight_column`` (unweighted, with a note, when the file has none); negative codes,
  empty answers and SPSS user-missing values are missing; Demographics (Q260-Q290) are kept as questions without
  shares, as in ``../shared/data/wvs7``: they describe respondents, not opinions to align a model with.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyreadstat

from culturealign.cultures import ALPHA3
from culturealign.data.base import Survey, answer_code, normalize_shares
from culturealign.errors import UserError
from culturealign.records import SurveyQuestion

ITEM = re.compile(r"Q(\d+)(?:[A-Z]|_[A-Z0-9]+)?", re.IGNORECASE)
# WVS Wave 7 master questionnaire sections by item number (first, last, topic): the topics of ../shared/data/wvs7
WVS7_TOPICS = (
    (1, 45, "Social Values, Attitudes & Stereotypes"),
    (46, 56, "Happiness and Well-being"),
    (57, 105, "Social Capital, Trust & Organizational Membership"),
    (106, 111, "Economic Values"),
    (112, 120, "Corruption"),
    (121, 130, "Migration"),
    (131, 151, "Security"),
    (152, 157, "Postmaterialist Index"),
    (158, 163, "Science & Technology"),
    (164, 175, "Religious Values"),
    (176, 198, "Ethical Values and Norms"),
    (199, 234, "Political Interest & Political Participation"),
    (235, 259, "Political Culture & Political Regimes"),
    (260, 290, "Demographics"),
)
NO_SHARES = "Demographics"
READERS = {
    ".sav": (pyreadstat.read_sav, "SPSS"),
    ".zsav": (pyreadstat.read_sav, "SPSS"),
    ".dta": (pyreadstat.read_dta, "Stata"),
}
CHUNK_ROWS = 20_000  # rows read at once: the official file has ~97,000 respondents and ~600 columns


def wvs7_topic(column: str) -> str | None:
    """The WVS Wave 7 topic of an item column (``Q57`` -> "Social Capital, ..."); None when it is not an item."""
    m = ITEM.fullmatch(column)
    if not m:
        return None
    number = int(m.group(1))
    return next((topic for first, last, topic in WVS7_TOPICS if first <= number <= last), None)


def load_labelled_respondents(
    path: str | Path, country_column: str = "B_COUNTRY_ALPHA", weight_column: str = "W_WEIGHT"
) -> Survey:
    """Questions and weighted per-country answer shares from a WVS respondent file in SPSS or Stata format.

    ``country_column`` must hold ISO 3166 alpha-3 codes (respondents without one are skipped and counted);
    ``weight_column`` the survey weights (one that is not a finite number >= 0 counts as 1, and is counted).
    See the module docstring for which columns are items and how their options are read.
    """
    path = Path(path)
    read, kind = _reader(path)
    try:
        _, meta = read(path, metadataonly=True)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as e:
        raise UserError(f"{path} is not a readable {kind} file ({e}): download or export it again") from e
    if country_column not in meta.column_names:
        raise UserError(
            f"{path} has no {country_column!r} column: pass country_column= the column of ISO alpha-3 country codes"
        )
    skipped: Counter = Counter()
    items: dict[str, tuple[str, str, dict[float, str]]] = {}  # column -> (topic, text, labels of valid codes)
    for column in meta.column_names:
        topic = wvs7_topic(column)
        if topic is None:
            continue
        value_labels = meta.variable_value_labels.get(column) or {}
        labels = {v: str(s) for v, s in value_labels.items() if isinstance(v, int | float) and v >= 0}
        text = _text(column, meta.column_names_to_labels.get(column))
        if not labels:
            skipped["item without value labels for its answers (a number: age, year)"] += 1
        elif not text:
            skipped["item without a variable label (no question text)"] += 1
        else:
            items[column] = (topic, text, labels)
    if not items:
        raise UserError(
            f"{path} has no item columns with labels (named Q1 .. Q290, with value labels): pass the WVS Wave 7 "
            "respondent file, or its CSV with a questions.jsonl (load_wvs_respondents)"
        )
    notes = []
    weighted = weight_column in meta.column_names
    if not weighted:
        notes.append(f"{path.name} has no {weight_column!r} column: answer shares are unweighted")
    asked = [c for c, (topic, _, _) in items.items() if topic != NO_SHARES]
    usecols = [country_column, *([weight_column] if weighted else []), *asked]
    raw: dict[str, dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for chunk, _ in pyreadstat.read_file_in_chunks(
        read, path, chunksize=CHUNK_ROWS, usecols=usecols, output_format="dict"
    ):
        _add_chunk(chunk, country_column, weight_column if weighted else None, asked, raw, skipped, path)
    skipped = +skipped  # drop the reasons that counted nothing
    questions: dict[str, SurveyQuestion] = {}
    distributions: dict[str, dict[str, dict[str, float]]] = {}
    for column, (topic, text, labels) in items.items():
        seen = {code for per_q in raw.values() for code in per_q.get(column, {})}
        q = _question(column, topic, text, labels, seen)
        questions[q.id] = q
        for country, per_q in raw.items():
            if column in per_q:
                counts = {answer_code(str(code)): w for code, w in per_q[column].items()}
                dist = normalize_shares(counts, q, skipped)
                if dist is not None:
                    distributions.setdefault(country, {})[q.id] = dist
    if not distributions:
        reasons = "; ".join(f"{r}: {n}" for r, n in skipped.items()) or "no respondents"
        raise UserError(
            f"{path} has no valid answers to its items ({reasons}): it needs one respondent a row with answer codes"
        )
    return Survey(questions, distributions, skipped, None, str(path), notes)


def _reader(path: Path) -> tuple[Callable, str]:
    if not path.is_file():
        raise UserError(
            f"respondent file not found: {path}; download WVS Wave 7 (SPSS or Stata) from worldvaluessurvey.org"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raise UserError(
            f"{path} is a CSV, which has no labels: pass a questions.jsonl with it (load_wvs_respondents), or the "
            "SPSS (.sav) or Stata (.dta) file"
        )
    if suffix not in READERS:
        raise UserError(
            f"{path} is not an SPSS (.sav) or Stata (.dta) file: pass the WVS file in one of those formats"
        )
    return READERS[suffix]


def _text(column: str, label: str | None) -> str:
    """The variable label without a leading copy of the item's code ("Q1 Important in life: Family")."""
    return re.sub(rf"^{re.escape(column)}\b[\s.:\-]*", "", (label or "").strip(), flags=re.IGNORECASE).strip()


def _question(column: str, topic: str, text: str, labels: dict[float, str], seen: set[float]) -> SurveyQuestion:
    """The item's options from its value labels, with the unlabelled whole codes answered inside their range."""
    low, high = min(labels), max(labels)
    inner = {c: answer_code(str(c)) for c in seen if low < c < high and c not in labels and float(c).is_integer()}
    codes = sorted({**labels, **inner})
    options = {answer_code(str(c)): labels.get(c, inner.get(c, "")) for c in codes}
    scale = "numeric-1-10" if list(options) == [str(i) for i in range(1, 11)] else "categorical"
    return SurveyQuestion(column.upper(), topic, text, options, scale)


def _add_chunk(
    chunk: dict[str, list],
    country_column: str,
    weight_column: str | None,
    asked: list[str],
    raw: dict[str, dict[str, dict[float, float]]],
    skipped: Counter,
    path: Path,
) -> None:
    """Add one chunk of respondents' weights to ``raw[country][column][code]``."""
    countries = [
        c.strip().upper() if isinstance(c, str) else "" if c is None else answer_code(str(c))  # 276.0 -> "276"
        for c in chunk[country_column]
    ]
    for value in set(countries) - {""}:
        if not ALPHA3.fullmatch(value):
            raise UserError(
                f"{path}: country {value!r} in {country_column!r} is not an ISO 3166 alpha-3 code (three letters A-Z, "
                "e.g. DEU); pass country_column= the alpha-3 column (B_COUNTRY_ALPHA)"
            )
    names, cidx = np.unique(np.array(countries, dtype=object), return_inverse=True)
    has_country = np.array(countries, dtype=object) != ""
    skipped["respondent without a country"] += int((~has_country).sum())
    weights = np.ones(len(countries))
    if weight_column is not None:
        weights = np.asarray(chunk[weight_column], dtype=float)
        bad = ~(np.isfinite(weights) & (weights >= 0))
        skipped["respondent with an unreadable weight (weighted 1)"] += int((bad & has_country).sum())
        weights[bad] = 1.0
    for column in asked:
        values = np.asarray(chunk[column], dtype=float)  # None (empty, user-missing) -> nan
        ok = has_country & np.isfinite(values) & (values >= 0)
        skipped["missing answer (negative code or empty)"] += int((has_country & ~ok).sum())
        if not ok.any():
            continue
        codes, inv = np.unique(values[ok], return_inverse=True)
        sums = np.bincount(cidx[ok] * len(codes) + inv, weights=weights[ok], minlength=len(names) * len(codes))
        for ci, ki in zip(*np.nonzero(sums.reshape(len(names), len(codes))), strict=True):
            raw[str(names[ci])][column][float(codes[ki])] += float(sums[ci * len(codes) + ki])
