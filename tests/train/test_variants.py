"""Adapters are reused only when trained from the same student, settings and data (no real training here)."""

from __future__ import annotations

import json

import pytest

from culturealign.errors import UserError
from culturealign.recipes.common import Train
from culturealign.records import ChatSample
from culturealign.train import variants

TRAINED: list[str] = []


def _fake_train(base, samples, folder, lora, sft, four_bit=False):
    TRAINED.append(folder.name)
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", **lora}))
    (folder / "adapter_model.safetensors").write_bytes(b"w" * 32)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("CULTUREALIGN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(variants, "train_lora", _fake_train)
    TRAINED.clear()
    student = tmp_path / "student"
    student.mkdir()
    (student / "config.json").write_text('{"model_type": "llama"}')
    (student / "model.safetensors").write_bytes(b"s" * 64)
    cfg = Train(lora={"r": 8}, sft={"learning_rate": 1e-4})
    samples = [ChatSample([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "1"}],
                          {"culture": "DEU"}) for i in range(3)]  # fmt: skip
    return tmp_path / "run", cfg, samples, student


def test_an_adapter_of_the_same_settings_and_data_is_reused(setup):
    run, cfg, samples, student = setup
    variants.train_variant(run, "joint", samples, str(student), cfg, "joint")
    variants.train_variant(run, "joint", samples, str(student), cfg, "joint")
    assert TRAINED == ["joint"]


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda cfg, samples, student: cfg.lora.update(r=16), "lora"),
        (lambda cfg, samples, student: cfg.sft.update(learning_rate=1e-3), "sft"),
        (lambda cfg, samples, student: samples.pop(), "data"),
        (lambda cfg, samples, student: (student / "model.safetensors").write_bytes(b"t" * 64), "student"),
    ],
)
def test_a_changed_setting_data_or_student_is_refused_naming_it(setup, change, key):
    run, cfg, samples, student = setup
    variants.train_variant(run, "joint", samples, str(student), cfg, "joint")
    change(cfg, samples, student)
    with pytest.raises(UserError, match=rf"adapter joint in .* other settings \({key}\): rerun with --from train"):
        variants.train_variant(run, "joint", samples, str(student), cfg, "joint")
    assert TRAINED == ["joint"]


def test_an_adapter_without_a_fingerprint_is_not_trusted(setup):
    run, cfg, samples, student = setup
    variants.train_variant(run, "joint", samples, str(student), cfg, "joint")
    (run / "train" / "joint" / "fingerprint.json").unlink()  # as an adapter trained before fingerprints
    with pytest.raises(UserError, match="unrecorded settings: rerun with --from train"):
        variants.train_variant(run, "joint", samples, str(student), cfg, "joint")
