"""Individual-level WVS evaluation (CLCA): answer as one real respondent, scored against that respondent's answer.

dataset (respondents of the official respondent-level CSV, a seeded sample per country) -> solver (option
scoring with a persona system prompt built from the respondent's demographics) -> scorer (hit: the top option
is the respondent's own answer; the probability given to it) -> metrics (accuracy and mean probability per
country and overall, beside the majority-answer baseline of the same items).

The questions are CLCA's by default (Liu et al., ACL 2025: WVS Q1-Q45, those of them the questionnaire and the
respondents have); ``question_ids`` picks others, ``"all"`` every non-demographic question. The baseline answers
each item with the majority answer of the *other* sampled respondents of the country (leave-one-out): counting the
respondent's own answer would let the baseline see the answer it is scored against.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from culturealign.cultures import get_culture
from culturealign.data.survey import respondent_rows
from culturealign.errors import UserError
from culturealign.evaluate import metrics as M
from culturealign.evaluate.base import EvalResult, Evaluation
from culturealign.llm.base import Engine
from culturealign.progress import progress_bar
from culturealign.prompting import survey_messages
from culturealign.records import SurveyQuestion

# demographic items of WVS Wave 7 that describe a respondent (their labels come from the questionnaire)
DEMOGRAPHICS = ("Q260", "Q262", "Q273", "Q275", "Q279", "Q287", "Q289")
AGE = "Q262"
# the questions CLCA scores at the individual level (Liu et al., ACL 2025): WVS Wave 7 Q1-Q45
CLCA_QUESTIONS = tuple(f"Q{n}" for n in range(1, 46))
log = logging.getLogger(__name__)


@dataclass
class Respondent:
    id: str
    country: str
    answers: dict[str, str]  # question id -> code (valid codes only)


@dataclass
class IndividualItem:
    respondent: str
    country: str
    question_id: str
    answer: str
    choice: str
    p_answer: float
    majority: str | None  # of the other sampled respondents of the country; None when no other one answered


def load_respondents(
    csv_path: str | Path, questions: dict[str, SurveyQuestion], country_column: str = "B_COUNTRY_ALPHA"
) -> list[Respondent]:
    """Respondents with their valid answers (codes in the question's options, or any age); negative codes
    (WVS missing) and unknown codes are left out."""
    _, rows = respondent_rows(csv_path, country_column, Counter())
    out = []
    for n, (country, row) in enumerate(rows, 1):
        answers = {}
        for qid, value in row.items():
            q = questions.get(qid)
            value = value.strip()
            if q is None or not value or value.startswith("-"):
                continue
            if qid == AGE or value in q.options:
                answers[qid] = value
        out.append(Respondent(f"r{n}", country, answers))
    return out


def persona_prompt(respondent: Respondent, questions: dict[str, SurveyQuestion]) -> str:
    """A system prompt describing the respondent: country, then each demographic item they answered."""
    culture = get_culture(respondent.country)
    facts = []
    for qid in DEMOGRAPHICS:
        code = respondent.answers.get(qid)
        if code is None:
            continue
        if qid == AGE:
            facts.append(f"Age: {code}")
        else:
            q = questions[qid]
            facts.append(f"{q.text.rstrip('?')}? {q.options[code]}")
    lines = "\n".join(f"- {f}" for f in facts)
    return (
        f"You are a real person from {culture.name} taking part in the World Values Survey. About you:\n{lines}\n"
        "Answer each question as this person would."
    )


@dataclass
class Individuals(Evaluation):
    """Score every (respondent, asked question they answered) of a seeded sample of respondents per country.

    The sample is seeded per country, so a country's respondents are the same whether it is scored alone (with
    its own adapter) or with the others; so is the leave-one-out baseline, which only counts the country's own
    respondents. ``question_ids``: CLCA's Q1-Q45 by default, a list of ids, or ``"all"`` (every question but the
    demographics).
    """

    name: ClassVar[str] = "individual"
    title: ClassVar[str] = (
        "individual-level accuracy (majority_accuracy: answering with the majority of the country's other sampled "
        "respondents)"
    )
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "mean_p_answer", "majority_accuracy")
    scope: ClassVar[str] = "per_country"

    respondents: Sequence[Respondent]
    questions: dict[str, SurveyQuestion]
    countries: Sequence[str] | None = None
    per_country: int | None = 50
    question_ids: Sequence[str] | Literal["all"] = CLCA_QUESTIONS
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.question_ids, str) and self.question_ids != "all":
            raise ValueError(f"question_ids must be a list of question ids or 'all', not {self.question_ids!r}")
        if not self.question_ids:
            raise ValueError("question_ids is empty: pass question ids, or 'all' for every question")

    def cultures(self) -> list[str]:
        return sorted({c.upper() for c in self.countries} if self.countries else {r.country for r in self.respondents})

    def subset(self, codes: Sequence[str]) -> Individuals:
        return replace(self, countries=list(codes))

    def combine(self, results: Sequence[EvalResult]) -> EvalResult:
        items = [it for r in results for it in r.items]
        return EvalResult(self.name, items, summarize_individuals(items))

    def asked(self, qid: str) -> bool:
        """Whether ``qid`` is one of the questions asked (never a demographic one: those describe the persona)."""
        q = self.questions.get(qid)
        if q is None or qid in DEMOGRAPHICS or q.topic == "Demographics":
            return False
        return self.question_ids == "all" or qid in self.question_ids

    def run(self, engine: Engine, progress: bool = True) -> EvalResult:
        wanted = set(self.cultures())
        by_country: dict[str, list[Respondent]] = defaultdict(list)
        for r in self.respondents:
            if r.country in wanted:
                by_country[r.country].append(r)
        if not by_country:
            raise UserError(f"no respondents from {sorted(wanted)} in the file")
        if not any(self.asked(qid) for group in by_country.values() for r in group for qid in r.answers):
            which = "CLCA's Q1-Q45" if self.question_ids == CLCA_QUESTIONS else "the question_ids given"
            raise UserError(
                f"no respondent from {sorted(by_country)} answered any of {which}: pass question_ids='all' to ask "
                "every question, or the ids the file has"
            )
        sample = []
        for country in sorted(by_country):
            group, n = by_country[country], self.per_country
            sample += (
                group if n is None or len(group) <= n else random.Random(f"{self.seed}:{country}").sample(group, n)
            )
        jobs = []
        for r in sample:
            system = persona_prompt(r, self.questions)
            for qid, code in r.answers.items():
                if self.asked(qid):
                    q = self.questions[qid]
                    jobs.append((r, q, code, survey_messages(q, system)))
        if not jobs:  # others in the file did answer: this country's sample is empty, not the evaluation
            log.warning(
                "the %d sampled respondents of %s answered none of the questions asked", len(sample), sorted(wanted)
            )
            return EvalResult(self.name, [], summarize_individuals([]))
        with progress_bar("WVS individuals", len(jobs), progress) as advance:
            scores = engine.score_options([j[3] for j in jobs], [j[1].codes for j in jobs], advance)
        # the baseline a country-level model could reach: the majority answer of the country's *other* sampled
        # respondents (leave-one-out; ties go to the first code in option order)
        counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for r, q, code, _ in jobs:
            counts[(r.country, q.id)][code] += 1
        items = []
        for (r, q, code, _), s in zip(jobs, scores, strict=True):
            others = counts[(r.country, q.id)] - Counter({code: 1})
            majority = M.majority({c: others[c] for c in q.codes}) if others else None
            items.append(IndividualItem(r.id, r.country, q.id, code, s.choice, s.probs[code], majority))
        return EvalResult(self.name, items, summarize_individuals(items))


def summarize_individuals(items: Sequence[IndividualItem]) -> dict[str, Any]:
    """Accuracy (top option = the respondent's answer), mean probability of that answer, and the accuracy of
    answering with the leave-one-out majority (over the items that have one: ``n_majority``), per country and
    overall (the mean over countries); null where a figure has no item."""
    by_country: dict[str, list[IndividualItem]] = defaultdict(list)
    for it in items:
        by_country[it.country].append(it)
    per_country = {
        c: {
            "accuracy": M.accuracy([i.choice for i in v], [i.answer for i in v]),
            "mean_p_answer": M.mean([i.p_answer for i in v]),
            "majority_accuracy": M.accuracy(
                [i.majority for i in v], [None if i.majority is None else i.answer for i in v]
            ),
            "respondents": len({i.respondent for i in v}),
            "n_items": len(v),
            "n_majority": sum(i.majority is not None for i in v),
        }
        for c, v in sorted(by_country.items())
    }
    overall = {
        k: M.mean([m[k] for m in per_country.values()]) for k in ("accuracy", "mean_p_answer", "majority_accuracy")
    }
    overall["n_items"] = len(items)
    overall["n_questions"] = len({i.question_id for i in items})
    return {"overall": overall, "per_country": per_country}
