"""Every recipe offers the one face the CLI reads; adding one touches no CLI code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from culturealign.config import Section, load
from culturealign.errors import UserError
from culturealign.recipes import RECIPES, recipe_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_module_has_the_recipe_face(name):
    module = recipe_module(name)
    assert issubclass(module.CONFIG, Section) and module.STAGES
    assert callable(module.run) and callable(module.show)
    assert isinstance(module.ABLATIONS, tuple)
    if module.ABLATIONS:
        assert callable(module.ablate) and callable(module.show_ablation)
    load(None, module.CONFIG)  # its defaults pass its own rules


def test_every_shipped_yaml_names_a_recipe_of_the_table_and_loads():
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["recipe"]
        module = recipe_module(name)
        load(path, module.CONFIG)


def test_an_unknown_recipe_names_the_known_ones():
    assert RECIPES == ("alignculture", "caredio", "clca", "culturespa", "surveyfit")  # found by file name
    with pytest.raises(UserError, match="unknown recipe 'nope' in x.yaml: available: alignculture, caredio, clca"):
        recipe_module("nope", " in x.yaml")


def test_a_comparison_prints_through_the_shared_show():
    import json

    from culturealign.evaluate.base import before_after_table
    from culturealign.evaluate.wvs import WVS
    from culturealign.recipes.common import show_comparison
    from culturealign.runs.store import strict

    wvs = before_after_table(WVS, {"overall": {"one_minus_jsd": 0.5}, "per_culture": {}}, None)
    result = {
        "trained": False,
        "examples": 2,
        "wvs": json.loads(json.dumps(strict(wvs))),  # as read back from comparison.json: NaN became null
        "survey_skipped": {"row without a country": 3},
        "survey_notes": [],
    }
    lines = [x for x in show_comparison(result) if isinstance(x, str)]
    assert lines[0].startswith("[yellow]kept 2 examples") and "3 row without a country" in lines[-1]
