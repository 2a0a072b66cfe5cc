"""shrinksim.diagnostics against an independent implementation: arviz-stats (a dev extra).

R-hat (rank-normalised, folded, split), bulk and tail ESS, MCSE of the mean and E-BFMI
must equal arviz-stats' array functions to rounding (relative 1e-12) on draws of every kind
the study meets: independent, autocorrelated, antithetic, heavy-tailed, tied (discrete),
mostly constant, one chain shifted, odd and very short chains.

Known convention differences (tested below, so a change on either side is noticed):

* one chain: arviz-stats gives R-hat NaN (it needs 2 chains); shrinksim splits the chain
  and returns the split R-hat of its two halves.
* a constant parameter: both give R-hat NaN; arviz-stats gives bulk and tail ESS = the
  number of draws, shrinksim NaN (no information, not "perfectly mixed").
* a parameter with a NaN draw: both give NaN for that parameter only.
* tail ESS needs the quantile probabilities in arviz-stats' array interface
  (``prob=(0.05, 0.95)``); shrinksim fixes them. Both use numpy's linear quantile.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.signal import lfilter

from shrinksim import diagnostics

az = pytest.importorskip("arviz_stats.base.array").array_stats

RTOL = 1e-12


def ar1(rng: np.random.Generator, rho: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) chains along axis 1: x_t = rho x_{t-1} + e_t."""
    e = rng.standard_normal(shape)
    e[:, 0] /= np.sqrt(1.0 - rho**2)
    return lfilter([1.0], [1.0, -rho], e, axis=1)


def kinds() -> dict[str, np.ndarray]:
    """Draws (chains, iterations, 5 parameters) of every kind compared."""
    rng = np.random.default_rng(20261201)
    shape = (4, 500, 5)
    mostly_tied = np.where(rng.random(shape) < 0.97, 0.0, rng.standard_normal(shape))
    return {
        "iid": rng.standard_normal(shape),
        "autocorrelated": ar1(rng, 0.9, shape),
        "antithetic": ar1(rng, -0.6, shape),
        "cauchy": rng.standard_cauchy(shape),
        "ties": rng.poisson(2.0, shape).astype(float),
        "mostly_tied": mostly_tied,
        "shifted_chain": ar1(rng, 0.5, shape) + np.array([0.5, 0, 0, 0])[:, None, None],
        "odd_length": rng.standard_normal((3, 301, 5)),
        "short": ar1(rng, 0.3, (2, 20, 5)),
    }


def arviz(function, draws: np.ndarray, **options) -> np.ndarray:
    """arviz-stats' array function on (chains, iterations, params) draws -> (params,)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(np.moveaxis(draws, -1, 0), chain_axis=-2, draw_axis=-1, **options)


OURS_AND_THEIRS = {
    "rhat": (diagnostics.rhat, lambda x: arviz(az.rhat, x, method="rank")),
    "ess_bulk": (diagnostics.ess_bulk, lambda x: arviz(az.ess, x, method="bulk")),
    "ess_tail": (
        diagnostics.ess_tail,
        lambda x: arviz(az.ess, x, method="tail", prob=(0.05, 0.95)),
    ),
    "mcse_mean": (diagnostics.mcse_mean, lambda x: arviz(az.mcse, x, method="mean")),
}


@pytest.mark.parametrize("statistic", OURS_AND_THEIRS)
@pytest.mark.parametrize("kind", kinds())
def test_equals_arviz_stats(kind, statistic):
    draws = kinds()[kind]
    ours, theirs = OURS_AND_THEIRS[statistic]
    expected = theirs(draws)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(ours(draws), expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize("rho", [0.0, 0.95])
def test_ebfmi_equals_arviz_stats(rho):
    rng = np.random.default_rng(7)
    energy = ar1(rng, rho, (4, 500)) + 3.0
    expected = az.bfmi(energy, chain_axis=-2, draw_axis=-1)
    np.testing.assert_allclose(diagnostics.ebfmi(energy), expected, rtol=RTOL, atol=0)


def test_convention_one_chain():
    draws = ar1(np.random.default_rng(1), 0.3, (1, 200, 2))
    assert np.all(np.isnan(arviz(az.rhat, draws)))
    assert np.all(np.abs(diagnostics.rhat(draws) - 1) < 0.05)  # its two halves compared
    for statistic in ("ess_bulk", "ess_tail", "mcse_mean"):
        ours, theirs = OURS_AND_THEIRS[statistic]
        np.testing.assert_allclose(ours(draws), theirs(draws), rtol=RTOL)


def test_convention_constant_parameter():
    draws = np.ones((4, 100, 2))
    assert np.all(np.isnan(diagnostics.rhat(draws))) and np.all(np.isnan(arviz(az.rhat, draws)))
    assert np.all(np.isnan(diagnostics.ess_bulk(draws)))
    assert np.all(np.isnan(diagnostics.ess_tail(draws)))
    np.testing.assert_array_equal(arviz(az.ess, draws, method="bulk"), [400.0, 400.0])


def test_convention_nan_draw():
    draws = np.random.default_rng(2).standard_normal((4, 100, 2))
    draws[0, 5, 0] = np.nan
    for ours, theirs in OURS_AND_THEIRS.values():
        mine, other = ours(draws), theirs(draws)
        assert np.isnan(mine[0]) and np.isnan(other[0])
        np.testing.assert_allclose(mine[1], other[1], rtol=RTOL)
