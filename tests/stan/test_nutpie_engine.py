"""The nutpie engine against the Stan programs it stands in for: real fits, no mocks.

1. **Its densities are the Stan programs'.** For each of the 9 programs of
   :data:`~shrinksim.engines.nutpie.PROGRAMS`, on a small data set of its family and 4 prior
   pairs covering every family code (mu: student_t, normal, cauchy; tau: student_t, cauchy,
   exponential, normal), at 5 random unconstrained points: the numba callback's log density
   and gradient against the Stan model's ``log_prob`` / ``log_prob_grad`` (with the
   Jacobian), from the PyStan build of the program (httpstan's extension module, loaded as
   PyStan's direct path loads it; never ``stan.build`` in this process). Tolerance 1e-8,
   relative to max(1, |value|) (to max(1, |gradient|) for gradients): both are
   double-precision evaluations of the same formula up to a constant (Stan's ``~`` drops
   the same constants), whose rounding is ~1e-14 relative; any modelling difference (a
   prior, a Jacobian, a column) is O(1). Value *differences* between the points are
   compared, so the dropped constant cancels (observed: <= 1.5e-15). A wrong data block
   (swapped columns, another prior code, other prior arguments) must fail the same
   comparison (observed: >= 1e-3).
2. **Its draws match the exact posteriors within 4.5 MCSE** (``conftest.z_scores``), on
   the data sets and references of ``test_reference_stan.py`` (binomial) and
   ``test_families_reference.py`` (Poisson, eight schools), whose helpers are reused, plus
   binomial complete and no pooling against one-dimensional quadrature. Why 4.5: 414
   comparisons in all (6 partial-pooling fits x 60, complete pooling 6, no pooling 48);
   Bonferroni over 414 two-sided normal tails at 4.5 gives a false alarm for a correct
   engine with probability < 0.3 %, with room for MCSEs estimated ~10 % too small. The
   references' own errors (<= 0.007 posterior sd, unit tests of the references; ~1e-6 sd
   for the 1-D grids) are below 0.6 MCSE here (4,000 draws; nutpie's bulk ESS reaches
   ~6,600, so MCSE = sd / sqrt(ESS) >= 0.012 sd). Observed max |z| per fit: 1.3-3.2. Wrong
   priors and data are caught by the same tolerance (negative controls; max |z| 11-745).
3. **The engine contract**: seeds, names and shapes of the draws as PyStan's engine returns
   them, sampler variables, ``log_lik`` as the programs write it, unsupported programs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from conftest import CACHE, FAMILY_GROUPS, GAUSSIAN_OUTCOMES, REPO, call_density, z_scores
from shrinksim.engines import (
    SAMPLER_VARIABLES,
    EngineError,
    SamplerSettings,
    make_engine,
    program_source,
    resolve_engine,
)
from shrinksim.engines.nutpie import PROGRAMS, data_block, log_lik, nutpie_problem
from shrinksim.engines.pystan import pystan_installed
from shrinksim.families import family_of
from shrinksim.fitting import example_data, group_draws, stan_data
from shrinksim.priors import parse_prior

PROBLEM = nutpie_problem()
if PROBLEM:
    pytest.skip(PROBLEM, allow_module_level=True)
if not pystan_installed():
    pytest.skip("the Stan side of these tests needs PyStan (httpstan)", allow_module_level=True)

import test_families_reference as families_reference  # noqa: E402 (after the skips)
import test_reference_stan as binomial_reference  # noqa: E402

from shrinksim.engines import densities  # noqa: E402 (numba: after the skip)
from shrinksim.engines.fastpath import services_module  # noqa: E402

# --- 1. the densities are the Stan programs' ------------------------------------------------

DENSITY_TOL = 1e-8  # double-precision evaluations of one formula: see the module docstring
PRIOR_PAIRS = {
    "student_t": ("student_t(3, 0, 2.5)", "student_t(3, 0, 2.5)"),
    "normal_cauchy": ("normal(0.5, 2)", "cauchy(0, 5)"),
    "cauchy_exponential": ("cauchy(-0.3, 2)", "exponential(1)"),
    "t_wide_normal": ("student_t(5, 1, 10)", "normal(0, 1)"),
}
"""(mu prior, tau prior): every family code on tau, three on mu (exponential on mu, whose
support is x >= 0, has its own test), locations other than 0 on mu."""
DATA = {
    "binomial": binomial_reference.GROUPS.head(6),
    "poisson": FAMILY_GROUPS["poisson"],
    "gaussian_se": FAMILY_GROUPS["gaussian_se"].head(5),
    "gaussian": FAMILY_GROUPS["gaussian"],
}
"""A small data set of each family (6, 8, 5 and 8 groups: G differs between families)."""
POINTS = 5


def _data(program: str, priors: tuple[str, str], groups: pd.DataFrame | None = None) -> dict:
    """The program's Stan data (as PyStan sends it: plain JSON types)."""
    groups = DATA[family_of(program).name] if groups is None else groups
    mu, tau = (parse_prior(text, "prior") for text in priors)
    # the gaussian programs' sigma gets the tau prior: every prior code on sigma too
    return json.loads(json.dumps(stan_data(program, groups, mu, tau, sigma_prior=tau)))


