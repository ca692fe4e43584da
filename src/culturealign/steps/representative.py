"""Representative and distinctive selection (CAReDiO): greedy facility location plus a per-item bonus.

In: any records. Out: per culture (``group_of``), the ``k`` records that greedily maximize
``F(S) + lam * sum_{j in S} bonus_j``, in selection order; the rest are dropped with a reason. ``F`` is the
facility-location coverage of :func:`culturealign.steps.objectives.coverage` (representativeness) and the bonus
is a per-record score such as :func:`~culturealign.steps.objectives.distinctiveness`; this is **this project's
reading of the paper**, whose formulas are not public. ``F`` is monotone submodular and the bonus term modular,
so greedy selection gives the usual ``1 - 1/e`` guarantee when the bonus term is non-negative; with signed
(z-scored) bonuses that guarantee weakens, but the greedy picks are the same and lazy evaluation stays exact.

Scale: covering all N candidates needs an N x N similarity (10^10 entries at N = 100,000). When ``reference``
is None and N exceeds ``max_reference``, the points to cover are a seeded random sample of ``max_reference``
candidates, so coverage is *estimated on a sample* (an unbiased estimate of the mean for any fixed S).
Marginal gains come from a running vector ``best[i] = max_{j in S} sim(ref_i, j)`` as
``sum_i max(sim(ref_i, j) - best_i, 0)``, computed in float32 chunks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from culturealign.errors import UserError
from culturealign.steps.base import Step
from culturealign.steps.dedup import embed
from culturealign.steps.objectives import coverage

logger = logging.getLogger(__name__)

METHODS = ("naive", "lazy", "stochastic")
CHUNK_ENTRIES = 1 << 21  # candidate x reference similarities per chunk: 8 MiB of float32


def _gains(x: np.ndarray, idx: np.ndarray, ref: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Coverage gain ``sum_i max(sim(ref_i, x_j) - best_i, 0)`` of each row ``j`` in ``idx`` (float32 chunks)."""
    out = np.empty(idx.size, dtype=np.float64)
    step = max(1, CHUNK_ENTRIES // ref.shape[0])
    for start in range(0, idx.size, step):
        sims = x[idx[start : start + step]] @ ref.T
        np.subtract(sims, best, out=sims)
        np.maximum(sims, 0, out=sims)
        out[start : start + step] = sims.sum(axis=1)
    return out


def greedy_select(
    emb: np.ndarray,
    k: int,
    bonus: np.ndarray | None = None,
    lam: float = 0.0,
    method: str = "lazy",
    reference: np.ndarray | None = None,
    seed: int = 0,
    epsilon: float = 0.01,
    max_reference: int = 2048,
) -> list[int]:
    """Greedily pick ``k`` rows of ``emb`` maximizing coverage of the reference plus ``lam`` times their bonus.

    Args:
        emb: ``[N, D]`` unit-normalized candidate embeddings.
        k: how many to pick (at most N).
        bonus: ``[N]`` per-candidate score added with weight ``lam`` (e.g. z-scored distinctiveness); none if None.
        lam: weight of the bonus against coverage, which lies in [0, 1].
        method: ``"naive"`` recomputes every gain each step (the reference); ``"lazy"`` keeps earlier gains as
            upper bounds and recomputes only candidates whose bound could still win (same picks as naive, ties
            to the lowest index); ``"stochastic"`` (Mirzasoleiman et al. 2015) takes the best of a random
            sample of ``(N / k) log(1 / epsilon)`` candidates each step (``1 - 1/e - epsilon`` of the optimum
            in expectation), finding it with the same lazy bounds.
        reference: ``[M, D]`` points to cover; None covers the candidates themselves, or a seeded sample of
            ``max_reference`` of them when N is larger (coverage then is estimated on that sample).
        seed: seeds the reference sample and the stochastic method's draws.
        epsilon: the stochastic method's accuracy/speed knob.
        max_reference: size of the sampled reference when ``reference`` is None.

    Returns:
        Indices into ``emb`` in selection order.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    x = np.ascontiguousarray(emb, dtype=np.float32)
    n = x.shape[0]
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and the number of candidates ({n}), got {k}")
    if not 0 < epsilon < 1:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    extra = np.zeros(n) if bonus is None else lam * np.asarray(bonus, dtype=np.float64)
    if extra.shape != (n,) or not np.all(np.isfinite(extra)):
        raise ValueError(f"bonus must hold one finite number per candidate ({n}), got shape {extra.shape}")
    rng = np.random.default_rng(seed)
    if reference is not None:
        ref = np.ascontiguousarray(reference, dtype=np.float32)
    elif n > max_reference:
        ref = x[np.sort(rng.choice(n, max_reference, replace=False))]
    else:
        ref = x
    best = np.zeros(ref.shape[0], dtype=np.float32)
    scale = 1.0 / ref.shape[0]
    taken = np.zeros(n, dtype=bool)
    selected: list[int] = []

    def gains(idx: np.ndarray) -> np.ndarray:
        return _gains(x, idx, ref, best) * scale + extra[idx]

    # Lazy evaluation: by submodularity a gain computed at an earlier step bounds the gain now from above, so
    # only candidates whose stale bound beats the best fresh gain need recomputing. fresh_at[j] == t: exact.
    bound = np.full(n, np.inf)
    fresh_at = np.full(n, -1)

    def lazy_argmax(cand: np.ndarray, t: int) -> int:
        """The candidate of ``cand`` (sorted) with the highest exact gain, lowest index on ties, like argmax."""
        new = cand[bound[cand] == np.inf]
        bound[new], fresh_at[new] = gains(new), t
        b = bound[cand]
        batch = 8
        # Refresh the stale candidates with the highest bounds, doubling the batch, until the top is fresh: its
        # exact gain then beats every other bound.
        while fresh_at[j := int(cand[np.argmax(b)])] != t:
            top = np.argpartition(b, b.size - batch)[b.size - batch :] if batch < b.size else np.arange(b.size)
            top = top[fresh_at[cand[top]] != t]
            b[top] = bound[cand[top]] = gains(cand[top])
            fresh_at[cand[top]] = t
            batch = min(2 * batch, b.size)
        return j

    sample = min(n, math.ceil(n / max(k, 1) * math.log(1 / epsilon)))
    for t in range(k):
        pool = np.flatnonzero(~taken)
        if method == "naive":
            j = int(pool[np.argmax(gains(pool))])
        elif method == "lazy":
            j = lazy_argmax(pool, t)
        else:  # the best of a random sample, found lazily (same pick as evaluating the whole sample)
            j = lazy_argmax(pool if sample >= pool.size else np.sort(rng.choice(pool, sample, replace=False)), t)
        taken[j] = True
        selected.append(j)
        np.maximum(best, ref @ x[j], out=best)
    return selected


def random_select(n: int, k: int, seed: int = 0) -> list[int]:
    """``k`` distinct indices out of ``n``, seeded: the ablation baseline for :func:`greedy_select`."""
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n ({n}), got {k}")
    return np.random.default_rng(seed).choice(n, k, replace=False).tolist()


class SelectRepresentativeDistinctive(Step):
    """Per culture, keep the ``k`` records that best cover the culture's data and score highest on the bonus.

    The bonus (e.g. distinctiveness) is z-scored within each culture and divided by the culture's ``k``, so the
    objective is ``coverage + lam * mean z-bonus of S``: both terms are on a scale of about one whatever ``k``,
    and ``lam`` reads as "one standard deviation of mean bonus is worth ``lam`` of coverage". Stats per culture
    compare the selected set with a same-size random set (coverage over all the culture's records, mean bonus).
    """

    name = "select-representative"

    def __init__(
        self,
        text_of: Callable[[Any], str],
        group_of: Callable[[Any], str],
        bonus_of: Callable[[Any], float] | None = None,
        k: int = 100,
        lam: float = 0.5,
        method: str = "lazy",
        seed: int = 0,
    ):
        super().__init__()
        if k <= 0:
            raise UserError(f"select-representative k must be > 0, got {k}")
        if lam < 0:
            raise UserError(f"select-representative lam must be >= 0, got {lam}")
        if method not in METHODS:
            raise UserError(f"select-representative method must be one of {', '.join(METHODS)}, got {method!r}")
        self.text_of, self.group_of, self.bonus_of = text_of, group_of, bonus_of
        self.k, self.lam, self.method, self.seed = k, lam, method, seed

    def run(self, records: Iterable[Any]) -> Iterator[Any]:
        groups: dict[str, list[Any]] = {}
        for record in records:
            groups.setdefault(self.group_of(record), []).append(record)
        per_group: dict[str, dict[str, Any]] = {}
        for group, items in groups.items():
            emb = np.asarray(embed([self.text_of(r) for r in items]), dtype=np.float32)
            k = min(self.k, len(items))
            raw = None if self.bonus_of is None else np.array([self.bonus_of(r) for r in items], dtype=np.float64)
            bonus = None if raw is None else _zscore(raw) / k
            chosen = greedy_select(emb, k, bonus=bonus, lam=self.lam, method=self.method, seed=self.seed)
            baseline = random_select(len(items), k, self.seed)
            per_group[group] = {
                "candidates": len(items),
                "selected": k,
                "coverage": coverage(emb, chosen),
                "coverage_random": coverage(emb, baseline),
                "mean_bonus": None if raw is None else float(raw[chosen].mean()),
                "mean_bonus_random": None if raw is None else float(raw[baseline].mean()),
            }
            logger.info("%s: selected %d of %d, coverage %.3f", group, k, len(items), per_group[group]["coverage"])
            for i in chosen:
                yield items[i]
            keep = set(chosen)
            for i, record in enumerate(items):
                if i not in keep:
                    self.drop(record, "not selected (coverage + distinctiveness)")
        total = sum(len(items) for items in groups.values())
        kept = sum(g["selected"] for g in per_group.values())
        self.stats.update(total=total, kept=kept, dropped=total - kept, per_group=per_group)


def _zscore(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """Standardize within a group so the bonus weight means the same for every culture; all-equal -> zeros."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return np.zeros_like(x) if sd == 0 else (x - x.mean()) / sd
