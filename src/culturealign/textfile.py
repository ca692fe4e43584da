"""Reading users' text files (bad bytes, broken CSV and unreadable paths become one :class:`UserError` each), and
writing files atomically.

Shared by every loader so that a file the user got wrong fails the same way whichever loader reads it: the message
names the file, the line, and the fix. Files are decoded whole before they are parsed, so that a bad byte is reported
at its own line (a stream decodes in chunks, and the csv reader's line count is then off by up to a chunk). CSV fields
have no size ceiling (the csv module's default of 128 KiB made long answers fail, and only after some other loader had
lifted it for the whole process).
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from culturealign.errors import UserError

csv.field_size_limit(sys.maxsize)

# A well-formed UTF-8 sequence of two to four bytes. Text in a legacy code page almost never holds one (it would take
# a byte pair like "Ã©", itself mojibake), so a file with one and with bad bytes too is UTF-8 with a stray byte.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


# A line as io.StringIO(newline="") gives them, without its copy of the text at 4 bytes a character (the official WVS
# respondent file is hundreds of megabytes)
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


def _where(raw: bytes, offset: int, path: str | Path) -> str:
    line = raw.count(b"\n", 0, offset) + 1
    return f"line {line} of {path}"


def decode_text(raw: bytes, path: str | Path, what: str, legacy: str | None = None) -> str:
    """``raw`` (the bytes of ``path``) as text; ``what`` names the file in the message.

    UTF-8, a byte-order mark allowed. With ``legacy`` (e.g. "cp1252", for files that Windows tools save) also UTF-16
    with its byte-order mark, and ``legacy`` itself, but only for bytes that are not UTF-8 and hold no UTF-8 sequence
    at all: a UTF-8 file with one stray byte is refused, since reading it in ``legacy`` would silently turn every other
    non-ASCII character into mojibake ("Itâ€™s"). Each refusal names the line of the first bad byte.
    """
    if legacy and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as e:
            line = raw[: e.start].decode("utf-16", errors="replace").count("\n") + 1
            raise UserError(f"line {line} of {path} is not UTF-16 text ({e.reason}); re-save {what} as UTF-8") from e
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")  # not utf-8-sig: its error offsets skip the mark
    except UnicodeDecodeError as e:
        where = _where(raw, e.start, path)
        if not legacy:
            raise UserError(f"{where} is not UTF-8 text ({e.reason}); re-save {what} as UTF-8") from e
        if _UTF8_MULTIBYTE.search(raw):
            raise UserError(
                f"{where} has a byte that is not UTF-8 (0x{raw[e.start]:02X}) in a file that is otherwise UTF-8; "
                f"fix that character and re-save {what} as UTF-8"
            ) from e
    try:
        return raw.decode(legacy)
    except UnicodeDecodeError as e:
        where = _where(raw, e.start, path)
        raise UserError(f"{where} is neither UTF-8 nor {legacy} text ({e.reason}); re-save {what} as UTF-8") from e


def read_text(path: str | Path, what: str, legacy: str | None = None) -> str:
    """The whole file as text, decoded by :func:`decode_text`; ``what`` names the file in the message."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from e
    return decode_text(raw, path, what, legacy)


def csv_records(path: str | Path, text: str, **fmt: Any) -> Iterator[tuple[int, list[str]]]:
    """Each record of the CSV ``text`` (read from ``path``) with the line it starts on; a blank line gives ``[]``.

    Parsed strictly, so that a quote never closed is an error rather than one field that swallows the rest of the
    file. The error names the line where the failing record starts: the csv module's own ``line_num`` is where it
    stopped reading, which for a quote never closed is the end of the file.
    """
    reader = csv.reader((m.group() for m in _LINE.finditer(text)), strict=True, **fmt)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if "end of data" in str(e):
                raise UserError(
                    f'line {start} of {path}: a quoted field is never closed ({e}); add the closing " or remove '
                    "the opening one"
                ) from e
            raise UserError(f"line {start} of {path} is not valid CSV ({e}); fix or remove that line") from e
        yield start, fields


def csv_dicts(path: str | Path, text: str, **fmt: Any) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header of the CSV ``text`` and its rows as ``(line a row starts on, {column: value})``.

    Like ``csv.DictReader(restval="")``: blank lines skipped, a short row's missing values "", values past the header
    dropped; but each row comes with its own line, for messages.
    """
    records = csv_records(path, text, **fmt)
    header = next(records, (1, []))[1]
    rows = ((n, dict(zip(header, r + [""] * (len(header) - len(r)), strict=False))) for n, r in records if r)
    return header, rows


@contextmanager
def csv_errors(path: str | Path, reader: Any) -> Iterator[None]:
    """Turn a ``csv`` error or a bad byte met while ``reader`` (a csv reader) reads ``path`` into a UserError.

    For readers of a stream; :func:`csv_records` on text from :func:`read_text` names lines exactly.
    """
    try:
        yield
    except csv.Error as e:
        raise UserError(f"line {reader.line_num} of {path} is not valid CSV ({e}); fix or remove that line") from e
    except UnicodeDecodeError as e:  # the stream decodes in chunks: reader.line_num is not the bad byte's line
        read_text(path, "it")  # raises the error that names the line of the first bad byte
        raise UserError(f"{path} is not UTF-8 text ({e.reason}); re-save it as UTF-8") from e


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file and a rename: a killed process leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"cannot write {path}: {e.strerror or e}; free disk space or fix the folder's permissions"
        ) from e
