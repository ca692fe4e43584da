"""The openai engine against a real OpenAI-compatible server: llama-cpp-python's, serving the embedded GGUF.

Checked against the in-process llama.cpp engine on the same file (same weights, same kernels), so a wrong parse of
the server's log-probs or offsets shows up as a number that disagrees, not just as a shape that looks right.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache
from culturealign.llm.openai import OpenAIEngine

from .conftest import MODEL_NAME, LlamaServer, RecipeRun, survey_prompt

pytestmark = pytest.mark.slow


SURVEY = [survey_prompt("Germany", "family"), survey_prompt("Nigeria", "religion")]
CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]


def openai_engine(server: LlamaServer, **kw) -> OpenAIEngine:
    return OpenAIEngine(base_url=server.url, model=MODEL_NAME, **kw)


@pytest.fixture(scope="module")
def in_process():
    """The same GGUF in this process: the reference the server's numbers are checked against."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from culturealign.llm.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(model="smollm2", n_threads=1)
    eng.load()
    yield eng
    eng.unload()


def test_batched_generation_is_seeded_and_cached(llama_server, tmp_path):
    prompts = [CAPITAL, *SURVEY, [{"role": "user", "content": "Name a fruit."}]]
    params = GenParams(temperature=0.8, max_tokens=12, n=2, seed=3)
    eng = openai_engine(llama_server, batch_size=4, concurrency=4, cache=CallCache(tmp_path / "calls.sqlite"))
    out = eng.generate(prompts, params)
    assert [len(r) for r in out] == [2] * len(prompts) and all(r[0] for r in out)
    assert eng.stats.calls == len(prompts) and eng.stats.prompt_tokens > 0 and eng.stats.completion_tokens > 0
    # the server answers one choice per request whatever n: the engine asked again with the next seed
    assert any(r[0] != r[1] for r in out)
    fresh = openai_engine(llama_server, concurrency=1)
    assert fresh.generate(prompts, params) == out  # seeded: the same samples from a fresh client, in another order
    again = openai_engine(llama_server, cache=eng.cache)
    assert again.generate(prompts, params) == out and again.stats.calls == 0 and again.stats.cache_hits == 4


def test_greedy_generation_matches_in_process_llama_cpp(llama_server, in_process):
    """Same template, same tokens, same kernels: the server's greedy first token is the in-process one."""
    params = GenParams(temperature=0.0, max_tokens=1)
    assert openai_engine(llama_server).generate([CAPITAL, *SURVEY], params) == in_process.generate(
        [CAPITAL, *SURVEY], params
    )


def test_option_scores_from_logprobs_match_the_full_distribution(llama_server, in_process):
    codes = ["1", "2", "3", "4"]
    eng = openai_engine(llama_server, top_logprobs=20)
    served = eng.score_options(SURVEY, [codes] * len(SURVEY))
    exact = in_process.score_options(SURVEY, [codes] * len(SURVEY))
    for s, e in zip(served, exact, strict=True):
        assert s.method == "logprobs"
        assert s.probs == pytest.approx(e.probs, abs=1e-4) and s.mass == pytest.approx(e.mass, rel=1e-3)
    assert eng.option_methods == {"logprobs": 2}


def test_option_missing_from_top_logprobs_falls_back_to_sampling_and_is_counted(llama_server, in_process):
    """With the top 8 log-probs, every code is there for one prompt (worst rank 5) and not for the other (rank 10)."""
    codes = ["1", "2", "3", "4"]
    prompts = [survey_prompt("Germany", "family"), survey_prompt("Japan", "work")]
    eng = openai_engine(llama_server, top_logprobs=8, samples_fallback=6)
    scores = eng.score_options(prompts, [codes, codes])
    assert [s.method for s in scores] == ["logprobs", "sampling"]
    assert eng.option_methods == {"logprobs": 1, "sampling": 1}
    assert scores[0].probs == pytest.approx(in_process.score_options(prompts[:1], [codes])[0].probs, abs=1e-4)
    sampled = scores[1]
    assert set(sampled.probs) == set(codes) and 0 <= sampled.mass <= 1
    assert sum(sampled.probs.values()) == pytest.approx(1.0)
    assert sampled.mass * 6 == pytest.approx(round(sampled.mass * 6))  # the share of the 6 samples that parsed


def test_completion_scores_from_echoed_prompt_logprobs(llama_server, in_process):
    eng = openai_engine(llama_server, chat_template_from="smollm2")
    prompts = [CAPITAL, CAPITAL, SURVEY[0]]
    completions = ["The capital of France is Paris.", "The capital of France is Berlin.", "2"]
    served = eng.score_completions(prompts, completions)
    exact = in_process.score_completions(prompts, completions)
    assert served[0] > served[1]
    assert served == pytest.approx(exact, abs=1e-3)  # same file, same kernels: the same numbers


def test_recipe_data_steps_through_the_server(clean_recipe: RecipeRun):
    """`culturealign run recipes/culturespa.yaml generator.engine=openai ...` end to end on the real server."""
    run = clean_recipe.path
    assert clean_recipe.returncode == 0, clean_recipe.stderr
    for name in ("01-generate-questions", "02-dedup", "03-answer", "04-select", "05-training-data"):
        assert (run / "steps" / name / "stats.json").is_file(), name
    questions = (run / "steps" / "02-dedup" / "data.jsonl").read_text().splitlines()
    assert questions, "the server wrote no valid new question"
    answers = [json.loads(line) for line in (run / "steps" / "03-answer" / "data.jsonl").read_text().splitlines()]
    assert len(answers) == len(questions)  # one culture: one pair per question
    for pair in answers:
        for side in ("unaware", "aware"):
            assert pair[side]["method"] in ("logprobs", "sampling")
            assert sum(pair[side]["probs"].values()) == pytest.approx(1.0, abs=1e-6) or pair[side]["mass"] == 0
    cost = json.loads((run / "cost.json").read_text())
    assert cost["calls"] >= len(questions) + 2 * len(answers)
    assert clean_recipe.upstream > 0 and (run / "eval" / "comparison.json").is_file()
    generator = yaml.safe_load((run / "config.yaml").read_text())["generator"]
    assert (generator["engine"], generator["base_url"]) == ("openai", clean_recipe.base_url)
