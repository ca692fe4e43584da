"""LoRA supervised fine-tuning with TRL and PEFT, on chat samples, loss on the assistant reply only.

The recipe's YAML passes TRL's ``SFTConfig`` and PEFT's ``LoraConfig`` fields through unchanged; the defaults
below are the CultureSPA paper's (all linear layers, lr 1e-4, 1 epoch, cosine, warmup 0.1), with the two TRL
defaults that matter on CPU set on purpose (no gradient checkpointing, no bf16). The same function runs in
one process or under ``accelerate launch`` (see ``culturealign.train.__main__``); the adapter is written
atomically by the main process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.records import ChatSample

log = logging.getLogger(__name__)

LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "target_modules": "all-linear",
    "task_type": "CAUSAL_LM",
}
SFT_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "num_train_epochs": 1,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.1,  # a float < 1 is a ratio of the total steps
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_length": 512,
    "gradient_checkpointing": False,
    "bf16": False,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "seed": 0,
    "disable_tqdm": False,
    "dataloader_pin_memory": False,
}


@dataclass
class TrainResult:
    adapter: Path
    losses: list[float]
    steps: int
    world_size: int
    examples: int


def is_multi_turn(samples: Sequence[ChatSample]) -> bool:
    """True when some sample has more than one assistant turn to learn (dialogue views)."""
    return any(sum(m["role"] == "assistant" for m in s.messages) > 1 for s in samples)


def assistant_labels(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a chat and its labels: the ids of every assistant turn (its text and end-of-turn token),
    -100 elsewhere. Spans come from rendering the chat with the tokenizer's own template turn by turn, so any
    template whose rendering of a conversation's prefix is a prefix of the whole works (no ``{% generation %}``
    markers needed)."""
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        end = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (full.startswith(start) and full.startswith(end)):
            raise UserError(
                "the model's chat template does not render a conversation's turns as prefixes of the whole: "
                "multi-turn training needs such a template (set the tokenizer's chat_template)"
            )
        spans.append((len(start), len(end.rstrip())))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = [
        tok if any(a <= lo < b for a, b in spans) else -100
        for tok, (lo, _hi) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
    ]
    return list(enc["input_ids"]), labels


def to_dataset(samples: Sequence[ChatSample], tokenizer: Any | None = None):
    """Rows TRL trains on with the loss on the assistant's turns only.

    One reply to learn: prompt-completion conversational rows (TRL's completion-only loss). Several (dialogue
    views): with a ``tokenizer``, pre-tokenized rows with ``labels`` from :func:`assistant_labels` (TRL keeps a
    ``labels`` column as is); without one, ``messages`` rows (for the datasets copy written beside the JSONL).
    """
    from datasets import Dataset

    if not is_multi_turn(samples):
        return Dataset.from_list([{"prompt": s.messages[:-1], "completion": s.messages[-1:]} for s in samples])
    if tokenizer is None:
        return Dataset.from_list([{"messages": s.messages} for s in samples])
    rows = []
    for s in samples:
        ids, labels = assistant_labels(tokenizer, s.messages)
        rows.append({"input_ids": ids, "labels": labels})
    return Dataset.from_list(rows)


def write_training_data(samples: Sequence[ChatSample], folder: Path, name: str) -> Path:
    """Write ``<name>.jsonl`` (chat messages) and a Hugging Face ``datasets`` folder ``<name>.hf``."""
    from culturealign.runs.store import write_jsonl

    write_jsonl(folder / f"{name}.jsonl", ({"messages": s.messages, **s.meta} for s in samples))
    hf = folder / f"{name}.hf"
    tmp = folder / f".{name}.hf.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    to_dataset(samples).save_to_disk(str(tmp))
    shutil.rmtree(hf, ignore_errors=True)
    tmp.rename(hf)
    return folder / f"{name}.jsonl"


