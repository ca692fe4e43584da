"""GlobalOpinionQA (Durmus et al., 2023) in its published CSV format: question, selections, options, source.

``selections`` is a printed Python ``defaultdict`` of country name -> answer shares, ``options`` a printed
list of labels. Options are coded 1..n in order; countries are mapped to alpha-3 codes by name, and names
the registry does not know are skipped and counted.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import re
import sys
from collections import Counter
from pathlib import Path

from culturealign.cultures import get_culture
from culturealign.errors import UserError
from culturealign.records import SurveyQuestion

_DEFAULTDICT = re.compile(r"^\s*defaultdict\(<class '\w+'>,\s*(\{.*\})\)\s*$", re.S)


def _literal(text: str):
    m = _DEFAULTDICT.match(text)
    return ast.literal_eval(m.group(1) if m else text)


def load_globalopinionqa(path: str | Path):
    """Load a GlobalOpinionQA CSV into a :class:`~culturealign.data.survey.Survey`."""
    from culturealign.data.survey import Survey, _normalize

    path = Path(path)
    csv.field_size_limit(sys.maxsize)
    skipped: Counter = Counter()
    questions: dict[str, SurveyQuestion] = {}
    distributions: dict[str, dict[str, dict[str, float]]] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"question", "selections", "options"} - set(reader.fieldnames or [])
        if missing:
            raise UserError(f"{path} lacks columns {sorted(missing)}: GlobalOpinionQA has question,selections,options")
        for n, row in enumerate(reader, 2):
            try:
                labels = [str(x) for x in _literal(row["options"])]
                selections = _literal(row["selections"])
            except (ValueError, SyntaxError):
                skipped["row with unreadable options or selections"] += 1
                continue
            if len(labels) < 2 or not isinstance(selections, dict):
                skipped["row with fewer than 2 options"] += 1
                continue
            qid = "GOQA-" + hashlib.sha1(row["question"].encode()).hexdigest()[:10]
            q = SurveyQuestion(
                qid,
                row.get("source") or "GlobalOpinionQA",
                row["question"].strip(),
                {str(i + 1): label for i, label in enumerate(labels)},
            )
            questions[qid] = q
            for name, shares in selections.items():
                try:
                    code = get_culture(str(name)).code
                except UserError:
                    skipped["country name not in the culture registry"] += 1
                    continue
                if len(shares) != len(labels):
                    skipped[f"line {n}: shares do not match the options"] += 1
                    continue
                dist = _normalize({str(i + 1): float(s) for i, s in enumerate(shares)}, q, skipped)
                if dist is not None:
                    distributions.setdefault(code, {})[qid] = dist
    if not questions:
        raise UserError(f"{path} holds no readable GlobalOpinionQA rows")
    return Survey(questions, distributions, skipped, None, str(path))
