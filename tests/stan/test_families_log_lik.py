"""The per-group log-likelihood ``log_lik`` of every Poisson, Gaussian and Gaussian-known-SE
program, from real small fits (PyStan, 2 chains x 100 draws, fixed seeds): it equals scipy's
log-pmf / log-pdf at the draws (for the Gaussian family the sum of ``norm.logpdf`` over the
group's raw outcomes, so the sufficient-statistics formula is checked against the outcomes it
summarises), and without ``compute_log_lik`` the program writes none and the same draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from conftest import CACHE, FAMILY_GROUPS, GAUSSIAN_OUTCOMES
from shrinksim.engines import SamplerSettings, make_engine
from shrinksim.families import OUTCOME_FAMILIES
from shrinksim.fitting import group_draws, stan_data
from shrinksim.priors import parse_prior

SETTINGS = SamplerSettings(chains=2, warmup=150, draws=100, adapt_delta=0.9, max_treedepth=10)
PRIOR = parse_prior("student_t(3, 0, 2.5)", "prior")
RTOL = 1e-8  # the same closed form in Stan and scipy: floating-point agreement
PROGRAMS = [
    (family, model, program)
    for family in FAMILY_GROUPS
    for model, program in [
        *OUTCOME_FAMILIES[family].programs.items(),
        *(
            [("partial", OUTCOME_FAMILIES[family].marginal)]
            if OUTCOME_FAMILIES[family].marginal
            else []
        ),
    ]
]
"""(family, model, program) of every program of the three families: 11."""


def scipy_log_lik(family: str, theta: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
    """Per-group log-likelihood at draws theta (chains, draws, groups), by scipy."""
    groups = FAMILY_GROUPS[family]
    if family == "poisson":
        rate = groups["exposure"].to_numpy() * np.exp(theta)
        return stats.poisson.logpmf(groups["y"].to_numpy(), rate)
    if family == "gaussian_se":
        return stats.norm.logpdf(groups["estimate"].to_numpy(), theta, groups["se"].to_numpy())
    return np.stack(
        [
            stats.norm.logpdf(np.asarray(y)[:, None, None], theta[..., g], sigma).sum(axis=0)
            for g, y in enumerate(GAUSSIAN_OUTCOMES)
        ],
        axis=-1,
    )


@pytest.mark.parametrize(("family", "model", "program"), PROGRAMS, ids=[p for *_, p in PROGRAMS])
def test_log_lik_is_scipys_at_the_draws(compile_program, family, model, program):
    compiled = compile_program(program)
    groups = FAMILY_GROUPS[family]
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        on = engine.sample(
            compiled, stan_data(program, groups, PRIOR, PRIOR, log_lik=True), SETTINGS, seed=5
        )
        off = engine.sample(compiled, stan_data(program, groups, PRIOR, PRIOR), SETTINGS, seed=5)
    theta = group_draws(on, model, len(groups))
    expected = scipy_log_lik(family, theta, on.params.get("sigma"))
    assert on.params["log_lik"].shape == (SETTINGS.chains, SETTINGS.draws, len(groups))
    np.testing.assert_allclose(on.params["log_lik"], expected, rtol=RTOL)
    assert off.params["log_lik"].shape == (SETTINGS.chains, SETTINGS.draws, 0)
    for name, values in off.params.items():  # theta drawn by RNG too: the same stream
        if name != "log_lik":
            np.testing.assert_array_equal(values, on.params[name])
