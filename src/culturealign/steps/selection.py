"""Representative and distinctive selection (CAReDiO): greedy facility location plus a per-item bonus.

In: any records. Out: per culture (``group_of``), the ``k`` records that greedily maximize
``F(S) + lam * sum_{j in S} bonus_j``, in selection order; the rest are dropped with a reason. ``F`` is the
facility-location coverage of :func:`culturealign.steps.objectives.coverage` (representativeness) and the bonus
is a per-record score such as :func:`~culturealign.steps.objectives.distinctiveness`; this is **this project's
reading of the paper**, whose formulas are not public. ``F`` is monotone submodular and the bonus term modular,
so greedy selection gives the usual ``1 - 1/e`` guarantee when the bonus term is non-negative; with signed
(z-scored) bonuses the greedy order is still well defined and exact, only that guarantee weakens.

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
CHUNK_ENTRIES = 1 << 19  # candidate x reference similarities per chunk: 2 MiB of float32, stays in cache


def _gains(rows: np.ndarray, ref: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Coverage gain ``sum_i max(sim(ref_i, row) - best_i, 0)`` of each row (float32 chunks, float64 out)."""
    out = np.empty(rows.shape[0], dtype=np.float64)
    step = max(1, CHUNK_ENTRIES // ref.shape[0])
    for start in range(0, rows.shape[0], step):
        sims = rows[start : start + step] @ ref.T
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
        method: ``"naive"`` recomputes every gain each step (the reference); ``"lazy"`` keeps stale gains as
            upper bounds and refreshes only the top ones (same result as naive, ties to the lowest index);
            ``"stochastic"`` (Mirzasoleiman et al. 2015) takes the best of a random sample of
            ``(N / k) log(1 / epsilon)`` candidates each step, ``1 - 1/e - epsilon`` in expectation.
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

    def gains(idx: np.ndarray | None = None) -> np.ndarray:
        rows = x if idx is None else x[idx]
        return _gains(rows, ref, best) * scale + (extra if idx is None else extra[idx])

    if method == "lazy":
        bound = gains()  # upper bounds on each candidate's current gain (exact when fresh_at == this step)
        fresh_at = np.zeros(n, dtype=np.int64)
    sample = min(n, math.ceil(n / max(k, 1) * math.log(1 / epsilon)))
    for t in range(k):
        if method == "naive":
            g = gains()
            g[taken] = -np.inf
            j = int(np.argmax(g))
        elif method == "stochastic":
            pool = np.flatnonzero(~taken)
            idx = pool if sample >= pool.size else np.sort(rng.choice(pool, sample, replace=False))
            j = int(idx[np.argmax(gains(idx))])
        else:
            # Refresh the stale candidates with the highest bounds, doubling the batch, until the top is fresh:
            # its exact gain then beats every other bound, so it is naive's pick (argmax ties -> lowest index).
            batch = 8
            while fresh_at[j := int(np.argmax(bound))] != t:
                top = np.argpartition(bound, n - batch)[n - batch :] if batch < n else np.arange(n)
                top = top[(fresh_at[top] != t) & ~taken[top]]
                bound[top] = gains(top)
                fresh_at[top] = t
                batch = min(2 * batch, n)
            bound[j] = -np.inf
        taken[j] = True
        selected.append(j)
        np.maximum(best, ref @ x[j], out=best)
    return selected


def random_select(n: int, k: int, seed: int = 0) -> list[int]:
    """``k`` distinct indices out of ``n``, seeded: the ablation baseline for :func:`greedy_select`."""
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n ({n}), got {k}")
    return np.random.default_rng(seed).choice(n, k, replace=False).tolist()
