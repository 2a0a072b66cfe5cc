"""Figures of the study (seaborn, colour-blind-safe palettes), written atomically.

:data:`FIGURES` maps each figure's name (the file stem in ``results/figures/``) to a function
drawing it from the :class:`Summary` tables; :func:`draw` saves one figure in every format
asked for (PNG, SVG).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "shrinksim"  # same figure -> same SVG bytes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from shrinksim.measures import ESS_PER_CHAIN, RHAT_MAX  # noqa: E402
from shrinksim.sbc import ecdf_band, ecdf_difference  # noqa: E402
from shrinksim.summarize import implied_tau, theory_shrinkage  # noqa: E402
from shrinksim.tables import write_atomic  # noqa: E402

MODEL_LABELS = {"none": "no pooling", "complete": "complete pooling"}
LINESTYLES = ("-", "--", ":", "-.")
N_LABEL = "outcomes per group, n (log scale)"


@dataclass(frozen=True)
class Summary:
    """The study's summary tables and the settings the figures need."""

    measures: pd.DataFrame
    groups: pd.DataFrame
    fits: pd.DataFrame
    draws: pd.DataFrame
    p0: float
    density_n: int


def _label(model: str, prior: str) -> str:
    return f"partial, prior {prior}" if model == "partial" else MODEL_LABELS[model]


def _with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    labels = [_label(m, p) for m, p in zip(frame["model"], frame["prior"], strict=True)]
    return frame.assign(fit=labels)


def _palette(labels: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """Colour per fit label: partial-pooling priors first, then the baselines."""
    order = sorted(set(labels), key=lambda s: (not s.startswith("partial"), s))
    return dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))


def _spread_title(axis: str, spread: float, p0: float) -> str:
    tau = implied_tau(axis, spread, p0)
    return f"true {axis} = {spread:g}" + ("" if axis == "tau" else f" (tau ~ {tau:.2f})")


