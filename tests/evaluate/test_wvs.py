"""WVS evaluation: aggregation by hand on a scripted engine; the real model on a few questions."""

import json

import pytest

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.errors import UserError
from culturealign.evaluate.wvs import WVS
from culturealign.llm.scripted import ScriptedEngine


def test_metrics_from_a_scripted_model(wvs_path):
    survey = load_survey(wvs_path)
    # always puts all mass on the first option
    eng = ScriptedEngine(option_fn=lambda m, opts: {opts[0]: 1.0})
    result = WVS(survey, parse_cultures("DEU,CHN"), "aware", limit=10).run(eng, progress=False)
    assert result.metrics["per_culture"]["DEU"]["n_questions"] == 10
    item = result.items[0]
    assert item.choice == next(iter(item.model))
    hits = [i.choice == i.majority for i in result.items if i.culture == "DEU"]
    assert result.metrics["per_culture"]["DEU"]["accuracy"] == pytest.approx(sum(hits) / len(hits))
    assert result.metrics["overall"]["accuracy"] == pytest.approx(
        (result.metrics["per_culture"]["DEU"]["accuracy"] + result.metrics["per_culture"]["CHN"]["accuracy"]) / 2
    )


def test_unaware_prompts_are_asked_once(wvs_path, tmp_path):
    from culturealign.llm.cache import CallCache

    survey = load_survey(wvs_path)
    eng = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"))
    WVS(survey, parse_cultures("DEU,CHN"), "unaware", topics=["Security"]).run(eng, progress=False)
    asked = {json.dumps(m) for m in eng.seen}
    assert len(asked) == len(eng.seen)  # each unaware prompt reached the model once


def test_unknown_topic_and_culture_fail_clearly(wvs_path):
    survey = load_survey(wvs_path)
    eng = ScriptedEngine()
    with pytest.raises(UserError, match="unknown topics"):
        WVS(survey, parse_cultures("DEU"), topics=["Astrology"]).run(eng, progress=False)
    with pytest.raises(UserError, match="no answers for"):
        WVS(survey, parse_cultures("JPN")).run(eng, progress=False)


@pytest.mark.slow
def test_real_model_two_cultures(engine, wvs_path, tmp_path):
    survey = load_survey(wvs_path)
    result = WVS(survey, parse_cultures("DEU,NGA"), "cross-culture", limit=6).run(engine, progress=False)
    assert {i.culture for i in result.items} == {"DEU", "NGA"}
    for name in ("culturespa", "one_minus_jsd", "accuracy"):
        assert 0 <= result.metrics["overall"][name] <= 1
    assert all(0 < i.mass <= 1 for i in result.items)
    result.save(tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["mode"] == "cross-culture"
    assert len((tmp_path / "eval" / "items.jsonl").read_text().splitlines()) == 12


def test_icl_examples_are_other_questions_of_the_culture(wvs_path):
    survey = load_survey(wvs_path)
    eng = ScriptedEngine()
    WVS(survey, parse_cultures("DEU"), "aware", limit=5, icl=3).run(eng, progress=False)
    assert len(eng.seen) == 5
    for messages in eng.seen:
        assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
        asked = messages[-1]["content"]
        assert all(m["content"] != asked for m in messages[1:-1])
        for m in messages[2:-1:2]:  # the shown answers are DEU's majority codes
            assert m["content"].isdigit()


def test_globalopinionqa_feeds_the_same_metrics():
    from pathlib import Path

    goqa = Path(__file__).resolve().parents[1] / "fixtures" / "goqa_small.csv"
    survey = load_survey(goqa)
    eng = ScriptedEngine(option_fn=lambda m, opts: {opts[0]: 1.0})  # always the first option ("1")
    result = WVS(survey, parse_cultures("DEU,JPN"), "aware").run(eng, progress=False)
    deu = result.metrics["per_culture"]["DEU"]
    assert deu["n_questions"] == 2
    # DEU majorities: "No" (code 2) of 2 options, "Some"/"Not at all" tie -> first, code 2 of 3 options
    assert deu["accuracy"] == 0.0
    assert deu["culturespa"] == pytest.approx(1 - (1**2 + 1**2) ** 0.5 / (1**2 + 2**2) ** 0.5)


@pytest.mark.slow
def test_relations_end_to_end_on_the_real_model(wvs_path, tmp_path):
    from culturealign.api import eval_relations

    rel = eval_relations(wvs_path, "DEU,NGA,CHN", limit=5, out=tmp_path / "run", progress=False)
    assert rel["cultures"] == ["CHN", "DEU", "NGA"] and rel["n_pairs"] == 3
    for matrix in (rel["model_matrix"], rel["survey_matrix"]):
        assert [row[i] for i, row in enumerate(matrix)] == [1.0, 1.0, 1.0]
        assert all(0 <= v <= 1 for row in matrix for v in row)
        assert matrix[0][1] == matrix[1][0]
    assert (tmp_path / "run" / "eval" / "relations" / "metrics.json").is_file()


def test_uniform_reference_is_reported(wvs_path):
    survey = load_survey(wvs_path)
    eng = ScriptedEngine()  # uniform option scores
    result = WVS(survey, parse_cultures("DEU"), "aware", limit=8).run(eng, progress=False)
    deu = result.metrics["per_culture"]["DEU"]
    assert deu["one_minus_jsd_uniform"] == pytest.approx(deu["one_minus_jsd"])


def test_divergences_per_culture_by_hand():
    import math

    from culturealign.evaluate.wvs import WVSItem, divergences

    def item(culture, model, human):
        return WVSItem(culture, "Q", "T", "categorical", model, human, "1", "1", 1.0, 0.0, None)

    items = [
        item("DEU", {"1": 0.5, "2": 0.5}, {"1": 0.5, "2": 0.5}),  # identical: 0 and 0
        item("DEU", {"1": 0.0, "2": 1.0}, {"1": 1.0, "2": 0.0}),  # disjoint: JS distance 1
        item("JPN", {"1": 0.25, "2": 0.75}, {"1": 0.5, "2": 0.5}),
    ]
    out = divergences(items, eps=0.0 + 1e-12)
    assert out["per_culture"]["DEU"]["js_distance"] == pytest.approx(0.5)
    # KL(people || model) for JPN: .5 ln(.5/.25) + .5 ln(.5/.75)
    assert out["per_culture"]["JPN"]["kl"] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-6)
    assert out["per_culture"]["DEU"]["n_questions"] == 2
    assert out["overall"]["js_distance"] == pytest.approx((0.5 + out["per_culture"]["JPN"]["js_distance"]) / 2)


