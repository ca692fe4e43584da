"""Cultural relations: does the model see the same cultural map as the people?

From culture-aware WVS items, each culture's answer vector (the model's top codes) and the survey's (majority
codes); between two cultures, CultureSPA's score of one vector against the other over the questions both
answered. The model's culture x culture matrix is set beside the survey's, and their Spearman rank correlation
over culture pairs says whether the model orders cultural closeness as the people's answers do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from scipy.stats import spearmanr

from culturealign.evaluate.metrics import culturespa_score
from culturealign.evaluate.wvs import WVSItem


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


def cultural_relations(items: Sequence[WVSItem]) -> dict[str, Any]:
    """Model and survey culture x culture matrices and their Spearman correlation over culture pairs."""
    model: dict[str, dict[str, str]] = defaultdict(dict)
    people: dict[str, dict[str, str]] = defaultdict(dict)
    n_options: dict[str, int] = {}
    for it in items:
        model[it.culture][it.question_id] = it.choice
        people[it.culture][it.question_id] = it.majority
        n_options[it.question_id] = len(it.model)
    cultures, model_matrix = similarity_matrix(model, n_options)
    _, survey_matrix = similarity_matrix(people, n_options)
    pairs = [(i, j) for i in range(len(cultures)) for j in range(i + 1, len(cultures))]
    xs = [model_matrix[i][j] for i, j in pairs]
    ys = [survey_matrix[i][j] for i, j in pairs]
    rho, p = spearmanr(xs, ys) if len(pairs) >= 3 else (float("nan"), float("nan"))
    return {
        "cultures": cultures,
        "model_matrix": model_matrix,
        "survey_matrix": survey_matrix,
        "spearman": float(rho),
        "p_value": float(p),
        "n_pairs": len(pairs),
    }
