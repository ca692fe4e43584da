"""Question generation (CultureSPA step 1): the model writes new survey questions per WVS topic.

In: survey questions (the in-context seeds; records passed in are ignored). Out: generated
:class:`SurveyQuestion` records. Each call shows k real questions of the topic, drawn at random per call;
replies are parsed and validated (a question, 2-11 distinct options); invalid replies are asked again up to
``max_retries`` times (a new seed each time), then counted and dropped.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

from culturealign.data.survey import Survey
from culturealign.llm.base import Engine, GenParams
from culturealign.prompting import format_options, templates
from culturealign.records import SurveyQuestion
from culturealign.steps.base import Step
from culturealign.steps.retry import ask_until_parsed
from culturealign.text import slug

WVS_TOPICS = json.loads(resources.files("culturealign.resources").joinpath("wvs_topics.json").read_text("utf-8"))
_OPTION = re.compile(r"^\s*\(?(\d{1,2})\s*[.):\-]\s*(.+?)\s*$")
_QUESTION = re.compile(r"^\s*(?:\*\*)?\s*(?:new\s+)?question\s*\d*\s*[:.]\s*(?:\*\*)?\s*(.+?)\s*$", re.I)


def parse_question(text: str) -> tuple[str, dict[str, str]] | str:
    """Parse ``Question: ...`` plus numbered options; returns (question, options) or the reason it failed."""
    question = None
    options: dict[str, str] = {}
    for line in text.splitlines():
        if question is None:
            m = _QUESTION.match(line)
            if m:
                question = m.group(1)
            continue
        m = _OPTION.match(line)
        if m:
            code, label = m.group(1), m.group(2).strip().rstrip(".")
            if code != str(len(options) + 1):
                break  # numbering restarted: a second question or an example
            options[code] = label
        elif options:
            break
    if not question or len(question) < 10:
        return "no question line"
    if not question.rstrip().endswith("?") and len(question.split()) < 4:
        return "question too short"
    if not 2 <= len(options) <= 11:
        return "not 2-11 options"
    if len({v.lower() for v in options.values()}) != len(options):
        return "options not distinct"
    return question, options


class GenerateQuestions(Step):
    """Write ``per_topic`` new questions for each topic, seeded with ``examples`` real questions per call."""

    name = "generate-questions"

    def __init__(
        self,
        engine: Engine,
        survey: Survey,
        per_topic: int = 3,
        examples: int = 3,
        topics: list[str] | None = None,
        temperature: float = 0.8,
        max_tokens: int = 160,
        max_retries: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.survey, self.per_topic, self.examples = engine, survey, per_topic, examples
        self.topics = topics or [t for t in WVS_TOPICS if any(q.topic == t for q in survey.questions.values())]
        self.temperature, self.max_tokens, self.max_retries, self.seed = temperature, max_tokens, max_retries, seed

    def _prompt(self, topic: str, slot: int, attempt: int) -> list[dict[str, str]]:
        pool = [q for q in self.survey.questions.values() if q.topic == topic]
        rng = random.Random(f"{self.seed}:{topic}:{slot}:{attempt}")
        shown = rng.sample(pool, min(self.examples, len(pool)))
        examples = "\n\n".join(f"Question: {q.text}\n{format_options(q)}" for q in shown)
        t = templates()["generate_questions"]
        user = t["user"].format(topic=topic, description=WVS_TOPICS.get(topic, topic), examples=examples)
        return [{"role": "system", "content": t["system"]}, {"role": "user", "content": user}]

    def run(self, records: Iterable[SurveyQuestion]) -> Iterator[SurveyQuestion]:
        slots = [(topic, slot) for topic in self.topics for slot in range(self.per_topic)]

        def params(key: tuple[str, int], attempt: int) -> GenParams:  # one seed per slot: equal prompts still differ
            return GenParams(
                self.temperature, 0.95, self.max_tokens, 1, seed=(self.seed * 100 + attempt) * 1000 + key[1]
            )

        def parse(reply: str) -> tuple[Any, str | None]:
            parsed = parse_question(reply)
            return (None, parsed) if isinstance(parsed, str) else (parsed, None)

        got = ask_until_parsed(
            self.engine, slots, lambda k, a: self._prompt(k[0], k[1], a), parse, params, self.max_retries, "questions"
        )
        for topic, slot in sorted(slots, key=lambda k: k[1]):  # dropped.jsonl in the order the slots were asked
            if (topic, slot) not in got.values:
                reason = got.failures[(topic, slot)]
                self.drop({"topic": topic, "slot": slot}, f"invalid after {self.max_retries + 1} tries: {reason}")
        self.stats.update(requested=len(slots), valid=len(got.values), llm_calls=got.asked)
        for topic, slot in slots:
            if (topic, slot) in got.values:
                text, options = got.values[(topic, slot)]
                yield SurveyQuestion(f"gen-{slug(topic)}-{slot}", topic, text, options)
