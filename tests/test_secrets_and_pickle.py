"""Two promises about what culturealign reads and writes.

- API keys come from the environment only, and never reach an engine's identity, a cache key or value, or any file
  of a run folder (config.yaml, cache.sqlite, items, cost, log): a run folder can be shared without leaking them.
- Nothing is unpickled: no pickle, joblib or unsafe ``torch.load`` in the code; adapters are safetensors, training
  datasets Arrow and JSON, the call cache JSON in SQLite. Loading someone's run folder or adapter cannot run code.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import fields
from pathlib import Path

import httpx
import pytest

from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache
from culturealign.llm.openai import OpenAIEngine
from culturealign.records import ChatSample

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "culturealign"
WVS_SMALL = ROOT / "tests" / "fixtures" / "wvs_small"
URL = "http://fake-llm.test/v1"
KEY = "sk-PLANTED-do-not-leak-4f1c9a"


def _python_sources() -> dict[Path, str]:
    return {p: p.read_text("utf-8") for p in sorted(SRC.rglob("*.py"))}


class FakeServer:
    """An OpenAI-compatible server: top log-probs over the digit codes, or ``n`` replies of "1"; keeps headers."""

    def __init__(self) -> None:
        self.authorization: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.authorization.append(request.headers.get("authorization"))
        payload = json.loads(request.content)
        if payload.get("logprobs"):
            top = [{"token": str(c), "logprob": -1.0 - c / 10} for c in range(11)]
            choices = [{"index": 0, "message": {"content": "1"}, "logprobs": {"content": [{"top_logprobs": top}]}}]
        else:
            choices = [{"index": i, "message": {"content": "1"}} for i in range(payload.get("n", 1))]
        return httpx.Response(200, json={"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 1}})


# --- API keys ----------------------------------------------------------------------------------------------------


def test_keys_are_read_from_the_environment_only():
    """The one place that reads a key is OpenAIEngine._client, from the variable named by ``api_key_env``; no
    setting, config default or CLI option carries a key itself."""
    mentions = {
        p.relative_to(SRC).as_posix() for p, text in _python_sources().items() if re.search(r"api_?key", text, re.I)
    }
    assert mentions == {"llm/openai.py"}
    text = (SRC / "llm" / "openai.py").read_text("utf-8")
    assert set(re.findall(r"os\.environ(?:\.get\(|\[)(.*?)[)\]]", text)) == {"self.api_key_env"}
    assert "getenv(" not in text
    assert [f.name for f in fields(OpenAIEngine) if "key" in f.name] == ["api_key_env"]
    from culturealign.recipes import alignculture, caredio, clca, culturespa

    def names(tree: dict) -> list[str]:
        return [n for k, v in tree.items() for n in [k, *(names(v) if isinstance(v, dict) else [])]]

    from culturealign.config import defaults_of

    for defaults in (defaults_of(m.CONFIG) for m in (alignculture, caredio, clca, culturespa)):
        assert not [n for n in names(defaults) if re.search(r"api_?key|secret|password|auth|bearer", n, re.I)]


def test_a_planted_key_is_sent_but_never_stored(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = FakeServer()
    cache = CallCache(tmp_path / "cache.sqlite")
    engine = OpenAIEngine(base_url=URL, model="m", cache=cache, transport=httpx.MockTransport(server))
    chat = [{"role": "user", "content": "Pick 1 or 2."}]
    engine.generate([chat], GenParams(max_tokens=4))
    engine.score_options([chat], [["1", "2"]])
    cache.close()
    assert server.authorization and set(server.authorization) == {f"Bearer {KEY}"}  # the key was used
    assert KEY not in json.dumps(engine.identity()) and KEY not in repr(engine)
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        rows = db.execute("SELECT key, value FROM calls").fetchall()
    assert len(rows) == 2 and not any(KEY in k or KEY in v for k, v in rows)
    assert KEY.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_a_planted_key_is_in_no_file_of_an_eval_run_folder(monkeypatch, tmp_path):
    """The whole ``eval wvs`` path through an OpenAI-compatible server, then every byte of the run folder."""
    from culturealign.api import EngineSettings, eval_wvs

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = FakeServer()
    real_client = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real_client(**kw, transport=httpx.MockTransport(server)))
    out = tmp_path / "run"
    result = eval_wvs(
        WVS_SMALL, "DEU", EngineSettings(engine="openai", model="m", base_url=URL), out=out, progress=False
    )
    assert result.metrics and set(server.authorization) == {f"Bearer {KEY}"}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"config.yaml", "cache.sqlite", "cost.json"} <= {p.name for p in files}
    leaks = [p.relative_to(out).as_posix() for p in files if KEY.encode() in p.read_bytes()]
    assert leaks == []


# --- no pickle ---------------------------------------------------------------------------------------------------

UNSAFE = [
    r"\bimport pickle\b|\bpickle\.",
    r"\bcPickle\b|\bdill\b|\bjoblib\b|\bcloudpickle\b",
    r"read_pickle|to_pickle",
    r"allow_pickle\s*=\s*True",
    r"safe_serialization\s*=\s*False",
    r"weights_only\s*=\s*False",
    r"torch\.save\(",
    r"use_safetensors\s*=\s*False",
]


def test_the_code_never_unpickles():
    found = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p, text in _python_sources().items()
        for n, line in enumerate(text.splitlines(), 1)
        if any(re.search(pattern, line) for pattern in UNSAFE)
        or ("torch.load(" in line and "weights_only=True" not in line)
    ]
    assert found == []


def test_adapters_are_saved_as_safetensors(tmp_path):
    """PEFT as train_lora configures it (the Trainer saves a PEFT model with its own ``save_pretrained``), on a
    tiny random model: the adapter is safetensors only, and loads back weight for weight."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import load_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from culturealign.train.lora import LORA_DEFAULTS

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(**LORA_DEFAULTS))
    model.save_pretrained(tmp_path / "adapter")
    names = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert "adapter_model.safetensors" in names and "adapter_config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))]
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    back = PeftModel.from_pretrained(LlamaForCausalLM(config), tmp_path / "adapter")
    state = back.state_dict()
    for name, tensor in saved.items():
        match = [k for k in state if k.replace(".default", "") == name]
        assert match and torch.equal(state[match[0]], tensor), name


def test_training_data_is_json_and_arrow(tmp_path):
    from culturealign.train.lora import write_training_data

    chat = [{"role": "user", "content": "Hi {country} <|im_end|>"}, {"role": "assistant", "content": "1"}]
    write_training_data([ChatSample(chat, {"culture": "DEU"})] * 2, tmp_path, "joint")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".jsonl", ".json", ".arrow"}, files
    assert [json.loads(line) for line in (tmp_path / "joint.jsonl").read_text().splitlines()][0]["messages"] == chat


def test_the_call_cache_holds_json(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    cache.put_many({"k": {"probs": {"1": 0.5}, "mass": 1.0}})
    cache.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        ((value,),) = db.execute("SELECT value FROM calls").fetchall()
    assert json.loads(value) == {"probs": {"1": 0.5}, "mass": 1.0}


@pytest.mark.parametrize("name", ["adapter_model.bin", "pytorch_model.bin"])
def test_no_code_names_a_pickle_weights_file(name):
    assert not [p for p, text in _python_sources().items() if name in text]
