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

from culturealign.data.survey import Survey
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import format_options, templates
from culturealign.records import SurveyQuestion
from culturealign.steps.base import Step

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
        pending = [(topic, slot) for topic in self.topics for slot in range(self.per_topic)]
        attempts = 0
        out: dict[tuple[str, int], SurveyQuestion] = {}
        last_reason: dict[tuple[str, int], str] = {}
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            replies = []
            for slot in sorted({s for _, s in pending}):  # one seed per slot, so equal prompts still differ
                batch = [(t, s) for t, s in pending if s == slot]
                seed = (self.seed * 100 + attempt) * 1000 + slot
                params = GenParams(self.temperature, 0.95, self.max_tokens, 1, seed=seed)
                label = f"questions (try {attempt + 1}, slot {slot + 1})"
                with progress_bar(label, len(batch)) as advance:
                    prompts = [self._prompt(t, s, attempt) for t, s in batch]
                    replies += self.engine.generate(prompts, params, progress=advance)
                attempts += len(batch)
            pending = sorted(pending, key=lambda k: k[1])
            still = []
            for (topic, slot), (reply,) in zip(pending, replies, strict=True):
                parsed = parse_question(reply)
                if isinstance(parsed, str):
                    last_reason[(topic, slot)] = parsed
                    still.append((topic, slot))
                    continue
                slug = re.sub(r"[^a-z]+", "-", topic.lower()).strip("-")
                out[(topic, slot)] = SurveyQuestion(f"gen-{slug}-{slot}", topic, parsed[0], parsed[1])
            pending = still
        for key in pending:
            self.drop(
                {"topic": key[0], "slot": key[1]}, f"invalid after {self.max_retries + 1} tries: {last_reason[key]}"
            )
        self.stats.update(requested=len(self.topics) * self.per_topic, valid=len(out), llm_calls=attempts)
        yield from (out[k] for k in sorted(out, key=lambda k: (self.topics.index(k[0]), k[1])))
