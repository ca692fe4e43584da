"""Pure metric functions over answer distributions and option codes (no I/O, no models).

All scores are in [0, 1]; the CultureSPA paper reports its score x100.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance


def culturespa_score(model_codes: Sequence[float], majority_codes: Sequence[float], n_options: Sequence[int]) -> float:
    """CultureSPA alignment: 1 - ||a - g||_2 / ||n - 1||_2 over questions (Xu et al., NAACL 2025).

    ``a`` are the model's chosen codes, ``g`` each question's majority code, ``n`` each question's number of
    options, so the denominator is the largest possible distance.
    """
    a, g, n = (np.asarray(x, dtype=float) for x in (model_codes, majority_codes, n_options))
    if not len(a):
        return math.nan
    worst = np.linalg.norm(n - 1)
    return float(1 - np.linalg.norm(a - g) / worst) if worst > 0 else math.nan


def one_minus_jsd(p: Sequence[float], q: Sequence[float]) -> float:
    """1 - Jensen-Shannon distance (base 2, so in [0, 1]) between two distributions over the same options."""
    return float(1 - jensenshannon(np.asarray(p, float), np.asarray(q, float), base=2))


def wasserstein_normalized(codes: Sequence[float], p: Sequence[float], q: Sequence[float]) -> float:
    """Earth mover's distance between two distributions on an ordinal scale, divided by the scale's span."""
    values = np.asarray(codes, dtype=float)
    span = values.max() - values.min()
    return float(wasserstein_distance(values, values, p, q) / span) if span > 0 else 0.0


def majority(dist: dict[str, float]) -> str:
    """The most frequent answer code (ties go to the first code in option order)."""
    return max(dist, key=lambda c: dist[c])


def mean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else math.nan


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two distributions over the same options."""
    return float(jensenshannon(np.asarray(p, float), np.asarray(q, float), base=2))


def kl_divergence(p: Sequence[float], q: Sequence[float], eps: float = 1e-6) -> float:
    """KL(p || q) in nats after adding ``eps`` to every option and renormalizing (so a zero in q stays finite)."""
    a, b = np.asarray(p, float) + eps, np.asarray(q, float) + eps
    a, b = a / a.sum(), b / b.sum()
    return float(np.sum(a * np.log(a / b)))
