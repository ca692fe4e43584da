"""Recipe configs: defaults <- YAML file <- key=value overrides, with unknown keys refused."""

from __future__ import annotations

import pytest

from culturealign.config import defaults_of, load_config, merge, parse_override
from culturealign.errors import UserError
from culturealign.recipes.culturespa import CONFIG

CULTURESPA = defaults_of(CONFIG)

DEFAULTS = {
    "cultures": ["DEU"],
    "a": {"b": 1, "c": "x"},
    "dedup": {"threshold": 0.9},
    "train": {"mode": "joint", "lora": {"r": 8}, "sft": {"learning_rate": 1e-4}},
}


def _write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text, "utf-8")
    return path


def test_no_file_no_overrides_gives_a_copy_of_the_defaults():
    cfg = load_config(None, DEFAULTS)
    assert cfg == DEFAULTS
    cfg["a"]["b"] = 99
    cfg["train"]["lora"]["r"] = 99
    assert DEFAULTS["a"]["b"] == 1 and DEFAULTS["train"]["lora"]["r"] == 8


def test_file_is_merged_over_defaults(tmp_path):
    path = _write(tmp_path, "recipe: culturespa\na:\n  b: 5\ncultures: [CHN, NGA]\n")
    cfg = load_config(path, DEFAULTS)
    assert cfg["a"] == {"b": 5, "c": "x"}  # the sibling default stays
    assert cfg["cultures"] == ["CHN", "NGA"]
    assert cfg["dedup"] == {"threshold": 0.9}
    assert "recipe" not in cfg


def test_overrides_are_parsed_and_applied_last(tmp_path):
    path = _write(tmp_path, "a:\n  b: 5\n")
    cfg = load_config(path, DEFAULTS, ["a.b=3", "cultures=[DEU,CHN]", "dedup.threshold=0.85", "a.c=hello"])
    assert cfg["a"]["b"] == 3 and isinstance(cfg["a"]["b"], int)
    assert cfg["cultures"] == ["DEU", "CHN"]
    assert cfg["dedup"]["threshold"] == 0.85
    assert cfg["a"]["c"] == "hello"


def test_parse_override():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("cultures=[DEU,CHN]") == (["cultures"], ["DEU", "CHN"])
    assert parse_override("x=true") == (["x"], True)
    assert parse_override("x=null") == (["x"], None)
    assert parse_override(" x = a=b ") == (["x"], "a=b")
    assert parse_override("x=[unclosed") == (["x"], "[unclosed")  # not YAML: kept as text
    with pytest.raises(UserError, match="key=value"):
        parse_override("a.b")


def test_unknown_key_names_it_and_lists_known_ones(tmp_path):
    with pytest.raises(UserError) as e:
        load_config(_write(tmp_path, "a:\n  bb: 2\n"), DEFAULTS)
    assert "'a.bb'" in str(e.value) and "b, c" in str(e.value)
    with pytest.raises(UserError) as e:
        load_config(None, DEFAULTS, ["cultrues=[DEU]"])
    assert "'cultrues'" in str(e.value)
    for key in ("cultures", "a", "dedup", "train"):
        assert key in str(e.value)


def test_mapping_expected_where_the_default_is_one():
    with pytest.raises(UserError, match="'a' must be a mapping"):
        load_config(None, DEFAULTS, ["a=3"])


def test_lora_and_sft_accept_any_key(tmp_path):
    path = _write(tmp_path, "train:\n  lora:\n    lora_alpha: 32\n  sft:\n    max_steps: 5\n")
    cfg = load_config(path, DEFAULTS, ["train.lora.use_rslora=true", "train.sft.learning_rate=0.001"])
    assert cfg["train"]["lora"] == {"r": 8, "lora_alpha": 32, "use_rslora": True}
    assert cfg["train"]["sft"] == {"learning_rate": 0.001, "max_steps": 5}
    assert cfg["train"]["mode"] == "joint"
    with pytest.raises(UserError, match="train.mode_x"):
        load_config(None, DEFAULTS, ["train.mode_x=split"])


