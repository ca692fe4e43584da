"""Engines are cached by what the model is: files overwritten in place (same path, same mtime) miss the cache."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3

import pytest

from culturealign.errors import UserError
from culturealign.llm import identity
from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache
from culturealign.llm.local import LocalEngine
from culturealign.llm.scripted import ScriptedEngine


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CULTUREALIGN_HOME", str(tmp_path / "home"))


def _model(folder, weights: bytes = b"w" * 64):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _adapter(folder, alpha: int = 16, weights: bytes = b"a" * 64):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "lora_alpha": alpha}))
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


def _overwrite_keeping_mtime(path, data: bytes) -> None:
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


class CountingLocal(LocalEngine):
    """A LocalEngine whose model is never loaded: generation answers from a counter, so tests see each miss."""

    def _generate(self, prompts, params):
        return [["answer"] for _ in prompts]


PROMPTS = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]


def _misses(engine) -> int:
    engine.generate(PROMPTS, GenParams())
    return engine.stats.calls


def test_edited_adapter_config_at_the_same_path_misses_the_cache(tmp_path):
    model, adapter = _model(tmp_path / "m"), _adapter(tmp_path / "ad", alpha=16)
    cache = CallCache(tmp_path / "c.sqlite")
    assert _misses(CountingLocal(model=str(model), adapter=str(adapter), cache=cache)) == 3
    assert _misses(CountingLocal(model=str(model), adapter=str(adapter), cache=cache)) == 0  # unchanged: all hits
    _adapter(adapter, alpha=512)
    assert _misses(CountingLocal(model=str(model), adapter=str(adapter), cache=cache)) == 3


def test_adapter_weights_replaced_with_their_mtime_kept_miss_the_cache(tmp_path):
    model, adapter = _model(tmp_path / "m"), _adapter(tmp_path / "ad")
    cache = CallCache(tmp_path / "c.sqlite")
    assert _misses(CountingLocal(model=str(model), adapter=str(adapter), cache=cache)) == 3
    _overwrite_keeping_mtime(adapter / "adapter_model.safetensors", b"b" * 64)
    assert _misses(CountingLocal(model=str(model), adapter=str(adapter), cache=cache)) == 3


def test_a_merged_model_rewritten_into_the_same_folder_misses_the_cache(tmp_path):
    """``merge --out merged`` twice with other adapters, then an evaluation of ``merged``: new answers."""
    cache = CallCache(tmp_path / "c.sqlite")
    merged = _model(tmp_path / "merged", b"first merge" * 8)
    assert _misses(CountingLocal(model=str(merged), cache=cache)) == 3
    _model(merged, b"other merge" * 8)  # same size, new bytes
    assert _misses(CountingLocal(model=str(merged), cache=cache)) == 3


def test_training_logs_beside_the_weights_do_not_change_the_identity(tmp_path):
    model, adapter = _model(tmp_path / "m"), _adapter(tmp_path / "ad")
    before = LocalEngine(model=str(model), adapter=str(adapter)).identity()
    (adapter / "train_info.json").write_text('{"train_seconds": 12.5}')
    (adapter / "README.md").write_text("notes")
    assert LocalEngine(model=str(model), adapter=str(adapter)).identity() == before


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 1000)
    calls = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, algo: calls.append(1) or real(f, algo))
    first = identity.file_digest(path)
    assert identity.file_digest(path) == first and len(calls) == 1
    identity._memos.clear()  # a new process reads the digests remembered on disk
    assert identity.file_digest(path) == first and len(calls) == 1
    _overwrite_keeping_mtime(path, b"y" * 1000)
    assert identity.file_digest(path) != first and len(calls) == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "no readable adapter_config.json"),
        (lambda d: (d / "adapter_config.json").write_text("{broken"), "not valid JSON"),
        (lambda d: (d / "adapter_config.json").write_text("[1, 2]"), "not a PEFT adapter config"),
        (lambda d: (d / "adapter_config.json").write_text('{"peft_type": "LORA"}'), "no adapter weights"),
    ],
)
def test_a_broken_adapter_folder_is_refused_before_any_model_loads(tmp_path, make, message):
    folder = tmp_path / "ad"
    folder.mkdir()
    make(folder)
    with pytest.raises(UserError, match=message):
        LocalEngine(model=str(_model(tmp_path / "m")), adapter=str(folder))


def test_unreadable_cache_entries_are_misses_counted_and_overwritten(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    eng = ScriptedEngine(cache=cache, fn=lambda m: "fresh")
    eng.generate(PROMPTS)
    db = sqlite3.connect(tmp_path / "c.sqlite")
    keys = [k for (k,) in db.execute("SELECT key FROM calls ORDER BY key")]
    db.execute("UPDATE calls SET value = ? WHERE key = ?", ("{not json", keys[0]))
    db.execute("UPDATE calls SET value = ? WHERE key = ?", ('{"a": 1}', keys[1]))  # JSON of the wrong shape
    db.commit()
    eng2 = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"), fn=lambda m: "again")
    out = eng2.generate(PROMPTS)
    assert eng2.stats.cache_unreadable == 2 and len(eng2.seen) == 2 and eng2.stats.cache_hits == 1
    assert sorted(o[0] for o in out) == ["again", "again", "fresh"]
    eng3 = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"), fn=lambda m: "never")
    assert eng3.generate(PROMPTS) == out and eng3.stats.cache_unreadable == 0  # repaired in place


def test_damaged_option_scores_in_the_cache_are_asked_again(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    ScriptedEngine(cache=cache).score_options(PROMPTS[:1], [["1", "2"]])
    db = sqlite3.connect(tmp_path / "c.sqlite")
    db.execute("UPDATE calls SET value = ?", ('{"probs": {"1": "high"}, "mass": 1, "method": "x"}',))
    db.commit()
    eng = ScriptedEngine(cache=CallCache(tmp_path / "c.sqlite"))
    assert eng.score_options(PROMPTS[:1], [["1", "2"]])[0].probs == {"1": 0.5, "2": 0.5}
    assert eng.stats.cache_unreadable == 1 and len(eng.seen) == 1


def test_two_gguf_files_of_one_size_do_not_share_answers(tmp_path, monkeypatch):
    from culturealign.llm import llamacpp

    monkeypatch.setattr(llamacpp.importlib.util, "find_spec", lambda name: object())  # no llama_cpp needed here
    a, b = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for path, data in ((a, b"GGUF" + b"1" * 60), (b, b"GGUF" + b"2" * 60)):
        path.parent.mkdir()
        path.write_bytes(data)
    ids = [llamacpp.LlamaCppEngine(model=str(p)).identity() for p in (a, b)]
    assert ids[0] != ids[1]
