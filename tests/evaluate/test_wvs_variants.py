"""WVS under several evaluation variants: means over variants, their spread, sensitivity; one result type."""

import json
import subprocess
import sys

import pytest

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.evaluate import metrics as M
from culturealign.evaluate.wvs import WVS, sensitivity, summarize


def first_shown(messages, options):
    """A model that always picks the first option it is shown: the archetype of an order artefact."""
    shown = [line.split(".")[0] for line in messages[-1]["content"].splitlines() if line[:1].isdigit()]
    return {shown[0]: 1.0}


@pytest.fixture
def results(wvs_path):
    from culturealign.llm.scripted import ScriptedEngine

    survey = load_survey(wvs_path)
    eng = ScriptedEngine(option_fn=first_shown)
    cultures = parse_cultures("DEU,CHN")
    one = {v: WVS(survey, cultures, limit=8, variants=[v]).run(eng, progress=False) for v in ("default", "reversed")}
    both = WVS(survey, cultures, limit=8, variants=["default", "reversed"]).run(eng, progress=False)
    return one, both


def test_each_variant_scores_the_same_items_and_figures_are_their_mean(results):
    one, both = results
    keys = lambda r: sorted((i.culture, i.question_id) for i in r.items)  # noqa: E731
    assert keys(one["default"]) == keys(one["reversed"])
    assert len(both.items) == 2 * len(one["default"].items)
    m = both.metrics
    assert m["variants"] == ["default", "reversed"]
    for metric in ("culturespa", "one_minus_jsd", "accuracy"):
        a, b = (one[v].metrics["overall"][metric] for v in ("default", "reversed"))
        assert m["overall"][metric] == pytest.approx((a + b) / 2)
        assert m["per_variant"]["reversed"]["overall"][metric] == pytest.approx(b)
        spread = m["variant_spread"]["overall"][metric]
        assert (spread["min"], spread["max"]) == pytest.approx((min(a, b), max(a, b)))
        for c in ("DEU", "CHN"):
            a, b = (one[v].metrics["per_culture"][c][metric] for v in ("default", "reversed"))
            assert m["per_culture"][c][metric] == pytest.approx((a + b) / 2)
    assert m["per_culture"]["DEU"]["n_questions"] == 8 and m["overall"]["n_items"] == 32
    # a default-only evaluation keeps the shape of every earlier metrics.json
    assert "variants" not in one["default"].metrics and "sensitivity" not in one["default"].metrics["overall"]


def test_sensitivity_is_the_mean_total_variation_between_variants(results):
    _, both = results
    # first-shown: printed and reversed answers are disjoint one-hots, so every question's distance is 1
    assert both.metrics["per_culture"]["DEU"]["sensitivity"] == pytest.approx(1.0)
    assert both.metrics["overall"]["sensitivity"] == pytest.approx(1.0)
    same = [i for i in both.items if i.variant == "default"]
    copies = [type(i)(**{**i.__dict__, "variant": "copy"}) for i in same]
    assert sensitivity(same + copies)["CHN"] == pytest.approx(0.0)  # the same answer under each: not sensitive
    assert summarize(same + copies)["overall"]["sensitivity"] == pytest.approx(0.0)


def test_cross_culture_terms_pair_items_of_the_same_variant(results):
    one, both = results
    for it in both.items:
        twin = next(o for o in one[it.variant].items if (o.culture, o.question_id) == (it.culture, it.question_id))
        assert it.cross_one_minus_jsd == pytest.approx(twin.cross_one_minus_jsd)


def test_total_variation_and_spread():
    assert M.total_variation([1, 0], [0, 1]) == 1.0
    assert M.total_variation([0.5, 0.5], [2, 2]) == 0.0
    s = M.spread([0.2, 0.4, None])
    assert s["mean"] == pytest.approx(0.3) and s["sd"] == pytest.approx(0.1414, abs=1e-3) and s["n"] == 2


