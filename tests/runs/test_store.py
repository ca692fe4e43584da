"""The run folder: strict JSON results, no stub folders, each evaluation's config kept beside its results."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from culturealign.errors import UserError
from culturealign.runs import RunFolder, write_json, write_jsonl


def _strict_load(text: str):
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_result_files_are_strict_json_with_null_for_undefined_numbers(tmp_path):
    write_json(tmp_path / "m.json", {"discrimination": math.nan, "w": [1.0, math.inf, -math.inf], "ok": 0.5})
    loaded = _strict_load((tmp_path / "m.json").read_text())
    assert loaded == {"discrimination": None, "w": [1.0, None, None], "ok": 0.5}
    write_jsonl(tmp_path / "i.jsonl", [{"x": math.nan}, {"x": (1.0, math.nan)}])
    rows = [_strict_load(line) for line in (tmp_path / "i.jsonl").read_text().splitlines()]
    assert rows == [{"x": None}, {"x": [1.0, None]}]


def test_a_single_culture_wvs_evaluation_writes_strict_metrics(tmp_path):
    from culturealign.cultures import get_culture
    from culturealign.data.survey import load_survey
    from culturealign.evaluate.wvs import WVS
    from culturealign.llm.scripted import ScriptedEngine
    from tests.conftest import ROOT

    survey = load_survey(ROOT / "tests" / "fixtures" / "wvs_small")
    result = WVS(survey, [get_culture("DEU")], "aware", None, None).run(ScriptedEngine(), progress=False)
    assert math.isnan(result.metrics["overall"]["discrimination"])  # undefined over one culture
    result.save(tmp_path / "eval")
    metrics = _strict_load((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["overall"]["discrimination"] is None


def test_a_run_that_fails_before_any_work_leaves_no_folder(tmp_path):
    with pytest.raises(UserError), RunFolder(tmp_path / "run") as run:
        run.write_config({"command": "eval wvs"})
        raise UserError("unknown culture")
    assert not (tmp_path / "run").exists()


def test_a_failed_run_keeps_its_paid_calls_and_an_existing_folder(tmp_path):
    with pytest.raises(RuntimeError), RunFolder(tmp_path / "run") as run:
        run.cache.put_many({"k": "paid"})
        raise RuntimeError("killed midway")
    assert (tmp_path / "run" / "cache.sqlite").is_file()
    (tmp_path / "old").mkdir()
    with pytest.raises(UserError), RunFolder(tmp_path / "old"):
        raise UserError("bad option")
    assert (tmp_path / "old").is_dir()  # the user's folder: never removed


def test_another_command_into_a_run_folder_is_refused(tmp_path):
    with RunFolder(tmp_path / "run") as run:
        run.write_config({"recipe": "culturespa", "cultures": ["DEU"]})
    with RunFolder(tmp_path / "run") as run, pytest.raises(UserError, match="holds a recipe 'culturespa' run"):
        run.write_config({"command": "eval wvs", "recipe": None})
    with RunFolder(tmp_path / "run") as run:  # the same recipe again: a resume
        run.write_config({"recipe": "culturespa", "cultures": ["DEU", "CHN"]})


def test_each_evaluation_keeps_the_config_that_produced_it(tmp_path):
    for prompt in ("aware", "unaware"):
        with RunFolder(tmp_path / "run") as run:
            run.write_config({"command": "eval wvs", "prompt": prompt})
            write_json(run.eval_dir(f"wvs-{prompt}") / "metrics.json", {"prompt": prompt})
    for prompt in ("aware", "unaware"):
        kept = yaml.safe_load((tmp_path / "run" / "eval" / f"wvs-{prompt}" / "config.yaml").read_text())
        assert kept["prompt"] == prompt


def test_a_refused_rerun_leaves_the_config_that_made_the_work(tmp_path):
    with RunFolder(tmp_path / "run") as run:
        run.write_config({"recipe": "culturespa", "per_topic": 1})
    with pytest.raises(UserError), RunFolder(tmp_path / "run") as run:
        run.write_config({"recipe": "culturespa", "per_topic": 2})
        raise UserError("step generate-questions was made with other settings (per_topic)")
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["per_topic"] == 1
    with RunFolder(tmp_path / "run") as run:  # redone (--from): the new config is the folder's once the run ends
        run.write_config({"recipe": "culturespa", "per_topic": 2})
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["per_topic"] == 2
