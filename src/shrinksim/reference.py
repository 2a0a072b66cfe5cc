"""Exact posterior of the binomial-logit partial-pooling model by quadrature.

An independent reference for the Stan programs: it shares no code with the Stan path (no
Stan, no :mod:`shrinksim.fit` data encoding, no Stan family codes; prior densities are the
:mod:`scipy.stats` distributions of :data:`shrinksim.priors.FAMILIES`, from the family name
and arguments as written in the configuration).

Model: y_g ~ Binomial(n_g, logistic(mu + tau z_g)), z_g ~ Normal(0, 1), mu ~ p_mu and
tau ~ p_tau restricted to tau >= 0. The joint posterior of (mu, tau) is

    log p(mu, tau | y) = log p_mu(mu) + log p_tau(tau) + sum_g log L_g(mu, tau) + const,
    L_g(mu, tau) = integral of Binomial(y_g | n_g, logistic(mu + tau z)) phi(z) dz.

Each L_g is computed per (mu, tau) by the trapezoid rule in v after centring and scaling at
the mode of the (log-concave) integrand, z = z_hat + s sinh(v), s = curvature^(-1/2) there:
the nodes are dense at the mode and reach |z - z_hat| = 10 in the tails; since the log
integrand has curvature >= 1 everywhere, the mass beyond is below exp(-50). The (mu, tau)
posterior is evaluated on a coarse box to find where its density exceeds exp(-25) times the
maximum, then on a fine midpoint grid over that region. Group effects theta_g = mu + tau z_g
are mixtures over the grid of their conditional posteriors, whose CDFs come from the same
nodes (cumulative trapezoid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import interpolate, optimize
from scipy.special import expit, gammaln

from shrinksim.priors import Prior

QUANTILE_PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Posterior quantiles reported by :func:`posterior`."""

_NODES = 60  # trapezoid nodes on each side of the mode (121 in all)
_REACH = 10.0  # |z - z_hat| covered by the nodes
_DROP = 25.0  # the fine grid covers log density >= max - _DROP


def _log_integrand(y: float, n: float, mu: np.ndarray, tau: np.ndarray, z: np.ndarray):
    """log[Binomial(y | n, logistic(mu + tau z)) phi(z)] without the binomial coefficient."""
    theta = mu + tau * z
    return y * theta - n * np.logaddexp(0.0, theta) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi)


