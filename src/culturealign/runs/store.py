"""The run folder: one layout for every recipe and evaluation, written atomically, held by one process.

Layout: ``config.yaml``, ``steps/NN-<name>/{data.jsonl, dropped.jsonl, stats.json}``, ``cache.sqlite``,
``train/<adapter>/``, ``eval/<name>/{items.jsonl, metrics.json}``, ``log.txt``, ``cost.json``.
Every file is written to a temporary name and renamed, so a killed run never leaves half a file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from culturealign.errors import UserError
from culturealign.llm.cache import CallCache, add_to_ledger
from culturealign.textfile import atomic_write_text


def strict(data: Any) -> Any:
    """``data`` with every NaN or infinity replaced by null: result files are strict JSON, readable by any tool
    (``json.dumps`` writes ``NaN``, which JavaScript, jq and most JSON libraries refuse). Null means "undefined",
    e.g. a discrimination over a single culture."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [strict(v) for v in data]
    return data


def _dumps(data: Any, **kwargs: Any) -> str:
    return json.dumps(strict(data), ensure_ascii=False, default=str, allow_nan=False, **kwargs)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, _dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(_dumps(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(
                        f"line {n} of {path} is not valid JSON ({e.msg}); delete the file to redo it"
                    ) from e
    return rows


class RunFolder:
    """A run folder held with an exclusive lock for the life of the object (use as a context manager)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._new = not self.path.exists()  # removed again if the run fails before it wrote anything
        self._config_text: str | None = None  # also written beside each evaluation's results when the run closes
        self._config_pending: str | None = None  # a changed config.yaml, written when the run ends well
        self._eval_names: set[str] = set()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_file = (self.path / ".lock").open("a")
        except OSError as e:
            raise UserError(f"cannot use run folder {self.path}: {e.strerror or e}; pick a writable --out") from e
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise UserError(
                f"run folder {self.path} is in use by another culturealign process; wait for it or use another --out"
            ) from None
        self._log_handler = logging.FileHandler(self.path / "log.txt", encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("culturealign").addHandler(self._log_handler)
        self._cache: CallCache | None = None

    @property
    def cache(self) -> CallCache:
        """The run's LLM call cache (``cache.sqlite``), backed by the user's shared one (see ``shared_cache``)."""
        if self._cache is None:
            self._cache = CallCache(self.path / "cache.sqlite", ledger=self.path / "cost.json", shared=shared_cache())
        return self._cache

    def write_config(self, config: dict) -> None:
        """Write ``config.yaml``; refuse a folder that holds another command's or recipe's run.

        A config that differs from the folder's is written only when the run ends well: a rerun refused because its
        config does not match finished work leaves the folder's config saying what made that work. Each evaluation
        also gets its own copy of the config beside its results (see :meth:`eval_dir`), so results written by an
        earlier command keep saying what produced them.
        """
        path = self.path / "config.yaml"
        text = self._config_text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        if path.is_file():
            try:
                old = yaml.safe_load(path.read_text("utf-8")) or {}
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                old = {}
            for key in ("recipe", "command"):
                if isinstance(old, dict) and old.get(key) is not None and old.get(key) != config.get(key):
                    raise UserError(
                        f"run folder {self.path} holds a {key} {old[key]!r} run, not {config.get(key)!r}: "
                        "pass another --out (or out=...) for this one"
                    )
            if old != config:
                self._config_pending = text
                return
        atomic_write_text(path, text)

    def eval_dir(self, name: str) -> Path:
        """``eval/<name>``; when the run closes, the config that produced it is written there as ``config.yaml``."""
        self._eval_names.add(name)
        return self.path / "eval" / name

    def _keep_configs(self) -> None:
        for name in self._eval_names:
            folder = self.path / "eval" / name
            if self._config_text is not None and folder.is_dir() and any(folder.iterdir()):
                atomic_write_text(folder / "config.yaml", self._config_text)

    def _holds_work(self) -> bool:
        if any((self.path / d).exists() for d in ("steps", "train", "eval")):
            return True
        return self._cache is not None and len(self._cache) > 0

    def close(self, failed: bool = False) -> None:
        """Release the folder; a folder this run created and failed in before any work is removed (no stubs)."""
        if not failed:
            if self._config_pending is not None:
                atomic_write_text(self.path / "config.yaml", self._config_pending)
            self._keep_configs()
        remove = failed and self._new and not self._holds_work()
        logging.getLogger("culturealign").removeHandler(self._log_handler)
        self._log_handler.close()
        if self._cache is not None:
            self._cache.close()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()
        if remove:
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)


def shared_cache() -> CallCache | None:
    """The user's call cache shared by every run (``<home>/calls.sqlite``): a base model's answers to the same
    prompts are computed once for all recipes and evaluations. Its keys hold the engine's content identity (weights
    and adapter digests, a server's reported model), so other weights never hit. ``CULTUREALIGN_SHARED_CACHE=0``
    turns it off."""
    import os

    if os.environ.get("CULTUREALIGN_SHARED_CACHE", "1").lower() in ("0", "false", "no", "off"):
        return None
    from culturealign.llm.models import home

    return CallCache(home() / "calls.sqlite")


def describe(value: Any, depth: int = 0) -> Any:
    """A JSON-able account of what ``value`` is, for fingerprints: engines by their content identity, dataclasses
    (records, surveys, cultures) field by field, functions by name, other objects by their public attributes."""
    import dataclasses

    if depth > 6:
        return type(value).__qualname__
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): describe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [describe(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((describe(v, depth + 1) for v in value), key=repr)
    if isinstance(value, Path):
        return str(value)
    if callable(getattr(value, "identity", None)):  # an engine: what the model is, not what it is called
        return {"engine": value.identity()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: describe(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    if hasattr(value, "tobytes") and hasattr(value, "shape"):  # an array
        import hashlib

        return {"shape": list(value.shape), "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    if hasattr(value, "__dict__"):
        public = {k: v for k, v in vars(value).items() if not k.startswith("_")}
        return {"type": type(value).__qualname__, **describe(public, depth + 1)}
    return type(value).__qualname__


def fingerprint(settings: Any) -> str:
    """A short content hash of JSON-able settings (what a finished piece of work was made from)."""
    import hashlib

    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_fingerprint(
    path: Path, settings: dict[str, Any], what: str, fix: str, write: bool = True, where: Path | None = None
) -> None:
    """Refuse to reuse ``path`` (a finished piece of work) when it was made from other ``settings``.

    The first call writes ``path`` (a JSON of the settings and their hash; ``write=False`` only checks); a later call
    with settings that differ raises a UserError naming the keys that changed, so a rerun never reports stale work
    under a new config.
    """
    want = {"fingerprint": fingerprint(settings), "settings": settings}
    if path.is_file():
        try:
            have = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            have = {}
        if have.get("fingerprint") != want["fingerprint"]:
            raise UserError(
                f"{what} in {where or path.parent} was made with {changed_keys(have.get('settings'), settings)}: {fix}"
            )
        return
    if write:
        write_json(path, json.loads(json.dumps(want, default=str)))


def changed_keys(old: Any, new: dict[str, Any]) -> str:
    """'other settings (a, b)' naming the keys whose values differ, or 'unrecorded settings' for older work."""
    if not isinstance(old, dict):
        return "unrecorded settings (it predates fingerprints)"

    def same(k: str) -> bool:
        return json.dumps(old.get(k), default=str, sort_keys=True) == json.dumps(
            new.get(k), default=str, sort_keys=True
        )

    return f"other settings ({', '.join(sorted(k for k in {*old, *new} if not same(k)))})"


def write_cost_seconds(run_dir: Path, seconds: float) -> None:
    """Add wall time to ``cost.json``."""
    add_to_ledger(run_dir / "cost.json", {"wall_seconds": round(seconds, 2)})


def write_cost(run_dir: Path, engine: Any, seconds: float) -> None:
    """Add wall time and what ``engine`` did since it was last billed (calls, tokens, cache hits) to ``cost.json``.

    Engines on the run's cache bill their calls as each batch commits; this adds the rest (and, for a server, how
    many option scores came from log-probabilities or from sampling).
    """
    numbers: dict[str, Any] = {"wall_seconds": round(seconds, 2), **engine.unbilled()}
    methods = getattr(engine, "option_methods", None)  # a server's option scores: from log-probs or by sampling
    if methods:
        numbers["option_methods"] = dict(methods)
    add_to_ledger(run_dir / "cost.json", numbers)


@contextmanager
def stage_cost(run_dir: Path, stage: str, engines: Sequence[Any] = ()) -> Iterator[None]:
    """Add what a stage took to ``cost.json`` under ``stages.<stage>``: its seconds, and the calls, tokens and cache
    hits of ``engines`` (each counted once; a list may grow while the stage runs, with the engines it builds). A stage
    run again (resumed) adds to its figures."""
    before = {id(e): asdict(e.stats) for e in engines if hasattr(e, "stats")}
    start = time.time()
    try:
        yield
    finally:
        numbers: dict[str, Any] = {"seconds": round(time.time() - start, 2)}
        for e in {id(e): e for e in engines if hasattr(e, "stats")}.values():
            then = before.get(id(e), {})
            for k, v in asdict(e.stats).items():
                numbers[k] = numbers.get(k, 0) + v - then.get(k, 0)
        add_to_ledger(Path(run_dir) / "cost.json", {"stages": {stage: numbers}})
