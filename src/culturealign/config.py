"""Recipe configs: typed sections (dataclasses) with one source of defaults, YAML over them, ``a.b=value`` overrides.

A recipe's config is a :class:`Section` of sections: each field holds its default, its help text and its
:class:`Rule` (``setting``), so the defaults, the checks and what ``culturealign config RECIPE`` prints come from
one place. ``load(path, Config, overrides)`` merges the YAML and the overrides over ``defaults_of(Config)``,
checks them, and builds the dataclasses; a section built in Python checks itself in ``__post_init__``. Every
error names the YAML key.

Unknown keys fail with the list of known ones (a typo must not be silently ignored), and so do values whose type
does not fit the default's (a flag, a whole number, a number, a single value, a list whose elements fit the
default's). Beyond types, :class:`Rule` says what a key accepts (a range, choices, the type of a key whose default is
``null``, the elements of a list): ``COMMON_RULES`` by key name for every recipe, each recipe's ``RULES`` by full
path. All of it is checked when the config is loaded, before any step runs or any model loads. ``null`` means "not
set" and fits only keys whose default is null or whose rule allows it. The sections that pass through to libraries
(``lora``, ``sft``, ``soft``) accept any key, and the libraries check them.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from culturealign.errors import UserError

PASS_THROUGH = {"lora", "sft", "soft"}
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


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."


def _checked(path: str, default: Any, value: Any) -> Any:
    """``value`` if its type fits ``default`` (a float may come as text such as '1e-4'); else a UserError."""
    if value is None or default is None:
        return value
    if isinstance(default, list):
        if isinstance(value, str) and default and isinstance(default[0], str):
            value = [v.strip() for v in value.split(",") if v.strip()]  # cultures=DEU,CHN on a command line
        if not isinstance(value, list):
            raise UserError(f"config key {path!r} must be a list, e.g. {default!r}, not {_shown(value)}")
        if default:  # elements like the default's (a culture list holds codes, not lists or numbers)
            return [_checked(f"{path}[{i}]", default[0], v) for i, v in enumerate(value)]
        return value
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)
        ok, want = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    else:
        ok, want = not isinstance(value, dict | list), "a single value"
    if not ok:
        raise UserError(f"config key {path!r} must be {want}, not {_shown(value)} (its default is {default!r})")
    return value


@dataclass(frozen=True)
class Rule:
    """What one config key accepts beyond its default's type.

    ``type`` types a key whose default is null (``int``, ``float``, ``str``); ``each`` says the key holds a list of
    that type; ``low``/``high`` bound numbers (``open_low`` excludes ``low``); ``choices`` lists the allowed values;
    ``nullable`` lets ``null`` stand for "not set" where the default is a value.
    """

    type: type | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    choices: tuple = ()
    each: type | None = None
    nullable: bool = False

    def check(self, path: str, value: Any, default: Any) -> None:
        if value is None:
            if default is not None and not self.nullable:
                raise UserError(f"config key {path!r} cannot be null: set a value such as {default!r}")
            return
        if self.each is not None:
            if not isinstance(value, list):
                raise UserError(
                    f"config key {path!r} must be a list, e.g. [{_example(self.each)}], not {_shown(value)}"
                )
            for i, v in enumerate(value):
                Rule(self.each, self.low, self.high, self.open_low, self.choices).check(f"{path}[{i}]", v, None)
            return
        if self.type is str and not isinstance(value, str):
            raise UserError(f"config key {path!r} must be text, not {_shown(value)}")
        if self.type is not None:
            _checked(path, _example(self.type), value)
        if self.choices and value not in self.choices:
            raise UserError(
                f"config key {path!r} must be one of {', '.join(map(str, self.choices))}, not {_shown(value)}"
            )
        if self.low is not None or self.high is not None:
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise UserError(f"config key {path!r} must be a number, not {_shown(value)}")
            below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
            if below or (self.high is not None and value > self.high):
                raise UserError(f"config key {path!r} must be {self._range()}, not {_shown(value)}")

    def _range(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {self.low}"
        if self.low is None:
            return f"<= {self.high}"
        return f"in {'(' if self.open_low else '['}{self.low}, {self.high}]"


def _example(kind: type) -> Any:
    return {int: 1, float: 1.0, str: "text", bool: True}[kind]


# Keys that mean the same in every recipe, by their last name.
COMMON_RULES: dict[str, Rule] = {
    "cultures": Rule(each=str),
    "topics": Rule(each=str),
    "domains": Rule(each=str),
    "subdomains": Rule(each=str),
    "limit": Rule(int, low=1, nullable=True),
    "general_limit": Rule(int, low=1),
    "blend_limit": Rule(int, low=1, nullable=True),
    "train_limit": Rule(int, low=0),
    "batch_size": Rule(int, low=1),
    "max_tokens": Rule(int, low=1),
    "max_retries": Rule(int, low=0),
    "temperature": Rule(float, low=0),
    "top_p": Rule(float, low=0, high=1, open_low=True),
    "seed": Rule(int),
    "per_topic": Rule(int, low=1),
    "per_culture": Rule(int, low=1),
    "per_pair": Rule(int, low=1),
    "min_examples": Rule(int, low=1),
    "engine": Rule(choices=("local", "openai", "llamacpp")),
    "dtype": Rule(choices=("float32", "bfloat16", "float16")),
    "model": Rule(str),
    "base_url": Rule(str),
    "chat_template_from": Rule(str),
    "revision": Rule(str),
    "adapter": Rule(str),
    "mode": Rule(choices=("joint", "specific")),
}


def check_rules(config: Mapping, defaults: Mapping, rules: Mapping[str, Rule], where: str = "") -> None:
    """Check every key of ``config`` against its recipe rule (full path) or the common rule (last name)."""
    for key, value in config.items():
        path = f"{where}{key}"
        default = defaults.get(key)
        if key in PASS_THROUGH:
            continue
        if isinstance(default, dict):
            check_rules(value, default, rules, f"{path}.")
            continue
        rule = rules.get(path, COMMON_RULES.get(key)) or Rule()
        rule.check(path, value, default)


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


def load_config(
    path: str | Path | None, defaults: dict, overrides: list[str] = (), rules: Mapping[str, Rule] | None = None
) -> dict:
    """Defaults <- YAML file <- ``key.sub=value`` overrides, checked against the defaults' keys and the rules."""
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
    check_rules(config, defaults, rules or {})
    return config


