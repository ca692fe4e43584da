"""Recipes: one module per method, each its defaults, its steps and its evaluations.

Every recipe module offers the same face, which the CLI reads and nothing else: ``CONFIG`` (its typed config, a
``config.Section`` holding every default and rule), ``STAGES`` (what ``--from`` accepts), ``run(config, overrides,
redo_from) -> dict`` (the whole recipe), ``show(result) -> list`` (what ``culturealign run`` prints: rich
renderables or text), and ``ABLATIONS`` (maybe empty) with, when it is not, ``ablate(run_dir, what) -> dict`` and
``show_ablation(results, what) -> list`` for ``culturealign ablate``. Adding a recipe is one module here (it is
found by its file name); no CLI or table code changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from culturealign.errors import UserError

# every module of this package but the shared tail is a recipe
RECIPES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "common"))


def recipe_module(name: str, where: str = "") -> ModuleType:
    """The recipe module called ``name`` (``where`` says where the name came from, for the error)."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}{where}: available: {', '.join(RECIPES)}")
    return importlib.import_module(f"culturealign.recipes.{name}")


def config_text(name: str) -> str:
    """Every setting of recipe ``name`` with its default and its meaning, as a YAML config to start from."""
    from culturealign.config import describe_config

    config = recipe_module(name).CONFIG
    title = (config.__doc__ or name).strip().splitlines()[0]
    return "\n".join([f"# {title}", f"recipe: {name}", *describe_config(config)]) + "\n"
