"""The Poisson and Gaussian exact references against adaptive quadrature, closed forms and
brute-force integration that share nothing with them (no Stan)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from shrinksim import reference, reference_gaussian
from shrinksim.priors import parse_prior
from shrinksim.reference_grid import table

PROBS = reference.QUANTILE_PROBS


def _quantile(cdf, p: float, lo: float, hi: float) -> float:
    return optimize.brentq(lambda t: cdf(t) - p, lo, hi, xtol=1e-10)


def _in_sds(ref: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Largest |reference - truth| over every cell, in units of the truth's posterior sd."""
    common = truth.columns.intersection(ref.columns)
    diff = (ref.loc[truth.index, common] - truth[common]).abs()
    return float((diff.to_numpy() / truth[["sd"]].to_numpy()).max())


def _mixture_rows(weight, mean, sd) -> list[float]:
    """Mean, sd and PROBS quantiles of a weighted mixture of normals (weights sum to 1)."""
    centre = np.sum(weight * mean)
    spread = np.sqrt(np.sum(weight * (sd**2 + (mean - centre) ** 2)))

    def cdf(t: float) -> float:
        return float(np.sum(weight * stats.norm.cdf(t, mean, sd)))

    span = (centre - 30 * spread, centre + 30 * spread)
    return [centre, spread, *(_quantile(cdf, p, *span) for p in PROBS)]


def _marginal_rows(x: np.ndarray, weight: np.ndarray) -> list[float]:
    """Mean, sd and PROBS quantiles of a 1-D marginal given at Gauss-Legendre nodes: the
    quantiles from the CDF of the (smooth) density, by linear interpolation of the cumulated
    node weights at the midpoints between nodes."""
    mean = np.sum(weight * x)
    sd = np.sqrt(np.sum(weight * (x - mean) ** 2))
    mids = np.concatenate([[x[0]], 0.5 * (x[1:] + x[:-1]), [x[-1]]])
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    return [mean, sd, *np.interp(PROBS, cdf, mids)]


def _legendre(lo: float, hi: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(k)
    return lo + (hi - lo) * (nodes + 1) / 2, weights * (hi - lo) / 2


# --- Poisson -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "exposure", "mu", "tau"),
    [
        (0, 2.5, -1.0, 0.5),
        (12, 10.0, 0.2, 3.0),
        (3, 0.01, 5.0, 0.05),
        (40, 4.0, 2.0, 8.0),
        (0, 100.0, 3.0, 10.0),
        (7, 3.0, 0.5, 0.0),
    ],
)
def test_poisson_group_likelihood_matches_adaptive_quadrature(y, exposure, mu, tau):
    """log L_g of the Poisson family against scipy's adaptive quad (relative tolerance
    1e-12; z in [-12, 12], beyond which phi is below 1e-31): within 1e-9 relative, from
    tau = 0 to sharp integrands (tau y large) and rates far from the data (exp(mu + tau z)
    overflows in the tails)."""

    def integrand(z: float) -> float:
        rate = exposure * np.exp(mu + tau * z)
        return float(np.exp(stats.poisson.logpmf(y, rate) + stats.norm.logpdf(z)))

    exact = integrate.quad(integrand, -12, 12, epsabs=0, epsrel=1e-12, limit=1000, points=[0])[0]
    got = np.exp(reference.group_log_likelihood(y, exposure, mu, tau, reference.Poisson))
    assert got == pytest.approx(exact, rel=1e-9)


POISSON = {"y": [0, 3, 7], "exposure": [2.0, 4.5, 3.0]}


def _poisson_brute_force(mu_prior, tau_prior) -> pd.DataFrame:
    """The Poisson posterior by brute force: Gauss-Legendre in mu in [-6, 4] and tau in
    [0, 6] (normal priors: the mass beyond is < 1e-8) and a uniform trapezoid in z
    (4,001 nodes on [-10, 10], spacing 0.005 against a width >= 0.05) for each group's integral; theta's mean and sd from the same z
    nodes. Quantiles are left out (the reference's are checked in the Gaussian tests)."""
    mu, w_mu = _legendre(-6.0, 4.0, 80)
    tau, w_tau = _legendre(0.0, 6.0, 80)
    z = np.linspace(-10.0, 10.0, 4001)
    log_post = mu_prior.log_density(mu)[:, None] + tau_prior.log_density(tau)[None, :]
    moments_ = np.zeros((len(POISSON["y"]), 2, len(mu), len(tau)))  # E[theta^k | mu, tau, y_g]
    for i, m in enumerate(mu):  # one mu node at a time: (tau, z) arrays stay small
        theta = m + tau[:, None] * z
        for g, (y, e) in enumerate(zip(POISSON["y"], POISSON["exposure"], strict=True)):
            f = np.exp(stats.poisson.logpmf(y, e * np.exp(theta)) + stats.norm.logpdf(z))
            like = integrate.trapezoid(f, z, axis=-1)
            log_post[i] += np.log(like)
            for k in (1, 2):
                moments_[g, k - 1, i] = integrate.trapezoid(f * theta**k, z, axis=-1) / like
    conditional = list(moments_)
    weight = np.exp(log_post - log_post.max()) * np.outer(w_mu, w_tau)
    weight /= weight.sum()
    rows = {}
    for name, x in (("mu", mu[:, None] + 0 * tau), ("tau", 0 * mu[:, None] + tau)):
        mean = np.sum(weight * x)
        rows[name] = [mean, np.sqrt(np.sum(weight * (x - mean) ** 2))]
    for g, (m1, m2) in enumerate(conditional, start=1):
        mean = np.sum(weight * m1)
        rows[f"theta[{g}]"] = [mean, np.sqrt(np.sum(weight * m2) - mean**2)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "sd"])


