"""One self-contained HTML page from one run folder, or from several side by side.

The page reads only the run folder layout (``config.yaml``, ``cost.json``, ``steps/*/stats.json``,
``train/*/log_history.json``, ``eval/**/metrics.json``) and draws whatever is there; a section with nothing
to show says so. Everything is inline (CSS, SVG plots) so the file can be mailed or archived and still opens
offline, and every piece of text from the folders is escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.report import plots
from culturealign.runs.store import atomic_write_text

BAR_METRICS = ("one_minus_jsd", "culturespa")
HEATMAP_METRIC = "one_minus_jsd"
GROUP_KEYS = ("per_culture", "per_region")
EVAL_ORDER = ("wvs-before", "wvs-after")  # then the other top-level evals, then nested ones (ablation variants)
COUNT_KEYS = ("n_items", "n_questions")  # overall counts items, a culture its questions: one column "n"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; } th { background: #f4f4f4; }
pre { background: #f7f7f7; padding: .75rem; overflow: auto; max-height: 24rem; font-size: .8rem; }
figure.plot { margin: 1rem 0 2rem; } figure.plot svg { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #555; margin-bottom: .3rem; }
p.headline { font-size: 1.1rem; font-weight: 600; } td { white-space: nowrap; }
p.empty { color: #888; font-style: italic; } .path { color: #777; font-size: .85rem; }
"""


@dataclass
class RunData:
    """What the report needs from one run folder, read once."""

    label: str
    path: Path
    config: str | None = None
    cost: dict[str, Any] | None = None
    steps: list[dict] = field(default_factory=list)
    losses: dict[str, list[dict]] = field(default_factory=dict)
    evals: dict[str, dict] = field(default_factory=dict)  # eval name (path under eval/) -> metrics.json
    iw_maps: dict[str, dict] = field(default_factory=dict)  # eval name -> Inglehart-Welzel coordinates.json
    comparison: dict[str, Any] | None = None  # eval/comparison.json of a recipe run: the answer


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg}); rerun the stage that writes it") from e


def load_run(path: Path, label: str) -> RunData:
    """Read a run folder's config, cost, step stats, training logs and evaluation metrics."""
    if not path.is_dir():
        raise UserError(f"run folder {path} does not exist: pass the --out folder of a run")
    run = RunData(label, path)
    if (path / "config.yaml").is_file():
        run.config = (path / "config.yaml").read_text(encoding="utf-8")
    if (path / "cost.json").is_file():
        run.cost = _read_json(path / "cost.json")
    run.steps = [_read_json(p) for p in sorted(path.glob("steps/*/stats.json"))]
    run.losses = {p.parent.name: _read_json(p) for p in sorted(path.glob("train/*/log_history.json"))}
    eval_root = path / "eval"
    names = [p.parent.relative_to(eval_root).as_posix() for p in eval_root.glob("**/metrics.json")]
    for name in sorted(names, key=_eval_order):
        run.evals[name] = _read_json(eval_root / name / "metrics.json")
    for p in sorted(eval_root.glob("iwmap*/coordinates.json")):
        run.iw_maps[p.parent.name] = _read_json(p)
    if (eval_root / "comparison.json").is_file():
        run.comparison = _read_json(eval_root / "comparison.json")
    return run


def _eval_order(name: str) -> tuple:
    return ("/" in name, EVAL_ORDER.index(name) if name in EVAL_ORDER else len(EVAL_ORDER), name)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        return f"{len(value)} × {len(value[0])} matrix"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
        value = value if len(value) <= 120 else value[:119] + "…"
    return html.escape(str(value))


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, caption: str, svg: str, **data: str) -> str:
    attrs = "".join(f' data-{k}="{html.escape(v)}"' for k, v in data.items())
    return (
        f'<figure class="plot" data-plot="{html.escape(name)}"{attrs}>'
        f"<figcaption>{html.escape(caption)}</figcaption>{svg}</figure>"
    )


def _empty(what: str) -> str:
    return f'<p class="empty">{html.escape(what)}</p>'


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def _scored(run: RunData) -> dict[str, dict]:
    """The evaluations with per-group scores (WVS per culture, BLEnD per region)."""
    return {n: m for n, m in run.evals.items() if isinstance(m, dict) and "overall" in m}


def _section(title: str, parts: list[str], empty: str) -> str:
    return f"<h2>{html.escape(title)}</h2>" + ("".join(parts) or _empty(empty))


