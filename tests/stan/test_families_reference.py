"""Stan's posterior against the exact references, for the Poisson, Gaussian and
Gaussian-known-SE families, their partial-pooling programs and the marginalised variants.

Data: 8 groups per family (``conftest.FAMILY_GROUPS``: Poisson counts with exposures, Gaussian
groups of 1-8 outcomes, the eight schools). Two priors on tau: brms' default
``student_t(3, 0, 2.5)`` and ``normal(0, 1)`` (half); on mu ``student_t(3, 0, 2.5)``
(``student_t(3, 0, 10)`` for the eight schools, whose effects are on a scale of 10); on the
Gaussian sigma ``student_t(3, 0, 2.5)``. PyStan, 4 chains x 1,000 warmup + 1,000 draws,
fixed seeds. Compared as in test_reference_stan.py (``conftest.z_scores``): mean and
5/25/50/75/95 % quantiles of mu, tau, [sigma] and every theta[g], in MCSE units.

Why 4.5 MCSE: 60-66 comparisons per fit, 10 fits, 624 in all (correlated); Bonferroni over
624 two-sided normal tails at 4.5 gives a false alarm for a correct program with probability
< 0.5 %, with room for MCSEs estimated ~10 % too small at these ESS. The references' own
errors (tests/unit/test_reference_families.py: <= 0.007 posterior sd) are below 0.5 MCSE
here (MCSE >= sd / sqrt(4,000) = 0.016 sd). A plausible mistake per family (exposure left
out, sd with divisor n, a wrong prior) is caught by the same tolerance (last test).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import CACHE, FAMILY_GROUPS, z_scores
from shrinksim import reference, reference_gaussian
from shrinksim.engines import SamplerSettings, make_engine
from shrinksim.families import DEFAULT_SIGMA_PRIOR, OUTCOME_FAMILIES
from shrinksim.fitting import group_draws, stan_data
from shrinksim.priors import parse_prior

TAU_PRIORS = {"brms_default": "student_t(3, 0, 2.5)", "normal": "normal(0, 1)"}
INTERCEPT = {
    "poisson": "student_t(3, 0, 2.5)",
    "gaussian": "student_t(3, 0, 2.5)",
    "gaussian_se": "student_t(3, 0, 10)",
}
SETTINGS = SamplerSettings(chains=4, warmup=1000, draws=1000, adapt_delta=0.95, max_treedepth=10)
TOLERANCE = 4.5
FITS = [
    (family, marginal, prior)
    for family in INTERCEPT
    for marginal in ((False, True) if OUTCOME_FAMILIES[family].marginal else (False,))
    for prior in TAU_PRIORS
]
"""Every (family, marginalised?, prior on tau) fitted: 10 fits."""


def _label(fit: tuple[str, bool, str]) -> str:
    family, marginal, prior = fit
    return f"{family}{'-marginal' if marginal else ''}-{prior}"


@pytest.fixture(scope="module")
def fits(compile_program) -> dict[tuple[str, bool, str], tuple[np.ndarray, int]]:
    """Per fit: draws of (mu, tau, [sigma], theta[1..8]) stacked on the last axis, in the
    references' row order, and the number of divergent transitions."""
    out = {}
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        for i, (family, marginal, prior) in enumerate(FITS):
            program = OUTCOME_FAMILIES[family].program("partial", marginal)
            data = stan_data(
                program,
                FAMILY_GROUPS[family],
                parse_prior(INTERCEPT[family], "mu"),
                parse_prior(TAU_PRIORS[prior], prior),
            )
            draws = engine.sample(compile_program(program), data, SETTINGS, seed=300 + i)
            theta = group_draws(draws, "partial", len(FAMILY_GROUPS[family]))
            names = ("mu", "tau", "sigma") if family == "gaussian" else ("mu", "tau")
            scalars = [draws.params[k][..., None] for k in names]
            stacked = np.concatenate([*scalars, theta], axis=-1)
            out[family, marginal, prior] = stacked, int(draws.sampler["divergent__"].sum())
    return out


