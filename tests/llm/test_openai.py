"""OpenAIEngine against a fake OpenAI-compatible server (``httpx.MockTransport``): no network, no waiting."""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from culturealign.errors import UserError
from culturealign.llm import openai as openai_mod
from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache
from culturealign.llm.openai import OpenAIEngine, parse_option

URL = "http://fake-llm.test/v1"
PROMPT = [{"role": "user", "content": "Pick one."}]
KEY = "sk-live-7f3a9c2e5b1d4f6a8c0e"
SERVED = {"created": 1_700_000_000, "owned_by": "me"}  # what the fake server's /models says of fake-model


@pytest.fixture(autouse=True)
def no_backoff_wait(monkeypatch):
    async def instant(seconds: float) -> None:
        return None

    monkeypatch.setattr(openai_mod, "_sleep", instant)


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("TEST_LLM_KEY", raising=False)


class FakeServer:
    """Counts requests and answers each with ``reply(payload, request_number)``; GET /models lists ``models``."""

    def __init__(self, reply: Callable[[dict, int], httpx.Response], models: list[dict] | None = None):
        self.reply = reply
        self.models = [{"id": "fake-model", "object": "model", **SERVED}] if models is None else models
        self.model_requests = 0
        self.payloads: list[dict] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.path == "/v1/models"
            self.model_requests += 1
            return httpx.Response(200, json={"object": "list", "data": self.models})
        assert request.url.path == "/v1/chat/completions"
        payload = json.loads(request.content)
        self.payloads.append(payload)
        self.headers.append(request.headers)
        return self.reply(payload, len(self.payloads))

    @property
    def count(self) -> int:
        return len(self.payloads)


def completion(contents: list[str], logprobs: list[dict] | None = None, usage: bool = True) -> httpx.Response:
    choices = []
    for i, c in enumerate(contents):
        choice: dict = {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
        if logprobs is not None:
            choice["logprobs"] = {"content": [{"token": "x", "logprob": 0.0, "top_logprobs": logprobs}]}
        choices.append(choice)
    body: dict = {"id": "x", "object": "chat.completion", "choices": choices}
    if usage:
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 2 * len(contents), "total_tokens": 0}
    return httpx.Response(200, json=body)


def engine(server: FakeServer, **kw) -> OpenAIEngine:
    return OpenAIEngine(base_url=URL + "/", model="fake-model", transport=httpx.MockTransport(server), **kw)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The backoff waits the engine asks for, recorded instead of waited out."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(openai_mod, "_sleep", record)
    return asked


def test_identity_and_no_auth_header_without_key():
    server = FakeServer(lambda p, i: completion(["ok"]))
    eng = engine(server)
    assert eng.identity() == {
        "engine": "openai",
        "base_url": URL,
        "model": "fake-model",
        "revision": None,
        "served": SERVED,
        "top_logprobs": 20,
        "samples_fallback": 20,
        "max_n": 8,
        "chat_template_from": None,
    }
    eng.generate([PROMPT])
    assert "authorization" not in server.headers[0]
    assert server.model_requests == 1  # asked once per engine, not once per prompt or call


def options_server(meta: dict | None = None) -> FakeServer:
    top = [{"token": "A", "logprob": math.log(0.6)}, {"token": "B", "logprob": math.log(0.4)}]

    def reply(payload, i):
        if payload.get("logprobs"):
            return completion(["A"], logprobs=top)
        return completion(["hello"] * payload["n"])

    server = FakeServer(reply)
    server.models[0]["meta"] = meta or {"n_params": 134_515_008, "size": 270_882_816}
    return server


