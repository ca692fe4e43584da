"""Train the adapters of one variant of a recipe: one culture-joint adapter, or one per culture.

A finished adapter is reused only if it was trained from the same student (by content), LoRA and trainer settings
and training data: its ``fingerprint.json`` says so. Otherwise the run stops and names what changed; ``--from
train`` trains it again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.llm.identity import model_identity
from culturealign.llm.models import resolve_model
from culturealign.records import ChatSample, SoftLabel, to_dict
from culturealign.runs.store import check_fingerprint, fingerprint
from culturealign.train.distribution import train_distribution, write_soft_labels
from culturealign.train.lora import qlora_available, train_lora, write_training_data

log = logging.getLogger(__name__)


def train_variant(
    run_dir: Path, name: str, samples: list[ChatSample] | list[SoftLabel], student: str, train: Any, mode: str
) -> dict[str, Path]:
    """Train one adapter (joint) or one per culture (specific) under ``train/``; finished adapters are kept.

    ``student`` is the base model; ``train`` a recipe's train section (``lora``, ``sft``, and where the recipe has
    them ``soft`` and ``qlora``).
    """
    groups = {name: samples} if mode == "joint" else {}
    if mode == "specific":
        for s in samples:
            groups.setdefault(f"{name}-{s.meta['culture']}", []).append(s)
    elif mode != "joint":
        raise UserError(f"train.mode must be 'joint' or 'specific', got {mode!r}")
    base = resolve_model(student)
    qlora = getattr(train, "qlora", False)
    soft_settings = getattr(train, "soft", None)
    four_bit = qlora_available() if qlora == "auto" else bool(qlora)
    adapters = {}
    soft = bool(samples) and isinstance(samples[0], SoftLabel)  # soft labels: the distribution trainer
    for adapter_name, group in groups.items():
        folder = run_dir / "train" / adapter_name
        if soft:
            write_soft_labels(group, run_dir / "train" / "data", adapter_name)
        else:
            write_training_data(group, run_dir / "train" / "data", adapter_name)
        trainer = {"soft": soft_settings} if soft else {"sft": train.sft, "four_bit": four_bit}
        settings = {
            "student": model_identity(base),
            "lora": train.lora,
            **trainer,
            "data": fingerprint([to_dict(s) for s in group]),
        }
        stamp = folder / "fingerprint.json"
        if (folder / "adapter_config.json").is_file():
            fix = "rerun with --from train to train it again, or pass another --out"
            if not stamp.is_file():
                raise UserError(f"adapter {adapter_name} in {folder.parent} was made with unrecorded settings: {fix}")
            check_fingerprint(stamp, settings, f"adapter {adapter_name}", fix)
        else:
            log.info("training %s on %d examples", adapter_name, len(group))
            if soft:
                train_distribution(base, group, folder, train.lora, soft_settings)
            else:
                train_lora(base, group, folder, train.lora, train.sft, four_bit)
            check_fingerprint(stamp, settings, f"adapter {adapter_name}", "")
        adapters[adapter_name] = folder
    return adapters
