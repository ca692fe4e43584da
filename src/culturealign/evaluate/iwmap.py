"""The Inglehart-Welzel cultural map: survey countries and a model's personas on the two value dimensions.

dataset (the survey's answers to ten WVS Wave 7 indicator items) -> indicators (one country-level score each,
a linear function of the answer distributions) -> fit (per dimension, the first principal component of its
z-scored indicators over the survey's countries, signed by the documented directions) -> solver (the model
answers the same items under the survey prompts of ``evaluate/wvs.py``, culture-unaware and as each culture)
-> projection (the model's option distributions become indicator scores exactly as a country's, then go
through the countries' fit: the model never influences the map) -> metric (mean persona-to-country distance).

Coordinates are in units of the between-country standard deviation of each dimension (the survey's countries
have mean 0 and variance 1 on both axes). Higher = secular-rational (y) and self-expression (x), as on the
published map. Where this differs from the published map: see ``MAP_NOTES``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturealign.cultures import Culture
from culturealign.data.survey import Survey, answer_code, respondent_rows
from culturealign.errors import UserError
from culturealign.llm.base import Engine
from culturealign.progress import progress_bar
from culturealign.prompting import persona_system, survey_messages

TRADITIONAL = "traditional_secular"  # y axis: higher = secular-rational
SURVIVAL = "survival_self_expression"  # x axis: higher = self-expression
DIMENSIONS = (TRADITIONAL, SURVIVAL)

MAP_NOTES = (
    "Fitted on the countries of the given survey only (the published map pools every surveyed country of the "
    "waves), so positions are relative to those countries (mean 0, SD 1 per axis), not on the published scale.",
    "Each dimension is the first principal component of its own indicators (the published map rotates two "
    "factors over all ten): with a dozen countries an exploratory two-factor solution does not keep the published "
    "split of items (on the 14-country dev copy, varimax puts abortion with the survival items, and on random "
    "8-country subsets items change factor in 47 of 50).",
    "Indicators are country means of the items' WVS codes (autonomy: shares of the two autonomy qualities minus "
    "the two conformity ones, -2..2); the published item codings (some recoded or dichotomized) are not copied.",
    "Post-materialism: the 4-item index counts post-materialist aims among a respondent's first and second choice "
    "(1 + count), so its country mean is 1 + share of post-materialist first aims + share of second aims, exact "
    "from aggregates up to respondents who gave only one aim; the shares of pure (post-)materialists need the "
    "respondent file (only their difference, mean - 2, follows from aggregates). The model is asked Q155 alone "
    "and may name its first aim again, which no respondent can.",
    "From country aggregates each indicator uses every valid answer to its items (unweighted in the dev copy); "
    "the respondent-file route weights respondents (W_WEIGHT) and drops one missing any item of an index.",
    "Items absent from the survey are left out and listed (the dev copy of Wave 7 lacks Q57, Q154, Q155, Q254).",
)


def _scale(lo: int, hi: int) -> dict[str, float]:
    """Code -> value for an ordinal item scored by its WVS code."""
    return {str(c): float(c) for c in range(lo, hi + 1)}


MENTIONED = {"1": 1.0, "2": 0.0}  # WVS child qualities: 1 mentioned, 2 not mentioned
POST_MATERIALIST_GOAL = {"1": 0.0, "2": 1.0, "3": 0.0, "4": 1.0}  # 2 more say, 4 free speech; 1 order, 3 prices


@dataclass(frozen=True)
class Term:
    """One item's contribution: ``coef`` x the mean of ``values`` (answer code -> value) over its valid codes."""

    item: str
    values: dict[str, float]
    coef: float = 1.0


@dataclass(frozen=True)
class Indicator:
    """A country-level score, linear in the answer distributions of its items.

    ``higher`` says what a higher score means; ``sign`` is +1 when a higher score points to the secular-rational
    or self-expression end of ``dimension`` (the published direction), -1 when it points to the other end.
    """

    name: str
    dimension: str
    terms: tuple[Term, ...]
    higher: str
    sign: int
    offset: float = 0.0

    @property
    def items(self) -> list[str]:
        return [t.item for t in self.terms]

    def score(self, dists: dict[str, dict[str, float]]) -> float | None:
        """The indicator from per-item answer distributions (code -> share); None when an item is missing."""
        total = self.offset
        for t in self.terms:
            dist = dists.get(t.item)
            mass = sum(dist.get(c, 0.0) for c in t.values) if dist else 0.0
            if mass <= 0:
                return None
            total += t.coef * sum(dist.get(c, 0.0) * v for c, v in t.values.items()) / mass
        return total