@pytest.mark.parametrize(
    "change",
    [{"top_logprobs": 5}, {"samples_fallback": 7}, {"revision": "lora-retrained"}, "server meta", "server created"],
)
def test_a_change_that_alters_answers_misses_the_cache(tmp_path, change):
    """Same base URL and model name, other answers: the scoring settings, the user's revision, or what the server
    says of the weights it serves under that name (a retrained LoRA re-served)."""
    server = options_server()
    cache = CallCache(tmp_path / "c.sqlite")

    def run(**kw) -> OpenAIEngine:
        eng = engine(server, cache=cache, **kw)
        eng.generate([PROMPT])
        eng.score_options([PROMPT], [["A", "B"]])
        return eng

    assert run().stats.calls == 2
    assert run().stats.calls == 0  # an identical engine: both answers come from the cache
    kw = change if isinstance(change, dict) else {}
    if change == "server meta":
        server.models[0]["meta"] = {"n_params": 134_515_008, "size": 270_999_000}
    if change == "server created":
        server.models[0]["created"] += 3600
    changed = run(**kw)
    assert changed.stats.calls == 2 and changed.stats.cache_hits == 0
    cache.close()


@pytest.mark.parametrize("date_header", [True, False])
def test_created_at_the_time_of_the_answer_is_not_part_of_identity(date_header):
    """vLLM and llama.cpp report ``created`` as the time of the answer: kept, no engine would hit the cache."""

    def models(request: httpx.Request) -> httpx.Response:
        now = int(time.time()) + 1000 * len(seen) if date_header else int(time.time())
        seen.append(now)
        entry = {"id": "m", "object": "model", "created": now, "owned_by": "vllm", "root": "/ckpt/m"}
        headers = {"date": formatdate(now, usegmt=True)} if date_header else {}
        return httpx.Response(200, json={"object": "list", "data": [entry]}, headers=headers)

    seen: list[int] = []
    first, second = (OpenAIEngine(base_url=URL, model="m", transport=httpx.MockTransport(models)) for _ in "12")
    assert first.identity() == second.identity() and len(seen) == 2
    assert first.identity()["served"] == {"owned_by": "vllm", "root": "/ckpt/m"}


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(200, json={"object": "list", "data": [{"id": "other-model", "created": 1}]}),
        httpx.Response(200, text="<html>models</html>"),
        httpx.Response(200, json=["fake-model"]),
    ],
)
def test_without_a_description_from_models_identity_falls_back(answer, caplog):
    def handler(request: httpx.Request) -> httpx.Response:
        return answer if request.method == "GET" else completion(["ok"])

    eng = OpenAIEngine(base_url=URL, model="fake-model", transport=httpx.MockTransport(handler))
    assert eng.generate([PROMPT]) == [["ok"]]
    assert eng.identity()["served"] == {} and eng.identity()["model"] == "fake-model"
    assert "set revision when the server serves new weights" in caplog.text


def test_key_from_named_env_var(monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    server = FakeServer(lambda p, i: completion(["ok"]))
    engine(server, api_key_env="TEST_LLM_KEY").generate([PROMPT])
    assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_generate_returns_n_stripped_outputs_and_counts_tokens():
    server = FakeServer(lambda p, i: completion([f"  answer {k}\n" for k in range(p["n"])]))
    eng = engine(server)
    params = GenParams(temperature=0.7, top_p=0.9, max_tokens=32, n=3, seed=5)
    out = eng.generate([PROMPT, [{"role": "user", "content": "Another."}]], params)
    assert out == [["answer 0", "answer 1", "answer 2"]] * 2
    assert server.count == 2
    sent = server.payloads[0]
    assert sent["model"] == "fake-model" and sent["messages"] == PROMPT
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["n"], sent["seed"]) == (0.7, 0.9, 32, 3, 5)
    assert eng.stats.prompt_tokens == 20 and eng.stats.completion_tokens == 12


def test_repetition_penalty_is_sent_only_when_it_penalizes():
    server = FakeServer(lambda p, i: completion(["ok"]))
    eng = engine(server)
    eng.generate([PROMPT], GenParams(temperature=0.7))
    eng.generate([PROMPT], GenParams(temperature=0.7, repetition_penalty=1.1))
    assert "repetition_penalty" not in server.payloads[0]  # the plain OpenAI API refuses unknown parameters
    assert server.payloads[1]["repetition_penalty"] == 1.1  # vLLM's extension


