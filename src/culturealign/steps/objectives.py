"""The three objectives of CAReDiO's data selection, as plain functions that a recipe can swap.

CAReDiO (Yao et al., arXiv 2504.08820) selects culture-related queries and, per culture, responses that are
representative of the culture's data yet distinctive from related cultures. The paper does not publish its
formulas; what follows is **this project's reading of the paper**:

- :func:`culture_relatedness`: how much knowing the culture tells about the answer to a query, the mutual
  information ``I(C; Y | x)`` with a uniform prior over the cultures, i.e. the mean over cultures ``c`` of
  ``KL(p(y|x,c) || p(y|x))`` where ``p(y|x)`` is the mean of the culture-conditional rows (the Jensen-Shannon
  divergence of the rows, generalized to C rows). Zero when every culture answers alike; at most ``log C``. For
  open answers (:func:`culture_relatedness_from_logprobs`) each answer is weighed by its log-likelihood per token
  (or byte), so that short answers do not take every row's mass.
- :func:`distinctiveness`: how much more likely a response is under its own culture than under the related
  cultures' mixture, ``log p(y|x,c) - log sum_{c' in R(c)} w_c' p(y|x,c')``.
- :func:`coverage`: how well a selected set represents the data, the facility-location function
  ``F(S) = sum_i max_{j in S} max(cos(i, j), 0)`` divided by the number of points covered, so it lies in [0, 1].

All logs are natural logs (nats).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp, rel_entr, softmax


def culture_relatedness(dists: np.ndarray) -> float:
    """Mutual information between culture and answer for one query: high means the answer depends on culture.

    Args:
        dists: ``[C, Y]``, row ``c`` is ``p(y | x, c)`` over a shared set of answers (option codes, or sampled
            open answers scored under every culture). Rows are renormalized to sum to 1, so option
            probabilities that miss a little mass (e.g. to tokens outside the options) still compare.

    Returns:
        ``mean_c KL(p(y|x,c) || mean_c' p(y|x,c'))`` in nats, in ``[0, log C]``.

    Zeros need no epsilon: ``rel_entr`` takes ``0 * log(0 / m)`` as 0, and the mixture ``m`` is at least
    ``p_c / C`` wherever a row ``p_c`` is positive, so no term divides by zero and the value is exact.
    """
    p = np.asarray(dists, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"dists must be a non-empty [cultures, answers] array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(
            "dists must hold finite, non-negative probabilities (pass logprobs to the _from_logprobs variant)"
        )
    total = p.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("every row of dists needs some probability mass (a row sums to 0)")
    p = p / total
    mixture = p.mean(axis=0)
    return float(rel_entr(p, mixture).sum(axis=1).mean())


def culture_relatedness_from_logprobs(logp: np.ndarray, lengths: Sequence[float] | np.ndarray) -> float:
    """:func:`culture_relatedness` from log-probabilities of K sampled open answers scored under each culture.

    Args:
        logp: ``[C, K]``, ``logp[c, k] = log p(y_k | x, c)`` (summed over the answer's tokens) for K answers sampled
            for the query (from any culture's persona) and scored under every culture.
        lengths: ``[K]``, the length of each answer, all positive: its token count where the engine gives one, else
            its UTF-8 byte count (what :func:`culturealign.steps.caredio.score_relatedness` passes).

    Open answers have no finite answer set, so each row is renormalized over the K samples (softmax of the row):
    the distributions compared are the cultures' conditionals restricted to the sampled answers. It ignores the mass
    outside the samples, so it measures how the cultures rank and weigh these K answers, and it grows more faithful
    as K grows and the samples cover each culture's likely answers.

    Why lengths: a summed log-probability falls by a few nats per token, so answers of different lengths differ by
    tens of nats under *every* culture; a softmax of the sums puts nearly all of each row on the same (shortest)
    answer, and the value comes out about 0, or large only when the shortest answers differ. So each row is softmaxed
    over the answers' mean log-likelihood per unit of length, ``logp[c, k] / lengths[k]``: an answer weighs by how
    well it fits the culture per token (or byte), ``exp`` of which is its inverse per-unit perplexity, not by how
    short it is; two answers of equal per-unit fit weigh the same whatever their lengths. The unit sets the
    softmax's temperature: per byte the rows are flatter than per token (by the bytes per token, about 4 in
    English text), so values per byte come out an order of magnitude smaller than per token; compare values of one
    unit only. With all lengths 1, rows that are already normalized
    log-probabilities give exactly :func:`culture_relatedness` of their exp.
    """
    lp = np.asarray(logp, dtype=np.float64)
    n = np.asarray(lengths, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0 or lp.shape[1] == 0:
        raise ValueError(f"logp must be a non-empty [cultures, samples] array, got shape {lp.shape}")
    if np.any(np.isnan(lp)) or np.any(lp == np.inf):
        raise ValueError("logp must hold log-probabilities (no NaN or +inf)")
    if n.shape != (lp.shape[1],):
        raise ValueError(f"lengths needs one entry per sampled answer ({lp.shape[1]}), got shape {n.shape}")
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ValueError("lengths must be finite and positive: leave empty answers out before scoring")
    return culture_relatedness(softmax(lp / n, axis=1))


def distinctiveness(logp_c: float, logp_related: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """How much more likely response ``y`` is under culture ``c`` than under its related cultures ``R(c)``.

    Args:
        logp_c: ``log p(y | x, c)``.
        logp_related: ``log p(y | x, c')`` for each related culture ``c'``.
        weights: mixture weights ``w_c'`` (e.g. from cultural similarity), summing to 1; uniform if None.

    Returns:
        ``log p(y|x,c) - log sum_c' w_c' p(y|x,c')`` in nats, computed with logsumexp so very small
        probabilities neither underflow nor lose precision. Positive: typical of ``c`` rather than its neighbours.
    """
    lr = np.asarray(logp_related, dtype=np.float64)
    if lr.ndim != 1 or lr.size == 0:
        raise ValueError("logp_related needs the log-probabilities of at least one related culture")
    if weights is None:
        w = np.full(lr.size, 1.0 / lr.size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != lr.shape:
            raise ValueError(f"weights has {w.size} entries for {lr.size} related cultures: give one per culture")
        if np.any(w < 0) or not np.isclose(w.sum(), 1.0, rtol=0, atol=1e-6):
            raise ValueError(
                f"weights must be non-negative and sum to 1 (got sum {w.sum():.6g}): divide them by their sum"
            )
    return float(logp_c - logsumexp(lr, b=w))


def coverage(emb: np.ndarray, selected: Sequence[int], reference: np.ndarray | None = None) -> float:
    """Facility-location coverage of ``reference`` by the selected rows of ``emb``, in [0, 1].

    Args:
        emb: ``[N, D]`` unit-normalized embeddings of the candidates.
        selected: indices into ``emb`` of the selected set ``S``.
        reference: ``[M, D]`` unit-normalized points to cover; all of ``emb`` if None.

    Returns:
        ``mean_i max_{j in S} max(cos(ref_i, emb_j), 0)``; 0 for an empty selection. Costs ``M x |S|`` dot
        products, cheap for the small ``S`` this is meant for.
    """
    emb = np.asarray(emb)
    ref = emb if reference is None else np.asarray(reference)
    idx = np.asarray(selected, dtype=np.int64)
    if idx.size == 0 or ref.shape[0] == 0:
        return 0.0
    best = np.zeros(ref.shape[0], dtype=np.float64)
    for start in range(0, idx.size, 256):  # bounds memory at M x 256 for large selections
        sims = ref @ emb[idx[start : start + 256]].T
        best = np.maximum(best, sims.max(axis=1))
    return float(min(best.mean(), 1.0))  # float32 dot products of unit vectors can exceed 1 by rounding
