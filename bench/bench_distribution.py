"""Benchmark of the soft-label trainer: ``train_distribution`` against a plain PyTorch loop on the same batches.

Both sides train the same PEFT LoRA adapter (r 16, alpha 32, all linear layers: SurveyFit's default) on the embedded
model over the same soft labels (real culture-aware WVS prompts of the dev survey, human shares as targets when
``../shared/data/wvs7`` is there, else synthetic survey prompts), the same batches (grouped by culture), AdamW at the
same learning rate. The plain loop runs every full row (no shared prefix), reads the code distribution through the
same trie function and steps the optimizer by hand; ``train_distribution`` runs under `accelerate` with the shared
prefix computed once per batch. Reported: training-loop seconds (no load, no save), full-row tokens per second (the
same token count for both, so the ratio is the speed-up a user sees), the ratio, and peak RSS of the process.

Usage: python bench/bench_distribution.py [--items 96] [--batch-size 8] [--smoke]
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
WVS = ROOT.parent / "shared" / "data" / "wvs7"
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}


def soft_labels(n: int):
    """``n`` soft labels: culture-aware survey prompts for three cultures, human shares (or uniform) as targets."""
    from culturealign.cultures import parse_cultures
    from culturealign.prompting import persona_system, survey_messages
    from culturealign.records import SoftLabel, SurveyQuestion

    cultures = parse_cultures(["DEU", "CHN", "NGA"])
    if (WVS / "questions.jsonl").is_file():
        from culturealign.data.survey import load_survey

        survey = load_survey(WVS)
        pairs = [(c, q, survey.distributions[c.code][q.id]) for c in cultures for q in survey.answered(c.code)]
    else:
        qs = [SurveyQuestion(f"Q{i}", "T", f"How important is item {i} in your life?", {str(k): f"level {k}" for k in
              range(1, 5 + i % 6)}) for i in range(60)]  # fmt: skip
        pairs = [(c, q, {k: 1 / len(q.options) for k in q.options}) for c in cultures for q in qs]
    pairs = pairs[:: max(1, len(pairs) // n)][:n]
    return [SoftLabel(survey_messages(q, persona_system(c, "aware")), dict(t)) for c, q, t in pairs]


def plain_loop(path: str, items, batch_size: int, lr: float) -> tuple[float, int]:
    """The same batches, full rows, loss through the same trie reading, AdamW stepped by hand: (seconds, tokens)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from culturealign.llm.trie import option_log_probs, soft_cross_entropy
    from culturealign.train.distribution import _encode, prefix_batches

    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), LoraConfig(**LORA))
    model.train()
    encoded = _encode(tok, items)
    batches = prefix_batches(encoded, [it.messages[0]["content"] for it in items], batch_size, 0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    tokens = 0
    start = time.perf_counter()
    for batch in batches:
        rows = [(i, p, ids) for i in batch for p, ids in encoded[i]["rows"]]
        width = max(len(ids) for *_, ids in rows)
        input_ids = torch.tensor([[tok.pad_token_id] * (width - len(ids)) + ids for *_, ids in rows])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for *_, ids in rows])
        keep = max(len(p) for _, p, _ in rows) + 1
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                       logits_to_keep=keep).logits.float().log_softmax(-1)  # fmt: skip
        losses = []
        for j, (i, p, _) in enumerate(rows):
            nodes = {p[:k]: logits[j, keep - 1 - len(p) + k] for k in range(len(p) + 1)}
            log_q, _ = option_log_probs(encoded[i]["codes"], nodes)
            losses.append(soft_cross_entropy(list(encoded[i]["target"].values()), log_q))
        torch.stack(losses).mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        tokens += int(mask.sum())
    return time.perf_counter() - start, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--smoke", action="store_true", help="seconds-long check: 8 items, batch 4")
    args = ap.parse_args()
    if args.smoke:
        args.items, args.batch_size = 8, 4
    import torch

    from culturealign.llm.models import resolve_model
    from culturealign.train.distribution import train_distribution

    torch.set_num_threads(torch.get_num_threads())
    path = resolve_model("smollm2")
    items = soft_labels(args.items)
    lr = 5e-4
    plain_s, tokens = plain_loop(path, items, args.batch_size, lr)
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"num_train_epochs": 1, "per_device_train_batch_size": args.batch_size, "learning_rate": lr,
                    "warmup_steps": 0}  # fmt: skip
        train_distribution(path, items, Path(tmp) / "a", LORA, settings, progress=False)
        ours_s = json.loads((Path(tmp) / "a" / "train_info.json").read_text())["train_seconds"]
    ratio = (tokens / ours_s) / (tokens / plain_s)
    print(f"# bench_distribution {datetime.date.today()} on {cpu_model()}, torch threads {torch.get_num_threads()}")
    print(f"items {len(items)}, batch {args.batch_size}, full-row tokens {tokens}")
    print(f"plain PyTorch loop     {plain_s:8.1f} s  {tokens / plain_s:7.1f} tok/s")
    print(f"train_distribution     {ours_s:8.1f} s  {tokens / ours_s:7.1f} tok/s")
    print(f"ratio (ours / plain)   {ratio:.2f}   (target >= 0.90)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