# -- the answer first: did tuning move the model, by more than noise? ---------------------------------------------
HEADLINE = "one_minus_jsd"
SET_TITLES = {
    "eval": "held-out questions, trained cultures (the result)",
    "heldout-eval": "held-out questions, cultures never trained on",
    "survey2": "a second survey",
    "validation": "validation questions",
    "train": "training questions (plumbing check)",
}
TABLE_TITLES = {"wvs": "WVS alignment", "blend": "BLEnD accuracy", "individual": "individual level", "hhh": "HHH"}


def _blocks(comparison: dict[str, Any]) -> list[tuple[str, dict, dict]]:
    """(title, before/after table, intervals) of a comparison.json, the WVS result first."""
    if "sets" in comparison:  # SurveyFit: one block per question set, held-out questions first
        sets = comparison["sets"]
        return [
            (f"WVS: {SET_TITLES[n]}", sets[n]["before_after"], sets[n]["intervals"]) for n in SET_TITLES if n in sets
        ]
    names = comparison.get("evaluations") or [n for n in ("wvs", "hhh") if n in comparison]
    iv = comparison.get("intervals") or {}
    return [
        (TABLE_TITLES.get(n, n), comparison[n], iv.get(n) or {}) for n in names if isinstance(comparison.get(n), dict)
    ]


def _change(row: dict[str, Any], interval: dict[str, Any] | None) -> str:
    before, after, diff = (math.nan if row.get(k) is None else row[k] for k in ("before", "after", "diff"))
    if math.isnan(after):
        return "–" if math.isnan(before) else f"{before:.3f}"
    text = f"{before:.3f} → {after:.3f} ({diff:+.3f})"
    ci = (interval or {}).get("ci") or [None, None]
    if ci[0] is not None:
        text += f" [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return text


def headline(comparison: dict[str, Any]) -> str:
    """One sentence: the overall change of the headline metric and whether its interval excludes zero."""
    if not comparison.get("trained", True):
        return f"Nothing was trained ({comparison.get('examples', 0)} examples kept): only the base model is scored."
    blocks = _blocks(comparison)
    if not blocks or HEADLINE not in blocks[0][1].get("overall", {}):
        return "The run has no WVS before/after result."
    title, table, iv = blocks[0]
    row, interval = table["overall"][HEADLINE], (iv.get("overall") or {}).get(HEADLINE)
    if row.get("diff") is None:
        return "The run has no after-tuning result."
    change = f"1 − JSD {row['before']:.3f} → {row['after']:.3f} ({row['diff']:+.3f})"
    if not interval or interval.get("ci", [None])[0] is None:
        return f"{title}: {change}, without an interval."
    lo, hi = interval["ci"]
    verdict = "a change beyond noise" if lo > 0 or hi < 0 else "within noise: the interval includes 0"
    return f"{title}: {change}, 95% CI [{lo:+.3f}, {hi:+.3f}], p = {interval['p']:.3g} — {verdict}."


def section_result(runs: list[RunData]) -> str:
    parts = []
    for run in (r for r in runs if r.comparison):
        parts.append(
            f"<h3>{html.escape(run.label)}</h3><p class='headline'>{html.escape(headline(run.comparison))}</p>"
        )
        for title, table, iv in _blocks(run.comparison):
            metrics = [m for m in next(iter(table.values()), {}) if isinstance(next(iter(table.values()))[m], dict)]
            rows = [[g, *(_change(row[m], (iv.get(g) or {}).get(m)) for m in metrics)] for g, row in table.items()]
            parts.append(f"<h4>{html.escape(title)}: before → after (Δ) [95% CI]</h4>")
            parts.append(_table(["", *metrics], rows))
    return _section("Result: before → after tuning", parts, "No recipe comparison in these runs (eval-only runs).")


