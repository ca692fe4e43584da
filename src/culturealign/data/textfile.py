"""Reading users' text files: bad bytes, broken CSV and unreadable paths become one :class:`UserError` each.

Shared by every loader so that a file the user got wrong fails the same way whichever loader reads it: the message
names the file, the line where the reader stopped, and the fix. CSV fields have no size ceiling (the csv module's
default of 128 KiB made long answers fail, and only after some other loader had lifted it for the whole process).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from culturealign.errors import UserError

csv.field_size_limit(sys.maxsize)


def read_text(path: str | Path, what: str) -> str:
    """The whole file as text (UTF-8, a byte-order mark allowed); ``what`` names the file in the message."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"line {line} of {path} is not UTF-8 text ({e.reason}); re-save {what} as UTF-8") from e


@contextmanager
def csv_errors(path: str | Path, reader: Any) -> Iterator[None]:
    """Turn a ``csv`` error or a bad byte met while ``reader`` (a csv reader) reads ``path`` into a UserError."""
    try:
        yield
    except csv.Error as e:
        raise UserError(f"line {reader.line_num} of {path} is not valid CSV ({e}); fix or remove that line") from e
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path} is not UTF-8 text near line {reader.line_num + 1} ({e.reason}); re-save it as UTF-8"
        ) from e
