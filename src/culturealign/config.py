"""Recipe configs: YAML merged over a recipe's defaults, with ``a.b=value`` overrides from the command line.

Unknown keys fail with the list of known ones (a typo must not be silently ignored), and so do values whose type
does not fit the default's (a flag, a whole number, a number, a single value; ``null`` fits any key and means
"not set"); the sections that pass through to libraries (``lora``, ``sft``) accept any key, and the libraries check
them.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from culturealign.errors import UserError

PASS_THROUGH = {"lora", "sft"}
# YAML 1.1 (PyYAML) reads 1e-4 as text: it wants a dot (1.0e-4). Users write 1e-4 for learning rates.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"override {text!r} must look like key=value, e.g. questions.per_topic=2")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str) and _EXPONENT_FLOAT.fullmatch(parsed.strip()):
        parsed = float(parsed)
    return key.strip().split("."), parsed


def _checked(path: str, default: Any, value: Any) -> Any:
    """``value`` if its type fits ``default`` (a float may come as text such as '1e-4'); else a UserError."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)
        ok, want = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(default, list):
        ok, want = not isinstance(value, dict), "a list"
    else:
        ok, want = not isinstance(value, dict | list), "a single value"
    if not ok:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise UserError(f"config key {path!r} must be {want}, not {shown} (its default is {default!r})")
    return value


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
            out[key] = _checked(path, defaults[key], value)
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
        except UnicodeDecodeError as e:
            raise UserError(f"{path} is not UTF-8 text ({e.reason}); re-save it as UTF-8") from e
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
