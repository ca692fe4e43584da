"""Benchmark of option scoring, the hot path of every survey evaluation, on the embedded model ``smollm2``.

It measures, in one run and one process (so the ratios are comparable on a shared, noisy machine):

1. the full dev survey: every answered WVS question of every culture, culture-aware prompts, through
   ``WVS(...).run`` on an engine without cache; wall time, prompts/s, tokens computed (prefix reuse) against
   the naive count (every prompt computed whole);
2. the forward-pass limit: a plain batched forward over slices of real prompt ids as long as the scorer's
   suffixes; the scorer's tokens/s over the plain forward's says how much of the machine the scorer uses;
3. the paper scripts' way: sample a short reply per prompt and parse the leading option code with a regex;
   the scorer's prompts/s over that says what scoring option probabilities costs (or saves) per prompt;
4. with ``--other-dtype bfloat16``: the same full survey in the other dtype, its time and the four metrics'
   differences from the first (target: within 0.005);
5. with ``--peer URL``: the strongest CPU peer, llama.cpp's ``llama-server`` (``bench/build_llama_server.sh``)
   on the same GGUF file, scoring a seeded sample of the same prompts through the ``openai`` engine (first-token
   top log-probs, sampling where an option is missing from them; counted): prompts/s and the ratio.

Usage: python bench/bench_option_scoring.py [--survey ../shared/data/wvs7] [--cultures ALL|DEU,CHN] [--limit N]
       [--other-dtype bfloat16] [--peer http://127.0.0.1:8080/v1 --peer-sample 256]
"""

from __future__ import annotations

import argparse
import datetime
import random
import re
import time
from pathlib import Path

import torch
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)

from culturealign.cultures import Culture, get_culture
from culturealign.data.survey import Survey, load_survey
from culturealign.evaluate.wvs import WVS, select_questions
from culturealign.llm.base import GenParams
from culturealign.llm.local import LocalEngine
from culturealign.prompting import persona_system, survey_messages

REPO = Path(__file__).resolve().parents[1]
LEADING_CODE = re.compile(r"^\W*(\d+)")  # "3", "3. Rather important", "**3**" -> "3"


def verdict(value: float, target: float) -> str:
    return "met" if value >= target else "missed"