def _log_n_axis(ax: plt.Axes, n: Iterable[int]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(n)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(N_LABEL)


def _spreads(frame: pd.DataFrame) -> list[tuple[str, float]]:
    return sorted(frame[["spread_axis", "spread"]].drop_duplicates().itertuples(index=False))


def _select(measures: pd.DataFrame, target: str, measure: str) -> pd.DataFrame:
    return _with_labels(measures[(measures["target"] == target) & (measures["measure"] == measure)])


def placeholder(message: str) -> plt.Figure:
    """A small figure that says why there is nothing to draw (e.g. no partial-pooling fit)."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


NO_PARTIAL = "no partial-pooling fit with estimates in this study"


def save(fig: plt.Figure, *paths: str | Path) -> None:
    """Save a figure atomically to each path, in the format its suffix names; then close it."""
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        undated = {"Date": None} if fmt in ("svg", "pdf") else None

        def write(tmp: str, fmt: str = fmt, metadata: dict | None = undated) -> None:
            fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)

        write_atomic(path, write)
    plt.close(fig)


def shrinkage_vs_n(measures: pd.DataFrame, p0: float) -> plt.Figure:
    """Both shrinkage measures of partial pooling against n (log axis): 1 - slope with a band
    of +- 1.96 MCSE (solid) and the median ratio (dotted), one colour per prior, one panel
    per true spread, and the normal-approximation curve (dashed)."""
    cells = measures[(measures["target"] == "shrinkage") & (measures["model"] == "partial")]
    if cells.empty:
        return placeholder(NO_PARTIAL)
    cells = _with_labels(cells)
    palette = _palette(cells["fit"])
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
        tau = implied_tau(axis, spread, p0)
        ax.plot(n_dense, theory_shrinkage(n_dense, tau, p0), "k--", label="normal approximation")
        _log_n_axis(ax, cells["n_per_group"])
        ax.set_title(_spread_title(axis, spread, p0))
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("shrinkage factor (0 = none, 1 = complete pooling)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle("How much partial pooling shrinks group estimates", y=1.02)
    return fig


def estimate_vs_observed(groups: pd.DataFrame) -> plt.Figure:
    """Posterior median probability against observed proportion, one facet per n
    (partial pooling, first replicate and first spread), with the identity line."""
    part = groups[(groups["model"] == "partial") & ~groups["is_control"]]
    if part.empty:
        part = groups[~groups["is_control"]]
    part = part[
        (part["replicate"] == part["replicate"].min()) & (part["spread"] == part["spread"].min())
    ]
    part = _with_labels(part)
    grid = sns.relplot(
        data=part,
        x="obs_p",
        y="p_median",
        hue="fit",
        col="n_per_group",
        col_wrap=min(4, max(1, part["n_per_group"].nunique())),
        height=3,
        palette=_palette(part["fit"]),
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
    return grid.figure


def posterior_densities(draws: pd.DataFrame, groups: pd.DataFrame, n: int) -> plt.Figure:
    """Posterior densities of p for the kept groups (one panel each, one line per prior) of
    the grid's n nearest ``n``, smallest true spread, first replicate; the observed
    proportion y / n (solid) and the true p (dotted) marked."""
    if draws.empty:
        return placeholder(NO_PARTIAL)
    chosen_n = min(draws["n_per_group"].unique(), key=lambda v: (abs(v - n), v))
    cell = draws[draws["n_per_group"] == chosen_n]
    cell = cell[cell["spread"] == cell["spread"].min()]
    cell = cell[cell["replicate"] == cell["replicate"].min()]
    key = ["n_per_group", "spread_axis", "spread", "replicate", "group"]
    data = groups[(groups["model"] == "partial")][[*key, "n", "y", "obs_p", "true_p"]]
    data = data.drop_duplicates(key).merge(cell[key].drop_duplicates(), on=key)
    palette = _palette(_label("partial", p) for p in cell["prior"].unique())
    ids = sorted(cell["group"].unique())
    cols = min(4, len(ids))
    rows = -(-len(ids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), sharex=True)
    axes = np.atleast_1d(axes).ravel()
    for ax, gid in zip(axes, ids, strict=False):
        for prior, one in cell[cell["group"] == gid].groupby("prior"):
            label = _label("partial", prior)
            sns.kdeplot(x=one["p"], ax=ax, color=palette[label], label=label, cut=0)
        obs = data[data["group"] == gid].iloc[0]
        ax.axvline(obs["obs_p"], color="black", linewidth=1.2, label="observed y / n")
        ax.axvline(obs["true_p"], color="grey", linestyle=":", label="true p")
        ax.set_title(f"group {gid}: y / n = {obs['y']} / {obs['n']}", fontsize=9)
        ax.set_xlabel("probability p (posterior draws)")
        ax.set_ylabel("density")
    for ax in axes[len(ids) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.04))
    axis, spread = cell["spread_axis"].iloc[0], cell["spread"].iloc[0]
    fig.suptitle(
        f"Posterior of p for {len(ids)} random groups, n = {chosen_n}, {axis} = {spread:g}, "
        f"replicate {cell['replicate'].iloc[0]} (partial pooling)"
    )
    fig.tight_layout()
    return fig


def tau_posterior(fits: pd.DataFrame, p0: float) -> plt.Figure:
    """Posterior mean of tau (point) with its 50 % (thick) and 95 % (thin) intervals for every
    partial-pooling fit, against the true tau (black bar), one panel per n, colour = prior."""
    part = fits[(fits["model"] == "partial") & (fits["status"] != "error")]
    if part.empty:
        return placeholder(NO_PARTIAL)
    part = part.assign(
        true_tau=[
            float(implied_tau(a, s, p0))
            for a, s in zip(part["spread_axis"], part["spread"], strict=True)
        ]
    )
    part = _with_labels(part)
    palette = _palette(part["fit"])
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
        ax.set_xlabel("true tau (log-odds sd)")
        ax.set_ylabel("posterior of tau (log-odds sd)")
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


def rmse_vs_n(measures: pd.DataFrame) -> plt.Figure:
    """RMSE of the group log-odds estimates against n for partial, no and complete pooling,
    with +- 1.96 MCSE bars; line style = true spread."""
    rmse = _select(measures, "groups", "rmse")
    palette = _palette(rmse["fit"])
    styles = dict(zip(sorted(rmse["spread"].unique()), LINESTYLES, strict=False))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _lines_vs_n(ax, rmse, palette, styles)
    _log_n_axis(ax, rmse["n_per_group"])
    ax.set_ylabel("RMSE of group estimates (log-odds)")
    ax.set_ylim(bottom=0)
    axis = rmse["spread_axis"].iloc[0]
    ax.legend(handles=_legend_handles(palette, styles, axis), fontsize=8)
    ax.set_title("Error of the group estimates against the true log-odds")
    return fig


def coverage_vs_n(measures: pd.DataFrame) -> plt.Figure:
    """Coverage of the 50, 90 and 95 % intervals (columns) for tau and the group effects
    (rows) against n, with +- 1.96 MCSE bars and the nominal level (dashed)."""
    cov = _select(measures, "tau", "coverage")
    cov = pd.concat([cov, _select(measures, "groups", "coverage")], ignore_index=True)
    palette = _palette(cov["fit"])
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
    names = {"tau": "tau", "groups": "group log-odds"}
    for i, target in enumerate(targets):
        for ax, level in zip(axes[i], levels, strict=True):
            panel = cov[(cov["target"] == target) & (cov["level"] == level)]
            _lines_vs_n(ax, panel, palette, styles)
            ax.axhline(level, color="black", linestyle="--", linewidth=1)
            _log_n_axis(ax, cov["n_per_group"])
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{names[target]}: {level:.0%} intervals", fontsize=10)
            ax.set_xlabel(N_LABEL if i == len(targets) - 1 else "")
        unit = "fits" if target == "tau" else "groups"
        axes[i][0].set_ylabel(f"coverage (share of {unit})")
    handles = _legend_handles(palette, styles, cov["spread_axis"].iloc[0])
    handles.append(Line2D([], [], color="black", linestyle="--", label="nominal level"))
    fig.legend(handles=handles, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Coverage of central posterior intervals")
    fig.tight_layout()
    return fig


def diagnostics_overview(measures: pd.DataFrame) -> plt.Figure:
    """Heat maps of the share of fits with each diagnostic problem per cell (rows: model,
    prior and spread; columns: n)."""
    diag = _with_labels(measures[measures["target"] == "diagnostics"])
    cells = diag[["fit", "spread_axis", "spread"]].itertuples(index=False)
    diag = diag.assign(row=[f"{fit}, {axis} = {spread:g}" for fit, axis, spread in cells])
    titles = {
        "any": "any problem",
        "divergent": "divergent transitions",
        "rhat": f"R-hat > {RHAT_MAX}",
        "low_ess": f"ESS < {ESS_PER_CHAIN} per chain",
        "error": "sampler error",
    }
    kinds = [k for k in titles if k in set(diag["measure"])]
    order = sorted(diag["row"].unique(), key=lambda s: (not s.startswith("partial"), s))
    cols = min(3, len(kinds))
    rows = -(-len(kinds) // cols)
    height = 0.35 * len(order) + 1.5
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, height * rows), squeeze=False, sharey=True
    )
    axes = axes.ravel()
    for ax, kind in zip(axes, kinds, strict=False):
        table = diag[diag["measure"] == kind].pivot(
            index="row", columns="n_per_group", values="value"
        )
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
        ax.set_title(titles[kind], fontsize=10)
        ax.set_xlabel("outcomes per group, n")
        ax.set_ylabel("")
    for ax in axes[len(kinds) :]:
        ax.set_visible(False)
    fig.suptitle("Share of fits with diagnostic problems per cell")
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[Summary], plt.Figure]] = {
    "shrinkage_vs_n": lambda s: shrinkage_vs_n(s.measures, s.p0),
    "estimate_vs_observed": lambda s: estimate_vs_observed(s.groups),
    "posterior_densities": lambda s: posterior_densities(s.draws, s.groups, s.density_n),
    "tau_posterior": lambda s: tau_posterior(s.fits, s.p0),
    "rmse_vs_n": lambda s: rmse_vs_n(s.measures),
    "coverage_vs_n": lambda s: coverage_vs_n(s.measures),
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
