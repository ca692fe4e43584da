"""``cost.json``: what a run paid, summed over engines and resumes."""

import json
from collections import Counter

from culturealign.llm.scripted import ScriptedEngine
from culturealign.runs.store import write_cost


def test_cost_sums_calls_and_the_option_scoring_paths_of_a_server(tmp_path):
    plain = ScriptedEngine(fn=lambda m: "x")
    plain.generate([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]])
    server = ScriptedEngine(fn=lambda m: "x")
    server.option_methods = Counter({"logprobs": 5, "sampling": 2})  # as the openai engine counts them
    write_cost(tmp_path, plain, 1.5)
    write_cost(tmp_path, server, 0.5)
    server.option_methods = Counter({"sampling": 1})
    write_cost(tmp_path, server, 0.0)
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["calls"] == 2 and cost["wall_seconds"] == 2.0
    assert cost["option_methods"] == {"logprobs": 5, "sampling": 3}


def test_a_killed_run_keeps_the_calls_it_paid_for_in_cost_json(tmp_path):
    """Calls are billed as each batch commits: a run that dies midway still counts them, and the end adds no more."""
    import pytest

    from culturealign.runs import RunFolder

    def fn(m):
        if m[0]["content"] == "boom":
            raise RuntimeError("killed")
        return "ok"

    prompts = [[{"role": "user", "content": c}] for c in ("a", "b", "c", "boom")]
    with pytest.raises(RuntimeError), RunFolder(tmp_path / "run") as run:
        engine = ScriptedEngine(cache=run.cache, fn=fn, batch_size=1)
        engine.generate(prompts)
    assert json.loads((tmp_path / "run" / "cost.json").read_text())["calls"] == 3  # a, b, c were paid for
    with RunFolder(tmp_path / "run") as run:  # the resume: 3 hits, one new call, then the end-of-run bill
        engine = ScriptedEngine(cache=run.cache, fn=lambda m: "ok", batch_size=1)
        engine.generate(prompts)
        write_cost(run.path, engine, 1.0)
    cost = json.loads((tmp_path / "run" / "cost.json").read_text())
    assert cost["calls"] == 4 and cost["cache_hits"] == 3 and cost["wall_seconds"] == 1.0
