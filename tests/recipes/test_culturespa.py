"""The CultureSPA recipe end to end on the real embedded model: a run killed mid-way resumes to the same outputs."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = [
    "cultures=[DEU,NGA]",
    "questions.per_topic=1",
    "questions.topics=[Security,Religious Values,Economic Values]",
    "questions.max_retries=2",
    "train.min_examples=1",
    "train.sft.max_steps=2",
    "train.sft.disable_tqdm=true",
    "eval.limit=4",
    "eval.general_limit=4",
]


def _run(out: Path, wvs: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, "-c", "from culturealign.cli import main; main()", "run", "recipes/culturespa.yaml",
           f"out={out}", f"survey={wvs}", *TINY, *extra]  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=root)
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _outputs(run: Path) -> dict[str, str]:
    files = sorted(run.glob("steps/*/data.jsonl")) + sorted(run.glob("eval/wvs-*/items.jsonl"))
    files += [run / "train" / "data" / "joint.jsonl"]
    return {str(f.relative_to(run)): f.read_text() for f in files}


def _cached_calls(run: Path) -> int:
    with sqlite3.connect(run / "cache.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def test_killed_run_resumes_to_identical_outputs_without_repeated_calls(tmp_path, wvs_path):
    clean = tmp_path / "clean"
    proc = _run(clean, wvs_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "before" in proc.stdout
    clean_cost = json.loads((clean / "cost.json").read_text())
    comparison = json.loads((clean / "eval" / "comparison.json").read_text())
    assert comparison["trained"] and (clean / "train" / "joint" / "adapter_model.safetensors").is_file()
    for name in ("01-generate-questions", "02-dedup", "03-answer", "04-select", "05-training-data"):
        stats = json.loads((clean / "steps" / name / "stats.json").read_text())
        assert stats["output"] >= 1, (name, stats)

    # Kill (SIGKILL) as soon as the first step has finished, i.e. in the middle of the later ones.
    killed = tmp_path / "killed"
    child = _run(killed, wvs_path, wait=False)
    deadline = time.time() + 600
    while not (killed / "steps" / "01-generate-questions" / "stats.json").exists():
        assert child.poll() is None, "run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (killed / "eval" / "comparison.json").exists()
    calls_before_kill = _cached_calls(killed)

    proc = _run(killed, wvs_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _outputs(killed) == _outputs(clean)
    resumed_cost = json.loads((killed / "cost.json").read_text())
    # every model call happened once, and cost.json counts them all: the killed process billed its calls as they
    # were committed (as many as the cache holds), the resume billed the rest
    assert 0 < calls_before_kill < clean_cost["calls"]
    assert resumed_cost["calls"] == clean_cost["calls"]

    # a finished run re-run makes no model call at all
    proc = _run(killed, wvs_path)
    assert proc.returncode == 0
    again = json.loads((killed / "cost.json").read_text())
    assert again["calls"] == resumed_cost["calls"]

    # a rerun whose config changed finished work refuses it, naming what changed and the stage to redo
    proc = _run(killed, wvs_path, "questions.per_topic=2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "step generate-questions" in proc.stderr and "(per_topic)" in proc.stderr
    assert "--from generate-questions" in proc.stderr
    proc = _run(killed, wvs_path, "train.sft.max_steps=3")
    assert proc.returncode == 2 and "adapter joint" in proc.stderr and "(sft)" in proc.stderr, proc.stderr[-2000:]
    assert "--from train" in proc.stderr
    assert _outputs(killed) == _outputs(clean)  # nothing was overwritten by the refused reruns
    import yaml

    assert yaml.safe_load((killed / "config.yaml").read_text())["questions"]["per_topic"] == 1


def test_second_process_on_the_same_run_is_refused(tmp_path, wvs_path):
    from culturealign.runs import RunFolder

    with RunFolder(tmp_path / "run"):
        proc = _run(tmp_path / "run", wvs_path)
    assert proc.returncode == 2 and "in use by another culturealign process" in proc.stderr


def test_unknown_config_key_and_stage(tmp_path, wvs_path):
    proc = _run(tmp_path / "r", wvs_path, "questions.per_topik=2")
    assert proc.returncode == 2 and "unknown config key 'questions.per_topik'" in proc.stderr
    proc = _run(tmp_path / "r", wvs_path, "--from", "nonsense")
    assert proc.returncode == 2 and "unknown stage" in proc.stderr


def test_redo_from_a_data_stage_retrains(tmp_path):
    """`--from select` must not reuse an adapter trained on the old selection; `--from eval` keeps it."""
    from culturealign.config import load
    from culturealign.recipes import common, culturespa

    run = tmp_path / "run"
    (run / "train" / "joint").mkdir(parents=True)
    (run / "train" / "joint" / "adapter_config.json").write_text("{}")
    (run / "eval" / "wvs-after").mkdir(parents=True)
    cfg = load(None, culturespa.Config, [f"out={run}"])
    with common.recipe_run(cfg, "culturespa", ("select", "train", "eval"), "select"):
        pass
    assert not (run / "train").exists() and not (run / "eval").exists()
    (run / "train" / "joint").mkdir(parents=True)
    with common.recipe_run(cfg, "culturespa", ("select", "train", "eval"), "eval"):
        pass
    assert (run / "train" / "joint").exists()
