"""The one generate → parse → ask-again loop."""

from __future__ import annotations

from culturealign.llm.base import GenParams
from culturealign.llm.scripted import ScriptedEngine
from culturealign.steps.retry import ask_until_parsed


def _parse(reply: str):
    return (int(reply), None) if reply.isdigit() else (None, f"not a number: {reply!r}")


def test_each_slot_is_asked_until_it_parses_and_failures_keep_their_last_reason():
    replies = {("a", 0): ["7"], ("b", 0): ["x", "8"], ("c", 0): ["y", "z", "w"]}

    def fn(messages):
        key = tuple(messages[0]["content"].split(":"))
        return replies[(key[0], 0)].pop(0)

    engine = ScriptedEngine(fn=fn)
    got = ask_until_parsed(
        engine,
        ["a", "b", "c"],
        lambda slot, attempt: [{"role": "user", "content": f"{slot}:{attempt}"}],
        _parse,
        lambda slot, attempt: GenParams(0.7, seed=attempt),
        max_retries=2,
        label="numbers",
    )
    assert got.values == {"a": 7, "b": 8}
    assert got.failures == {"c": "not a number: 'w'"}
    assert got.asked == 3 + 2 + 1  # a once, b twice, c three times


def test_a_round_is_one_batched_call_and_equal_prompts_go_to_further_waves():
    calls = []

    class Counting(ScriptedEngine):
        def _generate(self, prompts, params):
            calls.append((params.seed, [p[0]["content"] for p in prompts]))
            return [[f"{len(calls)}"] for _ in prompts]

    engine = Counting(fn=lambda m: "1")
    got = ask_until_parsed(
        engine,
        [("t1", 0), ("t2", 0), ("t1", 1), ("t2", 1), ("t3", 1)],
        lambda k, a: [{"role": "user", "content": k[0] if k[0] != "t3" else "t3-own"}],  # t1 and t2 asked twice
        _parse,
        lambda k, a: GenParams(0.7, seed=k[1]),  # one seed per slot number
        max_retries=0,
        label="x",
    )
    # distinct prompts share one call (the first slot's seed); an equal prompt waits for the next wave, under its
    # own first slot's seed, so that it gets another sample and another cache entry
    assert calls == [(0, ["t1", "t2", "t3-own"]), (1, ["t1", "t2"])]
    assert got.values == {("t1", 0): 1, ("t2", 0): 1, ("t3", 1): 1, ("t1", 1): 2, ("t2", 1): 2}


def test_slots_with_other_sampling_settings_are_not_mixed():
    calls = []

    class Counting(ScriptedEngine):
        def _generate(self, prompts, params):
            calls.append((params.temperature, len(prompts)))
            return super()._generate(prompts, params)

    ask_until_parsed(
        Counting(fn=lambda m: "1"),
        ["a", "b", "c"],
        lambda k, a: [{"role": "user", "content": k}],
        _parse,
        lambda k, a: GenParams(0.9 if k == "c" else 0.7, seed=ord(k)),
        max_retries=0,
        label="x",
    )
    assert calls == [(0.7, 2), (0.9, 1)]
