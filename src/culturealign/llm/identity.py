"""What a model *is*, for cache keys: digests of its weight and config files, never its name or path.

A cache keyed by a model's path returns the old answers when the folder is overwritten (a second ``merge --out``
into the same folder, an adapter retrained in place, an edited ``adapter_config.json``). Keys here are SHA-256
digests of the files that decide the model's outputs. Hashing a 540 MB model takes about half a second, so each
file's digest is computed once and remembered in ``<home>/digests.json`` under the file's path, size, mtime,
ctime and inode: any write to the file (or ``os.utime`` putting an old mtime back) changes its ctime, so a
remembered digest is never reused for other contents.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.textfile import atomic_write_text

# Files of a model or adapter folder that change what it answers; training logs, READMEs and optimizer states do not.
MODEL_FILES = {
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
NOT_WEIGHTS = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"}

_lock = threading.Lock()
_memos: dict[Path, dict[str, str]] = {}  # digests.json of each home this process used, read once


def _memo_path() -> Path:
    from culturealign.llm.models import home

    return home() / "digests.json"


def _load_memo() -> dict[str, str]:
    path = _memo_path()
    if path not in _memos:
        try:
            loaded = json.loads(path.read_text("utf-8"))
            _memos[path] = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):  # none yet, or damaged: digests are computed again
            _memos[path] = {}
    return _memos[path]


def _save_memo(memo: dict[str, str]) -> None:
    try:
        atomic_write_text(_memo_path(), json.dumps(memo, sort_keys=True))
    except UserError:  # a read-only or full home: the digest is recomputed next time, nothing is wrong
        pass


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, remembered under its stat so that an unchanged file is hashed once."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as e:
        raise UserError(f"cannot read model file {path}: {e.strerror or e}") from e
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    with _lock:
        memo = _load_memo()
        if key in memo:
            return memo[key]
    try:
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise UserError(f"cannot read model file {path}: {e.strerror or e}") from e
    with _lock:
        memo = _load_memo()
        memo[key] = digest
        _save_memo(memo)
    return digest


def decisive_files(folder: Path) -> list[Path]:
    """The files of a model or adapter folder that decide its outputs (config, tokenizer, weights)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.name in MODEL_FILES or (p.suffix in WEIGHT_SUFFIXES and p.name not in NOT_WEIGHTS))
    )


def folder_digest(folder: str | Path) -> dict[str, Any]:
    """``{file name: sha256}`` of a model or adapter folder's decisive files."""
    folder = Path(folder).expanduser()
    files = decisive_files(folder)
    if not files:
        raise UserError(f"{folder} holds no model files (config, tokenizer or weights); pass a saved model folder")
    return {p.name: file_digest(p) for p in files}


def model_identity(path_or_id: str) -> dict[str, Any]:
    """A local folder or file by content; a hub id by the content of its local snapshot when there is one.

    A hub id not yet downloaded is named with its revision ``main``: transformers downloads it on load, and the
    next engine built on it is keyed by content (its first answers are then asked again once).
    """
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return folder_digest(path)
    if path.is_file():
        return {path.name: file_digest(path)}
    snapshot = _hub_snapshot(path_or_id)
    return folder_digest(snapshot) if snapshot else {"hub": path_or_id, "revision": "main"}


def _hub_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not downloaded, or no huggingface_hub: named, not hashed
        return None