def test_cli_unknown_variant_is_one_line_exit_2(wvs_path, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from culturealign.cli import main; main()",
            "eval",
            "wvs",
            "--survey",
            str(wvs_path),
            "--cultures",
            "DEU",
            "--variants",
            "default,sideways",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown evaluation variant 'sideways'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    bad = tmp_path / "para.json"
    bad.write_text(json.dumps({"NOPE": "text"}))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from culturealign.cli import main; main()",
            "eval",
            "wvs",
            "--survey",
            str(wvs_path),
            "--cultures",
            "DEU",
            "--variants",
            "paraphrase",
            "--paraphrases",
            str(bad),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "question ids not in the survey: NOPE" in proc.stderr


def test_compare_pairs_on_variant_and_reproduces_the_mean_over_variants(wvs_path, tmp_path):
    from culturealign.evaluate.compare_runs import compare_runs
    from culturealign.llm.scripted import ScriptedEngine

    survey = load_survey(wvs_path)
    cultures = parse_cultures("DEU,CHN")
    last_shown = lambda m, o: {[x.split(".")[0] for x in m[-1]["content"].splitlines() if x[:1].isdigit()][-1]: 1.0}  # noqa: E731
    runs = {}
    for name, fn in (("a", first_shown), ("b", last_shown)):
        result = WVS(survey, cultures, limit=8, variants=["default", "reversed"]).run(
            ScriptedEngine(option_fn=fn), progress=False
        )
        result.save(tmp_path / name)
        runs[name] = result
    out = compare_runs([tmp_path / "a", tmp_path / "b"], n_boot=200, n_perm=200)
    assert out["variants"] == ["default", "reversed"] and out["paired_items"] == 32
    assert out["n_questions"] == {"overall": 16, "CHN": 8, "DEU": 8}
    for scope in ("overall", "DEU"):
        for metric in ("culturespa", "one_minus_jsd", "accuracy"):
            row = out["scopes"][scope][metric]
            for name in ("a", "b"):  # the paired values are metrics.json's mean over variants
                assert row["values"][name] == pytest.approx(row["reported"][name])
    # first-shown under the reversed order is last-shown under the printed one: the two runs swap variants, so
    # their means over variants agree and the difference is 0 with a degenerate interval
    row = out["scopes"]["overall"]["one_minus_jsd"]
    assert row["diff"]["b"] == pytest.approx(0.0, abs=1e-12)
    # a variant only one run has is not paired
    only = WVS(survey, cultures, limit=8, variants=["shuffle-3"]).run(ScriptedEngine(option_fn=first_shown), False)
    only.save(tmp_path / "c")
    with pytest.raises(Exception, match="no \\(variant, culture, question\\)"):
        compare_runs([tmp_path / "a", tmp_path / "c"], n_boot=10, n_perm=10)


def test_compare_intervals_resample_the_variants_too(wvs_path, tmp_path):
    """A change under one variant only: a question-only bootstrap would exclude 0; drawing the variants again
    (both draws the unchanged one a quarter of the time) keeps 0 in the interval."""
    from culturealign.evaluate.compare_runs import compare_runs
    from culturealign.llm.scripted import ScriptedEngine

    survey = load_survey(wvs_path)
    cultures = parse_cultures("DEU,CHN")
    lowest = lambda m, o: {min(o, key=float): 1.0}  # noqa: E731

    def changed(messages, options):  # like first-shown on the printed order, the lowest code when reversed
        shown = [x.split(".")[0] for x in messages[-1]["content"].splitlines() if x[:1].isdigit()]
        return first_shown(messages, options) if shown == sorted(shown, key=float) else lowest(messages, options)

    for name, fn in (("a", first_shown), ("b", changed)):
        WVS(survey, cultures, limit=8, variants=["default", "reversed"]).run(ScriptedEngine(option_fn=fn), False).save(
            tmp_path / name
        )
    row = compare_runs([tmp_path / "a", tmp_path / "b"], n_boot=400, n_perm=200)["scopes"]["overall"]["one_minus_jsd"]
    assert abs(row["diff"]["b"]) > 0.01
    lo, hi = row["ci"]["b"]
    assert lo <= 1e-9 and hi >= -1e-9  # 0 (both draws the unchanged variant) is inside
