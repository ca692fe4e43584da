"""Evaluation variants: option order, instruction templates and paraphrases change presentation, never codes."""

import json

import pytest

from culturealign.cultures import get_culture
from culturealign.errors import UserError
from culturealign.prompting import (
    STANDARD_VARIANTS,
    load_paraphrases,
    parse_variant,
    parse_variants,
    persona_system,
    survey_messages,
    survey_templates,
)
from culturealign.records import SurveyQuestion

Q = SurveyQuestion(
    id="Q1",
    topic="Family",
    text="How important is family?",
    options={"1": "Very", "2": "Rather", "3": "Not very", "4": "Not at all"},
)


def shown_codes(messages) -> list[str]:
    return [line.split(".")[0] for line in messages[-1]["content"].splitlines() if line[:1].isdigit()]


def test_default_variant_is_the_prompt_every_earlier_figure_used():
    deu = get_culture("DEU")
    for culture, mode in ((deu, "aware"), (None, "unaware"), (deu, "unaware")):
        assert parse_variant("default").messages(Q, culture, mode) == survey_messages(Q, persona_system(culture, mode))


def test_orders_keep_each_code_with_its_label():
    reversed_ = parse_variant("reversed").messages(Q, get_culture("DEU"), "aware")
    assert shown_codes(reversed_) == ["4", "3", "2", "1"]
    assert "4. Not at all" in reversed_[-1]["content"] and "1. Very" in reversed_[-1]["content"]
    one, again, other = (parse_variant(n).options(Q) for n in ("shuffle-1", "shuffle-1", "shuffle-2"))
    assert one == again and sorted(one) == sorted(Q.options.items())  # seeded: the same order every time
    assert {tuple(parse_variant(f"shuffle-{n}").options(Q)) for n in range(6)} != {tuple(one)}  # seeds differ


def test_templates_word_the_instruction_differently_and_nosystem_has_no_system_turn():
    deu = get_culture("DEU")
    users = {
        name: parse_variant(f"template-{name}").messages(Q, deu, "aware")[-1]["content"] for name in survey_templates()
    }
    assert len(set(users.values())) >= 3  # at least three wordings
    no_system = parse_variant("template-nosystem").messages(Q, deu, "aware")
    assert [m["role"] for m in no_system] == ["user"] and "German" in no_system[0]["content"]
    unaware = parse_variant("template-nosystem").messages(Q, None, "unaware")
    assert [m["role"] for m in unaware] == ["user"] and "World Values Survey" not in unaware[0]["content"]
    combined = parse_variant("template-interview+reversed").messages(Q, deu, "aware")
    assert shown_codes(combined) == ["4", "3", "2", "1"] and "interviewer" in combined[-1]["content"]


def test_paraphrase_replaces_the_question_text_only_where_given():
    v = parse_variant("paraphrase")
    assert (
        "Is family important to you?"
        in v.messages(Q, None, "unaware", paraphrases={"Q1": "Is family important to you?"})[-1]["content"]
    )
    assert Q.text in v.messages(Q, None, "unaware", paraphrases={"Q2": "x"})[-1]["content"]


def test_variant_names_expand_and_bad_ones_fail_in_one_line():
    assert [v.name for v in parse_variants("standard")] == list(STANDARD_VARIANTS)
    assert [v.name for v in parse_variants(None)] == ["default"]
    assert [v.name for v in parse_variants("default, reversed,default")] == ["default", "reversed"]
    for bad in ("upside-down", "template-klingon", "shuffle-x"):
        with pytest.raises(UserError, match="unknown evaluation variant") as e:
            parse_variants(bad)
        assert "\n" not in str(e.value) and "template-interview" in str(e.value)
    with pytest.raises(UserError, match="--paraphrases"):
        parse_variants("paraphrase")


def test_paraphrase_files_are_checked(tmp_path):
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"Q1": " Is family important to you? "}))
    assert load_paraphrases(good, ["Q1", "Q2"]) == {"Q1": "Is family important to you?"}
    (tmp_path / "p.yaml").write_text("Q2: Is work important?\n")
    assert load_paraphrases(tmp_path / "p.yaml", ["Q1", "Q2"]) == {"Q2": "Is work important?"}
    cases = {
        "unknown.json": ({"Q9": "text"}, "not in the survey: Q9"),
        "empty.json": ({"Q1": "  "}, "empty or non-text paraphrases for Q1"),
        "list.json": (["Q1"], "must map question ids"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(data))
        with pytest.raises(UserError, match=message):
            load_paraphrases(tmp_path / name, ["Q1", "Q2"])
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_paraphrases(tmp_path / "broken.json", ["Q1"])
    with pytest.raises(UserError, match="cannot read"):
        load_paraphrases(tmp_path / "missing.json", ["Q1"])
