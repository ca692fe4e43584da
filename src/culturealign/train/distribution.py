"""Soft-label LoRA training: fit the model's option distribution to a target distribution (human answer shares).

The loss of one item is the cross-entropy H(target, q) between the target shares and the model's distribution
over the option codes ``q``, read exactly as the evaluator reads it (:mod:`culturealign.llm.trie`: the token trie
over the codes, so "1" and "10" stay distinct, renormalized over the codes), from one forward pass per item (per
probe of the trie: one for every WVS scale). The mass the model puts on the codes is logged as a diagnostic.

The loop is a plain `accelerate` loop (``Accelerator.prepare`` + ``accumulate``), so the same function trains in one
process or under ``accelerate launch`` (DDP on GPUs, gloo on CPU); the PEFT adapter is written atomically by the main
process and loads wherever an SFT adapter does (every evaluator, ``merge``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.records import SoftLabel
from culturealign.train.lora import LORA_DEFAULTS, TrainResult

log = logging.getLogger(__name__)

SOFT_DEFAULTS: dict[str, Any] = {
    "learning_rate": 5e-4,
    "num_train_epochs": 2,
    "max_steps": -1,  # > 0: stop after this many optimizer steps
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.1,  # a float < 1 is a ratio of the total steps (rounded down, as for SFT)
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 0,
}


def soft_settings(given: dict[str, Any] | None) -> dict[str, Any]:
    """The trainer's settings over its defaults; an unknown key names the YAML key and the known ones."""
    unknown = set(given or {}) - set(SOFT_DEFAULTS)
    if unknown:
        raise UserError(f"unknown key(s) {sorted(unknown)} in train.soft: known keys are {', '.join(SOFT_DEFAULTS)}")
    out = {**SOFT_DEFAULTS, **(given or {})}
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise UserError(f"train.soft.{key} must be a whole number >= 1, got {out[key]!r}")
    for key in ("learning_rate", "num_train_epochs", "warmup_steps", "weight_decay", "max_grad_norm"):
        if not isinstance(out[key], int | float) or isinstance(out[key], bool) or out[key] < 0:
            raise UserError(f"train.soft.{key} must be a number >= 0, got {out[key]!r}")
    return out


def write_soft_labels(items: Sequence[SoftLabel], folder: Path, name: str) -> Path:
    """Write ``<name>.jsonl`` (one ``{"messages", "target", ...meta}`` a line) for inspection and reuse."""
    from culturealign.runs.store import write_jsonl

    write_jsonl(folder / f"{name}.jsonl", ({"messages": s.messages, "target": s.target, **s.meta} for s in items))
    return folder / f"{name}.jsonl"


def read_soft_labels(path: Path) -> list[SoftLabel]:
    """Soft labels as :func:`write_soft_labels` writes them; a bad line fails with its number before a model loads."""
    from culturealign.runs.store import read_jsonl

    try:
        rows = read_jsonl(Path(path))
    except OSError as e:
        raise UserError(f"cannot read soft labels {path}: {e.strerror or e}") from e
    items = []
    for n, row in enumerate(rows, 1):
        messages, target = (row.get("messages"), row.get("target")) if isinstance(row, dict) else (None, None)
        ok = (
            isinstance(messages, list)
            and messages
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
            and messages[-1].get("role") != "assistant"
            and isinstance(target, dict)
            and target
            and all(isinstance(v, int | float) and 0 <= v <= 1 for v in target.values())
            and abs(sum(target.values()) - 1) < 1e-3
        )
        if not ok:
            raise UserError(
                f'record {n} of {path} is not a soft label: each line needs "messages" (a prompt that does not end '
                'with the assistant) and "target" (option code -> share in [0, 1], summing to 1)'
            )
        items.append(SoftLabel(messages, {str(k): float(v) for k, v in target.items()}, row))
    return items