def test_server_ignoring_n_is_asked_again():
    server = FakeServer(lambda p, i: completion([f"sample {i}"]))  # always one choice
    out = engine(server).generate([PROMPT], GenParams(temperature=1.0, n=4, seed=0))
    assert out == [["sample 1", "sample 2", "sample 3", "sample 4"]]
    assert server.count == 4
    assert [p["n"] for p in server.payloads] == [4, 3, 2, 1]
    assert len({p["seed"] for p in server.payloads}) == 4  # a seeded server would otherwise repeat itself


def test_many_samples_are_asked_at_most_max_n_at_a_time():
    """llama-server answers HTTP 400 to n > 8: the sampling fallback's 20 samples go out as 8 + 8 + 4."""

    def reply(payload: dict, i: int) -> httpx.Response:
        if payload.get("n", 1) > 8:
            return httpx.Response(400, json={"error": {"message": "Field 'n': Value must be between 1 <= value <= 8"}})
        return completion([str(1 + k % 2) for k in range(payload.get("n", 1))])  # no log-probs: sample

    server = FakeServer(reply)
    [scores] = engine(server).score_options([PROMPT], [["1", "2", "3"]])
    assert [p["n"] for p in server.payloads if p.get("n", 1) > 1] == [8, 8, 4]
    assert scores.method == "sampling" and scores.probs == {"1": 0.5, "2": 0.5, "3": 0.0}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_overload_and_server_errors_are_retried(status):
    def reply(payload, i):
        if i <= 3:
            return httpx.Response(status, json={"error": {"message": "busy"}})
        return completion(["fine"])

    server = FakeServer(reply)
    assert engine(server).generate([PROMPT]) == [["fine"]]
    assert server.count == 4


def test_malformed_and_truncated_bodies_are_retried():
    bodies = [
        httpx.Response(200, content=b'{"choices": [{"message": {"content": "tr'),
        httpx.Response(200, json={"object": "error"}),
        httpx.Response(200, content=b"<html>gateway</html>"),
    ]

    def reply(payload, i):
        return bodies[i - 1] if i <= len(bodies) else completion(["whole"])

    server = FakeServer(reply)
    assert engine(server).generate([PROMPT]) == [["whole"]]
    assert server.count == 4


def test_timeouts_exhausted_raise_user_error_naming_the_url():
    def reply(payload, i):
        raise httpx.ReadTimeout("read timed out")

    server = FakeServer(reply)
    with pytest.raises(UserError) as err:
        engine(server, max_retries=2, timeout=5).generate([PROMPT])
    msg = str(err.value)
    assert URL in msg and "timed out" in msg and "max_retries" in msg and "\n" not in msg
    assert server.count == 3


def test_server_errors_exhausted_name_the_last_error():
    server = FakeServer(lambda p, i: httpx.Response(502, text="bad gateway"))
    with pytest.raises(UserError, match="HTTP 502: bad gateway"):
        engine(server, max_retries=1).generate([PROMPT])
    assert server.count == 2


def test_other_connect_errors_are_retried_and_say_cannot_reach():
    def reply(payload, i):
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    server = FakeServer(reply)
    with pytest.raises(UserError, match=f"cannot reach server at {URL}: ConnectError"):
        engine(server, max_retries=2).generate([PROMPT])
    assert server.count == 3


def test_refused_connection_is_tried_twice_only():
    def reply(payload, i):
        raise httpx.ConnectError("All connection attempts failed") from ConnectionRefusedError(111, "refused")

    server = FakeServer(reply)
    with pytest.raises(UserError, match=rf"cannot reach server at {URL}: .*\(after 2 attempts\)"):
        engine(server, max_retries=6).generate([PROMPT])
    assert server.count == 2


