"""General-ability check: did tuning leave the model's behaviour on culture-neutral requests intact?

Two numbers on data written for this project (``resources/general/``): the mean KL divergence
KL(base || tuned) of the next-token distribution at the start of the reply over >=100 generic prompts, and,
on a general multiple-choice set, how often base and tuned pick the same option (plus each one's accuracy).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from culturealign.llm.local import LocalEngine
from culturealign.records import Messages

MC_INSTRUCTION = "Answer with the number of the correct option only."


def _resource_jsonl(name: str) -> list[dict]:
    text = resources.files("culturealign.resources").joinpath(f"general/{name}").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def general_prompts() -> list[Messages]:
    return [[{"role": "user", "content": r["prompt"]}] for r in _resource_jsonl("prompts.jsonl")]


def mc_items() -> list[dict]:
    return _resource_jsonl("mc.jsonl")


def mc_messages(item: dict) -> Messages:
    options = "\n".join(f"{k}. {v}" for k, v in item["options"].items())
    return [{"role": "user", "content": f"{item['question']}\n{options}\n{MC_INSTRUCTION}"}]


def general_check(
    base: LocalEngine, tuned: LocalEngine, limit: int | None = None, out: str | Path | None = None
) -> dict[str, Any]:
    """Mean next-token KL(base || tuned) on generic prompts, and multiple-choice agreement and accuracies.

    With ``out`` (a folder) the result is written to ``out/metrics.json`` with what it was computed from (both
    engines' identities, the adapter's file time included, and ``limit``), and read back instead of recomputed
    when those match: the KL needs whole next-token distributions, which the call cache does not hold, and a
    rerun of a finished recipe must not load and run both models again.
    """
    from culturealign.runs import write_json

    inputs = {"base": base.identity(), "tuned": tuned.identity(), "limit": limit}
    path = Path(out) / "metrics.json" if out is not None else None
    if path is not None and path.exists():
        try:
            previous = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            previous = {}
        if isinstance(previous, dict) and previous.pop("inputs", None) == json.loads(json.dumps(inputs)):
            return previous
    result = _general_check(base, tuned, limit)
    if path is not None:
        write_json(path, {**result, "inputs": inputs})
    return result


def _general_check(base: LocalEngine, tuned: LocalEngine, limit: int | None) -> dict[str, Any]:
    import torch

    prompts = general_prompts()[:limit]
    kls = []
    for i in range(0, len(prompts), base.batch_size):
        chunk = prompts[i : i + base.batch_size]
        for p, q in zip(base.next_token_logprobs_of(chunk), tuned.next_token_logprobs_of(chunk), strict=True):
            kls.append(float(torch.sum(p.exp() * (p - q))))
    items = mc_items()[:limit]
    msgs = [mc_messages(it) for it in items]
    codes = [list(it["options"]) for it in items]
    a, b = base.score_options(msgs, codes), tuned.score_options(msgs, codes)
    truth = [it["answer"] for it in items]
    return {
        "general_prompts": len(prompts),
        "mean_kl_base_tuned": sum(kls) / len(kls),
        "max_kl_base_tuned": max(kls),
        "mc_items": len(items),
        "mc_agreement": sum(x.choice == y.choice for x, y in zip(a, b, strict=True)) / len(items),
        "mc_accuracy_base": sum(x.choice == t for x, t in zip(a, truth, strict=True)) / len(items),
        "mc_accuracy_tuned": sum(y.choice == t for y, t in zip(b, truth, strict=True)) / len(items),
    }
