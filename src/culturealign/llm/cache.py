"""A persistent cache of every LLM call (SQLite), keyed by engine identity, call kind, prompt and parameters.

Running the same thing twice does not call the model twice, and a killed run resumes from the calls that
finished: each batch is committed as soon as it returns.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.textfile import atomic_write_text


def cache_key(*parts: Any) -> str:
    """A stable hash of JSON-serializable parts (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """SQLite key -> JSON value store, safe for one process with several threads.

    SQLite failures (a full disk, a read-only or corrupt file) become one-line ``UserError`` messages: the
    cache is the run's memory of paid calls, so the run stops rather than going on without it.
    """

    def __init__(self, path: str | Path, ledger: str | Path | None = None, shared: CallCache | None = None):
        self.path = Path(path)
        self.ledger = Path(ledger) if ledger is not None else None  # cost.json: what the calls behind it cost
        # the user's cache of every run (keys hold the engine's content identity): what is not here is looked up
        # there, and copied here, so a run folder stays complete on its own
        self.shared = shared
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.unreadable = 0  # entries that did not decode (a damaged file, an older format): read as misses
        with self._errors("open"):
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.commit()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise UserError(
                f"cannot {action} the LLM call cache {self.path}: {e}{_disk_hint(self.path)}; free disk space, make "
                "the run folder writable, or move a damaged cache file aside (its calls are then made again)"
            ) from e

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self._lock, self._errors("read"):
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for k, v in self._db.execute(f"SELECT key, value FROM calls WHERE key IN ({marks})", chunk):
                    try:
                        out[k] = json.loads(v)
                    except (TypeError, ValueError):  # not JSON text: asked again, and overwritten
                        self.unreadable += 1
        missing = [k for k in keys if k not in out]
        if self.shared is not None and missing:
            found = self.shared.get_many(missing)
            if found:
                self._put(found)
                out.update(found)
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        self._put(items)
        if self.shared is not None:
            self.shared.put_many(items)

    def _put(self, items: dict[str, Any]) -> None:
        with self._lock, self._errors("write to"):
            self._db.executemany(
                "INSERT OR REPLACE INTO calls (key, value) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )
            self._db.commit()

    def bill(self, stats: dict[str, int]) -> None:
        """Add an engine's new calls, tokens and hits to the ledger as their answers are committed, so that a killed
        run's cost.json still counts what it paid for."""
        if self.ledger is not None and any(stats.values()):
            add_to_ledger(self.ledger, stats)

    def __len__(self) -> int:
        with self._lock, self._errors("read"):
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self.shared is not None:
            self.shared.close()


def _disk_hint(path: Path) -> str:
    """SQLite reports a full disk as "disk I/O error": say what it is when the disk is (nearly) full."""
    import shutil

    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    return f" (No space left on device: {free // 1024} KiB free)" if free < 1 << 20 else ""


def add_to_ledger(path: Path, numbers: dict[str, Any]) -> None:
    """Add ``numbers`` to the JSON object in ``path``, nested counts (``{"option_methods": {...}}``) key by key;
    written atomically: a killed process leaves the old file or the new one."""
    with _ledger_lock:
        try:
            cost = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        except (OSError, ValueError):
            cost = {}
        atomic_write_text(path, json.dumps(_added(cost, numbers), indent=2) + "\n")


def _added(totals: dict[str, Any], numbers: dict[str, Any]) -> dict[str, Any]:
    for k, v in numbers.items():
        if isinstance(v, dict):
            totals[k] = _added(totals.get(k) or {}, v)
        else:
            totals[k] = round(totals.get(k, 0) + v, 2) if isinstance(v, float) else totals.get(k, 0) + v
    return totals


_ledger_lock = threading.Lock()