def test_culturespa_defaults_accept_pass_through_sections():
    cfg = load_config(None, CULTURESPA, ["train.lora.r=4", "train.lora.new_thing=1", "questions.per_topic=2"])
    assert cfg["train"]["lora"]["r"] == 4 and cfg["train"]["lora"]["new_thing"] == 1
    assert cfg["questions"]["per_topic"] == 2
    with pytest.raises(UserError, match="questions.per_topik"):
        load_config(None, CULTURESPA, ["questions.per_topik=2"])


def test_merge_does_not_touch_its_inputs():
    given = {"a": {"b": 2}}
    out = merge(DEFAULTS, given)
    assert out["a"] == {"b": 2, "c": "x"}
    assert DEFAULTS["a"] == {"b": 1, "c": "x"} and given == {"a": {"b": 2}}


def test_bad_yaml_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(_write(tmp_path, "a: [1, 2\nb: {\n"), DEFAULTS)


def test_file_not_a_mapping_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"), DEFAULTS)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml", DEFAULTS)


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(_write(tmp_path, ""), DEFAULTS) == DEFAULTS


def test_pass_through_section_given_a_scalar_is_a_user_error():
    with pytest.raises(UserError):
        load_config(None, DEFAULTS, ["train.lora=3"])


# -- typed sections ------------------------------------------------------------------------------------------------
def test_a_section_built_in_python_checks_itself_naming_the_yaml_key():
    from culturealign.recipes.clca import Filter
    from culturealign.recipes.culturespa import Questions

    with pytest.raises(UserError, match=r"'questions.temperature' must be >= 0, not -1"):
        Questions(temperature=-1)
    with pytest.raises(UserError, match=r"'filter.bad_max' must be in \[1, 4\], not 9"):
        Filter(bad_max=9)
    with pytest.raises(UserError, match=r"'questions.per_topic' must be a whole number"):
        Questions(per_topic="3")
    with pytest.raises(UserError, match=r"'questions.topics' must be a list, e.g. \[text\]"):
        Questions(topics="Security")
    assert Questions(topics=["Security"], seed=3).seed == 3


def test_recipe_configs_round_trip_through_their_yaml(tmp_path):
    import yaml

    from culturealign.config import load
    from culturealign.recipes import RECIPES, config_text, recipe_module

    for name in RECIPES:
        config = recipe_module(name).CONFIG
        described = yaml.safe_load(config_text(name))  # `culturealign config NAME`: every default, once
        assert described.pop("recipe") == name and described == config().to_dict()
        cfg = load(None, config, ["cultures=[DEU, CHN]", "train.lora.r=4"])
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg.to_dict()))
        assert load(path, config) == cfg  # what a run folder's config.yaml holds reloads as the same config


def test_an_engine_section_is_an_engine_spec_that_names_its_key():
    from culturealign.config import load
    from culturealign.recipes.caredio import Config

    cfg = load(None, Config, ["judge.model=other", "judge.batch_size=4"])
    assert (cfg.judge.model, cfg.judge.batch_size, cfg.generator.model) == ("other", 4, "smollm2")
    with pytest.raises(UserError, match="'judge.base_url'"):
        load(None, Config, ["judge.engine=openai"])
    with pytest.raises(UserError, match="unknown config key 'judge.modle'"):
        load(None, Config, ["judge.modle=x"])
    with pytest.raises(UserError, match="'student.engine' must be local"):
        from culturealign.recipes.common import check_student

        check_student(load(None, Config, ["student.engine=llamacpp"]))


def test_the_config_command_prints_a_loadable_config_and_refuses_an_unknown_recipe(tmp_path):
    import subprocess
    import sys

    code = "from culturealign.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "config", "surveyfit"], capture_output=True, text=True)
    assert proc.returncode == 0 and "samples_per_item: 4  # K reply codes" in proc.stdout
    (tmp_path / "c.yaml").write_text(proc.stdout)
    from culturealign.config import load
    from culturealign.recipes.surveyfit import Config

    assert load(tmp_path / "c.yaml", Config) == Config()
    proc = subprocess.run([sys.executable, "-c", code, "config", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown recipe 'nope'" in proc.stderr and "Traceback" not in proc.stderr
