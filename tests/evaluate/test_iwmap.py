"""The Inglehart-Welzel map: indicator directions, the factor step on known axes, sign stability, the real model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from culturealign.cultures import get_culture
from culturealign.data.survey import Survey, load_survey, load_wvs_respondents
from culturealign.errors import UserError
from culturealign.evaluate.iwmap import (
    INDICATORS,
    SURVIVAL,
    TRADITIONAL,
    available_indicators,
    compare_maps,
    country_indicators,
    fit_map,
    map_result,
    model_indicators,
    place_model,
    respondent_indicators,
)
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import SurveyQuestion

SCALES = {  # WVS Wave 7 codes of the ten indicators' items
    **{q: list(range(1, 11)) for q in ("Q164", "Q184", "Q182")},
    **{q: [1, 2] for q in ("Q8", "Q14", "Q15", "Q17", "Q57")},
    **{q: [1, 2, 3] for q in ("Q45", "Q209")},
    **{q: [1, 2, 3, 4] for q in ("Q46", "Q254", "Q154", "Q155")},
}
BY_NAME = {ind.name: ind for ind in INDICATORS}


def _question(qid: str) -> SurveyQuestion:
    return SurveyQuestion(qid, "t", f"question {qid}", {str(c): f"option {c}" for c in SCALES[qid]})


def _around(qid: str, mean: float, width: float = 1.5) -> dict[str, float]:
    """A unimodal answer distribution over the item's codes centred on ``mean``."""
    codes = np.array(SCALES[qid], dtype=float)
    w = np.exp(-((codes - mean) ** 2) / (2 * width**2))
    return {str(int(c)): float(v) for c, v in zip(codes, w / w.sum(), strict=True)}


def _yes(share: float) -> dict[str, float]:
    return {"1": share, "2": 1 - share}


def _post(share: float) -> dict[str, float]:
    """First or second aim: ``share`` on the post-materialist goals (2, 4), the rest on the materialist ones."""
    return {"1": (1 - share) / 2, "2": share / 2, "3": (1 - share) / 2, "4": share / 2}


def _profile(t: float, s: float, rng: np.random.Generator, noise: float = 0.3) -> dict[str, dict[str, float]]:
    """Answers of a country at latent traditional/secular ``t`` and survival/self-expression ``s``."""

    def lt() -> float:
        return t + rng.normal(0, noise)

    def ls() -> float:
        return s + rng.normal(0, noise)

    def sig(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    return {
        "Q164": _around("Q164", 5.5 - 2.5 * lt()),
        "Q8": _yes(sig(lt())),
        "Q14": _yes(sig(lt())),
        "Q15": _yes(sig(-lt())),
        "Q17": _yes(sig(-lt())),
        "Q184": _around("Q184", 5.5 + 2.5 * lt()),
        "Q254": _around("Q254", 2.5 + 0.7 * lt(), 0.8),
        "Q45": _around("Q45", 2 + 0.5 * lt(), 0.7),
        "Q46": _around("Q46", 2.5 - 0.7 * ls(), 0.8),
        "Q57": _yes(sig(ls())),
        "Q182": _around("Q182", 5.5 + 2.5 * ls()),
        "Q209": _around("Q209", 2 - 0.5 * ls(), 0.7),
        "Q154": _post(sig(ls())),
        "Q155": _post(sig(ls() - 0.5)),
    }


def _survey(profiles: dict[str, dict[str, dict[str, float]]]) -> Survey:
    items = sorted({q for p in profiles.values() for q in p})
    return Survey({q: _question(q) for q in items}, profiles)


def _synthetic(n: int = 30, corr: float = 0.5, seed: int = 0) -> tuple[Survey, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.multivariate_normal([0, 0], [[1, corr], [corr, 1]], size=n)
    profiles = {f"C{i:02d}": _profile(t, s, rng) for i, (t, s) in enumerate(latent)}
    return _survey(profiles), latent


def _fit(survey: Survey):
    indicators, _ = available_indicators(survey)
    return fit_map(country_indicators(survey, indicators), indicators)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("god", {"Q164": _around("Q164", 1, 0.1)}, {"Q164": _around("Q164", 10, 0.1)}),
        (
            "autonomy",
            {"Q8": _yes(0), "Q14": _yes(0), "Q15": _yes(1), "Q17": _yes(1)},
            {"Q8": _yes(1), "Q14": _yes(1), "Q15": _yes(0), "Q17": _yes(0)},
        ),
        ("abortion", {"Q184": _around("Q184", 1, 0.1)}, {"Q184": _around("Q184", 10, 0.1)}),
        ("national_pride", {"Q254": {"1": 1.0}}, {"Q254": {"4": 1.0, "5": 3.0}}),  # 5 "not a national": not scored
        ("authority", {"Q45": {"1": 1.0}}, {"Q45": {"3": 1.0}}),
        ("unhappiness", {"Q46": {"1": 1.0}}, {"Q46": {"4": 1.0}}),
        ("trust", {"Q57": _yes(0.1)}, {"Q57": _yes(0.6)}),
        ("homosexuality", {"Q182": _around("Q182", 2)}, {"Q182": _around("Q182", 8)}),
        ("petition", {"Q209": {"1": 1.0}}, {"Q209": {"3": 1.0}}),
        ("post_materialism", {"Q154": {"1": 1.0}, "Q155": {"3": 1.0}}, {"Q154": {"2": 1.0}, "Q155": {"4": 1.0}}),
    ],
)
def test_indicator_scores_rise_with_what_they_measure(name, low, high):
    ind = BY_NAME[name]
    assert ind.score(high) > ind.score(low)
    extremes = {"god": (1, 10), "autonomy": (-2, 2), "post_materialism": (1, 3), "petition": (1, 3)}
    if name in extremes:
        assert (ind.score(low), ind.score(high)) == pytest.approx(extremes[name])
    assert ind.score({}) is None  # an item not asked: no score, never a crash


