"""The nutpie engine's numba log densities without Stan and without sampling: the data
block's layout, the derivatives of every prior family and group likelihood against finite
differences, their values and the callbacks' against scipy's densities (up to the constant
Stan's ``~`` drops), the expand callback and the ``log_lik`` generated quantity against
scipy's log-pmf / log-pdf. ``tests/stan/test_nutpie_engine.py`` compares the callbacks with
the Stan programs' own ``log_prob`` and samples them.

Tolerances:

* values against scipy: both evaluate the same density in double precision (scipy by other,
  exact formulas: ``betaln``, ``xlogy``...), so log-density differences between points
  agree to rounding, ~1e-13 of their size; checked at 1e-9 relative;
* derivatives against central differences with step h = 1e-6 (in units of the argument's
  scale): truncation error ~h^2 |f'''| / 6 ~ 1e-13 and rounding ~eps |f| / h ~ 2e-10 |f|;
  checked at 1e-6 of max(1, |f|, |f'|), far above both and far below a wrong derivative
  (a missing Jacobian term or a factor changes the derivative by O(1)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from conftest import FAMILY_GROUPS, call_density, call_expand
from shrinksim.engines.nutpie import NO_NUTPIE, PROGRAMS, data_block, log_lik
from shrinksim.families import family_of
from shrinksim.fitting import stan_data
from shrinksim.priors import parse_prior

pytest.importorskip("numba", reason=NO_NUTPIE)

from shrinksim.engines import densities  # noqa: E402 (numba: after the skip)

STEP = 1e-6
FD_TOL = 1e-6  # central differences: see the module docstring
VALUE_TOL = 1e-9  # the same density in double precision: see the module docstring

PRIORS = {
    "student_t": "student_t(3, 0.4, 2.5)",
    "normal": "normal(-1, 2)",
    "cauchy": "cauchy(0.5, 5)",
    "exponential": "exponential(1.5)",
}
"""One prior of every family code of stan/prior.stanfunctions (1-4), with a non-zero
location where the family has one (so a sign or a dropped location shows)."""

BINOMIAL_GROUPS = {"y": [2, 7, 3, 9, 1, 0], "n": [8, 12, 10, 15, 9, 6]}
GROUPS = {
    "binomial": pd.DataFrame({"group": range(1, 7), **BINOMIAL_GROUPS}),
    "poisson": FAMILY_GROUPS["poisson"],
    "gaussian_se": FAMILY_GROUPS["gaussian_se"],
    "gaussian": FAMILY_GROUPS["gaussian"],
}
"""A small data set of each family the nutpie engine fits (6 or 8 groups)."""
LIKELIHOODS = {  # code: (a, b) columns of groups, as the programs' data
    densities.BINOMIAL: (
        np.array(BINOMIAL_GROUPS["y"], float),
        np.array(BINOMIAL_GROUPS["n"], float),
    ),
    densities.POISSON: (
        FAMILY_GROUPS["poisson"]["y"].to_numpy(float),
        FAMILY_GROUPS["poisson"]["exposure"].to_numpy(float),
    ),
    densities.NORMAL_SE: (
        FAMILY_GROUPS["gaussian_se"]["estimate"].to_numpy(float),
        FAMILY_GROUPS["gaussian_se"]["se"].to_numpy(float),
    ),
}


def _code(text: str) -> tuple[int, list[float]]:
    """A prior as Stan's data: (family code, vector[3] of arguments)."""
    data = parse_prior(text, "prior").stan_data("p")
    return data["p_family"], data["p_args"]


def _scipy_group(likelihood: int, eta: np.ndarray, a: float, b: float) -> np.ndarray:
    """A group's normalised log-likelihood at linear predictor eta, by scipy."""
    if likelihood == densities.BINOMIAL:
        return stats.binom.logpmf(a, b, expit(eta))
    if likelihood == densities.POISSON:
        return stats.poisson.logpmf(a, b * np.exp(eta))
    return stats.norm.logpdf(a, eta, b)


def _derivative_error(fn, x: float, *args: float) -> float:
    """|derivative - central difference| / max(1, |value|, |derivative|) of ``fn(x, *args)``
    -> (value, derivative), step h = STEP max(1, |x|)."""
    value, derivative = fn(x, *args)
    h = STEP * max(1.0, abs(x))
    central = (fn(x + h, *args)[0] - fn(x - h, *args)[0]) / (2 * h)
    return abs(derivative - central) / max(1.0, abs(value), abs(derivative))


