"""The in-process llama.cpp engine on the embedded GGUF, checked against the transformers engine on its weights."""

from __future__ import annotations

import importlib.util

import pytest

from culturealign.errors import UserError
from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache
from culturealign.llm.spec import EngineSpec

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (CULTUREALIGN_WITH_LLAMACPP=1 bash scripts/setup.sh builds it)",
)

SURVEY = [
    [
        {"role": "system", "content": "You are a person from Germany."},
        {
            "role": "user",
            "content": f"How important is {topic} in your life? Answer with one number: "
            "1 very important, 2 rather important, 3 not very important, 4 not at all.",
        },
    ]
    for topic in ("family", "work", "religion")
]
TEN = [[{"role": "user", "content": "On a scale from 1 to 10, how much do you trust strangers? Reply with a number."}]]
CAPITAL = [[{"role": "user", "content": "What is the capital of France?"}]]


def test_missing_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(UserError) as err:
        EngineSpec("llamacpp", "smollm2").build()
    assert str(err.value) == (
        "Install llama-cpp-python to use engine 'llamacpp' (pip install 'culturealign[llamacpp]')"
    )


@needs_llama_cpp
def test_the_spec_checks_model_and_adapter(tmp_path):
    with pytest.raises(UserError, match="needs a .gguf file or 'smollm2'"):
        EngineSpec("llamacpp", "HuggingFaceTB/SmolLM2-135M-Instruct").build()
    with pytest.raises(UserError, match="model file not found"):
        EngineSpec("llamacpp", str(tmp_path / "missing.gguf")).build()
    with pytest.raises(UserError, match="--adapter applies to the local engine"):
        EngineSpec("llamacpp", "smollm2", adapter=str(tmp_path))
    with pytest.raises(UserError, match="unknown engine 'llama': use local, openai, llamacpp"):
        EngineSpec("llama", "smollm2")


@pytest.fixture(scope="module")
def llama():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (CULTUREALIGN_WITH_LLAMACPP=1 bash scripts/setup.sh builds it)")
    eng = EngineSpec("llamacpp", "smollm2").build()
    eng.load()
    yield eng
    eng.unload()


def test_identity_is_the_gguf_files_digest(llama):
    import hashlib

    ident = llama.identity()
    with llama._path.open("rb") as f:
        assert ident == {"engine": "llamacpp", "model": hashlib.file_digest(f, "sha256").hexdigest()}


def test_render_matches_the_transformers_chat_template(llama, engine):
    """Same tokens as the local engine: the GGUF's template and tokenizer agree with the converted model's."""
    for messages in SURVEY + CAPITAL:
        assert llama.render(messages) == engine.render(messages)


@pytest.mark.slow
def test_generation_is_seeded_greedy_is_stable_and_tokens_are_counted(llama):
    greedy = GenParams(temperature=0.0, max_tokens=8)
    first = llama.generate(CAPITAL, greedy)
    assert first[0][0] and first == llama.generate(CAPITAL * 2, greedy)[:1]
    sampled = GenParams(temperature=1.0, max_tokens=8, n=3, seed=7)
    a = llama.generate(SURVEY[:1], sampled)
    assert [len(r) for r in a] == [3] and all(a_ for r in a for a_ in r)
    assert a == llama.generate(SURVEY[:1], sampled)  # the seed fixes the samples
    assert len(set(a[0])) > 1  # ... and the n samples of one prompt differ from each other
    assert llama.stats.completion_tokens > 0 and llama.stats.prompt_tokens > 0


@pytest.mark.slow
def test_option_scores_are_exact_and_agree_with_transformers(llama, engine):
    """Full next-token distributions: every code scored (no fallback), two-token codes included ("10")."""
    codes = ["1", "2", "3", "4"]
    ours = llama.score_options(SURVEY, [codes] * len(SURVEY))
    theirs = engine.score_options(SURVEY, [codes] * len(SURVEY))
    for a, b in zip(ours, theirs, strict=True):
        assert a.method == "logits" and sum(a.probs.values()) == pytest.approx(1.0)
        assert 0 < a.mass <= 1
        # same Q4_1 weights; llama.cpp quantizes activations for its matmuls, transformers runs fp32
        assert a.choice == b.choice
        assert sum(abs(a.probs[c] - b.probs[c]) for c in codes) / 2 < 0.05
        assert a.mass == pytest.approx(b.mass, rel=0.35)  # a sum of 4 small probabilities: the most sensitive number
    ten = [str(k) for k in range(1, 11)]
    [a] = llama.score_options(TEN, [ten])
    [b] = engine.score_options(TEN, [ten])
    assert a.probs["10"] > 0 and sum(a.probs.values()) == pytest.approx(1.0)
    assert sum(abs(a.probs[c] - b.probs[c]) for c in ten) / 2 < 0.05


@pytest.mark.slow
def test_completion_scores_agree_with_transformers(llama, engine):
    prompts = CAPITAL * 3 + SURVEY[:1]
    completions = ["The capital of France is Paris.", "The capital of France is Berlin.", "Paris", "2"]
    ours = llama.score_completions(prompts, completions)
    theirs = engine.score_completions(prompts, completions)
    assert ours[0] > ours[1]  # the true answer is the likelier one
    for a, b in zip(ours, theirs, strict=True):  # activations quantized to 8 bits: up to ~0.05 nats a token apart
        assert a < 0 and a == pytest.approx(b, rel=0.2)


@pytest.mark.slow
def test_scores_do_not_depend_on_what_was_evaluated_before(llama):
    """The KV cache of the previous call is reused; the numbers must not depend on it (float32 cache)."""
    codes = ["1", "2", "3", "4"]
    llama.generate(CAPITAL, GenParams(max_tokens=2))
    after_other = llama.score_options(SURVEY[:1], [codes])
    llama.generate(SURVEY[:1], GenParams(max_tokens=2))  # leaves this very prompt (and more) in the cache
    assert llama.score_options(SURVEY[:1], [codes]) == after_other
    llama.score_completions(SURVEY[:1], ["2"])
    assert llama.score_completions(SURVEY[:1], ["2"]) == llama.score_completions(CAPITAL + SURVEY[:1], ["x", "2"])[1:]


def test_cache_makes_the_second_call_free(llama, tmp_path):
    from culturealign.llm.llamacpp import LlamaCppEngine

    cache = CallCache(tmp_path / "calls.sqlite")
    first = LlamaCppEngine(model="smollm2", cache=cache)
    first._llm, first._format = llama._llm, llama._format  # share the loaded model: the cache is under test
    out = first.score_options(SURVEY[:1], [["1", "2", "3", "4"]])
    again = LlamaCppEngine(model="smollm2", cache=cache)
    assert again.score_options(SURVEY[:1], [["1", "2", "3", "4"]]) == out
    assert again.stats.cache_hits == 1 and again.stats.calls == 0 and again._llm is None
    cache.close()
