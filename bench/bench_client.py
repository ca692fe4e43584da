"""Benchmark of the ``openai`` engine as a client of llama.cpp's ``llama-server``: concurrency and client overhead.

One ``llama-server -np 8`` on the embedded model's GGUF; the engine (``OpenAIEngine``, no cache) against a bare
client (plain ``httpx.AsyncClient`` + semaphore, one job over all prompts) that sends exactly the payloads the
engine sent (recorded once in an untimed warm-up pass through a recording transport), at the same concurrency:

* generation: ``--prompts`` chat prompts, greedy, ``--max-tokens`` new tokens at most (the server may stop at EOS;
  both sides send the same payloads, so they get the same replies: completion tokens from ``usage`` are compared);
  the engine at concurrency 8 with its default ``batch_size`` 16 (one ``asyncio.run`` and one HTTP client per
  chunk of 16 prompts) and with ``batch_size`` = all prompts (one chunk), and at concurrency 1 (sequential);
* option scoring: ``score_options`` on multiple-choice prompts (one token, ``top_logprobs``), replayed bare
  request by request (an item that fell back to sampling replays its follow-up requests in order).

Each measurement is repeated ``--repeats`` times, alternating the order (forward, then reversed, ...); the summary
reports medians. Client CPU seconds (``time.process_time``) are reported too: on a 2-core machine the client's CPU
competes with the server's threads.

Usage: python bench/bench_client.py [--prompts 64] [--max-tokens 32] [--repeats 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import time
from collections.abc import Callable

import httpx
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)
from _llama_server import LlamaServer, add_server_args, find_binary, smollm2_gguf
from _prompts import chat_prompts, survey_prompts

from culturealign.llm import make_engine
from culturealign.llm.base import GenParams


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests through and keeps (path, payload) of each, in the order they were sent."""

    def __init__(self, concurrency: int):
        self.limits = httpx.Limits(max_connections=concurrency)
        self.inner = httpx.AsyncHTTPTransport(limits=self.limits)
        self.sent: list[tuple[str, dict]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.path, json.loads(await request.aread())))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:  # the engine closes its client after each chunk: the next chunk needs a new pool
        await self.inner.aclose()
        self.inner = httpx.AsyncHTTPTransport(limits=self.limits)


