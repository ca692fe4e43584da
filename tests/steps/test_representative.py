"""Greedy facility location with a bonus: the methods against a from-definition greedy and brute force."""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest

import culturealign.steps.representative as selection
from culturealign.errors import UserError
from culturealign.steps.objectives import coverage
from culturealign.steps.representative import SelectRepresentativeDistinctive, greedy_select, random_select


def unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def objective(x: np.ndarray, chosen, bonus: np.ndarray, lam: float) -> float:
    return coverage(x, list(chosen)) + lam * float(bonus[list(chosen)].sum())


def greedy_by_definition(x: np.ndarray, k: int, bonus: np.ndarray, lam: float) -> list[int]:
    """Greedy straight from the definition: score every S + {j} with the objective itself."""
    chosen: list[int] = []
    for _ in range(k):
        rest = [j for j in range(len(x)) if j not in chosen]
        chosen.append(max(rest, key=lambda j: objective(x, [*chosen, j], bonus, lam)))
    return chosen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("lam", [0.0, 0.05])
@pytest.mark.parametrize("method", ["naive", "lazy"])
def test_greedy_matches_the_definition_and_the_brute_force_bound(method, lam, seed):
    x, bonus = unit(8, 3, seed), np.abs(np.random.default_rng(100 + seed).standard_normal(8))
    got = greedy_select(x, 3, bonus=bonus, lam=lam, method=method)
    assert got == greedy_by_definition(x, 3, bonus, lam)
    # Greedy is not the optimum in general (on these 8-point sets it misses it about a third of the time),
    # but with a non-negative bonus the objective is monotone submodular: greedy reaches 1 - 1/e of it.
    opt = max(objective(x, s, bonus, lam) for s in itertools.combinations(range(8), 3))
    assert objective(x, got, bonus, lam) >= (1 - 1 / math.e) * opt - 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_greedy_matches_the_definition_with_a_signed_bonus(seed):
    x, bonus = unit(8, 3, seed), np.random.default_rng(200 + seed).standard_normal(8)
    expected = greedy_by_definition(x, 3, bonus, 0.1)
    assert greedy_select(x, 3, bonus, 0.1, "naive") == greedy_select(x, 3, bonus, 0.1, "lazy") == expected


@pytest.mark.parametrize(
    ("dim", "lam", "seed"), [(384, 0.0, 0), (384, 0.01, 1), *itertools.product([8], [0.0, 0.01], range(3))]
)
def test_lazy_picks_what_naive_picks(dim, lam, seed):
    x, bonus = unit(300, dim, seed), np.random.default_rng(seed).standard_normal(300)
    assert greedy_select(x, 25, bonus, lam, "lazy") == greedy_select(x, 25, bonus, lam, "naive")


def test_lazy_picks_what_naive_picks_on_a_sampled_reference():
    x = unit(2500, 16, 0)  # more than max_reference: coverage is estimated on a sample
    assert greedy_select(x, 15, method="lazy", max_reference=500) == greedy_select(
        x, 15, method="naive", max_reference=500
    )


def test_large_candidate_sets_cover_a_seeded_sample():
    x = unit(600, 8, 1)
    sample = np.sort(np.random.default_rng(7).choice(600, 100, replace=False))
    assert greedy_select(x, 10, seed=7, max_reference=100) == greedy_select(x, 10, reference=x[sample])
    assert greedy_select(x, 10, max_reference=1000) == greedy_select(x, 10, reference=x)


@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_stochastic_reaches_95_percent_of_lazy(lam):
    x, bonus = unit(2000, 32, 3), np.abs(np.random.default_rng(3).standard_normal(2000))
    lazy = greedy_select(x, 40, bonus, lam, "lazy")
    stochastic = greedy_select(x, 40, bonus, lam, "stochastic", seed=1)
    assert len(set(stochastic)) == 40
    assert objective(x, stochastic, bonus, lam) >= 0.95 * objective(x, lazy, bonus, lam)


def test_greedy_beats_random_and_orders_by_gain():
    x = unit(500, 8, 4)
    chosen = greedy_select(x, 20)
    assert coverage(x, chosen) > coverage(x, random_select(500, 20, seed=0))
    gains = [coverage(x, chosen[: i + 1]) - coverage(x, chosen[:i]) for i in range(20)]
    assert all(a >= b - 1e-6 for a, b in itertools.pairwise(gains))  # submodular: gains shrink


