"""Hub datasets through ``datasets.load_dataset`` on local copies in the hub repositories' own layouts (no network)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from culturealign.data.blend import blend_regions, load_blend
from culturealign.data.hub import BLEND_REGIONS, get_blend, get_globalopinionqa
from culturealign.data.survey import load_wvs_folder
from culturealign.errors import UserError

# GlobalOpinionQA's columns as published: printed Python objects in strings
GOQA_ROWS = [
    {
        "question": "Do you approve of the new policy?",
        "selections": (
            "defaultdict(<class 'list'>, {'Germany': [0.2, 0.8], 'Atlantis': [0.5, 0.5], 'Japan': [0.3, 0.3]})"
        ),
        "options": "['Yes', 'No']",
        "source": "GAS",
    },
    {
        "question": "How much do you trust the press?",
        "selections": "defaultdict(<class 'list'>, {'Nigeria': [0.1, 0.2, 0.7], \"Prospero's Isle\": [1, 0, 0], "
        "'Japan': [0.5, 0.25, 0.25]})",
        "options": "['A lot', 'Some', 'Not at all']",
        "source": "WVS",
    },
]


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch) -> None:
    """No test reaches the hub, and datasets' cache goes to the test's folder."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def goqa_download(folder: Path) -> Path:
    """A download of Anthropic/llm_global_opinions: its one file is data/global_opinions.csv."""
    (folder / "data").mkdir(parents=True)
    with (folder / "data" / "global_opinions.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, ["question", "selections", "options", "source"])
        w.writeheader()
        w.writerows(GOQA_ROWS)
    return folder


def check_goqa(survey, out: Path) -> None:
    assert sorted(survey.countries) == ["DEU", "JPN", "NGA"]
    assert survey.skipped["country name not in the culture registry"] == 2
    assert survey.notes == ["country names with no ISO code, left out (2): Atlantis, Prospero's Isle"]
    back = load_wvs_folder(out)
    assert {q.text: (q.topic, q.options) for q in back.questions.values()} == {
        "Do you approve of the new policy?": ("GAS", {"1": "Yes", "2": "No"}),
        "How much do you trust the press?": ("WVS", {"1": "A lot", "2": "Some", "3": "Not at all"}),
    }
    by_text = {q.text: qid for qid, q in back.questions.items()}
    assert back.distributions["JPN"][by_text["Do you approve of the new policy?"]] == pytest.approx(
        {"1": 0.5, "2": 0.5}  # 0.3, 0.3 renormalized
    )
    assert back.distributions["NGA"][by_text["How much do you trust the press?"]] == pytest.approx(
        {"1": 0.1, "2": 0.2, "3": 0.7}
    )
    with (out / "countries.csv").open(encoding="utf-8") as f:
        assert {r["code"]: r["name"] for r in csv.DictReader(f)} == {
            "DEU": "Germany",
            "JPN": "Japan",
            "NGA": "Nigeria",
        }


def test_globalopinionqa_from_a_download_folder(tmp_path: Path) -> None:
    source = str(goqa_download(tmp_path / "llm_global_opinions"))
    survey = get_globalopinionqa(tmp_path / "out", source=source)
    assert survey.source == source
    check_goqa(survey, tmp_path / "out")


def test_globalopinionqa_from_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(GOQA_ROWS), path)
    check_goqa(get_globalopinionqa(tmp_path / "out", source=str(path)), tmp_path / "out")


def test_globalopinionqa_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"cannot reach 'Anthropic/llm_global_opinions' on the Hugging Face hub .*"):
        get_globalopinionqa(tmp_path / "out")
    with pytest.raises(UserError, match=r"hf download Anthropic/llm_global_opinions --repo-type dataset"):
        get_globalopinionqa(tmp_path / "out")
    other = tmp_path / "other.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "Q?", "answer": "yes"}]), other)
    with pytest.raises(UserError, match=r"has no columns \['selections', 'options'\]"):
        get_globalopinionqa(tmp_path / "out", source=str(other))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no dataset at .*: pass the hub id 'Anthropic/llm_global_opinions'"):
        get_globalopinionqa(tmp_path / "out", source=str(tmp_path / "empty"))
    (tmp_path / "goqa.xlsx").write_bytes(b"PK")
    with pytest.raises(UserError, match=r"is not CSV, parquet or JSON"):
        get_globalopinionqa(tmp_path / "out", source=str(tmp_path / "goqa.xlsx"))
    assert not (tmp_path / "out").exists()


CARD = """---
configs:
- config_name: annotations
  data_files:
{files}
---
# BLEnD (a local copy for tests)
"""


def blend_download(folder: Path, regions: dict[str, tuple[str, list[dict]]]) -> Path:
    """A download of nayeon212/BLEnD: the dataset card's configs name data/annotations_hf/<Region>_data.json (a JSON
    array) for each split code."""
    (folder / "data" / "annotations_hf").mkdir(parents=True)
    files = []
    for code, (name, rows) in regions.items():
        path = f"data/annotations_hf/{name}_data.json"
        (folder / path).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        files.append(f'  - split: {code}\n    path: "{path}"')
    (folder / "README.md").write_text(CARD.format(files="\n".join(files)), encoding="utf-8")
    return folder


