"""Plots for the report, each returned as an inline ``<svg>`` string (no files, no external references).

Figures are built on ``matplotlib.figure.Figure`` directly, never through pyplot, so no GUI backend or global
figure state is involved (safe in a headless job and in threads). Text stays text in the SVG (``svg.fonttype:
none``): the page is smaller and its labels can be searched and copied.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

COLORS = matplotlib.colormaps["tab10"].colors
KEPT_COLOR = COLORS[2]
DROP_COLORS = [c for c in COLORS if c != KEPT_COLOR]  # a drop reason is never drawn in the "kept" green


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element ready to inline in HTML (XML header, doctype and metadata removed)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)


def _label(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def alignment_bars(series: dict[str, dict[str, float]], metric: str = "one_minus_jsd") -> str:
    """Grouped bars, one group per culture and one bar per series (e.g. before/after, or one per run or model).

    Args:
        series: label -> {culture code -> value of ``metric``}; a culture missing from a series leaves a gap.
        metric: the metric's name, for the axis label.
    """
    cultures = sorted({c for values in series.values() for c in values})
    x = np.arange(len(cultures))
    width = 0.8 / max(len(series), 1)
    fig = Figure(figsize=(min(max(6, 0.5 * len(cultures) * max(len(series), 2)), 16), 3.6))
    ax = fig.subplots()
    for k, (label, values) in enumerate(series.items()):
        heights = [values.get(c, math.nan) for c in cultures]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, label=_label(label), color=COLORS[k % 10])
    ax.set_xticks(x, cultures)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_svg(fig)


def topic_heatmap(per_culture_topic: dict[str, dict[str, float]], metric: str = "one_minus_jsd") -> str:
    """Culture (columns) x topic (rows) heatmap of one metric, from ``metrics.json``'s ``per_culture_topic``.

    Keys are ``"CODE|topic"``; a pair with no questions is drawn grey.
    """
    pairs = {tuple(k.split("|", 1)): v.get(metric, math.nan) for k, v in per_culture_topic.items()}
    cultures = sorted({c for c, _ in pairs})
    topics = sorted({t for _, t in pairs})
    grid = np.array([[pairs.get((c, t), math.nan) for c in cultures] for t in topics], dtype=float)
    fig = Figure(figsize=(min(3 + 0.7 * len(cultures), 16), 1 + 0.35 * len(topics)))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(cultures)), cultures)
    ax.set_yticks(range(len(topics)), [_label(t) for t in topics])
    if grid.size <= 400:
        for (i, j), v in np.ndenumerate(grid):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax, label=metric)
    return to_svg(fig)


def data_funnel(stats: Sequence[dict]) -> str:
    """One horizontal bar per step: records kept (green) then what was dropped, stacked by reason.

    Args:
        stats: each step's ``stats.json`` in order (``step``, ``output``, optional ``dropped_by_reason``).
    """
    reasons = list(dict.fromkeys(r for s in stats for r in s.get("dropped_by_reason", {})))
    fig = Figure(figsize=(7, 1 + 0.45 * max(len(stats), len(reasons) / 2)))
    ax = fig.subplots()
    y = np.arange(len(stats))
    kept = np.array([s.get("output", 0) for s in stats], dtype=float)
    ax.barh(y, kept, color=KEPT_COLOR, label="kept")
    left = kept.copy()
    for k, reason in enumerate(reasons):
        n = np.array([s.get("dropped_by_reason", {}).get(reason, 0) for s in stats], dtype=float)
        ax.barh(y, n, left=left, color=DROP_COLORS[k % len(DROP_COLORS)], label=f"dropped: {_label(reason, 60)}")
        left += n
    for i, (k, total) in enumerate(zip(kept, left, strict=True)):
        ax.text(total, i, f" {int(k)} / {int(total)}", va="center", fontsize=8)
    ax.set_yticks(y, [s.get("step", "?") for s in stats])
    ax.invert_yaxis()
    ax.set_xlabel("records (kept / in)")
    ax.set_xlim(0, max(left.max(initial=0), 1) * 1.15)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_svg(fig)


def loss_curves(histories: dict[str, list[dict]]) -> str:
    """Training loss against optimizer step, one line per adapter (entries of the Trainer's ``log_history``)."""
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    for k, (name, history) in enumerate(histories.items()):
        points = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, ys, label=_label(name), color=COLORS[k % 10], marker="o" if len(points) < 30 else None, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return to_svg(fig)


def matrix_pair(
    labels: Sequence[str],
    left: Sequence[Sequence[float]],
    right: Sequence[Sequence[float]],
    titles: tuple[str, str] = ("model", "survey"),
    suptitle: str = "",
) -> str:
    """Two culture x culture heatmaps side by side on one colour scale (a "cultural map": model vs survey)."""
    a, b = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    finite = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    size = min(2.5 + 0.4 * len(labels), 8)
    fig = Figure(figsize=(2 * size + 1, size))
    axes = fig.subplots(1, 2)
    for ax, grid, title in zip(axes, (a, b), titles, strict=True):
        image = ax.imshow(np.ma.masked_invalid(grid), vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_xticks(range(len(labels)), labels, rotation=90)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(title)
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return to_svg(fig)


def iw_map_figure(coords: dict) -> Figure:
    """The Inglehart-Welzel map of ``coordinates.json``: survey countries (grey, labelled), the model answering
    culture-unaware (a star) and as each culture (a dot, an arrow from the real country to it), per model.

    Axes as on the published map: x survival -> self-expression, y traditional -> secular-rational.
    """
    x_key, y_key = coords["axes"]["x"], coords["axes"]["y"]
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.subplots()
    countries = coords["countries"]
    for code, p in countries.items():
        ax.scatter(p[x_key], p[y_key], s=28, color="#888888", zorder=2)
        ax.annotate(code, (p[x_key], p[y_key]), textcoords="offset points", xytext=(4, 3), fontsize=8, color="#555")
    for k, (name, model) in enumerate(coords.get("models", {}).items()):
        color = COLORS[(3 + k) % 10]  # red, then purple: never the countries' grey
        label = _label(f"{model.get('label', name)} ({name})", 40)
        for code, p in model.get("personas", {}).items():
            c = countries.get(code)
            if c is not None:
                ax.annotate(
                    "",
                    (p[x_key], p[y_key]),
                    (c[x_key], c[y_key]),
                    arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.7, "lw": 1.2},
                    zorder=3,
                )
        personas = list(model.get("personas", {}).values())
        if personas:
            mean = model.get("mean_distance")
            suffix = f", mean distance {mean:.2f}" if isinstance(mean, int | float) else ""
            ax.scatter(
                [p[x_key] for p in personas],
                [p[y_key] for p in personas],
                s=36,
                color=color,
                zorder=4,
                label=f"{label}: as each culture{suffix}",
            )
            for code, p in model["personas"].items():
                xy = (p[x_key], p[y_key])
                ax.annotate(code, xy, textcoords="offset points", xytext=(4, -9), fontsize=7, color=color)
        if "unaware" in model:
            u = model["unaware"]
            ax.scatter(u[x_key], u[y_key], s=160, marker="*", color=color, edgecolor="black", zorder=5,
                       label=f"{label}: culture-unaware")  # fmt: skip
    ax.axhline(0, color="#cccccc", lw=0.8, zorder=1)
    ax.axvline(0, color="#cccccc", lw=0.8, zorder=1)
    ax.set_title(f"Inglehart-Welzel map: {len(countries)} survey countries ({coords.get('source', '')})", fontsize=10)
    ax.set_xlabel("survival  ←  →  self-expression (SD of countries)")
    ax.set_ylabel("traditional  ←  →  secular-rational (SD of countries)")
    ax.grid(alpha=0.2)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
    return fig


def iw_map(coords: dict) -> str:
    """The Inglehart-Welzel map as an inline ``<svg>``."""
    return to_svg(iw_map_figure(coords))
