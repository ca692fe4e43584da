"""BLEnD short-answer scoring by hand, the loader on the real files, and the real model on a few questions."""

from __future__ import annotations

import pytest

from culturealign.data.blend import BlendQuestion, load_blend, resolve_regions
from culturealign.errors import UserError
from culturealign.evaluate.blend import Blend, normalize, score_answer
from culturealign.llm.scripted import ScriptedEngine

Q = BlendQuestion("x", "UK", "What is a popular snack?", [(["candy floss", "cotton candy"], 4), (["crisps"], 2)])


def test_normalize_lemmatizes_and_strips_punctuation():
    assert normalize("Cookies!") == ["cookie"]
    assert normalize("Cotton-Candy.") == ["cotton", "candy"]


def test_score_answer_matches_whole_words_with_vote_credit():
    assert score_answer("Cotton candy, of course", Q) == (True, 1.0, "cotton candy")
    assert score_answer("crisp", Q) == (True, 0.5, "crisps")  # lemmatized: crisps -> crisp
    assert score_answer("I like candy", Q)[0] is False  # a partial spelling is no match
    assert score_answer("flossing", Q)[0] is False


def test_loader_splits_packed_spellings_and_regions_resolve(blend_path):
    questions = load_blend(blend_path, "UK")
    assert len(questions) > 100
    packed = [s for q in questions for spellings, _ in q.answers for s in spellings if "," in s]
    assert packed == []
    assert resolve_regions(blend_path, "uk,south korea") == ["UK", "South_Korea"]
    with pytest.raises(UserError, match="no BLEnD file for 'Atlantis'"):
        resolve_regions(blend_path, "Atlantis")


def test_metrics_with_a_scripted_model(blend_path):
    def answer(messages):
        return "rice" if "China" in messages[-1]["content"] else "no idea"

    result = Blend(blend_path, {"CHN": "China", "GBR": "UK"}, limit=20).run(ScriptedEngine(fn=answer), progress=False)
    items, metrics = result.items, result.metrics
    assert metrics["per_region"]["UK"]["accuracy"] == 0.0
    china = [i for i in items if i.region == "China"]
    assert metrics["per_region"]["China"]["accuracy"] == pytest.approx(sum(i.correct for i in china) / len(china))
    assert all(i.weighted <= 1.0 and (i.weighted > 0) == i.correct for i in items)
    assert metrics["overall"]["accuracy"] == pytest.approx(metrics["per_region"]["China"]["accuracy"] / 2)


@pytest.mark.slow
def test_real_model_answers(engine, blend_path):
    result = Blend(blend_path, {"USA": "US", "ESP": "Spain"}, limit=3).run(engine, progress=False)
    items, metrics = result.items, result.metrics
    assert len(items) == 6 and all(i.answer for i in items)
    assert 0 <= metrics["overall"]["accuracy"] <= 1
