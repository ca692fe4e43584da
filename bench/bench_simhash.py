"""Benchmark of SimHash dedup at scale: a million short texts, against the plain all-pairs scan.

One seeded corpus: ``--n`` (1,000,000) texts of 8-20 words drawn from a vocabulary of ``--vocab`` (4,000)
pseudo-words; ``--planted`` (5%) of them are copies of an earlier text with 1 or 2 words replaced. In one process
(ratios are comparable on a shared, noisy machine):

1. fingerprints (:func:`~culturealign.steps.simhash.simhash`, word 3-grams), wall seconds;
2. dedup (:func:`~culturealign.steps.simhash.dedup_parents`: exact pair search within Hamming ``--threshold``
   (10), then the greedy keep in input order), wall seconds;
3. the plain baseline: every pair XOR-ed and popcounted, timed on a seeded sample of ``--sample`` (20,000)
   fingerprints and extrapolated quadratically to n; its pairs are checked against the fast search's on the
   sample;
4. peak resident memory of the process (``getrusage``), which includes the texts themselves.

Usage: python bench/bench_simhash.py [--n 1000000] [--vocab 4000] [--planted 0.05] [--threshold 10] [--sample 20000]
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import time

import numpy as np
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)

from culturealign.simhash import _choose_blocks, _pairs_brute, dedup_parents, near_duplicates, simhash

TARGET_S = 120.0
TARGET_GIB = 4.0


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def corpus(n: int, vocab_size: int, planted: float, seed: int) -> tuple[list[str], np.ndarray]:
    """Seeded texts, and the indices of the planted near-copies."""
    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocab = sorted({"".join(rng.choice(syllables, rng.integers(2, 5))) for _ in range(vocab_size * 2)})
    vocab = [str(w) for w in rng.permutation(vocab)[:vocab_size]]
    lengths = rng.integers(8, 21, n)
    words = rng.integers(0, len(vocab), lengths.sum())
    ends = np.cumsum(lengths)
    spans = zip(ends.tolist(), lengths.tolist(), strict=True)
    texts = [" ".join(vocab[w] for w in words[e - m : e]) for e, m in spans]
    copies = np.sort(rng.choice(np.arange(1, n), int(n * planted), replace=False))
    for i in copies.tolist():
        tokens = texts[int(rng.integers(0, i))].split()
        for pos in rng.choice(len(tokens), int(rng.integers(1, 3)), replace=False):
            tokens[pos] = vocab[int(rng.integers(0, len(vocab)))]
        texts[i] = " ".join(tokens)
    return texts, copies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--planted", type=float, default=0.05)
    ap.add_argument("--threshold", type=int, default=10)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n, k = args.n, args.threshold

    load = os.getloadavg()[0]
    (texts, copies), corpus_s = timed(corpus, n, args.vocab, args.planted, args.seed)
    corpus_gib = peak_gib()
    fps, fingerprint_s = timed(simhash, texts)
    parents, dedup_s = timed(dedup_parents, fps, k)
    ours_s = fingerprint_s + dedup_s
    peak = peak_gib()

    sample = fps[np.sort(np.random.default_rng(args.seed).choice(n, min(n, args.sample), replace=False))]
    u = np.unique(sample)
    brute_pairs, brute_sample_s = timed(_pairs_brute, u, k)
    brute_s = brute_sample_s * (n / len(sample)) ** 2
    fast_pairs = near_duplicates(u, k, blocks=_choose_blocks(n, k))
    same = sorted(map(tuple, brute_pairs.tolist())) == list(map(tuple, fast_pairs.tolist()))

    dropped = parents >= 0
    blocks = _choose_blocks(len(np.unique(fps)), k)
    rows = [
        ("fingerprints", fingerprint_s),
        ("dedup: pair search + greedy keep", dedup_s),
        ("ours, total", ours_s),
        (f"all-pairs scan, {len(sample):,} sample (measured)", brute_sample_s),
        (f"all-pairs scan, {n:,} (extrapolated, x{(n / len(sample)) ** 2:,.0f})", brute_s),
    ]
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"cpu: {cpu_model()} x {os.cpu_count()}")
    print(f"load_average_1min_at_start: {load:.2f}")
    print(f"numpy: {np.__version__}")
    print(f"problem: n={n} words=8-20 vocab={args.vocab} planted={len(copies)} threshold={k} ngram=3")
    print(f"corpus_build_s (not timed below): {corpus_s:.1f}")
    print()
    print(f"{'stage':<52} {'seconds':>10}")
    for name, seconds in rows:
        print(f"{name:<52} {seconds:>10.2f}")
    print()
    print(f"blocks: {blocks} (pigeonhole tables: C({blocks}, {k}))" if blocks else "blocks: all-pairs scan")
    print(f"distinct_fingerprints: {len(np.unique(fps))}")
    print(f"dropped: {int(dropped.sum())} ({dropped.mean():.2%})")
    print(f"planted_copies_dropped: {int(dropped[copies].sum())} of {len(copies)}")
    print(f"sample_pairs: {len(brute_pairs)} (fast search equals all-pairs scan: {same})")
    print(f"ratio_baseline_over_dedup: {brute_s / dedup_s:.1f}")
    print(f"ratio_baseline_over_total: {brute_s / ours_s:.1f}")
    print(f"peak_rss_gib: {peak:.2f} (after building the corpus: {corpus_gib:.2f})")
    time_verdict = "met" if ours_s < TARGET_S else "missed"
    memory_verdict = "met" if peak < TARGET_GIB else "missed"
    print(f"target: total {ours_s:.1f} s < {TARGET_S:.0f} s: {time_verdict}")
    print(f"target: peak {peak:.2f} GiB < {TARGET_GIB} GiB: {memory_verdict}")


if __name__ == "__main__":
    main()