def test_a_large_bonus_picks_the_top_bonus_items():
    x, bonus = unit(50, 4, 5), np.arange(50.0)
    assert greedy_select(x, 5, bonus, lam=100.0, method="stochastic") == [49, 48, 47, 46, 45]


def test_greedy_select_rejects_bad_arguments():
    x = unit(5, 3, 0)
    with pytest.raises(ValueError, match="method must be one of naive, lazy, stochastic"):
        greedy_select(x, 2, method="fast")
    with pytest.raises(ValueError, match=r"k must be between 0 and the number of candidates \(5\)"):
        greedy_select(x, 6)
    with pytest.raises(ValueError, match="one finite number per candidate"):
        greedy_select(x, 2, bonus=np.ones(4), lam=1.0)
    assert greedy_select(x, 0) == []


def test_random_select_is_seeded_and_distinct():
    a = random_select(100, 10, seed=3)
    assert a == random_select(100, 10, seed=3) and len(set(a)) == 10 and all(0 <= i < 100 for i in a)
    with pytest.raises(ValueError, match="k must be between 0 and n"):
        random_select(3, 4)


def fake_embed(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors, one per text (seeded by the text), standing in for the sentence embedder."""
    rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(16) for t in texts]
    x = np.array(rows)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_step_selects_k_per_culture_and_reports(monkeypatch):
    monkeypatch.setattr(selection, "embed", fake_embed)
    records = [{"text": f"answer {i}", "culture": "DEU" if i % 3 else "JPN", "score": float(i % 7)} for i in range(60)]
    step = SelectRepresentativeDistinctive(
        text_of=lambda r: r["text"], group_of=lambda r: r["culture"], bonus_of=lambda r: r["score"], k=12, lam=1.0
    )
    out = list(step.run(records))

    jpn = [r for r in records if r["culture"] == "JPN"]  # 20, record 0 is JPN: first seen, first out
    deu = [r for r in records if r["culture"] == "DEU"]  # 40
    assert len(out) == 24
    for group, items, picked in (("JPN", jpn, out[:12]), ("DEU", deu, out[12:])):
        emb = fake_embed([r["text"] for r in items])
        raw = np.array([r["score"] for r in items])
        z = (raw - raw.mean()) / raw.std()
        expected = greedy_select(emb, 12, bonus=z / 12, lam=1.0)
        assert picked == [items[i] for i in expected]  # selection order
        stats = step.stats["per_group"][group]
        assert (stats["candidates"], stats["selected"]) == (len(items), 12)
        assert stats["coverage"] == pytest.approx(coverage(emb, expected))
        baseline = random_select(len(items), 12, 0)
        assert stats["coverage_random"] == pytest.approx(coverage(emb, baseline))
        assert stats["mean_bonus"] == pytest.approx(raw[expected].mean())
        assert stats["mean_bonus"] > stats["mean_bonus_random"]
    assert (step.stats["total"], step.stats["kept"], step.stats["dropped"]) == (60, 24, 36)
    assert step.stats["dropped_by_reason"] == {"not selected (coverage + distinctiveness)": 36}
    assert {id(r) for r, _ in step.dropped}.isdisjoint({id(r) for r in out})


def test_step_keeps_small_groups_whole_and_works_without_bonus(monkeypatch):
    monkeypatch.setattr(selection, "embed", fake_embed)
    records = [("x", "one"), ("y", "one"), ("z", "two")]
    step = SelectRepresentativeDistinctive(text_of=lambda r: r[0], group_of=lambda r: r[1], k=5, method="naive")
    assert sorted(step.run(records)) == sorted(records)
    assert step.stats["per_group"]["one"]["coverage"] == pytest.approx(1.0)
    assert step.stats["per_group"]["two"]["mean_bonus"] is None
    assert step.dropped == []


def test_step_checks_its_settings():
    with pytest.raises(UserError, match="k must be > 0"):
        SelectRepresentativeDistinctive(str, str, k=0)
    with pytest.raises(UserError, match="method must be one of"):
        SelectRepresentativeDistinctive(str, str, method="fast")
    with pytest.raises(UserError, match="lam must be >= 0"):
        SelectRepresentativeDistinctive(str, str, lam=-1)
