"""Benchmark of LoRA SFT: the project's ``train_lora`` (TRL ``SFTTrainer`` + PEFT) against a plain PyTorch loop.

Both sides train the same PEFT LoRA adapter (``--r``, q_proj/v_proj by default, alpha 2r, dropout 0.05) on the
embedded model ``smollm2`` over the same synthetic chat samples, tokenized the same way (TRL's prompt-completion
rule: chat template of the prompt with the generation prompt, of prompt + reply; loss on the reply only), the same
batch size, right padding to the longest row, the same number of epochs/steps, AdamW (fused, as the Trainer's
default ``adamw_torch_fused``), the same learning rate, cosine schedule with 10% warm-up, gradient clipping 1.0,
and the same seed. bf16 means what ``train_lora(sft={"bf16": True})`` means on CPU: fp32 weights under
``torch.autocast(bfloat16)`` (the plain loop does the same).

Each variant runs in a fresh subprocess (so its peak RSS, ``getrusage`` ``ru_maxrss``, is its own). Reported per
variant: wall seconds of the training loop (the Trainer's own ``train_runtime`` for ``train_lora``), non-pad
tokens trained on, tokens/s, the whole call's wall time (model load, tokenization, training, saving), RSS after
loading the model, and peak RSS.

Usage: python bench/bench_training.py [--samples 64] [--epochs 2] [--batch-size 8] [--dtypes fp32,bf16] [--smoke]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)
from _prompts import OPEN_QUESTIONS, SYSTEMS

SENTENCES = [
    "In my experience, this depends a great deal on the family you grow up in.",
    "Most people I know would say that respect and patience matter more than anything else.",
    "There is no single right answer, but honesty usually earns more trust over time.",
    "Older generations often see it differently from younger people, and both have good reasons.",
    "Where I live, people value being polite even when they strongly disagree.",
    "It is common to ask for advice from relatives before making an important decision.",
    "Personally, I think it is best to listen first and to speak only after understanding the other side.",
    "Traditions give people a sense of belonging, although some of them slowly change.",
    "Many people would answer that security and stability come before personal ambition.",
    "Others would say that freedom to choose one's own path is what makes life meaningful.",
    "Hospitality is taken seriously: a guest is offered food and drink before anything else.",
    "Hard work is admired, but so is the ability to enjoy time with friends and family.",
    "People here tend to be direct, which visitors sometimes mistake for rudeness.",
    "Community events, such as festivals and markets, bring neighbours together.",
    "Education is seen as the surest way to a better life for the next generation.",
    "In the end, kindness towards others is what most people remember.",
]


def synthetic_samples(n: int, seed: int = 0):
    """``n`` ChatSample records: a system prompt (some), a question, a 2-5 sentence reply, seeded."""
    from culturealign.records import ChatSample

    rng = random.Random(seed)
    out = []
    for i in range(n):
        system = SYSTEMS[i % len(SYSTEMS)]
        msgs = [{"role": "system", "content": system}] if system else []
        msgs.append({"role": "user", "content": OPEN_QUESTIONS[i % len(OPEN_QUESTIONS)]})
        msgs.append({"role": "assistant", "content": " ".join(rng.sample(SENTENCES, rng.randint(2, 5)))})
        out.append(ChatSample(msgs, {"id": i}))
    return out


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def lora_settings(args) -> dict:
    return {
        "r": args.r,
        "lora_alpha": 2 * args.r,
        "lora_dropout": 0.05,
        "target_modules": args.targets.split(","),
        "task_type": "CAUSAL_LM",
    }


# -- the two variants (each runs in its own process) -----------------------------------------------------
def run_train_lora(args, out: Path) -> dict:
    import datasets  # noqa: F401  (imported by train_lora: counted in the baseline RSS, as the plain loop's imports)
    import trl  # noqa: F401

    from culturealign.llm.models import resolve_model
    from culturealign.train.lora import train_lora

    path = resolve_model("smollm2")
    samples = synthetic_samples(args.samples)
    pre_rss = rss_mib()
    sft = {
        "num_train_epochs": args.epochs,
        "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length,
        "learning_rate": args.lr,
        "bf16": args.dtype == "bf16",
        "disable_tqdm": True,
        **json.loads(args.sft_extra),
    }
    t0 = time.perf_counter()
    res = train_lora(path, samples, out / "adapter", lora=lora_settings(args), sft=sft)
    total = time.perf_counter() - t0
    history = json.loads((out / "adapter" / "log_history.json").read_text())
    final = next(h for h in reversed(history) if "train_runtime" in h)
    tokens = max(int(h.get("num_tokens", 0)) for h in history)
    return {
        "train_s": final["train_runtime"],
        "total_s": total,
        "tokens": tokens,
        "steps": res.steps,
        "loss_first": res.losses[0] if res.losses else None,
        "loss_last": res.losses[-1] if res.losses else None,
        "pre_rss_mib": pre_rss,
    }


def run_plain(args, out: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    from culturealign.llm.models import resolve_model

    path = resolve_model("smollm2")
    samples = synthetic_samples(args.samples)
    pre_rss = rss_mib()
    t_start = time.perf_counter()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(**lora_settings(args)))
    loaded_rss = rss_mib()

    def encode(messages) -> tuple[list[int], list[int]]:  # TRL's prompt-completion rule
        prompt = tok(tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True),
                     add_special_tokens=False).input_ids  # fmt: skip
        full = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False).input_ids
        pairs = enumerate(zip(prompt, full, strict=False))
        k = next((i for i, (a, b) in pairs if a != b), min(len(prompt), len(full)))
        full = full[: args.max_length]
        return full, [-100] * min(k, len(full)) + full[k:]

    rows = [encode(s.messages) for s in samples]
    steps_per_epoch = math.ceil(len(rows) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, fused=True)
    sched = get_cosine_schedule_with_warmup(opt, math.ceil(0.1 * total_steps), total_steps)
    gen = torch.Generator().manual_seed(0)
    pad = tok.pad_token_id
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    model.train()
    tokens, losses = 0, []
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(rows), generator=gen).tolist()
        for b in range(0, len(order), args.batch_size):
            batch = [rows[i] for i in order[b : b + args.batch_size]]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
            with autocast:
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tokens += int(mask.sum())
            losses.append(float(loss))
    train_s = time.perf_counter() - t0
    model.save_pretrained(out / "adapter")
    return {
        "train_s": train_s,
        "total_s": time.perf_counter() - t_start,
        "tokens": tokens,
        "steps": total_steps,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loaded_rss_mib": loaded_rss,
        "pre_rss_mib": pre_rss,
    }


def child(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        res = (run_train_lora if args.child == "train_lora" else run_plain)(args, Path(tmp))
    res["peak_rss_mib"] = peak_rss_mib()
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--r", type=int, default=4)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--variants", default="plain,train_lora")
    ap.add_argument("--repeats", type=int, default=1, help="runs per variant (alternating order); median reported")
    ap.add_argument("--sft-extra", default="{}", help="extra SFTConfig fields for train_lora, JSON, e.g. '{\"x\": 1}'")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each child")
    ap.add_argument("--smoke", action="store_true", help="seconds-long check: 8 samples, 1 epoch, batch 4, fp32")
    ap.add_argument("--child", choices=["train_lora", "plain"], help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.samples, args.epochs, args.batch_size = 8, 1, 4
        args.dtypes = args.dtypes if args.dtypes != "fp32,bf16" else "fp32"
    if args.child:
        child(args)
        return

    dtypes, variants = args.dtypes.split(","), args.variants.split(",")
    passthrough = [
        f"--samples={args.samples}", f"--epochs={args.epochs}", f"--batch-size={args.batch_size}",
        f"--max-length={args.max_length}", f"--lr={args.lr}", f"--r={args.r}", f"--targets={args.targets}",
        f"--sft-extra={args.sft_extra}",
    ] + ([f"--threads={args.threads}"] if args.threads else [])  # fmt: skip
    results: dict[tuple[str, str], list[dict]] = {}
    for rep in range(args.repeats):
        for dtype in dtypes:
            order = variants if (rep + dtypes.index(dtype)) % 2 == 0 else variants[::-1]
            for v in order:
                cmd = [sys.executable, __file__, f"--child={v}", f"--dtype={dtype}", *passthrough]
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if proc.returncode or line is None:
                    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
                    raise SystemExit(f"variant {v} {dtype} failed (exit {proc.returncode})")
                res = json.loads(line[len("RESULT ") :])
                results.setdefault((v, dtype), []).append(res)
                print(f"rep {rep + 1} {v:10s} {dtype}: {res['steps']} steps, {res['tokens']} tokens, "
                      f"train {res['train_s']:.1f} s = {res['tokens'] / res['train_s']:.1f} tok/s, whole call "
                      f"{res['total_s']:.1f} s, peak RSS {res['peak_rss_mib']:.0f} MiB, loss "
                      f"{res['loss_first']:.3f} -> {res['loss_last']:.3f}")  # fmt: skip

    def med(v: str, d: str, key: str) -> float:
        xs = sorted(r[key] for r in results[(v, d)])
        return xs[len(xs) // 2]

    def tps(v: str, d: str) -> float:
        xs = sorted(r["tokens"] / r["train_s"] for r in results[(v, d)])
        return xs[len(xs) // 2]

    first = next(iter(results.values()))[0]
    summary: dict[str, object] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch threads": first["threads"],
        "model": "smollm2 (SmolLM2-135M-Instruct, Q4_1 GGUF dequantized, fp32 weights)",
        "lora": f"r={args.r}, alpha={2 * args.r}, dropout 0.05, {args.targets}",
        "samples x epochs, batch": f"{args.samples} x {args.epochs}, batch {args.batch_size}",
        "repeats (median)": args.repeats,
    }
    if args.sft_extra != "{}":
        summary["train_lora extra SFTConfig"] = args.sft_extra
    for (v, d), _ in results.items():
        summary[f"{v} {d} steps"] = results[(v, d)][0]["steps"]
        summary[f"{v} {d} tokens (non-pad)"] = results[(v, d)][0]["tokens"]
        summary[f"{v} {d} train s"] = f"{med(v, d, 'train_s'):.1f}"
        summary[f"{v} {d} tok/s"] = f"{tps(v, d):.1f}"
        summary[f"{v} {d} whole call s"] = f"{med(v, d, 'total_s'):.1f}"
        summary[f"{v} {d} peak RSS MiB"] = f"{med(v, d, 'peak_rss_mib'):.0f}"
        summary[f"{v} {d} RSS before model load MiB"] = f"{med(v, d, 'pre_rss_mib'):.0f}"
        if "loaded_rss_mib" in results[(v, d)][0]:
            summary[f"{v} {d} RSS after model load MiB"] = f"{med(v, d, 'loaded_rss_mib'):.0f}"
    for d in dtypes:
        if ("plain", d) in results and ("train_lora", d) in results:
            r = tps("train_lora", d) / tps("plain", d)
            summary[f"train_lora/plain tok/s {d} (target >= 0.90)"] = f"{r:.2f} ({'met' if r >= 0.9 else 'missed'})"
            summary[f"train_lora/plain peak RSS {d}"] = (
                f"{med('train_lora', d, 'peak_rss_mib') / med('plain', d, 'peak_rss_mib'):.2f}"
            )
            summary[f"train_lora/plain whole call {d}"] = (
                f"{med('train_lora', d, 'total_s') / med('plain', d, 'total_s'):.2f}"
            )
    for v in variants:
        if (v, "fp32") in results and (v, "bf16") in results:
            summary[f"{v} bf16/fp32 tok/s"] = f"{tps(v, 'bf16') / tps(v, 'fp32'):.2f}"
    print("\n== summary")
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
