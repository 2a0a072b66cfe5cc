"""Exact posteriors of the two Gaussian partial-pooling models, on grids (no Stan).

Independent references for the Stan programs, as :mod:`shrinksim.reference` is for the
binomial and Poisson ones: no Stan, no Stan data encoding; prior densities from
:mod:`scipy.stats` through :class:`shrinksim.priors.Prior`; likelihoods from scipy's
densities of the sufficient statistics, not from the Stan programs' formulas.

* Known standard errors (:func:`known_se_posterior`): estimate_g ~ Normal(theta_g, se_g),
  theta_g ~ Normal(mu, tau). Integrating theta out, estimate_g ~ Normal(mu,
  sqrt(tau^2 + se_g^2)) given (mu, tau): the (mu, tau) posterior on a 2-D grid.
* Sigma estimated (:func:`gaussian_posterior`): y_gi ~ Normal(theta_g, sigma), i = 1..n_g,
  summarised by each group's (n, mean, sd). Given (theta_g, sigma) the mean and the sd are
  independent, mean_g ~ Normal(theta_g, sigma / sqrt(n_g)) and (n_g - 1) sd_g^2 / sigma^2 ~
  chi^2(n_g - 1) (no sd term where n_g = 1); integrating theta out, mean_g ~ Normal(mu,
  sqrt(tau^2 + sigma^2 / n_g)). Their product is the raw outcomes' likelihood up to a
  constant: the (mu, tau, sigma) posterior on a 3-D grid.

The grids are those of the binomial reference (:mod:`shrinksim.reference_grid`): a coarse box
scaled by the data finds where the density exceeds exp(-25) of its maximum, a fine grid
covers that region. Given the hyperparameters, theta_g is normal, with mean
B mu + (1 - B) x_g and variance v tau^2 / (v + tau^2), v = se_g^2 (or sigma^2 / n_g),
B = v / (v + tau^2); its posterior is the mixture of these normals over the grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import ndtr

from shrinksim.priors import Prior
from shrinksim.reference_grid import QUANTILE_PROBS, Axis, Box, masses, moments, region, table

_PRUNE = 1e-15  # cells below this share of the total mass are left out of theta's mixture


def _box(centre: float, scale: float, box: Box | None) -> Box:
    """The search box: the one given, else 100 data scales around the data's centre."""
    if box is not None:
        return box
    return Box(centre - 100 * scale, centre + 100 * scale, 200 * scale, 200 * scale)


def normal_mixture(
    weight: np.ndarray, mean: np.ndarray, sd: np.ndarray, probs: Sequence[float]
) -> list[float]:
    """Mean, sd and quantiles of the mixture of Normal(mean, sd) with weights ``weight``
    (same shapes, weights summing to 1)."""
    keep = weight > _PRUNE
    w, m, s = weight[keep], mean[keep], sd[keep]
    w = w / w.sum()
    centre = float(np.sum(w * m))
    spread = float(np.sqrt(np.sum(w * (s**2 + (m - centre) ** 2))))

    def cdf(t: float) -> float:
        # sd 0 (tau = 0 exactly; not on a midpoint grid) would be a step at the mean
        return float(np.sum(w * ndtr((t - m) / s)))

    lo, hi = centre - 40 * spread, centre + 40 * spread
    quantiles = [
        optimize.brentq(lambda t, p=p: cdf(t) - p, lo, hi, xtol=1e-9 * spread) for p in probs
    ]
    return [centre, spread, *quantiles]


