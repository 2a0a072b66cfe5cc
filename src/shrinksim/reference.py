"""Exact posterior of the binomial-logit and Poisson-log partial-pooling models by quadrature.

An independent reference for the Stan programs: it shares no code with the Stan path (no
Stan, no :mod:`shrinksim.fit` data encoding, no Stan family codes; prior densities are the
:mod:`scipy.stats` distributions of :data:`shrinksim.priors.FAMILIES`, from the family name
and arguments as written in the configuration).

Model: y_g ~ Binomial(n_g, logistic(mu + tau z_g)) (or Poisson(E_g exp(mu + tau z_g))),
z_g ~ Normal(0, 1), mu ~ p_mu and tau ~ p_tau restricted to tau >= 0. The joint posterior of
(mu, tau) is

    log p(mu, tau | y) = log p_mu(mu) + log p_tau(tau) + sum_g log L_g(mu, tau) + const,
    L_g(mu, tau) = integral of p(y_g | theta = mu + tau z) phi(z) dz.

Each L_g is computed per (mu, tau) by the trapezoid rule in v after centring and scaling at
the mode of the (log-concave) integrand, z = z_hat + s sinh(v), s = curvature^(-1/2) there:
the nodes are dense at the mode and reach |z - z_hat| = 10 in the tails; since the log
integrand has curvature >= 1 everywhere, the mass beyond is below exp(-50). The (mu, tau)
posterior is evaluated on a coarse box to find where its density exceeds exp(-25) times the
maximum, then on a fine midpoint grid over that region. Group effects theta_g = mu + tau z_g
are mixtures over the grid of their conditional posteriors, whose CDFs come from the same
nodes (cumulative trapezoid).

A family enters only through its :class:`Likelihood` (log-likelihood in theta and its first
two derivatives): :class:`Binomial` and :class:`Poisson`; :func:`posterior` and
:func:`poisson_posterior` are the two references. The grid helpers are in
:mod:`shrinksim.reference_grid`, shared with :mod:`shrinksim.reference_gaussian`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, gammaln

from shrinksim.priors import Prior
from shrinksim.reference_grid import (
    QUANTILE_PROBS,
    Axis,
    Box,
    logsumexp,
    masses,
    moments,
    region,
    table,
)

__all__ = [
    "QUANTILE_PROBS",
    "Binomial",
    "Box",
    "Likelihood",
    "Poisson",
    "group_log_likelihood",
    "poisson_posterior",
    "posterior",
    "posterior_of",
]


_NODES = 60  # trapezoid nodes on each side of the mode (121 in all)
_REACH = 10.0  # |z - z_hat| covered by the nodes


class Likelihood(Protocol):
    """One group's log-likelihood as a function of its effect theta; concave in theta."""

    constant: float
    """What :meth:`kernel` leaves out (log choose(n, y), -log y!, ...)."""

    def kernel(self, theta: np.ndarray) -> np.ndarray:
        """The log-likelihood at theta, less :attr:`constant`."""
        ...

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """Its first derivative in theta."""
        ...

    def curvature(self, theta: np.ndarray, factor: np.ndarray) -> np.ndarray:
        """``factor`` times minus its second derivative (factor first: the binomial's
        floating-point operations are those it had before families)."""
        ...

    def bracket(self, mu: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An interval of z holding the mode of the integrand in z."""
        ...

    def pooled(self) -> tuple[float, float]:
        """(events, non-events or exposure): the search for the posterior is centred at
        mu = log((events + 1/2) / (other + 1/2)), summed over the groups."""
        ...


@dataclass(frozen=True)
class Binomial:
    """Binomial(y | n, logistic(theta))."""

    y: float
    n: float

    @property
    def constant(self) -> float:
        return float(gammaln(self.n + 1) - gammaln(self.y + 1) - gammaln(self.n - self.y + 1))

    def kernel(self, theta: np.ndarray) -> np.ndarray:
        return self.y * theta - self.n * np.logaddexp(0.0, theta)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.y - self.n * expit(theta)

    def curvature(self, theta: np.ndarray, factor: np.ndarray) -> np.ndarray:
        p = expit(theta)
        return factor * self.n * p * (1 - p)

    def bracket(self, mu: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # |gradient| <= n, so the root of tau * gradient - z has |z| <= tau n
        hi = tau * self.n + 1.0
        return -hi, hi

    def pooled(self) -> tuple[float, float]:
        return self.y, self.n - self.y


@dataclass(frozen=True)
class Poisson:
    """Poisson(y | exposure exp(theta))."""

    y: float
    exposure: float

    @property
    def constant(self) -> float:
        return float(self.y * np.log(self.exposure) - gammaln(self.y + 1))

    def kernel(self, theta: np.ndarray) -> np.ndarray:
        return self.y * theta - self.exposure * np.exp(theta)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.y - self.exposure * np.exp(theta)

    def curvature(self, theta: np.ndarray, factor: np.ndarray) -> np.ndarray:
        return factor * self.exposure * np.exp(theta)

    def bracket(self, mu: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # tau * gradient(mu + tau z) - z decreases in z; at z = 0 it is s0, so the root lies
        # between 0 and s0. Where s0 > 0 the root has exposure exp(theta) <= y, i.e. theta <=
        # log(y / exposure): that bound keeps Newton's overshoot from the left (the slope is
        # concave) from overflowing exp(theta), and from the right Newton is monotone
        s0 = tau * self.gradient(mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            cap = (np.log(self.y / self.exposure) - mu) / tau
        return np.minimum(0.0, s0), np.where(s0 > 0, np.minimum(s0, cap), 0.0)

    def pooled(self) -> tuple[float, float]:
        return self.y, self.exposure


def _log_integrand(lik: Likelihood, mu: np.ndarray, tau: np.ndarray, z: np.ndarray):
    """log[p(y | mu + tau z) phi(z)] without the likelihood's constant."""
    theta = mu + tau * z
    return lik.kernel(theta) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi)


