"""``cost.json``: what a run paid, summed over engines and resumes."""

import json
from collections import Counter

from culturealign.api import write_cost
from culturealign.llm.scripted import ScriptedEngine


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
