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


def _overrides(tmp_path: Path, extra: tuple[str, ...] = ()) -> list[str]:
    queries = tmp_path / "queries.csv"
    texts = [
        "Why do guests bring gifts to a wedding ceremony?",
        "How are ancient temples restored after an earthquake?",
        "What songs do children sing at the harvest festival?",
        "Which museum keeps the oldest royal manuscripts?",
        "How do families prepare food for a new year meal?",
        "When do fishermen bless their boats before the season?",
        *extra,
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


def _stats(run: Path, step: str) -> dict:
    (folder,) = (run / "steps").glob(f"*-{step}")
    return json.loads((folder / "stats.json").read_text())


def test_queries_near_an_evaluation_item_are_removed_and_counted(tmp_path, scripted):
    leaked = ("How is festival 2 celebrated with neighbours?", "how is FESTIVAL 1 celebrated with neighbours")
    result = alignculture.run_alignculture("recipes/alignculture.yaml", _overrides(tmp_path, leaked))
    assert result["dataset"] == 6  # the two CulturaX questions never reach the dataset
    dedup = _stats(tmp_path / "run", "simhash-dedup")
    assert dedup["leaked"] == 2 and dedup["dropped_by_reason"]["leaks evaluation item"] == 2
    assert dedup["reference_texts"] == 4  # the benchmark's and split.eval_sets' questions, once each
    assert result["funnel"]["split"]["leakage"]["culturax_vs_dataset"] == 0.0  # the report is kept
    assert "2 queries near evaluation items removed" in alignculture.show(result)[0]


VOCABULARY = (
    "river lantern harvest drum weaving temple spice dance mask pottery elder bridge poem silk market shrine "
    "festival carving ritual song bread village loom mountain boat tea garden bell story wedding copper feast "
    "theatre puppet shadow ink scroll harbour museum dialect proverb carnival"
).split()


def _culturax_questions(n: int) -> list[str]:
    import random

    rng = random.Random(7)
    return [f"How do people use the {' '.join(rng.sample(VOCABULARY, 7))} today?" for _ in range(n)]


def test_benchmark_runs_on_the_held_out_split_when_the_queries_are_culturax(tmp_path, scripted):
    folder = tmp_path / "culturax"
    folder.mkdir()
    rows = [f'{q},15,x,help {i},harm {i},honest {i},{i},"1,1,1"\n' for i, q in enumerate(_culturax_questions(20))]
    (folder / "CulturaX.csv").write_text(CULTURAX_HEADER + "".join(rows))
    overrides = [
        f"out={tmp_path / 'run'}",
        f"queries.file={folder / 'CulturaX.csv'}",  # the file the benchmark's folder holds: the paper's setting
        "queries.subdomains=[artifacts, monuments]",
        f"split.eval_sets.culturax={folder}",
        f"eval.data={folder}",
        "eval.limit=null",
        "responses.k=1",
        "responses.rounds=0",
        "expand.target=0",
    ]
    result = alignculture.run_alignculture("recipes/alignculture.yaml", overrides)
    run = tmp_path / "run"
    (split,) = (run / "steps").glob("*-split")
    queries = [json.loads(line) for line in (split / "data.jsonl").read_text().splitlines()]
    test = {q["text"] for q in queries if q["split"] == "test"}
    benchmarked = [json.loads(line)["question"] for line in (run / "eval" / "hhh-before" / "items.jsonl").open()]
    assert test and set(benchmarked) == test  # every held-out item, and no train or val question
    assert result["dataset"] == 20  # CulturaX is no dedup reference of itself: nothing leaks
    assert _stats(run, "simhash-dedup")["leaked"] == 0
    assert result["hhh_before"]["benchmark_split"] == {
        "split": "test",
        "items_in_file": 20,
        "test_queries": len(test),
        "items": len(test),
    }


def test_sampled_benchmark_runs_are_averaged_cached_and_resumed(tmp_path, scripted):
    overrides = [*_overrides(tmp_path), "eval.runs=2", "eval.temperature=0.7", "eval.top_p=0.9"]
    result = alignculture.run_alignculture("recipes/alignculture.yaml", overrides)
    run = tmp_path / "run"
    metrics = result["hhh_before"]
    assert metrics["runs"] == 2 and len(metrics["per_run"]) == 2 and set(metrics["spread"]) >= {"WR", "Avg"}
    assert metrics["sampling"] == {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.0, "seeds": [0, 1]}
    assert len((run / "eval" / "hhh-before" / "items.jsonl").read_text().splitlines()) == 6  # 3 items x 2 runs
    answers = [json.loads(line)["answer"] for line in (run / "eval" / "hhh-before" / "items.jsonl").open()]
    assert len(set(answers)) == 6  # the runs' answers differ (the second is no cache hit of the first)
    calls = json.loads((run / "cost.json").read_text())["calls"]
    alignculture.run_alignculture("recipes/alignculture.yaml", overrides)
    assert json.loads((run / "cost.json").read_text())["calls"] == calls  # resumed from the cache


def test_greedy_runs_are_refused_by_the_config_and_by_eval_hhh(tmp_path, scripted):
    with pytest.raises(UserError, match=r"eval.runs=3 with eval.temperature=0 .* eval.temperature=0.7"):
        alignculture.run_alignculture("recipes/alignculture.yaml", [*_overrides(tmp_path), "eval.runs=3"])
    data = _culturax(tmp_path / "CulturaX.csv")
    with pytest.raises(UserError, match="set a temperature > 0"):
        alignculture.eval_hhh(data, out=tmp_path / "hhh", runs=3)
    metrics = alignculture.eval_hhh(
        data, limit=2, out=tmp_path / "hhh", runs=3, temperature=0.7, repetition_penalty=1.1
    )
    assert metrics["runs"] == 3 and metrics["sampling"]["repetition_penalty"] == 1.1