def section_runs(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        parts.append(f"<h3>{html.escape(run.label)}</h3><p class='path'>{html.escape(str(run.path))}</p>")
        if run.cost:
            c = run.cost
            wall = _duration(c["wall_seconds"]) if "wall_seconds" in c else None
            rows = [
                ("wall time", wall),
                ("model calls", c.get("calls")),
                ("cache hits", c.get("cache_hits")),
                ("prompt tokens", c.get("prompt_tokens")),
                ("completion tokens", c.get("completion_tokens")),
            ]
            parts.append(_table(("cost", "value"), rows))
        else:
            parts.append(_empty("No cost.json in this run."))
        if run.config is not None:
            parts.append(f"<details open><summary>config.yaml</summary><pre>{html.escape(run.config)}</pre></details>")
        else:
            parts.append(_empty("No config.yaml in this run."))
    return _section("Runs: configs and costs", parts, "")


def section_alignment(runs: list[RunData]) -> str:
    parts = []
    for metric in BAR_METRICS:
        series = {}
        for run in runs:
            for name, m in _scored(run).items():
                values = {c: v[metric] for c, v in m.get("per_culture", {}).items() if metric in v}
                if values:
                    series[name if len(runs) == 1 else f"{run.label} · {name}"] = values
        if series:
            svg = plots.alignment_bars(series, metric)
            parts.append(_figure(f"alignment-{metric}", f"{metric} per culture", svg, metric=metric))
    return _section("Alignment per culture", parts, "No WVS evaluation in these runs.")


def section_variants(runs: list[RunData]) -> str:
    """Evaluations scored under several variants: how much the answers depend on presentation (sensitivity per
    culture) and each metric's spread over the variants, to read a before/after change against."""
    parts = []
    for run in runs:
        for name, m in _scored(run).items():
            if "/" in name or not m.get("variants"):
                continue
            label = name if len(runs) == 1 else f"{run.label} · {name}"
            sens = {c: v["sensitivity"] for c, v in m["per_culture"].items() if v.get("sensitivity") is not None}
            if sens:
                caption = (
                    f"{label}: sensitivity per culture, the mean total-variation distance between the answers under "
                    f"the variants {', '.join(m['variants'])} (0: presentation changes nothing)"
                )
                svg = plots.alignment_bars({label: sens}, "sensitivity")
                parts.append(_figure("variant-sensitivity", caption, svg, run=run.label, eval=name))
            spread = m.get("variant_spread", {}).get("overall", {})
            rows = [[k, _fmt(v["mean"]), _fmt(v["sd"]), _fmt(v["min"]), _fmt(v["max"])] for k, v in spread.items()]
            if rows:
                parts.append(f"<p>{html.escape(label)}: each metric over the variants (overall)</p>")
                parts.append(_table(["metric", "mean", "SD", "min", "max"], rows))
    return _section("Sensitivity to presentation", parts, "") if parts else ""


def section_topics(runs: list[RunData]) -> str:
    """One heatmap per top-level WVS evaluation (ablation variants, nested under eval/, would swamp the page)."""
    parts = []
    for run in runs:
        for name, m in _scored(run).items():
            if "/" not in name and m.get("per_culture_topic"):
                svg = plots.topic_heatmap(m["per_culture_topic"], HEATMAP_METRIC)
                caption = f"{run.label} · {name}: {HEATMAP_METRIC} per culture and topic"
                parts.append(_figure("topic-heatmap", caption, svg, run=run.label, eval=name))
    return _section("Culture × topic", parts, "No per-topic scores in these runs.")


def section_funnel(runs: list[RunData]) -> str:
    parts = []
    for run in (r for r in runs if r.steps):
        caption = f"{run.label}: records kept and dropped per step"
        parts.append(_figure("funnel", caption, plots.data_funnel(run.steps), run=run.label))
    return _section("Data funnel", parts, "No data steps in these runs (evaluation-only runs?).")


def section_loss(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        if any("loss" in h for history in run.losses.values() for h in history):
            caption = f"{run.label}: training loss per adapter"
            parts.append(_figure("loss", caption, plots.loss_curves(run.losses), run=run.label))
    return _section("Training loss", parts, "No training logs in these runs.")


def section_cultural_map(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        rel = run.evals.get("relations")
        if rel and all(k in rel for k in ("cultures", "model_matrix", "survey_matrix")):
            title = f"Spearman ρ = {_fmt(rel.get('spearman'))}"
            svg = plots.matrix_pair(rel["cultures"], rel["model_matrix"], rel["survey_matrix"], suptitle=title)
            caption = f"{run.label}: culture x culture similarity, model vs survey"
            parts.append(_figure("cultural-map", caption, svg, run=run.label))
    return _section("Cultural map", parts, "No cultural-relations evaluation in these runs.")


def section_iw_map(runs: list[RunData]) -> str:
    """Each run's Inglehart-Welzel map, and with two or more maps the mean distance per run against the first."""
    parts, rows = [], []
    for run in runs:
        for name, coords in run.iw_maps.items():
            models = coords.get("models", {})
            summary = "; ".join(
                f"{m.get('label', k)} ({k}): mean persona-to-country distance {_fmt(m.get('mean_distance'))}"
                for k, m in models.items()
            )
            caption = f"{run.label} · {name}: Inglehart-Welzel map. {summary}"
            parts.append(_figure("iw-map", caption, plots.iw_map(coords), run=run.label, eval=name))
            missing = coords.get("indicators_missing") or {}
            used = ", ".join(i["name"] for i in coords.get("indicators", []))
            absent = ", ".join(f"{k} ({' '.join(v)})" for k, v in missing.items())
            note = f"Indicators used: {used}." + (f" Missing from the survey: {absent}." if missing else "")
            parts.append(f"<p class='path'>{html.escape(note)}</p>")
            for k, m in models.items():
                rows.append([f"{run.label} · {name} · {k}", m.get("mean_distance"), m.get("unaware_mean_distance")])
    if len(rows) > 1:
        first = rows[0][1]
        change = [r + [r[1] - first if None not in (r[1], first) else None] for r in rows]
        header = ("map (run · eval · model)", "mean distance", "unaware mean distance", "change vs first")
        parts.append(_table(header, change))
    return _section("Inglehart-Welzel map", parts, "No Inglehart-Welzel map in these runs (culturealign map).")


def _metric_rows(metrics: dict) -> tuple[list[str], list[list[Any]]]:
    """Rows ``overall`` and one per culture (or region) of a scored eval; columns are the metrics found."""
    groups = next((metrics[k] for k in GROUP_KEYS if isinstance(metrics.get(k), dict)), {})
    scopes = [("overall", metrics["overall"]), *groups.items()]
    scopes = [(s, {("n" if k in COUNT_KEYS else k): v for k, v in row.items()}) for s, row in scopes]
    columns = list(dict.fromkeys(k for _, row in scopes for k in row))
    return columns, [[scope, *(row.get(c) for c in columns)] for scope, row in scopes]


def _other_rows(metrics: Any) -> tuple[list[str], list[list[Any]]]:
    """A dict of dicts as a grid (e.g. ablation variants x metrics), anything else as key / value."""
    if isinstance(metrics, dict) and metrics and all(isinstance(v, dict) for v in metrics.values()):
        columns = list(dict.fromkeys(k for v in metrics.values() for k in v))
        return columns, [[name, *(v.get(c) for c in columns)] for name, v in metrics.items()]
    items = metrics.items() if isinstance(metrics, dict) else [("value", metrics)]
    return ["value"], [[k, v] for k, v in items]


def section_metrics(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        for name, m in run.evals.items():
            scored = isinstance(m, dict) and "overall" in m
            columns, rows = _metric_rows(m) if scored else _other_rows(m)
            parts.append(f"<h3>{html.escape(run.label)} · {html.escape(name)}</h3>")
            parts.append(_table(["scope" if scored else "", *columns], rows))
    return _section("Metrics", parts, "No evaluation results in these runs.")


def render(runs: list[RunData]) -> str:
    """The whole page as a string."""
    title = "culturealign report: " + ", ".join(r.label for r in runs)
    sections = [  # the answer first, then what it stands on, then how it was made
        section_result(runs),
        section_funnel(runs),
        section_alignment(runs),
        section_variants(runs),
        section_topics(runs),
        section_loss(runs),
        section_cultural_map(runs),
        section_iw_map(runs),
        section_metrics(runs),
        section_runs(runs),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'  # no favicon request: the page loads nothing but itself
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n"
    )


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write one self-contained HTML page for ``run_dirs`` (one run, or several compared) to ``out``.

    Runs are labelled by folder name (with ``#2``, ``#3`` added when two folders share a name).
    """
    if not run_dirs:
        raise UserError("no run folders given: pass at least one run folder")
    runs, seen = [], {}
    for path in map(Path, run_dirs):
        seen[path.name] = seen.get(path.name, 0) + 1
        label = path.name if seen[path.name] == 1 else f"{path.name} #{seen[path.name]}"
        runs.append(load_run(path, label))
    out = Path(out)
    atomic_write_text(out, render(runs))
    return out
