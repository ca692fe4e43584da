"""SimHash: fingerprints checked by hand, the Hamming threshold, exact pair search, greedy dedup, splits, leakage."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from culturealign.errors import UserError
from culturealign.simhash import (
    _block_counts,
    _pairs_brute,
    dedup_parents,
    greedy_keep,
    greedy_parents,
    hamming,
    leakage_rate,
    near_any,
    near_duplicates,
    shingles,
    simhash,
    split_indices,
)
from culturealign.steps.simhash import SimHashDedup


def _h(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "little")


def _flip(fp: int, bits: list[int]) -> int:
    for b in bits:
        fp ^= 1 << b
    return fp


def _brute(fps: np.ndarray, k: int) -> np.ndarray:
    i, j = np.nonzero(np.triu(hamming(fps[:, None], fps[None, :]) <= k, 1))
    return np.stack([i, j], axis=1)


def _planted(seed: int = 0, base: int = 1500, per_distance: int = 100, distances=range(15)) -> np.ndarray:
    """Random fingerprints plus copies of some of them with exactly d bits flipped, for each d (0 = identical)."""
    rng = np.random.default_rng(seed)
    fps = [int(x) for x in rng.integers(0, 2**64, base, dtype=np.uint64)]
    for d in distances:
        for src in rng.integers(0, base, per_distance):
            fps.append(_flip(fps[src], [int(b) for b in rng.choice(64, d, replace=False)]))
    out = np.array(fps, dtype=np.uint64)
    rng.shuffle(out)
    return out


# --- fingerprints -------------------------------------------------------------------------------------------


def test_one_shingle_gives_its_own_hash():
    assert simhash(["a b c"])[0] == _h("a b c")
    assert simhash(["Hello, World!"])[0] == _h("hello world")  # shorter than n: one shingle of what it has
    assert simhash(["x"], ngram=1)[0] == _h("x")


def test_bitwise_majority_of_three_shingles():
    a, b, c = _h("a b c"), _h("b c d"), _h("c d e")
    assert shingles("A b, c d e!") == ["a b c", "b c d", "c d e"]
    assert simhash(["a b c d e"])[0] == (a & b) | (a & c) | (b & c)


def test_a_tie_takes_the_first_shingles_bit_and_a_repeated_shingle_counts_twice():
    a, b, c, d = _h("a b c"), _h("b c d"), _h("c d e"), _h("d e f")
    assert simhash(["a b c d"])[0] == a  # each bit: both agree, or a tie that a decides
    by_hand = 0
    for j in range(64):
        ones = sum(h >> j & 1 for h in (a, b, c, d))
        by_hand |= int(ones > 2 or (ones == 2 and a >> j & 1)) << j
    assert simhash(["a b c d e f"])[0] == by_hand
    assert simhash(["p q p q"], ngram=2)[0] == _h("p q")  # "p q" twice beats "q p" once


def test_identical_after_normalizing_means_identical_fingerprints():
    fps = simhash(["How often do you pray?", "how OFTEN, do you pray", "How often do you sing?"])
    assert fps.dtype == np.uint64
    assert fps[0] == fps[1] != fps[2]


def test_texts_without_words_get_zero_and_order_is_kept():
    fps = simhash(["", "...", "one", "two words"])
    assert fps.tolist()[:2] == [0, 0]
    assert fps[2] == _h("one") and fps[3] == _h("two words")
    assert len(simhash([])) == 0


def test_fingerprints_do_not_depend_on_batching(monkeypatch):
    import culturealign.simhash as mod

    texts = [f"text number {i} " + "word " * (i % 7) if i % 11 else "" for i in range(300)]
    whole = simhash(texts)
    for chunk in (1, 5, 64):
        monkeypatch.setattr(mod, "_CHUNK_SHINGLES", chunk)
        assert np.array_equal(simhash(texts), whole)
    assert whole[0] == 0 and whole[1] == simhash([texts[1]])[0]


def test_ngram_must_be_positive():
    with pytest.raises(UserError, match="ngram"):
        simhash(["a"], ngram=0)


# --- Hamming threshold ---------------------------------------------------------------------------------------


def test_hamming_counts_bits_and_broadcasts():
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(np.array([0b1011], dtype=np.uint64), np.array([0b0001, 0b1011], dtype=np.uint64)).tolist() == [2, 0]


@pytest.mark.parametrize("k", [0, 3, 10])
def test_distance_exactly_k_is_a_pair_and_k_plus_one_is_not(k):
    base = 0x0123456789ABCDEF
    at_k, beyond = _flip(base, list(range(0, 2 * k, 2))), _flip(base, list(range(1, 2 * k + 3, 2)))
    fps = np.array([base, at_k, beyond], dtype=np.uint64)
    assert hamming(fps[0], fps[1:]).tolist() == [k, k + 1]
    assert near_duplicates(fps, k).tolist() == [[0, 1]]
    assert greedy_keep(3, near_duplicates(fps, k)).tolist() == [True, False, True]


def test_threshold_must_be_a_distance():
    for bad in (-1, 65, 2.5, True):
        with pytest.raises(UserError, match="threshold"):
            near_duplicates(np.zeros(2, np.uint64), bad)


# --- exact pair search -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [10, 3, 14])
def test_near_duplicates_equal_brute_force_for_every_block_count(k):
    fps = _planted()
    assert len(fps) == 3000
    expected = _brute(fps, k)
    assert len(expected) > 0
    for blocks in [None] + [m for m in _block_counts(k) if m <= k + 4]:
        assert np.array_equal(near_duplicates(fps, k, blocks=blocks), expected), blocks


def test_planted_distances_are_found_up_to_the_threshold():
    rng = np.random.default_rng(3)
    base = int(rng.integers(0, 2**63))
    fps = np.array([base] + [_flip(base, list(range(d))) for d in range(15)], dtype=np.uint64)
    pairs = near_duplicates(fps, 10, blocks=14)
    partners = sorted(j for i, j in pairs.tolist() if i == 0)
    assert partners == list(range(1, 12))  # distances 0..10


def test_identical_groups_pair_completely():
    fps = np.array([7, 7, 7, 7 ^ 1, 2**40], dtype=np.uint64)
    assert near_duplicates(fps, 0).tolist() == [[0, 1], [0, 2], [1, 2]]
    assert near_duplicates(fps, 1).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_brute_force_scan_matches_a_double_loop():
    fps = _planted(seed=5, base=200, per_distance=10, distances=range(0, 13, 3))
    u = np.unique(fps)
    loop = [[i, j] for i in range(len(u)) for j in range(i + 1, len(u)) if bin(int(u[i]) ^ int(u[j])).count("1") <= 9]
    assert sorted(_pairs_brute(u, 9, chunk=64).tolist()) == loop


def test_bad_block_count_is_a_user_error():
    with pytest.raises(UserError, match="blocks"):
        near_duplicates(np.arange(5, dtype=np.uint64), 10, blocks=10)


# --- greedy dedup --------------------------------------------------------------------------------------------


def test_chain_drops_the_middle_and_keeps_the_end():
    # a~b and b~c but not a~c: b goes (near a, kept), c stays (near only b, which was dropped)
    assert greedy_keep(3, np.array([[0, 1], [1, 2]])).tolist() == [True, False, True]
    assert greedy_parents(3, np.array([[2, 1], [1, 0]])).tolist() == [-1, 0, -1]  # pair order does not matter
    assert greedy_keep(3, np.array([[0, 1], [1, 2], [0, 2]])).tolist() == [True, False, False]
    assert greedy_keep(2, np.zeros((0, 2), np.int64)).tolist() == [True, True]


def test_dedup_parents_equals_greedy_over_all_pairs():
    fps = _planted(seed=1)
    fps = np.concatenate([fps, fps[:200]])  # more identical copies, some after their near-duplicates
    expected = greedy_parents(len(fps), _brute(fps, 10))
    assert np.array_equal(dedup_parents(fps, 10), expected)


def test_dedup_of_a_chain_through_fingerprints():
    a = 0
    b = _flip(a, list(range(6)))
    c = _flip(b, list(range(6, 12)))  # a~b (6), b~c (6), a-c is 12
    fps = np.array([a, b, c, b, a], dtype=np.uint64)
    assert dedup_parents(fps, 10).tolist() == [-1, 0, -1, 0, 0]


# --- leakage and splits --------------------------------------------------------------------------------------------


def test_leakage_rate_on_planted_items():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**63, 50, dtype=np.uint64)
    b = rng.integers(0, 2**63, 10, dtype=np.uint64) | np.uint64(1 << 63)  # far from a (top bit differs, random rest)
    b[0], b[4], b[9] = a[3], _flip(int(a[10]), [1, 5, 60]), _flip(int(a[20]), list(range(10)))
    assert near_any(b, a, 10).tolist() == [True, False, False, False, True, False, False, False, False, True]
    assert leakage_rate(a, b, 10) == pytest.approx(0.3)
    assert leakage_rate(a, b, 2) == pytest.approx(0.1)
    assert leakage_rate(a, b[:0]) == 0.0 and leakage_rate(a[:0], b) == 0.0


def test_split_is_seeded_disjoint_and_sized():
    train, val, test = split_indices(1000, seed=42)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1000))
    again = split_indices(1000, seed=42)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again, strict=True))
    assert not np.array_equal(split_indices(1000, seed=43)[1], val)
    assert [len(p) for p in split_indices(7, seed=0)] == [6, 0, 1]  # cumulative rounding: 5.6 -> 6, 6.3 -> 6, 7
    with pytest.raises(UserError, match="sum to 1"):
        split_indices(10, 0, (0.8, 0.1))


# --- the step ----------------------------------------------------------------------------------------------------

TEXTS = {
    "a": "the lantern festival lights the old town river every spring evening",
    "b": "the lantern festival lights the old town river every spring night",  # one word off a
    "c": "street food stalls sell dumplings and sweet rice cakes near the temple",
    "d": "The lantern festival lights the old town river, every spring evening!",  # a again
    "e": "masked dancers perform the harvest dance in the village square",
}


def test_step_drops_near_duplicates_with_reasons_and_stats():
    records = [{"id": k, "q": v} for k, v in TEXTS.items()]
    fps = simhash(TEXTS.values())
    assert hamming(fps[0], fps[1]) <= 10 < hamming(fps[0], fps[2])
    step = SimHashDedup(text_of=lambda r: r["q"])
    out = list(step.run(records))
    assert [r["id"] for r in out] == ["a", "c", "e"]
    assert [(r["id"], why) for r, why in step.dropped] == [
        ("b", "near-duplicate (hamming <= 10) of a"),
        ("d", "near-duplicate (hamming <= 10) of a"),
    ]
    assert step.stats["total"] == 5 and step.stats["kept"] == 3 and step.stats["dropped"] == 2
    assert step.stats["dropped_by_reason"] == {"near-duplicate (hamming <= 10)": 2}


def test_step_drops_leaks_of_the_evaluation_set_first():
    step = SimHashDedup(text_of=lambda r: r, reference_texts=[TEXTS["c"].upper(), "unrelated words entirely here"])
    out = list(step.run([TEXTS["c"], TEXTS["a"], TEXTS["b"], TEXTS["e"]]))
    assert out == [TEXTS["a"], TEXTS["e"]]
    assert [why for _, why in step.dropped] == ["leaks evaluation item", "near-duplicate (hamming <= 10) of record 1"]
    assert step.stats["dropped_by_reason"] == {"leaks evaluation item": 1, "near-duplicate (hamming <= 10)": 1}
    assert step.stats["leaked"] == 1 and step.stats["reference_texts"] == 2


def test_step_threshold_zero_keeps_near_duplicates_and_empty_input():
    step = SimHashDedup(text_of=lambda r: r, threshold=0)
    assert list(step.run([TEXTS["a"], TEXTS["b"], TEXTS["d"]])) == [TEXTS["a"], TEXTS["b"]]
    empty = SimHashDedup(text_of=lambda r: r)
    assert list(empty.run([])) == []
    assert empty.stats == {"total": 0, "kept": 0, "dropped": 0, "leaked": 0, "reference_texts": 0}
    with pytest.raises(UserError, match="threshold"):
        SimHashDedup(threshold=-1)
