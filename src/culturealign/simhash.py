"""SimHash near-duplicates: 64-bit fingerprints, an exact Hamming-radius pair search, greedy dedup, splits, leakage.

AlignCultura deduplicates with SimHash at Hamming distance <= 10 and reports the leakage between its 80/10/10
splits; this module does both for a million texts on a 2-core machine (``bench/bench_simhash.py``).

Fingerprints (Charikar, STOC 2002): a text is normalized (:func:`culturealign.text.normalize`: lower
case, punctuation to spaces), cut into word n-grams ("shingles"; a text shorter than n is one shingle of the
words it has), each shingle hashed to 64 bits (BLAKE2b, 8-byte digest of its UTF-8 text, read little-endian:
stable across processes and machines, unlike Python's ``hash``), and bit j of the fingerprint is 1 when more
than half of the shingles have bit j set (each occurrence weighs 1). A tie takes the first shingle's bit, as if it
weighed a little more: the textbook "tie gives 0" biases short texts toward 0 bits (an 8-word text has 6 shingles,
a tie on a third of its bits), which pulls unrelated texts together; on 200,000 synthetic texts of 8-20 words it
dropped 832 unrelated texts at k = 10 where first-shingle ties drop 184, the count expected of uniform random
fingerprints (it kept 96% of the planted near-copies found the other way). A text without words gets 0.

Pair search (exact, no misses): multi-index / pigeonhole blocking (Manku, Jain, Das Sarma, "Detecting
near-duplicates for web crawling", WWW 2007). The 64 bits are cut into m blocks; two fingerprints within
distance k differ in at most k blocks, so they agree on at least m - k blocks, hence on some (m - k)-subset.
One table per subset: sort the fingerprints by the subset's blocks (the key), and every pair inside a run of
equal keys is a candidate, checked with a popcount. A pair is reported only by the first subset of the blocks
it agrees on, so each pair comes out once. Identical fingerprints are grouped first (``np.unique``) and cost
nothing. The choice of m trades tables (C(m, k) sorts of n keys) against candidates (n^2/2 per 2^(key bits)).
For k = 10 and 1e6 random fingerprints, one thread, measured on the 2-core dev machine beside another 2-core job:
m = 13 (286 tables, 15-bit keys, 5e9 candidates) 61 s; m = 14 (1,001 tables, 18-bit keys, 2e9 candidates) 55 s;
m = 15 (3,003 tables) 114 s; m = 12 has ~2e10 candidates. :func:`near_duplicates` picks m by a cost model fitted
to such runs, and spreads the tables over threads (numpy's sorts, ufuncs and indexing release the GIL). Pure
numpy is enough: the work is a thousand sorts of a million integers; no library was needed.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from math import comb

import numpy as np

from culturealign.errors import UserError
from culturealign.text import normalize

DEFAULT_THRESHOLD = 10
_CHUNK_SHINGLES = 1 << 18  # shingles per bit-count batch: 2^18 x 64 float32 = 64 MiB
# Cost model of one search, seconds per unit, fitted to runs on the 2-core dev machine (1e6 random fingerprints).
_SORT_S = 30e-9  # per fingerprint per table: key, pack, sort, unpack, gather
_CANDIDATE_S = 12e-9  # per candidate pair: gather, xor, popcount
_BRUTE_S = 4e-9  # per pair of the all-pairs scan


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2.0 has a ufunc; pyproject still allows 1.26, so SWAR there)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)


def shingles(text: str, ngram: int = 3) -> list[str]:
    """Word n-grams of the normalized text (one shingle of all its words when it has fewer than n)."""
    words = normalize(text).split()
    return [" ".join(words[i : i + ngram]) for i in range(max(1, len(words) - ngram + 1))] if words else []


def simhash(texts: Iterable[str], ngram: int = 3) -> np.ndarray:
    """64-bit SimHash fingerprints (uint64, one per text) over word ``ngram``-shingles; see the module docstring.

    A shingle's hash is ``int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "little")``.
    """
    if ngram < 1:
        raise UserError(f"simhash ngram must be >= 1, got {ngram}")
    blake2b = hashlib.blake2b
    digests = bytearray()
    counts: list[int] = []
    for text in texts:
        grams = shingles(text, ngram)
        digests += b"".join([blake2b(g.encode("utf-8"), digest_size=8).digest() for g in grams])
        counts.append(len(grams))
    hashes = np.frombuffer(digests, dtype="<u8")
    n_grams = np.asarray(counts, dtype=np.int64)
    begins = np.cumsum(n_grams) - n_grams  # each text's first shingle
    out = np.zeros(len(counts), dtype=np.uint64)
    start = 0
    while start < len(counts):  # batches of about _CHUNK_SHINGLES shingles
        stop = max(int(np.searchsorted(begins, begins[start] + _CHUNK_SHINGLES)), start + 1)
        out[start:stop] = _majority(hashes, n_grams[start:stop], int(begins[start]))
        start = stop
    return out


def _majority(hashes: np.ndarray, n_grams: np.ndarray, first: int) -> np.ndarray:
    """Bitwise majority of each text's consecutive shingle hashes (a sparse text-by-shingle sum); first breaks ties."""
    from scipy.sparse import csr_matrix

    total = int(n_grams.sum())
    bits = np.unpackbits(hashes[first : first + total].view(np.uint8), bitorder="little").reshape(total, 64)
    indptr = np.concatenate([[0], np.cumsum(n_grams)])
    texts_by_grams = csr_matrix((np.ones(total, np.float32), np.arange(total), indptr), shape=(len(n_grams), total))
    votes = 2 * (texts_by_grams @ bits.astype(np.float32))
    has_words = n_grams > 0
    votes[has_words] += bits[indptr[:-1][has_words]]  # the first shingle breaks ties
    majority = votes > n_grams[:, None]
    return np.packbits(majority, axis=1, bitorder="little").view("<u8").ravel().astype(np.uint64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Hamming distance between uint64 fingerprints, elementwise with numpy broadcasting."""
    return _popcount(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))


def check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int | np.integer) or not 0 <= threshold <= 64:
        raise UserError(f"SimHash threshold must be an integer Hamming distance in [0, 64], got {threshold!r}")
    return int(threshold)


def _block_layout(m: int) -> list[tuple[int, int]]:
    """(offset, width) of m contiguous blocks covering 64 bits, the wider ones first."""
    base, extra = divmod(64, m)
    widths = [base + 1] * extra + [base] * (m - extra)
    return [(sum(widths[:b]), widths[b]) for b in range(m)]


def _table_cost(n: int, k: int, m: int) -> float:
    """Estimated seconds of the m-block search: C(m, k) tables, each a sort plus its candidates."""
    key_bits = (m - k) * 64 / m  # the mean key width
    return comb(m, k) * (n * _SORT_S + n * n / 2 * 2.0**-key_bits * _CANDIDATE_S)


def _block_counts(k: int) -> list[int]:
    """Block counts m usable for threshold k: keys of at most 32 bits (they share a uint64 with a position)."""
    return [m for m in range(k + 1, 65) if sum(w for _, w in _block_layout(m)[: m - k]) <= 32]


def _choose_blocks(n: int, k: int) -> int | None:
    """Cheapest block count by the cost model, or None when the all-pairs scan is cheaper."""
    options = [m for m in _block_counts(k) if comb(m, k) <= 20_000]
    best = min(options, key=lambda m: _table_cost(n, k, m), default=None)
    if best is None or n * n / 2 * _BRUTE_S < _table_cost(n, k, best):
        return None
    return best


def _pairs_brute(u: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """All pairs i < j with hamming(u[i], u[j]) <= k, by scanning every pair in tiles (the plain baseline)."""
    out = []
    for r0 in range(0, len(u), chunk):
        rows = u[r0 : r0 + chunk, None]
        for c0 in range(r0, len(u), chunk):
            i, j = np.nonzero(_popcount(rows ^ u[None, c0 : c0 + chunk]) <= k)
            i, j = i + r0, j + c0
            keep = i < j
            out.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.zeros((0, 2), np.int64)


def _pairs_tables(u: np.ndarray, k: int, m: int, threads: int) -> np.ndarray:
    """All pairs i < j of distinct fingerprints u within distance k, by m-block pigeonhole tables."""
    n = len(u)
    layout = _block_layout(m)
    blocks = [(u >> np.uint64(off)) & np.uint64((1 << w) - 1) for off, w in layout]
    index = np.arange(n, dtype=np.uint64)

    def table(subset: tuple[int, ...]) -> np.ndarray:
        key = blocks[subset[0]].copy()
        for b in subset[1:]:
            key <<= np.uint64(layout[b][1])
            key |= blocks[b]
        key <<= np.uint64(32)
        key |= index  # key in the high 32 bits, position in the low: one plain sort gives both
        key.sort()
        halves = key.view(np.uint32).reshape(-1, 2)  # the 32-bit halves of each sorted value, as a view
        low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
        order = halves[:, low].astype(np.intp)
        same = halves[1:, high] == halves[:-1, high]  # same[p]: p and p + 1 share the key
        fps = u[order]
        # neighbours in a run, streamed over the whole array; then p, p + step for step >= 2 on what is left
        lo = [np.flatnonzero(same & (_popcount(fps[1:] ^ fps[:-1]) <= k))]
        hi = [lo[0] + 1]
        start = np.flatnonzero(same[1:] & same[:-1])  # positions p whose run reaches p + step
        step = 2
        while start.size:
            hit = start[_popcount(fps[start] ^ fps[start + step]) <= k]
            lo.append(hit)
            hi.append(hit + step)
            start = start[start + step < same.size]
            start = start[same[start + step]]
            step += 1
        p, q = np.concatenate(lo), np.concatenate(hi)
        # a pair counts only in the first subset of the blocks it agrees on: earlier blocks outside it must differ
        x = fps[p] ^ fps[q]
        first = np.ones(len(p), bool)
        for b in range(subset[-1]):
            if b not in subset:
                off, w = layout[b]
                first &= ((x >> np.uint64(off)) & np.uint64((1 << w) - 1)) != 0
        return np.stack([order[p[first]], order[q[first]]], axis=1)

    subsets = list(combinations(range(m), m - k))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(table, subsets))
    else:
        parts = [table(s) for s in subsets]
    pairs = np.concatenate(parts).astype(np.int64)
    return np.sort(pairs, axis=1)


def _distinct_pairs(u: np.ndarray, k: int, blocks: int | None = None) -> np.ndarray:
    """Pairs (i < j, sorted rows) of the sorted distinct fingerprints ``u`` within distance k."""
    if k == 0 or len(u) < 2:
        return np.zeros((0, 2), np.int64)
    m = _choose_blocks(len(u), k) if blocks is None else blocks
    if m is None:
        pairs = _pairs_brute(u, k)
    else:
        if m not in _block_counts(k):
            raise UserError(f"blocks must be one of {_block_counts(k)} for threshold {k} (keys fit 32 bits), got {m}")
        pairs = _pairs_tables(u, k, m, threads=min(os.cpu_count() or 1, 8) if len(u) > 100_000 else 1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _repeat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of range(s, s + l) for each pair, vectorized."""
    total = int(lengths.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def near_duplicates(fps: np.ndarray, threshold: int = DEFAULT_THRESHOLD, blocks: int | None = None) -> np.ndarray:
    """Every pair of items within Hamming distance ``threshold``, exactly.

    Args:
        fps: uint64 fingerprints, one per item.
        threshold: largest Hamming distance that makes a pair.
        blocks: the pigeonhole block count m (``threshold`` < m, keys of at most 32 bits); None picks it by the
            cost model, or the all-pairs scan when that is cheaper (small inputs, large thresholds).

    Returns:
        int64 array (P, 2) of item indices, i < j in each row, rows sorted. Identical fingerprints pair up with
        each other, so P grows with the square of the largest group of identical items: to deduplicate, use
        :func:`dedup_parents`, which never lists those pairs.
    """
    k = check_threshold(threshold)
    fps = np.asarray(fps, dtype=np.uint64)
    u, inverse, counts = np.unique(fps, return_inverse=True, return_counts=True)
    members = np.argsort(inverse, kind="stable")  # items grouped by fingerprint, in input order within a group
    group_start = np.cumsum(counts) - counts
    # identical fingerprints: every pair inside a group
    pos = np.arange(len(fps))
    later = np.repeat(group_start + counts, counts) - pos - 1  # group members after each position
    first = np.repeat(pos, later)
    same = np.stack([members[first], members[_repeat_ranges(pos + 1, later)]], axis=1)
    # distinct fingerprints within k: every member of one group with every member of the other
    dp = _distinct_pairs(u, k, blocks)
    c0, c1 = counts[dp[:, 0]], counts[dp[:, 1]]
    t = _repeat_ranges(np.zeros(len(dp), np.int64), c0 * c1)
    a = np.repeat(group_start[dp[:, 0]], c0 * c1) + t // np.repeat(c1, c0 * c1)
    b = np.repeat(group_start[dp[:, 1]], c0 * c1) + t % np.repeat(c1, c0 * c1)
    cross = np.stack([members[a], members[b]], axis=1)
    pairs = np.sort(np.concatenate([same, cross]).astype(np.int64), axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def greedy_parents(n: int, pairs: np.ndarray) -> np.ndarray:
    """Greedy dedup in input order: -1 for a kept item, else the first earlier kept item it pairs with."""
    pairs = np.sort(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=1)
    pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]  # by later item: earlier items are decided first
    parent = [-1] * n
    for i, j in pairs.tolist():
        if parent[j] < 0 and parent[i] < 0 and i != j:
            parent[j] = i
    return np.asarray(parent, dtype=np.int64)


def greedy_keep(n: int, pairs: np.ndarray) -> np.ndarray:
    """Keep mask: an item is dropped when it pairs with an earlier kept item (so a~b~c keeps a and c)."""
    return greedy_parents(n, pairs) < 0


def dedup_parents(fps: np.ndarray, threshold: int = DEFAULT_THRESHOLD) -> np.ndarray:
    """:func:`greedy_parents` over all near-duplicate pairs, without listing pairs of identical fingerprints.

    Copies of a fingerprint never survive their first occurrence, so the greedy pass runs over distinct
    fingerprints in order of first occurrence, and copies follow their first: dropped as duplicates of it when it
    is kept, else of whatever it was dropped for.
    """
    k = check_threshold(threshold)
    fps = np.asarray(fps, dtype=np.uint64)
    u, first, inverse = np.unique(fps, return_index=True, return_inverse=True)
    rank = np.empty(len(u), np.int64)
    rank[np.argsort(first)] = np.arange(len(u))
    by_rank = np.empty(len(u), np.int64)
    by_rank[rank] = first  # item index of each distinct fingerprint, in order of first occurrence
    parent_rank = greedy_parents(len(u), rank[_distinct_pairs(u, k)])
    rep_parent = np.where(parent_rank < 0, -1, by_rank[np.maximum(parent_rank, 0)])
    group_first = first[inverse]
    own = rep_parent[rank[inverse]]
    return np.where(np.arange(len(fps)) == group_first, own, np.where(own < 0, group_first, own))


def near_any(fps: np.ndarray, reference: np.ndarray, threshold: int = DEFAULT_THRESHOLD) -> np.ndarray:
    """Boolean mask: which fingerprints lie within ``threshold`` of at least one reference fingerprint."""
    k = check_threshold(threshold)
    fps, reference = np.asarray(fps, dtype=np.uint64), np.asarray(reference, dtype=np.uint64)
    if not len(fps) or not len(reference):
        return np.zeros(len(fps), bool)
    u, inverse = np.unique(np.concatenate([reference, fps]), return_inverse=True)
    in_ref = np.zeros(len(u), bool)
    in_ref[inverse[: len(reference)]] = True
    hit = in_ref.copy()  # distance 0
    pairs = _distinct_pairs(u, k)
    hit[pairs[in_ref[pairs[:, 0]], 1]] = True
    hit[pairs[in_ref[pairs[:, 1]], 0]] = True
    return hit[inverse[len(reference) :]]


def leakage_rate(fps_a: np.ndarray, fps_b: np.ndarray, threshold: int = DEFAULT_THRESHOLD) -> float:
    """Share of the items of b within ``threshold`` of some item of a (0.0 when b is empty)."""
    mask = near_any(fps_b, fps_a, threshold)
    return float(mask.mean()) if len(mask) else 0.0


def split_indices(n: int, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """A seeded random split of range(n): one sorted index array per fraction, sizes rounded off cumulatively."""
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise UserError(f"split fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(fractions) * n).astype(np.int64)
    cuts[-1] = n
    return tuple(np.sort(part) for part in np.split(order, cuts[:-1]))
