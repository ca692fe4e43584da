"""Survey data from the Hugging Face hub, written once in the layouts every command reads.

``get_globalopinionqa`` turns GlobalOpinionQA (Durmus et al., 2023; ``Anthropic/llm_global_opinions``) into a survey
folder (``questions.jsonl``, ``distributions.csv``, ``countries.csv``) through ``data.goqa``'s parser, so that the hub
copy and a downloaded CSV read the same. ``get_blend`` turns BLEnD (Myung et al., 2024; ``nayeon212/BLEnD``) into one
``<Region>.jsonl`` per country or region, the folder ``culturealign eval blend`` reads (``data.blend``).

Both go through ``datasets.load_dataset``: ``source`` is a hub id, or a local folder that holds a download of the
dataset repository (``hf download <id> --repo-type dataset --local-dir DIR``), or for GlobalOpinionQA one CSV or
parquet file; without internet only the last two work.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from culturealign.cultures import get_culture
from culturealign.data.base import Survey
from culturealign.data.goqa import load_globalopinionqa
from culturealign.data.survey import write_survey_folder
from culturealign.errors import UserError

GOQA_SOURCE = "Anthropic/llm_global_opinions"
GOQA_COLUMNS = ("question", "selections", "options", "source")  # the published CSV's; ``source`` may be absent
BLEND_SOURCE = "nayeon212/BLEnD"
BLEND_CONFIG = "annotations"  # per-region splits of annotated answers; "short-answer-questions" holds no answers
BLEND_COLUMNS = ("ID", "en_question", "annotations", "idks")
# The hub's split codes -> the region names of BLEnD's own files (Algeria_data.json ...), which name ours
BLEND_REGIONS = {
    "DZ": "Algeria",
    "AS": "Assam",
    "AZ": "Azerbaijan",
    "CN": "China",
    "ET": "Ethiopia",
    "GR": "Greece",
    "ID": "Indonesia",
    "IR": "Iran",
    "MX": "Mexico",
    "KP": "North_Korea",
    "NG": "Northern_Nigeria",
    "KR": "South_Korea",
    "ES": "Spain",
    "GB": "UK",
    "US": "US",
    "JB": "West_Java",
}
BLEND_IDKS = ("idk", "no-answer", "not-applicable")  # counted answers; the hub's "other" lists free-text ones
YOUR_COUNTRY = re.compile(r"\byour country\b", re.IGNORECASE)
COUNTRY_KEY = re.compile(r"""(['"])((?:(?!\1).)+)\1:\s*\[""")  # a country's key in a printed ``selections``
FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}


def _load_dataset(source: str, config: str | None, split: str | None, default: str) -> Any:
    """``datasets.load_dataset`` on a hub id, a local download folder or (one split) a data file; the errors of an
    unreachable hub or a wrong path become one-line :class:`UserError` s that say to download and pass a path."""
    from datasets import load_dataset  # slow to import: only when data is fetched

    path = Path(source).expanduser()
    try:
        if path.is_file():
            if path.suffix.lower() not in FILE_FORMATS:
                raise UserError(f"{path} is not CSV, parquet or JSON: pass the dataset's data file or its folder")
            return load_dataset(FILE_FORMATS[path.suffix.lower()], data_files=str(path), split=split or "train")
        return load_dataset(str(path) if path.is_dir() else source, config, split=split)
    except ConnectionError as e:
        raise UserError(
            f"cannot reach {source!r} on the Hugging Face hub ({e}): download it where there is internet "
            f"(hf download {default} --repo-type dataset --local-dir DIR) and pass DIR as the source"
        ) from e
    except FileNotFoundError as e:  # also datasets' DatasetNotFoundError
        raise UserError(
            f"no dataset at {source!r} ({e}): pass the hub id {default!r} or the folder of its download"
        ) from e
    except ValueError as e:  # an unknown split or config
        raise UserError(f"cannot load {source!r}: {e}") from e


def get_globalopinionqa(out: str | Path, source: str = GOQA_SOURCE, split: str = "train") -> Survey:
    """Fetch GlobalOpinionQA and write it to ``out`` as a survey folder; returns the :class:`Survey` written.

    Its rows are parsed by ``load_globalopinionqa`` (options coded 1..n, country names mapped to ISO alpha-3 codes,
    shares renormalized); names the culture registry does not know ("S. Korea", "Mali (Non-national sample)") are
    left out, because a country without a code cannot be prompted or filed: counted in ``Survey.skipped`` ("country
    name not in the culture registry") and named in ``Survey.notes``.
    """
    data = _load_dataset(source, None, split, GOQA_SOURCE)
    missing = [c for c in GOQA_COLUMNS[:3] if c not in data.column_names]
    if missing:
        raise UserError(
            f"{source!r} has no columns {missing} (it has {data.column_names}): GlobalOpinionQA has "
            f"{', '.join(GOQA_COLUMNS)}; pass {GOQA_SOURCE!r} or a copy of it"
        )
    with tempfile.TemporaryDirectory() as tmp:  # one parser for the hub's rows and a user's CSV
        csv_path = Path(tmp) / "global_opinions.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(GOQA_COLUMNS)
            for row in data:
                w.writerow(["" if row.get(c) is None else str(row[c]) for c in GOQA_COLUMNS])
        survey = load_globalopinionqa(csv_path)
    survey.source = source
    names = {m.group(2) for row in data for m in COUNTRY_KEY.finditer(str(row["selections"] or ""))}
    if unknown := sorted(n for n in names if not _known_culture(n)):
        survey.notes.append(f"country names with no ISO code, left out ({len(unknown)}): {', '.join(unknown)}")
    write_survey_folder(survey, out)
    return survey


def _known_culture(name: str) -> bool:
    try:
        get_culture(name)
    except UserError:
        return False
    return True


def get_blend(out: str | Path, source: str = BLEND_SOURCE, regions: list[str] | None = None) -> dict[str, int]:
    """Fetch BLEnD's annotated short answers and write one ``<Region>.jsonl`` per region to ``out``.

    ``regions`` are hub split codes ("GB") or region names ("UK", "west java"); None takes every region. Returns
    the number of questions written per region file. Each line is what ``data.blend.load_blend`` reads, in the
    layout of ``../shared/data/blend``, mapped from the hub's ``annotations`` config:

    - ``id`` <- ``ID``; ``country`` <- the region name (``BLEND_REGIONS``; an unlisted split keeps its code);
    - ``question`` <- ``en_question`` with "your country" replaced by the region ("... in West Java?"), so that the
      model is asked about the region the answers come from;
    - ``answers`` <- ``annotations``: ``{"answers": en_answers, "count": count}`` (the English spellings, which
      scoring matches; an answer without English ones keeps its votes and no spelling, as in the shared copy);
    - ``idks`` <- ``idks``: idk, no-answer and not-applicable counts, plus each free-text ``other`` answer counted.

    Questions without annotated answers are kept: the loader skips and counts them, as for the shared copy.
    """
    data = _load_dataset(source, BLEND_CONFIG, None, BLEND_SOURCE)
    codes = _blend_splits(list(data), regions, source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for code in codes:
        split = data[code]
        missing = [c for c in BLEND_COLUMNS if c not in split.column_names]
        if missing:
            raise UserError(
                f"split {code} of {source!r} has no columns {missing}: BLEnD's {BLEND_CONFIG!r} config has "
                f"{', '.join(BLEND_COLUMNS)}; pass {BLEND_SOURCE!r} or a download of it"
            )
        name = BLEND_REGIONS.get(code, code)
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for row in split:
                f.write(json.dumps(_blend_line(row, name), ensure_ascii=False) + "\n")
        written[name] = split.num_rows
    return written


def _blend_splits(available: list[str], wanted: list[str] | None, source: str) -> list[str]:
    """The hub splits for the user's region names or codes (any case, spaces for underscores)."""
    if not wanted:
        return available
    key = {}
    for code in available:
        key[code.lower()] = code
        key[BLEND_REGIONS.get(code, code).lower().replace("_", " ")] = code
    out = []
    for name in wanted:
        k = name.strip().lower().replace("_", " ")
        if k not in key:
            have = ", ".join(f"{BLEND_REGIONS.get(c, c)} ({c})" for c in available)
            raise UserError(f"BLEnD at {source!r} has no region {name.strip()!r}: choose from {have}")
        out.append(key[k])
    return list(dict.fromkeys(out))


def _blend_line(row: dict[str, Any], region: str) -> dict[str, Any]:
    """One hub row as a line of ``<Region>.jsonl`` (see :func:`get_blend` for the mapping)."""
    answers = [
        {"answers": [str(s) for s in a["en_answers"] or []], "count": int(a["count"])}
        for a in row["annotations"] or []
    ]
    idks_in = row["idks"] or {}
    idks = {k: int(idks_in.get(k) or 0) for k in BLEND_IDKS}
    for text in idks_in.get("other") or []:
        idks[str(text)] = idks.get(str(text), 0) + 1
    question = YOUR_COUNTRY.sub(region.replace("_", " "), str(row["en_question"]))
    return {"id": str(row["ID"]), "country": region, "question": question, "answers": answers, "idks": idks}