def _encode(tok: Any, items: Sequence[SoftLabel]) -> list[dict[str, Any]]:
    """Per item: its trie's code paths, and one row of token ids (prompt + probe path) per probe."""
    from culturealign.llm.trie import code_paths, probe_paths

    out = []
    for it in items:
        prompt = tok.apply_chat_template(it.messages, add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, add_special_tokens=False).input_ids
        codes = code_paths(tok, list(it.target))
        out.append({"codes": codes, "rows": [(p, ids + list(p)) for p in probe_paths(codes)], "target": it.target})
    return out


def batch_loss(
    model: Any, pad_id: int, encoded: Sequence[dict[str, Any]], share_prefix: bool = True
) -> tuple[Any, float]:
    """Mean soft cross-entropy over a batch of encoded items, and their mean mass on the codes (diagnostic).

    With ``share_prefix`` the batch's common token prefix (a culture's system prompt and the survey template's
    opening: about half of each prompt) runs once, its key/value cache is repeated over the batch and the rows go
    on from there; gradients flow back through the shared prefix, so the loss and its gradients are those of the
    full rows (tested), at ~half the tokens.
    """
    import torch

    from culturealign.llm.trie import common_prefix, option_log_probs, soft_cross_entropy

    rows = [(i, path, ids) for i, e in enumerate(encoded) for path, ids in e["rows"]]
    device = next(model.parameters()).device
    prompt_len = min(len(ids) - len(path) for _, path, ids in rows)
    shared = min(common_prefix(rows[0][2], ids) for _, _, ids in rows) if share_prefix and len(rows) > 1 else 0
    shared = min(shared, prompt_len - 1)  # keep at least one prompt token per row
    kwargs: dict[str, Any] = {}
    if shared >= 16:
        prefix = model(input_ids=torch.tensor([rows[0][2][:shared]], device=device), use_cache=True, logits_to_keep=1)
        cache = prefix.cache  # transformers 5.x name of past_key_values, as in the local engine
        cache.batch_repeat_interleave(len(rows))
        kwargs["cache"] = cache
    else:
        shared = 0
    suffixes = [ids[shared:] for _, _, ids in rows]
    width = max(map(len, suffixes))
    input_ids = torch.tensor([[pad_id] * (width - len(x)) + x for x in suffixes], device=device)
    mask = torch.tensor([[1] * shared + [0] * (width - len(x)) + [1] * len(x) for x in suffixes], device=device)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    keep = max(len(path) for _, path, _ in rows) + 1
    logits = model(
        input_ids=input_ids, attention_mask=mask, position_ids=position_ids, logits_to_keep=keep, **kwargs
    ).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    nodes: list[dict] = [{} for _ in encoded]
    for j, (i, path, _) in enumerate(rows):
        n = len(path)
        for k in range(n + 1):  # position keep-1-n+k holds the distribution after path[:k]
            nodes[i][path[:k]] = logprobs[j, keep - 1 - n + k]
    losses, masses = [], []
    for e, node in zip(encoded, nodes, strict=True):
        log_q, log_mass = option_log_probs(e["codes"], node)
        losses.append(soft_cross_entropy([e["target"][c] for c in e["codes"]], log_q))
        masses.append(float(log_mass.detach().exp()))
    return torch.stack(losses).mean(), sum(masses) / len(masses)


def prefix_batches(encoded: Sequence[dict[str, Any]], groups: Sequence[str], size: int, seed: int) -> list[list[int]]:
    """Batches of item indices that share a group (a culture: one system prompt), shuffled within and across groups."""
    import random

    rng = random.Random(seed)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    batches = []
    for g in sorted(by_group):
        idx = by_group[g]
        rng.shuffle(idx)
        batches += [idx[b : b + size] for b in range(0, len(idx), size)]
    rng.shuffle(batches)
    return batches