def _conditional(
    x: np.ndarray, v: np.ndarray, mu: np.ndarray, tau: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of theta | mu, tau for an observation x with sampling variance v."""
    b = v / (v + tau**2)
    return b * mu + (1 - b) * x, np.sqrt(v * tau**2 / (v + tau**2))


def known_se_posterior(
    estimate: Sequence[float],
    se: Sequence[float],
    mu_prior: Prior,
    tau_prior: Prior,
    *,
    points: int = 100,
    box: Box | None = None,
    probs: Sequence[float] = QUANTILE_PROBS,
) -> pd.DataFrame:
    """Posterior mean, sd and quantiles of mu, tau and every theta[g] (g = 1..G) of
    estimate_g ~ Normal(theta_g, se_g), theta_g ~ Normal(mu, tau); the layout of
    :func:`shrinksim.reference.posterior`. ``points`` per axis of the fine grid; ``box``
    defaults to 100 data scales around the precision-weighted mean."""
    x, v = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float) ** 2
    centre = float(np.sum(x / v) / np.sum(1 / v))
    scale = float(np.hypot(np.std(x), np.sqrt(np.median(v)))) or 1.0
    box = _box(centre, scale, box)

    def log_density(mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
        mu2, tau2 = mu[:, None], tau[None, :]
        out = mu_prior.log_density(mu)[:, None] + tau_prior.log_density(tau)[None, :]
        for x_g, v_g in zip(x, v, strict=True):
            out = out + stats.norm.logpdf(x_g, mu2, np.sqrt(tau2**2 + v_g))
        return out

    coarse_points = max(50, points // 2)
    coarse = [
        Axis.make(box.mu_lo, box.mu_hi, centre, scale, coarse_points),
        Axis.make(0.0, box.tau_hi, 0.0, scale, coarse_points),
    ]
    mu, tau = region(log_density, coarse, [False, True], points, box)
    weight = masses(log_density(mu.x, tau.x), [mu, tau])
    rows = {
        "mu": moments(mu, weight.sum(axis=1), probs),
        "tau": moments(tau, weight.sum(axis=0), probs),
    }
    mu2, tau2 = np.meshgrid(mu.x, tau.x, indexing="ij")
    for g, (x_g, v_g) in enumerate(zip(x, v, strict=True), start=1):
        rows[f"theta[{g}]"] = normal_mixture(weight, *_conditional(x_g, v_g, mu2, tau2), probs)
    return table(rows, probs)


def gaussian_posterior(
    n: Sequence[int],
    mean: Sequence[float],
    sd: Sequence[float],
    mu_prior: Prior,
    tau_prior: Prior,
    sigma_prior: Prior,
    *,
    points: int = 60,
    box: Box | None = None,
    probs: Sequence[float] = QUANTILE_PROBS,
) -> pd.DataFrame:
    """Posterior mean, sd and quantiles of mu, tau, sigma and every theta[g] (g = 1..G) of
    y_gi ~ Normal(theta_g, sigma), theta_g ~ Normal(mu, tau), from each group's ``n``,
    ``mean`` and ``sd`` (divisor n - 1; ignored where n = 1); the layout of
    :func:`shrinksim.reference.posterior`, with a row ``sigma``. ``points`` per axis of the
    fine 3-D grid; ``box`` defaults to 100 data scales around the mean of the means."""
    n_g = np.asarray(n, dtype=float)
    m_g = np.asarray(mean, dtype=float)
    with_sd = n_g > 1
    ss_g = np.where(with_sd, (n_g - 1) * np.nan_to_num(np.asarray(sd, dtype=float)) ** 2, 0.0)
    pooled_sd = np.sqrt(ss_g.sum() / (n_g - 1).sum()) if with_sd.any() else 0.0
    centre = float(np.sum(n_g * m_g) / n_g.sum())
    scale = float(np.hypot(np.std(m_g), pooled_sd)) or 1.0
    box = _box(centre, scale, box)

    def log_density(mu: np.ndarray, tau: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        mu3, tau3, sigma3 = mu[:, None, None], tau[None, :, None], sigma[None, None, :]
        out = (
            mu_prior.log_density(mu3)
            + tau_prior.log_density(tau3)
            + sigma_prior.log_density(sigma3)
        )
        for k in range(len(n_g)):
            out = out + stats.norm.logpdf(m_g[k], mu3, np.sqrt(tau3**2 + sigma3**2 / n_g[k]))
            if with_sd[k]:
                # density of sd^2: chi^2(n - 1) of (n - 1) sd^2 / sigma^2, Jacobian (n - 1) / sigma^2
                df = n_g[k] - 1
                out = out + stats.chi2.logpdf(ss_g[k] / sigma3**2, df) + np.log(df / sigma3**2)
        return out

    coarse_points = max(30, points // 2)
    coarse = [
        Axis.make(box.mu_lo, box.mu_hi, centre, scale, coarse_points),
        Axis.make(0.0, box.tau_hi, 0.0, scale, coarse_points),
        Axis.make(0.0, box.sigma_hi, 0.0, scale, coarse_points),
    ]
    # sigma's posterior is usually away from 0 (within-group degrees of freedom): centred
    axes = region(log_density, coarse, [False, True, True], points, box, [True, False, True])
    mu, tau, sigma = axes
    weight = masses(log_density(mu.x, tau.x, sigma.x), axes)
    rows = {
        "mu": moments(mu, weight.sum(axis=(1, 2)), probs),
        "tau": moments(tau, weight.sum(axis=(0, 2)), probs),
        "sigma": moments(sigma, weight.sum(axis=(0, 1)), probs),
    }
    mu3, tau3, sigma3 = np.meshgrid(mu.x, tau.x, sigma.x, indexing="ij")
    for k in range(len(n_g)):
        cond = _conditional(m_g[k], sigma3**2 / n_g[k], mu3, tau3)
        rows[f"theta[{k + 1}]"] = normal_mixture(weight, *cond, probs)
    return table(rows, probs)
