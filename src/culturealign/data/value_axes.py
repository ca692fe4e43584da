"""A culture's position on the survey's two value axes (traditional/secular-rational, survival/self-expression).

Each axis averages indicator items (``resources/value_axes.json``: WVS Wave 7 codes with a direction): a
country's score on an item is its mean answer position on the item's ordinal scale (0 = first option, 1 =
last), signed so that higher points to the secular / self-expression end, then z-scored across the survey's
countries. A coarse, descriptive position for prompts (role-play culture profiles), not the published map.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from culturealign.data.survey import Survey


def axis_items() -> dict[str, dict[str, int]]:
    data = json.loads(resources.files("culturealign.resources").joinpath("value_axes.json").read_text("utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def item_position(dist: dict[str, float], codes: list[str]) -> float:
    """Mean answer position in [0, 1] on an ordinal scale given by ``codes`` in option order."""
    span = max(len(codes) - 1, 1)
    return sum(dist.get(c, 0.0) * i / span for i, c in enumerate(codes))


def axis_positions(survey: Survey) -> dict[str, dict[str, float]]:
    """country -> axis -> z-score (mean over the axis's items present in the survey; countries lacking all of an
    axis's items are left without that axis)."""
    out: dict[str, dict[str, float]] = {c: {} for c in survey.countries}
    for axis, items in axis_items().items():
        per_country: dict[str, list[float]] = {c: [] for c in survey.countries}
        for qid, sign in items.items():
            q = survey.questions.get(qid)
            if q is None:
                continue
            raw = {c: sign * item_position(d[qid], q.codes) for c, d in survey.distributions.items() if qid in d}
            if len(raw) < 2:
                continue
            values = np.array(list(raw.values()))
            sd = values.std() or 1.0
            for c, v in raw.items():
                per_country[c].append((v - values.mean()) / sd)
        for c, zs in per_country.items():
            if zs:
                out[c][axis] = float(np.mean(zs))
    return out
