"""A GGUF model in this process through llama.cpp (``llama-cpp-python``): the CPU peer of the local engine.

llama.cpp runs the quantized weights as they are (no dequantizing to fp32), so it is the engine a CPU user picks
for speed. In-process, the model's full next-token distribution is at hand, so option codes are scored exactly
over a token trie like the local engine (no top-k log-probs that can miss an option, so no fallback is needed),
and a completion is scored from the log-probs of its own tokens. Chats are rendered with the GGUF's own chat
template and tokenized once, so generation and scoring see the same tokens. The KV cache is float32 because that
makes the logits of a prompt the same whatever part of it was reused from the previous call's cache.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams, OptionScores
from culturealign.llm.identity import file_digest
from culturealign.llm.models import ALIASES, alias_gguf
from culturealign.llm.trie import common_prefix, probe_paths, trie_probs
from culturealign.records import Messages

log = logging.getLogger(__name__)

INSTALL_HINT = "Install llama-cpp-python to use engine 'llamacpp' (pip install 'culturealign[llamacpp]')"


def gguf_path(model: str) -> Path:
    """The GGUF file behind ``model``: the ``smollm2`` alias (the embedded file) or a path to a ``.gguf`` file."""
    if model in ALIASES:
        return alias_gguf(*ALIASES[model])
    path = Path(model).expanduser()
    if path.suffix != ".gguf":
        raise UserError(f"engine 'llamacpp' needs a .gguf file or 'smollm2', got {model!r}")
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    return path


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


@dataclass(kw_only=True)
class LlamaCppEngine(Engine):
    """A ``llama_cpp.Llama`` built lazily on first use; one sequence at a time (llama.cpp's Python API has no batch).

    ``n_threads`` None lets llama.cpp choose (half the cores); ``n_ctx`` bounds prompt plus reply in tokens.
    """

    model: str = "smollm2"
    n_ctx: int = 2048
    n_threads: int | None = None
    _path: Path = field(init=False, repr=False)
    _llm: Any = field(default=None, init=False, repr=False, compare=False)
    _format: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if importlib.util.find_spec("llama_cpp") is None:
            raise UserError(INSTALL_HINT)
        if self.n_ctx < 64:
            raise ValueError("n_ctx must be >= 64")
        self._path = gguf_path(self.model)

    def identity(self) -> dict[str, Any]:
        """The GGUF file's digest (computed once per file, remembered): same-size files never share answers."""
        return {"engine": "llamacpp", "model": file_digest(self._path)}

    # -- loading ------------------------------------------------------------------------------------
    def load(self) -> Any:
        """The ``Llama`` object; ``logits_all`` keeps every position's logits, which completion scoring needs."""
        if self._llm is not None:
            return self._llm
        from llama_cpp import GGML_TYPE_F32, Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:  # a float32 KV cache: with the default float16 one, a prompt whose last token is evaluated alone (the
            # rest reused from the previous call's cache) gets other logits (up to 0.8 nats) than one evaluated at once
            llm = Llama(
                model_path=str(self._path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                logits_all=True,
                type_k=GGML_TYPE_F32,
                type_v=GGML_TYPE_F32,
                verbose=False,
            )
        except ValueError as e:  # llama-cpp-python reports an unreadable file as ValueError
            raise UserError(f"cannot load {self._path} with llama.cpp: {e}") from e
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise UserError(f"{self._path.name} has no chat template (tokenizer.chat_template): use a chat model")

        def token_text(token_id: int) -> str:
            return llm.detokenize([token_id], special=True).decode("utf-8", errors="replace") if token_id >= 0 else ""

        self._format = Jinja2ChatFormatter(template, token_text(llm.token_eos()), token_text(llm.token_bos()))
        self._llm = llm
        return llm

    def unload(self) -> None:
        """Free the model now (llama-cpp-python's own finalizer fails when it runs at interpreter exit)."""
        if self._llm is not None:
            self._llm.close()
        self._llm = self._format = None

    def render(self, messages: Messages) -> list[int]:
        """Token ids of a chat prompt ending where the assistant's reply starts (no BOS: the template has it)."""
        llm = self.load()
        text = self._format(messages=list(messages)).prompt
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _check_fits(self, ids: Sequence[int], extra: int) -> None:
        if len(ids) + extra > self.n_ctx:
            raise UserError(
                f"prompt of {len(ids)} tokens plus {extra} more does not fit n_ctx={self.n_ctx}: raise n_ctx"
            )

    def _logits_after(self, ids: Sequence[int]) -> np.ndarray:
        """Logits of every position of ``ids`` (row i predicts token i+1), reusing the longest evaluated prefix."""
        llm = self.load()
        keep = min(common_prefix(llm.input_ids[: llm.n_tokens].tolist(), list(ids)), len(ids) - 1)
        llm.n_tokens = keep  # eval() drops the KV cells past n_tokens, so the kept prefix is reused as is
        llm.eval(list(ids[keep:]))
        self.stats.prompt_tokens += len(ids) - keep
        return llm.scores[: len(ids)]

    # -- generation ---------------------------------------------------------------------------------
    def _generate(self, prompts: Sequence[Messages], params: GenParams) -> list[list[str]]:
        llm = self.load()
        out = []
        for messages in prompts:
            ids = self.render(messages)
            self._check_fits(ids, params.max_tokens)
            replies = []
            for k in range(params.n):  # one seed per sample, as the openai engine asks a server again
                result = llm.create_completion(
                    ids,
                    max_tokens=params.max_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    top_k=0,  # plain temperature / nucleus sampling, as the other engines: no top-k, min-p
                    min_p=0.0,
                    repeat_penalty=params.repetition_penalty,  # over llama.cpp's last 64 tokens, not the whole text
                    seed=params.seed + k,
                )
                replies.append(result["choices"][0]["text"].strip())
                usage = result.get("usage") or {}
                self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
            out.append(replies)
        return out

    # -- option scoring -----------------------------------------------------------------------------
    def _score_options(self, prompts: Sequence[Messages], options: Sequence[Sequence[str]]) -> list[OptionScores]:
        """Exact: each code's token path through the full next-token distributions (``method="logits"``)."""
        llm = self.load()
        out = []
        for messages, opts in zip(prompts, options, strict=True):
            ids = self.render(messages)
            code_ids = {c: tuple(llm.tokenize(str(c).encode("utf-8"), add_bos=False)) for c in opts}
            nodes: dict[tuple, np.ndarray] = {}
            for probe in probe_paths(code_ids):
                self._check_fits(ids, len(probe))
                rows = self._logits_after(ids + list(probe))
                for k in range(len(probe) + 1):  # the distribution after probe[:k]
                    nodes[probe[:k]] = _log_softmax(rows[len(ids) - 1 + k])
            out.append(OptionScores(*trie_probs(code_ids, nodes), "logits"))
        return out

    # -- completion scoring -------------------------------------------------------------------------
    def _score_completions(self, prompts: Sequence[Messages], completions: Sequence[str]) -> list[float]:
        """log p(completion | prompt): the prompt and the reply tokenized together, as the local engine does."""
        llm = self.load()
        out = []
        for messages, completion in zip(prompts, completions, strict=True):
            prompt = self.render(messages)
            text = llm.detokenize(prompt, special=True).decode("utf-8", errors="replace") + completion
            full = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            start = common_prefix(prompt, full)
            if start >= len(full):
                out.append(0.0)
                continue
            self._check_fits(full, 0)
            rows = self._logits_after(full)
            out.append(float(sum(_log_softmax(rows[t - 1])[full[t]] for t in range(start, len(full)))))
        return out
