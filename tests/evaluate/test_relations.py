import math

import pytest

from culturealign.evaluate.metrics import culturespa_score
from culturealign.evaluate.relations import cultural_relations
from culturealign.evaluate.wvs import WVSItem


def _item(culture: str, qid: str, choice: str, majority: str) -> WVSItem:
    probs = {c: 0.25 for c in "1234"}
    return WVSItem(culture, qid, "t", "categorical", probs, probs, choice, majority, 1.0, 1.0, None)


def test_matrices_by_hand_and_perfect_rank_agreement():
    majority = {"A": "1", "B": "2", "C": "4"}
    items = [_item(c, q, m, m) for c, m in majority.items() for q in ("q1", "q2")]
    rel = cultural_relations(items)
    assert rel["cultures"] == ["A", "B", "C"]
    ab = culturespa_score([1, 1], [2, 2], [4, 4])
    assert rel["model_matrix"][0][1] == pytest.approx(ab)
    assert rel["model_matrix"][0][0] == 1.0
    assert rel["model_matrix"] == rel["survey_matrix"]
    assert rel["spearman"] == pytest.approx(1.0) and rel["n_pairs"] == 3


def test_reversed_map_correlates_negatively():
    people = {"A": "1", "B": "2", "C": "4"}
    model = {"A": "4", "B": "1", "C": "2"}  # A-C close for the model, far for the people
    items = [_item(c, "q1", model[c], people[c]) for c in people]
    rel = cultural_relations(items)
    assert rel["spearman"] < 0


def _one_culture_apart(n: int) -> list[WVSItem]:
    """n cultures that answer alike but for culture A: every pair with A is far, every other pair identical."""
    cultures = [chr(ord("A") + k) for k in range(n)]
    return [_item(c, q, "4" if c == "A" else "1", "4" if c == "A" else "1") for c in cultures for q in ("q1", "q2")]


def test_mantel_p_counts_relabellings_of_cultures_not_pairs():
    """Both maps set culture A apart. Over its 21 pairs Spearman's rho is 1 and spearmanr's p (pairs taken as
    independent) is about 0; but the pairs share cultures: of the 7! relabellings of the survey's cultures, every
    one that keeps A in place (1 in 7) matches as well, so the exact Mantel p is 1/7."""
    from scipy.stats import spearmanr

    rel = cultural_relations(_one_culture_apart(7))
    assert rel["spearman"] == pytest.approx(1.0) and rel["n_pairs"] == 21
    pairs = [(i, j) for i in range(7) for j in range(i + 1, 7)]
    naive = spearmanr([rel["model_matrix"][i][j] for i, j in pairs], [rel["survey_matrix"][i][j] for i, j in pairs])
    assert naive.pvalue < 1e-10
    assert rel["p_value"] == pytest.approx(1 / 7)
    assert rel["n_permutations"] == 5040 and rel["exact"] is True
    assert rel["p_method"].startswith("Mantel")


def test_mantel_permutations_are_seeded_and_counted():
    items = _one_culture_apart(9)  # 9! relabellings: more than asked, so a seeded random sample of them
    rel = cultural_relations(items, n_permutations=199, seed=3)
    assert rel["n_permutations"] == 199 and rel["exact"] is False and rel["seed"] == 3
    assert rel["p_value"] * 200 == pytest.approx(round(rel["p_value"] * 200))  # (k + 1) / (199 + 1)
    assert 0.05 < rel["p_value"] < 0.25  # about 1/9
    assert cultural_relations(items, n_permutations=199, seed=3)["p_value"] == rel["p_value"]


def test_relations_with_fewer_than_three_pairs_are_undefined():
    items = [_item(c, "q1", m, m) for c, m in {"A": "1", "B": "2"}.items()]
    rel = cultural_relations(items)
    assert math.isnan(rel["spearman"]) and math.isnan(rel["p_value"]) and rel["n_permutations"] == 0