def _mode(lik: Likelihood, mu: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode z_hat of the integrand in z and the scale s = (-second derivative)^(-1/2) there.

    The log integrand is strictly concave, so its derivative tau gradient(mu + tau z) - z
    decreases and has one root, inside the likelihood's bracket: Newton steps, replaced by
    bisection when they leave the bracket (or overflow), until the bracket or the step is
    below 1e-12.
    """
    shape = np.broadcast_shapes(mu.shape, tau.shape)
    lo, hi = (np.broadcast_to(b, shape).copy() for b in lik.bracket(mu, tau))
    z = np.zeros(shape)
    for _ in range(200):
        slope = tau * lik.gradient(mu + tau * z) - z
        lo = np.where(slope > 0, z, lo)
        hi = np.where(slope > 0, hi, z)
        step = slope / (1.0 + lik.curvature(mu + tau * z, tau**2))
        newton = z + step
        inside = (newton >= lo) & (newton <= hi)
        z = np.where(inside, newton, 0.5 * (lo + hi))
        if np.all((np.abs(step) < 1e-12) | (hi - lo < 1e-12)):
            break
    return z, 1.0 / np.sqrt(1.0 + lik.curvature(mu + tau * z, tau**2))


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


def _group(lik: Likelihood, mu: np.ndarray, tau: np.ndarray) -> _Group:
    with np.errstate(over="ignore", invalid="ignore"):  # exp(theta) = inf far out: weight 0
        z_hat, s = _mode(lik, mu, tau)
        reach = np.arcsinh(_REACH / s)
        v = reach[..., None] * np.linspace(-1.0, 1.0, 2 * _NODES + 1)
        trapezoid = np.ones(2 * _NODES + 1)
        trapezoid[[0, -1]] = 0.5
        z = z_hat[..., None] + s[..., None] * np.sinh(v)
        log_w = _log_integrand(lik, mu[..., None], tau[..., None], z) + np.log(
            s[..., None] * np.cosh(v) * (reach / _NODES)[..., None] * trapezoid
        )
    return _Group(z_hat, s, reach, log_w, logsumexp(log_w))


def group_log_likelihood(
    y: int, n: float, mu: np.ndarray, tau: np.ndarray, family: type = Binomial
) -> np.ndarray:
    """log L_g(mu, tau) = log of the integral of p(y | mu + tau z) phi(z) dz, p the
    ``family``'s (:class:`Binomial`: n trials; :class:`Poisson`: exposure n)."""
    mu, tau = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(tau, dtype=float))
    lik = family(float(y), float(n))
    return _group(lik, mu, tau).log_l + lik.constant


