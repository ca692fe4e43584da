"""The README's main job end to end, then again on the finished run folder: what a rerun costs.

Runs ``culturealign run recipes/culturespa.yaml --out DIR`` in a fresh folder (every model call made), then the
same command again (every step read back, every call answered by the run's cache). Prints wall times, model calls
and cache hits of each (from ``cost.json``, differences between runs) and the ratio rerun / first run. Target: a
rerun under 30 s with zero model calls.

    python bench/bench_end_to_end.py                      # the main job as the quickstart runs it
    python bench/bench_end_to_end.py --smoke              # 1 culture, 1 topic, no training (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import cpu_model

ROOT = Path(__file__).resolve().parent.parent
SMOKE = [
    "cultures=[DEU]",
    "questions.topics=[Security]",
    "questions.per_topic=2",
    "train.min_examples=1000",
    "eval.limit=3",
    "eval.general=false",
]


def run(out: Path, extra: list[str]) -> tuple[float, dict]:
    """One ``culturealign run``; returns its wall seconds and the run's cost.json after it."""
    cli = [sys.executable, "-c", "from culturealign.cli import main; main()"]
    cmd = [*cli, "run", "recipes/culturespa.yaml", "--out", str(out), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, json.loads((out / "cost.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    ap.add_argument("--smoke", action="store_true", help="a tiny run to check the script")
    ap.add_argument("extra", nargs="*", help="recipe overrides, key.sub=value")
    args = ap.parse_args()
    extra = [*(SMOKE if args.smoke else []), *args.extra]

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "main-job"
        if out.exists() and any(out.iterdir()):
            sys.exit(f"{out} is not empty: the first run must start from nothing")
        first_s, first = run(out, extra)
        again_s, again = run(out, extra)

    def delta(key: str) -> int:
        return again.get(key, 0) - first.get(key, 0)

    rerun_calls, rerun_hits = delta("calls"), delta("cache_hits")
    lookups = rerun_calls + rerun_hits
    summary = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "job": "culturealign run recipes/culturespa.yaml " + " ".join(extra),
        "first run seconds": round(first_s, 1),
        "first run model calls": first.get("calls", 0),
        "first run cache hits": first.get("cache_hits", 0),
        "first run prompt tokens": first.get("prompt_tokens", 0),
        "first run completion tokens": first.get("completion_tokens", 0),
        "rerun seconds (target < 30)": round(again_s, 1),
        "rerun model calls (target 0)": rerun_calls,
        "rerun cache hits": rerun_hits,
        "rerun cache hit rate": f"{rerun_hits / lookups:.3f}"
        if lookups
        else "n/a (no lookups: every step was read back)",
        "rerun / first wall time": f"{again_s / first_s:.4f}",
    }
    for k, v in summary.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