def test_documented_directions():
    signs = {ind.name: (ind.dimension, ind.sign) for ind in INDICATORS}
    assert signs["god"] == (TRADITIONAL, -1) and signs["autonomy"] == (TRADITIONAL, 1)
    assert signs["unhappiness"] == (SURVIVAL, -1) and signs["petition"] == (SURVIVAL, -1)
    assert signs["trust"] == (SURVIVAL, 1) and signs["post_materialism"] == (SURVIVAL, 1)
    assert {i for ind in INDICATORS for i in ind.items} == set(SCALES)


def test_a_country_that_puts_god_at_ten_is_more_traditional():
    survey, _ = _synthetic(n=12, seed=3)
    base = survey.distributions["C00"]
    survey.distributions["PIOUS"] = {**base, "Q164": _around("Q164", 10, 0.1)}
    survey.distributions["GODLESS"] = {**base, "Q164": _around("Q164", 1, 0.1)}
    fit = _fit(survey)
    assert fit.loadings[TRADITIONAL]["god"] < 0
    assert fit.countries["PIOUS"][TRADITIONAL] < fit.countries["GODLESS"][TRADITIONAL]
    assert fit.countries["PIOUS"][SURVIVAL] == pytest.approx(fit.countries["GODLESS"][SURVIVAL])


def test_factor_step_recovers_two_known_correlated_axes():
    survey, latent = _synthetic(n=40, corr=0.5, seed=1)
    fit = _fit(survey)
    codes = sorted(fit.countries)
    y = np.array([fit.countries[c][TRADITIONAL] for c in codes])
    x = np.array([fit.countries[c][SURVIVAL] for c in codes])
    r_tt, r_ss = np.corrcoef(y, latent[:, 0])[0, 1], np.corrcoef(x, latent[:, 1])[0, 1]
    assert r_tt > 0.95 and r_ss > 0.95  # each axis found, and the right way round (higher = secular / self-expr.)
    assert abs(np.corrcoef(y, latent[:, 1])[0, 1]) < r_tt - 0.2  # not just the shared part of the two axes
    assert y.mean() == pytest.approx(0, abs=1e-9) and y.std() == pytest.approx(1)  # units: SD of countries
    for dim, loads in fit.loadings.items():
        for name, load in loads.items():
            assert BY_NAME[name].sign * load > 0.5, (dim, name)
    assert set(fit.explained) == {TRADITIONAL, SURVIVAL} and min(fit.explained.values()) > 0.6