def test_closed_port_fails_fast_with_the_url_and_the_fix(waits, caplog):
    """Nothing listens: no minute of backoff (the waits are recorded, and counted in the time it would take)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    eng = OpenAIEngine(base_url=url, model="m")
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        eng.generate([PROMPT])
    assert time.monotonic() - start + sum(waits) < 5 and len(waits) <= 1
    msg = str(err.value)
    assert f"cannot reach server at {url}" in msg and "start the server or fix base_url" in msg and "\n" not in msg
    assert eng.identity()["served"] == {} and "ConnectError" in caplog.text  # /models refused: logged, not raised


def test_401_is_immediate_and_names_the_env_var():
    server = FakeServer(lambda p, i: httpx.Response(401, json={"error": {"message": "Incorrect API key"}}))
    with pytest.raises(UserError) as err:
        engine(server, api_key_env="TEST_LLM_KEY").generate([PROMPT])
    msg = str(err.value)
    assert "TEST_LLM_KEY" in msg and "401" in msg and "Incorrect API key" in msg
    assert server.count == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"json": {"error": {"message": f"Incorrect API key provided: {KEY}. Header: Bearer {KEY}"}}}),
        (403, {"text": f"forbidden\nAuthorization: Bearer {KEY}\n"}),
        (500, {"json": {"detail": f"crashed on request with key {KEY}"}}),
        (400, {"text": "x" * 185 + KEY}),  # the key where the message is cut: no prefix of it either
    ],
)
def test_server_text_echoing_the_api_key_is_redacted(monkeypatch, caplog, status, body):
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    server = FakeServer(lambda p, i: httpx.Response(status, **body))
    with pytest.raises(UserError) as err:
        engine(server, api_key_env="TEST_LLM_KEY", max_retries=1).generate([PROMPT])
    msg = str(err.value)
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # the key was sent
    assert KEY[:10] not in msg and "[redacted]" in msg and f"HTTP {status}" in msg and "\n" not in msg
    assert KEY[:10] not in caplog.text  # nor in the retry log lines
    if status == 401:
        assert "TEST_LLM_KEY holds a key the server refused" in msg


def test_404_points_at_base_url_and_model():
    server = FakeServer(lambda p, i: httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(UserError, match=r"404 \(Not Found\).*/v1.*'fake-model'"):
        engine(server).generate([PROMPT])
    assert server.count == 1


def test_options_from_logprobs():
    top = [
        {"token": "2", "logprob": math.log(0.5)},
        {"token": " 2", "logprob": math.log(0.1)},
        {"token": "1", "logprob": math.log(0.2)},
        {"token": "3", "logprob": math.log(0.1)},
        {"token": "I", "logprob": math.log(0.05)},
    ]
    server = FakeServer(lambda p, i: completion(["2"], logprobs=top))
    eng = engine(server, top_logprobs=5)
    [scores] = eng.score_options([PROMPT], [["1", "2", "3"]])
    assert scores.method == "logprobs"
    assert scores.mass == pytest.approx(0.9)
    assert scores.probs == pytest.approx({"1": 0.2 / 0.9, "2": 0.6 / 0.9, "3": 0.1 / 0.9})
    assert scores.choice == "2"
    sent = server.payloads[0]
    assert (sent["max_tokens"], sent["temperature"], sent["logprobs"], sent["top_logprobs"]) == (1, 0, True, 5)
    assert server.count == 1


def sampling_server(top: list[dict] | None, answers: list[str]) -> FakeServer:
    """Answers logprob requests with ``top`` and sampling requests with ``answers``."""

    def reply(payload, i):
        if payload.get("logprobs"):
            return completion(["1"], logprobs=top)
        assert payload["temperature"] == 1.0 and payload["max_tokens"] == 8
        return completion(answers[: payload["n"]])

    return FakeServer(reply)


def test_missing_option_in_top_logprobs_falls_back_to_sampling():
    top = [{"token": "1", "logprob": math.log(0.7)}, {"token": "2", "logprob": math.log(0.3)}]
    answers = ["1", "(1)", "1.", "2", "3 - agree", "**2**", "Three", "1", "10", "x"]
    server = sampling_server(top, answers)
    [scores] = engine(server, samples_fallback=10, max_n=10).score_options([PROMPT], [["1", "2", "3"]])
    assert scores.method == "sampling"
    assert scores.probs == pytest.approx({"1": 4 / 7, "2": 2 / 7, "3": 1 / 7})
    assert scores.mass == pytest.approx(0.7)
    assert [p.get("logprobs", False) for p in server.payloads] == [True, False]
    assert server.payloads[1]["n"] == 10


def test_colliding_codes_skip_logprobs_and_sample():
    answers = ["10", "1", "10 because", "1)"]
    server = sampling_server(None, answers)
    codes = [str(k) for k in range(1, 11)]
    [scores] = engine(server, samples_fallback=4).score_options([PROMPT], [codes])
    assert scores.method == "sampling"
    assert scores.probs["10"] == pytest.approx(0.5) and scores.probs["1"] == pytest.approx(0.5)
    assert scores.mass == pytest.approx(1.0)
    assert all(not p.get("logprobs") for p in server.payloads)


def test_no_logprobs_from_server_falls_back_and_nothing_parsed_is_uniform():
    server = sampling_server(None, ["I cannot answer"] * 5)
    [scores] = engine(server, samples_fallback=5).score_options([PROMPT], [["A", "B"]])
    assert scores.method == "sampling"
    assert scores.probs == {"A": 0.5, "B": 0.5} and scores.mass == 0.0
    assert server.count == 2


def test_logprobs_rejected_with_400_falls_back_to_sampling():
    def reply(payload, i):
        if payload.get("logprobs"):
            return httpx.Response(400, json={"error": {"message": "logprobs not supported"}})
        return completion(["B"] * payload["n"])

    server = FakeServer(reply)
    eng = engine(server, samples_fallback=3)
    out = eng.score_options([PROMPT, [{"role": "user", "content": "Again."}]], [["A", "B"], ["A", "B"]])
    assert [s.probs for s in out] == [{"A": 0.0, "B": 1.0}] * 2
    assert all(s.method == "sampling" for s in out)


def test_parse_option_prefers_longest_code_and_needs_a_boundary():
    codes = ["1", "2", "10"]
    assert parse_option("10.", codes) == "10"
    assert parse_option(" (1) yes", codes) == "1"
    assert parse_option("12", codes) is None
    assert parse_option("Agree", ["A", "B"]) is None
    assert parse_option("'B'", ["A", "B"]) == "B"


def check_second_call_is_free(cache: CallCache) -> None:
    top = [{"token": "A", "logprob": math.log(0.6)}, {"token": "B", "logprob": math.log(0.4)}]

    def reply(payload, i):
        if payload.get("logprobs"):
            return completion(["A"], logprobs=top)
        return completion(["hello"] * payload["n"])

    server = FakeServer(reply)
    eng = engine(server, cache=cache)
    first = (eng.generate([PROMPT]), eng.score_options([PROMPT], [["A", "B"]]))
    assert server.count == 2
    again = engine(server, cache=cache)
    second = (again.generate([PROMPT]), again.score_options([PROMPT], [["A", "B"]]))
    assert server.count == 2
    assert second == first and again.stats.cache_hits == 2
    cache.close()


def test_cache_makes_second_identical_call_free(tmp_path):
    check_second_call_is_free(CallCache(tmp_path / "calls.sqlite"))


def test_cache_makes_second_identical_call_free_once_cache_is_non_empty(tmp_path):
    cache = CallCache(tmp_path / "calls.sqlite")
    cache.put_many({"unrelated": 1})  # sidesteps the falsy-empty-cache bug above
    check_second_call_is_free(cache)


def test_many_prompts_run_concurrently_within_chunks():
    server = FakeServer(lambda p, i: completion([p["messages"][0]["content"].upper()]))
    prompts = [[{"role": "user", "content": f"q{k}"}] for k in range(25)]
    out = engine(server, concurrency=3, batch_size=10).generate(prompts)
    assert out == [[f"Q{k}"] for k in range(25)]
    assert server.count == 25


def _echo_server(requests: list[dict], with_logprobs: bool = True):
    """A /v1/completions server that echoes the prompt split into words, each with log-prob -1 (first: None)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(404)
        assert request.url.path == "/v1/completions"
        payload = json.loads(request.content)
        requests.append(payload)
        text = payload["prompt"]
        words, offsets, pos = [], [], 0
        for w in text.split(" "):
            words.append(w + " ")
            offsets.append(pos)
            pos += len(w) + 1
        logprobs = [None] + [-1.0] * (len(words) - 1) + [-0.5]  # the generated token comes last
        body = {
            "choices": [
                {
                    "text": text + "X",
                    "logprobs": {"tokens": words + ["X"], "text_offset": offsets + [pos], "token_logprobs": logprobs},
                }
            ]
        }
        if not with_logprobs:
            body["choices"][0]["logprobs"] = None
        return httpx.Response(200, json=body)

    return handler


