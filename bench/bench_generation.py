"""Benchmark of batched generation: the local engine (HF ``generate``, left padding) against llama.cpp's server.

Same GGUF model on both sides (``smollm2``: the local engine dequantizes the Q4_1 weights to fp32/bf16, the server
computes on the Q4_1 weights), the same prompt token ids (rendered once by the local engine's chat template and sent
to the server's ``/completion`` as ids), greedy decoding, the same number of new tokens. Two ways of counting:

* **forced**: every prompt gets exactly ``--new-tokens`` new tokens (``min_new_tokens`` on the local side, which
  masks EOS; ``ignore_eos`` on the server side, checked from the server's ``tokens_predicted``);
* **natural**: the engine's public ``generate`` (stops at EOS; tokens counted as ``engine.stats.completion_tokens``,
  i.e. non-EOS tokens actually produced) against the server without ``ignore_eos`` (its ``tokens_predicted``).

Throughput is new tokens / wall seconds of the whole job (prefill included), one process, one model at a time
(the server is started only for its own phase). The server gets ``--concurrency`` concurrent requests
(asyncio + httpx) over ``--parallel`` slots.

Usage: python bench/bench_generation.py [--prompts 64] [--new-tokens 128] [--batch-sizes 16,32,64] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
import time

import httpx
import torch
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)
from _llama_server import LlamaServer, add_server_args, find_binary, smollm2_gguf
from _prompts import chat_prompts

from culturealign.llm import make_engine
from culturealign.llm.base import GenParams
from culturealign.llm.local import cache_kwarg, growing_cache


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


# -- local engine ------------------------------------------------------------------------------------------
def local_forced(engine, prompts, batch: int, new: int, static: bool = False) -> tuple[int, float, list[list[int]]]:
    """HF generate the way LocalEngine._generate calls it (its growing KV cache unless ``static``), with
    min_new_tokens=new: (tokens, seconds, new ids)."""
    model, tok = engine.load()
    pad = tok.pad_token_id
    kwargs = {"do_sample": False, "max_new_tokens": new, "min_new_tokens": new, "pad_token_id": pad}
    if static:
        kwargs["cache_implementation"] = "static"
    tokens, outs = 0, []
    t0 = time.perf_counter()
    for b in range(0, len(prompts), batch):
        ids = [engine.render(p) for p in prompts[b : b + batch]]
        width = max(map(len, ids))
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        cache = {} if static else {cache_kwarg(): growing_cache(model.config)}
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs, **cache)
        gen = out[:, width:]
        tokens += int(gen.numel())
        outs += gen.tolist()
    return tokens, time.perf_counter() - t0, outs


def local_public(engine, prompts, new: int) -> tuple[int, float]:
    """The engine's public generate (stops at EOS): (completion tokens it counted, seconds)."""
    engine.stats.completion_tokens = 0
    t0 = time.perf_counter()
    engine.generate(prompts, GenParams(temperature=0, max_tokens=new))
    return engine.stats.completion_tokens, time.perf_counter() - t0


def warm(engine, prompts, batch: int) -> None:
    local_forced(engine, prompts[:batch], batch, 2)