def by_item(sent: list[tuple[str, dict]]) -> list[list[tuple[str, dict]]]:
    """Requests grouped per prompt (by its messages), in first-sent order; each group in its sending order."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    for path, payload in sent:
        groups.setdefault(json.dumps(payload.get("messages"), sort_keys=True), []).append((path, payload))
    return list(groups.values())


async def bare(url: str, items: list[list[tuple[str, dict]]], concurrency: int) -> tuple[int, int]:
    """Every item's requests in order, items concurrently, ``concurrency`` requests in flight at most.

    Same client settings as the engine (one AsyncClient, max_connections = concurrency, JSON header, 60 s timeout).
    Returns (requests, completion tokens from usage).
    """
    sem = asyncio.Semaphore(concurrency)
    tokens = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers={"Content-Type": "application/json"}, timeout=60.0, limits=limits) as client:

        async def one(reqs: list[tuple[str, dict]]) -> None:
            nonlocal tokens
            for path, payload in reqs:
                async with sem:
                    r = await client.post(f"{url}{path}", json=payload)
                r.raise_for_status()
                tokens += int((r.json().get("usage") or {}).get("completion_tokens") or 0)

        await asyncio.gather(*(one(reqs) for reqs in items))
    return sum(map(len, items)), tokens


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, completion tokens) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t0, time.process_time() - c0, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--score-prompts", type=int, default=64, help="option-scoring prompts (0: skip scoring)")
    ap.add_argument("--repeats", type=int, default=3)
    add_server_args(ap, parallel=8, concurrency=8)
    ap.add_argument("--smoke", action="store_true", help="seconds-long check: 6 prompts, 4 tokens, 1 repeat")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.max_tokens, args.score_prompts, args.repeats = 6, 4, 4, 1
    threads = args.threads or os.cpu_count() or 1
    binary = find_binary(args.server_bin)
    gguf = smollm2_gguf()
    conc = args.concurrency
    prompts = chat_prompts(args.prompts)
    params = GenParams(temperature=0, max_tokens=args.max_tokens)
    s_prompts, s_options = survey_prompts(args.score_prompts)
    summary: dict[str, object] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "model": f"smollm2 ({gguf.name})",
        "prompts": len(prompts),
        "max tokens": args.max_tokens,
        "repeats (median reported)": args.repeats,
    }

    with LlamaServer(binary, gguf, args.parallel, args.ctx_per_slot, threads) as srv:
        base = f"{srv.url}/v1"
        summary["llama-server"] = f"{srv.version()} (-np {args.parallel}, --threads {threads})"
        print(f"llama-server up at {srv.url}: {' '.join(srv.cmd[1:])}")

        def engine(concurrency: int, batch_size: int = 16, transport=None, **kw):
            return make_engine(
                "openai",
                base_url=base,
                model="x",
                concurrency=concurrency,
                batch_size=batch_size,
                transport=transport,
                **kw,
            )

        # untimed warm-up passes that record the engine's payloads
        rec = Recorder(conc)
        warm = engine(conc, transport=rec)
        warm.generate(prompts, params)
        gen_items = by_item(rec.sent)
        print(f"generation: engine sent {len(rec.sent)} requests for {len(prompts)} prompts "
              f"({warm.stats.completion_tokens} completion tokens)")  # fmt: skip
        score_items: list = []
        score_kw: dict = {}
        # the engine's defaults first; if they fail (llama-server caps a request's n at its -np), the sampling fallback
        # with as many samples as the server has slots
        for kw in ({}, {"samples_fallback": min(20, args.parallel)}) if s_prompts else ():
            rec = Recorder(conc)
            warm = engine(conc, transport=rec, **kw)
            label = f"scoring with {kw}" if kw else "scoring (engine defaults)"
            try:
                warm.score_options(s_prompts, s_options)
            except Exception as e:  # noqa: BLE001  report it, keep the other figures
                summary[label] = f"{type(e).__name__}: {str(e)[:300]}"
                print(f"{label} failed: {summary[label]}")
                continue
            score_items, score_kw = by_item(rec.sent), kw
            summary["scoring engine settings"] = kw or "defaults"
            summary["scoring prompts (distinct, computed once each)"] = f"{len(s_prompts)} ({len(score_items)})"
            summary["scoring: items by method"] = dict(warm.option_methods)
            summary["scoring: requests per distinct prompt"] = f"{len(rec.sent) / len(score_items):.2f}"
            print(f"{label}: engine sent {len(rec.sent)} requests for {len(s_prompts)} prompts; "
                  f"methods {dict(warm.option_methods)}")  # fmt: skip
            break

        def run_engine(concurrency: int, batch_size: int, scoring: bool = False) -> Callable[[], int]:
            def go() -> int:
                eng = engine(concurrency, batch_size, **(score_kw if scoring else {}))
                if scoring:
                    eng.score_options(s_prompts, s_options)
                else:
                    eng.generate(prompts, params)
                return eng.stats.completion_tokens

            return go

        def run_bare(items, concurrency: int) -> Callable[[], int]:
            return lambda: asyncio.run(bare(srv.url, items, concurrency))[1]

        n = len(prompts)
        cases: dict[str, Callable[[], int]] = {
            f"gen bare c{conc}": run_bare(gen_items, conc),
            f"gen engine c{conc} batch 16": run_engine(conc, 16),
            f"gen engine c{conc} batch {n}": run_engine(conc, n),
            "gen bare c1": run_bare(gen_items, 1),
            "gen engine c1": run_engine(1, 16),
        }
        if score_items:
            cases[f"score bare c{conc}"] = run_bare(score_items, conc)
            cases[f"score engine c{conc}"] = run_engine(conc, 16, scoring=True)
        results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in cases}
        for rep in range(args.repeats):
            order = list(cases) if rep % 2 == 0 else list(reversed(cases))
            for name in order:
                results[name].append(timed(cases[name]))
                wall, cpu, tok = results[name][-1]
                print(f"rep {rep + 1} {name:28s} {wall:7.2f} s wall, {cpu:5.2f} s client CPU, {tok} tokens")

    med = {k: statistics.median(w for w, _, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c, _ in v) for k, v in results.items()}
    toks = {k: v[0][2] for k, v in results.items()}
    for k in cases:
        rate = f"{toks[k] / med[k]:.1f} tok/s, " if k.startswith("gen") else ""
        reqs = len(prompts) if k.startswith("gen") else len(score_items)  # distinct prompts (the engine dedups)
        summary[f"{k} (s)"] = f"{med[k]:.2f} ({rate}{reqs / med[k]:.1f} prompts/s, client CPU {cpu[k]:.2f} s)"
    summary["same completion tokens engine vs bare (gen)"] = (
        toks[f"gen engine c{conc} batch 16"] == toks[f"gen bare c{conc}"]
    )
    speedup = med["gen engine c1"] / med[f"gen engine c{conc} batch 16"]
    summary[f"speed-up engine c{conc} / c1 (gen)"] = f"{speedup:.2f}"
    summary[f"speed-up bare c{conc} / c1 (gen)"] = f"{med['gen bare c1'] / med[f'gen bare c{conc}']:.2f}"

    def overhead(eng: str, ref: str) -> str:
        o = med[eng] / med[ref] - 1
        return f"{o:+.1%} ({'met' if o < 0.05 else 'missed'})"

    summary[f"overhead engine vs bare, gen c{conc} batch 16 (target < 5%)"] = overhead(
        f"gen engine c{conc} batch 16", f"gen bare c{conc}"
    )
    summary[f"overhead engine vs bare, gen c{conc} batch {n} (target < 5%)"] = overhead(
        f"gen engine c{conc} batch {n}", f"gen bare c{conc}"
    )
    summary["overhead engine vs bare, gen c1 (target < 5%)"] = overhead("gen engine c1", "gen bare c1")
    if score_items:
        summary[f"overhead engine vs bare, score c{conc} (target < 5%)"] = overhead(
            f"score engine c{conc}", f"score bare c{conc}"
        )
    print("\n== summary")
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
