"""Summaries of the design-matched study: per fit, shrinkage and recovery of the true group
effects; per design cell, means over replicates; and the what-if answer, the mean group size
at which shrinkage falls to a target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shrinksim.families import OutcomeFamily
from shrinksim.shrinkage import FIT_KEY
from shrinksim.study.outcome import StudyOutcome
from shrinksim.study.summarize import shrinkage_per_fit
from shrinksim.tables import DESIGN_FITS, WHATIF
from shrinksim.userdata.design import size_for_shrinkage, size_for_shrinkage_simulated
from shrinksim.userdata.outcome import BINOMIAL, population, size_text


def point_outcome(family: OutcomeFamily, point: Mapping[str, Any]) -> StudyOutcome:
    """The family at design ``point``'s population (its ``mu`` and ``sigma``; binomial: its
    ``p0``), whose theory curve the design-matched study is compared with."""
    if family.name == "binomial":
        return StudyOutcome(family, p0=float(point["p0"]))
    return population(family, float(point["mu"]), float(point.get("sigma", np.nan)))


def recovery(groups: pd.DataFrame) -> pd.DataFrame:
    """How well one fit recovers the true group effects theta (treatment groups): RMSE of the
    posterior mean and, for comparison, of the observed effects; 95 % interval coverage."""
    treat = groups[~groups["is_control"]].assign(
        err_post=lambda d: (d["theta_mean"] - d["true_logit"]) ** 2,
        err_obs=lambda d: (d["obs_logit"] - d["true_logit"]) ** 2,
        covered=lambda d: (
            (d["theta_q025"] <= d["true_logit"]) & (d["true_logit"] <= d["theta_q975"])
        ),
    )
    out = treat.groupby(FIT_KEY, sort=True).agg(
        rmse_posterior=("err_post", "mean"),
        rmse_observed=("err_obs", "mean"),
        coverage95=("covered", "mean"),
    )
    out[["rmse_posterior", "rmse_observed"]] = np.sqrt(out[["rmse_posterior", "rmse_observed"]])
    return out.reset_index()


def design_fit_rows(
    groups: pd.DataFrame,
    fits: pd.DataFrame,
    point: Mapping[str, Any],
    scale: float,
    family: OutcomeFamily = BINOMIAL,
) -> pd.DataFrame:
    """:data:`shrinksim.tables.DESIGN_FITS` rows of one design cell's fits (of ``family``):
    ``n_mean`` is the mean treatment-group size (n, exposure or se), ``shrinkage_theory`` the
    family's theory curve at the cell's rounded mean n (``n_per_group``), or at the mean
    exposure or se."""
    outcome = point_outcome(family, point)
    per_fit = shrinkage_per_fit(groups, fits, outcome)
    if len(groups):
        per_fit = per_fit.merge(recovery(groups), on=FIT_KEY, how="left")
        sizes = groups[~groups["is_control"]].groupby("replicate")[family.size].mean()
        per_fit["n_mean"] = per_fit["replicate"].map(sizes)
        if family.size != "n":  # the same sizes in every replicate; no rounding of them
            per_fit["shrinkage_theory"] = outcome.theory(sizes.mean(), float(point["tau"]))
    else:
        per_fit = per_fit.assign(
            rmse_posterior=np.nan, rmse_observed=np.nan, coverage95=np.nan, n_mean=np.nan
        )
    return per_fit.assign(
        scale=float(scale),
        tau_index=int(point["tau_index"]),
        quantile=float(point["quantile"]),
        tau=float(point["tau"]),
    ).reindex(columns=DESIGN_FITS.names)


def design_cells(per_fit: pd.DataFrame) -> pd.DataFrame:
    """:data:`shrinksim.tables.DESIGN_CELLS`: per (scale, tau, prior), means over replicates
    (fits with estimates) and the MCSE of the shrinkage."""
    keys = ["scale", "tau_index", "quantile", "tau", "prior"]

    def reduce(cell: pd.DataFrame) -> pd.Series:
        ok = cell.dropna(subset=["shrinkage"])
        mcse = ok["shrinkage"].std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan
        return pd.Series(
            {
                "n_mean": cell["n_mean"].mean(),
                "fits": len(cell),
                "fits_ok": int((cell["status"] == "ok").sum()),
                "shrinkage_mean": ok["shrinkage"].mean() if len(ok) else np.nan,
                "shrinkage_mcse": mcse,
                "shrinkage_theory": cell["shrinkage_theory"].iloc[0],
                "rmse_posterior": ok["rmse_posterior"].mean(),
                "rmse_observed": ok["rmse_observed"].mean(),
                "coverage95": ok["coverage95"].mean(),
            }
        )

    return per_fit.groupby(keys, sort=True)[per_fit.columns.drop(keys)].apply(reduce).reset_index()


def whatif(
    cells: pd.DataFrame, points: pd.DataFrame, target: float, family: OutcomeFamily = BINOMIAL
) -> pd.DataFrame:
    """:data:`shrinksim.tables.WHATIF`: per prior and tau, the mean treatment-group size (n,
    exposure or se of ``family``) giving shrinkage ``target``: from the simulated designs
    (:func:`~shrinksim.userdata.design.size_for_shrinkage_simulated`) and from the family's
    theory curve at the design's population
    (:func:`~shrinksim.userdata.design.size_for_shrinkage`)."""
    outcome = point_outcome(family, points.iloc[0])
    rows = []
    for (prior, k), line in cells.groupby(["prior", "tau_index"], sort=True):
        tau = float(line["tau"].iloc[0])
        n_sim, how = size_for_shrinkage_simulated(
            family, line["n_mean"].to_numpy(), line["shrinkage_mean"].to_numpy(), target
        )
        rows.append(
            {
                "prior": prior,
                "tau_index": k,
                "quantile": float(line["quantile"].iloc[0]),
                "tau": tau,
                "target": target,
                "n_now": float(line.loc[line["scale"] == 1.0, "n_mean"].mean()),
                "n_simulated": n_sim,
                "n_simulated_how": how,
                "n_theory": float(size_for_shrinkage(outcome, target, tau)),
            }
        )
    return pd.DataFrame(rows, columns=WHATIF.names)


def whatif_text(row: pd.Series, family: OutcomeFamily = BINOMIAL) -> str:
    """The what-if answer of one row of :data:`shrinksim.tables.WHATIF`, in words (sizes of
    ``family``: n, exposure or se)."""
    size, how = family.size, row["n_simulated_how"]
    if how == "interpolated":
        sim = f"{size} ~{size_text(family, row['n_simulated'])} simulated"
    elif how in ("at most", "at least"):
        which = "smallest design" if how == "at most" else "design with the largest se"
        value = size_text(family, row["n_simulated"])
        sim = f"{size} {how} {value} simulated (the {which} is below it)"
    else:
        largest = "design with the smallest se" if size == "se" else "largest simulated design"
        sim = f"not reached by the {largest}"
    theory = StudyOutcome(family).labels["theory"]
    return f"{sim}, ~{size_text(family, row['n_theory'])} by the theory curve ({theory})"