def test_projection_of_a_country_profile_gives_its_own_coordinates():
    survey, _ = _synthetic(n=15, seed=2)
    indicators, _ = available_indicators(survey)
    scores = country_indicators(survey, indicators)
    fit = fit_map(scores, indicators)
    for code in ("C00", "C07"):
        assert fit.project(scores[code]) == pytest.approx(fit.countries[code])


def test_signs_stable_across_country_subsets_of_the_real_survey(wvs_path):
    survey = load_survey(wvs_path)
    indicators, _ = available_indicators(survey)
    scores = country_indicators(survey, indicators)
    full = fit_map(scores, indicators)
    assert full.loadings[TRADITIONAL]["god"] < 0 and full.loadings[SURVIVAL]["homosexuality"] > 0
    rng = np.random.default_rng(0)
    codes = sorted(scores)
    for _ in range(25):
        keep = sorted(rng.choice(codes, size=8, replace=False))
        sub = fit_map({c: scores[c] for c in keep}, indicators)
        assert sub.loadings[TRADITIONAL]["god"] < 0
        for dim in (TRADITIONAL, SURVIVAL):
            a = [full.countries[c][dim] for c in keep]
            b = [sub.countries[c][dim] for c in keep]
            assert np.corrcoef(a, b)[0, 1] > 0.9, (dim, keep)


def test_real_survey_places_countries_where_the_published_map_has_them(wvs_path):
    """Coarse checks any reading of the published map agrees with: Nigeria and Zimbabwe are more traditional and
    more survival-oriented than Germany and the Netherlands; China is more secular than Brazil."""
    fit = _fit(load_survey(wvs_path))
    c = fit.countries
    for poor in ("NGA", "ZWE"):
        for rich in ("DEU", "NLD"):
            assert c[poor][TRADITIONAL] < c[rich][TRADITIONAL] and c[poor][SURVIVAL] < c[rich][SURVIVAL]
    assert c["CHN"][TRADITIONAL] > c["BRA"][TRADITIONAL]


def test_missing_items_are_left_out_and_reported(wvs_path):
    _, missing = available_indicators(load_survey(wvs_path))
    assert missing == {"national_pride": ["Q254"], "trust": ["Q57"], "post_materialism": ["Q154", "Q155"]}
    survey, _ = _synthetic(n=10)
    del survey.questions["Q15"]
    for dists in survey.distributions.values():
        del dists["Q15"]
    indicators, missing = available_indicators(survey)
    assert missing == {"autonomy": ["Q15"]} and "autonomy" not in {i.name for i in indicators}
    assert "autonomy" not in fit_map(country_indicators(survey, indicators), indicators).weights[TRADITIONAL]


def test_a_country_not_asked_an_item_is_imputed_and_listed():
    survey, _ = _synthetic(n=10)
    del survey.distributions["C03"]["Q164"]
    fit = _fit(survey)
    assert fit.imputed == {"C03": ["god"]}
    assert all(math.isfinite(v) for v in fit.countries["C03"].values())


def test_too_few_countries_or_no_indicator_of_a_dimension_is_a_user_error():
    survey, _ = _synthetic(n=2)
    with pytest.raises(UserError, match="at least 3 countries"):
        _fit(survey)
    survey, _ = _synthetic(n=6)
    for q in ("Q46", "Q57", "Q182", "Q209", "Q154", "Q155"):
        del survey.questions[q]
    with pytest.raises(UserError, match="survival_self_expression"):
        _fit(survey)


