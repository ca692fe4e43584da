"""One engine spec and one factory: every place that needs a model (CLI options, a recipe's engine section, the
student of a recipe, a notebook) describes it as an :class:`EngineSpec` and calls :meth:`EngineSpec.build`.

The spec checks itself when it is made, naming the option or YAML key (``where``) and the fix, so a bad engine
section fails before any step runs or any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from culturealign.errors import UserError
from culturealign.llm import Engine, make_engine
from culturealign.llm.cache import CallCache

ENGINES = ("local", "openai", "llamacpp")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class EngineSpec:
    """Where answers come from. ``adapter`` (a PEFT folder) and ``dtype`` apply to the local engine; ``base_url``,
    ``chat_template_from`` (the served model's tokenizer, to score completions) and ``revision`` (a name for the
    weights behind a served model: change it when the server serves new weights under the same name; it is part of
    the cache key) to an OpenAI-compatible server; ``llamacpp`` runs a ``.gguf`` file as it is."""

    engine: str = "local"
    model: str = "smollm2"
    adapter: str | None = None
    base_url: str | None = None
    dtype: str = "float32"
    batch_size: int = 16
    chat_template_from: str | None = None
    revision: str | None = None
    where: str = field(default="", repr=False, compare=False)  # the YAML section the spec came from ('' = options)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UserError(f"unknown engine {self.engine!r}{self._at('engine')}: use {', '.join(ENGINES)}")
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise UserError(f"{self._key('batch_size')} must be a whole number >= 1, not {self.batch_size!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"{self._key('dtype')} must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.engine == "openai" and not self.base_url:
            raise UserError(
                f"engine 'openai'{self._at('engine')} needs {self._key('base_url')} (e.g. http://localhost:8000/v1)"
            )
        if self.adapter and self.engine == "openai":
            raise UserError(
                f"{self._key('adapter')} applies to the local engine; for a server, serve the adapter there "
                "(e.g. vllm serve --lora-modules) and pass its name as the model"
            )
        if self.adapter and self.engine == "llamacpp":
            raise UserError(
                f"{self._key('adapter')} applies to the local engine; engine 'llamacpp' runs a GGUF file as it is"
            )

    def _key(self, name: str) -> str:
        return f"config key '{self.where}.{name}'" if self.where else f"--{name.replace('_', '-')}"

    def _at(self, name: str) -> str:
        return f" ({self._key(name)})" if self.where else ""

    def settings(self) -> dict[str, Any]:
        """The spec as a config records it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "where"}

    @classmethod
    def from_section(cls, section: dict[str, Any], where: str, **extra: Any) -> EngineSpec:
        """A spec from a recipe's engine section (``generator``, ``judge``, ``student``...): its known keys."""
        known = {f.name for f in fields(cls)} - {"where"}
        return cls(**{k: v for k, v in {**section, **extra}.items() if k in known}, where=where)

    def build(self, cache: CallCache | None = None) -> Engine:
        """The engine (nothing is loaded yet: models load on first use)."""
        if self.engine == "openai":
            return make_engine(
                "openai",
                cache,
                base_url=self.base_url,
                model=self.model,
                batch_size=self.batch_size,
                chat_template_from=self.chat_template_from,
                revision=self.revision,
            )
        if self.engine == "llamacpp":
            return make_engine("llamacpp", cache, model=self.model, batch_size=self.batch_size)
        return make_engine(
            "local", cache, model=self.model, adapter=self.adapter, dtype=self.dtype, batch_size=self.batch_size
        )
