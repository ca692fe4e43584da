"""GlobalOpinionQA (Durmus et al., 2023) in its published CSV format: question, selections, options, source.

``selections`` is a printed Python ``defaultdict`` of country name -> answer shares, ``options`` a printed
list of labels. Options are coded 1..n in order; countries are mapped to alpha-3 codes by name, and names
the registry does not know are skipped and counted.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import math
import re
from collections import Counter
from pathlib import Path

from culturealign.cultures import get_culture
from culturealign.data.base import Survey, normalize_shares
from culturealign.errors import UserError
from culturealign.records import SurveyQuestion
from culturealign.textfile import csv_errors, read_text

_DEFAULTDICT = re.compile(r"^\s*defaultdict\(<class '\w+'>,\s*(\{.*\})\)\s*$", re.S)


def _literal(text: str):
    m = _DEFAULTDICT.match(text)
    return ast.literal_eval(m.group(1) if m else text)


def _shares(value: object, n: int) -> list[float] | None:
    """A country's answer shares: ``n`` finite numbers, or None."""
    if not isinstance(value, list | tuple) or len(value) != n:
        return None
    if not all(isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s) for s in value):
        return None
    return [float(s) for s in value]


def load_globalopinionqa(path: str | Path):
    """Load a GlobalOpinionQA CSV into a :class:`~culturealign.data.base.Survey`."""
    path = Path(path)
    skipped: Counter = Counter()
    questions: dict[str, SurveyQuestion] = {}
    distributions: dict[str, dict[str, dict[str, float]]] = {}
    reader = csv.DictReader(io.StringIO(read_text(path, "the GlobalOpinionQA CSV"), newline=""), restval="")
    with csv_errors(path, reader):
        missing = {"question", "selections", "options"} - set(reader.fieldnames or [])
        if missing:
            raise UserError(f"{path} lacks columns {sorted(missing)}: GlobalOpinionQA has question,selections,options")
        for n, row in enumerate(reader, 2):
            try:
                options, selections = _literal(row["options"]), _literal(row["selections"])
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                options = selections = None
            if not isinstance(options, list | tuple) or not isinstance(selections, dict):
                skipped["row with unreadable options or selections"] += 1
                continue
            labels = [str(x) for x in options]
            if len(labels) < 2:
                skipped["row with fewer than 2 options"] += 1
                continue
            if not row["question"].strip():
                skipped["row without a question"] += 1
                continue
            qid = "GOQA-" + hashlib.sha1(row["question"].encode()).hexdigest()[:10]
            coded = {str(i + 1): label for i, label in enumerate(labels)}
            if qid in questions and questions[qid].options != coded:
                skipped["repeated question with other options (first kept)"] += 1
                continue
            q = questions.setdefault(
                qid, SurveyQuestion(qid, row.get("source") or "GlobalOpinionQA", row["question"].strip(), coded)
            )
            for name, shares in selections.items():
                try:
                    code = get_culture(str(name)).code
                except UserError:
                    skipped["country name not in the culture registry"] += 1
                    continue
                if qid in distributions.get(code, {}):
                    skipped["repeated question: country already answered (first kept)"] += 1
                    continue
                values = _shares(shares, len(labels))
                if values is None:
                    skipped[f"line {n}: shares do not match the options"] += 1
                    continue
                dist = normalize_shares({str(i + 1): s for i, s in enumerate(values)}, q, skipped)
                if dist is not None:
                    distributions.setdefault(code, {})[qid] = dist
    if not questions:
        raise UserError(f"{path} holds no readable GlobalOpinionQA rows")
    return Survey(questions, distributions, skipped, None, str(path))
