"""Imports point down the table of ../shared/ARCHITECTURE.md, lazy imports inside functions included, and no two
modules import each other (directly or round a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "culturealign"
LEAVES = {"errors", "records", "text", "textfile", "simhash", "progress"}  # small shared modules, no model code
# room -> the rooms it may import (besides itself and the leaves); the table's rows, top to bottom
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "resources": set(),  # shipped data (prompt templates, taxonomies), read with importlib.resources
    "records": set(),
    "text": set(),
    "textfile": set(),
    "simhash": set(),
    "progress": set(),
    "cultures": set(),
    "config": set(),
    "data": {"cultures"},
    "llm": set(),
    "prompting": {"cultures"},
    "runs": {"llm"},  # runs/store.py owns the run's cache.sqlite through llm/cache.py (a leaf of llm)
    "steps": {"cultures", "data", "llm", "runs", "prompting"},
    "train": {"runs", "llm"},
    "evaluate": {"cultures", "data", "llm", "runs", "prompting"},
    "recipes": {"cultures", "data", "llm", "runs", "prompting", "steps", "train", "evaluate", "config"},
    "report": {"runs"},
    # the public face: everything above it; report.plots draws the map command's figure
    "api": {"cultures", "data", "llm", "runs", "prompting", "steps", "train", "evaluate", "recipes", "config",
            "report"},
    "cli": {"cultures", "data", "llm", "runs", "prompting", "steps", "train", "evaluate", "recipes", "config",
            "report", "api"},
}  # fmt: skip
LEAF_IMPORTS = {"text": set(), "textfile": {"errors"}, "simhash": {"errors", "text"}, "progress": set()}


def _modules() -> dict[str, Path]:
    out = {}
    for f in SRC.rglob("*.py"):
        parts = f.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("culturealign"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    graph[m].add(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names if a.name.startswith("culturealign")}
    return {m: {t for t in ts if t in mods and t != m} for m, ts in graph.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "api"


def test_every_import_points_down_the_table():
    wrong = []
    for module, targets in _graph().items():
        room = _room(module)
        assert room in ALLOWED, f"{module}: room {room!r} is not in the table; add it to ARCHITECTURE and here"
        allowed = ALLOWED[room] | ({room} if room not in LEAVES else set())
        allowed |= LEAF_IMPORTS.get(room, LEAVES - {room})
        wrong += [f"{module} -> {t}" for t in targets if _room(t) not in allowed and _room(t) != room]
    assert wrong == []


def test_no_import_loop():
    graph = _graph()
    state: dict[str, int] = {}
    loops = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                loops.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert loops == []


def test_every_step_has_its_own_name():
    """A step's name is its folder in a run and its ``--from`` stage: two steps of one name would be confused."""
    import importlib

    from culturealign.steps.base import Filter, Step

    names: dict[str, str] = {}
    for f in sorted((SRC / "steps").glob("*.py")):
        module = importlib.import_module(f"culturealign.steps.{f.stem}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Step)
                and obj not in (Step, Filter)
                and obj.__module__ == module.__name__
            ):
                assert obj.name not in names, f"{obj.__qualname__} and {names[obj.name]} are both {obj.name!r}"
                names[obj.name] = obj.__qualname__
    assert len(names) > 20
