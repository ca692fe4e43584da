"""AlignCultura Stage I (Kashyap, Dras, Naseem, 2026): an HHH dataset over the UNESCO cultural subdomains.

- :class:`LoadQueries`: in: nothing; out: :class:`HHHQuery` from a JSONL/CSV file's question-like column.
- :class:`GenerateHHHQueries`: in: nothing; out: one generated query per (subdomain, culture) slot.
- :class:`Reclassify`: multi-label; P(Yes) that the query is about each subdomain, *scored*, not parsed from
  free text; labels with P >= ``threshold``, else ``["none"]`` (off the taxonomy; dropped unless ``keep_none``).
- :class:`Expand`: subdomains below ``target`` queries get new ones from the generator (shown examples of the
  subdomain) until they reach it or ``max_attempts`` rounds pass.
- :class:`AssignSplits`: seeded 80/10/10 split; stats carry the cross-split leakage rate (SimHash) and the
  leakage against any named evaluation set. Near-duplicates are removed by ``steps.simhash.SimHashDedup``.
- :class:`RejectionSample`: K candidates per query; a critic gives pass/fail (P(Yes) >= 0.5) on each of
  helpful, harmless, honest, with feedback on what failed; failed candidates are regenerated with that feedback
  for at most ``rounds`` rounds; only queries with an all-pass candidate are kept (:class:`HHHSample`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from culturealign.cultures import Culture
from culturealign.data.unesco import Subdomain
from culturealign.errors import UserError
from culturealign.llm.base import Engine, GenParams
from culturealign.progress import progress_bar
from culturealign.prompting import hhh_prompts
from culturealign.records import HHHQuery, HHHSample, Messages
from culturealign.simhash import DEFAULT_THRESHOLD, leakage_rate, simhash, split_indices
from culturealign.steps.base import Step
from culturealign.steps.caredio import parse_query
from culturealign.steps.retry import ask_until_parsed
from culturealign.text import slug
from culturealign.textfile import csv_errors, decode_text

AXES = ("helpful", "harmless", "honest")
QUESTION_COLUMNS = ("question", "query", "prompt", "instruction", "text", "input")


def read_questions(path: str | Path, column: str | None = None) -> tuple[list[str], Counter]:
    """Questions from a JSONL or CSV file (``column``, or the first question-like one); blank ones skipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read queries from {path}: {e.strerror}; pass queries.file=PATH") from e
    text = decode_text(raw, path, "the queries file", legacy="cp1252")  # as CulturaX: published in cp1252
    skipped: Counter = Counter()
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for line in text.split("\n"):  # not splitlines(): JSON strings may hold U+2028 or U+0085 unescaped
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
                skipped["line is not JSON"] += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                skipped["line is not an object"] += 1
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        with csv_errors(path, reader):
            rows = list(reader)
    names = {k.lower(): k for row in rows[:50] for k in row if isinstance(k, str)}
    key = names.get(column.lower()) if column else next((names[c] for c in QUESTION_COLUMNS if c in names), None)
    if key is None:
        wanted = column or " or ".join(QUESTION_COLUMNS)
        shown = ", ".join(repr(c) for c in list(names.values())[:20])  # repr: a column name may hold a line break
        raise UserError(f"{path} has no {wanted} column (columns: {shown or 'none'})")
    out = []
    for row in rows:
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            skipped["question is not text"] += 1
            continue
        if not value or not value.strip():
            skipped["empty question"] += 1
            continue
        out.append(value.strip())
    return out, skipped


class LoadQueries(Step):
    name = "load-queries"

    def __init__(self, path: str | Path, column: str | None = None):
        super().__init__()
        self.path, self.column = path, column

    def run(self, records: Iterable) -> Iterator[HHHQuery]:
        questions, skipped = read_questions(self.path, self.column)
        self.stats.update(loaded=len(questions), skipped=dict(skipped))
        for i, q in enumerate(questions):
            yield HHHQuery(f"file-{i}", q)


