"""Progress bars for long work (rich), as a context manager yielding an ``advance(n)`` callback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None] | None]:
    """Show a bar while the block runs; yields None when disabled (or ``CULTUREALIGN_NO_PROGRESS`` is set)."""
    if not enabled or os.environ.get("CULTUREALIGN_NO_PROGRESS"):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