def test_respondent_indicators_weighted_and_complete_cases(tmp_path):
    """From respondents: weighted, an index needs all its items; from aggregates the post-materialist mean index
    (1 + share of post-materialist first aims + share of second aims) is the same number when nobody skipped."""
    rows = [
        # country, weight, Q154, Q155, Q8, Q14, Q15, Q17, Q164
        ("AAA", 1.0, 2, 4, 1, 1, 2, 2, 10),  # post-materialist (3), autonomy 2
        ("AAA", 2.0, 1, 3, 2, 2, 1, 1, 1),  # materialist (1), autonomy -2
        ("AAA", 1.0, 2, 3, 1, 2, 2, 2, 5),  # mixed (2), autonomy 1
        ("BBB", 1.0, 4, 1, 1, 1, 1, 2, 8),
        ("BBB", 1.0, 1, 2, 1, -2, 2, 2, -1),  # Q14 and Q164 missing (negative codes)
        ("BBB", 3.0, 3, 1, 2, 2, 2, 1, 3),
    ]
    header = "B_COUNTRY_ALPHA,W_WEIGHT,Q154,Q155,Q8,Q14,Q15,Q17,Q164"
    path = tmp_path / "resp.csv"
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    indicators = [BY_NAME[n] for n in ("post_materialism", "autonomy", "god")]
    got = respondent_indicators(path, indicators)
    assert got["AAA"]["post_materialism"] == pytest.approx((3 * 1 + 1 * 2 + 2 * 1) / 4)
    assert got["AAA"]["autonomy"] == pytest.approx((2 * 1 - 2 * 2 + 1 * 1) / 4)
    assert got["AAA"]["god"] == pytest.approx((10 + 2 + 5) / 4)
    assert got["BBB"]["autonomy"] == pytest.approx((1 * 1 + (-1) * 3) / 4)  # the Q14-missing respondent left out
    assert got["BBB"]["god"] == pytest.approx((8 + 9) / 4)
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(json.dumps({"id": q, "text": q, "options": _question(q).options}) + "\n" for q in SCALES)
    )
    aggregates = country_indicators(load_wvs_respondents(path, questions), indicators)
    assert aggregates["AAA"]["post_materialism"] == pytest.approx(got["AAA"]["post_materialism"])
    assert aggregates["AAA"]["autonomy"] == pytest.approx(got["AAA"]["autonomy"])
    assert aggregates["BBB"]["autonomy"] != pytest.approx(got["BBB"]["autonomy"])  # aggregates keep partial answers


def test_model_is_projected_on_the_countries_map_without_moving_it(wvs_path):
    survey = load_survey(wvs_path)
    indicators, missing = available_indicators(survey)
    scores = country_indicators(survey, indicators)
    fit = fit_map(scores, indicators)
    before = json.dumps(fit.countries, sort_keys=True)

    def option_fn(messages, options):  # the first code everywhere; as a German, God at 10
        pious = "German" in messages[0]["content"] and "God" in messages[1]["content"]
        return {o: float(o == (options[-1] if pious else options[0])) for o in options}

    engine = ScriptedEngine(option_fn=option_fn)
    model_scores, answers = model_indicators(engine, survey, indicators, [None, get_culture("DEU")], progress=False)
    assert len(answers) == 2 * len({i for ind in indicators for i in ind.items}) == len(engine.seen)
    assert model_scores["unaware"]["god"] == 1 and model_scores["DEU"]["god"] == 10
    assert model_scores["unaware"]["autonomy"] == 0 == model_scores["DEU"]["autonomy"]
    placed = place_model(fit, model_scores, "scripted")
    assert json.dumps(fit.countries, sort_keys=True) == before
    deu = placed["personas"]["DEU"]
    assert deu[TRADITIONAL] < placed["unaware"][TRADITIONAL]  # only God moved: more traditional
    assert deu[SURVIVAL] == pytest.approx(placed["unaware"][SURVIVAL])
    expected = sum(w * (model_scores["DEU"][n] - fit.mean[n]) / fit.sd[n] for n, w in fit.weights[TRADITIONAL].items())
    assert deu[TRADITIONAL] == pytest.approx(expected)
    country = fit.countries["DEU"]
    assert deu["distance"] == pytest.approx(
        math.hypot(deu[TRADITIONAL] - country[TRADITIONAL], deu[SURVIVAL] - country[SURVIVAL])
    )
    assert placed["mean_distance"] == pytest.approx(deu["distance"])
    result = map_result(fit, {"base": placed}, missing, "country aggregates", scores)
    assert {i["name"]: i["direction_agrees"] for i in result["indicators"]}["god"] is True