def test_completion_scores_sum_the_echoed_logprobs_of_the_completion(monkeypatch):
    requests: list[dict] = []
    eng = OpenAIEngine(
        base_url=URL, model="m", chat_template_from="any", transport=httpx.MockTransport(_echo_server(requests))
    )
    monkeypatch.setattr(OpenAIEngine, "_render_text", lambda self, messages: "SYSTEM: be nice. USER: hi ASSISTANT: ")
    scores = eng.score_completions([PROMPT, PROMPT], ["hello there friend", "yes"])
    assert scores == [-3.0, -1.0]  # one word = one token at -1; the generated token is not counted
    assert requests[0]["echo"] is True and requests[0]["logprobs"] == 1
    assert requests[0]["prompt"].endswith("ASSISTANT: hello there friend")


def test_completion_scoring_needs_a_template_and_prompt_logprobs(monkeypatch):
    eng = OpenAIEngine(base_url=URL, model="m", transport=httpx.MockTransport(_echo_server([])))
    with pytest.raises(UserError, match="set chat_template_from"):
        eng.score_completions([PROMPT], ["x"])
    eng = OpenAIEngine(
        base_url=URL,
        model="m",
        chat_template_from="any",
        transport=httpx.MockTransport(_echo_server([], with_logprobs=False)),
    )
    monkeypatch.setattr(OpenAIEngine, "_render_text", lambda self, messages: "USER: hi ASSISTANT: ")
    with pytest.raises(UserError, match="no prompt log-probabilities"):
        eng.score_completions([PROMPT], ["x"])