# -- llama-server -----------------------------------------------------------------------------------------
async def server_job(url: str, ids: list[list[int]], new: int, concurrency: int, forced: bool):
    """All prompts through /completion, ``concurrency`` at a time: (tokens, seconds, per-request bodies)."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=1800, limits=limits) as client:

        async def one(x: list[int]) -> dict:
            payload = {
                "prompt": x,
                "n_predict": new,
                "temperature": 0,
                "ignore_eos": forced,
                "cache_prompt": False,  # every job computes its prompts (the local side reuses nothing either)
                "return_tokens": True,
            }
            async with sem:
                r = await client.post(f"{url}/completion", json=payload)
            r.raise_for_status()
            return r.json()

        t0 = time.perf_counter()
        bodies = await asyncio.gather(*(one(x) for x in ids))
        seconds = time.perf_counter() - t0
    return sum(int(b["tokens_predicted"]) for b in bodies), seconds, bodies


def check_chat_ignore_eos(url: str, messages, new: int) -> str:
    """Does /v1/chat/completions honour ignore_eos? Compare usage.completion_tokens with and without it."""
    res = []
    for flag in (False, True):
        payload = {"model": "x", "messages": messages, "max_tokens": new, "temperature": 0, "ignore_eos": flag}
        body = httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=600).json()
        res.append((flag, body["usage"]["completion_tokens"], body["choices"][0].get("finish_reason")))
    return ", ".join(f"ignore_eos={f}: {n} tokens (finish {r})" for f, n, r in res)


def prefix_agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Mean share of each forced reply the two sides agree on before they first differ."""
    shares = []
    for x, y in zip(a, b, strict=True):
        n = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
        shares.append(n / max(len(x), 1))
    return statistics.mean(shares)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batch-sizes", default="16,32,64", help="local engine batch sizes (fp32)")
    ap.add_argument("--bf16", default="probe", choices=["probe", "full", "off"],
                    help="probe: one smallest-batch forced run (short); full: every batch size; off")  # fmt: skip
    ap.add_argument("--static", action=argparse.BooleanOptionalAction, default=True,
                    help="also time cache_implementation='static' at the best fp32 batch size")  # fmt: skip
    add_server_args(ap, parallel=32, concurrency=32)
    ap.add_argument("--smoke", action="store_true", help="seconds-long check: 4 prompts, 8 tokens, batch 2,4")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.new_tokens, args.batch_sizes = 4, 8, "2,4"
        args.parallel = args.concurrency = 4
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    batches = [int(x) for x in args.batch_sizes.split(",")]
    binary = find_binary(args.server_bin)
    gguf = smollm2_gguf()
    prompts = chat_prompts(args.prompts)
    new = args.new_tokens
    summary: dict[str, object] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "model": f"smollm2 ({gguf.name}; local: dequantized)",
        "prompts": len(prompts),
        "new tokens per prompt": new,
    }

    # -- local engine, fp32 ----------------------------------------------------------------------------
    engine = make_engine("local", model="smollm2", batch_size=max(batches), dtype="float32")
    engine.load()
    ids = [engine.render(p) for p in prompts]
    summary["prompt tokens (mean)"] = f"{statistics.mean(map(len, ids)):.1f}"
    print(f"{len(prompts)} prompts, {sum(map(len, ids))} prompt tokens, {new} new tokens each; {threads} threads")
    local: dict[tuple[str, int, str], float] = {}
    local_ids: list[list[int]] = []
    for b in batches:
        engine.batch_size = b
        warm(engine, prompts, b)
        n, s, outs = local_forced(engine, prompts, b, new)
        local[("float32", b, "forced")] = n / s
        if b == batches[-1] or not local_ids:
            local_ids = outs
        print(f"local fp32 batch {b:3d} forced : {n} tokens in {s:6.1f} s = {n / s:7.1f} tok/s")
        n, s = local_public(engine, prompts, new)
        local[("float32", b, "natural")] = n / s
        print(f"local fp32 batch {b:3d} natural: {n} tokens in {s:6.1f} s = {n / s:7.1f} tok/s (stops at EOS)")
    best_b = max(batches, key=lambda b: local[("float32", b, "forced")])
    if args.static:
        engine.batch_size = best_b
        try:
            local_forced(engine, prompts[:best_b], best_b, 2, static=True)  # warm-up
            n, s, _ = local_forced(engine, prompts, best_b, new, static=True)
            local[("float32-static", best_b, "forced")] = n / s
            print(f"local fp32 batch {best_b:3d} forced, static cache: {n} tokens in {s:6.1f} s = {n / s:7.1f} tok/s")
        except Exception as e:  # report, do not lose the rest of the run
            print(f"static cache failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    engine.unload()

    # -- local engine, bf16 ------------------------------------------------------------------------------
    if args.bf16 != "off":
        bf = make_engine("local", model="smollm2", batch_size=batches[0], dtype="bfloat16")
        bf.load()
        sizes = batches if args.bf16 == "full" else batches[:1]
        for b in sizes:
            bf.batch_size = b
            warm(bf, prompts, b)
            sub = prompts if args.bf16 == "full" else prompts[:b]  # probe: one batch only
            n, s, _ = local_forced(bf, sub, b, new)
            local[("bfloat16", b, "forced")] = n / s
            print(f"local bf16 batch {b:3d} forced : {n} tokens in {s:6.1f} s = {n / s:7.1f} tok/s"
                  + ("" if args.bf16 == "full" else f" (probe: {len(sub)} prompts)"))  # fmt: skip
        bf.unload()

    # -- llama-server ---------------------------------------------------------------------------------------
    server: dict[str, float] = {}
    with LlamaServer(binary, gguf, args.parallel, args.ctx_per_slot, threads) as srv:
        summary["llama-server"] = f"{srv.version()} (-np {args.parallel}, -c {args.ctx_per_slot * args.parallel})"
        print(f"llama-server up at {srv.url}: {' '.join(srv.cmd[1:])}")
        print("chat endpoint:", check_chat_ignore_eos(srv.url, prompts[0], new))
        asyncio.run(server_job(srv.url, ids[: args.concurrency], 2, args.concurrency, True))  # warm-up
        n, s, bodies = asyncio.run(server_job(srv.url, ids, new, args.concurrency, True))
        server["forced"] = n / s
        short = sum(int(b["tokens_predicted"]) != new for b in bodies)
        evaluated = sum(int(b.get("tokens_evaluated", 0)) for b in bodies)
        print(f"llama-server forced : {n} tokens in {s:6.1f} s = {n / s:7.1f} tok/s; {short} replies != {new} tokens; "
              f"prompt tokens evaluated {evaluated} (sent {sum(map(len, ids))})")  # fmt: skip
        server_ids = [b.get("tokens") or [] for b in bodies]
        n, s, bodies = asyncio.run(server_job(srv.url, ids, new, args.concurrency, False))
        server["natural"] = n / s
        print(f"llama-server natural: {n} tokens in {s:6.1f} s = {n / s:7.1f} tok/s (stops at EOS)")
    if all(server_ids):
        agree = prefix_agreement(local_ids, server_ids)
        summary["greedy agreement local fp32 vs server (forced, mean prefix share)"] = f"{agree:.2f}"

    for (dtype, b, mode), v in local.items():
        summary[f"local {dtype} batch {b} {mode} tok/s"] = f"{v:.1f}"
    summary[f"llama-server -np {args.parallel} x{args.concurrency} forced tok/s"] = f"{server['forced']:.1f}"
    summary[f"llama-server -np {args.parallel} x{args.concurrency} natural tok/s"] = f"{server['natural']:.1f}"
    best_forced = max(v for (_, _, m), v in local.items() if m == "forced")
    best_key = next(k for k, v in local.items() if v == best_forced)
    best_nat = max(local[("float32", b, "natural")] for b in batches)
    r = best_forced / server["forced"]
    summary["best local forced"] = f"{best_key[0]} batch {best_key[1]}"
    summary["local/server forced (target >= 1.5)"] = f"{r:.2f} ({'met' if r >= 1.5 else 'missed'})"
    summary["local/server natural (best fp32 batch)"] = ratio(best_nat, server["natural"])
    for b in batches:
        summary[f"local fp32 batch {b} / server, forced"] = ratio(local[("float32", b, "forced")], server["forced"])
    if ("bfloat16", batches[0], "forced") in local:
        summary[f"bf16/fp32 batch {batches[0]} forced"] = ratio(
            local[("bfloat16", batches[0], "forced")], local[("float32", batches[0], "forced")]
        )
    print("\n== summary")
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
