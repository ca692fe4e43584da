"""Benchmark of greedy representative selection (CAReDiO) at scale: lazy and stochastic greedy against naive.

One seeded problem: ``--n`` (100,000) random unit vectors of dimension ``--dim`` (384, all-MiniLM-L6-v2's),
``--k`` (100) picks, and a standard normal bonus z-scored and divided by k with weight ``--lam`` (0.5), as
:class:`~culturealign.steps.representative.SelectRepresentativeDistinctive` passes it. The points to cover are the
default seeded sample of 2,048 candidates. In one process (ratios are comparable on a shared, noisy machine):

1. lazy greedy and stochastic greedy (epsilon 0.01), wall seconds each;
2. naive greedy (every gain recomputed each step): run to the end with ``--naive-steps 0``, else timed over its
   first ``--naive-steps`` steps and extrapolated linearly (each naive step costs the same full pass over the
   candidates, N - t of them), and its picks checked against lazy's first picks;
3. coverage reached by each, exact over all N candidates, and the objective on the sampled reference.

Random unit vectors in 384 dimensions are a hard case for lazy evaluation (every gain shrinks alike, so stale
bounds prune little); the bonus spreads the gains and lets lazy bounds prune. Try ``--lam 0`` for the hard case.

Usage: python bench/bench_selection.py [--n 100000] [--dim 384] [--k 100] [--lam 0.5] [--naive-steps 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import numpy as np
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)

from culturealign.steps.objectives import coverage
from culturealign.steps.representative import greedy_select, random_select

TARGET_S = 10.0


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--naive-steps", type=int, default=10, help="naive steps to time and extrapolate (0: all k)")
    args = ap.parse_args()
    n, k, lam, seed = args.n, args.k, args.lam, args.seed

    load = os.getloadavg()[0]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, args.dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    raw = rng.standard_normal(n)
    bonus = (raw - raw.mean()) / raw.std() / k
    ref = x[np.sort(np.random.default_rng(seed).choice(n, min(n, 2048), replace=False))] if n > 2048 else x

    lazy, lazy_s = timed(greedy_select, x, k, bonus, lam, "lazy", seed=seed)
    stochastic, stochastic_s = timed(greedy_select, x, k, bonus, lam, "stochastic", seed=seed)
    steps = k if args.naive_steps <= 0 else min(args.naive_steps, k)
    naive, naive_measured_s = timed(greedy_select, x, steps, bonus, lam, "naive", seed=seed)
    naive_s = naive_measured_s * k / steps
    full = steps == k
    mode = "full run" if full else f"extrapolated from the first {steps} of {k} steps ({naive_measured_s:.2f} s)"

    def objective(sel: list[int]) -> float:
        return coverage(x, sel, reference=ref) + lam * float(bonus[sel].sum())

    baseline = random_select(n, k, seed)
    fast, fast_s = min((("lazy", lazy_s), ("stochastic", stochastic_s)), key=lambda m: m[1])
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"cpu: {cpu_model()} x {os.cpu_count()}")
    print(f"load_average_1min_at_start: {load:.2f}")
    print(f"numpy: {np.__version__}")
    print(f"problem: n={n} dim={args.dim} k={k} lam={lam} bonus=z/k reference=sample of {ref.shape[0]}")
    print(f"lazy_s: {lazy_s:.2f}")
    print(f"stochastic_s: {stochastic_s:.2f}")
    print(f"naive_s: {naive_s:.2f}")
    print(f"naive_mode: {mode}")
    print(f"ratio_naive_over_lazy: {naive_s / lazy_s:.1f}")
    print(f"ratio_naive_over_stochastic: {naive_s / stochastic_s:.1f}")
    print(f"naive_picks_equal_lazy_picks: {naive == lazy[:steps]} (first {steps})")
    print(f"coverage_lazy: {coverage(x, lazy):.4f}")
    print(f"coverage_stochastic: {coverage(x, stochastic):.4f}")
    print(f"coverage_naive: {coverage(x, naive):.4f}" + ("" if full else f" (first {steps} picks only)"))
    print(f"coverage_lazy_first_{steps}: {coverage(x, lazy[:steps]):.4f}")
    print(f"coverage_random: {coverage(x, baseline):.4f}")
    print(f"objective_lazy: {objective(lazy):.4f}")
    print(f"objective_stochastic: {objective(stochastic):.4f}")
    print(f"objective_random: {objective(baseline):.4f}")
    print(f"stochastic_over_lazy_objective: {objective(stochastic) / objective(lazy):.4f}")
    verdict = "met" if fast_s < TARGET_S else "missed"
    print(f"fast_method: {fast} {fast_s:.2f} s (target < {TARGET_S:.0f} s: {verdict})")


if __name__ == "__main__":
    main()
