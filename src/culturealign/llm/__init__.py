"""LLM engines behind one contract, and the call cache."""

from __future__ import annotations

from typing import Any

from culturealign.llm.base import Engine, GenParams, OptionScores
from culturealign.llm.cache import CallCache

__all__ = ["CallCache", "Engine", "GenParams", "OptionScores", "make_engine"]


def make_engine(kind: str = "local", cache: CallCache | None = None, **kwargs: Any) -> Engine:
    """Build an engine by name (``local``, ``openai``, ``llamacpp``, ``scripted``), importing its module lazily."""
    from culturealign.errors import UserError

    if kind == "local":
        from culturealign.llm.local import LocalEngine as cls
    elif kind == "openai":
        from culturealign.llm.openai import OpenAIEngine as cls
    elif kind == "llamacpp":
        from culturealign.llm.llamacpp import LlamaCppEngine as cls
    elif kind == "scripted":
        from culturealign.llm.scripted import ScriptedEngine as cls
    else:
        raise UserError(f"unknown engine {kind!r}: use local, openai, llamacpp or scripted")
    size = kwargs.get("batch_size", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UserError(f"batch size must be a whole number >= 1, not {size!r} (--batch-size, or batch_size in YAML)")
    try:
        return cls(cache=cache, **kwargs)
    except TypeError as e:
        raise UserError(f"bad settings for engine {kind!r}: {e}") from e
