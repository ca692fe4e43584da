"""Run a list of steps in a run folder, resumably.

Each step writes ``steps/NN-<name>/data.jsonl`` (its output records), ``dropped.jsonl`` and, last,
``stats.json``; a step whose ``stats.json`` exists is finished and is read back instead of redone. A step
killed midway is redone, and its LLM calls that had finished come from the run's cache, so nothing is
computed twice. ``redo_from`` redoes a step (by name or number) and every step after it.

A finished step is read back only if it was made from the same settings: ``stats.json`` holds a fingerprint of
the step's settings (its public attributes: options, engines by content identity, the survey's content) chained
with the fingerprint of the step before it. A rerun whose config changed a finished step stops with one line
naming what changed and the ``--from`` that redoes it; it never reports stale data under a new config.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.records import from_dict, to_dict
from culturealign.runs.store import (
    check_fingerprint,
    describe,
    fingerprint,
    read_jsonl,
    stage_cost,
    write_json,
    write_jsonl,
)

log = logging.getLogger(__name__)


def step_dir(run_dir: Path, index: int, name: str) -> Path:
    return run_dir / "steps" / f"{index:02d}-{name}"


def finished_step(run_dir: Path, name: str, what: str = "run") -> Path:
    """The folder of the finished step called ``name`` (whatever its number), for later stages and ablations: adding
    a step before it does not break them. A UserError names the missing step."""
    found = [f for f in sorted((Path(run_dir) / "steps").glob(f"[0-9][0-9]-{name}")) if (f / "stats.json").is_file()]
    if len(found) != 1:
        raise UserError(
            f"{run_dir} has no finished step {name!r}: it is not a finished {what}; run `culturealign run` first"
        )
    return found[0]


def step_records(run_dir: Path, name: str, what: str = "run") -> list[Any]:
    """The output records of the finished step called ``name``."""
    return [from_dict(r) for r in read_jsonl(finished_step(run_dir, name, what) / "data.jsonl")]


def step_stats(run_dir: Path, steps: Sequence[Any]) -> dict[str, dict]:
    """Every finished step's counts (kept and dropped, with reasons) by step name: a run's funnel, without the
    settings and fingerprint its ``stats.json`` also holds."""
    out = {}
    for i, step in enumerate(steps, 1):
        path = step_dir(run_dir, i, step.name) / "stats.json"
        if path.is_file():
            stats = json.loads(path.read_text("utf-8"))
            out[step.name] = {k: v for k, v in stats.items() if k not in ("settings", "fingerprint")}
    return out


def _redo_index(steps: Sequence[Any], redo_from: str | int | None) -> int | None:
    if redo_from is None:
        return None
    names = [s.name for s in steps]
    if str(redo_from).isdigit():
        return int(redo_from)
    if redo_from not in names:
        raise UserError(f"unknown step {redo_from!r} for --from: steps are {', '.join(names)}")
    return names.index(redo_from) + 1


def run_steps(
    steps: Sequence[Any], run_dir: Path, records: list[Any] | None = None, redo_from: str | int | None = None
) -> list[Any]:
    """Feed ``records`` through ``steps`` in order, writing and resuming each step's output; returns the last."""
    redo = _redo_index(steps, redo_from)
    records = list(records or [])
    chain = fingerprint([to_dict(r) for r in records])  # what the first step is fed
    for i, step in enumerate(steps, 1):
        folder = step_dir(run_dir, i, step.name)
        if redo is not None and i >= redo and folder.exists():
            shutil.rmtree(folder)
        settings = {"input": chain, **step_settings(step)}
        chain = fingerprint(settings)
        if (folder / "stats.json").is_file():
            fix = f"rerun with --from {step.name} to redo it and every later stage, or pass another --out"
            check_fingerprint(folder / "stats.json", settings, f"step {step.name}", fix, write=False, where=run_dir)
            records = [from_dict(r) for r in read_jsonl(folder / "data.jsonl")]
            log.info("step %s: done before, %d records read back", step.name, len(records))
            continue
        start = time.time()
        engines = [v for v in vars(step).values() if hasattr(v, "stats") and hasattr(v, "unbilled")]
        with stage_cost(run_dir, step.name, engines):
            records = list(step.run(records))
        stats = {"step": step.name, "output": len(records), "seconds": round(time.time() - start, 2), **step.stats}
        stats.update(fingerprint=chain, settings=settings)
        write_jsonl(folder / "data.jsonl", (to_dict(r) for r in records))
        write_jsonl(folder / "dropped.jsonl", ({"reason": why, "record": to_dict(r)} for r, why in step.dropped))
        write_json(folder / "stats.json", stats)  # last: its presence marks the step finished
        log.info("step %s: %d records in %.1fs", step.name, len(records), stats["seconds"])
    return records


def step_settings(step: Any) -> dict[str, Any]:
    """What decides a step's output: its public attributes (run-time state aside), described for a fingerprint."""
    return {k: describe(v) for k, v in vars(step).items() if not k.startswith("_") and k not in ("stats", "dropped")}