# -- typed sections ------------------------------------------------------------------------------------------------
def setting(default: Any, help: str = "", **rule: Any) -> Any:
    """A config field: its default, what it means (``culturealign config`` prints it) and what it accepts beyond
    its default's type (the keywords of :class:`Rule`; ``COMMON_RULES`` covers keys named alike everywhere)."""
    meta = {"help": help, "rule": Rule(**rule) if rule else None}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def library(default: Mapping[str, Any], help: str = "") -> Any:
    """A section passed through to a library (PEFT, TRL): any key, the library checks them."""
    return field(default_factory=lambda: dict(copy.deepcopy(default)), metadata={"help": help, "library": True})


class Section:
    """Base of config dataclasses. ``key`` is where the section sits in the YAML ('' for a recipe's top level).

    A field whose default is another section is a nested section; one whose default has ``from_section`` (an
    engine spec) is built by it; ``library`` fields are mappings of library settings.
    """

    key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        where = f"{self.key}." if self.key else ""
        for f in fields(self):  # type: ignore[arg-type]
            value, default = getattr(self, f.name), _default(f)
            if _is_nested(default):
                continue  # a section or a spec checks itself
            path = f"{where}{f.name}"
            if f.metadata.get("library") or isinstance(default, dict):
                if not isinstance(value, dict):
                    raise UserError(f"config key {path!r} must be a mapping")
                continue
            value = _checked(path, default, value)
            (f.metadata.get("rule") or COMMON_RULES.get(f.name) or Rule()).check(path, value, default)
            object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        """The section as YAML holds it (engine specs as their settings)."""
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if isinstance(v, Section) else v.settings() if _is_spec(v) else copy.deepcopy(v)
        return out

    def kwargs(self, *leave_out: str) -> dict[str, Any]:
        """The section's settings as keyword arguments of the step they configure (``leave_out`` the others)."""
        return {k: v for k, v in self.to_dict().items() if k not in leave_out}


S = TypeVar("S", bound=Section)


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def _is_spec(value: Any) -> bool:
    return hasattr(type(value), "from_section") and hasattr(value, "settings")


def _is_nested(value: Any) -> bool:
    return isinstance(value, Section) or _is_spec(value)


def defaults_of(config: type[Section]) -> dict[str, Any]:
    """The defaults of a config class as the mapping its YAML would hold."""
    return config().to_dict()


def rules_of(config: type[Section], where: str = "") -> dict[str, Rule]:
    """Every field's rule by full key path (what ``check_rules`` reads), nested sections included."""
    out = {}
    for f in fields(config):  # type: ignore[arg-type]
        default = _default(f)
        if isinstance(default, Section):
            out |= rules_of(type(default), f"{where}{f.name}.")
        elif f.metadata.get("rule") is not None:
            out[f"{where}{f.name}"] = f.metadata["rule"]
    return out


def build(config: type[S], data: Mapping[str, Any]) -> S:
    """A config object from a mapping that already passed ``load_config``'s checks (every key known)."""
    kwargs = {}
    for f in fields(config):  # type: ignore[arg-type]
        default, value = _default(f), data.get(f.name, MISSING)
        if value is MISSING:
            continue
        if isinstance(default, Section):
            value = build(type(default), value)
        elif _is_spec(default):
            value = type(default).from_section({**default.settings(), **value}, f.name)
        kwargs[f.name] = value
    return config(**kwargs)


def load(path: str | Path | None, config: type[S], overrides: list[str] = ()) -> S:
    """Defaults <- YAML file <- ``key.sub=value`` overrides, checked, as the typed config."""
    return build(config, load_config(path, defaults_of(config), list(overrides), rules_of(config)))


def describe_config(config: type[Section], indent: int = 0) -> list[str]:
    """The config's YAML with every default and its help as a comment (what ``culturealign config`` prints)."""
    import yaml as _yaml

    lines = []
    pad = "  " * indent
    for f in fields(config):  # type: ignore[arg-type]
        default, help_text = _default(f), f.metadata.get("help", "")
        comment = f"  # {help_text}" if help_text else ""
        if isinstance(default, Section):
            lines.append(f"{pad}{f.name}:{comment}")
            lines += describe_config(type(default), indent + 1)
            continue
        value = default.settings() if _is_spec(default) else default
        text = (
            _yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
            .strip()
            .removesuffix("...")
            .strip()
        )
        lines.append(f"{pad}{f.name}: {text}{comment}")
    return lines
