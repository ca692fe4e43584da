"""Progress bars for long work (rich), as a context manager yielding an ``advance(n)`` callback, and the switch that
keeps third-party bars and warnings out of the normal output."""

from __future__ import annotations

import os
import warnings
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


# Third-party output a user does not act on: weight-loading and dataset-mapping bars, library deprecation notices.
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' and huggingface_hub's bars (weight loading, downloads)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' map / save bars (TRL tokenizing the training set)
    "TQDM_DISABLE": "1",  # any other tqdm bar (the Trainer's own: ours shows the training steps)
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}
QUIET_MODULES = r"(transformers|trl|peft|datasets|accelerate|torch|huggingface_hub)(\..*)?"


def quiet_third_party() -> None:
    """Silence the libraries' bars and warnings for this process and the ones it starts (``accelerate launch``).

    Set before the libraries are imported; a user's own setting of any of these variables wins. ``culturealign -v``
    does not call it.
    """
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=QUIET_MODULES)
