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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from culturealign.errors import UserError


@dataclass(frozen=True)
class Culture:
    code: str  # ISO 3166 alpha-3
    name: str
    adjective: str
    region: str


def _read_csv(text: str) -> dict[str, Culture]:
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = row["code"].strip().upper()
        out[code] = Culture(code, row["name"].strip(), row["culture"].strip(), row.get("region", "").strip())
    return out


_BUILTIN = _read_csv(resources.files("culturealign.resources").joinpath("cultures.csv").read_text("utf-8"))
_registry: dict[str, Culture] = dict(_BUILTIN)


def register_countries_csv(path: str | Path) -> list[str]:
    """Add or override cultures from a survey's ``countries.csv`` (code,name,culture,region); returns codes."""
    path = Path(path)
    try:
        found = _read_csv(path.read_text("utf-8"))
    except (OSError, KeyError) as e:
        raise UserError(f"cannot read cultures from {path}: {e}; it needs columns code,name,culture,region") from e
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