def _dim(program: str, data: dict) -> int:
    dims = {"partial": data["G"] + 2, "no": data["G"], "complete": 1, "marginal": 2}
    dims |= {"gaussian_marginal": 3, "gaussian_no": data["G"] + 1, "gaussian_complete": 2}
    return dims[PROGRAMS[program].structure]


def _points(program: str, data: dict, seed: int) -> np.ndarray:
    """POINTS random unconstrained points, Normal(0, 1) per coordinate (x10 for the eight
    schools' mu and theta, on the scale of their effects)."""
    points = np.random.default_rng(seed).normal(0.0, 1.0, (POINTS, _dim(program, data)))
    if family_of(program).name == "gaussian_se":
        points[:, : _dim(program, data) if PROGRAMS[program].structure == "no" else 1] *= 10
    return points


def _stan_log_prob(module, data: dict, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stan's log density with the Jacobian, and its gradient, at each point."""
    lp = [module.log_prob(data, list(map(float, x)), True) for x in points]
    grad = [module.log_prob_grad(data, list(map(float, x)), True) for x in points]
    return np.array(lp), np.array(grad)


def _ours(program: str, block: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numba callback's log density and gradient at each point (return code 0)."""
    callback = getattr(densities, f"{PROGRAMS[program].structure}_logp")
    calls = [call_density(callback, x, block) for x in points]
    assert [code for code, _, _ in calls] == [0] * len(points)
    return np.array([lp for _, lp, _ in calls]), np.array([grad for _, _, grad in calls])


def discrepancy(stan: tuple[np.ndarray, np.ndarray], ours: tuple[np.ndarray, np.ndarray]):
    """(value, gradient) discrepancies: the largest |difference| of the log-density
    differences to the first point, relative to max(1, |Stan's values|), and of the
    gradients, relative to max(1, |Stan's gradient|) at each point."""
    (stan_lp, stan_grad), (our_lp, our_grad) = stan, ours
    value = np.abs((our_lp - our_lp[0]) - (stan_lp - stan_lp[0]))
    value_scale = np.maximum(1.0, np.maximum(np.abs(stan_lp), np.abs(stan_lp[0])))
    grad_scale = np.maximum(1.0, np.abs(stan_grad).max(axis=1, keepdims=True))
    return float(np.max(value / value_scale)), float(
        np.max(np.abs(our_grad - stan_grad) / grad_scale)
    )


CASES = [(program, pair) for program in PROGRAMS for pair in PRIOR_PAIRS]


@pytest.mark.parametrize(("program", "pair"), CASES, ids=[f"{p}-{q}" for p, q in CASES])
def test_density_and_gradient_are_stans(compile_program, program, pair):
    """The engine's data block (``nutpie.data_block`` of the Stan data) and callback at 5
    random points against Stan's ``log_prob``: within 1e-8 (module docstring)."""
    module = services_module(compile_program(program).location)
    data = _data(program, PRIOR_PAIRS[pair])
    points = _points(program, data, seed=list(PROGRAMS).index(program))
    block = data_block(PROGRAMS[program], data)
    value, gradient = discrepancy(
        _stan_log_prob(module, data, points), _ours(program, block, points)
    )
    print(f"\n{program}, {pair}: value {value:.1e}, gradient {gradient:.1e}")
    assert value < DENSITY_TOL and gradient < DENSITY_TOL


def _wrong_blocks(program: str, data: dict) -> dict[str, np.ndarray]:
    """Plausible mistakes in the data block: the first and last columns swapped (gaussian:
    mean and sd, n kept), the mu prior's family code changed (student_t read as cauchy: the
    same arguments' slots), its scale doubled, and the tau and sigma priors' family codes
    changed where there are such parameters."""
    density = PROGRAMS[program]
    first, last = density.columns[0], density.columns[-1]
    swapped = data | {first: data[last], last: data[first]}
    blocks = {"columns swapped": data_block(density, swapped)}
    mu_code = data | {"mu_prior_family": 3}
    blocks["mu prior cauchy"] = data_block(density, mu_code)
    scale = data | {"mu_prior_args": [*data["mu_prior_args"][:2], 2 * data["mu_prior_args"][2]]}
    blocks["mu prior scale x2"] = data_block(density, scale)
    if "sigma" in density.parameters:
        blocks["sigma prior normal"] = data_block(density, data | {"sigma_prior_family": 2})
    if "tau" in density.parameters:
        blocks["tau prior normal"] = data_block(density, data | {"tau_prior_family": 2})
    return blocks


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_density_comparison_detects_a_wrong_block(compile_program, program):
    """Negative control of the test above: each wrong block misses Stan's density by far
    more than the tolerance (the comparison is not vacuous), on the student_t pair."""
    module = services_module(compile_program(program).location)
    data = _data(program, PRIOR_PAIRS["student_t"])
    points = _points(program, data, seed=99)
    stan = _stan_log_prob(module, data, points)
    for mistake, block in _wrong_blocks(program, data).items():
        value, gradient = discrepancy(stan, _ours(program, block, points))
        print(f"\n{program}, {mistake}: value {value:.1e}, gradient {gradient:.1e}")
        assert max(value, gradient) > 1e3 * DENSITY_TOL, mistake


@pytest.mark.parametrize(
    "program", [p for p in PROGRAMS if PROGRAMS[p].structure in ("no", "complete")]
)
def test_exponential_prior_on_mu_has_stans_support(compile_program, program):
    """exponential(1) as the prior of mu (complete pooling) or of every theta (no pooling):
    above 0 the density is Stan's (1e-8, as above); below 0 Stan rejects the point
    (``exponential_lpdf`` throws) and the callback returns a non-finite log density (code 4,
    a divergence to nutpie), not the exponential's formula extended below 0."""
    module = services_module(compile_program(program).location)
    data = _data(program, ("exponential(1)", "normal(0, 1)"))
    points = np.abs(_points(program, data, seed=5)) + 0.01
    block = data_block(PROGRAMS[program], data)
    value, gradient = discrepancy(
        _stan_log_prob(module, data, points), _ours(program, block, points)
    )
    assert value < DENSITY_TOL and gradient < DENSITY_TOL
    below = points[0].copy()
    below[0] = -0.5
    with pytest.raises(ValueError, match="exponential_lpdf"):
        module.log_prob(data, list(map(float, below)), True)
    callback = getattr(densities, f"{PROGRAMS[program].structure}_logp")
    code, lp, _ = call_density(callback, below, block)
    assert code == 4 and lp == -np.inf


# --- 2. draws against the exact posteriors ---------------------------------------------------

SETTINGS = families_reference.SETTINGS  # 4 chains x 1,000 warmup + 1,000 draws, adapt_delta 0.95
TOLERANCE = families_reference.TOLERANCE  # 4.5, as there (module docstring)
assert TOLERANCE == binomial_reference.TOLERANCE
BINOMIAL_PRIORS = ("normal", "cauchy")
"""Priors on tau of the binomial fits (names of test_reference_stan.PRIORS): a fit under
normal(0, 1) against the cauchy(0, 5) reference is that module's negative control."""
FAMILY_PRIORS = tuple(families_reference.TAU_PRIORS)  # brms_default, normal
POOLED_PRIOR = "student_t(3, 0, 2.5)"
"""The prior of mu (complete pooling) and of every theta (no pooling), binomial."""
WRONG_POOLED_PRIOR = "normal(0, 1)"
"""The no-pooling fit's mistake (complete pooling's: its last group left out; with 99 trials
in all its posterior hardly depends on the prior)."""
MAX_DIVERGENCES = 5
"""Divergent transitions allowed in a fit of 4,000 draws (0.125 %). The non-centred Poisson
posterior gives a few with either engine whatever the seed (seeds 500-519, Poisson, both tau
priors: PyStan 0-14 per fit, nutpie 0-7 but one fit with 49 in one chain); the draws are
judged by the MCSE comparison, and 5 still flags a badly adapted chain."""


def _fit(
    engine, compiled, program: str, groups: pd.DataFrame, mu: str, tau: str | None, seed: int
) -> tuple[np.ndarray, int]:
    """Draws (chains, draws, quantities) of mu, tau, theta[1..G] (partial), theta (no
    pooling) or mu (complete), the order of the references' rows; and the number of
    divergent transitions."""
    tau_prior = parse_prior(tau, "tau") if tau else None
    data = stan_data(program, groups, parse_prior(mu, "mu"), tau_prior)
    draws = engine.sample(compiled, data, SETTINGS, seed=seed)
    divergences = int(draws.sampler["divergent__"].sum())
    structure = PROGRAMS[program].structure
    if structure == "complete":
        return draws.params["mu"][..., None], divergences
    theta = group_draws(draws, "none" if structure == "no" else "partial", len(groups))
    if structure == "no":
        return theta, divergences
    names = ("mu", "tau", "sigma") if "sigma" in draws.params else ("mu", "tau")
    scalars = [draws.params[name][..., None] for name in names]
    return np.concatenate([*scalars, theta], axis=-1), divergences


@pytest.fixture(scope="module")
def nutpie_fits() -> dict[tuple[str, str], tuple[np.ndarray, int]]:
    """Draws and divergences of every fit of part 2, by (family or structure, prior name)."""
    engine = make_engine("nutpie", cache_dir=CACHE, model_dir=".")
    compiled = {
        program: engine.compile(
            program_source(REPO / "stan" / f"{program}.stan"), program, example_data(program)
        )
        for program in (
            "partial_pooling",
            "no_pooling",
            "complete_pooling",
            "poisson_partial_pooling",
            "gaussian_se_partial_pooling",
            "gaussian_se_partial_pooling_marginal",
            "gaussian_partial_pooling_marginal",
        )
    }
    out = {}
    groups = binomial_reference.GROUPS
    for i, prior in enumerate(BINOMIAL_PRIORS):
        tau = binomial_reference.PRIORS[prior]
        out["binomial", prior] = _fit(
            engine,
            compiled["partial_pooling"],
            "partial_pooling",
            groups,
            binomial_reference.INTERCEPT,
            tau,
            500 + i,
        )
    for i, family in enumerate(("poisson", "gaussian_se")):
        program = f"{family}_partial_pooling"
        for j, prior in enumerate(FAMILY_PRIORS):
            tau = families_reference.TAU_PRIORS[prior]
            mu = families_reference.INTERCEPT[family]
            out[family, prior] = _fit(
                engine, compiled[program], program, FAMILY_GROUPS[family], mu, tau, 510 + 2 * i + j
            )
    for i, family in enumerate(("gaussian_se", "gaussian")):
        program = f"{family}_partial_pooling_marginal"
        for j, prior in enumerate(FAMILY_PRIORS):
            tau = families_reference.TAU_PRIORS[prior]
            mu = families_reference.INTERCEPT[family]
            out[f"{family}_marginal", prior] = _fit(
                engine, compiled[program], program, FAMILY_GROUPS[family], mu, tau, 530 + 2 * i + j
            )
    for structure, seed in (("complete", 520), ("no", 521)):
        program = f"{structure}_pooling"
        out[structure, "student_t"] = _fit(
            engine, compiled[program], program, groups, POOLED_PRIOR, None, seed
        )
    return out


def one_dimensional_posterior(y: np.ndarray, n: np.ndarray, prior: str) -> pd.Series:
    """Mean and quantiles (``conftest.z_scores``' columns) of the posterior of one log-odds
    theta with y[g] ~ Binomial(n[g], logistic(theta)) for every g, by the trapezoid rule on
    40,001 points of [-15, 15] (scipy's densities, none of the engine's code). The posterior
    sd is >= 0.2 here, the spacing 7.5e-4: the rule's errors are < 1e-6 sd."""
    from shrinksim.reference_grid import QUANTILE_PROBS

    theta = np.linspace(-15.0, 15.0, 40_001)
    log_post = parse_prior(prior, "theta").log_density(theta)
    log_post += sum(stats.binom.logpmf(a, b, expit(theta)) for a, b in zip(y, n, strict=True))
    density = np.exp(log_post - log_post.max())
    step = theta[1] - theta[0]
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * step)])
    mass = cdf[-1]
    row = {"mean": float(np.sum(theta * density) * step / mass)}
    for p in QUANTILE_PROBS:
        row[f"q{100 * p:g}"] = float(np.interp(p, cdf / mass, theta))
    return pd.Series(row)


