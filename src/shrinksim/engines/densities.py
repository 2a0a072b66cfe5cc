"""Log densities with analytic gradients of the built-in Stan programs, for the nutpie engine.

Each structure (partial, no and complete pooling; the marginalised partial pooling of
estimates with known se; the Gaussian programs with sigma estimated) is one numba C callback
of the signature nutpie calls without the GIL, ``int64(dim, x*, grad*, logp*, data*)``, over
the unconstrained parameters in Stan's order (partial: ``mu, log(tau), z[G]``; no pooling:
``theta[G]``; complete: ``mu``; marginal: ``mu, log(tau)``; the Gaussian ones with
``log(sigma)`` last), so ``tests/stan/test_nutpie_engine.py`` can compare value
differences and gradients with the Stan program's own ``log_prob`` at random points: the
Stan programs stay the definition of the models. Constants are dropped, as Stan's ``~``
does. The likelihood of a group (binomial, Poisson, normal with known se) is chosen by a
code in the data; so is each prior family (the codes of ``stan/prior.stanfunctions``).

The data block every callback reads (float64, :func:`pack`): a header of
:data:`HEADER` numbers, then two columns of G values (``a``, ``b``: binomial ``y, n``;
Poisson ``y, exposure``; known se ``estimate, se``), three for the Gaussian programs (the
groups' ``y_mean, n, y_sd``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

BINOMIAL, POISSON, NORMAL_SE, NORMAL = 0, 1, 2, 3
"""Likelihood codes of a group's outcome (NORMAL: n outcomes ~ normal(theta, sigma), sigma
estimated, as their mean, sd and n: the ``gaussian_*`` callbacks)."""

HEADER = 14
"""[G, likelihood, then family code and 3 arguments of the priors on mu, tau and sigma (0s
where the program has no such parameter)]."""

LOGP_SIGNATURE = types.int64(
    types.uint64, types.CPointer(types.double), types.CPointer(types.double),
    types.CPointer(types.double), types.voidptr,
)  # fmt: skip
EXPAND_SIGNATURE = types.int64(
    types.uint64, types.uint64, types.CPointer(types.double), types.CPointer(types.double),
    types.voidptr,
)  # fmt: skip


def pack(
    likelihood: int,
    a: np.ndarray,
    b: np.ndarray,
    mu_prior: tuple[int, list[float]],
    tau_prior: tuple[int, list[float]] | None = None,
    sigma_prior: tuple[int, list[float]] | None = None,
    c: np.ndarray | None = None,
) -> np.ndarray:
    """The data block of one data set: priors as Stan's (family code, ``vector[3]``); the
    third column ``c`` (the Gaussian groups' sd) only where there is one."""
    none = (0, [0.0, 0.0, 0.0])
    header = [len(a), likelihood]
    for family, args in (mu_prior, tau_prior or none, sigma_prior or none):
        header += [family, *args]
    columns = [a, b] if c is None else [a, b, c]
    return np.ascontiguousarray(np.concatenate([header, *columns]), dtype=np.float64)


@numba.njit(cache=True)
def prior_logp(x: float, family: float, a1: float, a2: float, a3: float) -> tuple[float, float]:
    """Log density (up to a constant) of ``prior_lpdf`` and its derivative in ``x``."""
    if family == 1:  # student_t(nu = a1, loc = a2, scale = a3)
        r = x - a2
        return -0.5 * (a1 + 1.0) * math.log1p(r * r / (a1 * a3 * a3)), -(a1 + 1.0) * r / (
            a1 * a3 * a3 + r * r
        )
    if family == 2:  # normal(loc = a2, scale = a3)
        r = (x - a2) / a3
        return -0.5 * r * r, -r / a3
    if family == 3:  # cauchy(loc = a2, scale = a3)
        r = x - a2
        return -math.log1p(r * r / (a3 * a3)), -2.0 * r / (a3 * a3 + r * r)
    if x < 0.0:  # outside exponential's support: Stan rejects the point (exponential on mu)
        return -math.inf, 0.0
    return -a3 * x, -a3  # exponential(rate = a3)


@numba.njit(cache=True)
def group_logp(likelihood: float, eta: float, a: float, b: float) -> tuple[float, float]:
    """Log-likelihood (up to a constant) of one group at linear predictor ``eta``, and its
    derivative in ``eta``."""
    if likelihood == BINOMIAL:  # y = a successes of n = b: binomial_logit
        if eta > 0.0:
            softplus, p = eta + math.log1p(math.exp(-eta)), 1.0 / (1.0 + math.exp(-eta))
        else:
            e = math.exp(eta)
            softplus, p = math.log1p(e), e / (1.0 + e)
        return a * eta - b * softplus, a - b * p
    if likelihood == POISSON:  # y = a events in exposure b: poisson_log(log(b) + eta)
        mean = b * math.exp(eta)
        return a * eta - mean, a - mean
    r = (a - eta) / b  # estimate a ~ normal(eta, se = b)
    return -0.5 * r * r, r / b


@numba.njit(cache=True)
def _columns(data_: types.voidptr) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The header, the a and b columns of the data block, and G."""
    groups = int(numba.carray(data_, (1,), dtype=np.float64)[0])
    block = numba.carray(data_, (HEADER + 2 * groups,), dtype=np.float64)
    return block[:HEADER], block[HEADER : HEADER + groups], block[HEADER + groups :], groups


@numba.njit(cache=True)
def _finish(lp: float, grad: np.ndarray, logp_: types.CPointer) -> int:
    """Store ``lp``; nutpie's codes: 3 non-finite gradient, 4 non-finite value (a divergence)."""
    logp_[0] = lp
    if not np.all(np.isfinite(grad)):
        return 3
    if not math.isfinite(lp):
        return 4
    return 0


@numba.njit(cache=True)
def _hyperpriors(x: np.ndarray, head: np.ndarray) -> tuple[float, float, float, float, float]:
    """mu = x[0], tau = exp(x[1]); the log density of their priors plus the log Jacobian of
    tau = exp(log tau); its derivative in mu, and the tau prior's derivative in tau."""
    mu, log_tau = x[0], x[1]
    tau = math.exp(log_tau)
    lp_mu, d_mu = prior_logp(mu, head[2], head[3], head[4], head[5])
    lp_tau, d_tau = prior_logp(tau, head[6], head[7], head[8], head[9])
    return mu, tau, lp_mu + (lp_tau + log_tau), d_mu, d_tau


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def partial_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """Partial pooling, non-centred: theta = mu + tau z; x = (mu, log tau, z)."""
    head, a, b, groups = _columns(data_)
    if dim != groups + 2:
        return -1
    x = numba.carray(x_, (dim,))
    grad = numba.carray(grad_, (dim,))
    mu, tau, lp, grad[0], d_tau = _hyperpriors(x, head)
    d_log_tau = d_tau * tau + 1.0
    for g in range(groups):
        z = x[2 + g]
        lp_g, d_eta = group_logp(head[1], mu + tau * z, a[g], b[g])
        lp += lp_g - 0.5 * z * z
        grad[0] += d_eta
        d_log_tau += d_eta * tau * z
        grad[2 + g] = d_eta * tau - z
    grad[1] = d_log_tau
    return _finish(lp, grad, logp_)


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def no_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """No pooling: every theta[g] with the mu prior; x = theta."""
    head, a, b, groups = _columns(data_)
    if dim != groups:
        return -1
    x = numba.carray(x_, (dim,))
    grad = numba.carray(grad_, (dim,))
    lp = 0.0
    for g in range(groups):
        lp_prior, d_prior = prior_logp(x[g], head[2], head[3], head[4], head[5])
        lp_g, d_eta = group_logp(head[1], x[g], a[g], b[g])
        lp += lp_prior + lp_g
        grad[g] = d_prior + d_eta
    return _finish(lp, grad, logp_)


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def complete_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """Complete pooling: one mu for every group; x = (mu,)."""
    head, a, b, groups = _columns(data_)
    if dim != 1:
        return -1
    x = numba.carray(x_, (1,))
    grad = numba.carray(grad_, (1,))
    lp, grad[0] = prior_logp(x[0], head[2], head[3], head[4], head[5])
    for g in range(groups):
        lp_g, d_eta = group_logp(head[1], x[0], a[g], b[g])
        lp += lp_g
        grad[0] += d_eta
    return _finish(lp, grad, logp_)


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def marginal_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """Partial pooling of estimates with known se, theta integrated out: estimate_g ~
    normal(mu, sqrt(tau^2 + se_g^2)); x = (mu, log tau). theta is drawn afterwards
    (:func:`shrinksim.engines.nutpie.marginal_theta`), as the program's generated quantities."""
    head, a, b, groups = _columns(data_)
    if dim != 2:
        return -1
    x = numba.carray(x_, (2,))
    grad = numba.carray(grad_, (2,))
    mu, tau, lp, grad[0], d_tau = _hyperpriors(x, head)
    for g in range(groups):
        var = tau * tau + b[g] * b[g]
        r = a[g] - mu
        lp -= 0.5 * (math.log(var) + r * r / var)
        grad[0] += r / var
        d_tau += tau * (r * r / var - 1.0) / var
    grad[1] = d_tau * tau + 1.0
    return _finish(lp, grad, logp_)


@numba.cfunc(EXPAND_SIGNATURE, cache=True)
def expand(dim, expanded, x_, out_, data_):  # noqa: ANN001 (a C callback)
    """The draw as Stan writes it: x itself, except tau = exp(x[1]) where there is a tau
    (a tau prior in the header)."""
    if expanded != dim:
        return -1
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    out[:] = x
    head = numba.carray(data_, (HEADER,), dtype=np.float64)
    if head[6] != 0.0:
        out[1] = math.exp(x[1])
    if head[10] != 0.0:  # sigma, the last coordinate
        out[dim - 1] = math.exp(x[dim - 1])
    return 0


# -- the Gaussian programs with sigma estimated (stan/gaussian*.stan) -------------------------


@numba.njit(cache=True)
def _gaussian_columns(
    data_: types.voidptr,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The header, the groups' means, n and sds, and G."""
    groups = int(numba.carray(data_, (1,), dtype=np.float64)[0])
    block = numba.carray(data_, (HEADER + 3 * groups,), dtype=np.float64)
    g = HEADER + groups
    return block[:HEADER], block[HEADER:g], block[g : g + groups], block[g + groups :], groups


@numba.njit(cache=True)
def _sigma_prior(log_sigma: float, head: np.ndarray) -> tuple[float, float, float]:
    """sigma = exp(log sigma), its prior's log density plus the log Jacobian, and its
    derivative in log sigma."""
    sigma = math.exp(log_sigma)
    lp, d_sigma = prior_logp(sigma, head[10], head[11], head[12], head[13])
    return sigma, lp + log_sigma, d_sigma * sigma + 1.0


@numba.njit(cache=True)
def gaussian_group(
    theta: float, sigma: float, mean: float, n: float, sd: float
) -> tuple[float, float, float]:
    """``gaussian_log_lik`` of one group (stan/gaussian.stanfunctions, up to a constant) and
    its derivatives in theta and sigma."""
    squares = (n - 1.0) * sd * sd + n * (mean - theta) ** 2
    s2 = sigma * sigma
    return (
        -n * math.log(sigma) - squares / (2.0 * s2),
        n * (mean - theta) / s2,
        (-n / sigma + squares / (s2 * sigma)),
    )


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def gaussian_marginal_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """Gaussian partial pooling, theta integrated out (stan/gaussian_partial_pooling_marginal):
    mean_g ~ normal(mu, sqrt(tau^2 + sigma^2 / n_g)) and the within-group sum of squares;
    x = (mu, log tau, log sigma)."""
    head, mean, n, sd, groups = _gaussian_columns(data_)
    if dim != 3:
        return -1
    x = numba.carray(x_, (3,))
    grad = numba.carray(grad_, (3,))
    mu, tau, lp, grad[0], d_tau = _hyperpriors(x, head)
    sigma, lp_sigma, d_log_sigma = _sigma_prior(x[2], head)
    lp += lp_sigma
    d_sigma = 0.0
    for g in range(groups):
        var = tau * tau + sigma * sigma / n[g]
        r = mean[g] - mu
        lp -= 0.5 * (math.log(var) + r * r / var) + (n[g] - 1.0) * (
            math.log(sigma) + sd[g] * sd[g] / (2.0 * sigma * sigma)
        )
        grad[0] += r / var
        d_var = 0.5 * (r * r / var - 1.0) / var
        d_tau += 2.0 * tau * d_var
        d_sigma += 2.0 * sigma / n[g] * d_var + (n[g] - 1.0) * (
            -1.0 / sigma + sd[g] * sd[g] / (sigma * sigma * sigma)
        )
    grad[1] = d_tau * tau + 1.0
    grad[2] = d_log_sigma + d_sigma * sigma
    return _finish(lp, grad, logp_)


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def gaussian_no_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """Gaussian no pooling: every theta[g] with the mu prior; x = (theta, log sigma)."""
    head, mean, n, sd, groups = _gaussian_columns(data_)
    if dim != groups + 1:
        return -1
    x = numba.carray(x_, (dim,))
    grad = numba.carray(grad_, (dim,))
    sigma, lp, d_log_sigma = _sigma_prior(x[groups], head)
    d_sigma = 0.0
    for g in range(groups):
        lp_prior, d_prior = prior_logp(x[g], head[2], head[3], head[4], head[5])
        lp_g, d_theta, d_s = gaussian_group(x[g], sigma, mean[g], n[g], sd[g])
        lp += lp_prior + lp_g
        grad[g] = d_prior + d_theta
        d_sigma += d_s
    grad[groups] = d_log_sigma + d_sigma * sigma
    return _finish(lp, grad, logp_)


@numba.cfunc(LOGP_SIGNATURE, cache=True)
def gaussian_complete_logp(dim, x_, grad_, logp_, data_):  # noqa: ANN001 (a C callback)
    """Gaussian complete pooling: one mu for every group; x = (mu, log sigma)."""
    head, mean, n, sd, groups = _gaussian_columns(data_)
    if dim != 2:
        return -1
    x = numba.carray(x_, (2,))
    grad = numba.carray(grad_, (2,))
    sigma, lp_sigma, d_log_sigma = _sigma_prior(x[1], head)
    lp, grad[0] = prior_logp(x[0], head[2], head[3], head[4], head[5])
    lp += lp_sigma
    d_sigma = 0.0
    for g in range(groups):
        lp_g, d_theta, d_s = gaussian_group(x[0], sigma, mean[g], n[g], sd[g])
        lp += lp_g
        grad[0] += d_theta
        d_sigma += d_s
    grad[1] = d_log_sigma + d_sigma * sigma
    return _finish(lp, grad, logp_)
