"""Figures of the grid study (seaborn, colour-blind-safe palettes), written atomically.

:data:`FIGURES` maps each figure's name (the file stem in ``results/figures/``) to a function
drawing it from the :class:`Summary` tables; :func:`draw` saves one figure in every format
asked for (PNG, SVG). This module holds the shrinkage, estimate and posterior-density
figures; :mod:`shrinksim.study.plot_accuracy` holds those of accuracy (tau, RMSE, coverage)
and diagnostics.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from shrinksim.figures import (
    NO_PARTIAL,
    fit_label,
    fit_palette,
    log_n_axis,
    placeholder,
    save,
    with_fit_labels,
)
from shrinksim.study.outcome import StudyOutcome
from shrinksim.study.plot_accuracy import (
    coverage_vs_n,
    diagnostics_overview,
    rmse_vs_n,
    tau_posterior,
)


@dataclass(frozen=True)
class Summary:
    """The study's summary tables and the settings the figures need."""

    measures: pd.DataFrame
    groups: pd.DataFrame  # every group of the first replicate of each data cell's first batch
    fits: pd.DataFrame  # one row per fit (schema PER_FIT)
    draws: pd.DataFrame  # thinned draws of the first batch of each data cell
    outcome: StudyOutcome
    density_n: int


def _spread_title(axis: str, spread: float, outcome: StudyOutcome) -> str:
    tau = outcome.implied_tau(axis, spread)
    return f"true {axis} = {spread:g}" + ("" if axis == "tau" else f" (tau ~ {tau:.2f})")


def _spreads(frame: pd.DataFrame) -> list[tuple[str, float]]:
    return sorted(frame[["spread_axis", "spread"]].drop_duplicates().itertuples(index=False))