def pooled_reference(
    structure: str, prior: str, groups: pd.DataFrame = binomial_reference.GROUPS
) -> pd.DataFrame:
    """The exact posterior of binomial complete pooling (mu: every group's counts) or no
    pooling (a product of independent one-dimensional posteriors, one per group)."""
    y, n = groups["y"].to_numpy(), groups["n"].to_numpy()
    if structure == "complete":
        return pd.DataFrame([one_dimensional_posterior(y, n, prior)], index=["mu"])
    rows = [one_dimensional_posterior(y[[g]], n[[g]], prior) for g in range(len(y))]
    return pd.DataFrame(rows, index=[f"theta[{g + 1}]" for g in range(len(y))])


def reference_of(fit: tuple[str, str]) -> pd.DataFrame:
    kind, prior = fit
    if kind == "binomial":
        return binomial_reference.exact(binomial_reference.PRIORS[prior])
    if kind in ("complete", "no"):
        return pooled_reference(kind, POOLED_PRIOR)
    return families_reference.exact(kind.removesuffix("_marginal"), prior)


FITS = [
    *(("binomial", p) for p in BINOMIAL_PRIORS),
    *(
        (f, p)
        for f in ("poisson", "gaussian_se", "gaussian_se_marginal", "gaussian_marginal")
        for p in FAMILY_PRIORS
    ),
    ("complete", "student_t"),
    ("no", "student_t"),
]


