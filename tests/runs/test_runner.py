"""The step runner: output files per step, resuming finished steps, redoing from a step."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from culturealign.errors import UserError
from culturealign.records import SurveyQuestion
from culturealign.runs.runner import run_steps, step_dir
from culturealign.steps.base import Filter, Step

CALLS: Counter = Counter()


class MakeQuestions(Step):
    name = "make"

    def __init__(self, n: int = 3):
        super().__init__()
        self.n = n

    def run(self, records):
        CALLS[self.name] += 1
        out = [
            SurveyQuestion(f"q{i}", "Migration", f"Question number {i}?", {"1": "Yes", "2": "No"})
            for i in range(self.n)
        ]
        self.stats.update(made=len(out))
        yield from out


class DropOdd(Filter):
    name = "drop-odd"

    def keep(self, record):
        CALLS[self.name] += 1
        return int(record.id[1:]) % 2 == 0, "odd id"


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def test_run_writes_each_steps_files(tmp_path):
    out = run_steps([MakeQuestions(), DropOdd()], tmp_path)
    assert [q.id for q in out] == ["q0", "q2"]
    first, second = step_dir(tmp_path, 1, "make"), step_dir(tmp_path, 2, "drop-odd")
    assert first == tmp_path / "steps" / "01-make"
    assert second == tmp_path / "steps" / "02-drop-odd"
    for folder in (first, second):
        assert {p.name for p in folder.iterdir()} == {"data.jsonl", "dropped.jsonl", "stats.json"}
    assert [r["id"] for r in _read_jsonl(first / "data.jsonl")] == ["q0", "q1", "q2"]
    assert _read_jsonl(first / "dropped.jsonl") == []
    rows = _read_jsonl(second / "data.jsonl")
    assert [r["id"] for r in rows] == ["q0", "q2"] and all(r["type"] == "SurveyQuestion" for r in rows)
    dropped = _read_jsonl(second / "dropped.jsonl")
    assert [(d["reason"], d["record"]["id"]) for d in dropped] == [("odd id", "q1")]
    stats1 = json.loads((first / "stats.json").read_text("utf-8"))
    assert stats1["step"] == "make" and stats1["output"] == 3 and stats1["made"] == 3
    stats2 = json.loads((second / "stats.json").read_text("utf-8"))
    assert stats2["step"] == "drop-odd"
    assert (stats2["output"], stats2["total"], stats2["kept"], stats2["dropped"]) == (2, 3, 2, 1)
    assert stats2["dropped_by_reason"] == {"odd id": 1}


def test_second_run_reads_back_instead_of_redoing(tmp_path):
    first = run_steps([MakeQuestions(), DropOdd()], tmp_path)
    assert CALLS == {"make": 1, "drop-odd": 3}
    again = run_steps([MakeQuestions(), DropOdd()], tmp_path)
    assert CALLS == {"make": 1, "drop-odd": 3}  # nothing ran again
    assert again == first
    assert all(isinstance(q, SurveyQuestion) for q in again)


def test_unfinished_step_is_redone(tmp_path):
    run_steps([MakeQuestions(), DropOdd()], tmp_path)
    (step_dir(tmp_path, 2, "drop-odd") / "stats.json").unlink()  # as if killed before the end
    out = run_steps([MakeQuestions(), DropOdd()], tmp_path)
    assert CALLS == {"make": 1, "drop-odd": 6}
    assert [q.id for q in out] == ["q0", "q2"]


def test_redo_from_a_name_redoes_that_step_and_later_ones(tmp_path):
    run_steps([MakeQuestions(), DropOdd()], tmp_path)
    out = run_steps([MakeQuestions(), DropOdd()], tmp_path, redo_from="drop-odd")
    assert CALLS == {"make": 1, "drop-odd": 6}
    assert [q.id for q in out] == ["q0", "q2"]
    # the first step would now make 5 questions: its stored output of 3 is never reused under the new setting
    with pytest.raises(UserError, match=r"step make in .* was made with other settings \(n\): rerun with --from make"):
        run_steps([MakeQuestions(5), DropOdd()], tmp_path, redo_from="drop-odd")
    # redoing from the first step picks up its new setting, and the later step follows
    out = run_steps([MakeQuestions(5), DropOdd()], tmp_path, redo_from="make")
    assert CALLS == {"make": 2, "drop-odd": 11}
    assert [q.id for q in out] == ["q0", "q2", "q4"]
    stats = json.loads((step_dir(tmp_path, 1, "make") / "stats.json").read_text("utf-8"))
    assert stats["made"] == 5


def test_redo_from_a_number(tmp_path):
    run_steps([MakeQuestions(), DropOdd()], tmp_path)
    run_steps([MakeQuestions(), DropOdd()], tmp_path, redo_from=2)
    assert CALLS == {"make": 1, "drop-odd": 6}


def test_records_passed_in_feed_the_first_step(tmp_path):
    given = [SurveyQuestion(f"q{i}", "Migration", f"Given {i}?", {"1": "Yes", "2": "No"}) for i in (1, 2, 3, 4)]
    out = run_steps([DropOdd()], tmp_path, records=given)
    assert [q.id for q in out] == ["q2", "q4"]


def test_unknown_step_name_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"unknown step 'dedupe'.*make, drop-odd"):
        run_steps([MakeQuestions(), DropOdd()], tmp_path, redo_from="dedupe")
    assert CALLS == {}
    assert not (tmp_path / "steps").exists()


class MakeDicts(Step):
    name = "dicts"

    def run(self, records):
        CALLS[self.name] += 1
        yield {"id": "x", "n": 1}


def test_plain_dict_records_resume(tmp_path):
    first = run_steps([MakeDicts()], tmp_path)
    assert run_steps([MakeDicts()], tmp_path) == first


def test_a_changed_engine_or_input_is_refused_and_an_unchanged_one_read_back(tmp_path):
    from culturealign.llm.scripted import ScriptedEngine

    class Ask(Step):
        name = "ask"

        def __init__(self, engine):
            super().__init__()
            self.engine = engine

        def run(self, records):
            yield from records

    seed = [SurveyQuestion("q0", "topic", "t", {"1": "a"})]
    run_steps([Ask(ScriptedEngine(name="model-a"))], tmp_path, seed)
    assert run_steps([Ask(ScriptedEngine(name="model-a"))], tmp_path, seed) == seed  # the same engine: resumed
    with pytest.raises(UserError, match=r"other settings \(engine\)"):
        run_steps([Ask(ScriptedEngine(name="model-b"))], tmp_path, seed)
    with pytest.raises(UserError, match=r"other settings \(input\)"):  # other records fed in
        run_steps([Ask(ScriptedEngine(name="model-a"))], tmp_path, [SurveyQuestion("q9", "topic", "t", {"1": "a"})])


def test_a_step_finished_before_fingerprints_is_not_trusted(tmp_path):
    run_steps([MakeQuestions(), DropOdd()], tmp_path)
    stats_path = step_dir(tmp_path, 1, "make") / "stats.json"
    stats = json.loads(stats_path.read_text("utf-8"))
    stats_path.write_text(json.dumps({k: v for k, v in stats.items() if k not in ("fingerprint", "settings")}))
    with pytest.raises(UserError, match="unrecorded settings .*--from make"):
        run_steps([MakeQuestions(), DropOdd()], tmp_path)


def test_later_stages_find_a_step_by_name_whatever_its_number(tmp_path):
    from culturealign.runs.runner import finished_step, step_records

    run_steps([MakeQuestions(), DropOdd()], tmp_path)
    assert finished_step(tmp_path, "drop-odd") == step_dir(tmp_path, 2, "drop-odd")
    assert [q.id for q in step_records(tmp_path, "drop-odd")] == ["q0", "q2"]
    (step_dir(tmp_path, 2, "drop-odd") / "stats.json").unlink()  # unfinished: not a source for later stages
    with pytest.raises(UserError, match="has no finished step 'drop-odd': it is not a finished culturespa run"):
        finished_step(tmp_path, "drop-odd", "culturespa run")


def test_each_step_adds_its_seconds_calls_and_tokens_to_cost_json(tmp_path):
    from culturealign.llm.base import GenParams
    from culturealign.llm.scripted import ScriptedEngine

    class Ask(Step):
        name = "ask"

        def __init__(self, engine):
            super().__init__()
            self.engine = engine

        def run(self, records):
            self.engine.generate([[{"role": "user", "content": r.text}] for r in records], GenParams(max_tokens=4))
            yield from records

    records = [SurveyQuestion(f"q{i}", "topic", f"question {i}?", {"1": "a"}) for i in range(3)]
    engine = ScriptedEngine(outputs=["yes"])
    run_steps([MakeQuestions(), Ask(engine)], tmp_path, records[:0])
    stages = json.loads((tmp_path / "cost.json").read_text())["stages"]
    assert set(stages) == {"make", "ask"}
    assert stages["ask"]["calls"] == 3 and stages["make"].get("calls", 0) == 0  # a step without an engine: time only
    assert stages["ask"]["seconds"] >= 0 and {"prompt_tokens", "completion_tokens", "cache_hits"} <= set(stages["ask"])
    run_steps([MakeQuestions(), Ask(engine)], tmp_path, records[:0])  # finished: read back, nothing added
    assert json.loads((tmp_path / "cost.json").read_text())["stages"]["ask"]["calls"] == 3