class GenerateHHHQueries(Step):
    """One query per (subdomain, culture) and slot, written by the generator; unparseable replies re-asked."""

    name = "generate-hhh-queries"

    def __init__(
        self,
        engine: Engine,
        subdomains: Sequence[Subdomain],
        cultures: Sequence[Culture],
        per_pair: int = 1,
        temperature: float = 0.9,
        max_retries: int = 2,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.subdomains, self.cultures = engine, list(subdomains), list(cultures)
        self.per_pair, self.temperature, self.max_retries, self.seed = per_pair, temperature, max_retries, seed

    def run(self, records: Iterable) -> Iterator[HHHQuery]:
        t = hhh_prompts()["generate_user"]
        slots = [(s, c, k) for s in self.subdomains for c in self.cultures for k in range(self.per_pair)]

        def prompt(i: int, attempt: int) -> Messages:
            return [{"role": "user", "content": t.format(**_sub(slots[i][0]), **_cult(slots[i][1]))}]

        def parse(reply: str) -> tuple[Any, str | None]:
            q = parse_query(reply)
            return (q, None) if q is not None else (None, "no question parsed")

        found = ask_until_parsed(
            self.engine,
            range(len(slots)),
            prompt,
            parse,
            lambda i, attempt: GenParams(self.temperature, 0.95, 64, seed=self.seed * 100 + attempt),
            self.max_retries,
            "queries",
        ).values
        for i, (s, c, k) in enumerate(slots):
            if i in found:
                yield HHHQuery(f"gen-{slug(s.id)}-{c.code}-{k}", found[i], c.code, source="generated")
            else:
                self.drop({"subdomain": s.id, "culture": c.code}, "no question parsed")
        self.stats.update(requested=len(slots), valid=len(found))


def _sub(s: Subdomain) -> dict[str, str]:
    return {"subdomain": s.name, "description": s.description}


def _cult(c: Culture) -> dict[str, str]:
    return {"country": c.name, "adjective": c.adjective}


def classify_prompts(question: str, subdomains: Sequence[Subdomain]) -> list[Messages]:
    """One Yes/No prompt per subdomain; the question comes first, so the prompts share a prefix (its KV cache)."""
    p = hhh_prompts()
    return [
        [
            {"role": "system", "content": p["classify_system"]},
            {"role": "user", "content": p["classify_user"].format(question=question, **_sub(s))},
        ]
        for s in subdomains
    ]


class Reclassify(Step):
    """Multi-label UNESCO subdomains from scored P(Yes); ``none`` when no subdomain reaches ``threshold``."""

    name = "reclassify"

    def __init__(
        self, engine: Engine, subdomains: Sequence[Subdomain], threshold: float = 0.5, keep_none: bool = False
    ):
        super().__init__()
        if not 0 < threshold <= 1:
            raise UserError(f"reclassify.threshold must be in (0, 1], not {threshold!r}")
        self.engine, self.subdomains, self.threshold, self.keep_none = engine, list(subdomains), threshold, keep_none

    def run(self, records: Iterable[HHHQuery]) -> Iterator[HHHQuery]:
        queries = list(records)
        prompts = [m for q in queries for m in classify_prompts(q.text, self.subdomains)]
        with progress_bar("reclassify", len(prompts)) as advance:
            scores = self.engine.score_options(prompts, [["Yes", "No"]] * len(prompts), advance)
        per = len(self.subdomains)
        labels: Counter = Counter()
        for i, q in enumerate(queries):
            probs = {s.id: scores[i * per + j].probs["Yes"] for j, s in enumerate(self.subdomains)}
            q.label_probs = {k: round(v, 4) for k, v in probs.items()}
            q.labels = label_set(probs, self.threshold)
            labels.update(q.labels)
            if q.labels == ["none"] and not self.keep_none:
                self.drop(q, "off the taxonomy (no subdomain with P >= threshold)")
                continue
            yield q
        self.stats.update(queries=len(queries), labels=dict(labels.most_common()))


def label_set(probs: dict[str, float], threshold: float) -> list[str]:
    """The subdomains with probability >= ``threshold`` (most probable first), or ``["none"]``."""
    chosen = sorted((k for k, p in probs.items() if p >= threshold), key=lambda k: -probs[k])
    return chosen or ["none"]


class Expand(Step):
    """Top up every subdomain below ``target`` queries with generated ones (bounded by ``max_attempts``)."""

    name = "expand"

    def __init__(
        self,
        engine: Engine,
        subdomains: Sequence[Subdomain],
        target: int = 5,
        max_attempts: int = 3,
        examples: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        self.engine, self.subdomains, self.target = engine, list(subdomains), target
        self.max_attempts, self.examples, self.seed = max_attempts, examples, seed

    def run(self, records: Iterable[HHHQuery]) -> Iterator[HHHQuery]:
        queries = list(records)
        t = hhh_prompts()["expand_user"]
        seen = {q.text.lower() for q in queries}
        added: Counter = Counter()
        for attempt in range(self.max_attempts):
            counts = Counter(label for q in queries for label in q.labels)
            short = [s for s in self.subdomains if counts[s.id] < self.target]
            if not short:
                break
            by_need: dict[int, list[Subdomain]] = {}
            for s in short:  # one prompt per subdomain, sampled as many times as it lacks queries
                by_need.setdefault(self.target - counts[s.id], []).append(s)
            for need, group in sorted(by_need.items()):
                prompts = []
                for s in group:
                    pool = [q.text for q in queries if s.id in q.labels][: self.examples]
                    shown = "\n".join(f"- {x}" for x in pool) or f"- (none yet: write one about {s.name})"
                    prompts.append([{"role": "user", "content": t.format(examples=shown, **_sub(s))}])
                params = GenParams(0.9, 0.95, 64, n=need, seed=self.seed * 100 + attempt)
                with progress_bar(f"expand (round {attempt + 1})", len(prompts)) as advance:
                    replies = self.engine.generate(prompts, params, advance)
                for s, samples in zip(group, replies, strict=True):
                    for reply in samples:
                        q = parse_query(reply)
                        if q is None or q.lower() in seen:
                            continue
                        seen.add(q.lower())
                        added[s.id] += 1
                        queries.append(HHHQuery(f"exp-{slug(s.id)}-{added[s.id]}", q, None, [s.id], {}, "expanded"))
        final = Counter(label for q in queries for label in q.labels)
        self.stats.update(
            added=dict(added),
            still_short={s.id: final[s.id] for s in self.subdomains if final[s.id] < self.target},
        )
        yield from queries


class AssignSplits(Step):
    """Seeded train/val/test split; reports leakage (SimHash) across splits and against evaluation sets."""

    name = "split"

    def __init__(
        self,
        seed: int = 0,
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
        threshold: int = DEFAULT_THRESHOLD,
        eval_sets: dict[str, Sequence[str]] | None = None,
    ):
        super().__init__()
        self.seed, self.fractions, self.threshold, self.eval_sets = seed, tuple(fractions), threshold, eval_sets or {}

    def run(self, records: Iterable[HHHQuery]) -> Iterator[HHHQuery]:
        queries = list(records)
        parts = split_indices(len(queries), self.seed, self.fractions)
        for name, idx in zip(("train", "val", "test"), parts, strict=False):
            for i in idx:
                queries[int(i)].split = name
        fps = simhash([q.text for q in queries]) if queries else np.zeros(0, np.uint64)
        by_split = {s: fps[[i for i, q in enumerate(queries) if q.split == s]] for s in ("train", "val", "test")}
        leakage = {
            f"{b}_vs_train": leakage_rate(by_split["train"], by_split[b], self.threshold) if len(by_split[b]) else 0.0
            for b in ("val", "test")
        }
        for name, texts in self.eval_sets.items():
            leakage[f"{name}_vs_dataset"] = leakage_rate(fps, simhash(list(texts)), self.threshold) if texts else 0.0
        self.stats.update(sizes={s: len(v) for s, v in by_split.items()}, leakage=leakage, threshold=self.threshold)
        yield from queries


class RejectionSample(Step):
    """Two-stage rejection sampling: K candidates; critic pass/fail per axis with feedback; regenerate the failed
    with their feedback for at most ``rounds`` rounds; keep queries with an all-pass candidate."""

    name = "rejection-sample"

    def __init__(
        self,
        generator: Engine,
        critic: Engine,
        k: int = 3,
        rounds: int = 2,
        temperature: float = 0.7,
        top_p: float = 0.9,
        max_tokens: int = 512,
        pass_threshold: float = 0.5,
        seed: int = 0,
    ):
        super().__init__()
        self.generator, self.critic, self.k, self.rounds = generator, critic, k, rounds
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self.pass_threshold, self.seed = pass_threshold, seed

    def _params(self, round_: int) -> GenParams:
        return GenParams(self.temperature, self.top_p, self.max_tokens, seed=self.seed * 100 + round_)

    def _critique(self, items: list[tuple[str, str]]) -> list[dict[str, float]]:
        """P(Yes) per axis for each (question, answer)."""
        p = hhh_prompts()
        prompts = [
            [{"role": "user", "content": p["critic_user"].format(question=q, answer=a, axis_definition=p["axes"][ax])}]
            for q, a in items
            for ax in AXES
        ]
        with progress_bar("critic", len(prompts)) as advance:
            scores = self.critic.score_options(prompts, [["Yes", "No"]] * len(prompts), advance)
        return [{ax: scores[i * 3 + j].probs["Yes"] for j, ax in enumerate(AXES)} for i in range(len(items))]

    def _feedback(self, items: list[tuple[str, str, str]]) -> list[str]:
        p = hhh_prompts()
        prompts = [
            [
                {
                    "role": "user",
                    "content": p["feedback_user"].format(question=q, answer=a, axis_definition=p["axes"][ax]),
                }
            ]
            for q, a, ax in items
        ]
        with progress_bar("critic feedback", len(prompts)) as advance:
            return [r[0].strip() for r in self.critic.generate(prompts, GenParams(0.0, 1.0, 64), advance)]

    def run(self, records: Iterable[HHHQuery]) -> Iterator[HHHSample]:
        queries = list(records)
        system = {"role": "system", "content": hhh_prompts()["answer_system"]}
        with progress_bar("candidates", len(queries)) as advance:
            first = self.generator.generate(
                [[system, {"role": "user", "content": q.text}] for q in queries],
                GenParams(self.temperature, self.top_p, self.max_tokens, n=self.k, seed=self.seed * 100),
                advance,
            )
        # candidates[i][j] = (answer, P(Yes) per axis, round it was written in)
        cands: list[list[list[Any]]] = [[[a, None, 0] for a in answers] for answers in first]
        todo = [(i, j) for i in range(len(queries)) for j in range(self.k)]
        regenerated = 0
        for round_ in range(self.rounds + 1):
            scores = self._critique([(queries[i].text, cands[i][j][0]) for i, j in todo])
            for (i, j), s in zip(todo, scores, strict=True):
                cands[i][j][1] = s
            if round_ == self.rounds:
                break
            failed = [
                (i, j, ax)
                for i, j in todo
                if not any(all(self._passes(c[1]).values()) for c in cands[i])  # the query has no all-pass yet
                for ax in AXES
                if not self._passes(cands[i][j][1])[ax]
            ]
            if not failed:
                break
            notes = self._feedback([(queries[i].text, cands[i][j][0], ax) for i, j, ax in failed])
            feedback: dict[tuple[int, int], list[str]] = {}
            for (i, j, _), note in zip(failed, notes, strict=True):
                feedback.setdefault((i, j), []).append(note)
            todo = list(feedback)
            t = hhh_prompts()["revise_user"]
            prompts = [
                [
                    system,
                    {
                        "role": "user",
                        "content": t.format(question=queries[i].text, answer=cands[i][j][0], feedback=" ".join(fb)),
                    },
                ]
                for (i, j), fb in feedback.items()
            ]
            with progress_bar(f"regenerate (round {round_ + 1})", len(prompts)) as advance:
                revised = self.generator.generate(prompts, self._params(round_ + 1), advance)
            for (i, j), (answer,) in zip(todo, revised, strict=True):
                cands[i][j] = [answer, None, round_ + 1]
            regenerated += len(todo)
        kept = 0
        for q, cs in zip(queries, cands, strict=True):
            passing = [c for c in cs if all(self._passes(c[1]).values())]
            if not passing:
                fails = Counter(ax for c in cs for ax, ok in self._passes(c[1]).items() if not ok)
                self.drop(
                    q, f"no all-pass candidate after {self.rounds} rounds (fails: {dict(sorted(fails.items()))})"
                )
                continue
            best = {ax: max(passing, key=lambda c, ax=ax: c[1][ax]) for ax in AXES}
            kept += 1
            yield HHHSample(
                q,
                best["helpful"][0],
                best["harmless"][0],
                best["honest"][0],
                [1, 1, 1],
                max(c[2] for c in best.values()),
                {"p_yes": [c[1] for c in cs], "passing": len(passing)},
            )
        self.stats.update(queries=len(queries), kept=kept, candidates=self.k, regenerated=regenerated)

    def _passes(self, scores: dict[str, float]) -> dict[str, bool]:
        return {ax: scores[ax] >= self.pass_threshold for ax in AXES}
