"""Option codes as a token trie: the one reading of "the probability of each answer code" that the local engine's
evaluator and the soft-label trainer share, so a model is trained on exactly the distribution it is scored on.

A code is a token path ("10" is "1" then "0" for SmolLM2). P(code) = the probability of its path times the share of
the next-token mass that does not continue into a longer code, so "1" and "10" are told apart by one more position:
P(1) = p(1) (1 - p(0|1)), P(10) = p(1) p(0|1). The prompt is run once per *probe*: the deepest internal nodes of
the trie (for codes 1..10, the one path "1"); its logits at the last prompt position and after each probe token give
every node's next-token distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Path = tuple[int, ...]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token sequences (prompts that share a system prompt share a prefix)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def code_paths(tokenizer: Any, codes: Sequence[str]) -> dict[str, Path]:
    """Each code's token ids as the tokenizer writes it at the start of the reply."""
    return {c: tuple(tokenizer(str(c), add_special_tokens=False).input_ids) for c in codes}


def probe_paths(code_ids: Mapping[str, Path]) -> list[Path]:
    """The deepest internal nodes of the trie (a prompt row each), or ``[()]`` when every code is one token."""
    internal = {seq[:k] for seq in code_ids.values() for k in range(1, len(seq))}
    return sorted(p for p in internal if not any(q != p and q[: len(p)] == p for q in internal)) or [()]


def option_log_probs(code_ids: Mapping[str, Path], nodes: Mapping[Path, Any]) -> tuple[Any, Any]:
    """Differentiable (torch) log-probabilities of the codes, renormalized over them, and the log of their mass.

    ``nodes`` maps every trie prefix to the log-softmax next-token distribution after it (a 1-D tensor). Returns
    ``(log_q, log_mass)``: ``log_q[i]`` is log P(code i) / sum_j P(code j) in the order of ``code_ids``.
    """
    import torch

    raw = []
    for seq in code_ids.values():
        logp = sum(nodes[seq[:k]][seq[k]] for k in range(len(seq)))
        onward = sorted({o[len(seq)] for o in code_ids.values() if len(o) > len(seq) and o[: len(seq)] == seq})
        if onward:  # log(1 - sum of the continuing tokens' probabilities), kept finite
            cont = torch.logsumexp(nodes[seq][onward], dim=0)
            logp = logp + torch.log1p(-cont.exp().clamp(max=1 - 1e-6))
        raw.append(logp)
    raw_t = torch.stack(raw)
    log_mass = torch.logsumexp(raw_t, dim=0)
    return raw_t - log_mass, log_mass


def soft_cross_entropy(target: Sequence[float], log_q: Any) -> Any:
    """H(target, q) = -sum_c target_c log q_c (nats): the soft-label loss of one item."""
    import torch

    t = torch.as_tensor(list(target), dtype=log_q.dtype, device=log_q.device)
    return -(t * log_q).sum()


def trie_probs(code_ids: Mapping[str, Path], nodes: Mapping[Path, Any]) -> tuple[dict[str, float], float]:
    """Plain-float version for scoring: (probabilities renormalized over the codes, raw mass on them)."""
    raw: dict[str, float] = {}
    for code, seq in code_ids.items():
        logp = sum(float(nodes[seq[:k]][seq[k]]) for k in range(len(seq)))
        onward = {other[len(seq)] for other in code_ids.values() if len(other) > len(seq) and other[: len(seq)] == seq}
        stop = 1.0 - sum(math.exp(float(nodes[seq][t])) for t in onward) if onward else 1.0
        raw[code] = math.exp(logp) * max(stop, 0.0)
    mass = sum(raw.values())
    if mass <= 0:
        return {c: 1 / len(raw) for c in raw}, 0.0
    return {c: v / mass for c, v in raw.items()}, mass
