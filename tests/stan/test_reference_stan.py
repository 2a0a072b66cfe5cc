"""Stan's posterior against the quadrature reference, for every default prior family.

Small design: 8 groups of 8-20 outcomes. For each prior on tau, the partial-pooling program
(PyStan, 4 chains x 10,000 draws) and :func:`shrinksim.reference.posterior` are compared on
mu, tau and every theta[g]:

* mean: |Stan mean - reference mean| < 4.5 MCSE, MCSE = sd / sqrt(ESS) (posterior's
  ``mcse_mean``);
* quantiles (5, 25, 50, 75, 95 %): the share of Stan draws below the reference quantile
  q_p is p within 4.5 MCSE, MCSE = sqrt(p (1 - p) / ESS of I(draw <= q_p)). Comparing on the
  probability scale avoids the noisy order-statistic MCSE of a quantile.

Why 4.5 MCSE: 60 comparisons per prior, 300 in all (correlated, through tau). Bonferroni
over 300 two-sided normal tails at 4.5 gives a false alarm for a correct program with
probability < 0.2 %, with room for MCSEs estimated ~10 % too small (tail ESS is noisy);
observed max |z| per prior is 2.3-4.0 (an exponential(1) fit at 4 x 40,000 draws gives 1.6:
noise, not bias). A wrong prior on tau is still caught (last test). The reference's own
error is < 0.005 posterior sd (unit/test_reference.py), negligible against MCSEs of ~0.01 sd.
Seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import z_scores
from shrinksim import reference
from shrinksim.engines import SamplerSettings, make_engine
from shrinksim.fitting import stan_data
from shrinksim.priors import parse_prior

GROUPS = pd.DataFrame(
    {
        "group": range(1, 9),
        "n": [8, 12, 10, 15, 9, 20, 11, 14],
        "y": [2, 7, 3, 9, 1, 12, 6, 4],
    }
)
INTERCEPT = "student_t(3, 0, 2.5)"
PRIORS = {
    "student_t": "student_t(3, 0, 2.5)",
    "student_t_wide": "student_t(3, 0, 10)",
    "normal": "normal(0, 1)",
    "exponential": "exponential(1)",
    "cauchy": "cauchy(0, 5)",
}
SETTINGS = SamplerSettings(chains=4, warmup=1000, draws=10000, adapt_delta=0.95, max_treedepth=10)
TOLERANCE = 4.5


@pytest.fixture(scope="module")
def fits(compile_program) -> dict[str, tuple[np.ndarray, int]]:
    """Per prior: draws of (mu, tau, theta[1..8]), shape (chains, draws, 10), and divergences."""
    compiled = compile_program("partial_pooling")
    out = {}
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        for i, (name, text) in enumerate(PRIORS.items()):
            data = stan_data(
                "partial_pooling", GROUPS, parse_prior(INTERCEPT, "mu"), parse_prior(text, name)
            )
            draws = engine.sample(compiled, data, SETTINGS, seed=100 + i)
            p = draws.params
            theta = p["mu"][..., None] + p["tau"][..., None] * p["z"]
            stacked = np.concatenate([p["mu"][..., None], p["tau"][..., None], theta], axis=-1)
            out[name] = stacked, int(draws.sampler["divergent__"].sum())
    return out


def exact(prior: str) -> pd.DataFrame:
    return reference.posterior(
        GROUPS["y"], GROUPS["n"], parse_prior(INTERCEPT, "mu"), parse_prior(prior, "tau")
    )


@pytest.mark.parametrize("prior", PRIORS)
def test_stan_matches_the_quadrature_reference(fits, prior):
    draws, divergences = fits[prior]
    assert divergences == 0
    scores = z_scores(draws, exact(PRIORS[prior]))
    print(f"\n{prior}: max |z| = {scores.abs().to_numpy().max():.2f}\n{scores.round(2)}")
    assert (scores.abs() < TOLERANCE).all().all(), scores.round(2)


def test_comparison_detects_a_wrong_prior(fits):
    """Stan under normal(0, 1) against the reference under cauchy(0, 5) on tau: the
    tolerance is tight enough to tell the two posteriors apart."""
    scores = z_scores(fits["normal"][0], exact(PRIORS["cauchy"]))
    print(f"\nnormal fit vs cauchy reference: max |z| = {scores.abs().to_numpy().max():.1f}")
    assert (scores.abs() > TOLERANCE).any().any()