def train_distribution(
    model_path: str,
    items: Sequence[SoftLabel],
    out: str | Path,
    lora: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a LoRA adapter so the model's option distribution on each prompt matches its target; save it (PEFT)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    from culturealign.progress import progress_bar

    if not items:
        raise UserError("no soft labels to train on: the split left no training question with answers")
    s = soft_settings(settings)
    try:
        lora_cfg = LoraConfig(**{**LORA_DEFAULTS, **(lora or {})})
    except (TypeError, ValueError) as e:
        raise UserError(f"bad train.lora setting: {e}; see PEFT LoraConfig") from e
    acc = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=s["gradient_accumulation_steps"])
    set_seed(s["seed"])
    tok = AutoTokenizer.from_pretrained(model_path)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    encoded = _encode(tok, items)
    with warnings.catch_warnings():  # PEFT asks transformers 5.24 a deprecated name (is_gradient_checkpointing)
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32), lora_cfg)
    model.config.use_cache = False
    groups = [str(it.messages[0].get("content", "")) if it.messages[0].get("role") == "system" else "" for it in items]
    batches = prefix_batches(encoded, groups, s["per_device_train_batch_size"], s["seed"])
    loader = DataLoader(batches, batch_size=1, shuffle=True, generator=torch.Generator().manual_seed(s["seed"]),
                        collate_fn=lambda b: b[0])  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s["learning_rate"], weight_decay=s["weight_decay"])
    model, optimizer, loader = acc.prepare(model, optimizer, loader)
    per_epoch = math.ceil(len(loader) / s["gradient_accumulation_steps"])
    total = s["max_steps"] if s["max_steps"] > 0 else math.ceil(per_epoch * s["num_train_epochs"])
    warmup = int(s["warmup_steps"] * total) if 0 < s["warmup_steps"] < 1 else int(s["warmup_steps"])
    scheduler = get_scheduler(s["lr_scheduler_type"], optimizer, num_warmup_steps=warmup, num_training_steps=total)
    history: list[dict[str, float]] = []
    step, running, mass, seen = 0, 0.0, 0.0, 0
    model.train()
    start = time.perf_counter()
    with progress_bar("training (soft labels)", total, progress and acc.is_main_process) as advance:
        while step < total:
            for idx in loader:
                with acc.accumulate(model):
                    loss, batch_mass = batch_loss(model, pad_id, [encoded[i] for i in idx])
                    acc.backward(loss)
                    if acc.sync_gradients and s["max_grad_norm"]:
                        acc.clip_grad_norm_(params, s["max_grad_norm"])
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                running, mass, seen = running + float(loss.detach()), mass + batch_mass, seen + 1
                if acc.sync_gradients:
                    step += 1
                    history.append(
                        {"step": step, "loss": running / seen, "mass_on_options": mass / seen,
                         "learning_rate": scheduler.get_last_lr()[0]}
                    )  # fmt: skip
                    running, mass, seen = 0.0, 0.0, 0
                    if advance:
                        advance(1)
                    if step >= total:
                        break
    seconds = time.perf_counter() - start
    return _save(acc, model, Path(out), history, len(items), model_path, {**s, "train_seconds": round(seconds, 3)})


def _save(acc: Any, model: Any, out: Path, history: list, examples: int, base: str, settings: dict) -> TrainResult:
    """Write the adapter to a staging folder from the main process, then rename it into place."""
    staging = out.with_name(f".{out.name}.tmp")
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        acc.unwrap_model(model).save_pretrained(str(staging))
        info = {
            "target": "distribution",
            "world_size": acc.num_processes,
            "steps": len(history),
            "examples": examples,
            "base": base,
            "train_seconds": settings.pop("train_seconds", None),  # the training loop alone (no load, no save)
            "settings": settings,
        }
        (staging / "train_info.json").write_text(json.dumps(info, indent=2))
        (staging / "log_history.json").write_text(json.dumps(history, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staging, out)
    acc.wait_for_everyone()
    return TrainResult(out, [h["loss"] for h in history], len(history), acc.num_processes, examples)