@pytest.mark.parametrize("fit", FITS, ids=["-".join(f) for f in FITS])
def test_draws_match_the_exact_reference(nutpie_fits, fit):
    """Every mean and quantile within 4.5 MCSE of the exact posterior (module docstring);
    at most :data:`MAX_DIVERGENCES` divergent transitions."""
    draws, divergences = nutpie_fits[fit]
    scores = z_scores(draws, reference_of(fit))
    print(f"\n{'-'.join(fit)}: max |z| = {scores.abs().to_numpy().max():.2f}, {divergences} div.")
    print(scores.round(2))
    assert divergences <= MAX_DIVERGENCES
    assert (scores.abs() < TOLERANCE).all().all(), scores.round(2)


WRONG = {
    "binomial": "cauchy(0, 5) on tau, not normal(0, 1)",
    "poisson": families_reference.WRONG["poisson"],
    "gaussian_se": families_reference.WRONG["gaussian_se"],
    "gaussian_se_marginal": families_reference.WRONG["gaussian_se"],
    "gaussian_marginal": families_reference.WRONG["gaussian"],
    "complete": "the last group left out (an off-by-one)",
    "no": f"{WRONG_POOLED_PRIOR} on theta, not {POOLED_PRIOR}",
}
"""The reference of a plausible mistake each fit must be told apart from."""


