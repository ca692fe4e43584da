"""The CAReDiO recipe end to end on the real embedded model (tiny numbers), resumable, with its ablation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "cultures=[GBR,CHN]",
    "queries.topics=[greetings,food and cuisine,humour]",
    "optimize.rounds=1",
    "optimize.samples=2",
    "responses.candidates=2",
    "responses.max_tokens=32",
    "responses.judge_threshold=0.0",
    "select.n=2",
    "train.min_examples=1",
    "train.sft.max_steps=2",
    "train.sft.disable_tqdm=true",
    "eval.limit=4",
    "eval.variants=[default,reversed]",  # before and after under the same two variants
    "eval.blend_limit=3",
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from culturealign.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)


def test_caredio_end_to_end_resumes_and_ablates(tmp_path, wvs_path):
    out = tmp_path / "run"
    args = ["run", "recipes/caredio.yaml", f"out={out}", f"survey={wvs_path}", f"blend={wvs_path.parent / 'blend'}"]
    proc = _cli(*args, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BLEnD accuracy before / after tuning" in proc.stdout and "China" in proc.stdout
    comparison = json.loads((out / "eval" / "comparison.json").read_text())
    assert comparison["trained"] and set(comparison["blend"]) == {"UK", "China", "overall"}
    assert 0 <= comparison["blend"]["UK"]["accuracy"]["after"] <= 1
    select = json.loads((out / "steps" / "06-select-representative" / "stats.json").read_text())
    assert all(g["selected"] <= 2 for g in select["per_group"].values())
    optimize = json.loads((out / "steps" / "02-optimize-queries" / "stats.json").read_text())
    assert len(optimize["mean_relatedness_per_round"]) <= 2
    dedup = json.loads((out / "steps" / "03-dedup" / "stats.json").read_text())
    assert dedup["total"] == dedup["kept"] + dedup["dropped"] and dedup["kept"] >= 1
    responses = json.loads((out / "steps" / "05-optimize-responses" / "stats.json").read_text())
    assert 1 <= len(responses["mean_distinctiveness_per_round"]) <= 2
    assert responses["rewrites_kept"] <= responses["rewrites_tried"]
    for when in ("before", "after"):
        metrics = json.loads((out / "eval" / f"wvs-{when}" / "metrics.json").read_text())
        assert metrics["variants"] == ["default", "reversed"] and 0 <= metrics["overall"]["sensitivity"] <= 1
    calls = json.loads((out / "cost.json").read_text())["calls"]

    proc = _cli(*args, *TINY)  # finished: a re-run makes no model call
    assert proc.returncode == 0
    assert json.loads((out / "cost.json").read_text())["calls"] == calls

    proc = _cli("ablate", str(out), "--what", "selection")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ablation = json.loads((out / "eval" / "ablation-selection" / "metrics.json").read_text())
    assert set(ablation) == {"selected", "random"}
    for res in ablation.values():
        assert all(0 <= m["coverage"] <= 1 for m in res["per_culture"].values())