def exact(family: str, prior: str) -> pd.DataFrame:
    """The exact posterior of ``family``'s data under ``prior`` on tau (a name of
    :data:`TAU_PRIORS` or a prior as written in the config)."""
    groups, mu = FAMILY_GROUPS[family], parse_prior(INTERCEPT[family], "mu")
    tau = parse_prior(TAU_PRIORS.get(prior, prior), prior)
    if family == "poisson":
        return reference.poisson_posterior(groups["y"], groups["exposure"], mu, tau)
    if family == "gaussian_se":
        return reference_gaussian.known_se_posterior(groups["estimate"], groups["se"], mu, tau)
    return reference_gaussian.gaussian_posterior(
        groups["n"], groups["mean"], groups["sd"], mu, tau, DEFAULT_SIGMA_PRIOR
    )


@pytest.fixture(scope="module")
def references() -> dict[tuple[str, str], pd.DataFrame]:
    return {(f, p): exact(f, p) for f in INTERCEPT for p in TAU_PRIORS}


@pytest.mark.parametrize("fit", FITS, ids=_label)
def test_stan_matches_the_exact_reference(fits, references, fit):
    """Every mean and quantile within 4.5 MCSE of the exact posterior (module docstring)."""
    draws, divergences = fits[fit]
    assert divergences == 0
    scores = z_scores(draws, references[fit[0], fit[2]])
    print(f"\n{_label(fit)}: max |z| = {scores.abs().to_numpy().max():.2f}\n{scores.round(2)}")
    assert (scores.abs() < TOLERANCE).all().all(), scores.round(2)


@pytest.mark.parametrize(
    ("family", "prior"),
    [(f, p) for f in INTERCEPT if OUTCOME_FAMILIES[f].marginal for p in TAU_PRIORS],
)
def test_marginalised_and_non_centred_programs_agree(fits, family, prior):
    """Same posterior means of mu, tau, [sigma] and every theta from the marginalised and the
    non-centred program: |difference| < 4 sqrt(MCSE_a^2 + MCSE_b^2) (11 or 10 quantities
    per pair, 4 pairs: a false alarm has probability ~3e-3 in all), MCSE = sd / sqrt(bulk
    ESS); both are also compared with the exact posterior above."""
    from shrinksim import diagnostics

    a, b = fits[family, False, prior][0], fits[family, True, prior][0]
    gap = np.abs(a.mean(axis=(0, 1)) - b.mean(axis=(0, 1)))
    se = np.hypot(diagnostics.mcse_mean(a), diagnostics.mcse_mean(b))
    print(f"\n{family}, {prior}: max |difference| / SE = {np.max(gap / se):.2f}")
    assert np.all(gap < 4 * se)


WRONG = {
    "poisson": "the exposure left out (every exposure 1)",
    "gaussian": "the sd taken with divisor n, not n - 1",
    "gaussian_se": "cauchy(0, 5) on tau, not normal(0, 1)",
}
"""A plausible mistake per family, each giving a reference the tests must tell apart."""


def wrong_reference(family: str) -> pd.DataFrame:
    """The exact posterior under the :data:`WRONG` mistake (fits under normal(0, 1))."""
    groups, mu = FAMILY_GROUPS[family], parse_prior(INTERCEPT[family], "mu")
    tau = parse_prior("normal(0, 1)", "tau")
    if family == "poisson":
        return reference.poisson_posterior(groups["y"], np.ones(len(groups)), mu, tau)
    if family == "gaussian":
        sd = groups["sd"] * np.sqrt((groups["n"] - 1) / groups["n"])
        return reference_gaussian.gaussian_posterior(
            groups["n"], groups["mean"], sd, mu, tau, DEFAULT_SIGMA_PRIOR
        )
    return exact(family, "cauchy(0, 5)")


@pytest.mark.parametrize("family", INTERCEPT)
def test_comparison_detects_a_mistake(fits, family):
    """Each family's fit under normal(0, 1) on tau against the reference of a plausible
    mistake (:data:`WRONG`): the tolerance tells the two posteriors apart."""
    scores = z_scores(fits[family, False, "normal"][0], wrong_reference(family))
    print(f"\n{family}, {WRONG[family]}: max |z| = {scores.abs().max().max():.1f}")
    assert (scores.abs() > TOLERANCE).any().any()
