"""A scripted engine for tests of parsers and control flow: replies come from a list or a function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from culturealign.llm.base import Engine, GenParams, OptionScores
from culturealign.records import Messages


@dataclass
class ScriptedEngine(Engine):
    """``outputs`` are returned in turn (cycled); ``fn(messages) -> str`` overrides them.

    Option scores come from ``option_fn(messages, options) -> dict`` or are uniform. ``seen`` records every
    prompt that reached the engine (cache misses only), so tests can count model calls.
    """

    outputs: list[str] = field(default_factory=list)
    fn: Callable[[Messages], str] | None = None
    option_fn: Callable[[Messages, Sequence[str]], dict[str, float]] | None = None
    name: str = "scripted"
    seen: list[Messages] = field(default_factory=list)
    _i: int = 0

    def identity(self) -> dict[str, Any]:
        return {"engine": "scripted", "name": self.name}

    def _next(self, messages: Messages) -> str:
        self.seen.append(messages)
        if self.fn is not None:
            return self.fn(messages)
        if not self.outputs:
            raise ValueError("ScriptedEngine needs outputs or fn")
        out = self.outputs[self._i % len(self.outputs)]
        self._i += 1
        return out

    def _generate(self, prompts: Sequence[Messages], params: GenParams) -> list[list[str]]:
        return [[self._next(p) for _ in range(params.n)] for p in prompts]

    def _score_options(self, prompts: Sequence[Messages], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        out = []
        for p, opts in zip(prompts, options, strict=True):
            self.seen.append(p)
            raw = self.option_fn(p, opts) if self.option_fn else {o: 1.0 for o in opts}
            total = sum(raw.values())
            out.append(OptionScores({o: raw.get(o, 0.0) / total for o in opts}, 1.0, "scripted"))
        return out

    def _score_completions(self, prompts: Sequence[Messages], completions: Sequence[str]) -> list[float]:
        self.seen.extend(prompts)
        return [-float(len(c)) for c in completions]
