"""Shrinkage measures and the normal-approximation curve, shared by every study.

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

The other outcome families' curves (:mod:`shrinksim.families`), each B = v / (v + tau^2)
with v the sampling variance of a group's own estimate on theta's scale:
:func:`theory_shrinkage_gaussian` (v = sigma^2 / n: exact for known sigma, the posterior mean
being mu + (1 - B)(mean - mu)), :func:`theory_shrinkage_known_se` (v = se_g^2: exact, per
group) and :func:`theory_shrinkage_poisson` (the normal approximation v = 1 / (E exp(mu)),
the delta-method variance of the log-rate of y ~ Poisson(E exp(mu))).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shrinksim.families import OUTCOME_FAMILIES, OutcomeFamily, pooled_effect
from shrinksim.tables import CELL_FIELDS

BINOMIAL = OUTCOME_FAMILIES["binomial"]

CELL = [f.name for f in CELL_FIELDS]
"""Columns that name a fit cell."""

FIT_KEY = [*CELL, "replicate"]
"""Columns that name one fit: its cell and replicate."""


def implied_tau(spread_axis: str, spread: float | np.ndarray, p0: float) -> float | np.ndarray:
    """True log-odds sd of a cell: tau itself, or the delta-method value for p_sd."""
    return spread if spread_axis == "tau" else np.asarray(spread) / (p0 * (1 - p0))


def theory_shrinkage(n: float | np.ndarray, tau: float | np.ndarray, p0: float) -> np.ndarray:
    """Normal-approximation shrinkage factor B(n) = sigma^2 / (sigma^2 + tau^2)."""
    sigma2 = 1.0 / (np.asarray(n, dtype=float) * p0 * (1 - p0))
    return sigma2 / (sigma2 + np.asarray(tau, dtype=float) ** 2)


def _b(v: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """B = v / (v + tau^2)."""
    return v / (v + np.asarray(tau, dtype=float) ** 2)


def theory_shrinkage_gaussian(
    n: float | np.ndarray, tau: float | np.ndarray, sigma: float | np.ndarray
) -> np.ndarray:
    """Gaussian outcomes: B = (sigma^2 / n) / (sigma^2 / n + tau^2)."""
    return _b(np.asarray(sigma, dtype=float) ** 2 / np.asarray(n, dtype=float), tau)


def theory_shrinkage_known_se(se: float | np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """Estimates with known standard errors: B_g = se_g^2 / (se_g^2 + tau^2)."""
    return _b(np.asarray(se, dtype=float) ** 2, tau)


def theory_shrinkage_poisson(
    exposure: float | np.ndarray, tau: float | np.ndarray, mu: float
) -> np.ndarray:
    """Poisson counts: B = sigma^2 / (sigma^2 + tau^2), sigma^2 = 1 / (E exp(mu)) (mu the
    log-rate of the mean group)."""
    return _b(1.0 / (np.asarray(exposure, dtype=float) * np.exp(mu)), tau)


def pooled_logit(fit: Mapping[str, Any], mu_mean: float, family: OutcomeFamily = BINOMIAL) -> float:
    """The value shrinkage pulls towards: ``mu_mean`` if the model has mu, else the pooled
    estimate of all of the fit's groups (:func:`shrinksim.families.pooled_effect`)."""
    return float(mu_mean) if not np.isnan(mu_mean) else pooled_effect(family, fit)


def shrinkage_ratios(observed: np.ndarray, estimate: np.ndarray, pooled: float) -> np.ndarray:
    """Per group (observed - estimate) / (observed - pooled); NaN where observed = pooled."""
    gap = np.asarray(observed, dtype=float) - pooled
    keep = np.abs(gap) > 1e-6
    return np.divide(observed - estimate, gap, out=np.full(gap.shape, np.nan), where=keep)


def fit_shrinkage(fit: pd.DataFrame, family: OutcomeFamily = BINOMIAL) -> pd.Series:
    """``shrinkage`` and ``shrinkage_ratio`` of one fit's group rows (with ``mu_mean``)."""
    shrinkage, ratio = shrinkage_values(
        fit["is_control"].to_numpy(),
        fit["obs_logit"].to_numpy(),
        fit["theta_mean"].to_numpy(),
        pooled_logit(fit, fit["mu_mean"].iloc[0], family),
    )
    return pd.Series({"shrinkage": shrinkage, "shrinkage_ratio": ratio})


def shrinkage_values(
    is_control: np.ndarray, obs_logit: np.ndarray, theta_mean: np.ndarray, pooled: float
) -> tuple[float, float]:
    """``shrinkage`` (1 - slope) and ``shrinkage_ratio`` of one fit from its group arrays and
    the value it pools towards (:func:`pooled_logit`)."""
    treat = ~is_control
    x, est = obs_logit[treat], theta_mean[treat]
    slope = np.polyfit(x, est, 1)[0] if np.ptp(x) > 0 else np.nan
    ratios = shrinkage_ratios(x, est, pooled)
    ratios = ratios[~np.isnan(ratios)]
    return 1.0 - slope, (np.median(ratios) if ratios.size else np.nan)
