"""Evaluations: dataset -> solver (engine call) -> scorer -> metric, one result type (``base.EvalResult``).

An evaluation is a subclass of ``base.Evaluation`` in a module of this package; ``evaluation_class(name)`` finds
it by its ``name`` (what ``eval/<name>-before|after`` and ``comparison.json`` are keyed by), so adding one is one
module here.
"""

from __future__ import annotations

import importlib
import pkgutil


def evaluation_class(name: str) -> type:
    """The ``Evaluation`` subclass called ``name`` (every module of the package is imported once to find it)."""
    from culturealign.evaluate.base import Evaluation

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
    found = {c.name: c for c in _subclasses(Evaluation)}
    return found[name]


def _subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in (c, *_subclasses(c)) if "name" in vars(s)]