INDICATORS: tuple[Indicator, ...] = (
    Indicator("god", TRADITIONAL, (Term("Q164", _scale(1, 10)),), "God is more important in one's life (1-10)", -1),
    Indicator(
        "autonomy",
        TRADITIONAL,
        (
            Term("Q8", MENTIONED),
            Term("Q14", MENTIONED),
            Term("Q15", MENTIONED, -1.0),
            Term("Q17", MENTIONED, -1.0),
        ),
        "children should learn independence and determination rather than religious faith and obedience (-2..2)",
        1,
    ),
    Indicator("abortion", TRADITIONAL, (Term("Q184", _scale(1, 10)),), "abortion is more justifiable (1-10)", 1),
    Indicator("national_pride", TRADITIONAL, (Term("Q254", _scale(1, 4)),), "less proud of one's nationality", 1),
    Indicator("authority", TRADITIONAL, (Term("Q45", _scale(1, 3)),), "more respect for authority is less welcome", 1),
    Indicator("unhappiness", SURVIVAL, (Term("Q46", _scale(1, 4)),), "less happy (1 very .. 4 not at all)", -1),
    Indicator("trust", SURVIVAL, (Term("Q57", {"1": 1.0, "2": 0.0}),), "share saying most people can be trusted", 1),
    Indicator(
        "homosexuality", SURVIVAL, (Term("Q182", _scale(1, 10)),), "homosexuality is more justifiable (1-10)", 1
    ),
    Indicator("petition", SURVIVAL, (Term("Q209", _scale(1, 3)),), "further from signing a petition (1 done..3)", -1),
    Indicator(
        "post_materialism",
        SURVIVAL,
        (Term("Q154", POST_MATERIALIST_GOAL), Term("Q155", POST_MATERIALIST_GOAL)),
        "more post-materialist goals among the first two aims (4-item index, 1..3)",
        1,
        offset=1.0,
    ),
)


def available_indicators(survey: Survey) -> tuple[list[Indicator], dict[str, list[str]]]:
    """Indicators whose items are all in the survey, and for the others the items that are missing."""
    used, missing = [], {}
    for ind in INDICATORS:
        absent = [i for i in ind.items if i not in survey.questions]
        if absent:
            missing[ind.name] = absent
        else:
            used.append(ind)
    return used, missing


def country_indicators(survey: Survey, indicators: Sequence[Indicator]) -> dict[str, dict[str, float]]:
    """country -> indicator -> score from the survey's country-level answer shares (absent when not asked)."""
    out: dict[str, dict[str, float]] = {}
    for country in survey.countries:
        scores = {ind.name: ind.score(survey.distributions[country]) for ind in indicators}
        out[country] = {k: v for k, v in scores.items() if v is not None}
    return out


def respondent_indicators(
    csv_path: str | Path,
    indicators: Sequence[Indicator],
    country_column: str = "B_COUNTRY_ALPHA",
    weight_column: str = "W_WEIGHT",
) -> dict[str, dict[str, float]]:
    """country -> indicator -> weighted mean of the respondents' own scores (the official respondent CSV).

    Closer to the published procedure than aggregates: an index counts only respondents who answered all of its
    items (negative WVS missing codes, blanks and codes outside the item's values drop the respondent).
    """
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    columns, rows = respondent_rows(csv_path, country_column, Counter())
    asked = [ind for ind in indicators if all(i in columns for i in ind.items)]
    for country, row in rows:
        try:
            weight = float(row[weight_column]) if weight_column in columns else 1.0
        except ValueError:
            weight = 1.0
        answers = {k: {answer_code(row[k]): 1.0} for ind in asked for k in ind.items if (row[k] or "").strip()}
        for ind in asked:
            value = ind.score(answers)
            if value is not None:
                acc = sums[country][ind.name]
                acc[0] += weight * value
                acc[1] += weight
    return {c: {k: s / w for k, (s, w) in per.items() if w > 0} for c, per in sums.items()}


@dataclass
class MapFit:
    """The countries' map: per-indicator mean and SD, and per dimension the score weights on z-scores.

    ``loadings`` are the correlations of each indicator with its dimension's country scores; ``weights`` turn
    z-scored indicators into a dimension score with mean 0 and variance 1 over the fitted countries.
    """

    indicators: list[Indicator]
    mean: dict[str, float]
    sd: dict[str, float]
    weights: dict[str, dict[str, float]]
    loadings: dict[str, dict[str, float]]
    explained: dict[str, float]
    countries: dict[str, dict[str, float]] = field(default_factory=dict)
    imputed: dict[str, list[str]] = field(default_factory=dict)

    def project(self, scores: dict[str, float]) -> dict[str, float]:
        """Map coordinates of one profile of indicator scores; a missing indicator counts as the countries' mean."""
        return {
            dim: float(
                sum(
                    w * ((scores[name] - self.mean[name]) / self.sd[name] if name in scores else 0.0)
                    for name, w in ws.items()
                )
            )
            for dim, ws in self.weights.items()
        }


