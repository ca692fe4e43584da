"""Entry point that runs unchanged in one process or under ``accelerate launch`` (DDP/FSDP/DeepSpeed):

accelerate launch -m culturealign.train --model smollm2 --data train/data/joint.jsonl --out train/joint
accelerate launch -m culturealign.train --target distribution --data train/data/surveyfit.jsonl --out train/x
"""

from __future__ import annotations

import argparse
import json
import sys

from culturealign.errors import UserError


def main(argv: list[str] | None = None) -> None:
    from culturealign.llm.models import resolve_model
    from culturealign.train.lora import read_training_data, train_lora

    p = argparse.ArgumentParser(prog="python -m culturealign.train", description=__doc__)
    p.add_argument("--model", default="smollm2", help="base model: smollm2, a folder, a .gguf file or a hub id")
    p.add_argument("--data", required=True, help="chat JSONL written by a recipe (one {'messages': [...]} a line)")
    p.add_argument("--out", required=True, help="folder for the PEFT adapter")
    p.add_argument("--lora", default="{}", help="JSON of peft.LoraConfig fields")
    p.add_argument("--sft", default="{}", help="JSON of trl.SFTConfig fields (target sft)")
    p.add_argument("--soft", default="{}", help="JSON of the soft-label trainer's settings (target distribution)")
    p.add_argument("--target", default="sft", choices=["sft", "distribution"], help="chat replies or soft labels")
    args = p.parse_args(argv)
    try:
        from pathlib import Path

        settings = {}
        for flag in ("lora", "sft", "soft"):
            try:
                settings[flag] = json.loads(getattr(args, flag))
            except json.JSONDecodeError as e:
                raise UserError(f"--{flag} is not JSON ({e.msg}): pass e.g. --{flag} '{{\"r\": 8}}'") from e
            if not isinstance(settings[flag], dict):
                raise UserError(f"--{flag} must be a JSON object of settings, e.g. --{flag} '{{\"r\": 8}}'")
        if args.target == "distribution":
            from culturealign.train.distribution import read_soft_labels, train_distribution

            items = read_soft_labels(Path(args.data))
            result = train_distribution(resolve_model(args.model), items, args.out, settings["lora"], settings["soft"])
        else:
            result = train_lora(
                resolve_model(args.model),
                read_training_data(Path(args.data)),
                args.out,
                settings["lora"],
                settings["sft"],
            )
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"adapter": str(result.adapter), "world_size": result.world_size, "steps": result.steps}))


if __name__ == "__main__":
    main()