@pytest.mark.parametrize("kind", ["generate", "options"])
def test_each_finished_request_is_cached_before_its_chunk_ends(tmp_path, kind):
    """A chunk that dies on its last request keeps the answers already returned: a rerun asks only for that one."""

    def reply(payload: dict, n: int) -> httpx.Response:
        if payload["messages"][0]["content"] == "q9" and not healthy:
            return httpx.Response(401, json={"error": "no"})
        if kind == "options":
            return completion(["1"], logprobs=[{"token": "1", "logprob": -0.1}, {"token": "2", "logprob": -2.4}])
        return completion([payload["messages"][0]["content"].upper()])

    def call(eng: OpenAIEngine):
        prompts = [[{"role": "user", "content": f"q{k}"}] for k in range(10)]
        if kind == "options":
            return eng.score_options(prompts, [["1", "2"]] * 10)
        return eng.generate(prompts)

    healthy = False
    server = FakeServer(reply)
    cache = CallCache(tmp_path / "calls.sqlite")
    with pytest.raises(UserError):
        call(engine(server, cache=cache, concurrency=1, batch_size=10, chunk_size=10))
    assert len(cache) == 9  # one chunk of 10: the 9 that returned are committed

    healthy = True
    server2 = FakeServer(reply)
    out = call(engine(server2, cache=cache, concurrency=1, batch_size=10, chunk_size=10))
    assert [p["messages"][0]["content"] for p in server2.payloads] == ["q9"]
    assert len(out) == 10 and len(cache) == 10
    if kind == "options":
        assert {s.method for s in out} == {"logprobs"} and out[0].probs == out[9].probs