def _mode(y: float, n: float, mu: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode z_hat of the integrand in z and the scale s = (-second derivative)^(-1/2) there.

    The log integrand is strictly concave, so its derivative tau (y - n p) - z decreases and
    has one root, inside [-tau n - 1, tau n + 1]: Newton steps, replaced by bisection when
    they leave the bracket, until the bracket or the step is below 1e-12.
    """
    shape = np.broadcast_shapes(mu.shape, tau.shape)
    hi = np.broadcast_to(tau * n + 1.0, shape).copy()
    lo = -hi
    z = np.zeros(shape)
    for _ in range(200):
        p = expit(mu + tau * z)
        slope = tau * (y - n * p) - z
        lo = np.where(slope > 0, z, lo)
        hi = np.where(slope > 0, hi, z)
        step = slope / (1.0 + tau**2 * n * p * (1 - p))
        newton = z + step
        inside = (newton >= lo) & (newton <= hi)
        z = np.where(inside, newton, 0.5 * (lo + hi))
        if np.all((np.abs(step) < 1e-12) | (hi - lo < 1e-12)):
            break
    p = expit(mu + tau * z)
    return z, 1.0 / np.sqrt(1.0 + tau**2 * n * p * (1 - p))


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) over the last axis."""
    top = x.max(axis=-1)
    return top + np.log(np.sum(np.exp(x - top[..., None]), axis=-1))


@dataclass(frozen=True)
class _Group:
    """One group's quadrature at every (mu, tau) of a grid: nodes z = z_hat + s sinh(v),
    v = reach * k / _NODES for k = -_NODES.._NODES, their log weights and log L_g."""

    z_hat: np.ndarray  # (...)
    s: np.ndarray  # (...)
    reach: np.ndarray  # (...)
    log_w: np.ndarray  # (..., 2 * _NODES + 1): log(integrand * dz/dv * trapezoid weight)
    log_l: np.ndarray  # (...)

    def z(self) -> np.ndarray:
        """The nodes in z, shape (..., 2 * _NODES + 1)."""
        v = self.reach[..., None] * np.linspace(-1.0, 1.0, 2 * _NODES + 1)
        return self.z_hat[..., None] + self.s[..., None] * np.sinh(v)


def _group(y: float, n: float, mu: np.ndarray, tau: np.ndarray) -> _Group:
    z_hat, s = _mode(y, n, mu, tau)
    reach = np.arcsinh(_REACH / s)
    v = reach[..., None] * np.linspace(-1.0, 1.0, 2 * _NODES + 1)
    trapezoid = np.ones(2 * _NODES + 1)
    trapezoid[[0, -1]] = 0.5
    z = z_hat[..., None] + s[..., None] * np.sinh(v)
    log_w = _log_integrand(y, n, mu[..., None], tau[..., None], z) + np.log(
        s[..., None] * np.cosh(v) * (reach / _NODES)[..., None] * trapezoid
    )
    return _Group(z_hat, s, reach, log_w, _logsumexp(log_w))


def group_log_likelihood(y: int, n: int, mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """log L_g(mu, tau) = log of the integral of Binomial(y | n, logistic(mu + tau z)) phi(z) dz."""
    mu, tau = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(tau, dtype=float))
    log_choose = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    return _group(float(y), float(n), mu, tau).log_l + log_choose


@dataclass(frozen=True)
class _Axis:
    """Cells of one axis, uniform in u = asinh((x - centre) / scale): dense where the
    posterior is, wide in its tails. Midpoints ``x``, cell ``width`` in x (midpoint rule
    in u: dx/du du) and cell ``edges``."""

    x: np.ndarray
    width: np.ndarray
    edges: np.ndarray

    @classmethod
    def make(cls, lo: float, hi: float, centre: float, scale: float, points: int) -> _Axis:
        u = np.linspace(
            np.arcsinh((lo - centre) / scale), np.arcsinh((hi - centre) / scale), points + 1
        )
        mid = 0.5 * (u[1:] + u[:-1])
        return cls(
            centre + scale * np.sinh(mid),
            scale * np.cosh(mid) * (u[1] - u[0]),
            centre + scale * np.sinh(u),
        )


def _log_posterior(
    y: np.ndarray,
    n: np.ndarray,
    mu_prior: Prior,
    tau_prior: Prior,
    mu: np.ndarray,
    tau: np.ndarray,
) -> tuple[np.ndarray, list[_Group]]:
    """Unnormalised log posterior on the grid mu x tau, and each group's quadrature."""
    out = mu_prior.log_density(mu)[:, None] + tau_prior.log_density(tau)[None, :]
    mu2, tau2 = np.meshgrid(mu, tau, indexing="ij")
    groups = [_group(y_g, n_g, mu2, tau2) for y_g, n_g in zip(y, n, strict=True)]
    return out + sum(g.log_l for g in groups), groups


@dataclass(frozen=True)
class Box:
    """Where to look for the posterior: mu in [mu_lo, mu_hi], tau in [0, tau_hi]."""

    mu_lo: float = -50.0
    mu_hi: float = 50.0
    tau_hi: float = 200.0


def _cells(
    y: np.ndarray,
    n: np.ndarray,
    mu_prior: Prior,
    tau_prior: Prior,
    mu: _Axis,
    tau: _Axis,
) -> tuple[np.ndarray, list[_Group]]:
    """Posterior probability of every (mu, tau) cell, and each group's quadrature."""
    log_post, groups = _log_posterior(y, n, mu_prior, tau_prior, mu.x, tau.x)
    log_mass = log_post + np.log(mu.width)[:, None] + np.log(tau.width)[None, :]
    return np.exp(log_mass - _logsumexp(log_mass.reshape(-1))), groups


def _moments(axis: _Axis, mass: np.ndarray, probs: Sequence[float]) -> list[float]:
    """Mean, sd and quantiles of a marginal given as cell masses."""
    mean = float(np.sum(mass * axis.x))
    var = float(np.sum(mass * ((axis.x - mean) ** 2 + axis.width**2 / 12)))
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    # monotone cubic through the CDF at the cell edges, inverted (x as a function of CDF);
    # edges where the CDF rises by less than 1e-12 (far tails) are left out
    rising = np.concatenate([[True], np.diff(cdf) > 1e-12])
    quantile = interpolate.PchipInterpolator(cdf[rising], axis.edges[rising])
    return [mean, np.sqrt(var), *(float(quantile(p)) for p in probs)]


def _region(
    y: np.ndarray, n: np.ndarray, mu_prior: Prior, tau_prior: Prior, box: Box, points: int
) -> tuple[_Axis, _Axis]:
    """Fine axes over the region where the posterior density exceeds exp(-_DROP) of its
    maximum, found on a coarse grid over ``box`` (cells stretched around the pooled
    log-odds and tau = 0); centred and scaled by the posterior's moments there."""
    pooled = np.log((y.sum() + 0.5) / (n.sum() - y.sum() + 0.5))
    mu = _Axis.make(box.mu_lo, box.mu_hi, pooled, 1.0, points)
    tau = _Axis.make(0.0, box.tau_hi, 0.0, 1.0, points)
    mass, _ = _cells(y, n, mu_prior, tau_prior, mu, tau)
    density = mass / np.outer(mu.width, tau.width)
    keep = density >= density.max() * np.exp(-_DROP)
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    if rows[0] == 0 or rows[-1] == points - 1 or cols[-1] == points - 1:
        raise ValueError(f"posterior not negligible at the edge of the search box {box}")
    tau_lo = 0.0 if cols[0] <= 1 else tau.edges[cols[0] - 1]
    mu_mean, mu_sd = _moments(mu, mass.sum(axis=1), [])
    _, tau_sd = _moments(tau, mass.sum(axis=0), [])
    return (
        _Axis.make(mu.edges[rows[0] - 1], mu.edges[rows[-1] + 2], mu_mean, mu_sd, points),
        _Axis.make(tau_lo, tau.edges[cols[-1] + 2], 0.0, tau_sd, points),
    )


def posterior(
    y: Sequence[int],
    n: Sequence[int],
    mu_prior: Prior,
    tau_prior: Prior,
    *,
    points: int = 100,
    box: Box | None = None,
    probs: Sequence[float] = QUANTILE_PROBS,
) -> pd.DataFrame:
    """Posterior mean, sd and quantiles of mu, tau and every theta[g] (g = 1..G).

    ``points`` is the fine grid's size per axis (``points`` x ``points`` midpoints).
    Rows are indexed by parameter; columns ``mean``, ``sd`` and ``q5``, ``q25``, ... (the
    percent of each of ``probs``).
    """
    y_arr, n_arr = np.asarray(y, dtype=float), np.asarray(n, dtype=float)
    mu, tau = _region(y_arr, n_arr, mu_prior, tau_prior, box or Box(), max(50, points // 2))
    weight, groups = _cells(y_arr, n_arr, mu_prior, tau_prior, mu, tau)
    rows = {
        "mu": _moments(mu, weight.sum(axis=1), probs),
        "tau": _moments(tau, weight.sum(axis=0), probs),
    }
    mu2, tau2 = np.meshgrid(mu.x, tau.x, indexing="ij")
    for g, group in enumerate(groups, start=1):
        rows[f"theta[{g}]"] = _group_effect(group, mu2, tau2, weight, probs)
    columns = ["mean", "sd", *(f"q{100 * p:g}" for p in probs)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def _group_effect(
    group: _Group,
    mu: np.ndarray,
    tau: np.ndarray,
    weight: np.ndarray,
    probs: Sequence[float],
) -> list[float]:
    """Mean, sd and quantiles of theta = mu + tau z, mixing the grid's conditionals."""
    w = np.exp(group.log_w - group.log_l[..., None])  # conditional node weights, sum 1
    theta = mu[..., None] + tau[..., None] * group.z()
    mean = float(np.sum(weight * np.sum(w * theta, axis=-1)))
    sd = float(np.sqrt(np.sum(weight * np.sum(w * (theta - mean) ** 2, axis=-1))))
    del theta
    # Conditional CDF at the nodes: cumulative trapezoid (half of a node's weight below it).
    cdf = np.cumsum(w, axis=-1) - 0.5 * w
    last = 2 * _NODES

    def mixture_cdf(t: float) -> float:
        # theta increases with v: find t's position among the nodes, interpolate linearly
        v = np.arcsinh(((t - mu) / tau - group.z_hat) / group.s)
        position = (v / group.reach + 1.0) * _NODES
        below = np.clip(np.floor(position), 0, last - 1).astype(int)
        frac = np.clip(position - below, 0.0, 1.0)[..., None]
        pair = np.take_along_axis(cdf, np.stack([below, below + 1], axis=-1), axis=-1)
        value = pair[..., 0:1] * (1 - frac) + pair[..., 1:2] * frac
        return float(np.sum(weight * value[..., 0]))

    lo, hi = mean - 20 * sd - 1.0, mean + 20 * sd + 1.0
    quantiles = [
        optimize.brentq(lambda t, p=p: mixture_cdf(t) - p, lo, hi, xtol=1e-7) for p in probs
    ]
    return [mean, sd, *quantiles]
