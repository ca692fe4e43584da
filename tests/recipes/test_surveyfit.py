"""SurveyFit on the real embedded model, small: training on human shares moves the training questions, the split
keeps eval questions out of training, reruns reuse what matches and refuse what does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturealign.errors import UserError
from culturealign.recipes.surveyfit import run_surveyfit
from culturealign.runs.store import read_jsonl

pytestmark = pytest.mark.slow
WVS_SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "wvs_small"
SMALL = [
    f"eval.survey={WVS_SMALL}",
    "cultures=[DEU,NGA]",
    "eval.cultures=[USA]",
    "split.topics=[Security,Migration]",
    "train.soft.num_train_epochs=2",
    "train.soft.learning_rate=1.0e-3",
    "eval.train_limit=8",
]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, wvs_path):
    out = tmp_path_factory.mktemp("surveyfit") / "run"
    result = run_surveyfit("recipes/surveyfit.yaml", [f"survey={wvs_path}", f"out={out}", *SMALL])
    return out, result


def test_training_on_human_shares_raises_alignment_on_the_training_questions(small_run):
    _, result = small_run
    j = result["sets"]["train"]["before_after"]["overall"]["one_minus_jsd"]
    assert j["after"] > j["before"] + 0.02, j


def test_no_eval_question_reaches_training(small_run):
    out, result = small_run
    split = json.loads((out / "split.json").read_text())
    trained = {r["question_id"] for r in read_jsonl(out / "train" / "data" / "surveyfit.jsonl")}
    assert trained and trained <= set(split["train"])
    assert not trained & set(split["eval"]) and not trained & set(split["validation"])
    evaluated = {r["question_id"] for r in read_jsonl(out / "eval" / "wvs-after" / "items.jsonl")}
    assert evaluated == set(split["eval"]) - {None} or evaluated <= set(split["eval"])
    assert result["eval_questions_in_training"] == 0
    # the second survey is scored without any question that reached training (by id or near-duplicate text)
    counts = result["survey2"]
    assert counts["questions"] == counts["kept"] + counts["same_id_as_training"] + counts["near_duplicate_of_training"]
    second = {r["question_id"] for r in read_jsonl(out / "eval" / "wvs-survey2-after" / "items.jsonl")}
    assert second and not second & trained


def test_results_carry_intervals_discrimination_and_the_heldout_culture(small_run):
    out, result = small_run
    iv = result["sets"]["eval"]["intervals"]["overall"]["one_minus_jsd"]
    assert iv["ci"][0] <= iv["diff"] <= iv["ci"][1] and 0 <= iv["p"] <= 1
    assert "gap_closed" in result["wvs"]["overall"]["one_minus_jsd"]
    assert "discrimination" in result["wvs"]["overall"]
    heldout = json.loads((out / "eval" / "wvs-heldout-after" / "metrics.json").read_text())
    assert list(heldout["per_culture"]) == ["USA"]  # reported apart from the trained cultures
    adapter = out / "train" / "surveyfit"
    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_rerun_reuses_matching_work_and_refuses_a_changed_config(small_run, wvs_path):
    out, _ = small_run
    adapter = out / "train" / "surveyfit" / "adapter_model.safetensors"
    stamp = adapter.stat().st_mtime_ns
    again = run_surveyfit("recipes/surveyfit.yaml", [f"survey={wvs_path}", f"out={out}", *SMALL])
    assert adapter.stat().st_mtime_ns == stamp  # same config: the adapter is kept, not retrained
    assert again["wvs"]["overall"]["one_minus_jsd"]["after"] == pytest.approx(
        json.loads((out / "eval" / "wvs-after" / "metrics.json").read_text())["overall"]["one_minus_jsd"]
    )
    config = (out / "config.yaml").read_text()
    with pytest.raises(UserError, match=r"other settings \(cultures\)"):
        run_surveyfit("recipes/surveyfit.yaml", [f"survey={wvs_path}", f"out={out}", *SMALL, "cultures=[DEU,USA]"])
    assert (out / "config.yaml").read_text() == config  # refused before the run folder's config was overwritten
    retrained = run_surveyfit(
        "recipes/surveyfit.yaml", [f"survey={wvs_path}", f"out={out}", *SMALL, "train.soft.learning_rate=2.0e-4"]
    )
    assert adapter.stat().st_mtime_ns != stamp  # other training settings: trained again, never reused silently
    assert retrained["trained"]
