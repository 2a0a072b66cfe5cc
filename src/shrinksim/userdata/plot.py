"""Figures of the user-data analysis (report category "Your data"): estimates against
observed values, posterior densities of some groups, the hyperparameters, the design-matched
shrinkage and the what-if curve; each in the words and on the scales of the data's family
(:class:`shrinksim.study.outcome.StudyOutcome` labels; natural scale: probability, rate or
outcome units) and with its theory curve."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from shrinksim.families import OutcomeFamily, observed_natural  # noqa: E402
from shrinksim.figures import fit_label, save  # noqa: E402
from shrinksim.priors import parse_prior  # noqa: E402
from shrinksim.study.outcome import StudyOutcome  # noqa: E402
from shrinksim.userdata.outcome import BINOMIAL, data_family, natural_mean, size_text  # noqa: E402
from shrinksim.userdata.page import summary_page  # noqa: E402
from shrinksim.userdata.study import point_outcome, whatif_text  # noqa: E402


def _fits_in_order(fits: pd.DataFrame) -> list[tuple[str, str]]:
    """(prior, model) of every fit in ``fits``: partial pooling by prior, then the baselines."""
    order = {"partial": 0, "none": 1, "complete": 2}
    keys = fits[["prior", "model"]].drop_duplicates().itertuples(index=False)
    return sorted(((p, m) for p, m in keys), key=lambda k: (order[k[1]], k[0]))


def estimates(
    groups: pd.DataFrame, fits: pd.DataFrame, path: str | Path, family: OutcomeFamily = BINOMIAL
) -> None:
    """Posterior median (with 95 % interval) of each group's effect on the natural scale
    (probability, rate, mean) against its observed value, one panel per fit, with the identity
    line and the pooled estimate: the forum's figure for the user's data."""
    labels = StudyOutcome(family).labels
    keys = [
        k
        for k in _fits_in_order(fits)
        if ((groups["prior"] == k[0]) & (groups["model"] == k[1])).any()
    ]
    cols = min(3, max(1, len(keys)))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False)
    lo = min(groups["obs_p"].min(), groups["p_q025"].min())
    hi = max(groups["obs_p"].max(), groups["p_q975"].max())
    pad = 0.03 * (hi - lo or 1)
    lo, hi = lo - pad, hi + pad
    if family.link == "logit":  # a probability
        lo, hi = max(0.0, lo), min(1.0, hi)
    for ax, (prior, model) in zip(axes.flat, keys, strict=False):
        part = groups[(groups["prior"] == prior) & (groups["model"] == model)]
        fit = fits[(fits["prior"] == prior) & (fits["model"] == model)].iloc[0]
        treat, control = part[~part["is_control"]], part[part["is_control"]]
        ax.errorbar(
            treat["obs_p"],
            treat["p_median"],
            yerr=[treat["p_median"] - treat["p_q025"], treat["p_q975"] - treat["p_median"]],
            fmt="o",
            ms=3.5,
            alpha=0.75,
            elinewidth=0.6,
            label="group (95 % interval)",
        )
        if len(control):
            ax.plot(control["obs_p"], control["p_median"], "s", color="C3", ms=7, label="control")
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, label="no shrinkage")
        if not np.isnan(fit["mu_mean"]):
            ax.axhline(
                natural_mean(family, fit["mu_median"]),
                color="grey",
                ls=":",
                label=f"pooled ({family.natural_text('median mu')})",
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(
            f"{fit_label(model, prior)}\nshrinkage factor {fit['shrinkage']:.2f}", fontsize=10
        )
        ax.set_xlabel(labels["observed"])
        ax.set_ylabel(labels["estimate"])
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"Your data ({family.name}): posterior medians against observed {labels['compared']}",
        y=1.01,
    )
    fig.tight_layout()
    save(fig, path)


def pick_groups(data: pd.DataFrame, count: int) -> list[int]:
    """Positions (in ``data``) of up to ``count`` treatment groups spread over the observed
    values (proportions, rates, means, estimates), the most extreme ones included; ties broken
    by size (smallest first)."""
    family = data_family(data)
    treat = data[~data["is_control"]]
    treat = treat.assign(obs=observed_natural(family, treat))
    ordered = treat.sort_values(["obs", family.size], kind="stable").index.to_numpy()
    if len(ordered) <= count:
        return sorted(ordered.tolist())
    picks = np.unique(np.rint(np.linspace(0, len(ordered) - 1, count)).astype(int))
    return sorted(ordered[picks].tolist())


def densities(draws: pd.DataFrame, data: pd.DataFrame, count: int, path: str | Path) -> None:
    """Posterior densities of the effect on the natural scale of ``count`` groups (spread over
    the observed values), one line per fit, with the observed value (solid) and the pooled
    posterior median (dotted)."""
    family = data_family(data)
    outcome = StudyOutcome(family)
    positions = pick_groups(data, count)
    cols = min(3, len(positions))
    rows = -(-len(positions) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    keys = _fits_in_order(draws)
    palette = dict(zip(keys, sns.color_palette("colorblind"), strict=False))
    for ax, pos in zip(axes.flat, positions, strict=False):
        row = data.iloc[pos]
        for key in keys:
            part = draws[(draws["prior"] == key[0]) & (draws["model"] == key[1])]
            p = family.natural(part[f"theta[{pos + 1}]"].to_numpy())
            ls = "-" if key[1] == "partial" else "--"
            if np.ptp(p) > 0:
                sns.kdeplot(
                    x=p, ax=ax, color=palette[key], ls=ls, label=fit_label(key[1], key[0]), cut=0
                )
        observed = observed_natural(family, data.iloc[[pos]])[0]
        ax.axvline(observed, color="black", linewidth=1, label="observed")
        partial = draws[draws["model"] == "partial"]
        if len(partial):
            pooled = natural_mean(family, np.median(partial["mu"]))
            ax.axvline(pooled, color="grey", ls=":", label="pooled")
        ax.set_title(f"group {row['group']}: {outcome.group_title(row)}", fontsize=9)
        ax.set_xlabel(outcome.labels["natural"])
        ax.set_ylabel("")
        ax.set_yticks([])
    for ax in axes.flat[len(positions) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Your data ({family.name}): posterior densities of some groups", y=1.01)
    fig.tight_layout()
    save(fig, path)


def hyperparameters(
    draws: pd.DataFrame,
    priors: Mapping[str, str],
    path: str | Path,
    family: OutcomeFamily = BINOMIAL,
) -> None:
    """Posterior of tau (with the prior's density, dashed), of the pooled value on the natural
    scale (expit(mu), exp(mu) or mu) and, for gaussian data, of the within-group sd sigma, one
    line per fit."""
    with_sigma = "sigma" in draws and draws["sigma"].notna().any()
    fig, axes = plt.subplots(1, 3 if with_sigma else 2, figsize=(15 if with_sigma else 10, 3.8))
    left, right = axes[:2]
    keys = _fits_in_order(draws)
    palette = dict(zip(keys, sns.color_palette("colorblind"), strict=False))
    partial = draws[draws["model"] == "partial"]
    top = float(np.quantile(partial["tau"], 0.995)) * 1.1 if len(partial) else 1.0
    x = np.linspace(0, top, 300)
    for key in keys:
        part = draws[(draws["prior"] == key[0]) & (draws["model"] == key[1])]
        label = fit_label(key[1], key[0])
        if key[1] == "partial":
            sns.kdeplot(x=part["tau"], ax=left, color=palette[key], label=label, cut=0)
            prior = parse_prior(priors[key[0]], f"priors.{key[0]}")
            left.plot(
                x,
                prior.half_density(x),
                color=palette[key],
                ls="--",
                lw=0.9,
                label=f"prior {prior}",
            )
        if part["mu"].notna().all() and np.ptp(part["mu"]) > 0:
            pooled = family.natural(part["mu"].to_numpy())
            sns.kdeplot(x=pooled, ax=right, color=palette[key], label=label, cut=0)
        if with_sigma and part["sigma"].notna().all():
            sns.kdeplot(x=part["sigma"], ax=axes[2], color=palette[key], label=label, cut=0)
    left.set_xlim(0, top)
    left.set_xlabel(f"tau (sd of theta, {family.scale})")
    left.set_title("between-group sd tau")
    left.legend(fontsize=7)
    right.set_xlabel(family.natural_text("mu"))
    right.set_title(f"pooled {family.natural_scale}")
    right.legend(fontsize=7)
    if with_sigma:
        axes[2].set_xlabel("sigma (outcome units)")
        axes[2].set_title("within-group sd sigma")
        axes[2].legend(fontsize=7)
    fig.suptitle(f"Your data ({family.name}): hyperparameters", y=1.02)
    fig.tight_layout()
    save(fig, path)


def design(
    cells: pd.DataFrame,
    fits: pd.DataFrame,
    points: pd.DataFrame,
    path: str | Path,
    family: OutcomeFamily = BINOMIAL,
) -> None:
    """Design-matched study at the user's own sizes (scale 1): expected shrinkage against the
    true tau (mean +- 1.96 MCSE per prior, the family's theory curve dashed, the shrinkage of
    the user's own fit as a horizontal line), and how well the group effects are recovered."""
    here = cells[cells["scale"] == 1.0]
    priors = sorted(here["prior"].unique())
    palette = dict(zip(priors, sns.color_palette("colorblind"), strict=False))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    outcome = point_outcome(family, points.iloc[0])
    n_mean = float(here["n_mean"].mean())
    tau_dense = np.linspace(0.9 * here["tau"].min(), 1.1 * here["tau"].max(), 200)
    for i, prior in enumerate(priors):
        line = here[here["prior"] == prior].sort_values("tau")
        offset = (i - (len(priors) - 1) / 2) * 0.01 * (tau_dense[-1] - tau_dense[0])
        left.errorbar(
            line["tau"] + offset,
            line["shrinkage_mean"],
            yerr=1.96 * line["shrinkage_mcse"].fillna(0),
            fmt="o-",
            color=palette[prior],
            capsize=3,
            label=f"simulated, prior {prior}",
        )
        own = fits[(fits["model"] == "partial") & (fits["prior"] == prior)]
        if len(own):
            left.axhline(
                own["shrinkage"].iloc[0],
                color=palette[prior],
                ls=":",
                label=f"your fit, prior {prior}",
            )
        right.plot(
            line["tau"],
            line["rmse_posterior"],
            "o-",
            color=palette[prior],
            label=f"posterior mean, prior {prior}",
        )
    left.plot(
        tau_dense,
        outcome.theory(n_mean, tau_dense),
        "k--",
        lw=1,
        label=f"{outcome.labels['theory']} at {family.size} = {size_text(family, n_mean)}",
    )
    left.set_xlabel(f"true tau ({family.scale}; quantiles of your tau posterior)")
    left.set_ylabel("shrinkage factor")
    left.set_ylim(-0.05, 1.05)
    left.set_title("expected shrinkage at your group sizes")
    left.legend(fontsize=7)
    obs = here.groupby("tau")["rmse_observed"].mean()
    right.plot(
        obs.index, obs.to_numpy(), "s--", color="black", label="observed effects (no pooling)"
    )
    for _, row in here.iterrows():
        right.annotate(
            f"{row['coverage95']:.0%}",
            (row["tau"], row["rmse_posterior"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    right.set_xlabel("true tau")
    right.set_ylabel(f"RMSE of the group effects ({family.scale})")
    right.set_ylim(bottom=0)
    right.set_title("recovery of group effects (labels: 95 % coverage)")
    right.legend(fontsize=7)
    fig.suptitle(
        f"Design-matched simulation ({family.name}): your sizes, tau from your posterior", y=1.02
    )
    fig.tight_layout()
    save(fig, path)


def whatif(
    cells: pd.DataFrame,
    answer: pd.DataFrame,
    points: pd.DataFrame,
    target: float,
    path: str | Path,
    family: OutcomeFamily = BINOMIAL,
) -> None:
    """Shrinkage against the mean group size (n, exposure or se) of the what-if designs
    (scaled sizes), one colour per true tau, one marker per prior, the family's theory curve
    dashed, the target as a horizontal line and the user's mean size as a vertical line."""
    outcome = point_outcome(family, points.iloc[0])
    colours = dict(
        zip(
            sorted(cells["tau_index"].unique()),
            sns.color_palette("viridis", cells["tau_index"].nunique()),
            strict=False,
        )
    )
    markers = dict(zip(sorted(cells["prior"].unique()), "osD^v", strict=False))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    n_dense = np.geomspace(cells["n_mean"].min() / 1.5, cells["n_mean"].max() * 1.5, 200)
    for (k, prior), line in cells.groupby(["tau_index", "prior"]):
        line = line.sort_values("n_mean")
        tau = line["tau"].iloc[0]
        ax.errorbar(
            line["n_mean"],
            line["shrinkage_mean"],
            yerr=1.96 * line["shrinkage_mcse"].fillna(0),
            marker=markers[prior],
            color=colours[k],
            capsize=2,
            label=f"tau = {tau:.2f} (q{line['quantile'].iloc[0]:.2f}), prior {prior}",
        )
    for k, tau in points.set_index("tau_index")["tau"].items():
        ax.plot(n_dense, outcome.theory(n_dense, tau), "--", color=colours.get(k, "grey"), lw=0.8)
    ax.axhline(target, color="red", lw=0.8, label=f"target {target:g}")
    now = cells.loc[cells["scale"] == 1.0, "n_mean"].mean()
    label = f"your mean {family.size} = {size_text(family, now)}"
    ax.axvline(now, color="black", lw=0.8, ls=":", label=label)
    ax.set_xscale("log")
    ticks = cells["n_mean"].round() if family.size == "n" else cells["n_mean"]
    ax.set_xticks(sorted(ticks.unique()))
    ax.set_xticklabels([size_text(family, x) for x in sorted(ticks.unique())])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(f"mean {family.size} per treatment group (your sizes x scale, log axis)")
    if family.size == "se":  # more data to the right, as for n and exposure
        ax.invert_xaxis()
        ax.set_xlabel("mean se per treatment group (your se / sqrt(scale), log axis, reversed)")
    ax.set_ylabel("shrinkage factor")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7)
    if len(answer):
        mid = answer.sort_values(["tau_index", "prior"]).iloc[len(answer) // 2]
        ax.set_title(
            f"What if: {family.size} per group for shrinkage {target:g} at tau = "
            f"{mid['tau']:.2f} (prior {mid['prior']}):\n{whatif_text(mid, family)}",
            fontsize=9,
        )
    save(fig, path)


def all_figures(
    data: pd.DataFrame,
    groups: pd.DataFrame,
    fits: pd.DataFrame,
    draws: pd.DataFrame,
    points: pd.DataFrame,
    cells: pd.DataFrame,
    answer: pd.DataFrame,
    loo: pd.DataFrame,
    priors: Mapping[str, str],
    show_groups: int,
    target: float,
    source: str,
    out: Mapping[str, str],
) -> None:
    """Every figure and the summary page (with the PSIS-LOO table ``loo``); ``out`` maps
    estimates, densities, hyperparameters, design, whatif, summary to paths."""
    family = data_family(data)
    ok_fits = fits[fits["status"] != "error"]
    estimates(groups, ok_fits, out["estimates"], family)
    densities(draws, data, show_groups, out["densities"])
    hyperparameters(draws, priors, out["hyperparameters"], family)
    design(cells, fits, points, out["design"], family)
    whatif(cells, answer, points, target, out["whatif"], family)
    summary_page(data, fits, cells, answer, loo, source, out["summary"])
