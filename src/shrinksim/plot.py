"""Figures of the study (seaborn), written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from shrinksim.sbc import ecdf_band, ecdf_difference  # noqa: E402
from shrinksim.summarize import implied_tau, theory_shrinkage  # noqa: E402
from shrinksim.tables import write_atomic  # noqa: E402

MODEL_LABELS = {"none": "no pooling", "complete": "complete pooling"}


def _label(model: str, prior: str) -> str:
    return f"partial, prior {prior}" if model == "partial" else MODEL_LABELS[model]


def save(fig: plt.Figure, path: str | Path) -> None:
    """Save a figure atomically, in the format its suffix names."""
    fmt = Path(path).suffix.lstrip(".")
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight"))
    plt.close(fig)


def shrinkage_vs_n(cells: pd.DataFrame, p0: float, path: str | Path) -> None:
    """Mean shrinkage factor of partial pooling against n (log axis) with 95 % Monte Carlo
    intervals (mean +- 1.96 MCSE), one line per prior, one panel per true spread, and the
    normal-approximation curve."""
    cells = cells[cells["model"] == "partial"]  # the baselines are 0-ish and 1 by construction
    cells = cells.assign(
        fit=[_label(m, p) for m, p in zip(cells["model"], cells["prior"], strict=True)]
    )
    spreads = sorted(cells[["spread_axis", "spread"]].drop_duplicates().itertuples(index=False))
    palette = dict(
        zip(sorted(cells["fit"].unique()), sns.color_palette("colorblind"), strict=False)
    )
    fig, axes = plt.subplots(
        1, len(spreads), figsize=(5.2 * len(spreads), 4.2), squeeze=False, sharey=True
    )
    n_dense = np.geomspace(cells["n_per_group"].min(), cells["n_per_group"].max(), 200)
    for ax, (axis, spread) in zip(axes[0], spreads, strict=True):
        panel = cells[(cells["spread_axis"] == axis) & (cells["spread"] == spread)]
        for label, line in panel.groupby("fit"):
            line = line.sort_values("n_per_group")
            x, y, half = (
                line["n_per_group"],
                line["shrinkage_mean"],
                1.96 * line["shrinkage_mcse"].fillna(0),
            )
            ax.plot(x, y, marker="o", color=palette[label], label=label)
            ax.fill_between(x, y - half, y + half, color=palette[label], alpha=0.2, linewidth=0)
        tau = implied_tau(axis, spread, p0)
        ax.plot(n_dense, theory_shrinkage(n_dense, tau, p0), "k--", label="normal approximation")
        ax.set_xscale("log")
        ax.set_xticks(sorted(cells["n_per_group"].unique()))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(f"true {axis} = {spread:g}" + ("" if axis == "tau" else f" (tau ~ {tau:.2f})"))
        ax.set_xlabel("outcomes per group, n (log scale)")
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("shrinkage factor (1 - slope), 0 = none, 1 = complete")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.suptitle("How much partial pooling shrinks group estimates", y=1.02)
    save(fig, path)


def estimate_vs_observed(groups: pd.DataFrame, path: str | Path) -> None:
    """Posterior median probability against observed proportion, one facet per n
    (partial pooling, first replicate and first spread), with the identity line."""
    part = groups[(groups["model"] == "partial") & ~groups["is_control"]]
    if part.empty:
        part = groups[~groups["is_control"]]
    part = part[
        (part["replicate"] == part["replicate"].min()) & (part["spread"] == part["spread"].min())
    ]
    part = part.assign(
        fit=[_label(m, p) for m, p in zip(part["model"], part["prior"], strict=True)]
    )
    grid = sns.relplot(
        data=part,
        x="obs_p",
        y="p_median",
        hue="fit",
        col="n_per_group",
        col_wrap=min(4, max(1, part["n_per_group"].nunique())),
        height=3,
        palette="colorblind",
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
    grid.set_axis_labels("observed proportion y / n", "posterior median of p")
    grid.set_titles("n = {col_name}")
    spread = part[["spread_axis", "spread"]].iloc[0] if len(part) else None
    subtitle = (
        f" ({spread['spread_axis']} = {spread['spread']:g}, replicate {part['replicate'].min()})"
        if spread is not None
        else ""
    )
    grid.figure.suptitle(f"Estimates against observed proportions{subtitle}", y=1.02)
    save(grid.figure, path)


def sbc_ecdf(ranks: pd.DataFrame, tests: pd.DataFrame, path: str | Path) -> None:
    """SBC: ECDF difference of the ranks (one line per n) with the simultaneous 95 % band,
    one panel per (prior, parameter), annotated with Holm-adjusted p-values."""
    ranked = ranks.dropna(subset=["rank"])
    priors = list(dict.fromkeys(tests["prior"]))
    names = list(dict.fromkeys(tests["parameter"]))
    ns = sorted(tests["n_per_group"].unique())
    palette = dict(zip(ns, sns.color_palette("colorblind"), strict=False))
    fig, axes = plt.subplots(
        len(priors),
        len(names),
        figsize=(2.6 * len(names), 2.2 * len(priors)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for row, prior in enumerate(priors):
        for col, name in enumerate(names):
            ax = axes[row][col]
            panel = tests[(tests["prior"] == prior) & (tests["parameter"] == name)]
            band = ecdf_band(int(panel["ranked"].min()), int(panel["thinned_draws"].iloc[0]))
            ax.fill_between(band["z"], band["lower"], band["upper"], color="0.85", step="post")
            ax.axhline(0, color="0.5", linewidth=0.6)
            notes = []
            for test in panel.itertuples():
                part = ranked[
                    (ranked["prior"] == prior)
                    & (ranked["parameter"] == name)
                    & (ranked["n_per_group"] == test.n_per_group)
                ]
                diff = ecdf_difference(part["rank"].to_numpy(int), test.thinned_draws)
                color = palette[test.n_per_group]
                ax.step(diff["z"], diff["difference"], where="post", color=color, linewidth=1)
                notes.append(f"n={test.n_per_group}: p={test.p_adjusted:.2g}")
            ax.text(0.03, 0.04, "\n".join(notes), transform=ax.transAxes, fontsize=7)
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(f"{prior}\nECDF - uniform")
            if row == len(priors) - 1:
                ax.set_xlabel("fractional rank")
    handles = [plt.Line2D([], [], color=palette[n], label=f"n = {n}") for n in ns]
    handles.append(matplotlib.patches.Patch(color="0.85", label="95 % simultaneous band"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0))
    sims = int(tests["simulations"].max())
    fig.suptitle(
        f"Simulation-based calibration of partial pooling ({sims} simulations per panel line; "
        "p: Holm-adjusted)",
        y=1.03,
    )
    save(fig, path)
