"""Summaries of the design-matched study: per fit, shrinkage and recovery of the true group
effects; per design cell, means over replicates; and the what-if answer, the mean group size
at which shrinkage falls to a target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shrinksim.shrinkage import FIT_KEY
from shrinksim.study.summarize import shrinkage_per_fit
from shrinksim.tables import DESIGN_FITS, WHATIF
from shrinksim.userdata.design import n_for_shrinkage, n_for_shrinkage_simulated


def recovery(groups: pd.DataFrame) -> pd.DataFrame:
    """How well one fit recovers the true group log-odds (treatment groups): RMSE of the
    posterior mean and, for comparison, of the observed log-odds; 95 % interval coverage."""
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
) -> pd.DataFrame:
    """:data:`shrinksim.tables.DESIGN_FITS` rows of one design cell's fits."""
    p0 = float(point["p0"])
    per_fit = shrinkage_per_fit(groups, fits, p0)
    if len(groups):
        per_fit = per_fit.merge(recovery(groups), on=FIT_KEY, how="left")
        sizes = groups[~groups["is_control"]].groupby("replicate")["n"].mean()
        per_fit["n_mean"] = per_fit["replicate"].map(sizes)
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


def whatif(cells: pd.DataFrame, points: pd.DataFrame, target: float) -> pd.DataFrame:
    """:data:`shrinksim.tables.WHATIF`: per prior and tau, the mean n per group giving
    shrinkage ``target``."""
    p0 = float(points["p0"].iloc[0])
    rows = []
    for (prior, k), line in cells.groupby(["prior", "tau_index"], sort=True):
        tau = float(line["tau"].iloc[0])
        n_sim, how = n_for_shrinkage_simulated(
            line["n_mean"].to_numpy(), line["shrinkage_mean"].to_numpy(), target
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
                "n_theory": float(n_for_shrinkage(target, tau, p0)),
            }
        )
    return pd.DataFrame(rows, columns=WHATIF.names)


def whatif_text(row: pd.Series) -> str:
    """The what-if answer of one row of :data:`shrinksim.tables.WHATIF`, in words."""
    if row["n_simulated_how"] == "interpolated":
        sim = f"~{row['n_simulated']:.0f} simulated"
    elif row["n_simulated_how"] == "at most":
        sim = f"at most {row['n_simulated']:.0f} simulated (the smallest design is below it)"
    else:
        sim = "not reached by the largest simulated design"
    return f"{sim}, ~{row['n_theory']:.0f} by the normal approximation"