def test_poisson_posterior_matches_brute_force():
    """Means and sds of mu, tau and each theta (3 groups, y = 0 included) against brute-force
    integration: within 0.005 posterior sd (the reference's grid error is ~0.005 sd, the
    binomial's too; Stan's MCSEs at 4 x 1,000 draws are >= 0.015 sd)."""
    priors = parse_prior("normal(0, 1)", "mu"), parse_prior("normal(0, 1)", "tau")
    ref = reference.poisson_posterior(POISSON["y"], POISSON["exposure"], *priors)
    assert _in_sds(ref, _poisson_brute_force(*priors)) < 0.005


def test_poisson_grid_refinement_changes_nothing_that_matters():
    """Four times the grid moves every mean, sd and quantile by < 0.01 posterior sd."""
    y, e = [0, 3, 7, 2, 12, 5, 1, 9], [2.5, 4.0, 6.2, 3.0, 10.0, 5.5, 1.2, 8.0]
    priors = parse_prior("student_t(3, 0, 2.5)", "mu"), parse_prior("student_t(3, 0, 2.5)", "tau")
    default = reference.poisson_posterior(y, e, *priors)
    fine = reference.poisson_posterior(y, e, *priors, points=400)
    assert _in_sds(default, fine) < 0.01


# --- Gaussian with known standard errors -------------------------------------------------

SCHOOLS = {"estimate": [28, 8, -3, 7, -1, 1, 18, 12], "se": [15, 10, 16, 11, 9, 11, 10, 18]}


def _known_se_closed_form(m0: float, s0: float, tau_prior) -> pd.DataFrame:
    """Eight schools with mu ~ Normal(m0, s0): the estimates are multivariate normal given
    tau (covariance diag(se^2 + tau^2) + s0^2), and mu and each theta normal given tau
    (Gelman et al., BDA3, 5.4): the posterior as a mixture over tau, by Gauss-Legendre on
    [0, 60] (half-normal(0, 10) prior: the mass beyond is < 1e-8)."""
    y, v = np.asarray(SCHOOLS["estimate"], float), np.asarray(SCHOOLS["se"], float) ** 2
    tau, w = _legendre(0.0, 60.0, 400)
    cov = np.diag(v)[None] + (tau**2)[:, None, None] * np.eye(len(y)) + s0**2
    log_post = tau_prior.logpdf(tau) + np.array(
        [stats.multivariate_normal.logpdf(y, np.full(len(y), m0), c) for c in cov]
    )
    weight = np.exp(log_post - log_post.max()) * w
    weight /= weight.sum()
    prec = 1 / (v[None] + tau[:, None] ** 2)  # (tau, group)
    mu_var = 1 / (1 / s0**2 + prec.sum(axis=1))
    mu_hat = mu_var * (m0 / s0**2 + (prec * y).sum(axis=1))
    rows = {"mu": _mixture_rows(weight, mu_hat, np.sqrt(mu_var))}
    rows["tau"] = _marginal_rows(tau, weight)
    b = v[None] * prec  # shrinkage se^2 / (se^2 + tau^2)
    mean = b * mu_hat[:, None] + (1 - b) * y
    var = v[None] * tau[:, None] ** 2 * prec + b**2 * mu_var[:, None]
    for g in range(len(y)):
        rows[f"theta[{g + 1}]"] = _mixture_rows(weight, mean[:, g], np.sqrt(var[:, g]))
    return table(rows, PROBS)


def test_known_se_reference_matches_the_closed_form():
    """Eight schools, mu ~ Normal(5, 10), tau ~ half-normal(0, 10): every mean, sd and
    quantile of mu, tau and the eight theta within 0.005 posterior sd of the closed form
    (grid error: 100 vs 200 cells per axis moves them by ~0.001 sd)."""
    ref = reference_gaussian.known_se_posterior(
        SCHOOLS["estimate"],
        SCHOOLS["se"],
        parse_prior("normal(5, 10)", "mu"),
        parse_prior("normal(0, 10)", "tau"),
    )
    truth = _known_se_closed_form(5.0, 10.0, stats.halfnorm(scale=10))
    assert _in_sds(ref, truth) < 0.005


# --- Gaussian with sigma estimated ---------------------------------------------------------


