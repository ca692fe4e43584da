"""Cultural relations: does the model see the same cultural map as the people?

From culture-aware WVS items, each culture's answer vector (the model's top codes) and the survey's (majority
codes); between two cultures, CultureSPA's score of one vector against the other over the questions both
answered. The model's culture x culture matrix is set beside the survey's; their Spearman rank correlation over
culture pairs says whether the model orders cultural closeness as the people's answers do. Its p-value comes from
a Mantel test: the pairs share cultures (with 14 cultures each takes part in 13 of the 91 pairs), so they are not
independent and ``spearmanr``'s p-value, which assumes they are, is too small; permuting the cultures' labels keeps
that dependence in the null distribution.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import pearsonr, permutation_test, rankdata, spearmanr

from culturealign.evaluate.metrics import culturespa_score
from culturealign.evaluate.wvs import WVSItem

N_PERMUTATIONS = 9999
PERM_BATCH_ELEMENTS = 2_000_000  # floats per permutation batch, to bound memory with many cultures


def similarity_matrix(vectors: dict[str, dict[str, str]], n_options: dict[str, int]) -> tuple[list[str], list[list]]:
    """CultureSPA score between every two cultures' code vectors (over shared questions); 1.0 on the diagonal."""
    cultures = sorted(vectors)
    matrix = []
    for a in cultures:
        row = []
        for b in cultures:
            shared = sorted(set(vectors[a]) & set(vectors[b]))
            row.append(
                culturespa_score(
                    [float(vectors[a][q]) for q in shared],
                    [float(vectors[b][q]) for q in shared],
                    [n_options[q] for q in shared],
                )
            )
        matrix.append(row)
    return cultures, matrix


def mantel(
    x: Sequence[Sequence[float]], y: Sequence[Sequence[float]], n_permutations: int = N_PERMUTATIONS, seed: int = 0
) -> dict[str, Any]:
    """Spearman's rho between the upper triangles of two symmetric culture x culture matrices, and its Mantel p.

    The null distribution permutes the culture labels of ``y`` (rows and columns together) and recomputes rho on
    the upper triangles; one-sided (rho greater than by chance: the model's map resembles the people's), as Mantel
    tests usually are. With at most ``n_permutations`` relabellings in all (n! <= ``n_permutations``: up to 7
    cultures by default) every one is tried and the p-value is exact; otherwise ``n_permutations`` random ones
    (seeded) and p = (k + 1) / (n_permutations + 1). NaN with fewer than 3 pairs or a constant triangle.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    upper = np.triu_indices(len(a), 1)
    xs, ys = a[upper], b[upper]
    if len(xs) < 3 or not np.isfinite([*xs, *ys]).all() or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return {"spearman": math.nan, "p_value": math.nan, "n_permutations": 0, "exact": False}
    # a relabelling moves the pairs' values, not the values themselves, so the pairs' ranks move with them: rank once
    x_ranks, y_ranks = rankdata(xs), np.zeros_like(b)
    y_ranks[upper] = rankdata(ys)
    y_ranks += y_ranks.T

    def statistic(labels: np.ndarray, axis: int = -1) -> np.ndarray:  # labels: (..., culture) a permutation of them
        return pearsonr(x_ranks, y_ranks[labels[..., upper[0]], labels[..., upper[1]]], axis=-1).statistic

    res = permutation_test(
        (np.arange(len(a)),),
        statistic,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=n_permutations,
        batch=max(1, PERM_BATCH_ELEMENTS // len(xs)),
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return {
        "spearman": float(spearmanr(xs, ys).statistic),
        "p_value": float(res.pvalue),
        "n_permutations": len(res.null_distribution),
        "exact": math.factorial(len(a)) <= n_permutations,
    }


def cultural_relations(
    items: Sequence[WVSItem], n_permutations: int = N_PERMUTATIONS, seed: int = 0
) -> dict[str, Any]:
    """Model and survey culture x culture matrices, their Spearman correlation over culture pairs and its Mantel
    permutation p-value (``mantel``: how it was computed is kept beside it)."""
    model: dict[str, dict[str, str]] = defaultdict(dict)
    people: dict[str, dict[str, str]] = defaultdict(dict)
    n_options: dict[str, int] = {}
    for it in items:
        model[it.culture][it.question_id] = it.choice
        people[it.culture][it.question_id] = it.majority
        n_options[it.question_id] = len(it.model)
    cultures, model_matrix = similarity_matrix(model, n_options)
    _, survey_matrix = similarity_matrix(people, n_options)
    test = mantel(model_matrix, survey_matrix, n_permutations, seed)
    return {
        "cultures": cultures,
        "model_matrix": model_matrix,
        "survey_matrix": survey_matrix,
        **test,
        "p_method": "Mantel: culture labels of the survey matrix permuted, one-sided (rho greater)",
        "seed": seed,
        "n_pairs": len(cultures) * (len(cultures) - 1) // 2,
    }
