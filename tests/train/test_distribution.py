"""The soft-label trainer on the real embedded model: the shared-prefix batch gives the full rows' loss and
gradients, the adapter learns, and two CPU processes under ``accelerate launch`` both train."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from culturealign.llm.models import resolve_model
from culturealign.records import SoftLabel
from culturealign.train.distribution import _encode, batch_loss, train_distribution, write_soft_labels

pytestmark = pytest.mark.slow
PERSONA = "You are a real person with a German cultural background. Answer the survey question as such a person."


def _items(n: int = 8) -> list[SoftLabel]:
    return [
        SoftLabel(
            [
                {"role": "system", "content": PERSONA},
                {"role": "user", "content": f"Question {i}: is work important?\n1. Very\n2. Not\n10. Ten\nAnswer."},
            ],
            {"1": 0.1, "2": 0.8, "10": 0.1},
        )
        for i in range(n)
    ]


def test_shared_prefix_gives_the_full_rows_loss_and_gradients():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model("smollm2")
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path), lora)
    encoded = _encode(tok, _items(4))
    assert all(e["rows"][0][0] == (33,) for e in encoded)  # "10" is two tokens: one probe row through "1"
    grads = []
    for share in (False, True):
        model.zero_grad()
        loss, _ = batch_loss(model, tok.pad_token_id, encoded, share)
        loss.backward()
        grads.append((float(loss.detach()), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-3)


def test_adapter_learns_the_target_and_the_base_stays(tmp_path):
    from safetensors.torch import load_file

    path = resolve_model("smollm2")
    before = load_file(f"{path}/model.safetensors")["model.layers.0.self_attn.q_proj.weight"].clone()
    settings = {"max_steps": 4, "learning_rate": 5e-3, "per_device_train_batch_size": 4}
    result = train_distribution(path, _items(8), tmp_path / "a", {"r": 8}, settings, progress=False)
    assert result.losses[-1] < result.losses[0]
    weights = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    assert any("lora_B" in k and float(v.abs().sum()) > 0 for k, v in weights.items())  # B starts at zero
    assert torch.equal(load_file(f"{path}/model.safetensors")["model.layers.0.self_attn.q_proj.weight"], before)
    assert json.loads((tmp_path / "a" / "train_info.json").read_text())["target"] == "distribution"


def test_two_cpu_processes_under_accelerate(tmp_path):
    data = write_soft_labels(_items(8), tmp_path, "soft")
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "culturealign.train", "--target", "distribution", "--data", str(data), "--out", str(tmp_path / "a"),
        "--soft", json.dumps({"max_steps": 2, "per_device_train_batch_size": 2}),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "CULTUREALIGN_NO_PROGRESS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "a" / "train_info.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == 2


def test_culturespa_variant_trains_soft_labels_with_the_distribution_trainer(tmp_path):
    from culturealign.recipes.culturespa import SpaTrain
    from culturealign.train.variants import train_variant

    train = SpaTrain(lora={"r": 4}, sft={}, soft={"max_steps": 1, "per_device_train_batch_size": 4})
    adapters = train_variant(tmp_path, "joint", _items(4), "smollm2", train, "joint")
    info = json.loads((adapters["joint"] / "train_info.json").read_text())
    assert info["target"] == "distribution" and info["steps"] == 1
    assert (tmp_path / "train" / "data" / "joint.jsonl").is_file()  # the soft labels, written for reuse
