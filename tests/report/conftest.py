"""Synthetic run folders in the real layout (written with the library's own writers) and a headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from culturealign.evaluate import metrics as M
from culturealign.evaluate.base import EvalResult
from culturealign.evaluate.wvs import WVSItem, summarize
from culturealign.runs import atomic_write_text, write_json, write_jsonl

CULTURES = ("DEU", "CHN", "NGA")
# a topic name with markup: the page must show it as text, never as a tag
TOPICS = ("Security", "Religious Values", "<script>alert('topic')</script>")


def wvs_items(rng: np.random.Generator, skill: float, n_per_topic: int = 4) -> list[WVSItem]:
    """Items for every culture x topic; ``skill`` in [0, 1] pulls the model's distribution toward the people's."""
    items = []
    for c in CULTURES:
        for t, topic in enumerate(TOPICS):
            for q in range(n_per_topic):
                k = 2 + (q % 3)
                codes = [str(i + 1) for i in range(k)]
                human = rng.dirichlet(np.ones(k))
                model = skill * human + (1 - skill) * rng.dirichlet(np.ones(k))
                numeric = q % 2 == 0
                items.append(
                    WVSItem(
                        culture=c,
                        question_id=f"Q{t}{q}",
                        topic=topic,
                        scale="numeric" if numeric else "categorical",
                        model=dict(zip(codes, model.tolist(), strict=True)),
                        human=dict(zip(codes, human.tolist(), strict=True)),
                        choice=codes[int(np.argmax(model))],
                        majority=codes[int(np.argmax(human))],
                        mass=float(rng.uniform(0.3, 1)),
                        one_minus_jsd=M.one_minus_jsd(model, human),
                        wasserstein=M.wasserstein_normalized(list(range(k)), model, human) if numeric else None,
                    )
                )
    return items


def _save_wvs(folder: Path, items: list[WVSItem]) -> None:
    EvalResult("wvs", items, {"mode": "aware", **summarize(items)}).save(folder)


def build_run(root: Path, full: bool = True, seed: int = 0) -> Path:
    """A run folder: an eval-only run (config, eval/wvs-aware, cost) or a full recipe run with every artefact."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    config = {"out": str(root), "cultures": list(CULTURES), "note": "<b>not bold</b> & co"}
    atomic_write_text(root / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    write_json(root / "cost.json", {"wall_seconds": 3725.5, "calls": 120, "cache_hits": 7, "prompt_tokens": 9000})
    if not full:
        _save_wvs(root / "eval" / "wvs-aware", wvs_items(rng, 0.3))
        return root
    steps = [
        ("01-generate-questions", {"output": 6, "requested": 13, "dropped_by_reason": {"no <question>": 7}}),
        ("02-dedup", {"output": 5, "total": 6, "kept": 5, "dropped": 1, "dropped_by_reason": {"same text": 1}}),
        ("03-answer", {"output": 15}),
        ("04-select", {"output": 5, "total": 15, "kept": 5, "dropped": 10, "dropped_by_reason": {"equal": 10}}),
    ]
    for name, stats in steps:
        folder = root / "steps" / name
        write_jsonl(folder / "data.jsonl", [])
        write_jsonl(folder / "dropped.jsonl", [])
        write_json(folder / "stats.json", {"step": name[3:], "seconds": 0.1, **stats})
    for adapter in ("joint", "joint-DEU"):
        history = [{"loss": 2.0 / (s + 1), "step": s, "epoch": s / 10} for s in range(1, 11)]
        write_json(root / "train" / adapter / "log_history.json", [*history, {"train_loss": 0.5, "step": 10}])
    _save_wvs(root / "eval" / "wvs-before", wvs_items(rng, 0.2))
    _save_wvs(root / "eval" / "wvs-after", wvs_items(rng, 0.7))
    for variant, skill in (("quantity-10pct", 0.3), ("quantity-100pct", 0.6)):
        _save_wvs(root / "eval" / "ablation-quantity" / variant, wvs_items(rng, skill))
    write_json(root / "eval" / "ablation-quantity" / "metrics.json", {"base": {"examples": 0, "culturespa": 0.4}})
    write_json(root / "eval" / "general" / "metrics.json", {"mean_kl_base_tuned": 0.01, "mc_agreement": 0.9})
    matrix = rng.uniform(0.3, 1, (3, 3)).tolist()
    relations = {"cultures": list(CULTURES), "model_matrix": matrix, "survey_matrix": matrix, "spearman": 0.5}
    write_json(root / "eval" / "relations" / "metrics.json", relations)
    write_json(root / "eval" / "comparison.json", comparison(root))
    return root


def comparison(root: Path) -> dict:
    """What a train-and-compare recipe writes: the before/after table and each change's interval."""
    from culturealign.evaluate.base import before_after_table
    from culturealign.evaluate.compare_runs import compare_runs
    from culturealign.evaluate.wvs import WVS

    before, after = (
        json.loads((root / "eval" / f"wvs-{w}" / "metrics.json").read_text()) for w in ("before", "after")
    )
    c = compare_runs([root / "eval" / "wvs-before", root / "eval" / "wvs-after"], n_boot=200, seed=0)
    label = c["runs"][1]
    iv = {
        s: {m: {k: v[k][label] for k in ("diff", "ci", "p", "q")} for m, v in ms.items()}
        for s, ms in c["scopes"].items()
    }
    table = before_after_table(WVS, before, after)
    return {"trained": True, "wvs": table, "evaluations": ["wvs"], "intervals": {"wvs": iv}}


@pytest.fixture
def make_run() -> Callable[..., Path]:
    return build_run


def _apt(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path to Debian's chromium, installed with apt-get when missing (as root); skips when that is impossible."""
    if not shutil.which("chromium"):
        if not shutil.which("apt-get") or os.geteuid() != 0:
            pytest.skip("chromium is not installed, and installing it needs apt-get as root")
        try:
            done = _apt("install", "-y", "-qq", "chromium")
            if done.returncode != 0:  # a fresh machine has no package lists yet
                _apt("update", "-qq")
                done = _apt("install", "-y", "-qq", "chromium")
        except subprocess.TimeoutExpired:
            pytest.skip("installing chromium with apt-get took over 15 minutes")
        if not shutil.which("chromium"):
            pytest.skip(f"chromium could not be installed with apt-get: {done.stderr[-500:]}")
    return shutil.which("chromium")