def _log_posterior(
    liks: Sequence[Likelihood], mu_prior: Prior, tau_prior: Prior, mu: np.ndarray, tau: np.ndarray
) -> tuple[np.ndarray, list[_Group]]:
    """Unnormalised log posterior on the grid mu x tau, and each group's quadrature."""
    out = mu_prior.log_density(mu)[:, None] + tau_prior.log_density(tau)[None, :]
    mu2, tau2 = np.meshgrid(mu, tau, indexing="ij")
    groups = [_group(lik, mu2, tau2) for lik in liks]
    return out + sum(g.log_l for g in groups), groups


def posterior_of(
    liks: Sequence[Likelihood],
    mu_prior: Prior,
    tau_prior: Prior,
    *,
    points: int = 100,
    box: Box | None = None,
    probs: Sequence[float] = QUANTILE_PROBS,
) -> pd.DataFrame:
    """Posterior mean, sd and quantiles of mu, tau and every theta[g] (g = 1..G) of the
    groups' likelihoods ``liks``; see :func:`posterior`."""
    box = box or Box()
    events, rest = (sum(v) for v in zip(*(lik.pooled() for lik in liks), strict=True))
    coarse_points = max(50, points // 2)
    coarse = [
        Axis.make(box.mu_lo, box.mu_hi, np.log((events + 0.5) / (rest + 0.5)), 1.0, coarse_points),
        Axis.make(0.0, box.tau_hi, 0.0, 1.0, coarse_points),
    ]

    def log_density(mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
        return _log_posterior(liks, mu_prior, tau_prior, mu, tau)[0]

    mu, tau = region(log_density, coarse, [False, True], coarse_points, box)
    log_post, groups = _log_posterior(liks, mu_prior, tau_prior, mu.x, tau.x)
    weight = masses(log_post, [mu, tau])
    rows = {
        "mu": moments(mu, weight.sum(axis=1), probs),
        "tau": moments(tau, weight.sum(axis=0), probs),
    }
    mu2, tau2 = np.meshgrid(mu.x, tau.x, indexing="ij")
    for g, group in enumerate(groups, start=1):
        rows[f"theta[{g}]"] = _group_effect(group, mu2, tau2, weight, probs)
    return table(rows, probs)


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
    """Posterior mean, sd and quantiles of mu, tau and every theta[g] (g = 1..G), binomial.

    ``points`` is the fine grid's size per axis (``points`` x ``points`` midpoints).
    Rows are indexed by parameter; columns ``mean``, ``sd`` and ``q5``, ``q25``, ... (the
    percent of each of ``probs``).
    """
    liks = [Binomial(float(a), float(b)) for a, b in zip(y, n, strict=True)]
    return posterior_of(liks, mu_prior, tau_prior, points=points, box=box, probs=probs)


def poisson_posterior(
    y: Sequence[int],
    exposure: Sequence[float],
    mu_prior: Prior,
    tau_prior: Prior,
    *,
    points: int = 100,
    box: Box | None = None,
    probs: Sequence[float] = QUANTILE_PROBS,
) -> pd.DataFrame:
    """As :func:`posterior` for y_g ~ Poisson(exposure_g exp(theta_g)), theta_g the log-rate."""
    liks = [Poisson(float(a), float(e)) for a, e in zip(y, exposure, strict=True)]
    return posterior_of(liks, mu_prior, tau_prior, points=points, box=box, probs=probs)


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
