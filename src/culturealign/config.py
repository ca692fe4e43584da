"""Recipe configs: YAML merged over a recipe's defaults, with ``a.b=value`` overrides from the command line.

Unknown keys fail with the list of known ones (a typo must not be silently ignored); the sections that pass
through to libraries (``lora``, ``sft``) accept any key, and the libraries check them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from culturealign.errors import UserError

PASS_THROUGH = {"lora", "sft"}


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"override {text!r} must look like key=value, e.g. questions.per_topic=2")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def merge(defaults: dict, given: dict, where: str = "") -> dict:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        path = f"{where}{key}"
        if key not in defaults:
            known = ", ".join(defaults)
            raise UserError(f"unknown config key {path!r}: known keys here are {known}")
        if isinstance(defaults[key], dict) and key not in PASS_THROUGH:
            if not isinstance(value, dict):
                raise UserError(f"config key {path!r} must be a mapping")
            out[key] = merge(defaults[key], value, f"{path}.")
        elif key in PASS_THROUGH:
            if not isinstance(value or {}, dict):
                raise UserError(f"config key {path!r} must be a mapping of library settings")
            out[key] = {**defaults[key], **(value or {})}
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None, defaults: dict, overrides: list[str] = ()) -> dict:
    """Defaults <- YAML file <- ``key.sub=value`` overrides, checked against the defaults' keys."""
    given: dict = {}
    if path is not None:
        path = Path(path)
        try:
            given = yaml.safe_load(path.read_text("utf-8")) or {}
        except OSError as e:
            raise UserError(f"cannot read config {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise UserError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
        if not isinstance(given, dict):
            raise UserError(f"{path} must hold a mapping of settings")
        given.pop("recipe", None)
    config = merge(defaults, given)
    for item in overrides:
        keys, value = parse_override(item)
        node: dict = {}
        cursor = node
        for k in keys[:-1]:
            cursor = cursor.setdefault(k, {})
        cursor[keys[-1]] = value
        config = merge(config, node)
    return config
