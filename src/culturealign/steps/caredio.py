"""CAReDiO steps (Yao et al., arXiv 2504.08820), as this project reads the paper.

- :class:`GenerateQueries`: per topic of the shipped everyday-culture framework, the generator writes open
  questions whose good answer depends on the asker's culture. Out: :class:`CulturalQuery`.
- :class:`OptimizeQueries`: scores culture-relatedness (``objectives.culture_relatedness_from_logprobs``: K
  answers sampled culture-unaware, each scored under every culture's persona) and has the LLM rewrite the
  low scorers in context (shown their score and the best queries so far), keeping a rewrite only when it
  scores higher; stops when the mean gain falls below ``min_gain`` or after ``rounds`` rounds.
- :class:`RespondDistinctive`: K candidate responses per (query, culture) from the culture's persona; keeps
  the most distinctive (``objectives.distinctiveness`` against the related cultures' personas) that the judge
  rates helpful and faithful. Out: :class:`ChatSample` with culture, scores and judge verdict in ``meta``.
Selection of N samples per culture is ``steps.representative.SelectRepresentativeDistinctive``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from typing import Any

import numpy as np

from culturealign.cultures import Culture
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import templates
from culturealign.records import ChatSample, CulturalQuery, Messages
from culturealign.steps.base import Step
from culturealign.steps.objectives import culture_relatedness_from_logprobs, distinctiveness
from culturealign.steps.retry import ask_until_parsed

TOPICS: dict[str, str] = json.loads(
    resources.files("culturealign.resources").joinpath("caredio_topics.json").read_text("utf-8")
)


def assistant_system(culture: Culture) -> str:
    return templates()["caredio"]["assistant_system"].format(country=culture.name, adjective=culture.adjective)


def persona_messages(culture: Culture, question: str) -> Messages:
    return [{"role": "system", "content": assistant_system(culture)}, {"role": "user", "content": question}]


def parse_query(text: str) -> str | None:
    """The first line that reads as a question (5-60 words ending in '?'), without quotes or a label."""
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:\*\*)?\s*(?:new\s+)?(?:question|q)\s*\d*\s*[:.]\s*", "", line, flags=re.I)
        line = line.strip().strip("\"'*").strip()
        if line.endswith("?") and 5 <= len(line.split()) <= 60:
            return line
    return None


def should_stop(history: Sequence[float], min_gain: float, rounds: int) -> bool:
    """Stop rewriting when ``rounds`` rounds are done or the last round raised the mean score by < min_gain."""
    done = len(history) - 1
    return done >= rounds or (done >= 1 and history[-1] - history[-2] < min_gain)


class GenerateQueries(Step):
    """Write ``per_topic`` culture-sensitive open questions for each topic (retried when unparseable)."""

    name = "generate-queries"

    def __init__(
        self,
        engine: Engine,
        topics: Sequence[str] | None = None,
        per_topic: int = 1,
        temperature: float = 0.9,
        max_tokens: int = 64,
        max_retries: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.per_topic, self.temperature = engine, per_topic, temperature
        self.topics = list(topics or TOPICS)
        self.max_tokens, self.max_retries, self.seed = max_tokens, max_retries, seed

    def run(self, records: Iterable) -> Iterator[CulturalQuery]:
        t = templates()["caredio"]
        slots = [(topic, slot) for topic in self.topics for slot in range(self.per_topic)]

        def prompt(key: tuple[str, int], attempt: int) -> Messages:
            return [
                {
                    "role": "user",
                    "content": t["query_user"].format(topic=key[0], description=TOPICS.get(key[0], key[0])),
                }
            ]

        def params(key: tuple[str, int], attempt: int) -> GenParams:
            return GenParams(self.temperature, 0.95, self.max_tokens, seed=(self.seed * 100 + attempt) * 1000 + key[1])

        def parse(reply: str) -> tuple[Any, str | None]:
            q = parse_query(reply)
            return (q, None) if q is not None else (None, "no question parsed")

        found = ask_until_parsed(self.engine, slots, prompt, parse, params, self.max_retries, "queries").values
        for topic, slot in slots:
            if (topic, slot) not in found:
                self.drop({"topic": topic, "slot": slot}, f"no question parsed after {self.max_retries + 1} tries")
        self.stats.update(requested=len(self.topics) * self.per_topic, valid=len(found))
        for topic in self.topics:
            for slot in range(self.per_topic):
                if (topic, slot) in found:
                    slug = re.sub(r"[^a-z]+", "-", topic.lower()).strip("-")
                    yield CulturalQuery(f"q-{slug}-{slot}", topic, found[(topic, slot)])


def score_relatedness(
    engine: Engine, questions: Sequence[str], cultures: Sequence[Culture], samples: int = 3, seed: int = 0
) -> list[float]:
    """Culture-relatedness of open questions: K culture-unaware answers, each scored under every persona."""
    prompts = [[{"role": "user", "content": q}] for q in questions]
    answers = engine.generate(prompts, GenParams(temperature=1.0, top_p=0.95, max_tokens=48, n=samples, seed=seed))
    jobs = [
        (persona_messages(c, q), a)
        for q, sampled in zip(questions, answers, strict=True)
        for c in cultures
        for a in sampled
    ]
    with progress_bar("relatedness", len(jobs)) as advance:
        logps = engine.score_completions([j[0] for j in jobs], [j[1] for j in jobs], progress=advance)
    per_q = np.asarray(logps, dtype=float).reshape(len(questions), len(cultures), samples)
    return [culture_relatedness_from_logprobs(m) for m in per_q]


class OptimizeQueries(Step):
    """Raise queries' culture-relatedness by in-context rewriting of the low scorers, round by round."""

    name = "optimize-queries"

    def __init__(
        self,
        engine: Engine,
        cultures: Sequence[Culture],
        rounds: int = 2,
        min_gain: float = 0.01,
        rewrite_fraction: float = 0.5,
        samples: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.cultures, self.rounds, self.min_gain = engine, list(cultures), rounds, min_gain
        self.rewrite_fraction, self.samples, self.seed = rewrite_fraction, samples, seed

    def _score(self, texts: list[str], round_: int) -> list[float]:
        return score_relatedness(self.engine, texts, self.cultures, self.samples, self.seed * 100 + round_)

    def run(self, records: Iterable[CulturalQuery]) -> Iterator[CulturalQuery]:
        queries = list(records)
        if not queries:
            return
        for q, s in zip(queries, self._score([q.text for q in queries], 0), strict=True):
            q.relatedness = s
        history = [float(np.mean([q.relatedness for q in queries]))]
        rewritten = 0
        while not should_stop(history, self.min_gain, self.rounds):
            round_ = len(history)
            ranked = sorted(queries, key=lambda q: q.relatedness)
            low = ranked[: max(1, int(len(ranked) * self.rewrite_fraction))]
            best = "\n".join(f"- ({q.relatedness:.3f}) {q.text}" for q in ranked[::-1][:3])
            t = templates()["caredio"]["rewrite_user"]
            prompts = [
                [{"role": "user", "content": t.format(best=best, score=q.relatedness, question=q.text, topic=q.topic)}]
                for q in low
            ]
            replies = self.engine.generate(prompts, GenParams(0.9, 0.95, 64, seed=self.seed * 100 + round_))
            candidates = [(q, parse_query(r)) for q, (r,) in zip(low, replies, strict=True)]
            candidates = [(q, text) for q, text in candidates if text and text != q.text]
            scores = self._score([text for _, text in candidates], round_) if candidates else []
            for (q, text), s in zip(candidates, scores, strict=True):
                if s > q.relatedness:
                    q.text, q.relatedness, q.rounds = text, s, q.rounds + 1
                    rewritten += 1
            history.append(float(np.mean([q.relatedness for q in queries])))
        self.stats.update(mean_relatedness_per_round=history, rewrites_kept=rewritten, queries=len(queries))
        yield from queries


class RespondDistinctive(Step):
    """For each (query, culture): K persona responses; keep the most distinctive one the judge accepts."""

    name = "respond"

    def __init__(
        self,
        engine: Engine,
        judge: Engine,
        cultures: Sequence[Culture],
        related: dict[str, list[Culture]],
        candidates: int = 3,
        temperature: float = 0.8,
        max_tokens: int = 96,
        judge_threshold: float = 0.5,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.judge, self.cultures, self.related = engine, judge, list(cultures), related
        self.k, self.temperature, self.max_tokens = candidates, temperature, max_tokens
        self.judge_threshold, self.seed = judge_threshold, seed

    def run(self, records: Iterable[CulturalQuery]) -> Iterator[ChatSample]:
        queries = list(records)
        pairs = [(q, c) for q in queries for c in self.cultures]
        params = GenParams(self.temperature, 0.95, self.max_tokens, n=self.k, seed=self.seed)
        with progress_bar("responses", len(pairs)) as advance:
            responses = self.engine.generate([persona_messages(c, q.text) for q, c in pairs], params, advance)
        # log p(y | x, persona) under the culture itself and under each related culture
        jobs = [
            (persona_messages(p, q.text), y)
            for (q, c), ys in zip(pairs, responses, strict=True)
            for y in ys
            for p in [c, *self.related[c.code]]
        ]
        with progress_bar("distinctiveness", len(jobs)) as advance:
            logps = iter(self.engine.score_completions([j[0] for j in jobs], [j[1] for j in jobs], advance))
        t = templates()["caredio"]["judge_user"]
        judge_prompts = [
            [{"role": "user", "content": t.format(country=c.name, adjective=c.adjective, question=q.text, response=y)}]
            for (q, c), ys in zip(pairs, responses, strict=True)
            for y in ys
        ]
        with progress_bar("judge", len(judge_prompts)) as advance:
            verdicts = iter(self.judge.score_options(judge_prompts, [["Yes", "No"]] * len(judge_prompts), advance))
        kept = 0
        for (q, c), ys in zip(pairs, responses, strict=True):
            scored = []
            for y in ys:
                own, *others = [next(logps) for _ in range(1 + len(self.related[c.code]))]
                d = distinctiveness(own, others) if others else 0.0
                scored.append((d, next(verdicts).probs["Yes"], y))
            passing = [s for s in scored if s[1] >= self.judge_threshold and s[2].strip()]
            if not passing:
                self.drop({"query": q.id, "culture": c.code}, "no candidate rated helpful and faithful by the judge")
                continue
            d, p_yes, y = max(passing, key=lambda s: s[0])
            kept += 1
            messages = [*persona_messages(c, q.text), {"role": "assistant", "content": y}]
            yield ChatSample(
                messages,
                {
                    "culture": c.code,
                    "topic": q.topic,
                    "query_id": q.id,
                    "distinctiveness": d,
                    "judge_yes": p_yes,
                    "relatedness": q.relatedness,
                },
            )
        self.stats.update(pairs=len(pairs), kept=kept, candidates_per_pair=self.k)
