"""Recipes: one module per method, each its defaults, its steps and its evaluations.

Every recipe module offers the same face, which the CLI reads and nothing else: ``DEFAULTS`` and ``RULES`` (its
config), ``STAGES`` (what ``--from`` accepts), ``run(config, overrides, redo_from) -> dict`` (the whole recipe),
``show(result) -> list`` (what ``culturealign run`` prints: rich renderables or text), and ``ABLATIONS`` (maybe
empty) with, when it is not, ``ablate(run_dir, what) -> dict`` and ``show_ablation(results, what) -> list`` for
``culturealign ablate``. Adding a
recipe is one module and one name in :data:`RECIPES`; no CLI code changes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from culturealign.errors import UserError

RECIPES = ("culturespa", "surveyfit", "caredio", "clca", "alignculture")


def recipe_module(name: str, where: str = "") -> ModuleType:
    """The recipe module called ``name`` (``where`` says where the name came from, for the error)."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}{where}: available: {', '.join(RECIPES)}")
    return importlib.import_module(f"culturealign.recipes.{name}")
