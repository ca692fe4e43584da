"""Survey prompts: the persona system prompts (unaware, aware, cross-culture) and the question format.

Shared by the WVS evaluation and the CultureSPA answer steps, so that a model is trained and tested on the
same wording. Templates live in ``resources/prompts.yaml``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

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


# -- evaluation variants: the same items under another option order, instruction wording or question text --------
ORDERS = ("printed", "reversed", "shuffle-N")
STANDARD_VARIANTS = ("default", "reversed", "template-interview", "template-nosystem")
VARIANT_HELP = (
    "a variant is '+'-joined parts: default | reversed | shuffle-N (a seeded option order) | template-NAME ("
    "{templates}) | paraphrase (question texts from --paraphrases); 'standard' = " + ",".join(STANDARD_VARIANTS)
)


@cache
def survey_templates() -> dict:
    """The instruction templates of the evaluation variants (``resources/survey_templates.yaml``)."""
    text = resources.files("culturealign.resources").joinpath("survey_templates.yaml").read_text("utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class Variant:
    """How one evaluation variant shows a survey question: the option order, the instruction template and whether
    the question text is the user's paraphrase. Every option keeps its code and label; only presentation changes."""

    name: str = "default"
    order: str = "printed"  # printed | reversed | shuffle-N
    template: str = "default"
    paraphrase: bool = False

    def options(self, question: SurveyQuestion) -> list[tuple[str, str]]:
        """The question's (code, label) pairs in this variant's order (a shuffle: seeded by its N and the question)."""
        pairs = list(question.options.items())
        if self.order == "reversed":
            return pairs[::-1]
        if self.order.startswith("shuffle-"):
            random.Random(f"{self.order}:{question.id}").shuffle(pairs)
        return pairs

    def messages(
        self,
        question: SurveyQuestion,
        culture: Culture | None,
        mode: str,
        similarity: dict[str, dict[str, float]] | None = None,
        paraphrases: Mapping[str, str] | None = None,
    ) -> Messages:
        """Chat messages asking ``question`` under this variant; the expected reply is an option code."""
        t, survey = survey_templates()[self.template], templates()["survey"]
        unaware = culture is None or mode == "unaware"
        if unaware:
            system = t.get("unaware_system", survey["unaware_system"])
        elif mode == "aware" and "aware_system" in t:
            system = t["aware_system"].format(adjective=culture.adjective, country=culture.name)
        else:
            system = persona_system(culture, mode, similarity)
        text = (paraphrases or {}).get(question.id, question.text) if self.paraphrase else question.text
        options = "\n".join(f"{code}. {label}" for code, label in self.options(question))
        user = t.get("user", survey["user"]).format(question=text, options=options)
        if t.get("system", True):
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return [{"role": "user", "content": user if unaware else f"{system}\n\n{user}"}]


def parse_variant(name: str) -> Variant:
    """``reversed+template-direct`` -> a :class:`Variant`; an unknown part is a UserError naming the valid ones."""
    order, template, paraphrase = "printed", "default", False
    for part in name.strip().split("+"):
        if part == "default":
            continue
        if part == "reversed" or re.fullmatch(r"shuffle-\d+", part):
            order = part
        elif part.startswith("template-") and part.removeprefix("template-") in survey_templates():
            template = part.removeprefix("template-")
        elif part == "paraphrase":
            paraphrase = True
        else:
            raise UserError(
                f"unknown evaluation variant {part!r} in {name!r}: "
                + VARIANT_HELP.format(templates=", ".join(survey_templates()))
            )
    return Variant(name.strip(), order, template, paraphrase)


def parse_variants(names: Sequence[str] | str | None, paraphrases: Mapping[str, str] | None = None) -> list[Variant]:
    """The variants named (a list or a comma-separated string; ``standard`` expands); none: the default only."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    expanded = [v for n in names or ["default"] for v in (STANDARD_VARIANTS if n.strip() == "standard" else [n])]
    variants = [parse_variant(n) for n in dict.fromkeys(n.strip() for n in expanded)]
    if any(v.paraphrase for v in variants) and not paraphrases:
        raise UserError("the variant 'paraphrase' needs a paraphrase file: pass --paraphrases FILE (eval.paraphrases)")
    return variants


def load_paraphrases(path: str | Path | None, question_ids: Sequence[str] | None) -> dict[str, str] | None:
    """A paraphrase file (JSON or YAML, question id -> text): every id must be one of ``question_ids`` (None: not
    checked here), every text non-empty."""
    if path is None:
        return None
    path = Path(path)
    try:
        data = (
            yaml.safe_load(path.read_text("utf-8"))
            if path.suffix in (".yaml", ".yml")
            else json.loads(path.read_text("utf-8"))
        )
    except OSError as e:
        raise UserError(f"cannot read the paraphrase file {path}: {e.strerror}") from e
    except (ValueError, yaml.YAMLError) as e:
        raise UserError(
            f"{path} is not valid JSON/YAML ({str(e).splitlines()[0]}): write {{question id: text}}"
        ) from e
    if not isinstance(data, dict) or not data:
        raise UserError(f'{path} must map question ids to paraphrased texts, e.g. {{"Q1": "..."}}')
    known = set(question_ids) if question_ids is not None else {str(k) for k in data}
    unknown = sorted(str(k) for k in data if str(k) not in known)
    if unknown:
        raise UserError(f"{path}: question ids not in the survey: {', '.join(unknown[:5])}; use the survey's ids")
    empty = sorted(str(k) for k, v in data.items() if not isinstance(v, str) or not v.strip())
    if empty:
        raise UserError(f"{path}: empty or non-text paraphrases for {', '.join(empty[:5])}; give each a question text")
    return {str(k): v.strip() for k, v in data.items()}