@pytest.mark.parametrize("kind", WRONG)
def test_the_comparison_detects_a_mistake(nutpie_fits, kind):
    """Negative control: the fits under normal(0, 1) on tau (or student_t on mu / theta)
    against the reference of a mistake (:data:`WRONG`): the tolerance tells them apart."""
    if kind == "binomial":
        draws, wrong = (
            nutpie_fits[kind, "normal"],
            binomial_reference.exact(binomial_reference.PRIORS["cauchy"]),
        )
    elif kind == "complete":
        groups = binomial_reference.GROUPS.iloc[:-1]
        draws, wrong = nutpie_fits[kind, "student_t"], pooled_reference(kind, POOLED_PRIOR, groups)
    elif kind == "no":
        draws, wrong = nutpie_fits[kind, "student_t"], pooled_reference(kind, WRONG_POOLED_PRIOR)
    else:
        family = kind.removesuffix("_marginal")
        draws, wrong = nutpie_fits[kind, "normal"], families_reference.wrong_reference(family)
    scores = z_scores(draws[0], wrong)
    # nanmax: a reference quantile outside every draw makes that indicator's ESS undefined
    print(f"\n{kind}, {WRONG[kind]}: max |z| = {np.nanmax(scores.abs().to_numpy()):.1f}")
    assert (scores.abs() > TOLERANCE).any().any()


