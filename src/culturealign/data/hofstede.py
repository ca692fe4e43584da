"""Hofstede's six cultural dimensions (country scores, 0-100), matched to the culture registry.

The published file (``6-dimensions-2015-08-16.csv``) is semicolon-separated ``ctr;country;pdi;idv;mas;uai;
ltowvs;ivr`` with ``#NULL!`` for a missing score, and uses Hofstede's own three-letter codes (``GER``,
``CHI``), so rows are matched to ISO alpha-3 cultures by country name first (with a few aliases), and by code
only when the code is an ISO code whose country name starts like the row's. Unmatched rows are counted.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from culturealign.cultures import all_cultures
from culturealign.errors import UserError
from culturealign.textfile import csv_errors

DIMENSIONS = ("pdi", "idv", "mas", "uai", "ltowvs", "ivr")
FILE_NAME = "6-dimensions-2015-08-16.csv"
ALIASES = {
    "great britain": "GBR",
    "u.s.a.": "USA",
    "korea south": "KOR",
    "south korea": "KOR",
    "czech rep": "CZE",
    "slovak rep": "SVK",
    "taiwan": "TWN",
    "viet nam": "VNM",
    "iran": "IRN",
    "dominican rep": "DOM",
}


@dataclass
class Hofstede:
    """Scores per culture (alpha-3 -> dimension -> score or None) and what could not be matched."""

    scores: dict[str, dict[str, float | None]]
    skipped: Counter = field(default_factory=Counter)


def _match(code: str, name: str, by_name: dict[str, str], iso: dict[str, str]) -> str | None:
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    if key in by_name:
        return by_name[key]
    if code in iso and iso[code].lower()[:4] == key[:4]:
        return code
    return None


def load_hofstede(path: str | Path) -> Hofstede:
    """Read the Hofstede country file (or the folder holding it); rows whose country is not known are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    try:
        text = path.read_text("utf-8-sig", errors="replace")
    except OSError as e:
        raise UserError(f"cannot read Hofstede scores from {path}: {e.strerror}; pass hofstede=PATH or null") from e
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=";", restval="")
    with csv_errors(path, reader):
        rows = list(reader)
    missing = {"ctr", "country", *DIMENSIONS} - set(reader.fieldnames or ())
    if missing:
        raise UserError(
            f"{path} lacks columns {', '.join(sorted(missing))}: expected ctr;country;{';'.join(DIMENSIONS)}"
        )
    cultures = all_cultures()
    by_name = {c.name.lower(): c.code for c in cultures}
    iso = {c.code: c.name for c in cultures}
    out = Hofstede({})
    for row in rows:
        code = _match(row["ctr"].strip().upper(), row["country"], by_name, iso)
        if code is None:
            out.skipped["country not in the culture registry"] += 1
            continue
        scores: dict[str, float | None] = {}
        for dim in DIMENSIONS:
            value = (row.get(dim) or "").strip()
            try:
                score: float | None = float(value)
            except ValueError:
                score = None  # "#NULL!": no score published (nan and inf are no scores either)
            scores[dim] = score if score is not None and math.isfinite(score) else None
        if code in out.scores:  # the first row of a country wins over regional sub-rows
            out.skipped["another row for the same country (first kept)"] += 1
        else:
            out.scores[code] = scores
    return out
