"""The accelerate configs in configs/accelerate: each parses with accelerate's own loader and launch checks, and the
CPU one really starts two processes (a MULTI_CPU config file would start one: the trap it exists to avoid)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "accelerate"
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
EXPECTED = {  # file -> (distributed_type, which launcher accelerate picks)
    "cpu_2proc.yaml": ("MULTI_GPU", "multi_gpu"),
    "ddp.yaml": ("MULTI_GPU", "multi_gpu"),
    "fsdp.yaml": ("FSDP", "use_fsdp"),
    "deepspeed_zero2.yaml": ("DEEPSPEED", "use_deepspeed"),
}
# Records the rank and world size torchrun gives each process (none under accelerate's simple launcher).
PROBE = (
    "import os, sys; open(os.path.join(sys.argv[1], str(os.getpid())), 'w').write(os.environ.get('WORLD_SIZE', '1'))"
)


def test_every_config_is_listed_here():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_with_accelerates_own_loader(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    config = load_config_from_file(str(CONFIGS / name))
    assert isinstance(config, ClusterConfig)
    kind, launcher = EXPECTED[name]
    assert config.distributed_type == kind and config.num_machines == 1 and config.num_processes == 2
    assert config.mixed_precision == "no"  # precision comes from the training settings (sft.bf16), not the launch
    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / name), "train.py"])
    args, _, _ = _validate_launch_command(args)  # what `accelerate launch` checks and derives before starting
    assert getattr(args, launcher) and args.num_processes == 2 and not args.cpu


def _launch(config: Path, tmp_path: Path) -> list[str]:
    """World sizes seen by the processes one `accelerate launch --config_file config` starts."""
    out = tmp_path / config.stem
    out.mkdir()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [ACCELERATE, "launch", "--config_file", str(config), "-m", "tests_probe", str(out)]
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "tests_probe.py").write_text(PROBE)
    env["PYTHONPATH"] = os.pathsep.join([str(probe_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return sorted(p.read_text() for p in out.iterdir())


def test_cpu_config_starts_two_processes_and_a_multi_cpu_config_one(tmp_path):
    assert _launch(CONFIGS / "cpu_2proc.yaml", tmp_path) == ["2", "2"]
    multi_cpu = tmp_path / "multi_cpu.yaml"
    text = (
        (CONFIGS / "cpu_2proc.yaml").read_text().replace("distributed_type: MULTI_GPU", "distributed_type: MULTI_CPU")
    )
    multi_cpu.write_text(text)
    assert _launch(multi_cpu, tmp_path) == ["1"]  # why cpu_2proc.yaml says MULTI_GPU


@pytest.mark.slow
def test_training_under_the_cpu_config_runs_on_two_processes(tmp_path):
    """The README's multi-process command with the config file: both ranks train; the adapter holds no pickle."""
    chat = [
        {"role": "system", "content": "You are a person with a German cultural background."},
        {"role": "user", "content": "Is punctuality important?\n1. Yes\n2. No"},
    ]
    rows = [{"messages": [*chat, {"role": "assistant", "content": str(1 + i % 2)}]} for i in range(8)]
    (tmp_path / "joint.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sft = {"max_steps": 2, "per_device_train_batch_size": 2, "disable_tqdm": True}
    cmd = [
        ACCELERATE, "launch", "--config_file", str(CONFIGS / "cpu_2proc.yaml"), "-m", "culturealign.train",
        "--data", str(tmp_path / "joint.jsonl"), "--out", str(tmp_path / "adapter"), "--sft", json.dumps(sft),
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    adapter = tmp_path / "adapter"
    assert json.loads((adapter / "train_info.json").read_text())["world_size"] == 2
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "training_args.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))], names