def test_w1_on_every_ordinal_scale_and_none_on_nominal_questions(wvs_path):
    """The 0-10 (tagged categorical), 1-10, 4-point and 0-2 scales get W1 over their own span; nominal questions
    (a dichotomy, a choice among aims, a scale whose first code is "Hard to say") get none."""
    from culturealign.evaluate import metrics as M

    ordinal, nominal = ["Q241", "Q48", "Q2", "Q94", "Q122"], ["Q150", "Q152", "Q119"]
    survey = load_survey(wvs_path).subset(ordinal + nominal)
    eng = ScriptedEngine(option_fn=lambda m, opts: {opts[0]: 1.0})  # all mass on the first code
    result = WVS(survey, parse_cultures("DEU")).run(eng, progress=False)
    w1 = {i.question_id: i.wasserstein for i in result.items}
    assert sorted(w1) == sorted(ordinal + nominal)
    assert all(w1[q] is None for q in nominal) and all(w1[q] is not None for q in ordinal)
    human = survey.distributions["DEU"]["Q241"]  # 0-10: mass at 0 against the people, over a span of 10
    assert w1["Q241"] == pytest.approx(sum(int(c) * p for c, p in human.items()) / 10)
    assert w1["Q241"] == pytest.approx(M.wasserstein_normalized(range(11), [1] + [0] * 10, list(human.values())))
    assert result.metrics["per_culture"]["DEU"]["wasserstein"] == pytest.approx(sum(w1[q] for q in ordinal) / 5)


def test_w1_without_an_ordinal_question_is_null_in_metrics_json_and_a_dash_in_the_table(wvs_path, tmp_path):
    from rich.console import Console

    from culturealign.evaluate.base import format_metrics

    survey = load_survey(wvs_path).subset(["Q150", "Q152", "Q165"])  # a dichotomy, a choice of aims, yes/no
    result = WVS(survey, parse_cultures("DEU,CHN")).run(ScriptedEngine(), progress=False)
    result.save(tmp_path)

    def refuse(constant: str):
        raise ValueError(f"{constant} in metrics.json")

    metrics = json.loads((tmp_path / "metrics.json").read_text("utf-8"), parse_constant=refuse)
    assert metrics["overall"]["wasserstein"] is None
    assert all(m["wasserstein"] is None for m in metrics["per_culture"].values())
    assert all(m["wasserstein"] is None for m in metrics["per_topic"].values())
    console = Console(width=220, record=True)
    console.print(format_metrics(WVS, metrics))
    header, *rows = [line for line in console.export_text().splitlines() if "│" in line or "┃" in line]
    column = [c.strip() for c in header.split("┃")].index("wasserstein")
    cells = [[c.strip() for c in line.split("│")] for line in rows if "overall" in line or "DEU" in line]
    assert len(cells) == 2 and all(row[column] == "-" for row in cells), cells
