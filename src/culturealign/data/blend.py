"""BLEnD (Myung et al., NeurIPS 2024) short-answer questions: one JSONL file per country or region.

Each line: ``id``, ``country``, ``question``, ``answers`` (each a list of equivalent spellings with the number of
annotators who gave it), ``idks``. Spellings that pack several variants into one string ("donut, donuts") are
split on commas. Lines without annotated answers are skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.textfile import read_text


@dataclass
class BlendQuestion:
    id: str
    region: str  # the BLEnD file's country/region name, e.g. "UK", "West_Java"
    question: str
    answers: list[tuple[list[str], int]]  # (equivalent spellings, annotator votes)


def blend_regions(folder: str | Path) -> list[str]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"BLEnD folder not found: {folder}; pass the folder with one <Country>.jsonl per region")
    return sorted(p.stem for p in folder.glob("*.jsonl"))


def resolve_regions(folder: str | Path, names: str | list[str] | None) -> list[str]:
    """Match user names ("uk", "south korea") to the folder's files; unknown names fail with the list."""
    available = blend_regions(folder)
    if not names:
        return available
    items = names.split(",") if isinstance(names, str) else names
    key = {a.lower().replace("_", " "): a for a in available}
    out = []
    for name in items:
        k = name.strip().lower().replace("_", " ")
        if k not in key:
            raise UserError(f"no BLEnD file for {name.strip()!r}: available are {', '.join(available)}")
        out.append(key[k])
    return out


def load_blend(folder: str | Path, region: str, skipped: Counter | None = None) -> list[BlendQuestion]:
    path = Path(folder) / f"{region}.jsonl"
    skipped = skipped if skipped is not None else Counter()
    out = []
    # split on "\n" only: splitlines() also breaks at U+2028 or U+0085, which JSON strings may hold unescaped
    for n, line in enumerate(read_text(path, "the BLEnD file").split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = [
                ([v for s in _spellings(a["answers"]) for v in s], int(a["count"])) for a in row.get("answers", [])
            ]
            q = BlendQuestion(str(row["id"]), region, str(row["question"]), [a for a in answers if a[0]])
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:  # JSON, shape
            raise UserError(
                f"line {n} of {path} is not a BLEnD question ({e!r}): each line needs id, question and answers "
                '(a list of {"answers": [spellings], "count": N})'
            ) from e
        if not q.answers:
            skipped["question without annotated answers"] += 1
            continue
        out.append(q)
    return out


def _spellings(value: Any) -> list[list[str]]:
    """An annotated answer's spellings, each split on commas ("donut, donuts"); a bare string is one spelling."""
    items = [value] if isinstance(value, str) else list(value)
    return [[v.strip() for v in str(s).split(",") if v.strip()] for s in items]


ALIASES = {"GBR": "UK", "USA": "US"}


def region_for(folder: str | Path, code: str, name: str) -> str | None:
    """The BLEnD region of a culture (by alias, name or code), or None when BLEnD has no file for it."""
    by_key = {r.lower().replace("_", " "): r for r in blend_regions(folder)}
    for key in (ALIASES.get(code, ""), name, code):
        if key and key.lower() in by_key:
            return by_key[key.lower()]
    return None
