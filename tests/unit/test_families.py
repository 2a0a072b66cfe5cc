"""The outcome families' data builder, program names and group draws (no Stan)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import FAMILY_GROUPS, REPO
from shrinksim import families
from shrinksim.engines import Draws, program_source
from shrinksim.families import DEFAULT_SIGMA_PRIOR, OUTCOME_FAMILIES, family_of
from shrinksim.fitting import example_data, group_draws, stan_data
from shrinksim.priors import parse_prior

MU = parse_prior("student_t(3, 0, 2.5)", "mu")
TAU = parse_prior("normal(0, 1)", "tau")
ALL_PROGRAMS = [p for f in OUTCOME_FAMILIES.values() for p in f.all_programs()]


def declared_data(program: str) -> list[str]:
    """Names declared in the data block of ``stan/{program}.stan``, in order."""
    code = program_source(REPO / "stan" / f"{program}.stan")
    block = re.search(r"^data \{\n(.*?)^\}", code, re.S | re.M).group(1)
    return re.findall(r"^\s*[^/\n]*?\s(\w+);", block, re.M)


@pytest.mark.parametrize("program", ALL_PROGRAMS)
def test_builder_gives_every_program_exactly_its_data(program):
    """The builder's names are the program's data block (compiling checks types, later)."""
    assert sorted(example_data(program)) == sorted(declared_data(program))
    assert family_of(program).name in OUTCOME_FAMILIES


def test_binomial_data_unchanged():
    groups = pd.DataFrame({"group": [4, 9], "n": [10, 3], "y": [2, 3]})
    assert stan_data("partial_pooling", groups, MU, TAU, log_lik=True) == {
        "G": 2,
        "mu_prior_family": 1,
        "mu_prior_args": [3.0, 0.0, 2.5],
        "n": [10, 3],
        "y": [2, 3],
        "tau_prior_family": 2,
        "tau_prior_args": [0.0, 0.0, 1.0],
        "compute_log_lik": 1,
    }
    assert (
        list(stan_data("partial_pooling_bernoulli", groups, MU, TAU)["group"]) == [1] * 10 + [2] * 3
    )


def test_poisson_data():
    data = stan_data("poisson_partial_pooling", FAMILY_GROUPS["poisson"], MU, TAU)
    assert data["G"] == 8 and data["y"][:3] == [0, 3, 7] and data["exposure"][0] == 2.5
    assert data["tau_prior_family"] == 2 and data["compute_log_lik"] == 0
    assert "tau_prior_family" not in stan_data("poisson_no_pooling", FAMILY_GROUPS["poisson"], MU)


def test_gaussian_data_single_outcome_groups_and_sigma_prior():
    groups = pd.DataFrame({"n": [1, 3], "mean": [0.5, -1.0], "sd": [np.nan, 2.0]})
    data = stan_data("gaussian_complete_pooling", groups, MU)
    assert data["n"] == [1, 3] and data["y_mean"] == [0.5, -1.0] and data["y_sd"] == [0.0, 2.0]
    assert data["sigma_prior_family"] == 1 and data["sigma_prior_args"] == [3.0, 0.0, 2.5]
    assert DEFAULT_SIGMA_PRIOR == parse_prior("student_t(3, 0, 2.5)", "sigma")
    given = stan_data("gaussian_no_pooling", groups, MU, sigma_prior=TAU)
    assert given["sigma_prior_family"] == 2
    # a family without sigma ignores it, as no pooling ignores tau's prior
    se = stan_data("gaussian_se_no_pooling", FAMILY_GROUPS["gaussian_se"], MU, sigma_prior=TAU)
    assert "sigma_prior_family" not in se and se["se"][0] == 15.0


def test_partial_pooling_needs_a_tau_prior():
    with pytest.raises(ValueError, match="needs a prior on tau"):
        stan_data("gaussian_se_partial_pooling_marginal", FAMILY_GROUPS["gaussian_se"], MU)


@pytest.mark.parametrize(
    ("family", "column", "value", "message"),
    [
        ("poisson", "exposure", 0.0, "'exposure' must be > 0"),
        ("poisson", "y", 1.5, "'y' must be a whole number"),
        ("poisson", "y", -1, "'y' must be a whole number, 0 to"),
        ("gaussian", "sd", np.nan, "'sd' must be >= 0"),  # row 1 has n = 2
        ("gaussian", "n", 0, "'n' must be a whole number, 1 to"),
        ("gaussian", "mean", np.inf, "'mean' must be finite"),
        ("gaussian_se", "se", 0.0, "'se' must be > 0"),
    ],
)
def test_bad_groups_are_named(family, column, value, message):
    groups = FAMILY_GROUPS[family].copy()
    groups[column] = groups[column].astype(float)
    groups.loc[1, column] = value
    program = OUTCOME_FAMILIES[family].program("none")
    with pytest.raises(ValueError, match=re.escape(message) + r".*rows \[1\]"):
        stan_data(program, groups, MU)


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"missing \['exposure'\]"):
        stan_data("poisson_no_pooling", pd.DataFrame({"y": [1]}), MU)


def test_program_names():
    gaussian = OUTCOME_FAMILIES["gaussian"]
    assert gaussian.program("partial") == "gaussian_partial_pooling"
    assert gaussian.program("partial", marginal=True) == "gaussian_partial_pooling_marginal"
    assert OUTCOME_FAMILIES["poisson"].program("complete") == "poisson_complete_pooling"
    with pytest.raises(ValueError, match="no marginalised program"):
        OUTCOME_FAMILIES["poisson"].program("partial", marginal=True)
    assert OUTCOME_FAMILIES["binomial"].programs == {
        "partial": "partial_pooling",
        "none": "no_pooling",
        "complete": "complete_pooling",
    }
    for program in ALL_PROGRAMS:
        assert (REPO / "stan" / f"{program}.stan").exists()
    assert families.is_binomial("centred") and not families.is_binomial("poisson_no_pooling")


def test_group_draws_from_theta_when_the_program_writes_it():
    rng = np.random.default_rng(0)
    mu, tau, z = rng.normal(size=(2, 5)), rng.random((2, 5)), rng.normal(size=(2, 5, 3))
    sampler = {k: np.zeros((2, 5)) for k in ("divergent__", "treedepth__", "energy__")}
    centred = Draws({"mu": mu, "tau": tau, "z": z}, sampler, 0.0)
    np.testing.assert_array_equal(
        group_draws(centred, "partial", 3), mu[..., None] + tau[..., None] * z
    )
    theta = rng.normal(size=(2, 5, 3))
    marginal = Draws({"mu": mu, "tau": tau, "theta": theta}, sampler, 0.0)
    assert group_draws(marginal, "partial", 3) is theta
    assert group_draws(marginal, "complete", 3).shape == (2, 5, 3)


def test_observed_effect():
    poisson = families.observed_effect(OUTCOME_FAMILIES["poisson"], FAMILY_GROUPS["poisson"])
    assert poisson[:2] == pytest.approx([np.log(0.5 / 2.5), np.log(3.5 / 4.0)])
    gaussian = OUTCOME_FAMILIES["gaussian"]
    assert families.observed_effect(gaussian, FAMILY_GROUPS["gaussian"])[0] == 0.84
    binomial = pd.DataFrame({"n": [10], "y": [2]})
    assert families.observed_effect(OUTCOME_FAMILIES["binomial"], binomial) == pytest.approx(
        [np.log(2.5 / 8.5)]
    )
