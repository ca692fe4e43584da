"""CulturaX (AlignCultura, Kashyap et al., 2026): English questions with a helpful, a harmless and an honest
reference answer each, labelled with a UNESCO cultural subdomain.

The CSV as published: cp1252-encoded (UTF-8 and UTF-16 are read too, for re-saved copies; a UTF-8 copy with a stray
byte is refused, not read as cp1252); columns ``Question, class, domain, helpful_response, harmless_response,
honest_response, simhash_id, pass_hhh`` and then empty ones.

- ``class`` is an integer subdomain id. The authors' README (github.com/gskgautam/AlignCultura, "CulturaX Class
  Index Mapping") names most ids; ``resources/unesco_taxonomy.json`` carries that table, and the class counts in
  this file match the README's class distribution scaled to its 1,200 of 1,500 rows. Ids the table lacks (5, 18
  and 36 occur here, once each) and 41 ("None") keep ``subdomain_id`` but get no subdomain or domain.
- ``domain`` is a free-text tag (about 400 values, "Travel", "History", ...), not a UNESCO domain: it is kept as
  ``tag``; ``domain`` on the item is the UNESCO domain of the subdomain.
- ``simhash_id`` is mostly placeholders (scientific notation, repeats): ignored; recompute with
  :mod:`culturealign.steps.simhash`.
- ``pass_hhh`` ("1,1,1" on every published row) becomes a 3-tuple, or None when absent or unreadable.

Skipped and counted: rows with an empty question, a missing reference answer, an unreadable class, or a question
already seen (the first copy is kept). Known but not detectable here: some rows pair a question with another
question's answers. No license was published: evaluation only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from culturealign.data.unesco import by_culturax_class
from culturealign.errors import UserError
from culturealign.records import HHHItem
from culturealign.textfile import csv_dicts, read_text

REQUIRED = ("Question", "class", "domain", "helpful_response", "harmless_response", "honest_response")


def _pass_hhh(text: str | None) -> tuple[int, int, int] | None:
    try:
        a, b, c = (int(v) for v in (text or "").split(","))
    except ValueError:
        return None
    return a, b, c


def culturax_file(path: str | Path) -> Path:
    """The CSV a CulturaX path names: the path itself, or ``CulturaX.csv`` in the folder it names."""
    path = Path(path)
    return path / "CulturaX.csv" if path.is_dir() else path


def load_culturax(path: str | Path) -> tuple[list[HHHItem], Counter]:
    """Load ``CulturaX.csv`` (or the folder holding it): the items in file order and what was skipped, by reason."""
    path = culturax_file(path)
    if not path.is_file():
        raise UserError(f"CulturaX file not found: {path}; pass CulturaX.csv or its folder (../shared/data/culturax)")
    header, rows = csv_dicts(path, read_text(path, "CulturaX.csv", legacy="cp1252"))
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(f"{path} lacks columns {missing}: a CulturaX CSV has the header {','.join(REQUIRED)},...")
    taxonomy = by_culturax_class()
    skipped: Counter = Counter()
    seen: set[str] = set()
    items = []
    for _, row in rows:
        question = row["Question"].strip()
        answers = [row[c].strip() for c in ("helpful_response", "harmless_response", "honest_response")]
        if not question:
            skipped["empty question"] += 1
            continue
        if not all(answers):
            skipped["missing reference answer"] += 1
            continue
        try:
            cls = int(row["class"].strip())
        except ValueError:
            skipped["unreadable class"] += 1
            continue
        if question in seen:
            skipped["duplicate question (first kept)"] += 1
            continue
        seen.add(question)
        sub = taxonomy.get(cls)
        items.append(
            HHHItem(
                id="CX-" + hashlib.sha1(question.encode("utf-8")).hexdigest()[:10],
                question=question,
                subdomain_id=cls,
                subdomain=sub.name if sub else None,
                domain=sub.domain if sub else None,
                tag=row["domain"].strip(),
                helpful=answers[0],
                harmless=answers[1],
                honest=answers[2],
                pass_hhh=_pass_hhh(row.get("pass_hhh")),
            )
        )
    if not items:
        raise UserError(f"{path} holds no usable CulturaX rows (skipped: {dict(skipped)})")
    return items, skipped
