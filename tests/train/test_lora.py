"""LoRA training on the real embedded model: the adapter learns, the base does not move, DDP on 2 CPU processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from culturealign.llm.models import resolve_model
from culturealign.records import ChatSample
from culturealign.train.lora import read_training_data, train_lora, write_training_data

pytestmark = pytest.mark.slow
FAST = {"max_steps": 2, "per_device_train_batch_size": 4, "disable_tqdm": True, "learning_rate": 5e-3}


def _samples(n: int = 8) -> list[ChatSample]:
    return [
        ChatSample(
            [
                {"role": "system", "content": "You are a real person with a German cultural background."},
                {"role": "user", "content": f"Question {i}: is punctuality important?\n1. Yes\n2. No\nAnswer 1 or 2."},
                {"role": "assistant", "content": str(1 + i % 2)},
            ],
            {"culture": "DEU"},
        )
        for i in range(n)
    ]


def test_adapter_learns_and_base_stays(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_path = resolve_model("smollm2")
    result = train_lora(base_path, _samples(), tmp_path / "adapter", sft=FAST)
    assert result.steps == 2 and result.world_size == 1 and len(result.losses) == 2
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # lora_B starts at zero: it moved
    base = AutoModelForCausalLM.from_pretrained(base_path)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = PeftModel.from_pretrained(base, tmp_path / "adapter")
    for name, value in tuned.get_base_model().state_dict().items():
        key = name.replace(".base_layer", "")
        if key in reference:
            assert torch.equal(value, reference[key]), name


def test_training_data_round_trip(tmp_path):
    path = write_training_data(_samples(3), tmp_path, "joint")
    back = read_training_data(path)
    assert [s.messages for s in back] == [s.messages for s in _samples(3)]
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "joint.hf"))
    assert ds.num_rows == 3 and ds[0]["completion"][0]["role"] == "assistant"


def test_two_cpu_processes_under_accelerate(tmp_path):
    if shutil.which("accelerate") is None and not os.path.exists(
        os.path.join(os.path.dirname(sys.executable), "accelerate")
    ):
        pytest.fail("accelerate CLI not installed")
    data = write_training_data(_samples(8), tmp_path, "joint")
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "culturealign.train", "--data", str(data), "--out", str(tmp_path / "adapter"),
        "--sft", json.dumps({**FAST, "per_device_train_batch_size": 2}),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "adapter" / "train_info.json").read_text())
    assert info["world_size"] == 2  # `--cpu --num_processes 2` silently runs one process: check what we got
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_merged_model_gives_the_adapter_logits(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from culturealign.train import merge_adapter

    base_path = resolve_model("smollm2")
    train_lora(base_path, _samples(4), tmp_path / "adapter", sft={**FAST, "max_steps": 1})
    merge_adapter(base_path, tmp_path / "adapter", tmp_path / "merged")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.inference_mode():
        base = AutoModelForCausalLM.from_pretrained(base_path)(input_ids=ids).logits
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), tmp_path / "adapter")
        expected = peft_model(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(input_ids=ids).logits
    moved = (expected - base).abs().max().item()  # the one step really trained (warm-up no longer zeroes it)
    off = (merged - expected).abs().max().item()  # fp32 rounding of W + BA against W x + B(A x)
    print(f"adapter moved the logits by {moved:.4f}; merged differs by {off:.4f}")
    assert moved > 0.05 and off < moved / 10


def test_warmup_ratio_rounds_down_so_a_one_step_run_still_learns():
    from types import SimpleNamespace

    from culturealign.train.lora import warmup_steps

    def cfg(**kw):
        base = dict(
            warmup_steps=0.1,
            per_device_train_batch_size=8,
            gradient_accumulation_steps=1,
            max_steps=-1,
            num_train_epochs=1,
        )
        return SimpleNamespace(**{**base, **kw})

    assert warmup_steps(cfg(), 5) == 0  # 1 step: transformers' ceil(0.1) = 1 would spend it at lr 0
    assert warmup_steps(cfg(), 800) == 10  # 100 steps: the paper's 10%
    assert warmup_steps(cfg(num_train_epochs=3), 13, world_size=1) == 0  # 2 steps x 3 epochs = 6
    assert warmup_steps(cfg(per_device_train_batch_size=4, num_train_epochs=3), 130) == 9  # 33 x 3 = 99 steps
    assert warmup_steps(cfg(gradient_accumulation_steps=2), 320, world_size=2) == 1  # 20 batches / 2 = 10 steps
    assert warmup_steps(cfg(max_steps=50), 8) == 5
    assert warmup_steps(cfg(warmup_steps=7), 8) == 7  # a step count passes through


def test_cpu_loss_path_equals_trl_fused_loss(tmp_path):
    """The CPU trainer's plain cross-entropy gives TRL's fused-head loss, entropy and accuracy on the same batch."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from culturealign.train.lora import LORA_DEFAULTS, _trainer_class, to_dataset

    path = resolve_model("smollm2")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=4)
    trainer = _trainer_class(SFTTrainer)(
        model=model,
        args=args,
        train_dataset=to_dataset(_samples(4), tok),
        processing_class=tok,
        peft_config=LoraConfig(**LORA_DEFAULTS),
    )
    assert trainer._plain_loss()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    n_items = int((batch["labels"][:, 1:] != -100).sum())
    assert n_items > 0
    results = {}
    for name, fn in [("plain", trainer.compute_loss), ("fused", super(type(trainer), trainer).compute_loss)]:
        with torch.no_grad():
            loss = fn(trainer.model, dict(batch), num_items_in_batch=n_items)
        # ours keeps its own metrics; TRL's private ones are read here only as the reference
        m = trainer.cpu_metrics["train"] if name == "plain" else trainer._metrics["train"]
        results[name] = (float(loss), m["entropy"][-1], m["mean_token_accuracy"][-1])
    trainer._metrics["train"].clear()
    trainer.log({"loss": 1.0})  # our metrics reach the log history the way TRL's do
    assert trainer.state.log_history[-1]["mean_token_accuracy"] == pytest.approx(results["plain"][2])
    assert trainer.cpu_metrics["train"] == {}
    (pl, pe, pa), (fl, fe, fa) = results["plain"], results["fused"]
    assert pl == pytest.approx(fl, rel=1e-4) and pl > 0
    assert pe == pytest.approx(fe, rel=1e-3) and pe > 0
    assert pa == pytest.approx(fa, abs=1e-6)
