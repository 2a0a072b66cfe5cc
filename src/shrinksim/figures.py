"""Figure helpers shared by every study: the Agg backend, atomic saving, fit labels and their
colour-blind-safe palette, the log-n axis, and a placeholder for figures with nothing to draw.

Importing this module selects matplotlib's Agg backend and fixes the SVG hash salt, so the
same figure always gives the same SVG bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "shrinksim"  # same figure -> same SVG bytes
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from shrinksim.tables import write_atomic  # noqa: E402

MODEL_LABELS = {"none": "no pooling", "complete": "complete pooling"}
"""Legend label of each baseline model (partial pooling is labelled by its prior)."""

N_LABEL = "outcomes per group, n (log scale)"
"""Label of a log-n axis."""

NO_PARTIAL = "no partial-pooling fit with estimates in this study"
"""Placeholder text of the figures that show partial pooling only."""


def fit_label(model: str, prior: str) -> str:
    """Legend label of a fit: ``partial, prior <prior>`` or the baseline's name."""
    return f"partial, prior {prior}" if model == "partial" else MODEL_LABELS[model]


def with_fit_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``fit`` column: the :func:`fit_label` of its model and prior."""
    labels = [fit_label(m, p) for m, p in zip(frame["model"], frame["prior"], strict=True)]
    return frame.assign(fit=labels)


def fit_palette(labels: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Colour per fit label: partial-pooling priors first, then the baselines."""
    order = sorted(set(labels), key=lambda s: (not s.startswith("partial"), s))
    return dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))


def log_n_axis(ax: plt.Axes, n: Iterable[int], label: str = N_LABEL) -> None:
    """Log x axis of outcomes per group (or ``label``), ticked at every ``n``."""
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(n)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(label)


def placeholder(message: str) -> plt.Figure:
    """A small figure that says why there is nothing to draw (e.g. no partial-pooling fit)."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def save(fig: plt.Figure, *paths: str | Path) -> None:
    """Save a figure atomically to each path, in the format its suffix names; then close it."""
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        undated = {"Date": None} if fmt in ("svg", "pdf") else None

        def write(tmp: str, fmt: str = fmt, metadata: dict | None = undated) -> None:
            fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)

        write_atomic(path, write)
    plt.close(fig)