def _raw_outcomes() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(t, 1.0, k) for t, k in zip([0.2, -0.4, 0.9], [1, 3, 4], strict=True)]


def _gaussian_brute_force(m0: float, s0: float, tau_scale: float, sigma_scale: float):
    """The posterior from the raw outcomes, without sufficient statistics: given (tau, sigma)
    the outcomes are multivariate normal (mu ~ Normal(m0, s0) integrated out, covariance
    sigma^2 I + tau^2 Z Z' + s0^2), and mu and each theta are normal given (tau, sigma, y)
    by Gaussian conditioning on the joint vector. Gauss-Legendre in tau in [0, 6 tau_scale]
    and sigma in [0.05, 6 sigma_scale] (half-normal priors; the mass beyond is < 1e-8)."""
    raw = _raw_outcomes()
    y = np.concatenate(raw)
    z = np.repeat(np.eye(len(raw)), [len(r) for r in raw], axis=0)  # outcome -> group
    tau, w_tau = _legendre(0.0, 6 * tau_scale, 120)
    sigma, w_sigma = _legendre(0.05, 6 * sigma_scale, 160)
    t2, s2 = np.meshgrid(tau**2, sigma**2, indexing="ij")
    t2, s2 = t2.reshape(-1), s2.reshape(-1)
    cov = (
        s2[:, None, None] * np.eye(len(y)) + t2[:, None, None] * (z @ z.T) + s0**2
    )  # (nodes, N, N)
    resid = y - m0
    solved = np.linalg.solve(cov, np.broadcast_to(resid, (len(t2), len(y)))[..., None])[..., 0]
    log_like = -0.5 * (np.linalg.slogdet(cov)[1] + (resid * solved).sum(-1))
    log_post = (
        log_like
        + stats.halfnorm(scale=tau_scale).logpdf(np.sqrt(t2))
        + stats.halfnorm(scale=sigma_scale).logpdf(np.sqrt(s2))
    )
    weight = np.exp(log_post - log_post.max()) * np.outer(w_tau, w_sigma).reshape(-1)
    weight /= weight.sum()
    rows = {}
    # Cov(mu, y) = s0^2 1'; Cov(theta_g, y) = tau^2 Z[:, g]' + s0^2 1'
    for name, var0, cross in [("mu", s0**2 + 0 * t2, np.full((len(t2), len(y)), s0**2))] + [
        (f"theta[{g + 1}]", s0**2 + t2, t2[:, None] * z[:, g] + s0**2) for g in range(len(raw))
    ]:
        gain = np.linalg.solve(cov, cross[..., None])[..., 0]
        mean = m0 + (gain * resid).sum(-1)
        var = var0 - (gain * cross).sum(-1)
        rows[name] = _mixture_rows(weight, mean, np.sqrt(var))
    grid = weight.reshape(len(tau), len(sigma))
    rows["tau"] = _marginal_rows(tau, grid.sum(axis=1))
    rows["sigma"] = _marginal_rows(sigma, grid.sum(axis=0))
    return table(rows, PROBS)


def test_gaussian_reference_matches_brute_force_from_raw_outcomes():
    """3 groups of 1, 3 and 4 outcomes (one without an sd), mu ~ Normal(0.5, 1), tau ~
    half-normal(0, 1), sigma ~ half-normal(0, 2): every mean, sd and quantile of mu, tau,
    sigma and each theta within 0.01 posterior sd of the brute-force posterior from the raw
    outcomes (the default 60^3 grid moves by ~0.003 sd against 100^3; Stan's MCSEs at
    4 x 1,000 draws are >= 0.015 sd)."""
    raw = _raw_outcomes()
    ref = reference_gaussian.gaussian_posterior(
        [len(r) for r in raw],
        [r.mean() for r in raw],
        [r.std(ddof=1) if len(r) > 1 else np.nan for r in raw],
        parse_prior("normal(0.5, 1)", "mu"),
        parse_prior("normal(0, 1)", "tau"),
        parse_prior("normal(0, 2)", "sigma"),
    )
    assert list(ref.index[:3]) == ["mu", "tau", "sigma"]
    assert _in_sds(ref, _gaussian_brute_force(0.5, 1.0, 1.0, 2.0)) < 0.01


def test_gaussian_grid_refinement_changes_nothing_that_matters():
    """60 -> 90 cells per axis (the default is 60) moves every mean, sd and quantile by
    < 0.01 posterior sd."""
    n, mean = [1, 2, 3, 5, 4, 8, 2, 6], [0.84, 0.87, 0.35, -0.54, 0.95, 0.32, -0.71, 0.82]
    sd = [np.nan, 0.19, 0.64, 0.53, 0.75, 1.53, 0.52, 1.24]
    prior = parse_prior("student_t(3, 0, 2.5)", "prior")
    default = reference_gaussian.gaussian_posterior(n, mean, sd, prior, prior, prior)
    fine = reference_gaussian.gaussian_posterior(n, mean, sd, prior, prior, prior, points=90)
    assert _in_sds(default, fine) < 0.01
