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

docs/measures.md defines every measure of :func:`cell_measures` in full; the diagnostic
flags of :func:`problems` and their calibration are in docs/calibration.md.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from shrinksim.shrinkage import CELL
from shrinksim.study.outcome import StudyOutcome

LEVELS = {0.5: ("q25", "q75"), 0.9: ("q05", "q95"), 0.95: ("q025", "q975")}
"""Central posterior interval levels and the quantile columns that bound them."""

RHAT_ALPHA = 0.01
"""Chance that an R-hat flag fires on a converged fit whose ESS is :data:`RHAT_ESS_PER_CHAIN`
per chain, for the hyperparameters and for the group effects each (see
:func:`rhat_threshold`); more ESS makes it smaller."""

RHAT_ESS_PER_CHAIN = 100
"""Bulk ESS per chain at which the R-hat thresholds are calibrated (Vehtari et al. 2021 ask
for at least 100 per chain before trusting R-hat)."""

ESS_PER_CHAIN = 10
"""A fit has low ESS when the smallest bulk or tail ESS of any monitored quantity is below
this times the chains: too few effective draws for its estimates or its R-hat to mean much
(2 of 630 converged fits of the default study, a t(3) tail at n = 5: docs/calibration.md)."""

EBFMI_MIN = 0.3
"""A fit explores the energy poorly when a chain's E-BFMI is below this (Betancourt 2016;
the threshold of Stan and ArviZ)."""

HYPERPARAMETERS_PER_MODEL = {"partial": 2, "complete": 1, "none": 0}
"""Hyperparameters judged apart from the group effects, per model (mu and tau; mu); the
gaussian family's programs have one more, sigma."""

FLAGS = {
    "divergent": "divergent transitions after the retries",
    "ebfmi": "E-BFMI of a chain < {level:g}",
    "rhat_hyper": "R-hat of mu or tau > {level:.3f}",
    "rhat_groups": "R-hat of a group effect > {level:.3f}",
    "low_ess": "bulk or tail ESS per chain < {level:g}",
    "error": "sampler error (no estimates)",
    "any": "any of these",
}
"""Each flag of :func:`problems` and its rule; ``{level}`` is its threshold
(:func:`thresholds`), always at the end."""


@functools.lru_cache(maxsize=256)
def rhat_threshold(quantities: int, chains: int) -> float:
    """R-hat above which one of ``quantities`` rank-normalised R-hats flags a fit.

    For converged chains, split in two, with bulk ESS E per chain, each of the 2 * chains
    halves has ESS E / 2 and (m - 1) (E / 2) (R^2 - 1 + 2 / draws) is close to chi-square
    with m - 1 = 2 * chains - 1 degrees of freedom. The threshold is its 1 - alpha / (2 K)
    point at E = :data:`RHAT_ESS_PER_CHAIN` (dropping 2 / draws, which makes it a little
    higher), K = ``quantities``, alpha = :data:`RHAT_ALPHA` (Bonferroni over the bulk and the
    folded R-hat of every quantity): 1.031 for 2 quantities and 4 chains, 1.044 for 101.
    """
    from scipy.stats import chi2  # lazy: only the measures stage computes thresholds

    if quantities < 1:
        return float("nan")
    df = 2 * chains - 1
    q = chi2.ppf(1 - RHAT_ALPHA / (2 * quantities), df)
    return float(np.sqrt(1 + q / (df * RHAT_ESS_PER_CHAIN / 2)))


def thresholds(fits: pd.DataFrame, chains: int, sigma: bool = False) -> pd.DataFrame:
    """The threshold of every rule of :data:`FLAGS` per fit (NaN where a rule has none).

    The R-hat thresholds depend on the quantities monitored: the model's hyperparameters
    (:data:`HYPERPARAMETERS_PER_MODEL`) and ``groups`` + 1 group effects (the treatment
    groups and at most one control group: maybe one more than there are, conservative);
    ``sigma``: the programs also estimate a within-group sd."""
    hyper = fits["model"].map(HYPERPARAMETERS_PER_MODEL).fillna(0).astype(int) + int(sigma)
    groups = fits["groups"].to_numpy(int) + 1
    return pd.DataFrame(
        {
            "divergent": np.nan,  # any divergent transition
            "ebfmi": EBFMI_MIN,
            "rhat_hyper": [rhat_threshold(int(k), chains) for k in hyper],
            "rhat_groups": [rhat_threshold(int(k), chains) for k in groups],
            "low_ess": float(ESS_PER_CHAIN),
            "error": np.nan,
            "any": np.nan,
        },
        index=fits.index,
    )


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


def problems(fits: pd.DataFrame, chains: int, sigma: bool = False) -> pd.DataFrame:
    """Boolean diagnostic flags per fit (per-fit rows, schema PER_FIT; ``chains`` sampled):
    the rules of :data:`FLAGS` with the :func:`thresholds`, and ``any`` of them.

    Missing values never flag. Per-fit rows written before the hyperparameters and the group
    effects were judged apart (no ``rhat_groups_max``) compare ``rhat_max`` (over every
    quantity) with the group effects' threshold."""
    level = thresholds(fits, chains, sigma)

    def column(name: str) -> np.ndarray:
        if name not in fits:
            return np.full(len(fits), np.nan)
        return pd.to_numeric(fits[name], errors="coerce").to_numpy(float)

    ess = np.fmin(column("ess_bulk_min"), column("ess_tail_min"))
    groups = column("rhat_groups_max")
    groups = np.where(np.isnan(groups), column("rhat_max"), groups)
    flags = pd.DataFrame(
        {
            "divergent": np.nan_to_num(column("divergences")) > 0,
            "ebfmi": column("ebfmi_min") < EBFMI_MIN,
            "rhat_hyper": column("rhat_hyper_max") > level["rhat_hyper"].to_numpy(),
            "rhat_groups": groups > level["rhat_groups"].to_numpy(),
            "low_ess": ess < ESS_PER_CHAIN * chains,
            "error": (fits["status"] == "error").to_numpy(),
        },
        index=fits.index,
    )
    return flags.assign(any=flags.any(axis=1))


def cell_measures(
    fits: pd.DataFrame, true_tau: float, chains: int, sigma: bool = False
) -> list[dict[str, Any]]:
    """Every measure of one fit cell, from its per-fit rows (schema PER_FIT, by replicate),
    as tidy rows (``sigma``: the programs estimate a within-group sd, :func:`thresholds`)."""
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

    flags = problems(fits, chains, sigma)
    level = thresholds(fits, chains, sigma).iloc[0]
    for name in flags.columns:
        add("diagnostics", name, proportion(flags[name]), len(flags), level[name], 0.0)
    return rows


def measures(per_fit: pd.DataFrame, outcome: StudyOutcome, chains: int) -> pd.DataFrame:
    """The tidy measures table of the study (schema :data:`shrinksim.tables.MEASURES`) from
    its per-fit table (schema PER_FIT)."""
    out = []
    sigma = outcome.family.has_sigma
    for key, cell in per_fit.groupby(CELL, sort=True):
        where = dict(zip(CELL, key, strict=True))
        true_tau = float(outcome.implied_tau(where["spread_axis"], where["spread"]))
        out.extend(
            where | {"true_tau": true_tau} | row
            for row in cell_measures(cell, true_tau, chains, sigma)
        )
    return pd.DataFrame(out)