def fit_map(scores: dict[str, dict[str, float]], indicators: Sequence[Indicator]) -> MapFit:
    """Fit the two dimensions on the countries' indicator scores.

    A country's missing indicator is imputed with the mean over countries (listed in ``imputed``); a country
    with none of a dimension's indicators is left off the map. Each dimension is the first principal component
    of its indicators' correlation matrix; its sign makes the sum of ``sign`` x loading positive, so that the
    indicators agree with their documented directions on balance (e.g. God's loading on traditional/secular
    comes out negative) whatever subset of countries is fitted.
    """
    names = [ind.name for ind in indicators]
    countries = sorted(c for c in scores if any(ind.name in scores[c] for ind in indicators))
    if len(countries) < 3:
        raise UserError(f"the map needs at least 3 countries with indicator answers; the survey has {countries}")
    raw = np.array([[scores[c].get(n, math.nan) for n in names] for c in countries], dtype=float)
    mean = np.nanmean(raw, axis=0)
    sd = np.nanstd(raw, axis=0)
    sd[~(sd > 0)] = 1.0  # an indicator that does not vary across countries gets weight 0 through its z-scores
    z = np.nan_to_num((raw - mean) / sd)
    imputed = {
        c: [n for n, v in zip(names, row, strict=True) if math.isnan(v)] for c, row in zip(countries, raw, strict=True)
    }
    weights, loadings, explained = {}, {}, {}
    coords: dict[str, dict[str, float]] = {c: {} for c in countries}
    for dim in DIMENSIONS:
        idx = [k for k, ind in enumerate(indicators) if ind.dimension == dim]
        if not idx:
            raise UserError(f"no indicator of the {dim} dimension is in the survey: it needs one of {_items_of(dim)}")
        block = z[:, idx]
        corr = block.T @ block / len(countries)
        values, vectors = np.linalg.eigh(corr)
        lam, vec = float(values[-1]), vectors[:, -1]
        if lam <= 0:
            raise UserError(f"the {dim} indicators do not vary across the survey's countries: cannot fit the map")
        signs = np.array([indicators[k].sign for k in idx], dtype=float)
        if float(signs @ vec) < 0:
            vec = -vec
        weights[dim] = {names[k]: float(w / math.sqrt(lam)) for k, w in zip(idx, vec, strict=True)}
        loadings[dim] = {names[k]: float(w * math.sqrt(lam)) for k, w in zip(idx, vec, strict=True)}
        explained[dim] = lam / len(idx)
        for c, value in zip(countries, block @ vec / math.sqrt(lam), strict=True):
            coords[c][dim] = float(value)
    return MapFit(
        list(indicators),
        dict(zip(names, mean.tolist(), strict=True)),
        dict(zip(names, sd.tolist(), strict=True)),
        weights,
        loadings,
        explained,
        coords,
        {c: v for c, v in imputed.items() if v},
    )


def _items_of(dim: str) -> list[str]:
    return [i for ind in INDICATORS if ind.dimension == dim for i in ind.items]


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Euclidean distance on the map (both dimensions in between-country SD units)."""
    return math.hypot(a[TRADITIONAL] - b[TRADITIONAL], a[SURVIVAL] - b[SURVIVAL])


def model_indicators(
    engine: Engine,
    survey: Survey,
    indicators: Sequence[Indicator],
    cultures: Sequence[Culture | None],
    progress: bool = True,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """The model's indicator scores per persona (``"unaware"`` for None, else the culture code), and its answers.

    Each item is asked with the survey prompts of the WVS evaluation (``persona_system`` + ``survey_messages``)
    and scored from the model's option distribution, renormalized over the options.
    """
    items = list(dict.fromkeys(i for ind in indicators for i in ind.items))
    jobs, prompts = [], []
    for culture in cultures:
        system = persona_system(culture, "unaware" if culture is None else "aware")
        for qid in items:
            jobs.append(("unaware" if culture is None else culture.code, qid))
            prompts.append(survey_messages(survey.questions[qid], system))
    with progress_bar("IW map", len(jobs), progress) as advance:
        scores = engine.score_options(prompts, [survey.questions[q].codes for _, q in jobs], progress=advance)
    dists: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    answers = []
    for (persona, qid), s in zip(jobs, scores, strict=True):
        dists[persona][qid] = s.probs
        answers.append({"persona": persona, "question_id": qid, "probs": s.probs, "mass": s.mass})
    out = {p: {ind.name: ind.score(d) for ind in indicators} for p, d in dists.items()}
    return {p: {k: v for k, v in s.items() if v is not None} for p, s in out.items()}, answers


def place_model(fit: MapFit, model_scores: dict[str, dict[str, float]], label: str) -> dict[str, Any]:
    """A model's points on the fitted map: unaware, one persona per culture with its distance to the country."""
    personas = {}
    for persona, scores in model_scores.items():
        if persona == "unaware":
            continue
        point = fit.project(scores)
        personas[persona] = {**point, "indicators": scores, "distance": distance(point, fit.countries[persona])}
    unaware = model_scores.get("unaware")
    placed: dict[str, Any] = {"label": label, "personas": personas}
    if unaware is not None:
        placed["unaware"] = {**fit.project(unaware), "indicators": unaware}
    if personas:
        placed["mean_distance"] = float(np.mean([p["distance"] for p in personas.values()]))
        if unaware is not None:
            placed["unaware_mean_distance"] = float(
                np.mean([distance(placed["unaware"], fit.countries[c]) for c in personas])
            )
    return placed


