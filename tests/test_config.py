"""Configuration: presets are valid, the grid expands as documented, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO, merged
from shrinksim import config as study
from shrinksim.config import ConfigError, DataCell, FitCell, Prior, parse_prior


def test_shipped_configs_are_valid(config, schema):
    study.check(config, schema)
    for preset in sorted((REPO / "config").glob("*.yaml")):
        study.check(merged(config, study.load_yaml(preset)), schema)
    study.check(merged(config, study.load_yaml(REPO / "tests/configs/tiny.yaml")), schema)


def test_grid_expands_partial_per_prior_and_baselines_once(config):
    cells = study.fit_cells(config)
    grid = config["grid"]
    data_cells = len(grid["n"]) * len(grid["groups"]) * len(grid["tau"])
    assert len(study.data_cells(config)) == data_cells
    assert len(cells) == data_cells * (len(grid["prior"]) + 2)
    assert {c.prior for c in cells if c.model != "partial"} == {study.NO_PRIOR}
    assert len(set(cells)) == len(cells)


def test_paths_round_trip():
    cell = FitCell(DataCell(35, 100, "tau", 0.25), "weak", "partial")
    assert cell.path == "n~35/groups~100/tau~0.25/prior~weak/model~partial"
    assert FitCell.from_path(cell.path) == cell
    other = DataCell(35, 100, "p_sd", 0.05)
    assert DataCell.from_path(other.path) == other


def test_batches_cover_replicates_once(config):
    config |= {"replicates": 7, "batch_size": 3}
    assert study.batches(config) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize(
    ("text", "family", "args", "encoded"),
    [
        ("student_t(3, 0, 2.5)", 1, (3, 0, 2.5), [3, 0, 2.5]),
        ("normal(0, 1)", 2, (0, 1), [0, 0, 1]),
        ("cauchy(0,5)", 3, (0, 5), [0, 0, 5]),
        ("exponential(1)", 4, (1,), [0, 0, 1]),
    ],
)
def test_prior_encoding_as_stan_data(text, family, args, encoded):
    prior = parse_prior(text, "priors.x")
    assert prior == Prior(prior.family, tuple(float(a) for a in args))
    assert prior.stan_data("tau_prior") == {"tau_prior_family": family, "tau_prior_args": encoded}


def test_seeds_depend_on_cell_and_replicate_only():
    a = study.seed_sequence(1, "n~35/groups~100/tau~0.25", 3).generate_state(4)
    b = study.seed_sequence(1, "n~35/groups~100/tau~0.25", 3).generate_state(4)
    c = study.seed_sequence(1, "n~35/groups~100/tau~0.25", 4).generate_state(4)
    d = study.seed_sequence(1, "n~36/groups~100/tau~0.25", 3).generate_state(4)
    e = study.seed_sequence(2, "n~35/groups~100/tau~0.25", 3).generate_state(4)
    assert np.array_equal(a, b)
    assert not any(np.array_equal(a, x) for x in (c, d, e))
    assert 0 <= study.stan_seed(1, "x", 0) < 2**31


def test_n_sd_absolute_or_percentage(config):
    config["simulation"]["n_sd"] = "20%"
    assert study.n_sd(config, 50) == pytest.approx(10)
    config["simulation"]["n_sd"] = 5
    assert study.n_sd(config, 50) == 5


BAD = [
    ({"replicats": 3}, "replicats: unknown key (did you mean 'replicates'?)"),
    ({"grid": {"n": [10, -5]}}, "grid.n[1]: -5 must be >= 1"),
    ({"grid": {"n": [0]}}, "grid.n[0]: 0 must be >= 1"),
    ({"grid": {"tau": []}}, "grid.tau: must not be empty"),
    ({"grid": {"n": [10, 20, 10]}}, "grid.n: duplicate values 10"),
    (
        {"grid": {"prior": ["brms_defualt"]}},
        "grid.prior[0]: unknown prior 'brms_defualt' (did you mean 'brms_default'?)",
    ),
    (
        {"priors": {"weak": "student_t(3, 0, -10)"}},
        "priors.weak: scale and degrees of freedom must be > 0",
    ),
    ({"priors": {"weak": "gamma(2, 1)"}}, "priors.weak: unknown prior family 'gamma'"),
    ({"priors": {"weak": "normal(0)"}}, "priors.weak: normal takes 2 arguments"),
    ({"replicates": 0}, "replicates: 0 must be >= 1"),
    ({"sampler": {"adapt_delta": 1.2}}, "sampler.adapt_delta: 1.2 must be < 1"),
    ({"sampler": {"adapt_delta": 0}}, "sampler.adapt_delta: 0 must be > 0"),
    ({"sampler": {"chains": "four"}}, "sampler.chains: expected integer, got 'four'"),
    ({"engine": "stan"}, "engine: 'stan' is not one of ['auto', 'cmdstanpy', 'pystan']"),
    ({"simulation": {"control": {"n": -1}}}, "simulation.control.n: -1 must be >= 0"),
    ({"simulation": {"p0": 1.5}}, "simulation.p0: 1.5 must be < 1"),
    (
        {"simulation": {"generator": "probability_normal"}},
        "grid.p_sd: required by simulation.generator 'probability_normal'",
    ),
    ({"intercept_prior": "student_t(3, 0)"}, "intercept_prior: student_t takes 3 arguments"),
    (
        {"replicates": 1000, "grid": {"n": list(range(1, 11))}},
        "set confirm_large_grid: true if you mean it",
    ),
]


@pytest.mark.parametrize(("override", "expected"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_config_names_the_key(config, schema, override, expected):
    with pytest.raises(ConfigError) as err:
        study.check(merged(config, override), schema)
    assert expected in str(err.value)


def test_every_problem_reported_on_its_own_line(config, schema):
    bad = merged(config, {"replicates": 0, "engine": "stan", "grid": {"n": [-1]}})
    lines = str(pytest.raises(ConfigError, study.check, bad, schema).value).splitlines()
    assert len(lines) == 4  # the heading and one line per problem


def test_large_grid_passes_when_confirmed(config, schema):
    study.check(merged(config, {"replicates": 1000, "confirm_large_grid": True}), schema)