# --- 3. the engine contract ----------------------------------------------------------------

SMALL = SamplerSettings(chains=2, warmup=150, draws=60, adapt_delta=0.9, max_treedepth=10)
CONTRACT_PRIORS = ("student_t(3, 0, 2.5)", "normal(0, 1)")
LOG_LIK_TOL = 1e-8  # the same closed form in Stan and numpy: floating-point agreement


@pytest.fixture(scope="module")
def contract_fits(compile_program) -> dict[tuple[str, str, bool], object]:
    """Small fits of every program by both engines, with and without ``compute_log_lik``:
    by (engine, program, log_lik)."""
    out = {}
    nutpie = make_engine("nutpie", cache_dir=CACHE, model_dir=".")
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as pystan:
        for i, program in enumerate(PROGRAMS):
            code = program_source(REPO / "stan" / f"{program}.stan")
            compiled = {
                "pystan": compile_program(program),
                "nutpie": nutpie.compile(code, program, example_data(program)),
            }
            mu, tau = (parse_prior(text, "prior") for text in CONTRACT_PRIORS)
            for flag in (True, False):
                data = stan_data(program, DATA[family_of(program).name], mu, tau, log_lik=flag)
                for name, engine in (("pystan", pystan), ("nutpie", nutpie)):
                    out[name, program, flag] = engine.sample(
                        compiled[name], data, SMALL, seed=40 + i
                    )
    return out