def shrinkage_vs_n(measures: pd.DataFrame, outcome: StudyOutcome) -> plt.Figure:
    """Both shrinkage measures of partial pooling against n (log axis): 1 - slope with a band
    of +- 1.96 MCSE (solid) and the median ratio (dotted), one colour per prior, one panel
    per true spread, and the family's theory curve (dashed)."""
    cells = measures[(measures["target"] == "shrinkage") & (measures["model"] == "partial")]
    if cells.empty:
        return placeholder(NO_PARTIAL)
    cells = with_fit_labels(cells)
    palette = fit_palette(cells["fit"])
    spreads = _spreads(cells)
    fig, axes = plt.subplots(
        1, len(spreads), figsize=(5.2 * len(spreads), 4.2), squeeze=False, sharey=True
    )
    n_dense = np.geomspace(cells["n_per_group"].min(), cells["n_per_group"].max(), 200)
    for ax, (axis, spread) in zip(axes[0], spreads, strict=True):
        panel = cells[(cells["spread_axis"] == axis) & (cells["spread"] == spread)]
        for label, line in panel.groupby("fit"):
            factor = line[line["measure"] == "factor"].sort_values("n_per_group")
            ratio = line[line["measure"] == "median_ratio"].sort_values("n_per_group")
            x, y = factor["n_per_group"], factor["value"]
            half = 1.96 * factor["mcse"].fillna(0)
            ax.plot(x, y, marker="o", color=palette[label], label=f"{label}: 1 - slope")
            ax.fill_between(x, y - half, y + half, color=palette[label], alpha=0.2, linewidth=0)
            ax.plot(
                ratio["n_per_group"],
                ratio["value"],
                marker="x",
                linestyle=":",
                color=palette[label],
                label=f"{label}: median ratio",
            )
        tau = outcome.implied_tau(axis, spread)
        theory = outcome.labels["theory"]
        ax.plot(n_dense, outcome.theory(n_dense, tau), "k--", label=theory)
        log_n_axis(ax, cells["n_per_group"], outcome.labels["n_axis"])
        ax.set_title(_spread_title(axis, spread, outcome))
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("shrinkage factor (0 = none, 1 = complete pooling)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"How much partial pooling shrinks group estimates ({outcome.family.name} data; "
        f"dashed: {outcome.theory_name})",
        y=1.02,
    )
    return fig


def estimate_vs_observed(groups: pd.DataFrame, outcome: StudyOutcome) -> plt.Figure:
    """Posterior median against observed value on the natural scale (binomial: probability
    against proportion), one facet per n (partial pooling, first replicate and first
    spread), with the identity line."""
    part = groups[(groups["model"] == "partial") & ~groups["is_control"]]
    if part.empty:
        part = groups[~groups["is_control"]]
    part = part[
        (part["replicate"] == part["replicate"].min()) & (part["spread"] == part["spread"].min())
    ]
    part = with_fit_labels(part)
    grid = sns.relplot(
        data=part,
        x="obs_p",
        y="p_median",
        hue="fit",
        col="n_per_group",
        col_wrap=min(4, max(1, part["n_per_group"].nunique())),
        height=3,
        palette=fit_palette(part["fit"]),
        s=14,
        alpha=0.7,
        facet_kws={"sharex": False, "sharey": False},
    )
    for ax in grid.axes.flat:
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    words = outcome.labels
    grid.set_axis_labels(words["observed"], words["estimate"])
    grid.set_titles("n = {col_name}")
    spread = part[["spread_axis", "spread"]].iloc[0] if len(part) else None
    subtitle = (
        f" ({spread['spread_axis']} = {spread['spread']:g}, replicate {part['replicate'].min()})"
        if spread is not None
        else ""
    )
    grid.figure.suptitle(f"Estimates against observed {words['compared']}{subtitle}", y=1.02)
    return grid.figure


def posterior_densities(
    draws: pd.DataFrame, groups: pd.DataFrame, n: int, outcome: StudyOutcome
) -> plt.Figure:
    """Posterior densities of p (natural scale) for the kept groups (one panel each, one line
    per prior) of the grid's n nearest ``n``, smallest true spread, first replicate; the
    observed value (binomial: y / n, solid) and the true value (dotted) marked."""
    if draws.empty:
        return placeholder(NO_PARTIAL)
    chosen_n = min(draws["n_per_group"].unique(), key=lambda v: (abs(v - n), v))
    cell = draws[draws["n_per_group"] == chosen_n]
    cell = cell[cell["spread"] == cell["spread"].min()]
    cell = cell[cell["replicate"] == cell["replicate"].min()]
    key = ["n_per_group", "spread_axis", "spread", "replicate", "group"]
    own = list(outcome.family.columns)
    data = groups[(groups["model"] == "partial")][[*key, *own, "obs_p", "true_p"]]
    data = data.drop_duplicates(key).merge(cell[key].drop_duplicates(), on=key)
    palette = fit_palette(fit_label("partial", p) for p in cell["prior"].unique())
    ids = sorted(cell["group"].unique())
    cols = min(4, len(ids))
    rows = -(-len(ids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), sharex=True)
    axes = np.atleast_1d(axes).ravel()
    for ax, gid in zip(axes, ids, strict=False):
        for prior, one in cell[cell["group"] == gid].groupby("prior"):
            label = fit_label("partial", prior)
            sns.kdeplot(x=one["p"], ax=ax, color=palette[label], label=label, cut=0)
        obs = data[data["group"] == gid].iloc[0]
        words = outcome.labels
        ax.axvline(obs["obs_p"], color="black", linewidth=1.2, label=words["observed_line"])
        ax.axvline(obs["true_p"], color="grey", linestyle=":", label=words["true_line"])
        ax.set_title(f"group {gid}: {outcome.group_title(obs)}", fontsize=9)
        ax.set_xlabel(f"{words['natural']} (posterior draws)")
        ax.set_ylabel("density")
    for ax in axes[len(ids) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.04))
    axis, spread = cell["spread_axis"].iloc[0], cell["spread"].iloc[0]
    fig.suptitle(
        f"Posterior of {outcome.labels['natural']} for {len(ids)} random groups, n = {chosen_n}, {axis} = {spread:g}, "
        f"replicate {cell['replicate'].iloc[0]} (partial pooling)"
    )
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[Summary], plt.Figure]] = {
    "shrinkage_vs_n": lambda s: shrinkage_vs_n(s.measures, s.outcome),
    "estimate_vs_observed": lambda s: estimate_vs_observed(s.groups, s.outcome),
    "posterior_densities": lambda s: posterior_densities(s.draws, s.groups, s.density_n, s.outcome),
    "tau_posterior": lambda s: tau_posterior(s.fits, s.outcome),
    "rmse_vs_n": lambda s: rmse_vs_n(s.measures, s.outcome),
    "coverage_vs_n": lambda s: coverage_vs_n(s.measures, s.outcome),
    "diagnostics": lambda s: diagnostics_overview(s.measures),
}
"""Figure name (file stem) -> drawing function."""


def draw(summary: Summary, paths: Iterable[str | Path], workers: int = 1) -> None:
    """Draw every figure named by the stems of ``paths``, once per name, saved to each path;
    with ``workers`` > 1 in that many forked processes (the figures are independent)."""
    by_name: dict[str, list[Path]] = {}
    for path in map(Path, paths):
        if path.stem not in FIGURES:
            raise ValueError(f"{path}: unknown figure {path.stem!r}; known: {sorted(FIGURES)}")
        by_name.setdefault(path.stem, []).append(path)
    if workers <= 1 or len(by_name) <= 1:
        for name, targets in by_name.items():
            _draw_one(summary, name, targets)
        return
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [pool.submit(_draw_one, summary, *item) for item in by_name.items()]
        for job in jobs:
            job.result()


def _draw_one(summary: Summary, name: str, targets: list[Path]) -> None:
    save(FIGURES[name](summary), *targets)
