"""Benchmark of evaluation variants (issue 23): what scoring the survey under 4 variants costs against 1.

One process, one model (``smollm2``), an engine without cache, the same seeded questions and cultures: first the
default variant alone (the baseline), then the ``standard`` set (default, reversed, template-interview,
template-nosystem). Prints wall seconds, prompts, tokens computed (``engine.stats.prompt_tokens``: the scorer
reuses each batch's shared prefix) and the ratio 4 variants / 1. Variants share less prefix than one culture's
prompts do (the order and the template change the text before the options), so the ratio can exceed 4 per
token but the prompts are short.

Usage: python bench/bench_variants.py [--survey ../shared/data/wvs7] [--cultures DEU,CHN] [--limit 40]
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import torch
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.evaluate.wvs import WVS
from culturealign.llm.local import LocalEngine
from culturealign.prompting import STANDARD_VARIANTS

REPO = Path(__file__).resolve().parents[1]


def timed(engine: LocalEngine, wvs: WVS) -> tuple[float, int, int, dict]:
    """(seconds, prompts, tokens computed, overall metrics) of one evaluation on an uncached engine."""
    before = engine.stats.prompt_tokens
    start = time.perf_counter()
    result = wvs.run(engine, progress=False)
    return time.perf_counter() - start, len(result.items), engine.stats.prompt_tokens - before, result.metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--survey", default=str(REPO.parent / "shared" / "data" / "wvs7"))
    ap.add_argument("--cultures", default="DEU,CHN")
    ap.add_argument("--limit", type=int, default=40, help="questions per culture (seeded sample)")
    args = ap.parse_args()
    survey, cultures = load_survey(args.survey), parse_cultures(args.cultures)
    engine = LocalEngine(model="smollm2", cache=None)
    engine.load()
    WVS(survey, cultures[:1], limit=2).run(engine, progress=False)  # warm-up: load and first-call costs off the clock
    one = timed(engine, WVS(survey, cultures, limit=args.limit))
    four = timed(engine, WVS(survey, cultures, limit=args.limit, variants=list(STANDARD_VARIANTS)))
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"cpu: {cpu_model()}")
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"cultures: {args.cultures}; questions per culture: {args.limit}; variants: {', '.join(STANDARD_VARIANTS)}")
    for label, (sec, n, tokens, _) in (("1 variant", one), ("4 variants", four)):
        print(f"{label}: {sec:.1f} s, {n} prompts, {n / sec:.1f} prompts/s, {tokens:,} tokens computed")
    print(f"ratio 4 variants / 1: {four[0] / one[0]:.2f}x time, {four[2] / max(one[2], 1):.2f}x tokens")
    spread = four[3]["variant_spread"]["overall"]
    print(
        "spread over variants (overall): "
        + "; ".join(f"{m} SD {s['sd']:.3f} [{s['min']:.3f}, {s['max']:.3f}]" for m, s in spread.items())
    )
    print(f"sensitivity (mean TV between variants' answers): {four[3]['overall']['sensitivity']:.3f}")


if __name__ == "__main__":
    main()