def map_result(
    fit: MapFit,
    models: dict[str, dict[str, Any]],
    missing: dict[str, list[str]],
    source: str,
    country_scores: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """Everything the plot, the report and a reader need (``coordinates.json``)."""
    return {
        "source": source,
        "axes": {"x": SURVIVAL, "y": TRADITIONAL},
        "indicators": [
            {
                "name": ind.name,
                "dimension": ind.dimension,
                "items": ind.items,
                "higher": ind.higher,
                "sign": ind.sign,
                "loading": fit.loadings[ind.dimension][ind.name],
                "weight": fit.weights[ind.dimension][ind.name],
                "direction_agrees": ind.sign * fit.loadings[ind.dimension][ind.name] > 0,
                "countries_mean": fit.mean[ind.name],
                "countries_sd": fit.sd[ind.name],
            }
            for ind in fit.indicators
        ],
        "indicators_missing": missing,
        "explained_variance": fit.explained,
        "countries": {
            c: {**xy, "indicators": country_scores[c], "imputed": fit.imputed.get(c, [])}
            for c, xy in fit.countries.items()
        },
        "models": models,
        "notes": list(MAP_NOTES),
    }


def map_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json``: mean persona-to-country distance per model (base, tuned) and its change, per culture."""
    models = result["models"]
    overall: dict[str, Any] = {}
    for name, m in models.items():
        overall[f"mean_distance_{name}"] = m.get("mean_distance")
        overall[f"unaware_mean_distance_{name}"] = m.get("unaware_mean_distance")
    if "base" in models and "tuned" in models:
        overall["change"] = models["tuned"]["mean_distance"] - models["base"]["mean_distance"]
    cultures = sorted({c for m in models.values() for c in m["personas"]})
    overall["n_cultures"] = len(cultures)
    per_culture = {c: {f"distance_{n}": m["personas"][c]["distance"] for n, m in models.items()} for c in cultures}
    return {
        "overall": overall,
        "per_culture": per_culture,
        "indicators_used": [i["name"] for i in result["indicators"]],
        "indicators_missing": result["indicators_missing"],
    }


def compare_maps(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Before vs after tuning from two runs' ``coordinates.json`` (each run's first model: base, or tuned if any).

    The two runs must share the country fit (same survey and items), else their distances are on different maps.
    """
    shared = sorted(set(before["countries"]) & set(after["countries"]))
    moved = max((distance(before["countries"][c], after["countries"][c]) for c in shared), default=math.inf)
    if not shared or moved > 1e-6:
        raise UserError("the two runs were placed on different country maps: run both on the same survey")

    def coordinates_of(result: dict[str, Any]) -> dict[str, Any]:
        return result["models"].get("tuned") or result["models"]["base"]

    a, b = coordinates_of(before), coordinates_of(after)
    cultures = sorted(set(a["personas"]) & set(b["personas"]))
    if not cultures:
        raise UserError("the two runs share no culture: place the same cultures in both")
    rows = {c: {"before": a["personas"][c]["distance"], "after": b["personas"][c]["distance"]} for c in cultures}
    mean_before = float(np.mean([r["before"] for r in rows.values()]))
    mean_after = float(np.mean([r["after"] for r in rows.values()]))
    return {
        "per_culture": rows,
        "mean_distance_before": mean_before,
        "mean_distance_after": mean_after,
        "change": mean_after - mean_before,
    }
