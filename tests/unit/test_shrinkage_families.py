"""The theory curves of the Poisson, Gaussian and Gaussian-known-SE families, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from shrinksim.shrinkage import (
    theory_shrinkage,
    theory_shrinkage_gaussian,
    theory_shrinkage_known_se,
    theory_shrinkage_poisson,
)


def test_gaussian_curve():
    # sigma^2 / n = 4 / 16 = 0.25; tau^2 = 0.25: B = 1/2. n = 4: 1 / (1 + 0.25) = 0.8
    assert theory_shrinkage_gaussian(16, 0.5, 2.0) == pytest.approx(0.5)
    assert theory_shrinkage_gaussian(np.array([4, 16]), 0.5, 2.0) == pytest.approx([0.8, 0.5])


def test_known_se_curve_per_group():
    # eight schools' first two: 225 / (225 + 100) = 9/13, 100 / 200 = 1/2
    assert theory_shrinkage_known_se(np.array([15.0, 10.0]), 10.0) == pytest.approx(
        [225 / 325, 0.5]
    )
    assert theory_shrinkage_known_se(3.0, 0.0) == 1.0  # tau = 0: complete pooling


def test_poisson_curve():
    # E exp(mu) = 4 * e^0 = 4 expected events: sigma^2 = 1/4; tau = 0.5: B = 1/2
    assert theory_shrinkage_poisson(4.0, 0.5, 0.0) == pytest.approx(0.5)
    # E = 10, mu = log(0.1): 1 expected event, sigma^2 = 1; tau = 1: B = 1/2; tau = 2: 1/5
    assert theory_shrinkage_poisson(10.0, np.array([1.0, 2.0]), np.log(0.1)) == pytest.approx(
        [0.5, 0.2]
    )


def test_binomial_curve_unchanged():
    # n p0 (1 - p0) = 100 * 0.24 = 24: sigma^2 = 1/24; tau^2 = 1/24: B = 1/2
    assert theory_shrinkage(100, np.sqrt(1 / 24), 0.4) == pytest.approx(0.5)
