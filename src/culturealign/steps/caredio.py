"""CAReDiO steps (Yao et al., arXiv 2504.08820), as this project reads the paper.

- :class:`GenerateQueries`: per topic of the shipped everyday-culture framework, the generator writes open
  questions whose good answer depends on the asker's culture. Out: :class:`CulturalQuery`.
- :class:`OptimizeQueries`: scores culture-relatedness (``objectives.culture_relatedness_from_logprobs``: K
  answers sampled culture-unaware, each scored under every culture's persona, weighed per byte of answer) and
  has the LLM rewrite the low scorers in context (shown their score and the best queries so far), keeping a
  rewrite only when it scores higher; stops when a round raises the mean by ``min_gain`` or less, or after
  ``rounds`` rounds.
- :class:`RespondDistinctive`: K candidate responses per (query, culture) from the culture's persona; keeps
  the most distinctive (``objectives.distinctiveness`` against the related cultures' personas) that the judge
  rates helpful and faithful. Out: :class:`ChatSample` with culture, scores and judge verdict in ``meta``.
- :class:`OptimizeResponses`: the response side of the paper's in-context optimization: the least distinctive
  responses of each culture are rewritten, shown their distinctiveness and the judge's verdict, and a rewrite is
  kept only when it is more distinctive and the judge still accepts it; same rounds and stopping rule.
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


def parse_response(text: str) -> str | None:
    """A rewritten reply without a label ("New reply:") or surrounding quotes; None when nothing is left."""
    text = re.sub(
        r"^\s*(?:\*\*)?\s*(?:new\s+|rewritten\s+)?(?:reply|response|answer)\s*:\s*(?:\*\*)?", "", text, flags=re.I
    )
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text or None


def should_stop(history: Sequence[float], min_gain: float, rounds: int) -> bool:
    """Stop rewriting when ``rounds`` rounds are done or the last round raised the mean score by ``min_gain`` or
    less (with ``min_gain`` 0: when a round kept no rewrite, since a rewrite is kept only when it scores higher)."""
    done = len(history) - 1
    return done >= rounds or (done >= 1 and history[-1] - history[-2] <= min_gain)


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
    """Culture-relatedness of open questions: K culture-unaware answers, each scored under every persona.

    Each answer is weighed by its log-likelihood per UTF-8 byte (``objectives.culture_relatedness_from_logprobs``):
    ``Engine.score_completions`` returns summed log-probabilities only, and each engine has its own tokenizer
    behind its own interface, so bytes are the length every engine's answers share. Empty answers are left out
    (they have no length to normalize by); a question whose answers are all empty scores 0.
    """
    prompts = [[{"role": "user", "content": q}] for q in questions]
    params = GenParams(temperature=1.0, top_p=0.95, max_tokens=48, n=samples, seed=seed)
    answers = [[a for a in sampled if a.strip()] for sampled in engine.generate(prompts, params)]
    jobs = [
        (persona_messages(c, q), a)
        for q, sampled in zip(questions, answers, strict=True)
        for c in cultures
        for a in sampled
    ]
    with progress_bar("relatedness", len(jobs)) as advance:
        logps = iter(engine.score_completions([j[0] for j in jobs], [j[1] for j in jobs], progress=advance))
    out = []
    for sampled in answers:
        rows = [[next(logps) for _ in sampled] for _ in cultures]
        lengths = [len(a.encode("utf-8")) for a in sampled]
        out.append(culture_relatedness_from_logprobs(np.array(rows), lengths) if sampled else 0.0)
    return out


def score_responses(
    engine: Engine, judge: Engine, items: Sequence[tuple[str, Culture, str]], related: dict[str, list[Culture]]
) -> list[tuple[float, float]]:
    """(distinctiveness, judge's P(Yes)) of each (query, culture, response): one scoring call and one judge call.

    Distinctiveness compares log p(y | x, persona) under the culture with its related cultures' (0 when it has
    none); the judge is asked whether the response is helpful and faithful to the culture.
    """
    jobs = [(persona_messages(p, q), y) for q, c, y in items for p in [c, *related[c.code]]]
    with progress_bar("distinctiveness", len(jobs)) as advance:
        logps = iter(engine.score_completions([j[0] for j in jobs], [j[1] for j in jobs], advance))
    t = templates()["caredio"]["judge_user"]
    judge_prompts = [
        [{"role": "user", "content": t.format(country=c.name, adjective=c.adjective, question=q, response=y)}]
        for q, c, y in items
    ]
    with progress_bar("judge", len(judge_prompts)) as advance:
        verdicts = judge.score_options(judge_prompts, [["Yes", "No"]] * len(judge_prompts), advance)
    out = []
    for (_, c, _), verdict in zip(items, verdicts, strict=True):
        own, *others = [next(logps) for _ in range(1 + len(related[c.code]))]
        out.append((distinctiveness(own, others) if others else 0.0, verdict.probs["Yes"]))
    return out


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
            top = ranked[-1].relatedness or 1.0  # scores are shown relative to the best: their unit says nothing
            best = "\n".join(f"- ({q.relatedness / top:.3f}) {q.text}" for q in ranked[::-1][:3])
            t = templates()["caredio"]["rewrite_user"]
            prompts = [
                [
                    {
                        "role": "user",
                        "content": t.format(best=best, score=q.relatedness / top, question=q.text, topic=q.topic),
                    }
                ]
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
        items = [(q.text, c, y) for (q, c), ys in zip(pairs, responses, strict=True) for y in ys]
        scores = iter(score_responses(self.engine, self.judge, items, self.related))
        kept = 0
        for (q, c), ys in zip(pairs, responses, strict=True):
            scored = [(*next(scores), y) for y in ys]
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


class OptimizeResponses(Step):
    """Raise responses' distinctiveness by in-context rewriting of each culture's least distinctive ones.

    In and out: :class:`ChatSample` records of :class:`RespondDistinctive` (``meta``: culture, distinctiveness,
    judge_yes). Each round the lowest ``rewrite_fraction`` of every culture's responses (distinctiveness scales
    differ between cultures) is rewritten by the generator, shown its distinctiveness against the related cultures
    and the judge's verdict; one generation call, one scoring call and one judge call per round over all of them. A
    rewrite replaces the response only when it is more distinctive and the judge still gives P(Yes) >=
    ``judge_threshold``. Stops as :class:`OptimizeQueries` does (:func:`should_stop`).
    """

    name = "optimize-responses"

    def __init__(
        self,
        engine: Engine,
        judge: Engine,
        cultures: Sequence[Culture],
        related: dict[str, list[Culture]],
        rounds: int = 2,
        min_gain: float = 0.0,
        rewrite_fraction: float = 0.5,
        temperature: float = 0.8,
        max_tokens: int = 96,
        judge_threshold: float = 0.5,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.judge, self.cultures, self.related = engine, judge, list(cultures), related
        self.rounds, self.min_gain = rounds, min_gain
        self.rewrite_fraction, self.temperature, self.max_tokens = rewrite_fraction, temperature, max_tokens
        self.judge_threshold, self.seed = judge_threshold, seed

    def _culture(self, sample: ChatSample) -> Culture:
        return {c.code: c for c in self.cultures}[sample.meta["culture"]]

    def _prompt(self, sample: ChatSample) -> Messages:
        c = self._culture(sample)
        p_yes = sample.meta["judge_yes"]
        verdict = "helpful and faithful" if p_yes >= self.judge_threshold else "not helpful and faithful enough"
        content = templates()["caredio"]["response_rewrite_user"].format(
            country=c.name,
            adjective=c.adjective,
            related=", ".join(r.name for r in self.related[c.code]) or "other cultures",
            question=sample.messages[-2]["content"],
            response=sample.messages[-1]["content"],
            distinctiveness=sample.meta["distinctiveness"],
            verdict=verdict,
            judge=p_yes,
        )
        return [{"role": "user", "content": content}]

    def _low(self, samples: list[ChatSample]) -> list[ChatSample]:
        """The least distinctive ``rewrite_fraction`` of each culture's samples (at least one per culture)."""
        out = []
        for code in dict.fromkeys(s.meta["culture"] for s in samples):
            ranked = sorted((s for s in samples if s.meta["culture"] == code), key=lambda s: s.meta["distinctiveness"])
            out += ranked[: max(1, int(len(ranked) * self.rewrite_fraction))]
        return out

    def run(self, records: Iterable[ChatSample]) -> Iterator[ChatSample]:
        samples = list(records)
        for s in samples:
            s.meta.setdefault("response_rounds", 0)
        history = [float(np.mean([s.meta["distinctiveness"] for s in samples]))] if samples else []
        judged = [float(np.mean([s.meta["judge_yes"] for s in samples]))] if samples else []
        tried = kept = refused = 0
        while samples and not should_stop(history, self.min_gain, self.rounds):
            round_ = len(history)
            low = self._low(samples)
            params = GenParams(self.temperature, 0.95, self.max_tokens, seed=self.seed * 100 + round_)
            with progress_bar(f"response rewrites, round {round_}", len(low)) as advance:
                replies = self.engine.generate([self._prompt(s) for s in low], params, advance)
            candidates = [(s, parse_response(r)) for s, (r,) in zip(low, replies, strict=True)]
            candidates = [(s, y) for s, y in candidates if y and y != s.messages[-1]["content"]]
            items = [(s.messages[-2]["content"], self._culture(s), y) for s, y in candidates]
            scores = score_responses(self.engine, self.judge, items, self.related) if items else []
            tried += len(candidates)
            for (s, y), (d, p_yes) in zip(candidates, scores, strict=True):
                if p_yes < self.judge_threshold:
                    refused += 1
                elif d > s.meta["distinctiveness"]:
                    s.messages[-1] = {"role": "assistant", "content": y}
                    s.meta.update(distinctiveness=d, judge_yes=p_yes, response_rounds=s.meta["response_rounds"] + 1)
                    kept += 1
            history.append(float(np.mean([s.meta["distinctiveness"] for s in samples])))
            judged.append(float(np.mean([s.meta["judge_yes"] for s in samples])))
        relatedness = [s.meta["relatedness"] for s in samples if s.meta.get("relatedness") is not None]
        self.stats.update(
            mean_distinctiveness_per_round=history,
            mean_judge_yes_per_round=judged,
            mean_relatedness=float(np.mean(relatedness)) if relatedness else None,
            rewrites_tried=tried,
            rewrites_kept=kept,
            rewrites_refused_by_judge=refused,
            samples=len(samples),
        )
        yield from samples
