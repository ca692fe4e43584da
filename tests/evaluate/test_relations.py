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
