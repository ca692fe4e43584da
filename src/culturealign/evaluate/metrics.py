"""Pure metric functions over answer distributions and option codes (no I/O, no models).

All scores are in [0, 1]; the CultureSPA paper reports its score x100. Each metric has one definition here, used by
the evaluation that reports it and by ``compare_runs`` (its bootstrap passes ``weights``: how often each item was
drawn, a row per resample). Without weights the sums are exact (``math.fsum``), so a figure does not depend on the
order of the items: ``compare`` reproduces ``metrics.json`` to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

Weights = Sequence[float] | np.ndarray | None


def culturespa_score(
    model_codes: Sequence[float], majority_codes: Sequence[float], n_options: Sequence[int], weights: Weights = None
) -> float | np.ndarray:
    """CultureSPA alignment: 1 - ||a - g||_2 / ||n - 1||_2 over questions (Xu et al., NAACL 2025).

    ``a`` are the model's chosen codes, ``g`` each question's majority code, ``n`` each question's number of
    options, so the denominator is the largest possible distance. NaN without a question (or with one-option ones
    only). ``weights`` (questions, or resamples x questions): one score per row, each question counted that often.
    """
    sq_err, sq_worst = culturespa_terms(model_codes, majority_codes, n_options)
    if weights is None:
        return culturespa_from_sums(math.fsum(sq_err), math.fsum(sq_worst))
    w = np.asarray(weights, dtype=float)
    return culturespa_from_sums(w @ sq_err, w @ sq_worst)


def culturespa_terms(
    model_codes: Sequence[float], majority_codes: Sequence[float], n_options: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each question's (a - g)^2 and (n - 1)^2: the score is a function of their sums (``culturespa_from_sums``)."""
    a, g, n = (np.asarray(x, dtype=float) for x in (model_codes, majority_codes, n_options))
    return (a - g) ** 2, (n - 1) ** 2


def culturespa_from_sums(sq_err: float | np.ndarray, sq_worst: float | np.ndarray) -> float | np.ndarray:
    """1 - sqrt(sum (a - g)^2) / sqrt(sum (n - 1)^2), element by element; NaN where the worst case is 0."""
    err, worst = np.asarray(sq_err, dtype=float), np.asarray(sq_worst, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(worst > 0, 1 - np.sqrt(err) / np.sqrt(worst), np.nan)
    return float(out) if out.ndim == 0 else out


def mean(values: Sequence[float | None] | np.ndarray, weights: Weights = None) -> float | np.ndarray:
    """The mean of the defined values (NaN or None: undefined for that item, left out); NaN when none is defined.

    ``values`` (items) gives a float; (..., items) a mean over the last axis per leading index. ``weights``
    (items, or resamples x items, with 1-D ``values``): one mean per row, each item counted that often.
    """
    x = np.asarray(values, dtype=float)
    ok = ~np.isnan(x)
    if weights is None and x.ndim == 1:
        n = int(ok.sum())
        return math.fsum(x[ok]) / n if n else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if weights is None:
            out = np.where(ok, x, 0.0).sum(axis=-1) / ok.sum(axis=-1)
        else:
            w = np.asarray(weights, dtype=float)
            out = (w @ np.where(ok, x, 0.0)) / (w @ ok)
    return float(out) if np.ndim(out) == 0 else out


def hits(choices: Sequence[str], answers: Sequence[str | None]) -> np.ndarray:
    """Per item 1.0 when the chosen code is the reference answer (the majority, a respondent's own), else 0.0; NaN
    for an item without a reference (None)."""
    return np.array([math.nan if a is None else float(c == a) for c, a in zip(choices, answers, strict=True)])


def accuracy(choices: Sequence[str], answers: Sequence[str | None], weights: Weights = None) -> float | np.ndarray:
    """Share of items whose chosen code is the reference answer; items without a reference are left out."""
    return mean(hits(choices, answers), weights)


def discrimination_terms(own: Sequence[float], cross: Sequence[float | None]) -> np.ndarray:
    """Per item, 1-JSD to the culture's own people minus the mean 1-JSD to the other evaluated cultures' people
    (``cross``; None, so NaN, where no other culture answered the question)."""
    return np.asarray(own, dtype=float) - np.asarray(cross, dtype=float)


def discrimination(own: Sequence[float], cross: Sequence[float | None], weights: Weights = None) -> float | np.ndarray:
    """The mean of ``discrimination_terms`` over the items that have a cross term."""
    return mean(discrimination_terms(own, cross), weights)


def one_minus_jsd(p: Sequence[float], q: Sequence[float]) -> float:
    """1 - Jensen-Shannon distance (base 2, so in [0, 1]) between two distributions over the same options."""
    return float(1 - jensenshannon(np.asarray(p, float), np.asarray(q, float), base=2))


def wasserstein_normalized(codes: Sequence[float], p: Sequence[float], q: Sequence[float]) -> float:
    """Earth mover's distance between two distributions on an ordinal scale, divided by the scale's span (the
    largest code minus the smallest), so in [0, 1] whatever the scale: 1-10, 0-10, 1-4, 0-2."""
    values = np.asarray(codes, dtype=float)
    span = values.max() - values.min()
    return float(wasserstein_distance(values, values, p, q) / span) if span > 0 else 0.0


def majority(dist: dict[str, float]) -> str:
    """The most frequent answer code (ties go to the first code in option order)."""
    return max(dist, key=lambda c: dist[c])


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two distributions over the same options."""
    return float(jensenshannon(np.asarray(p, float), np.asarray(q, float), base=2))


def kl_divergence(p: Sequence[float], q: Sequence[float], eps: float = 1e-6) -> float:
    """KL(p || q) in nats after adding ``eps`` to every option and renormalizing (so a zero in q stays finite)."""
    a, b = np.asarray(p, float) + eps, np.asarray(q, float) + eps
    a, b = a / a.sum(), b / b.sum()
    return float(np.sum(a * np.log(a / b)))


def total_variation(p: Sequence[float], q: Sequence[float]) -> float:
    """Total-variation distance, half the L1 distance of the two (renormalized) distributions: in [0, 1]."""
    a, b = np.asarray(p, float), np.asarray(q, float)
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def spread(values: Sequence[float | None]) -> dict[str, float]:
    """The spread of one figure over evaluation variants: mean, sample SD (NaN for one value), min and max."""
    x = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    x = x[~np.isnan(x)]
    if not x.size:
        return {"mean": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    sd = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    return {"mean": float(x.mean()), "sd": sd, "min": float(x.min()), "max": float(x.max()), "n": int(x.size)}
