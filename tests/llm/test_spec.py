"""One engine spec: it checks itself, naming the option or YAML key, and builds every engine kind."""

from __future__ import annotations

import pytest

from culturealign.errors import UserError
from culturealign.llm.openai import OpenAIEngine
from culturealign.llm.spec import EngineSpec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"engine": "vllm"}, "unknown engine 'vllm' (config key 'generator.engine'): use local, openai, llamacpp"),
        ({"batch_size": 0}, "config key 'generator.batch_size' must be a whole number >= 1, not 0"),
        ({"dtype": "int4"}, "config key 'generator.dtype' must be one of float32, bfloat16, float16"),
        ({"engine": "openai"}, "needs config key 'generator.base_url'"),
        ({"engine": "openai", "base_url": "http://x/v1", "adapter": "a"}, "config key 'generator.adapter' applies"),
    ],
)
def test_a_bad_section_names_its_yaml_key(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EngineSpec.from_section(kwargs, "generator")


def test_options_are_named_as_the_command_line_spells_them():
    with pytest.raises(UserError, match="--batch-size must be a whole number >= 1"):
        EngineSpec(batch_size=-1)


def test_a_section_builds_its_engine_with_every_setting():
    section = {"engine": "openai", "model": "m", "base_url": "http://x/v1", "revision": "r2", "unrelated": 1}
    engine = EngineSpec.from_section(section, "judge").build()
    assert isinstance(engine, OpenAIEngine) and engine.revision == "r2" and engine.base_url == "http://x/v1"
    assert EngineSpec.from_section(section, "judge").settings()["revision"] == "r2"
    assert "where" not in EngineSpec().settings()
