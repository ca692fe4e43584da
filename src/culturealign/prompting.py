"""Survey prompts: the persona system prompts (unaware, aware, cross-culture) and the question format.

Shared by the WVS evaluation and the CultureSPA answer steps, so that a model is trained and tested on the
same wording. Templates live in ``resources/prompts.yaml``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from culturealign.cultures import Culture, get_culture, related_cultures
from culturealign.errors import UserError
from culturealign.records import Messages, SurveyQuestion

PROMPT_MODES = ("unaware", "aware", "cross-culture")


@cache
def templates() -> dict:
    return yaml.safe_load(resources.files("culturealign.resources").joinpath("prompts.yaml").read_text("utf-8"))


@cache
def hhh_prompts() -> dict:
    """AlignCultura's prompts (``resources/hhh_prompts.yaml``): dataset construction and the versioned judges."""
    return yaml.safe_load(resources.files("culturealign.resources").joinpath("hhh_prompts.yaml").read_text("utf-8"))


def format_options(question: SurveyQuestion) -> str:
    return "\n".join(f"{code}. {label}" for code, label in question.options.items())


def persona_system(
    culture: Culture | None, mode: str = "aware", similarity: dict[str, dict[str, float]] | None = None
) -> str:
    """The system prompt of a survey respondent: no culture, a culture, or a culture with cross-culture thinking."""
    t = templates()["survey"]
    if mode not in PROMPT_MODES:
        raise UserError(f"unknown prompt mode {mode!r}: use one of {', '.join(PROMPT_MODES)}")
    if culture is None or mode == "unaware":
        return t["unaware_system"]
    if mode == "aware":
        return t["aware_system"].format(adjective=culture.adjective, country=culture.name)
    if not similarity or culture.code not in similarity:
        raise UserError(
            f"cross-culture prompting needs a similarity table with {culture.code}: "
            "use a survey folder with country_similarity.json"
        )
    similar, different = related_cultures(culture.code, similarity, k=3)
    names = lambda codes: ", ".join(get_culture(c).name for c in codes)  # noqa: E731
    return t["cross_culture_system"].format(
        adjective=culture.adjective, country=culture.name, similar=names(similar), different=names(different)
    )


def survey_messages(question: SurveyQuestion, system: str) -> Messages:
    """Chat messages asking one survey question; the expected reply is an option code."""
    user = templates()["survey"]["user"].format(question=question.text, options=format_options(question))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
