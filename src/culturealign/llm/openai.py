"""An engine for any OpenAI-compatible chat server (OpenAI, vLLM, llama.cpp, Ollama, TGI ...).

Requests of a chunk run concurrently (``httpx.AsyncClient`` bounded by a semaphore) because remote servers batch
on their side; each chunk is driven synchronously with ``asyncio.run`` so the base class's caching and chunking
stay unchanged. Transient failures (429, 5xx, timeouts, dropped connections, truncated bodies) are retried with
exponential backoff, except a refused connection (no server listening: asked once more, then reported); everything
else becomes a one-line :class:`UserError` that says how to fix it, with the API key redacted from server text.

Option scores come from the first token's ``top_logprobs`` when they can be trusted, else from sampling.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams, OptionScores
from culturealign.records import Messages

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKOFF = 60.0  # seconds: no single wait grows beyond this, whatever the attempt or Retry-After
TOKEN_LIKE = re.compile(r"[A-Za-z0-9]{1,8}")  # codes a tokenizer plausibly emits as one first token
LEADING_JUNK = " \t\r\n([{<*_\"'`"  # what models put before the code: "(A)", "**2**", "'3'"
SERVED_FIELDS = ("created", "owned_by", "root", "parent", "meta")  # what /models says of the weights behind a name
ANSWER_TIME_SLACK = 5.0  # seconds: vLLM and llama.cpp report the time of the answer as `created`, not the model's


async def _sleep(seconds: float) -> None:
    """The backoff wait; a module-level function so tests can replace it with a no-op."""
    await asyncio.sleep(seconds)


class _Retryable(Exception):
    """A failure worth another attempt (overload, server error, timeout, truncated body)."""


class _HTTPError(Exception):
    """A 4xx answer other than 429: retrying the same request cannot help."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _one_line(text: str, limit: int = 200, secret: str | None = None) -> str:
    """Server messages may be multi-line HTML or JSON; a UserError must stay one short line.

    ``secret`` (the API key) is redacted before cutting, so no prefix of it survives: servers echo it in 401 bodies.
    """
    text = str(text)
    if secret:
        text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(response: httpx.Response, secret: str | None = None) -> str:
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text or response.reason_phrase, secret=secret)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return _one_line(err.get("message") or err.get("detail") or json.dumps(err), secret=secret)
        return _one_line(str(err), secret=secret)
    return _one_line(str(body), secret=secret)


def _refused(error: BaseException | None) -> bool:
    """Whether a connection error comes from a refused connection (nothing listens), through causes and groups."""
    while error is not None:
        if isinstance(error, ConnectionRefusedError):
            return True
        if isinstance(error, BaseExceptionGroup):
            return any(_refused(e) for e in error.exceptions)
        error = error.__cause__ or error.__context__
    return False


def _answer_time(response: httpx.Response) -> float:
    """When the server answered: its Date header where it sends one (its own clock), else our clock."""
    try:
        return parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, or in a helper thread when the caller already runs an event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def parse_option(text: str, codes: Sequence[str]) -> str | None:
    """The option code a free-text answer starts with, or None.

    The longest code wins ("10" over "1") and a code must not run on into a letter or digit, so "10" is not read
    as "1" when only 1-5 are options, nor "Agree" as "A".
    """
    if not codes:
        return None
    alts = "|".join(re.escape(c) for c in sorted(set(codes), key=len, reverse=True))
    m = re.match(rf"(?:{alts})(?![A-Za-z0-9])", text.lstrip(LEADING_JUNK))
    return m.group(0) if m else None


