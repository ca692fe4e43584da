"""Culture registry keyed by ISO 3166 alpha-3 code.

A built-in table (``resources/cultures.csv``: every WVS Wave 7 country and more) that a survey's own
``countries.csv`` extends or overrides. Cultures are what prompts name ("a person with a German cultural
background"), so each carries an adjective as well as a name.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from culturealign.errors import UserError
from culturealign.textfile import csv_dicts, decode_text


@dataclass(frozen=True)
class Culture:
    code: str  # ISO 3166 alpha-3
    name: str
    adjective: str
    region: str


# What a culture code from data must look like: it names per-culture files, so "../x" must not pass.
ALPHA3 = re.compile(r"[A-Z]{3}")


def _read_rows(rows: Iterable[tuple[int, dict[str, str]]], source: str | Path) -> dict[str, Culture]:
    out = {}
    for line, row in rows:
        code = row["code"].strip().upper()
        if not ALPHA3.fullmatch(code):
            raise UserError(
                f"line {line} of {source}: culture code {row['code']!r} is not an ISO 3166 alpha-3 code (three "
                "letters A-Z, e.g. DEU); fix or remove that line"
            )
        name, adjective = row["name"].strip(), row["culture"].strip()
        if not (name and adjective):  # prompts name both
            raise UserError(
                f"line {line} of {source}: culture {code!r} has no name or no culture (adjective, e.g. German); "
                "fill in code,name,culture,region"
            )
        out[code] = Culture(code, name, adjective, (row.get("region") or "").strip())
    return out


_TABLE = resources.files("culturealign.resources").joinpath("cultures.csv").read_text("utf-8")
_BUILTIN = _read_rows(enumerate(csv.DictReader(io.StringIO(_TABLE)), 2), "the built-in cultures.csv")
_registry: dict[str, Culture] = dict(_BUILTIN)


def register_countries_csv(path: str | Path) -> list[str]:
    """Add or override cultures from a survey's ``countries.csv`` (code,name,culture,region); returns codes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read cultures from {path}: {e.strerror or e}; pass a survey's countries.csv") from e
    header, rows = csv_dicts(path, decode_text(raw, path, "countries.csv"))
    missing = [c for c in ("code", "name", "culture") if c not in header]
    if header and missing:
        raise UserError(f"{path} lacks columns {missing}: it needs columns code,name,culture,region")
    found = _read_rows(rows, path)
    _registry.update(found)
    return list(found)


def get_culture(code: str) -> Culture:
    """Look up a culture by alpha-3 code (case-insensitive) or exact country name."""
    key = code.strip().upper()
    if key in _registry:
        return _registry[key]
    for culture in _registry.values():
        if culture.name.lower() == code.strip().lower():
            return culture
    names = {c.name.upper(): c.code for c in _registry.values()}
    close = difflib.get_close_matches(key, list(_registry), n=3, cutoff=0.3)
    close += [names[n] for n in difflib.get_close_matches(key, list(names), n=2, cutoff=0.6)]
    hint = ", ".join(dict.fromkeys(close)) or "see `culturealign cultures`"
    raise UserError(f"unknown culture {code!r}: use an ISO 3166 alpha-3 code (closest: {hint})")


def parse_cultures(codes: str | list[str]) -> list[Culture]:
    """Parse ``"DEU,CHN"`` or a list into cultures, failing on the first unknown code."""
    items = codes.split(",") if isinstance(codes, str) else codes
    return [get_culture(c) for c in items if c.strip()]


def all_cultures() -> list[Culture]:
    return sorted(_registry.values(), key=lambda c: c.code)


def load_similarity(path: str | Path) -> dict[str, dict[str, float]]:
    """Pairwise culture similarity (0-100) as in the survey's ``country_similarity.json``."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read culture similarity from {path}: {e}") from e
    return {a.upper(): {b.upper(): float(v) for b, v in row.items()} for a, row in data.items()}


def related_cultures(code: str, similarity: dict[str, dict[str, float]], k: int = 3) -> tuple[list[str], list[str]]:
    """The k most similar and k most different cultures to ``code`` (codes), from a similarity table."""
    row = similarity.get(code.upper(), {})
    ranked = sorted((c for c in row if c != code.upper()), key=lambda c: -row[c])
    return ranked[:k], ranked[::-1][:k]
