from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache, cache_key
from culturealign.llm.scripted import ScriptedEngine


def test_key_is_order_independent_for_dicts():
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_cache_survives_reopen_and_dedups(tmp_path):
    msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
    eng = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"), fn=lambda m: m[0]["content"].upper(), batch_size=2)
    out = eng.generate(msgs + msgs[:2], GenParams())
    assert out == [["Q0"], ["Q1"], ["Q2"], ["Q3"], ["Q4"], ["Q0"], ["Q1"]]
    assert len(eng.seen) == 5  # duplicates inside one call are computed once
    eng2 = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"), fn=lambda m: "never")
    assert eng2.generate(msgs, GenParams()) == out[:5]
    assert eng2.seen == [] and eng2.stats.cache_hits == 5
    # other parameters are other calls
    assert eng2.generate(msgs[:1], GenParams(temperature=0.5)) == [["never"]]


def test_partial_progress_is_kept_when_a_chunk_fails(tmp_path):
    calls = []

    def fn(m):
        calls.append(m)
        if m[0]["content"] == "boom":
            raise RuntimeError("server died")
        return "ok"

    cache = CallCache(tmp_path / "c.sqlite")
    eng = ScriptedEngine(cache=cache, fn=fn, batch_size=1)
    msgs = [[{"role": "user", "content": c}] for c in ("a", "b", "boom")]
    try:
        eng.generate(msgs)
    except RuntimeError:
        pass
    assert len(cache) == 2  # the chunks that finished are committed


def test_an_engine_without_completion_scoring_says_what_to_do():
    import pytest

    from culturealign.errors import UserError
    from culturealign.llm.base import Engine

    class NoScores(Engine):
        def identity(self):
            return {"engine": "none"}

        def _generate(self, prompts, params):
            return [[""] for _ in prompts]

        def _score_options(self, prompts, options):
            return []

    with pytest.raises(UserError, match="cannot score completions"):
        NoScores().score_completions([[{"role": "user", "content": "x"}]], ["y"])


def test_a_damaged_cache_file_is_a_one_line_user_error(tmp_path):
    import pytest

    from culturealign.errors import UserError

    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match=r"cannot open the LLM call cache .*cache\.sqlite: file is not a database"):
        CallCache(path)


def test_a_cache_that_cannot_be_written_is_a_user_error(tmp_path):
    import pytest

    from culturealign.errors import UserError

    cache = CallCache(tmp_path / "c.sqlite")
    cache.put_many({"k": 1})
    cache._db.execute("PRAGMA query_only=ON")  # every write now fails inside SQLite, as on a read-only disk
    with pytest.raises(UserError, match="cannot write to the LLM call cache"):
        cache.put_many({"k2": 2})
    assert cache.get_many(["k", "k2"]) == {"k": 1}


def test_repetition_penalty_is_a_cache_key_part_only_when_it_penalizes(tmp_path):
    from dataclasses import asdict

    old = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "n": 1, "seed": 0}  # GenParams before the field
    assert GenParams().key() == old  # calls cached before it existed keep their keys
    assert GenParams(repetition_penalty=1.1).key() == asdict(GenParams(repetition_penalty=1.1))
    msgs = [[{"role": "user", "content": "q"}]]
    eng = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"), outputs=["plain", "penalized"])
    assert eng.generate(msgs, GenParams()) == [["plain"]]
    assert eng.generate(msgs, GenParams(repetition_penalty=1.1)) == [["penalized"]]  # another call, not a hit
    assert eng.generate(msgs, GenParams(repetition_penalty=1.0)) == [["plain"]]


def test_repetition_penalty_must_be_positive():
    import pytest

    with pytest.raises(ValueError, match="repetition_penalty must be > 0"):
        GenParams(repetition_penalty=0.0)


def test_a_second_run_folder_reads_the_shared_cache_and_other_weights_miss(tmp_path, monkeypatch, wvs_path):
    """Issue 21: the base model's before-evaluation of a second run makes no model call; changed weights do."""
    from culturealign.cultures import parse_cultures
    from culturealign.data.survey import load_survey
    from culturealign.evaluate.wvs import WVS
    from culturealign.llm.scripted import ScriptedEngine
    from culturealign.runs import RunFolder

    monkeypatch.setenv("CULTUREALIGN_SHARED_CACHE", "1")
    monkeypatch.setenv("CULTUREALIGN_HOME", str(tmp_path / "home"))
    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU,CHN"), limit=5)

    def before(run_dir, weights="w1"):  # a scripted model whose identity is its weights' digest
        engine = ScriptedEngine(name=f"model@{weights}", option_fn=lambda m, o: {c: 1.0 for c in o})
        with RunFolder(run_dir) as run:
            engine.cache = run.cache
            result = wvs.run(engine, progress=False)
            run.cache.close()
        return engine.stats.calls, result

    calls, first = before(tmp_path / "run-a")
    assert calls == 10
    calls, second = before(tmp_path / "run-b")  # another run folder, the same model: every answer is known
    assert calls == 0 and second.metrics == first.metrics
    assert (tmp_path / "run-b" / "cache.sqlite").is_file()
    calls, _ = before(tmp_path / "run-b2")
    assert calls == 0
    from culturealign.llm.cache import CallCache

    assert len(CallCache(tmp_path / "run-b" / "cache.sqlite")) == 10  # copied in: the folder stands on its own
    calls, _ = before(tmp_path / "run-c", weights="w2")  # other weights: another identity, asked again
    assert calls == 10
    monkeypatch.setenv("CULTUREALIGN_SHARED_CACHE", "0")
    calls, _ = before(tmp_path / "run-d")
    assert calls == 10  # opted out: only the run's own cache