@dataclass(kw_only=True)
class OpenAIEngine(Engine):
    """Chat completions from ``{base_url}/chat/completions``; ``base_url`` usually ends in ``/v1``.

    The API key is read from the environment variable ``api_key_env``; without it no Authorization header is
    sent (local servers need none). ``transport`` lets tests fake the server.

    The cache identity holds every setting that changes answers and what ``{base_url}/models`` says of the model
    (asked once per instance). ``revision`` is yours to name the weights: set it when the server serves new weights
    under the same name (a retrained LoRA), which it may not report.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 6
    backoff: float = 1.0
    top_logprobs: int = 20
    samples_fallback: int = 20
    max_n: int = 8  # completions asked per request: llama-server refuses n > 8 (HTTP 400); more are asked in turn
    chat_template_from: str | None = None  # a tokenizer (folder, hub id, 'smollm2') to render chats for /completions
    revision: str | None = None  # set it when the server serves new weights under the same name
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False, compare=False)
    # how many scored items each path took (logprobs / sampling): top-k log-probs miss an option on many prompts
    option_methods: Counter[str] = field(default_factory=Counter, init=False, repr=False, compare=False)
    _logprobs_rejected: bool = field(default=False, init=False, repr=False, compare=False)
    _tokenizer: Any = field(default=None, init=False, repr=False, compare=False)
    _served: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.max_n < 1:
            raise ValueError("max_n must be >= 1")

    def identity(self) -> dict[str, Any]:
        """The model, what the server says of it, and every setting that changes scores or samples."""
        if self._served is None:
            self._served = _run_sync(self._served_model())
        return {
            "engine": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "revision": self.revision,
            "served": self._served,
            "top_logprobs": self.top_logprobs,
            "samples_fallback": self.samples_fallback,
            "max_n": self.max_n,
            "chat_template_from": self.chat_template_from,
        }

    async def _served_model(self) -> dict[str, Any]:
        """The stable fields of the model's entry in ``{base_url}/models``, or {} when the server does not say.

        Best effort: a server without the endpoint still works (a refused connection is logged here and reported
        by the first real call). A ``created`` equal to the time of the answer (vLLM, llama.cpp) is left out, else
        every new instance would miss the cache.
        """
        url = f"{self.base_url}/models"
        reason = "the model is not listed"
        try:
            async with self._client() as client:
                response = await client.get(url)
            response.raise_for_status()
            entries = response.json()["data"]
            entry = next((m for m in entries if isinstance(m, dict) and m.get("id") == self.model), None)
        except (httpx.HTTPError, ValueError, LookupError, TypeError) as e:  # no endpoint, or not the usual shape
            entry, reason = None, f"{type(e).__name__}: {_one_line(str(e), 120, self._api_key())}"
        if entry is None:
            log.warning(
                "no description of %r from %s (%s): set revision when the server serves new weights under this name",
                self.model,
                url,
                reason,
            )
            return {}
        served = {k: entry[k] for k in SERVED_FIELDS if k in entry}
        created = served.get("created")
        if isinstance(created, int | float) and abs(created - _answer_time(response)) <= ANSWER_TIME_SLACK:
            del served["created"]
        return served

    # -- transport ---------------------------------------------------------------------------------
    def _api_key(self) -> str | None:
        return os.environ.get(self.api_key_env)

    def _client(self) -> httpx.AsyncClient:
        headers = {"Content-Type": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        kwargs: dict[str, Any] = {
            "headers": headers,
            "timeout": self.timeout,
            "limits": httpx.Limits(max_connections=self.concurrency),
        }
        if self.transport is not None:
            kwargs["transport"] = self.transport
        return httpx.AsyncClient(**kwargs)

    def _run_all(self, make: Any, items: Sequence[Any]) -> list[Any]:
        """Run ``make(client, sem, item)`` for every item concurrently and return results in order."""

        async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, index: int, item: Any) -> Any:
            result = await make(client, sem, item)
            self._item_done(index, result)  # committed now: a kill before the others return does not lose it
            return result

        async def main() -> list[Any]:
            sem = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:
                async with asyncio.TaskGroup() as tg:
                    tasks = [tg.create_task(one(client, sem, i, item)) for i, item in enumerate(items)]
            return [t.result() for t in tasks]

        try:
            return _run_sync(main())
        except BaseExceptionGroup as group:  # TaskGroup wraps failures; callers expect the plain error
            errors = _leaves(group)
            raise next((e for e in errors if isinstance(e, UserError)), errors[0]) from None

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Exponential backoff with jitter (so concurrent requests do not retry in lockstep), or Retry-After."""
        delay = self.backoff * (2**attempt) * random.uniform(0.5, 1.5)
        if response is not None:
            try:
                delay = max(delay, float(response.headers.get("retry-after", 0)))
            except ValueError:
                pass
        return min(delay, MAX_BACKOFF)

    async def _post(
        self,
        client: httpx.AsyncClient,
        sem: asyncio.Semaphore,
        payload: dict[str, Any],
        *,
        pass_400: bool = False,
        path: str = "/chat/completions",
    ) -> dict:
        """POST one completion request, retrying transient failures; the parsed body has a non-empty ``choices``.

        ``pass_400`` re-raises an HTTP 400 as :class:`_HTTPError` so the caller can drop an unsupported parameter.
        """
        url = f"{self.base_url}{path}"
        last = "no attempt made"
        unreachable = False
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                async with sem:
                    response = await client.post(url, json=payload)
                return self._check(response)
            except httpx.TimeoutException as e:
                last, unreachable = f"timed out after {self.timeout:g}s ({type(e).__name__})", False
            except httpx.ConnectError as e:
                last, unreachable = f"{type(e).__name__}: {_one_line(str(e)) or 'connection failed'}", True
                if _refused(e) and attempt >= 1:  # nothing listens: one more try (a server just restarting), no more
                    break
            except httpx.TransportError as e:
                last, unreachable = f"{type(e).__name__}: {_one_line(str(e)) or 'connection dropped'}", False
            except _Retryable as e:
                last, unreachable = str(e), False
            except _HTTPError as e:
                if pass_400 and e.status == 400:
                    raise
                raise self._http_user_error(e) from None
            if attempt < self.max_retries:
                log.debug("retrying %s (attempt %d): %s", url, attempt + 1, last)
                await _sleep(self._delay(attempt, response))
        attempts = attempt + 1
        if unreachable:
            raise UserError(
                f"cannot reach server at {self.base_url}: {last} (after {attempts} attempts); "
                "start the server or fix base_url"
            )
        raise UserError(
            f"no valid answer from server at {self.base_url} after {attempts} attempts (last error: {last}); "
            f"check that the server is running at {self.base_url}, or raise timeout/max_retries"
        )

    def _check(self, response: httpx.Response) -> dict:
        status = response.status_code
        key = self._api_key()
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {_server_message(response, key)}")
        if status >= 400:
            raise _HTTPError(status, _server_message(response, key))
        try:
            body = response.json()
        except ValueError as e:
            raise _Retryable(f"malformed JSON body ({_one_line(str(e), 80)})") from None
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
            raise _Retryable(f"body without choices: {_one_line(json.dumps(body), 120, key)}")
        usage = body.get("usage") or {}
        if isinstance(usage, dict):
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
        return body

    def _http_user_error(self, e: _HTTPError) -> UserError:
        where = f"server at {self.base_url} answered HTTP {e.status} ({_one_line(e.message, secret=self._api_key())})"
        if e.status in (401, 403):
            state = "is not set" if not self._api_key() else "holds a key the server refused"
            return UserError(f"{where}; the environment variable {self.api_key_env} {state}: set it to a valid key")
        if e.status == 404:
            return UserError(f"{where}; check base_url (it should end in /v1) and the model name {self.model!r}")
        return UserError(f"{where}; check the model name {self.model!r} and the request parameters")

    # -- generation --------------------------------------------------------------------------------
    async def _complete_n(
        self,
        client: httpx.AsyncClient,
        sem: asyncio.Semaphore,
        messages: Messages,
        n: int,
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
        repetition_penalty: float = 1.0,
    ) -> list[str]:
        """``n`` replies to one prompt, asking again while the server returns fewer (some ignore ``n``).

        Each follow-up request shifts the seed, else a server that honours ``seed`` but not ``n`` would repeat
        the same sample. ``repetition_penalty`` is not an OpenAI parameter but vLLM's extension (other servers may
        ignore or refuse it): sent only when it is not 1.0, so the plain API is asked what it knows.
        """
        out: list[str] = []
        round_ = 0
        while len(out) < n:
            payload = {
                "model": self.model,
                "messages": messages,
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
                "n": min(n - len(out), self.max_n),
                "seed": seed + round_,
            }
            if repetition_penalty != 1.0:
                payload["repetition_penalty"] = repetition_penalty
            body = await self._post(client, sem, payload)
            for choice in body["choices"][: n - len(out)]:
                message = choice.get("message") if isinstance(choice, dict) else None
                content = message.get("content") if isinstance(message, dict) else None
                out.append((content or "").strip())
            round_ += 1
        return out

    def _generate(self, prompts: Sequence[Messages], params: GenParams) -> list[list[str]]:
        async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, messages: Messages) -> list[str]:
            return await self._complete_n(
                client,
                sem,
                messages,
                params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
                repetition_penalty=params.repetition_penalty,
            )

        return self._run_all(one, prompts)

    # -- completion scoring ------------------------------------------------------------------------
    def _render_text(self, messages: Messages) -> str:
        """The chat rendered as the model sees it, up to where the assistant's reply starts."""
        if self._tokenizer is None:
            if not self.chat_template_from:
                raise UserError(
                    "engine openai scores completions through /v1/completions with echo and logprobs: set "
                    "chat_template_from to the served model's tokenizer (a folder, a hub id or 'smollm2')"
                )
            from transformers import AutoTokenizer

            from culturealign.llm.models import resolve_model

            self._tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.chat_template_from))
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _score_completions(self, prompts: Sequence[Messages], completions: Sequence[str]) -> list[float]:
        """log p(completion | prompt) from the prompt log-probabilities a server echoes (vLLM, llama-cpp-python)."""
        texts = [(self._render_text(p), c) for p, c in zip(prompts, completions, strict=True)]

        async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, item: tuple[str, str]) -> float:
            prefix, completion = item
            payload = {
                "model": self.model,
                "prompt": prefix + completion,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 1,
            }
            body = await self._post(client, sem, payload, path="/completions")
            choice = body["choices"][0]
            lp = choice.get("logprobs") or {}
            tokens, values = lp.get("tokens"), lp.get("token_logprobs")
            if not tokens or not values or len(tokens) != len(values):
                raise UserError(
                    f"server at {self.base_url} returned no prompt log-probabilities (echo + logprobs on "
                    "/v1/completions): use a server that does (vLLM, llama-cpp-python) or the local engine"
                )
            text = choice.get("text") or ""
            generated = (body.get("usage") or {}).get("completion_tokens")
            if not isinstance(generated, int):  # no usage: tell the generated tail by its text
                generated = _tail_tokens(tokens, len(text) - len(payload["prompt"]) if text else 0)
            return _completion_logprob(tokens[: len(tokens) - generated], values, len(completion))

        return self._run_all(one, texts)

    # -- option scoring ----------------------------------------------------------------------------
    def _score_options(self, prompts: Sequence[Messages], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        scores = self._run_all(self._score_one, list(zip(prompts, options, strict=True)))
        self.option_methods.update(s.method for s in scores)
        return scores

    async def _score_one(
        self, client: httpx.AsyncClient, sem: asyncio.Semaphore, item: tuple[Messages, Sequence[str]]
    ) -> OptionScores:
        messages, options = item
        codes = list(dict.fromkeys(options))
        if _logprobs_usable(codes) and not self._logprobs_rejected:
            scores = await self._from_logprobs(client, sem, messages, codes)
            if scores is not None:
                return scores
        return await self._from_samples(client, sem, messages, codes)

    async def _from_logprobs(
        self, client: httpx.AsyncClient, sem: asyncio.Semaphore, messages: Messages, codes: list[str]
    ) -> OptionScores | None:
        """Scores from the first token's top logprobs, or None when they cannot be trusted."""
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        try:
            body = await self._post(client, sem, payload, pass_400=True)
        except _HTTPError as e:  # servers without logprobs support reject the parameter: sample instead
            if not self._logprobs_rejected:
                log.warning("server at %s rejected logprobs (%s); scoring options by sampling", self.base_url, e)
            self._logprobs_rejected = True
            return None
        top = _first_top_logprobs(body)
        if top is None:
            return None
        raw = dict.fromkeys(codes, 0.0)
        found: set[str] = set()
        for entry in top:
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                continue
            token = entry["token"].strip()
            if token in raw and isinstance(entry.get("logprob"), int | float):
                raw[token] += math.exp(entry["logprob"])
                found.add(token)
        mass = sum(raw.values())
        if len(found) < len(codes) or mass <= 0:
            return None
        return OptionScores({c: p / mass for c, p in raw.items()}, min(mass, 1.0), "logprobs")

    async def _from_samples(
        self, client: httpx.AsyncClient, sem: asyncio.Semaphore, messages: Messages, codes: list[str]
    ) -> OptionScores:
        """Scores from the share of sampled short answers that start with each code."""
        if not codes:
            return OptionScores({}, 0.0, "sampling")
        n = self.samples_fallback
        answers = await self._complete_n(client, sem, messages, n, temperature=1.0, top_p=1.0, max_tokens=8, seed=0)
        counts = Counter(c for c in (parse_option(a, codes) for a in answers) if c is not None)
        parsed = sum(counts.values())
        if parsed == 0:
            return OptionScores({c: 1.0 / len(codes) for c in codes}, 0.0, "sampling")
        return OptionScores({c: counts[c] / parsed for c in codes}, parsed / len(answers), "sampling")


def _logprobs_usable(codes: Sequence[str]) -> bool:
    """Whether first-token logprobs can tell the codes apart: each one token-like, none a prefix of another."""
    if not codes or not all(TOKEN_LIKE.fullmatch(c) for c in codes):
        return False
    return not any(a != b and b.startswith(a) for a in codes for b in codes)


def _tail_tokens(tokens: Sequence[str | None], chars: int) -> int:
    """How many tokens at the end of ``tokens`` spell the last ``chars`` characters."""
    n = seen = 0
    while n < len(tokens) and seen < chars:
        n += 1
        seen += len(tokens[-n] or "")
    return n


def _completion_logprob(prompt_tokens: Sequence[str | None], values: Sequence[float | None], chars: int) -> float:
    """Sum of the log-probs of the echoed prompt's last tokens that spell its last ``chars`` characters.

    Counted back from the end by the tokens' text, not by ``text_offset``: servers disagree on offsets (vLLM counts
    the prompt as sent; llama-cpp-python leaves special tokens such as ``<|im_start|>`` out of them, so offsets
    compared with the rendered prompt's length select nothing and every completion scored 0).
    """
    n = _tail_tokens(prompt_tokens, chars)
    return float(sum(v for v in values[len(prompt_tokens) - n : len(prompt_tokens)] if v is not None))


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


def _first_top_logprobs(body: dict) -> list | None:
    """``choices[0].logprobs.content[0].top_logprobs``, or None when the server sent no logprobs."""
    try:
        top = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    return top if isinstance(top, list) and top else None
