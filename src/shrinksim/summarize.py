"""Combine fits into study tables and measure shrinkage.

Shrinkage of one fit, over its treatment groups (the control group is left out):

* ``shrinkage`` = 1 - slope of the least-squares line of the posterior mean log-odds
  on the observed log-odds log((y + 1/2) / (n - y + 1/2)). 0 = no shrinkage (estimates
  follow the data), 1 = complete pooling (every estimate equals the pooled mean). In the
  normal-normal model the posterior mean is exactly mu + (1 - B)(observed - mu), so this
  slope recovers B.
* ``shrinkage_ratio`` = median over groups of (observed - posterior mean) / (observed -
  pooled), pooled being the posterior mean of mu (partial, complete pooling) or the pooled
  empirical log-odds (no pooling).
* ``shrinkage_theory`` = sigma^2 / (sigma^2 + tau^2), sigma^2 = 1 / (n p0 (1 - p0)): the
  normal approximation at the cell's n; for ``probability_normal`` data tau is the implied
  log-odds sd p_sd / (p0 (1 - p0)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shrinksim.tables import CELL_FIELDS

CELL = [f.name for f in CELL_FIELDS]
FIT_KEY = [*CELL, "replicate"]


def implied_tau(spread_axis: str, spread: float | np.ndarray, p0: float) -> float | np.ndarray:
    """True log-odds sd of a cell: tau itself, or the delta-method value for p_sd."""
    return spread if spread_axis == "tau" else np.asarray(spread) / (p0 * (1 - p0))


def theory_shrinkage(n: float | np.ndarray, tau: float | np.ndarray, p0: float) -> np.ndarray:
    """Normal-approximation shrinkage factor B(n) = sigma^2 / (sigma^2 + tau^2)."""
    sigma2 = 1.0 / (np.asarray(n, dtype=float) * p0 * (1 - p0))
    return sigma2 / (sigma2 + np.asarray(tau, dtype=float) ** 2)


def pooled_logit(fit: pd.DataFrame, mu_mean: float) -> float:
    """The value shrinkage pulls towards: ``mu_mean`` if the model has mu, else the pooled
    empirical log-odds of all of the fit's groups."""
    if not np.isnan(mu_mean):
        return float(mu_mean)
    y, n = fit["y"].sum(), fit["n"].sum()
    return float(np.log((y + 0.5) / (n - y + 0.5)))


def shrinkage_ratios(observed: np.ndarray, estimate: np.ndarray, pooled: float) -> np.ndarray:
    """Per group (observed - estimate) / (observed - pooled); NaN where observed = pooled."""
    gap = np.asarray(observed, dtype=float) - pooled
    keep = np.abs(gap) > 1e-6
    return np.divide(observed - estimate, gap, out=np.full(gap.shape, np.nan), where=keep)


def fit_shrinkage(fit: pd.DataFrame) -> pd.Series:
    """``shrinkage`` and ``shrinkage_ratio`` of one fit's group rows (with ``mu_mean``)."""
    treat = fit[~fit["is_control"]]
    x, est = treat["obs_logit"].to_numpy(), treat["theta_mean"].to_numpy()
    slope = np.polyfit(x, est, 1)[0] if np.ptp(x) > 0 else np.nan
    ratios = shrinkage_ratios(x, est, pooled_logit(fit, fit["mu_mean"].iloc[0]))
    ratios = ratios[~np.isnan(ratios)]
    ratio = np.median(ratios) if ratios.size else np.nan
    return pd.Series({"shrinkage": 1.0 - slope, "shrinkage_ratio": ratio})


def shrinkage_per_fit(groups: pd.DataFrame, fits: pd.DataFrame, p0: float) -> pd.DataFrame:
    """One row per fit with both shrinkage measures and the theory value."""
    with_mu = groups.merge(fits[[*FIT_KEY, "mu_mean"]], on=FIT_KEY, how="left")
    measured = (
        with_mu.groupby(FIT_KEY, sort=True)[with_mu.columns.drop(FIT_KEY)]
        .apply(fit_shrinkage)
        .reset_index()
    )
    out = fits[[*FIT_KEY, "status", "tau_mean"]].merge(measured, on=FIT_KEY, how="left")
    tau = [implied_tau(a, s, p0) for a, s in zip(out["spread_axis"], out["spread"], strict=True)]
    out["shrinkage_theory"] = theory_shrinkage(out["n_per_group"], tau, p0)
    return out.sort_values(FIT_KEY, ignore_index=True)


def shrinkage_per_cell(per_fit: pd.DataFrame) -> pd.DataFrame:
    """Mean shrinkage per cell over replicates, with MCSE = sd / sqrt(R) (fits with estimates)."""

    def reduce(cell: pd.DataFrame) -> pd.Series:
        ok = cell["shrinkage"].dropna()
        mcse = ok.std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan
        return pd.Series(
            {
                "fits": len(cell),
                "fits_ok": int((cell["status"] == "ok").sum()),
                "shrinkage_mean": ok.mean() if len(ok) else np.nan,
                "shrinkage_mcse": mcse,
                "shrinkage_theory": cell["shrinkage_theory"].iloc[0],
                "tau_mean": cell["tau_mean"].mean(),
            }
        )

    return per_fit.groupby(CELL, sort=True)[per_fit.columns.drop(CELL)].apply(reduce).reset_index()