def read_training_data(path: Path) -> list[ChatSample]:
    """Chat samples from a JSONL of ``{"messages": [...], ...meta}`` lines (what :func:`write_training_data` writes).

    Every line is checked here, so that a bad file fails with its line number before a model is loaded, not with a
    traceback inside the trainer.
    """
    from culturealign.runs.store import read_jsonl

    try:
        rows = read_jsonl(Path(path))
    except OSError as e:
        raise UserError(f"cannot read training data {path}: {e.strerror or e}; pass a recipe's chat JSONL") from e
    except UnicodeDecodeError as e:
        raise UserError(f"training data {path} is not UTF-8 text ({e.reason}); re-save it as UTF-8") from e
    samples = []
    for n, row in enumerate(rows, 1):
        messages = row.get("messages") if isinstance(row, dict) else None
        ok = (
            isinstance(messages, list)
            and len(messages) >= 2
            and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            )
            and messages[-1]["role"] == "assistant"
        )
        if not ok:
            raise UserError(
                f'record {n} of {path} is not a training example: each line needs "messages", a list of at least '
                "two {role, content} objects of text ending with the assistant's reply"
            )
        samples.append(ChatSample(messages, {k: v for k, v in row.items() if k != "messages"}))
    return samples


def train_lora(
    model_path: str,
    samples: Sequence[ChatSample],
    out: str | Path,
    lora: dict[str, Any] | None = None,
    sft: dict[str, Any] | None = None,
    load_in_4bit: bool = False,
) -> TrainResult:
    """Train a LoRA adapter on ``samples`` and save it (PEFT format) to ``out``.

    ``load_in_4bit`` (QLoRA: NF4 base weights through bitsandbytes) needs a CUDA GPU; see :func:`qlora_available`.
    """
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if not samples:
        raise UserError("no training examples: the selection kept nothing (see the run's steps/*/stats.json)")
    out = Path(out)
    tmp_dir = out.with_name(f".{out.name}.work")
    try:
        lora_cfg = LoraConfig(**{**LORA_DEFAULTS, **(lora or {})})
        # Without use_cpu, processes started by `accelerate launch` on a machine with no GPU each train alone.
        device = {} if torch.cuda.is_available() else {"use_cpu": True}
        if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            device["ddp_backend"] = "gloo"
        sft_cfg = SFTConfig(output_dir=str(tmp_dir), **{**SFT_DEFAULTS, **device, **(sft or {})})
        sft_cfg.warmup_steps = warmup_steps(sft_cfg, len(samples), int(os.environ.get("WORLD_SIZE", "1")))
    except TypeError as e:
        raise UserError(f"bad training setting: {e}; see PEFT LoraConfig / TRL SFTConfig") from e
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if load_in_4bit:
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        if not qlora_available():
            raise UserError("4-bit training needs a CUDA GPU and bitsandbytes (pip install bitsandbytes)")
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=quant, device_map={"": 0})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=sft_cfg.gradient_checkpointing)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    trainer = _trainer_class(SFTTrainer)(
        model=model, args=sft_cfg, train_dataset=to_dataset(samples, tok), processing_class=tok, peft_config=lora_cfg
    )
    show_steps(trainer, f"training {out.name}")
    trainer.train()
    world = trainer.accelerator.num_processes  # the processes that really trained (args.world_size says 1 on CPU)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    staging = out.with_name(f".{out.name}.tmp")
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))  # every rank calls it; the Trainer writes from the main process only
    if trainer.is_world_process_zero():
        info = {"world_size": world, "steps": trainer.state.global_step, "examples": len(samples), "base": model_path}
        (staging / "train_info.json").write_text(json.dumps(info, indent=2))
        (staging / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=2))
        # the Trainer also saves its settings as training_args.bin, a pickle (torch.save): keep them as JSON only, so
        # that an adapter folder holds nothing that runs code when loaded
        (staging / "training_args.bin").unlink(missing_ok=True)
        (staging / "training_args.json").write_text(trainer.args.to_json_string())
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staging, out)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return TrainResult(out, losses, trainer.state.global_step, world, len(samples))


def show_steps(trainer: Any, label: str) -> None:
    """Our progress bar for the Trainer's steps instead of its tqdm bar and printed log dicts (the losses are kept
    in ``log_history.json``); nothing when ``disable_tqdm`` is set or off the main process."""
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback

    from culturealign.progress import progress_bar

    if trainer.args.disable_tqdm or not trainer.is_world_process_zero():
        return

    class StepBar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self._bar = progress_bar(label, state.max_steps)
            self._advance = self._bar.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self._advance is not None:
                self._advance(1)

        def on_train_end(self, args, state, control, **kwargs):
            self._bar.__exit__(None, None, None)

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(StepBar())


