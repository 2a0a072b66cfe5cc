"""Accuracy and diagnostics figures of the grid study: the posterior of tau against its true
value, RMSE and interval coverage against n, and the share of fits with sampler problems.

They are listed in :data:`shrinksim.study.plot.FIGURES` with the other figures of the study.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from shrinksim.figures import (
    NO_PARTIAL,
    fit_palette,
    log_n_axis,
    placeholder,
    with_fit_labels,
)
from shrinksim.shrinkage import CELL
from shrinksim.study.measures import FLAGS
from shrinksim.study.outcome import StudyOutcome

LINESTYLES = ("-", "--", ":", "-.")
"""Line style per true spread."""


def _select(measures: pd.DataFrame, target: str, measure: str) -> pd.DataFrame:
    return with_fit_labels(
        measures[(measures["target"] == target) & (measures["measure"] == measure)]
    )


TAU_REPLICATES = 20
"""Replicates per cell drawn in the tau figure (the first ones): a large study has thousands."""

TAU_COLUMNS = [
    *CELL,
    "replicate",
    "status",
    "tau_mean",
    "tau_q025",
    "tau_q25",
    "tau_q75",
    "tau_q975",
]
"""The per-fit columns the tau figure reads."""


def tau_posterior(fits: pd.DataFrame, outcome: StudyOutcome) -> plt.Figure:
    """Posterior mean of tau (point) with its 50 % (thick) and 95 % (thin) intervals for the
    first :data:`TAU_REPLICATES` partial-pooling fits of each cell, against the true tau
    (black bar), one panel per n, colour = prior."""
    shown = (fits["model"] == "partial") & (fits["replicate"] < TAU_REPLICATES)
    part = fits[shown & (fits["status"] != "error")]
    if part.empty:
        return placeholder(NO_PARTIAL)
    part = part.assign(
        true_tau=[
            float(outcome.implied_tau(a, s))
            for a, s in zip(part["spread_axis"], part["spread"], strict=True)
        ]
    )
    part = with_fit_labels(part)
    palette = fit_palette(part["fit"])
    truths = sorted(part["true_tau"].unique())
    ns = sorted(part["n_per_group"].unique())
    cols = min(4, len(ns))
    rows = -(-len(ns) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3 * rows), sharey=True, squeeze=False)
    axes = axes.ravel()
    for ax, n in zip(axes, ns, strict=False):
        panel = part[part["n_per_group"] == n]
        series = sorted(panel[["fit", "replicate"]].drop_duplicates().itertuples(index=False))
        offsets = np.linspace(-0.3, 0.3, len(series)) if len(series) > 1 else [0.0]
        for i, truth in enumerate(truths):
            ax.hlines(truth, i - 0.4, i + 0.4, color="black", linewidth=2)
        for offset, (label, replicate) in zip(offsets, series, strict=True):
            rows_ = panel[(panel["fit"] == label) & (panel["replicate"] == replicate)]
            x = np.array([truths.index(t) for t in rows_["true_tau"]]) + offset
            colour = palette[label]
            ax.vlines(x, rows_["tau_q025"], rows_["tau_q975"], color=colour, linewidth=0.8)
            ax.vlines(x, rows_["tau_q25"], rows_["tau_q75"], color=colour, linewidth=2.5)
            ax.plot(x, rows_["tau_mean"], "o", color=colour, markersize=3.5)
        ax.set_xticks(range(len(truths)), [f"{t:.3g}" for t in truths])
        ax.set_xlim(-0.5, len(truths) - 0.5)
        ax.set_title(f"n = {n}")
        ax.set_xlabel(f"true tau ({outcome.family.scale} sd)")
        ax.set_ylabel(f"posterior of tau ({outcome.family.scale} sd)")
    for ax in axes[len(ns) :]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=c, marker="o", label=label) for label, c in palette.items()]
    handles.append(Line2D([], [], color="black", linewidth=2, label="true tau"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Posterior of tau against its true value (mean, 50 % and 95 % intervals)")
    fig.tight_layout()
    return fig


def _lines_vs_n(
    ax: plt.Axes, frame: pd.DataFrame, palette: dict, styles: dict, dodge: float = 1.04
) -> None:
    """One line with +- 1.96 MCSE bars per (fit, spread), x dodged per fit on the log axis."""
    for k, (label, colour) in enumerate(palette.items()):
        for spread, style in styles.items():
            line = frame[(frame["fit"] == label) & (frame["spread"] == spread)]
            line = line.sort_values("n_per_group")
            if line.empty:
                continue
            ax.errorbar(
                line["n_per_group"] * dodge ** (k - (len(palette) - 1) / 2),
                line["value"],
                yerr=1.96 * line["mcse"].fillna(0),
                color=colour,
                linestyle=style,
                marker="o",
                markersize=3.5,
                capsize=2,
                linewidth=1.2,
            )


def _legend_handles(palette: dict, styles: dict, axis: str) -> list[Line2D]:
    handles = [Line2D([], [], color=c, marker="o", label=label) for label, c in palette.items()]
    if len(styles) > 1:
        handles += [
            Line2D([], [], color="grey", linestyle=s, label=f"{axis} = {spread:g}")
            for spread, s in styles.items()
        ]
    return handles


def rmse_vs_n(measures: pd.DataFrame, outcome: StudyOutcome) -> plt.Figure:
    """RMSE of the group log-odds estimates against n for partial, no and complete pooling,
    with +- 1.96 MCSE bars; line style = true spread."""
    rmse = _select(measures, "groups", "rmse")
    palette = fit_palette(rmse["fit"])
    styles = dict(zip(sorted(rmse["spread"].unique()), LINESTYLES, strict=False))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _lines_vs_n(ax, rmse, palette, styles)
    log_n_axis(ax, rmse["n_per_group"], outcome.labels["n_axis"])
    ax.set_ylabel(f"RMSE of group estimates ({outcome.family.scale})")
    ax.set_ylim(bottom=0)
    axis = rmse["spread_axis"].iloc[0]
    ax.legend(handles=_legend_handles(palette, styles, axis), fontsize=8)
    ax.set_title(f"Error of the group estimates against the true {outcome.family.scale}")
    return fig


def coverage_vs_n(measures: pd.DataFrame, outcome: StudyOutcome) -> plt.Figure:
    """Coverage of the 50, 90 and 95 % intervals (columns) for tau and the group effects
    (rows) against n, with +- 1.96 MCSE bars and the nominal level (dashed)."""
    cov = _select(measures, "tau", "coverage")
    cov = pd.concat([cov, _select(measures, "groups", "coverage")], ignore_index=True)
    palette = fit_palette(cov["fit"])
    styles = dict(zip(sorted(cov["spread"].unique()), LINESTYLES, strict=False))
    targets = [t for t in ("tau", "groups") if t in set(cov["target"])]
    levels = sorted(cov["level"].unique())
    fig, axes = plt.subplots(
        len(targets),
        len(levels),
        figsize=(4 * len(levels), 3.3 * len(targets)),
        squeeze=False,
        sharex=True,
    )
    names = {"tau": "tau", "groups": f"group {outcome.family.scale}"}
    for i, target in enumerate(targets):
        for ax, level in zip(axes[i], levels, strict=True):
            panel = cov[(cov["target"] == target) & (cov["level"] == level)]
            _lines_vs_n(ax, panel, palette, styles)
            ax.axhline(level, color="black", linestyle="--", linewidth=1)
            log_n_axis(ax, cov["n_per_group"], outcome.labels["n_axis"])
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{names[target]}: {level:.0%} intervals", fontsize=10)
            ax.set_xlabel(outcome.labels["n_axis"] if i == len(targets) - 1 else "")
        unit = "fits" if target == "tau" else "groups"
        axes[i][0].set_ylabel(f"coverage (share of {unit})")
    handles = _legend_handles(palette, styles, cov["spread_axis"].iloc[0])
    handles.append(Line2D([], [], color="black", linestyle="--", label="nominal level"))
    fig.legend(handles=handles, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Coverage of central posterior intervals")
    fig.tight_layout()
    return fig


def flag_title(rule: str, levels: pd.Series) -> str:
    """A flag's rule (:data:`shrinksim.study.measures.FLAGS`) with its thresholds in ``levels``
    (several when they differ between cells, e.g. by the number of quantities monitored)."""
    found = sorted(set(levels.dropna()))
    if "{level" not in rule or not found:
        return rule
    texts = [rule.format(level=level).rsplit(" ", 1) for level in found]
    if len(texts) == 1:
        return " ".join(texts[0])
    return texts[0][0] + " " + " / ".join(text[1] for text in texts)


def diagnostics_overview(measures: pd.DataFrame) -> plt.Figure:
    """Heat maps of the share of fits flagged by each rule of
    :func:`shrinksim.study.measures.problems` per cell (rows: model, prior and spread;
    columns: n); each panel's title states the rule and its threshold (the rows' ``level``)."""
    diag = with_fit_labels(measures[measures["target"] == "diagnostics"])
    cells = diag[["fit", "spread_axis", "spread"]].itertuples(index=False)
    diag = diag.assign(row=[f"{fit}, {axis} = {spread:g}" for fit, axis, spread in cells])
    order_of = ["any", *(k for k in FLAGS if k != "any")]
    kinds = [k for k in order_of if k in set(diag["measure"])]
    order = sorted(diag["row"].unique(), key=lambda s: (not s.startswith("partial"), s))
    cols = min(3, len(kinds))
    rows = -(-len(kinds) // cols)
    height = 0.35 * len(order) + 1.5
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, height * rows), squeeze=False, sharey=True
    )
    axes = axes.ravel()
    for ax, kind in zip(axes, kinds, strict=False):
        panel = diag[diag["measure"] == kind]
        table = panel.pivot(index="row", columns="n_per_group", values="value")
        sns.heatmap(
            table.reindex(order),
            ax=ax,
            vmin=0,
            vmax=1,
            cmap="cividis",
            annot=True,
            fmt=".0%",
            annot_kws={"fontsize": 7},
            cbar=ax is axes[len(kinds) - 1],
            cbar_kws={"label": "share of fits"},
        )
        ax.set_title(flag_title(FLAGS.get(kind, kind), panel["level"]), fontsize=9)
        ax.set_xlabel("outcomes per group, n")
        ax.set_ylabel("")
    for ax in axes[len(kinds) :]:
        ax.set_visible(False)
    fig.suptitle("Share of fits flagged by each diagnostic rule per cell (docs/calibration.md)")
    fig.tight_layout()
    return fig
