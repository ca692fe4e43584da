"""The CLCA recipe end to end on the real embedded model (tiny numbers): a real role-play, judged, annotated,
trained on dialogue views, evaluated before/after (with the individual level), and resumable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "cultures=[DEU,CHN]",
    "scenarios.per_culture=1",
    "scenarios.max_retries=0",
    "roleplay.max_turns=2",
    "roleplay.max_tokens=24",
    "filter.confidence=1.0",  # the test is about the flow: keep every judged conversation
    "intents.max_retries=0",
    "train.min_examples=1",
    "train.sft.max_steps=2",
    "train.sft.disable_tqdm=true",
    "eval.limit=4",
    "eval.respondents_per_country=3",
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from culturealign.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)


def test_clca_end_to_end_and_resumes(tmp_path, wvs_path):
    out = tmp_path / "run"
    respondents = ROOT / "tests" / "fixtures" / "wvs_respondents_recipe.csv"
    hofstede = wvs_path.parent / "hofstede"
    args = ["run", "recipes/clca.yaml", f"out={out}", f"survey={wvs_path}", f"hofstede={hofstede}"]
    args.append(f"respondents={respondents}")
    proc = _cli(*args, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "JS distance / KL(people||model) before" in proc.stdout and "individual-level accuracy" in proc.stdout

    play = [json.loads(line) for line in (out / "steps" / "02-role-play" / "data.jsonl").read_text().splitlines()]
    assert len(play) == 2 and all(c["status"] in ("left", "max-turns", "malformed") for c in play)
    assert all(len(c["turns"]) <= 4 for c in play)
    assert all("hierarchy" in c["scenario"]["agents"][0]["profile"] for c in play)  # Hofstede in the profile
    comparison = json.loads((out / "eval" / "comparison.json").read_text())
    assert comparison["trained"] and set(comparison["divergence"]) == {"before", "after"}
    assert 0 <= comparison["individual"]["overall"]["accuracy"]["before"] <= 1
    assert set(comparison["individual"]) == {"DEU", "CHN", "overall"}  # per country, then overall
    views = (out / "train" / "data" / "joint.jsonl").read_text().splitlines()
    assert {json.loads(v)["view"] for v in views} <= {"speaker", "intent"}
    data = json.loads((out / "eval" / "clca-data" / "metrics.json").read_text())
    assert data["judge"]["total"] == 2
    intents = comparison["data"]["intents"]
    assert intents["method"] == "choice" and intents["annotated"] == intents["utterances"]  # scored choices
    calls = json.loads((out / "cost.json").read_text())["calls"]

    proc = _cli(*args, *TINY)  # finished: a re-run reads every step back and makes no model call
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "cost.json").read_text())["calls"] == calls