def _trainer_class(base: type) -> type:
    """TRL's ``SFTTrainer`` with the model's own cross-entropy as the loss when training on CPU.

    TRL 1.16 computes the loss through a fused LM head that also yields per-token entropy and top-1 flags for its
    logs. On a GPU that saves memory; on CPU it made a LoRA step of the embedded model 28% slower than the plain
    ``model(..., labels=...).loss`` (7.15 vs 5.59 s, bench/bench_training.py). Off the GPU, for the plain NLL loss,
    this subclass takes transformers' ``Trainer.compute_loss`` (same loss, same token normalisation across
    gradient accumulation and processes) and computes the two logged metrics from the logits of the trained
    positions only, without gradients. Anything else (GPU, DFT loss, label smoothing, MoE aux loss, a custom loss
    function) goes through TRL unchanged.
    """
    import torch
    from transformers import Trainer

    class CPUSFTTrainer(base):
        """Keeps its own logged metrics (TRL's ``_metrics`` and token counter are private state, left alone)."""

        def _plain_loss(self) -> bool:
            return (
                self.args.use_cpu
                and self.args.loss_type == "nll"
                and self.compute_loss_func is None
                and self.label_smoother is None
                and not self.aux_loss_enabled
            )

        def _cpu_metrics(self, mode: str) -> dict[str, list[float]]:
            store = self.__dict__.setdefault("cpu_metrics", {"train": {}, "eval": {}, "tokens": 0})
            return store[mode]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not self._plain_loss():
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            inputs["use_cache"] = False
            loss, outputs = Trainer.compute_loss(self, model, inputs, True, num_items_in_batch)
            with torch.no_grad():
                valid, entropy, correct = _token_metrics(outputs.logits, inputs["labels"])
            m = self._cpu_metrics(mode)
            m.setdefault("entropy", []).append(entropy / valid if valid else 0.0)
            m.setdefault("mean_token_accuracy", []).append(correct / valid if valid else 0.0)
            if mode == "train":
                self.cpu_metrics["tokens"] += int(inputs["attention_mask"].sum())
            m["num_tokens"] = [self.cpu_metrics["tokens"]]
            return (loss, outputs) if return_outputs else loss

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            mode = "train" if self.model.training else "eval"
            if "cpu_metrics" in self.__dict__:
                prefix = "eval_" if mode == "eval" else ""
                m = self._cpu_metrics(mode)
                logs.update({prefix + k: sum(v) / len(v) for k, v in m.items() if v})
                m.clear()
            super().log(logs, start_time)

    return CPUSFTTrainer


def _token_metrics(logits: Any, labels: Any, chunk: int = 256) -> tuple[int, float, int]:
    """(trained positions, summed entropy, top-1 hits) of next-token predictions, in chunks to bound memory."""
    import torch

    logits, labels = logits[:, :-1], labels[:, 1:]
    keep = labels != -100
    rows, targets = logits[keep], labels[keep]
    entropy, correct = 0.0, 0
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk].float()
        logp = torch.log_softmax(part, dim=-1)
        entropy += float(-(logp.exp() * logp).sum())
        correct += int((part.argmax(-1) == targets[i : i + chunk]).sum())
    return len(rows), entropy, correct


def warmup_steps(cfg: Any, n_examples: int, world_size: int = 1) -> float:
    """Warm-up steps with a ratio rounded down, not up as transformers does.

    transformers turns a ratio into ``ceil(ratio * total)`` steps, so a run of one or a few optimizer steps (the
    small datasets of a CPU demo) spends its first, or only, step at learning rate 0 and the adapter equals the
    base model. Rounding down keeps the paper's 10% on real runs and gives tiny runs no warm-up.
    """
    ratio = cfg.warmup_steps
    if not 0 < ratio < 1:
        return ratio
    per_epoch = math.ceil(
        math.ceil(n_examples / (cfg.per_device_train_batch_size * world_size))
        / max(1, cfg.gradient_accumulation_steps)
    )
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(per_epoch * cfg.num_train_epochs)
    return int(ratio * total)


def qlora_available() -> bool:
    """A CUDA GPU and bitsandbytes are present: 4-bit quantized LoRA training can run."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def merge_adapter(model_path: str, adapter: str | Path, out: str | Path) -> Path:
    """Merge a LoRA adapter into its base model and save the merged model (a plain transformers folder)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), str(adapter))
    merged = model.merge_and_unload()
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_path).save_pretrained(out)
    return Path(out)
