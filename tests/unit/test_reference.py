"""The quadrature reference against closed forms and adaptive quadrature (no Stan)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit

from shrinksim import reference
from shrinksim.priors import parse_prior

PROBS = reference.QUANTILE_PROBS


@pytest.mark.parametrize(
    ("y", "n", "mu", "tau"),
    [
        (3, 10, -0.4, 0.5),
        (0, 10, -2.0, 5.0),
        (10, 10, 1.0, 3.0),
        (7, 40, 0.2, 0.05),
        (20, 40, 0.0, 8.0),
        (0, 0, 0.3, 1.0),
    ],
)
def test_group_likelihood_matches_adaptive_quadrature(y, n, mu, tau):
    """log L_g against scipy's adaptive quad (relative tolerance 1e-12): within 1e-9 relative,
    from a flat (no data) to a sharp (tau n large) integrand."""
    exact = integrate.quad(
        lambda z: stats.binom.pmf(y, n, expit(mu + tau * z)) * stats.norm.pdf(z),
        -np.inf,
        np.inf,
        epsabs=0,
        epsrel=1e-12,
        limit=500,
    )[0]
    assert np.exp(reference.group_log_likelihood(y, n, mu, tau)) == pytest.approx(exact, rel=1e-9)


def _prior_theta_quantile(mu_mean: float, mu_sd: float, tau_prior, p: float) -> float:
    """Quantile of mu + tau z with mu ~ N(mu_mean, mu_sd), tau ~ tau_prior, z ~ N(0, 1)."""

    def cdf(t: float) -> float:
        return integrate.quad(
            lambda s: tau_prior.pdf(s) * stats.norm.cdf((t - mu_mean) / np.hypot(mu_sd, s)),
            0,
            np.inf,
        )[0]

    return optimize.brentq(lambda t: cdf(t) - p, -20, 20, xtol=1e-10)


@pytest.mark.parametrize(
    ("text", "tau_dist"),
    [("normal(0, 1)", stats.halfnorm()), ("exponential(2)", stats.expon(scale=0.5))],
)
def test_without_data_the_posterior_is_the_prior(text, tau_dist):
    """Groups with n = 0: posterior = prior, known in closed form (theta's quantiles by 1-D
    quadrature). Tolerance 2e-3 absolute on scales of sd ~ 0.5-1.2: the grid's error,
    measured by halving the grid, is below 1e-3 here; Stan's MCSEs in the reference tests
    are >= 1e-2."""
    post = reference.posterior(
        [0, 0, 0], [0, 0, 0], parse_prior("normal(0.3, 0.7)", "mu"), parse_prior(text, "tau")
    )
    assert post.loc["mu", "mean"] == pytest.approx(0.3, abs=2e-3)
    assert post.loc["mu", "sd"] == pytest.approx(0.7, abs=2e-3)
    assert post.loc["mu"].iloc[2:].to_numpy() == pytest.approx(
        stats.norm(0.3, 0.7).ppf(PROBS), abs=2e-3
    )
    assert post.loc["tau", "mean"] == pytest.approx(tau_dist.mean(), abs=2e-3)
    assert post.loc["tau", "sd"] == pytest.approx(tau_dist.std(), abs=2e-3)
    assert post.loc["tau"].iloc[2:].to_numpy() == pytest.approx(tau_dist.ppf(PROBS), abs=2e-3)
    theta_sd = np.sqrt(0.49 + tau_dist.moment(2))
    theta_q = [_prior_theta_quantile(0.3, 0.7, tau_dist, p) for p in PROBS]
    for g in (1, 3):
        row = post.loc[f"theta[{g}]"]
        assert row["mean"] == pytest.approx(0.3, abs=2e-3)
        assert row["sd"] == pytest.approx(theta_sd, abs=2e-3)
        assert row.iloc[2:].to_numpy() == pytest.approx(theta_q, abs=2e-3)


def test_posterior_mass_at_the_search_box_edge_is_an_error():
    # no data and a student_t(3) prior on mu: density exp(-25) of the max lies beyond |mu| = 50
    with pytest.raises(ValueError, match="edge of the search box"):
        reference.posterior(
            [0], [0], parse_prior("student_t(3, 0, 2.5)", "mu"), parse_prior("normal(0, 1)", "tau")
        )


def test_grid_refinement_changes_nothing_that_matters():
    """Doubling the grid (50 -> 100 cells per axis, the default) moves every mean, sd and
    quantile by < 0.01 posterior sd (Stan's MCSEs in the reference tests are >= 0.015 sd)."""
    y, n = [2, 7, 3, 9, 1, 12, 6, 4], [8, 12, 10, 15, 9, 20, 11, 14]
    priors = parse_prior("student_t(3, 0, 2.5)", "mu"), parse_prior("student_t(3, 0, 2.5)", "tau")
    coarse = reference.posterior(y, n, *priors, points=50)
    fine = reference.posterior(y, n, *priors, points=100)
    change = (coarse - fine).abs().to_numpy() / fine[["sd"]].to_numpy()
    assert change.max() < 0.01
    assert fine.loc["tau", "q5"] < fine.loc["tau", "q50"] < fine.loc["tau", "q95"]
