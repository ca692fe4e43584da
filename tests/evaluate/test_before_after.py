"""The one before/after loop: the student is built once per adapter through the one factory, every evaluation runs
on it, and with one adapter per culture each culture is scored by its own adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturealign.cultures import parse_cultures
from culturealign.data.survey import load_survey
from culturealign.evaluate.before_after import before_after, evaluate_on
from culturealign.evaluate.wvs import WVS
from culturealign.llm.scripted import ScriptedEngine
from culturealign.llm.spec import EngineSpec
from culturealign.runs import RunFolder
from culturealign.runs.store import strict


@pytest.fixture
def built(monkeypatch):
    """Every engine the factory builds: a scripted model whose answer shows which adapter it carries."""
    engines: list[tuple[str | None, ScriptedEngine]] = []

    def build(self, cache=None):
        tuned = self.adapter is not None

        def options(messages, opts):
            return {o: (3.0 if tuned and i == 0 else 1.0) for i, o in enumerate(opts)}

        engine = ScriptedEngine(cache=cache, name=f"scripted-{self.adapter}", outputs=["x"], option_fn=options)
        engines.append((self.adapter, engine))
        return engine

    monkeypatch.setattr(EngineSpec, "build", build)
    return engines


def test_joint_before_and_after_load_the_student_once_each(tmp_path, wvs_path, built):
    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU,CHN"), limit=4)
    with RunFolder(tmp_path / "run") as run:
        out = before_after(run, EngineSpec(where="student"), [wvs], {"joint": Path("a/joint")})
    assert [a for a, _ in built] == [None, "a/joint"]
    result = out["wvs"]
    assert result.after is not None and result.table["overall"]["one_minus_jsd"]["diff"] != 0
    saved = json.loads((tmp_path / "run" / "eval" / "wvs-after" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(strict(result.after.metrics)))  # NaN written as null
    assert (tmp_path / "run" / "eval" / "wvs-before" / "items.jsonl").is_file()


def test_no_adapters_means_no_after(tmp_path, wvs_path, built):
    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU"), limit=2)
    with RunFolder(tmp_path / "run") as run:
        out = before_after(run, EngineSpec(where="student"), [wvs], {})
    assert out["wvs"].after is None and not (tmp_path / "run" / "eval" / "wvs-after").exists()


def test_specific_adapters_score_each_culture_with_its_own(tmp_path, wvs_path, built, caplog):
    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU,CHN,NGA"), limit=3)
    adapters = {"specific-CHN": Path("a/specific-CHN"), "specific-DEU": Path("a/specific-DEU")}
    with RunFolder(tmp_path / "run") as run:
        result = evaluate_on(run, EngineSpec(where="student"), [wvs], adapters, "specific")["wvs"]
    # cultures in order, each on its own engine; NGA has no adapter: the base model, with a warning
    assert [a for a, _ in built] == ["a/specific-CHN", "a/specific-DEU", None]
    assert "no adapter for NGA" in caplog.text
    assert sorted(result.metrics["per_culture"]) == ["CHN", "DEU", "NGA"]
    asked = {a: {m[0]["content"] for m in e.seen} for a, e in built}
    assert all("German" not in text for text in asked["a/specific-CHN"])  # CHN's adapter saw only CHN's personas
