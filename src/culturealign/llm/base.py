"""The one engine contract: chat generation, option scoring and completion scoring, all cached.

Subclasses implement ``_generate``, ``_score_options`` (and optionally ``_score_completions``) over the
cache misses only; the public methods look up the cache, call the subclass for what is missing, in chunks,
and commit each chunk as it returns. Engines whose items finish one by one (a server answering concurrent
requests) call ``_item_done`` as each returns, so a killed run never pays for a finished call twice.
Engines know nothing of cultures or surveys: callers build prompts.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from culturealign.errors import UserError
from culturealign.llm.cache import CallCache, cache_key
from culturealign.records import Messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters of a generation call; ``temperature=0`` means greedy.

    ``repetition_penalty`` is the CTRL penalty (Keskar et al., 2019) of Hugging Face's ``generate`` and llama.cpp's
    ``repeat_penalty``: 1.0 is none.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    n: int = 1
    seed: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 1 or self.n < 1:
            raise ValueError("max_tokens and n must be >= 1")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0 (1.0 is none)")

    def key(self) -> dict[str, Any]:
        """The parameters as a cache key holds them. A penalty of 1.0 (none) is left out, so every call cached
        before the field existed keeps its key; any other value is a different call."""
        out = asdict(self)
        if self.repetition_penalty == 1.0:
            del out["repetition_penalty"]
        return out


@dataclass
class OptionScores:
    """The model's distribution over answer option codes of one prompt.

    ``probs`` is renormalized over the options; ``mass`` is the raw probability the model put on them
    before renormalizing (how much it "wanted" to answer with a code at all); ``method`` says how the
    scores were obtained (``logits``, ``logprobs`` or ``sampling``).
    """

    probs: dict[str, float]
    mass: float
    method: str

    @property
    def choice(self) -> str:
        return max(self.probs, key=lambda c: self.probs[c])


@dataclass
class EngineStats:
    calls: int = 0  # prompts sent to the model (cache misses)
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_unreadable: int = 0  # cached entries of the wrong shape or not JSON: asked again as misses


ProgressFn = Callable[[int], None]


@dataclass
class Engine(ABC):
    """Base class of every engine. ``cache`` may be None (no caching).

    ``batch_size`` is what the model sees at once. Generation hands the subclass one batch per call (slow
    calls: committed to the cache batch by batch); scoring hands it ``chunk_size`` prompts (default 16 batches)
    so that it can sort them by shared prefix and length before batching, which cuts padding.
    """

    cache: CallCache | None = None
    batch_size: int = 16
    chunk_size: int | None = None
    stats: EngineStats = field(default_factory=EngineStats)
    _billed: EngineStats = field(default_factory=EngineStats, init=False, repr=False, compare=False)
    _commit_item: Callable[[int, Any], None] | None = field(default=None, init=False, repr=False, compare=False)

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What makes this engine's answers what they are (model, adapter, dtype): part of every cache key."""

    @abstractmethod
    def _generate(self, prompts: Sequence[Messages], params: GenParams) -> list[list[str]]: ...

    @abstractmethod
    def _score_options(self, prompts: Sequence[Messages], options: Sequence[Sequence[str]]) -> list[OptionScores]: ...

    def _score_completions(self, prompts: Sequence[Messages], completions: Sequence[str]) -> list[float]:
        raise UserError(
            f"engine {type(self).__name__} cannot score completions (log-probabilities of a given reply): "
            "use the local engine for this part (e.g. generator.engine=local)"
        )

    def unload(self) -> None:
        """Free what the engine holds in memory (a loaded model); the next call loads it again. Nothing by default."""
        return None

    def unbilled(self) -> dict[str, int]:
        """The stats gathered since the last call (each call, token and hit is billed to a ledger exactly once)."""
        now, then = asdict(self.stats), asdict(self._billed)
        self._billed = EngineStats(**now)
        return {k: now[k] - then[k] for k in now}

    def _item_done(self, index: int, result: Any) -> None:
        """Commit item ``index`` of the chunk being computed now, before the rest of the chunk returns."""
        if self._commit_item is not None:
            self._commit_item(index, result)

    # -- public, cached API -------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[Messages], params: GenParams | None = None, progress: ProgressFn | None = None
    ) -> list[list[str]]:
        """``params.n`` completions per chat prompt (each a list of ``{"role", "content"}`` messages)."""
        params = params or GenParams()
        ident = self.identity()
        keys = [cache_key(ident, "generate", p, params.key()) for p in prompts]

        def valid(v: Any) -> bool:
            return isinstance(v, list) and len(v) == params.n and all(isinstance(t, str) for t in v)

        return self._cached(
            keys, list(prompts), lambda chunk: self._generate(chunk, params), progress, self.batch_size, valid=valid
        )

    def score_options(
        self, prompts: Sequence[Messages], options: Sequence[Sequence[str]], progress: ProgressFn | None = None
    ) -> list[OptionScores]:
        """For each prompt, the probability of each option code as the assistant's whole reply."""
        if len(prompts) != len(options):
            raise ValueError("score_options needs one option list per prompt")
        ident = self.identity()
        keys = [cache_key(ident, "options", p, list(o)) for p, o in zip(prompts, options, strict=True)]
        items = list(zip(prompts, options, strict=True))
        raw = self._cached(
            keys,
            items,
            lambda chunk: self._score_options([c[0] for c in chunk], [c[1] for c in chunk]),
            progress,
            encode=asdict,
            valid=_valid_scores,
        )
        return [OptionScores(**r) for r in raw]

    def score_completions(
        self, prompts: Sequence[Messages], completions: Sequence[str], progress: ProgressFn | None = None
    ) -> list[float]:
        """log p(completion | prompt) as the assistant's reply, summed over its tokens."""
        ident = self.identity()
        keys = [cache_key(ident, "completion", p, c) for p, c in zip(prompts, completions, strict=True)]
        items = list(zip(prompts, completions, strict=True))
        return self._cached(
            keys,
            items,
            lambda chunk: self._score_completions([c[0] for c in chunk], [c[1] for c in chunk]),
            progress,
            valid=lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        )

    def _cached(
        self,
        keys: list[str],
        items: list,
        compute: Callable[[list], list],
        progress: ProgressFn | None,
        chunk: int | None = None,
        encode: Callable[[Any], Any] | None = None,
        valid: Callable[[Any], bool] = lambda v: True,
    ):
        found: dict[str, Any] = {}
        if self.cache is not None:
            before = self.cache.unreadable
            found = self.cache.get_many(list(dict.fromkeys(keys)))
            bad = [k for k, v in found.items() if not valid(v)]
            for k in bad:
                del found[k]
            self.stats.cache_unreadable += len(bad) + self.cache.unreadable - before
        results: dict[str, Any] = dict(found)
        counts = Counter(keys)  # a key asked n times counts n times in hits and progress
        hits = sum(counts[k] for k in found)
        self.stats.cache_hits += hits
        if progress and hits:
            progress(hits)
        todo: dict[str, Any] = {}
        for k, item in zip(keys, items, strict=True):
            if k not in results and k not in todo:
                todo[k] = item
        todo_keys = list(todo)
        chunk = chunk or self.chunk_size or 16 * self.batch_size
        encode = encode or (lambda r: r)
        for i in range(0, len(todo_keys), chunk):
            chunk_keys = todo_keys[i : i + chunk]
            committed: set[str] = set()

            def commit(index: int, result: Any, chunk_keys: list[str] = chunk_keys, committed: set = committed):
                if self.cache is not None and 0 <= index < len(chunk_keys):
                    self.cache.put_many({chunk_keys[index]: encode(result)})
                    committed.add(chunk_keys[index])

            self._commit_item = commit
            try:
                out = compute([todo[k] for k in chunk_keys])
            finally:
                self._commit_item = None
            self.stats.calls += len(chunk_keys)
            new = {k: encode(r) for k, r in zip(chunk_keys, out, strict=True)}
            if self.cache is not None and len(committed) < len(new):
                self.cache.put_many({k: v for k, v in new.items() if k not in committed})
            results.update(new)
            if self.cache is not None:  # the calls are paid: counted in the run's cost.json now, not at the end
                self.cache.bill(self.unbilled())
            if progress:
                progress(sum(counts[k] for k in chunk_keys))
        return [results[k] for k in keys]


def _valid_scores(v: Any) -> bool:
    """A cached option-scoring entry of the shape ``OptionScores`` is built from."""
    return (
        isinstance(v, dict)
        and set(v) == {"probs", "mass", "method"}
        and isinstance(v["probs"], dict)
        and all(isinstance(p, int | float) for p in v["probs"].values())
        and isinstance(v["mass"], int | float)
    )