@pytest.mark.parametrize("program", PROGRAMS)
def test_draws_have_pystans_names_and_shapes(contract_fits, program):
    """Draws.params: the names and shapes (chains, draws, *dims) PyStan's engine returns for
    the same program and data, ``log_lik`` (chains, draws, G) with compute_log_lik and
    (chains, draws, 0) without; Draws.sampler: every SAMPLER_VARIABLES, (chains, draws),
    with values a NUTS sampler can have (tree depth <= max_treedepth, < 2^(depth + 1)
    leapfrog steps of a tree of that depth and of the subtree it rejected, as Stan counts
    them)."""
    for flag in (True, False):
        ours, stan = contract_fits["nutpie", program, flag], contract_fits["pystan", program, flag]
        assert {k: v.shape for k, v in ours.params.items()} == {
            k: v.shape for k, v in stan.params.items()
        }
        assert set(ours.sampler) == set(SAMPLER_VARIABLES) == set(stan.sampler)
        for name in SAMPLER_VARIABLES:
            assert ours.sampler[name].shape == (SMALL.chains, SMALL.draws)
        s = ours.sampler
        assert set(np.unique(s["divergent__"])) <= {0.0, 1.0}
        assert np.all((s["treedepth__"] >= 0) & (s["treedepth__"] <= SMALL.max_treedepth))
        # a tree of depth d has 2^d - 1 steps, plus < 2^d of a last subtree that U-turns
        steps = s["n_leapfrog__"]
        assert np.all((steps >= 1) & (steps <= 2 ** (s["treedepth__"] + 1) - 1))
        assert np.all(np.isfinite(s["energy__"])) and ours.seconds > 0


def _theta_params(program: str, draws) -> dict[str, np.ndarray]:
    names = {
        "partial": ("mu", "tau", "z"),
        "no": ("theta",),
        "complete": ("mu",),
        "marginal": ("mu", "tau", "theta"),
        "gaussian_marginal": ("mu", "tau", "sigma", "theta"),
        "gaussian_no": ("theta", "sigma"),
        "gaussian_complete": ("mu", "sigma"),
    }
    return {name: draws.params[name] for name in names[PROGRAMS[program].structure]}


@pytest.mark.parametrize("program", PROGRAMS)
def test_log_lik_is_what_the_stan_program_writes(contract_fits, program):
    """The engine's ``log_lik()`` at PyStan's draws of mu, tau, z (or theta) equals the
    program's own generated ``log_lik`` at those draws (1e-8 relative: the same closed
    form); and the nutpie fit's ``log_lik`` is scipy's log-pmf / log-pdf at its own draws
    (the plumbing of ``sample``), with the same tolerance."""
    stan = contract_fits["pystan", program, True]
    mu, tau = (parse_prior(text, "prior") for text in CONTRACT_PRIORS)
    groups = DATA[family_of(program).name]
    block = data_block(PROGRAMS[program], stan_data(program, groups, mu, tau, log_lik=True))
    computed = log_lik(PROGRAMS[program], _theta_params(program, stan), block)
    np.testing.assert_allclose(computed, stan.params["log_lik"], rtol=LOG_LIK_TOL)
    ours = contract_fits["nutpie", program, True]
    structure = PROGRAMS[program].structure.removeprefix("gaussian_")
    structure = {"no": "none", "complete": "complete"}.get(structure, "partial")
    theta = group_draws(ours, structure, len(groups))
    family = family_of(program).name
    if family == "binomial":
        expected = stats.binom.logpmf(groups["y"].to_numpy(), groups["n"].to_numpy(), expit(theta))
    elif family == "poisson":
        expected = stats.poisson.logpmf(
            groups["y"].to_numpy(), groups["exposure"].to_numpy() * np.exp(theta)
        )
    elif family == "gaussian":  # the sum over each group's raw outcomes
        sigma = ours.params["sigma"][..., None]
        expected = np.stack(
            [
                stats.norm.logpdf(np.asarray(y)[:, None, None], theta[..., g], sigma[..., 0]).sum(0)
                for g, y in enumerate(GAUSSIAN_OUTCOMES)
            ],
            axis=-1,
        )
    else:
        expected = stats.norm.logpdf(groups["estimate"].to_numpy(), theta, groups["se"].to_numpy())
    np.testing.assert_allclose(ours.params["log_lik"], expected, rtol=LOG_LIK_TOL)