def hub_row(qid: str, question: str, answers: list[tuple[list[str], int]], idk: int = 0, other=()) -> dict:
    return {
        "ID": qid,
        "question": "(the question in the local language)",
        "en_question": question,
        "annotations": [{"answers": ["(local)"], "en_answers": spellings, "count": n} for spellings, n in answers],
        "idks": {"idk": idk, "no-answer": 0, "not-applicable": 0, "other": list(other)},
    }


SMALL = {
    "GB": (
        "UK",
        [
            hub_row("Al-en-01", "What is a common snack for preschool kids in your country?", [(["fruit"], 2)], 1),
            hub_row("Al-en-06", "What is a common school cafeteria food in your country?", [], other=["not sure"]),
        ],
    ),
    "JB": ("West_Java", [hub_row("Al-en-04", "What is the most popular fruit in your country?", [(["mango"], 3)])]),
}


def test_blend_writes_the_folder_eval_blend_reads(tmp_path: Path) -> None:
    written = get_blend(tmp_path / "blend", source=str(blend_download(tmp_path / "BLEnD", SMALL)))
    assert written == {"UK": 2, "West_Java": 1}
    assert blend_regions(tmp_path / "blend") == ["UK", "West_Java"]
    lines = [json.loads(line) for line in (tmp_path / "blend" / "UK.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[1] == {
        "id": "Al-en-06",
        "country": "UK",
        "question": "What is a common school cafeteria food in UK?",
        "answers": [],
        "idks": {"idk": 0, "no-answer": 0, "not-applicable": 0, "not sure": 1},
    }
    skipped: Counter = Counter()
    (java,) = load_blend(tmp_path / "blend", "West_Java", skipped)
    assert (java.id, java.region, java.question, java.answers) == (
        "Al-en-04",
        "West_Java",
        "What is the most popular fruit in West Java?",
        [(["mango"], 3)],
    )
    assert [q.id for q in load_blend(tmp_path / "blend", "UK", skipped)] == ["Al-en-01"]
    assert skipped == {"question without annotated answers": 1}


def test_blend_regions_by_name_or_code(tmp_path: Path) -> None:
    source = str(blend_download(tmp_path / "BLEnD", SMALL))
    assert get_blend(tmp_path / "one", source=source, regions=["west java"]) == {"West_Java": 1}
    assert get_blend(tmp_path / "two", source=source, regions=["gb", "West_Java"]) == {"UK": 2, "West_Java": 1}
    with pytest.raises(UserError, match=r"has no region 'Mexico': choose from UK \(GB\), West_Java \(JB\)"):
        get_blend(tmp_path / "three", source=source, regions=["Mexico"])
    with pytest.raises(UserError, match=r"cannot reach 'nayeon212/BLEnD' .*hf download nayeon212/BLEnD"):
        get_blend(tmp_path / "four")


def test_blend_lines_match_the_shared_copy(tmp_path: Path, blend_path: Path) -> None:
    """Hub rows made from every real line of ../shared/data/blend come back as exactly those lines."""
    known = ("idk", "no-answer", "not-applicable")
    codes = {name: code for code, name in BLEND_REGIONS.items()}
    real: dict[str, list[dict]] = {}
    hub: dict[str, tuple[str, list[dict]]] = {}
    for path in sorted(blend_path.glob("*.jsonl")):
        place = path.stem.replace("_", " ")
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
        real[path.stem] = [r for r in lines if r["question"].count(place) == 1]  # the hub says "your country"
        rows = []
        for r in real[path.stem]:
            other = [text for text, n in r["idks"].items() if text not in known for _ in range(n)]
            answers = [(a["answers"], a["count"]) for a in r["answers"]]
            rows.append(hub_row(r["id"], r["question"].replace(place, "your country"), answers, other=other))
            rows[-1]["idks"].update({k: r["idks"][k] for k in known})
        hub[codes[path.stem]] = (path.stem, rows)
    out = tmp_path / "blend"
    assert get_blend(out, source=str(blend_download(tmp_path / "BLEnD", hub))) == {k: len(v) for k, v in real.items()}
    for name, lines in real.items():
        got = [json.loads(line) for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").split("\n") if line]
        assert [list(g) for g in got] == [list(r) for r in lines]  # same keys in the same order
        assert got == lines, name


def test_data_get_globalopinionqa_command_writes_the_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    source = goqa_download(tmp_path / "download")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-cache")}
    code = "from culturealign.cli import main; main()"
    args = ["data", "get", "globalopinionqa", "--source", str(source), "--out", str(tmp_path / "goqa")]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 countries" in proc.stdout and "Atlantis" in proc.stdout  # unknown names are said, not hidden
    assert (tmp_path / "goqa" / "distributions.csv").is_file()
    proc = subprocess.run(
        [sys.executable, "-c", code, "data", "get", "nope", "--out", "x"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "use globalopinionqa or blend" in proc.stderr
