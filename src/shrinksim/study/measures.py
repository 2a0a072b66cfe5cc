"""Performance measures per fit cell across replicates, each with its Monte Carlo SE.

The formulas are those of Morris, White & Crowther (2019), "Using simulation studies to
evaluate statistical methods", Statistics in Medicine 38:2074-2102, Table 6. With R
replicates, estimates x_i of a true value t, mean x̄ and EmpSE = sd(x_i) (divisor R - 1):

* bias = x̄ - t, MCSE = EmpSE / sqrt(R); relative bias = bias / t, MCSE = EmpSE / (sqrt(R) |t|)
* EmpSE, MCSE = EmpSE / sqrt(2 (R - 1))
* MSE = mean(e_i), e_i = (x_i - t)^2, MCSE = sqrt(sum((e_i - MSE)^2) / (R (R - 1)));
  RMSE = sqrt(MSE), MCSE = MCSE(MSE) / (2 RMSE) (delta method)
* coverage P = share of intervals that contain t, MCSE = sqrt(P (1 - P) / R)
* any other mean of per-replicate values v_i: MCSE = sd(v_i) / sqrt(R)

docs/measures.md defines every measure of :func:`cell_measures` in full.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from shrinksim.shrinkage import CELL, implied_tau

LEVELS = {0.5: ("q25", "q75"), 0.9: ("q05", "q95"), 0.95: ("q025", "q975")}
"""Central posterior interval levels and the quantile columns that bound them."""

RHAT_MAX = 1.01
"""A fit has an R-hat problem when its largest R-hat (mu, tau, every theta) exceeds this."""

ESS_PER_CHAIN = 100
"""A fit has low ESS when its smallest bulk or tail ESS is below this times the chains
(Vehtari et al. 2021 recommend at least 100 per chain)."""


class Estimate(NamedTuple):
    """A performance measure and its Monte Carlo standard error."""

    value: float
    mcse: float


def _finite(x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[np.isfinite(a)]


def mean(values: ArrayLike) -> Estimate:
    """Mean of per-replicate values, MCSE = sd / sqrt(R) (NaN values are dropped)."""
    v = _finite(values)
    if v.size == 0:
        return Estimate(np.nan, np.nan)
    mcse = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else np.nan
    return Estimate(float(v.mean()), float(mcse))


def empirical_se(estimates: ArrayLike) -> Estimate:
    """EmpSE = sd of the estimates, MCSE = EmpSE / sqrt(2 (R - 1))."""
    x = _finite(estimates)
    if x.size < 2:
        return Estimate(np.nan, np.nan)
    emp = float(x.std(ddof=1))
    return Estimate(emp, emp / np.sqrt(2 * (x.size - 1)))


def bias(estimates: ArrayLike, truth: float) -> Estimate:
    """Mean estimate minus the truth, MCSE = EmpSE / sqrt(R)."""
    x = _finite(estimates)
    if x.size == 0:
        return Estimate(np.nan, np.nan)
    mcse = empirical_se(x).value / np.sqrt(x.size)
    return Estimate(float(x.mean() - truth), float(mcse))


def relative_bias(estimates: ArrayLike, truth: float) -> Estimate:
    """Bias / truth, MCSE = EmpSE / (sqrt(R) |truth|); NaN when the truth is 0."""
    if truth == 0:
        return Estimate(np.nan, np.nan)
    b = bias(estimates, truth)
    return Estimate(b.value / truth, b.mcse / abs(truth))


def mse(squared_errors: ArrayLike) -> Estimate:
    """Mean of per-replicate squared errors, MCSE = sqrt(sum((e - MSE)^2) / (R (R - 1)))."""
    return mean(squared_errors)  # sd / sqrt(R) is exactly that formula


def rmse(squared_errors: ArrayLike) -> Estimate:
    """sqrt(MSE), MCSE = MCSE(MSE) / (2 RMSE) by the delta method."""
    m = mse(squared_errors)
    root = np.sqrt(m.value)
    return Estimate(float(root), float(m.mcse / (2 * root)) if root > 0 else np.nan)


def proportion(hits: ArrayLike) -> Estimate:
    """Share of true values (e.g. intervals containing the truth), MCSE = sqrt(P (1 - P) / R)."""
    h = np.asarray(hits, dtype=float)
    if h.size == 0:
        return Estimate(np.nan, np.nan)
    p = float(h.mean())
    return Estimate(p, float(np.sqrt(p * (1 - p) / h.size)))


def problems(fits: pd.DataFrame, chains: int) -> pd.DataFrame:
    """Boolean diagnostic flags per fit: divergent, rhat, low_ess, error, and any of them."""
    flags = pd.DataFrame(
        {
            "divergent": fits["divergences"].fillna(0).to_numpy(float) > 0,
            "rhat": fits["rhat_max"].to_numpy(float) > RHAT_MAX,
            "low_ess": np.fmin(
                fits["ess_bulk_min"].to_numpy(float), fits["ess_tail_min"].to_numpy(float)
            )
            < ESS_PER_CHAIN * chains,
            "error": (fits["status"] == "error").to_numpy(),
        },
        index=fits.index,
    )
    return flags.assign(any=flags.any(axis=1))


def cell_measures(fits: pd.DataFrame, true_tau: float, chains: int) -> list[dict[str, Any]]:
    """Every measure of one fit cell, from its per-fit rows (schema PER_FIT, by replicate),
    as tidy rows."""
    rows: list[dict[str, Any]] = []

    def add(
        target: str, measure: str, est: Estimate, r: int, level: float = np.nan, ref: float = np.nan
    ) -> None:
        rows.append(
            dict(target=target, measure=measure, level=level, value=est.value, mcse=est.mcse)
            | dict(reference=ref, replicates=r)
        )

    estimated = fits[fits["status"] != "error"]
    partial = fits["model"].iloc[0] == "partial"
    if partial:
        tau = estimated["tau_mean"].to_numpy(float)
        r = len(tau)
        add("tau", "mean", mean(tau), r, ref=true_tau)
        add("tau", "bias", bias(tau, true_tau), r, ref=0.0)
        add("tau", "relative_bias", relative_bias(tau, true_tau), r, ref=0.0)
        add("tau", "empse", empirical_se(tau), r)
        add("tau", "rmse", rmse((tau - true_tau) ** 2), r, ref=0.0)
        for level, (lo, hi) in LEVELS.items():
            low, high = estimated[f"tau_{lo}"], estimated[f"tau_{hi}"]
            covered = proportion((low <= true_tau) & (true_tau <= high))
            add("tau", "coverage", covered, r, level, level)
            add("tau", "width", mean(high - low), r, level)

    r = len(estimated)  # fits with group estimates
    add("groups", "rmse", rmse(estimated["squared_error"]), r, ref=0.0)
    add("groups", "mae", mean(estimated["absolute_error"]), r, ref=0.0)
    rank = estimated["rank_correlation"].dropna()
    add("groups", "rank_correlation", mean(rank), len(rank), ref=1.0)
    for level in LEVELS:
        add("groups", "coverage", mean(estimated[f"coverage_{level}"]), r, level, level)
        add("groups", "width", mean(estimated[f"width_{level}"]), r, level)

    theory = fits["shrinkage_theory"].iloc[0] if partial else np.nan
    for measure, column in (("factor", "shrinkage"), ("median_ratio", "shrinkage_ratio")):
        values = fits[column].dropna()
        add("shrinkage", measure, mean(values), len(values), ref=theory)

    flags = problems(fits, chains)
    for name in flags.columns:
        add("diagnostics", name, proportion(flags[name]), len(flags), ref=0.0)
    return rows


def measures(per_fit: pd.DataFrame, p0: float, chains: int) -> pd.DataFrame:
    """The tidy measures table of the study (schema :data:`shrinksim.tables.MEASURES`) from
    its per-fit table (schema PER_FIT)."""
    out = []
    for key, cell in per_fit.groupby(CELL, sort=True):
        where = dict(zip(CELL, key, strict=True))
        true_tau = float(implied_tau(where["spread_axis"], where["spread"], p0))
        out.extend(
            where | {"true_tau": true_tau} | row for row in cell_measures(cell, true_tau, chains)
        )
    return pd.DataFrame(out)