def _group_logp(eta: float, likelihood: int, a: float, b: float) -> tuple[float, float]:
    """:func:`densities.group_logp` with eta first."""
    return densities.group_logp(likelihood, eta, a, b)


def test_pack_lays_out_header_and_columns():
    a, b = np.array([1, 2, 3]), np.array([10.0, 20.0, 30.0])
    block = densities.pack(densities.POISSON, a, b, (1, [3.0, 0.0, 2.5]), (4, [0.0, 0.0, 1.5]))
    assert block.dtype == np.float64 and block.flags["C_CONTIGUOUS"]
    assert len(block) == densities.HEADER + 2 * 3
    header = [3, densities.POISSON, 1, 3.0, 0.0, 2.5, 4, 0.0, 0.0, 1.5, 0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(block[: densities.HEADER], header)
    np.testing.assert_array_equal(block[densities.HEADER : densities.HEADER + 3], a)
    np.testing.assert_array_equal(block[densities.HEADER + 3 :], b)
    no_tau = densities.pack(densities.BINOMIAL, a, b, (2, [0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(no_tau[6:14], 0.0)  # no tau, no sigma prior: zeros
    c = np.array([0.5, 1.5, 2.5])
    gaussian = densities.pack(densities.NORMAL, a, b, (2, [0.0, 1.0, 2.0]), None, (3, [0, 0, 4]), c)
    assert len(gaussian) == densities.HEADER + 3 * 3
    np.testing.assert_array_equal(gaussian[10:14], [3, 0, 0, 4])  # sigma's prior
    np.testing.assert_array_equal(gaussian[densities.HEADER + 6 :], c)


@pytest.mark.parametrize("program", PROGRAMS)
def test_data_block_of_each_programs_stan_data(program):
    """The engine's block of a program's Stan data: G, the likelihood code, the priors as
    encoded for Stan (tau's and sigma's only where the program has them) and the family's
    columns."""
    density = PROGRAMS[program]
    family = family_of(program).name
    groups = GROUPS[family]
    mu, tau, sigma = (PRIORS[name] for name in ("cauchy", "normal", "exponential"))
    data = stan_data(
        program,
        groups,
        parse_prior(mu, "mu"),
        parse_prior(tau, "tau"),
        sigma_prior=parse_prior(sigma, "sigma"),
    )
    block = data_block(density, data)

    def part(name: str, prior: str) -> list[float]:
        code = _code(prior)
        return [code[0], *code[1]] if name in density.parameters else [0.0] * 4

    mu_code = _code(mu)
    header = [len(groups), getattr(densities, density.likelihood), mu_code[0], *mu_code[1]]
    header += part("tau", tau) + part("sigma", sigma)
    np.testing.assert_array_equal(block[: densities.HEADER], header)
    columns = [value for column in density.columns for value in data[column]]
    np.testing.assert_array_equal(block[densities.HEADER :], columns)


@pytest.mark.parametrize("prior", PRIORS)
def test_prior_logp_is_scipys_density_and_derivative(prior):
    """Value differences equal scipy's log-pdf differences (the dropped constant cancels) and
    the derivative equals central differences of the value (tolerances: module docstring)."""
    family, args = _code(PRIORS[prior])
    dist = parse_prior(PRIORS[prior], "prior")
    x = (
        np.array([0.05, 0.3, 1.0, 2.7, 9.0])
        if prior == "exponential"
        else np.array([-7.0, -1.2, 0.0, 0.4, 3.3, 25.0])
    )
    value = np.array([densities.prior_logp(v, family, *args)[0] for v in x])
    derivative = np.array([densities.prior_logp(v, family, *args)[1] for v in x])
    expected = dist.log_density(x)
    np.testing.assert_allclose(
        value - value[0], expected - expected[0], rtol=VALUE_TOL, atol=VALUE_TOL
    )
    errors = [_derivative_error(densities.prior_logp, v, family, *args) for v in x]
    assert max(errors) < FD_TOL, errors
    assert np.all(np.isfinite(derivative))
    if prior == "exponential":  # Stan rejects x < 0 (exponential_lpdf throws): -inf here
        assert densities.prior_logp(-0.1, family, *args)[0] == -np.inf


@pytest.mark.parametrize("likelihood", LIKELIHOODS, ids=["binomial", "poisson", "normal_se"])
def test_group_logp_is_scipys_likelihood_and_derivative(likelihood):
    """Per group: value differences in eta equal scipy's log-pmf / log-pdf differences, and
    the derivative in eta equals central differences (tolerances: module docstring)."""
    eta = np.array([-3.0, -0.7, 0.0, 0.2, 1.5, 4.0])
    if likelihood == densities.NORMAL_SE:
        eta = eta * 10  # the eight schools' scale
    for a, b in zip(*LIKELIHOODS[likelihood], strict=True):
        value = np.array([densities.group_logp(likelihood, e, a, b)[0] for e in eta])
        expected = _scipy_group(likelihood, eta, a, b)
        scale = max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(
            value - value[0], expected - expected[0], rtol=0, atol=VALUE_TOL * scale
        )
        errors = [_derivative_error(_group_logp, e, likelihood, a, b) for e in eta]
        assert max(errors) < FD_TOL, (a, b, errors)


def test_binomial_logp_is_stable_far_out():
    """At |eta| = 700 (exp overflows at 710) the softplus is computed without overflow: the
    value and derivative are their limits (y eta - n eta, y - n above; y eta, y below)."""
    y, n = 3.0, 10.0
    value, derivative = densities.group_logp(densities.BINOMIAL, 700.0, y, n)
    assert value == pytest.approx((y - n) * 700.0) and derivative == pytest.approx(y - n)
    value, derivative = densities.group_logp(densities.BINOMIAL, -700.0, y, n)
    assert value == pytest.approx(y * -700.0) and derivative == pytest.approx(y)


def _scipy_joint(
    structure: str, likelihood: int, x: np.ndarray, mu_prior: str, tau_prior: str
) -> float:
    """The program's log density on the unconstrained scale (Jacobian included), by scipy:
    an independent formula of what the callback computes (up to a constant)."""
    a, b = LIKELIHOODS[likelihood]
    if structure == "partial":
        mu, log_tau, z = x[0], x[1], x[2:]
        tau = np.exp(log_tau)
        lp = parse_prior(mu_prior, "mu").log_density(mu) + parse_prior(
            tau_prior, "tau"
        ).log_density(tau)
        lp += log_tau + stats.norm.logpdf(z).sum()  # log |d tau / d log tau|, z ~ std_normal
        return float(lp + _scipy_group(likelihood, mu + tau * z, a, b).sum())
    if structure == "marginal":  # estimate a ~ normal(mu, sqrt(tau^2 + se^2)), se = b
        mu, log_tau = x
        tau = np.exp(log_tau)
        lp = parse_prior(mu_prior, "mu").log_density(mu) + parse_prior(
            tau_prior, "tau"
        ).log_density(tau)
        return float(lp + log_tau + stats.norm.logpdf(a, mu, np.sqrt(tau**2 + b**2)).sum())
    theta = x if structure == "no" else np.full(len(a), x[0])
    prior = parse_prior(mu_prior, "mu").log_density(x).sum()
    return float(prior + _scipy_group(likelihood, theta, a, b).sum())


STRUCTURES = [
    *((s, lik) for s in ("partial", "no", "complete") for lik in LIKELIHOODS),
    ("marginal", densities.NORMAL_SE),  # the only likelihood with an exact marginal
]


@pytest.mark.parametrize(("structure", "likelihood"), STRUCTURES, ids=str)
def test_callbacks_are_the_joint_density_and_its_gradient(structure, likelihood):
    """Each C callback, called as nutpie calls it (ctypes), at 4 random points: value
    differences equal scipy's joint log density's and the gradient equals central
    differences of the callback's value (tolerances: module docstring). Priors:
    student_t on mu, cauchy on tau (tau's prior is the family the other unit tests cover)."""
    callback = getattr(densities, f"{structure}_logp")
    a, b = LIKELIHOODS[likelihood]
    mu_prior, tau_prior = PRIORS["student_t"], PRIORS["cauchy"]
    block = densities.pack(likelihood, a, b, _code(mu_prior), _code(tau_prior))
    dim = {"partial": len(a) + 2, "no": len(a), "complete": 1, "marginal": 2}[structure]
    rng = np.random.default_rng(11)
    points = rng.normal(0.0, 1.0, (4, dim))
    if likelihood == densities.NORMAL_SE and structure in ("no", "complete"):
        points *= 10
    if structure == "marginal":
        points[:, 0] *= 10  # mu on the scale of the estimates
    values, expected = [], []
    for x in points:
        code, value, grad = call_density(callback, x, block)
        assert code == 0
        values.append(value)
        expected.append(_scipy_joint(structure, likelihood, x, mu_prior, tau_prior))
        for i in range(dim):
            h = STEP * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            fd = (call_density(callback, up, block)[1] - call_density(callback, down, block)[1]) / (
                2 * h
            )
            assert abs(grad[i] - fd) <= FD_TOL * max(1.0, abs(value), abs(grad[i])), (x, i)
    values, expected = np.array(values), np.array(expected)
    scale = max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(
        values - values[0], expected - expected[0], rtol=0, atol=VALUE_TOL * scale
    )
    code, _, _ = call_density(callback, np.zeros(dim + 1), block)  # a wrong dimension
    assert code == -1


def test_callbacks_report_non_finite_values_to_nutpie():
    """nutpie's codes: 3 for a non-finite gradient (a Poisson mean overflowing), 4 for a
    non-finite value with a finite gradient (exponential on mu below 0, which Stan rejects):
    both are divergences to nutpie, not crashes."""
    a, b = LIKELIHOODS[densities.POISSON]
    block = densities.pack(densities.POISSON, a, b, _code(PRIORS["normal"]))
    assert call_density(densities.complete_logp, [800.0], block)[0] == 3
    block = densities.pack(densities.POISSON, a, b, _code(PRIORS["exponential"]))
    assert call_density(densities.complete_logp, [-0.5], block)[0] == 4
    assert call_density(densities.complete_logp, [0.5], block)[0] == 0


@pytest.mark.parametrize("structure", ["partial", "no", "complete", "marginal"])
def test_expand_writes_the_draw_as_stan_does(structure):
    """tau = exp(x[1]) where there is a tau (partial pooling, marginalised: a tau prior in
    the block, as the engine packs it); every other coordinate (all of them in no and
    complete pooling) as it is."""
    a, b = LIKELIHOODS[densities.BINOMIAL]
    has_tau = structure in ("partial", "marginal")
    tau_prior = _code(PRIORS["normal"]) if has_tau else None
    block = densities.pack(densities.BINOMIAL, a, b, _code(PRIORS["normal"]), tau_prior)
    dim = {"partial": len(a) + 2, "no": len(a), "complete": 1, "marginal": 2}[structure]
    x = np.random.default_rng(3).normal(0.0, 1.0, dim)
    code, out = call_expand(x, block)
    assert code == 0
    expected = x.copy()
    if has_tau:
        expected[1] = np.exp(x[1])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("program", [p for p in PROGRAMS if PROGRAMS[p].likelihood != "NORMAL"])
def test_log_lik_is_scipys_at_the_parameters(program):
    """The programs' ``log_lik`` (normalised, per group) from (chains, draws) of parameters
    equals scipy's log-pmf / log-pdf at theta (tolerance: module docstring, values). The
    gaussian programs' (a sum over each group's raw outcomes): tests/stan/test_nutpie_engine.py
    against Stan's and scipy's."""
    density = PROGRAMS[program]
    likelihood = getattr(densities, density.likelihood)
    a, b = LIKELIHOODS[likelihood]
    block = densities.pack(likelihood, a, b, _code(PRIORS["normal"]), _code(PRIORS["normal"]))
    rng = np.random.default_rng(7)
    shape, groups = (2, 5), len(a)
    scale = 10.0 if likelihood == densities.NORMAL_SE else 1.0
    if density.structure == "partial":
        params = {
            "mu": rng.normal(0, scale, shape),
            "tau": rng.exponential(scale, shape),
            "z": rng.normal(0, 1, (*shape, groups)),
        }
        theta = params["mu"][..., None] + params["tau"][..., None] * params["z"]
    elif density.structure == "no":
        params = {"theta": rng.normal(0, scale, (*shape, groups))}
        theta = params["theta"]
    else:
        params = {"mu": rng.normal(0, scale, shape)}
        theta = np.repeat(params["mu"][..., None], groups, axis=-1)
    got = log_lik(density, params, block)
    assert got.shape == (*shape, groups)
    np.testing.assert_allclose(got, _scipy_group(likelihood, theta, a, b), rtol=VALUE_TOL)