def _coords(countries: dict, personas: dict, name: str = "base") -> dict:
    pts = {c: {TRADITIONAL: y, SURVIVAL: x} for c, (x, y) in countries.items()}
    ps = {
        c: {TRADITIONAL: y, SURVIVAL: x, "distance": math.dist((x, y), countries[c])} for c, (x, y) in personas.items()
    }
    return {"countries": pts, "models": {name: {"personas": ps}}}


def test_compare_two_runs_before_after():
    countries = {"DEU": (1.0, 1.0), "NGA": (-1.0, -1.0), "CHN": (-0.5, 1.0)}
    before = _coords(countries, {"DEU": (-1.0, 1.0), "NGA": (-1.0, 1.0)})
    after = _coords(countries, {"DEU": (0.0, 1.0), "NGA": (-1.0, 0.0)}, "tuned")
    result = compare_maps(before, after)
    assert result["mean_distance_before"] == pytest.approx(2.0)
    assert result["mean_distance_after"] == pytest.approx(1.0)
    assert result["change"] == pytest.approx(-1.0)
    moved = _coords({**countries, "DEU": (0.9, 1.0)}, {"DEU": (0.0, 1.0)})
    with pytest.raises(UserError, match="different country maps"):
        compare_maps(before, moved)


@pytest.mark.slow
def test_real_model_on_a_few_cultures_before_and_after_tuning(wvs_path, tmp_path):
    """The embedded model, base and with a LoRA adapter, placed on the real survey's map; files and report."""
    from culturealign.api import EngineSettings, cultural_map
    from culturealign.llm.models import resolve_model
    from culturealign.records import ChatSample
    from culturealign.report import write_report
    from culturealign.train.lora import train_lora

    samples = [
        ChatSample(
            [
                {"role": "system", "content": "You are a real person with a German cultural background."},
                {"role": "user", "content": f"Question {i}: how important is God in your life? Answer 1 to 10."},
                {"role": "assistant", "content": "9"},
            ]
        )
        for i in range(8)
    ]
    sft = {"max_steps": 2, "per_device_train_batch_size": 4, "disable_tqdm": True, "learning_rate": 5e-3}
    train_lora(resolve_model("smollm2"), samples, tmp_path / "adapter", sft=sft)
    run = tmp_path / "run"
    settings = EngineSettings(model="smollm2", adapter=str(tmp_path / "adapter"), batch_size=8)
    result = cultural_map(wvs_path, "DEU,NGA,CHN", settings, out=run, progress=False)

    folder = run / "eval" / "iwmap"
    assert json.loads((folder / "coordinates.json").read_text()) == json.loads(json.dumps(result))
    assert (folder / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (folder / "map.svg").read_text()
    assert len(result["countries"]) == 14
    base, tuned = result["models"]["base"], result["models"]["tuned"]
    for model in (base, tuned):
        assert sorted(model["personas"]) == ["CHN", "DEU", "NGA"]
        for code, p in model["personas"].items():
            c = result["countries"][code]
            assert math.hypot(p[SURVIVAL] - c[SURVIVAL], p[TRADITIONAL] - c[TRADITIONAL]) == pytest.approx(
                p["distance"]
            )
            assert 1 <= p["indicators"]["god"] <= 10 and -2 <= p["indicators"]["autonomy"] <= 2
        assert model["mean_distance"] == pytest.approx(np.mean([p["distance"] for p in model["personas"].values()]))
    assert tuned["personas"]["DEU"]["indicators"] != base["personas"]["DEU"]["indicators"]  # the adapter applies
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["overall"]["change"] == pytest.approx(tuned["mean_distance"] - base["mean_distance"])
    answers = (folder / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 2 * 4 * 10  # base and tuned x (unaware + 3 cultures) x 10 items
    # the countries' map is the survey's alone: the same with or without a model on it
    survey = load_survey(wvs_path)
    assert result["countries"]["DEU"][TRADITIONAL] == pytest.approx(_fit(survey).countries["DEU"][TRADITIONAL])

    page = write_report([run], tmp_path / "report.html").read_text()
    assert 'data-plot="iw-map"' in page and "mean persona-to-country distance" in page


def _respondent_files(tmp_path, n: int = 40) -> tuple:
    """A respondent-level CSV (codes drawn from synthetic country profiles, weights) and its questions.jsonl."""
    rng = np.random.default_rng(5)
    latent = {"DEU": (1.0, 1.0), "NGA": (-1.5, -1.0), "JPN": (1.5, -0.3), "USA": (0.0, 1.2), "BRA": (-1.0, 0.3)}
    items = sorted(SCALES)
    lines = [",".join(["B_COUNTRY_ALPHA", "W_WEIGHT", *items])]
    for country, (t, s) in latent.items():
        for _ in range(n):
            profile = _profile(t, s, rng, noise=0.0)
            codes = [str(rng.choice(list(profile[q]), p=list(profile[q].values()))) for q in items]
            lines.append(",".join([country, f"{rng.uniform(0.5, 2):.3f}", *codes]))
    csv_path = tmp_path / "respondents.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(json.dumps({"id": q, "text": q, "options": _question(q).options}) + "\n" for q in items)
    )
    return csv_path, questions


def test_cultural_map_from_respondents_with_two_runs_compared(tmp_path, monkeypatch):
    from culturealign.api import EngineSettings, compare_maps, cultural_map
    from culturealign.report import write_report

    csv_path, questions = _respondent_files(tmp_path)
    answers = {"code": 0}

    def option_fn(messages, options):
        return {o: float(o == options[answers["code"] % len(options)]) for o in options}

    monkeypatch.setattr(EngineSettings, "build", lambda self, cache=None: ScriptedEngine(option_fn=option_fn))
    before = cultural_map(csv_path, "DEU,NGA", questions=questions, out=tmp_path / "a", progress=False)
    answers["code"] = 1
    after = cultural_map(csv_path, "DEU,NGA", questions=questions, out=tmp_path / "b", progress=False)

    assert before["source"] == "respondents (weighted)" and before["indicators_missing"] == {}
    indicators, _ = available_indicators(load_survey(csv_path, questions))
    fit = fit_map(respondent_indicators(csv_path, indicators), indicators)
    assert before["countries"]["JPN"][TRADITIONAL] == pytest.approx(fit.countries["JPN"][TRADITIONAL])
    assert before["countries"]["NGA"][TRADITIONAL] < before["countries"]["DEU"][TRADITIONAL]
    assert before["countries"]["NGA"][SURVIVAL] < before["countries"]["DEU"][SURVIVAL]
    assert list(before["models"]) == ["base"] and sorted(before["models"]["base"]["personas"]) == ["DEU", "NGA"]
    result = compare_maps(tmp_path / "a", tmp_path / "b")
    assert result["mean_distance_before"] == pytest.approx(before["models"]["base"]["mean_distance"])
    assert result["change"] == pytest.approx(
        after["models"]["base"]["mean_distance"] - before["models"]["base"]["mean_distance"]
    )
    page = write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "r.html").read_text()
    assert page.count('data-plot="iw-map"') == 2 and "change vs first" in page
    with pytest.raises(UserError, match="no eval/iwmap/coordinates.json"):
        compare_maps(tmp_path / "a", tmp_path)


def test_cultural_map_user_errors(tmp_path, wvs_path):
    from culturealign.api import cultural_map

    small = Path(__file__).parents[1] / "fixtures" / "wvs_small"  # two countries, one indicator item (Q57)
    with pytest.raises(UserError, match="at least 3 countries"):
        cultural_map(small, "DEU", out=tmp_path / "x")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "questions.jsonl").write_text('{"id": "Q1", "text": "x", "options": {"1": "a", "2": "b"}}\n')
    (tmp_path / "s" / "distributions.csv").write_text("country,question,answer,proportion\nDEU,Q1,1,0.5\n")
    with pytest.raises(UserError, match="none of the Inglehart-Welzel indicator items"):
        cultural_map(tmp_path / "s", "DEU", out=tmp_path / "z")
    with pytest.raises(UserError, match=r"no indicator answers for \['JPN'\]"):
        cultural_map(wvs_path, "DEU,JPN", out=tmp_path / "y")