def test_log_lik_does_not_change_the_draws(contract_fits):
    """compute_log_lik only adds log_lik (as in the Stan programs, no random numbers)."""
    for program in PROGRAMS:
        on, off = contract_fits["nutpie", program, True], contract_fits["nutpie", program, False]
        for name in _theta_params(program, on):
            np.testing.assert_array_equal(on.params[name], off.params[name])


def test_same_seed_same_draws_other_seed_other_draws():
    """Bit-for-bit the same draws and sampler variables with the same seed (a fresh engine
    and compile, as a rerun of a fitting job), different draws with another seed."""
    program = "partial_pooling"
    data = stan_data(program, DATA["binomial"], *(parse_prior(t, "prior") for t in CONTRACT_PRIORS))
    code = program_source(REPO / "stan" / f"{program}.stan")

    def run(seed: int):
        engine = make_engine("nutpie", cache_dir=CACHE, model_dir=".")
        return engine.sample(
            engine.compile(code, program, example_data(program)), data, SMALL, seed=seed
        )

    first, again, other = run(7), run(7), run(8)
    for name in first.params:
        np.testing.assert_array_equal(first.params[name], again.params[name])
    for name in SAMPLER_VARIABLES:
        np.testing.assert_array_equal(first.sampler[name], again.sampler[name])
    assert not np.array_equal(first.params["mu"], other.params["mu"])
    assert not np.array_equal(first.params["z"], other.params["z"])


def test_expand_gives_draws_on_stans_scale(contract_fits):
    """Through real samples: tau (expanded as exp of the unconstrained log tau) is > 0 in
    every partial-pooling draw, while mu and z, written as they are, take both signs; no
    pooling's theta, also written as it is, takes negative values where the data say so
    (binomial groups with y / n < 1/2: posterior mostly below 0)."""
    for program in PROGRAMS:
        draws = contract_fits["nutpie", program, False]
        structure = PROGRAMS[program].structure
        if structure in ("partial", "marginal"):
            assert np.all(draws.params["tau"] > 0)
        if structure == "partial":
            assert draws.params["z"].min() < 0 < draws.params["z"].max()
        if structure == "no" and program == "no_pooling":
            groups = DATA["binomial"]
            below = (groups["y"] / groups["n"] < 0.5).to_numpy()
            assert np.all(np.median(draws.params["theta"], axis=(0, 1))[below] < 0)


def test_max_treedepth_is_honoured_and_counted_as_stan_does(compile_program):
    """max_treedepth = 2 on the eight schools (whose trees want depth 3-4): both engines
    reach depth 2 and never exceed it, and take at most 2^3 - 1 = 7 leapfrog steps; so
    ``treedepth__`` means the same in both (the study counts hits of max_treedepth)."""
    program = "gaussian_se_partial_pooling"
    capped = SamplerSettings(chains=2, warmup=150, draws=60, adapt_delta=0.9, max_treedepth=2)
    data = stan_data(program, DATA["gaussian_se"], *(parse_prior(t, "p") for t in CONTRACT_PRIORS))
    code = program_source(REPO / "stan" / f"{program}.stan")
    nutpie = make_engine("nutpie", cache_dir=CACHE, model_dir=".")
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as pystan:
        fits = {
            "pystan": pystan.sample(compile_program(program), data, capped, seed=3),
            "nutpie": nutpie.sample(
                nutpie.compile(code, program, example_data(program)), data, capped, seed=3
            ),
        }
    for name, draws in fits.items():
        assert draws.sampler["treedepth__"].max() == 2, name
        assert draws.sampler["n_leapfrog__"].max() <= 7, name


@pytest.mark.parametrize("program", ["gaussian_partial_pooling", "partial_pooling_bernoulli"])
def test_an_unsupported_program_is_refused_by_name(program):
    engine = make_engine("nutpie", cache_dir=CACHE, model_dir=".")
    code = program_source(REPO / "stan" / f"{program}.stan")
    with pytest.raises(EngineError, match=program):
        engine.compile(code, program, example_data(program))


def test_resolve_engine_accepts_nutpie_here():
    assert resolve_engine("nutpie") == "nutpie"
