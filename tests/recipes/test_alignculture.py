"""The AlignCultura entry points (`run_alignculture`, `eval_hhh`) end to end on scripted engines: fast, no model.

The engine spec is patched to build a scripted engine that answers every generation with a new question-like text
and says "Yes" (P 0.9) to every option prompt, so every query fits its subdomains and every answer passes the critic.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from culturealign.errors import UserError
from culturealign.llm.scripted import ScriptedEngine
from culturealign.llm.spec import EngineSpec
from culturealign.recipes import alignculture

CULTURAX_HEADER = "Question,class,domain,helpful_response,harmless_response,honest_response,simhash_id,pass_hhh\n"


@pytest.fixture
def scripted(monkeypatch):
    counter = itertools.count()
    engines: list[ScriptedEngine] = []

    def build(self, cache=None):
        engine = ScriptedEngine(
            cache=cache,
            name=f"scripted-{self.model}",
            fn=lambda m: f"What does custom number {next(counter)} mean for families here?",
            option_fn=lambda m, options: {o: (0.9 if o == options[0] else 0.1 / max(1, len(options) - 1))
                                          for o in options},
        )  # fmt: skip
        engines.append(engine)
        return engine

    monkeypatch.setattr(EngineSpec, "build", build)
    return engines


def _culturax(path: Path, n: int = 4) -> Path:
    rows = [f'"How is festival {i} celebrated with neighbours?",15,x,help {i},harm {i},honest {i},{i},"1,1,1"\n'
            for i in range(n)]  # fmt: skip
    path.write_text(CULTURAX_HEADER + "".join(rows))
    return path


def _overrides(tmp_path: Path) -> list[str]:
    queries = tmp_path / "queries.csv"
    texts = [
        "Why do guests bring gifts to a wedding ceremony?",
        "How are ancient temples restored after an earthquake?",
        "What songs do children sing at the harvest festival?",
        "Which museum keeps the oldest royal manuscripts?",
        "How do families prepare food for a new year meal?",
        "When do fishermen bless their boats before the season?",
    ]
    queries.write_text("question\n" + "".join(t + "\n" for t in texts))
    culturax = _culturax(tmp_path / "CulturaX.csv")
    return [
        f"out={tmp_path / 'run'}",
        f"queries.file={queries}",
        "queries.subdomains=[artifacts, monuments]",
        f"split.eval_sets.culturax={culturax}",
        f"eval.data={culturax}",
        "eval.limit=3",
        "responses.k=1",
        "responses.rounds=0",
        "expand.target=0",
    ]


def test_run_alignculture_builds_the_dataset_benchmarks_and_resumes(tmp_path, scripted):
    result = alignculture.run_alignculture("recipes/alignculture.yaml", _overrides(tmp_path))
    run = tmp_path / "run"
    assert result["dataset"] == 6 and not result["trained"]
    assert result["funnel"]["load-queries"]["output"] == 6
    metrics = json.loads((run / "eval" / "hhh-before" / "metrics.json").read_text())
    assert {"WR", "SS", "TI", "Avg"} <= set(metrics["overall"])
    assert len((run / "eval" / "hhh-before" / "items.jsonl").read_text().splitlines()) == 3  # eval.limit
    assert (run / "eval" / "hhh-before" / "config.yaml").is_file()
    calls = json.loads((run / "cost.json").read_text())["calls"]
    assert calls > 0

    again = alignculture.run_alignculture("recipes/alignculture.yaml", _overrides(tmp_path))
    assert again["dataset"] == result["dataset"]
    assert json.loads((run / "cost.json").read_text())["calls"] == calls  # the rerun asked nothing

    with pytest.raises(
        UserError, match=r"step reclassify .* other settings \(threshold\): rerun with --from reclassify"
    ):
        alignculture.run_alignculture("recipes/alignculture.yaml", [*_overrides(tmp_path), "reclassify.threshold=0.8"])


def test_eval_hhh_benchmarks_any_model_and_keeps_its_config(tmp_path, scripted):
    data = _culturax(tmp_path / "CulturaX.csv")
    metrics = alignculture.eval_hhh(data, limit=3, out=tmp_path / "hhh", max_tokens=16)
    folder = tmp_path / "hhh" / "eval" / "hhh"
    assert json.loads((folder / "metrics.json").read_text())["overall"] == json.loads(json.dumps(metrics["overall"]))
    assert len((folder / "items.jsonl").read_text().splitlines()) == 3
    assert len(scripted) == 1  # the judge is the tested model: one engine
    assert metrics["data_skipped"] == {}
    assert (folder / "config.yaml").is_file() and json.loads((tmp_path / "hhh" / "cost.json").read_text())["calls"] > 0
