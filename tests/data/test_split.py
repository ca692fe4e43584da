"""The survey split: batteries inferred from neighbours with one stem and scale, whole batteries on one side."""

from __future__ import annotations

import pytest

from culturealign.data.split import infer_batteries, shared_words, split_questions
from culturealign.errors import UserError
from culturealign.records import SurveyQuestion

AGREE = {"1": "Agree", "2": "Disagree"}
SCALE = {str(i): str(i) for i in range(1, 11)}


def q(qid: str, text: str, options: dict | None = None, topic: str = "T") -> SurveyQuestion:
    return SurveyQuestion(qid, topic, text, dict(options or AGREE))


def test_shared_words_counts_a_common_prefix_and_suffix():
    assert shared_words("How important is work in your life?", "How important are friends in your life?") == 5
    assert shared_words("a b c", "a b c") == 3  # prefix and suffix do not overlap


def test_neighbours_with_one_stem_and_scale_form_a_battery_and_others_do_not():
    qs = [
        q("Q1", "How much confidence do you have in the police: a great deal or none?"),
        q("Q2", "How much confidence do you have in the courts: a great deal or none?"),
        q("Q3", "How much confidence do you have in the army: a great deal or none?", SCALE),  # other scale
        q("Q4", "Do you believe in God?"),
        q("Q5", "How much confidence do you have in banks: a great deal or none?"),  # not a neighbour of Q1-Q2
    ]
    b = infer_batteries(qs)
    assert b == {"Q1": "Q1", "Q2": "Q1", "Q3": "Q3", "Q4": "Q4", "Q5": "Q5"}


def _synthetic(n_batteries: int = 12, size: int = 4) -> list[SurveyQuestion]:
    out = []
    for b in range(n_batteries):
        for i in range(size):
            out.append(q(f"Q{b}_{i}", f"Stem number {b} of the survey asks item {i} of {b}?", topic=f"T{b % 3}"))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_split_keeps_every_battery_on_one_side_and_sides_disjoint(seed):
    qs = _synthetic()
    s = split_questions(qs, 0.3, 0.2, seed)
    sides = [set(s.train), set(s.validation), set(s.eval)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert set().union(*sides) == {x.id for x in qs}
    for battery in {v for v in s.batteries.values()}:
        members = [k for k, v in s.batteries.items() if v == battery]
        assert len({s.side(m) for m in members}) == 1, members
    assert len({x.split("_")[0] for x in s.eval}) >= 3  # every topic gives eval batteries
    assert 0.15 < len(s.eval) / len(qs) < 0.45


def test_split_is_seeded():
    qs = _synthetic()
    assert split_questions(qs, seed=1).eval == split_questions(qs, seed=1).eval
    assert any(split_questions(qs, seed=s).eval != split_questions(qs, seed=0).eval for s in range(1, 5))


def test_check_refuses_a_battery_on_two_sides():
    s = split_questions(_synthetic(), seed=0)
    moved = s.train[0]
    s.train.remove(moved)
    s.eval.append(moved)
    with pytest.raises(AssertionError, match="batteries on two sides"):
        s.check()


def test_a_split_without_eval_or_train_questions_is_a_user_error():
    one_battery = [q(f"Q{i}", f"Do you agree that item {i} of the long shared stem matters?") for i in range(5)]
    with pytest.raises(UserError, match="no eval question"):
        split_questions(one_battery, 0.3)
    with pytest.raises(UserError, match="no training question"):
        split_questions(_synthetic(2, 1), 0.9, 0.0)
    with pytest.raises(UserError, match="eval_fraction"):
        split_questions(_synthetic(), 1.5)


def test_real_wvs_batteries(wvs_path):
    from culturealign.data.survey import load_survey

    survey = load_survey(wvs_path)
    qs = [x for x in survey.questions.values() if x.topic != "Demographics"]
    b = infer_batteries(qs)
    justifiable = [x.id for x in qs if "always be justified" in x.text]
    confidence = [x.id for x in qs if x.text.startswith("How much confidence do you have in")]
    assert len(justifiable) >= 10 and len({b[x] for x in justifiable}) == 1
    assert len(confidence) >= 10 and len({b[x] for x in confidence}) == 1
    for seed in range(3):
        s = split_questions(qs, seed=seed)
        s.check()
        assert {s.side(x) for x in justifiable} in ({"train"}, {"validation"}, {"eval"})
