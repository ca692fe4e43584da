"""The UNESCO Framework for Cultural Statistics (2009) taxonomy that AlignCultura's CulturaX is built on.

Shipped as ``resources/unesco_taxonomy.json``: nine domains (cultural domains A-F, intangible cultural heritage as
the transversal one, tourism and sports and recreation as related ones) and their subdomains, each with a
one-sentence description of our own and, where the CulturaX authors published one, its CulturaX class id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Domain:
    id: str  # "A".."F", "ICH", "G", "H"
    name: str
    kind: str  # "cultural", "transversal" or "related"


@dataclass(frozen=True)
class Subdomain:
    id: str  # a slug, e.g. "culinary-arts"
    name: str  # as UNESCO or CulturaX spell it, e.g. "Culinary Arts"
    domain: str  # the name of its Domain
    description: str
    culturax_class: int | None = None  # the CulturaX "class" id, where the authors' README gives one


@cache
def _read() -> dict[str, Any]:
    return json.loads(resources.files("culturealign.resources").joinpath("unesco_taxonomy.json").read_text("utf-8"))


def load_domains() -> list[Domain]:
    return [Domain(d["id"], d["name"], d["kind"]) for d in _read()["domains"]]


def load_taxonomy() -> list[Subdomain]:
    """Every subdomain, its ``domain`` resolved to the domain's name."""
    names = {d.id: d.name for d in load_domains()}
    return [
        Subdomain(s["id"], s["name"], names[s["domain"]], s["description"], s.get("culturax_class"))
        for s in _read()["subdomains"]
    ]


def by_culturax_class() -> dict[int, Subdomain]:
    """CulturaX class id -> subdomain, for the ids the authors' README maps (not 5, 18, 36, ...)."""
    return {s.culturax_class: s for s in load_taxonomy() if s.culturax_class is not None}