def lcp(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def suffix_lengths(ids_by_culture: dict[str, list[list[int]]]) -> list[int]:
    """Tokens left per prompt once the culture's shared prefix is reused (as the scorer groups them)."""
    out = []
    for ids in filter(None, ids_by_culture.values()):
        shared = min(min(lcp(ids[0], x) for x in ids), min(map(len, ids)) - 1)
        out += [len(x) - shared for x in ids]
    return out


def forward_limit(engine: LocalEngine, prompts: list[list[int]], lens: list[int], target: int, max_batches: int):
    """Plain batched forwards (last-position logits) over ~``target`` tokens; returns (tokens, seconds)."""
    model, tok = engine.load()
    rng = random.Random(0)
    target = min(target, max(8, max_batches) * engine.batch_size * sum(lens) // len(lens))
    sample: list[int] = []
    while sum(sample) < target:
        sample.append(rng.choice(lens))
    sample.sort()  # similar lengths share a batch, as the scorer sorts its rows
    tokens, seconds = 0, 0.0
    for b in range(0, len(sample), engine.batch_size):
        seqs = []
        for n in sample[b : b + engine.batch_size]:
            src = rng.choice([p for p in prompts if len(p) >= n])
            start = rng.randrange(len(src) - n + 1)
            seqs.append(src[start : start + n])
        width = max(map(len, seqs))
        ids = torch.tensor([[tok.pad_token_id] * (width - len(s)) + s for s in seqs], device=model.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions from the mask
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
        seconds += time.perf_counter() - t0
        tokens += sum(map(len, seqs))
    return tokens, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--survey", default=str(REPO / ".." / "shared" / "data" / "wvs7"))
    ap.add_argument("--cultures", default="ALL", help="ALL (every country in the survey) or e.g. DEU,CHN")
    ap.add_argument("--limit", type=int, default=None, help="questions per culture (default: all answered)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--forward-batches", type=int, default=32, help="cap of the plain-forward sample (>= 8)")
    ap.add_argument("--gen-sample", type=int, default=48, help="prompts for the generate-and-parse baseline")
    ap.add_argument("--other-dtype", default=None, choices=["float32", "bfloat16"], help="also score in this dtype")
    ap.add_argument("--peer", default=None, help="a llama-server's /v1 URL serving the same GGUF file")
    ap.add_argument("--peer-sample", type=int, default=256, help="prompts the peer scores (seeded sample)")
    ap.add_argument("--peer-concurrency", type=int, default=8, help="concurrent requests to the peer")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    survey: Survey = load_survey(args.survey)
    codes = survey.countries if args.cultures.upper() == "ALL" else args.cultures.split(",")
    cultures: list[Culture] = [get_culture(c) for c in codes]
    engine = LocalEngine(model="smollm2", dtype=args.dtype, cache=None, batch_size=args.batch_size)
    t0 = time.perf_counter()
    engine.load()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s ({args.dtype}, {torch.get_num_threads()} threads)")

    jobs = []  # (question, messages), in WVS.run's order
    ids_by_culture: dict[str, list[list[int]]] = {}
    for c in cultures:
        system = persona_system(c, "aware")
        mine = [(q, survey_messages(q, system)) for q in select_questions(survey, c.code, None, args.limit)]
        jobs += mine
        ids_by_culture[c.code] = [engine.render(m) for _, m in mine]
    all_ids = [x for ids in ids_by_culture.values() for x in ids]
    naive = sum(map(len, all_ids))
    forward_limit(engine, all_ids, [16] * 4, 32, 1)  # warm-up, untimed

    print(f"\n== 1. full survey: {len(cultures)} cultures, {len(jobs)} prompts, culture-aware, no cache")
    engine.stats.prompt_tokens = 0
    t0 = time.perf_counter()
    result = WVS(survey, cultures, "aware", limit=args.limit).run(engine, progress=False)
    score_s = time.perf_counter() - t0
    computed = engine.stats.prompt_tokens
    score_pps, score_tps = len(result.items) / score_s, computed / score_s
    print(
        f"{score_s:.1f} s, {score_pps:.2f} prompts/s; tokens computed {computed:,} of {naive:,} naive "
        f"({1 - computed / naive:.0%} saved by prefix reuse)"
    )

    print("\n== 2. plain batched forward over suffix-length slices of real prompts")
    lens = suffix_lengths(ids_by_culture)
    fwd_tokens, fwd_s = forward_limit(engine, all_ids, lens, computed, args.forward_batches)
    fwd_tps = fwd_tokens / fwd_s
    print(
        f"forward: {fwd_tokens:,} tokens in {fwd_s:.1f} s = {fwd_tps:.0f} tok/s (mean suffix "
        f"{sum(lens) / len(lens):.0f} tokens); scorer: {score_tps:.0f} tok/s; ratio {score_tps / fwd_tps:.2f}"
    )

    print("\n== 3. generate-and-parse baseline (temperature 0.6, 8 new tokens)")
    sample = random.Random(0).sample(jobs, min(args.gen_sample, len(jobs)))
    engine.generate([sample[0][1]], GenParams(max_tokens=1))  # warm-up, untimed
    t0 = time.perf_counter()
    replies = engine.generate([m for _, m in sample], GenParams(temperature=0.6, max_tokens=8, seed=0))
    gen_s = time.perf_counter() - t0
    parsed = [LEADING_CODE.match(r[0]) for r in replies]
    bad = [
        r[0] for m, r, (q, _) in zip(parsed, replies, sample, strict=True) if m is None or m.group(1) not in q.codes
    ]
    failed = len(bad)
    gen_pps = len(sample) / gen_s
    print(
        f"{len(sample)} prompts in {gen_s:.1f} s = {gen_pps:.2f} prompts/s ({gen_s / len(sample):.2f} s each); "
        f"{failed} of {len(sample)} replies without a valid leading code, e.g. {bad[:3]}"
    )
    print(f"scorer / generate: {score_pps / gen_pps:.1f}x prompts/s")

    other: dict[str, str] = {}
    if args.other_dtype:
        print(f"\n== 4. full survey again in {args.other_dtype}")
        engine.unload()
        second = LocalEngine(model="smollm2", dtype=args.other_dtype, cache=None, batch_size=args.batch_size)
        second.load()
        forward_limit(second, all_ids, [16] * 4, 32, 1)  # warm-up, untimed
        t0 = time.perf_counter()
        result2 = WVS(survey, cultures, "aware", limit=args.limit).run(second, progress=False)
        other_s = time.perf_counter() - t0
        diffs = {
            k: abs(result2.metrics["overall"][k] - v) for k, v in result.metrics["overall"].items() if k != "n_items"
        }
        worst = max(diffs[k] for k in ("culturespa", "one_minus_jsd", "accuracy", "wasserstein"))
        print(f"{other_s:.1f} s ({len(result2.items) / other_s:.2f} prompts/s); metric differences {diffs}")
        other = {
            f"{args.other_dtype} scorer seconds": f"{other_s:.1f}",
            f"{args.other_dtype} scorer prompts/s": f"{len(result2.items) / other_s:.2f}",
            f"{args.other_dtype} / {args.dtype} seconds": f"{other_s / score_s:.2f}",
            f"{args.other_dtype} vs {args.dtype}: largest difference of the four metrics (target <= 0.005)": (
                f"{worst:.4f} ({'met' if worst <= 0.005 else 'missed'})"
            ),
        }
        second.unload()

    peer: dict[str, str] = {}
    if args.peer:
        from culturealign.llm.openai import OpenAIEngine

        print(f"\n== 5. peer: llama-server at {args.peer}, {args.peer_sample} of the same prompts")
        picked = random.Random(1).sample(jobs, min(args.peer_sample, len(jobs)))
        server = OpenAIEngine(base_url=args.peer, model="smollm2", concurrency=args.peer_concurrency, cache=None)
        server.score_options([picked[0][1]], [picked[0][0].codes])  # warm-up, untimed
        server.option_methods.clear()
        t0 = time.perf_counter()
        server.score_options([m for _, m in picked], [q.codes for q, _ in picked])
        peer_s = time.perf_counter() - t0
        peer_pps = len(picked) / peer_s
        ratio = score_pps / peer_pps
        methods = dict(server.option_methods)
        print(f"{len(picked)} prompts in {peer_s:.1f} s = {peer_pps:.2f} prompts/s; paths {methods}")
        peer = {
            "peer": f"llama-server (same GGUF), openai engine, concurrency {args.peer_concurrency}",
            "peer prompts scored": len(picked),
            "peer prompts/s": f"{peer_pps:.2f}",
            "peer option paths": methods,
            "scorer/peer prompts/s (target >= 2.5)": f"{ratio:.1f} ({verdict(ratio, 2.5)})",
        }

    summary = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "torch threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "model": "smollm2 (SmolLM2-135M-Instruct, Q4_1 GGUF dequantized)",
        "dtype": args.dtype,
        "batch size": args.batch_size,
        "cultures": len(cultures),
        "questions per culture": args.limit or "all answered",
        "prompts scored": len(result.items),
        "scorer seconds": f"{score_s:.1f}",
        "scorer prompts/s": f"{score_pps:.2f}",
        "tokens computed": computed,
        "tokens naive (full prompts)": naive,
        "tokens saved by prefix reuse": f"{1 - computed / naive:.1%}",
        "mean suffix tokens (after the shared prefix)": f"{sum(lens) / len(lens):.0f}",
        "plain forward tok/s": f"{fwd_tps:.0f}",
        "scorer tok/s": f"{score_tps:.0f}",
        "scorer/forward tok/s (target >= 0.90)": f"{score_tps / fwd_tps:.2f} ({verdict(score_tps / fwd_tps, 0.9)})",
        "generate prompts sampled": len(sample),
        "generate prompts/s": f"{gen_pps:.2f}",
        "scorer/generate prompts/s (target >= 3)": f"{score_pps / gen_pps:.1f} ({verdict(score_pps / gen_pps, 3)})",
        "generated replies failing to parse": f"{failed}/{len(sample)}",
        **{f"WVS aware {k} (overall)": f"{v:.3f}" for k, v in result.metrics["overall"].items() if k != "n_items"},
        **other,
        **peer,
    }
    print("\n== summary")
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
