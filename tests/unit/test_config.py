"""Configuration and design: presets are valid, the grid expands as documented, seeds and
seed keys are stable, bad input is named."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import REPO
from shrinksim import design, settings
from shrinksim.design import DataCell, FitCell
from shrinksim.sbc import design as sbc_design
from shrinksim.settings import ConfigError, did_you_mean, merged


def test_shipped_configs_are_valid(config, schema):
    settings.check(config, schema)
    for preset in sorted((REPO / "config").glob("*.yaml")):
        settings.check(merged(config, settings.load_yaml(preset)), schema)
    settings.check(merged(config, settings.load_yaml(REPO / "tests/configs/tiny.yaml")), schema)


def test_grid_expands_partial_per_prior_and_baselines_once(config):
    cells = design.fit_cells(config)
    grid = config["grid"]
    data_cells = len(grid["n"]) * len(grid["groups"]) * len(grid["tau"])
    assert len(design.data_cells(config)) == data_cells
    assert len(cells) == data_cells * (len(grid["prior"]) + 2)
    assert {c.prior for c in cells if c.model != "partial"} == {design.NO_PRIOR}
    assert len(set(cells)) == len(cells)


def test_seed_keys_never_change():
    """The keys feed every seed: a changed key changes every number of the study."""
    cell = FitCell(DataCell(35, 100, "tau", 0.25), "weak", "partial")
    assert cell.data.key == "n~35/groups~100/tau~0.25"
    assert cell.key == "n~35/groups~100/tau~0.25/prior~weak/model~partial"
    assert DataCell(10, 8, "p_sd", 0.05).key == "n~10/groups~8/p_sd~0.05"
    assert DataCell(10, 8, "tau", 1.0).key == "n~10/groups~8/tau~1"


def test_keys_and_paths_round_trip():
    cell = FitCell(DataCell(35, 100, "tau", 0.25), "weak", "partial")
    assert FitCell.from_key(cell.key) == cell
    assert cell.data.path == "n_per_group=35/groups=100/tau=0.25"
    assert DataCell.from_path(cell.data.path) == cell.data
    other = DataCell(35, 100, "p_sd", 0.05)
    assert DataCell.from_key(other.key) == other
    assert DataCell.from_path(other.path) == other
    assert other.path == "n_per_group=35/groups=100/p_sd=0.05"


def test_result_paths_fill_the_templates_and_keep_other_wildcards():
    cell = DataCell(35, 100, "tau", 0.25)
    path = design.result_path(design.FIT_TABLE, "out", table="fits", datacell=cell.path, batch=2)
    assert path == "out/fits/n_per_group=35/groups=100/tau=0.25/batch=2/part-0.parquet"
    assert design.result_path(design.FIT_TABLE, table="draws") == (
        "results/draws/{datacell}/batch={batch}/part-0.parquet"
    )
    assert design.results_folder("remote/prefix/results/fits/x.parquet") == "remote/prefix/results"
    with pytest.raises(ValueError, match="not under results/"):
        design.results_folder("elsewhere/fits.parquet")


def test_fit_jobs_cover_every_data_cell_and_batch_once(config):
    config |= {"replicates": 7, "batch_size": 3}
    jobs = design.fit_jobs(config)
    assert len(jobs) == len(design.data_cells(config)) * 3 == len(set(jobs))
    files = design.fit_job_tables(config, "groups", "r")
    assert files[:2] == [
        f"r/groups/{jobs[0][0].path}/batch=0/part-0.parquet",
        f"r/groups/{jobs[0][0].path}/batch=1/part-0.parquet",
    ]
    first = design.fit_job_tables(config, "draws", "r", batches=[0])
    assert len(first) == len(design.data_cells(config)) and all("/batch=0/" in f for f in first)


def _pattern(template: str) -> re.Pattern:
    """The regular expression of a rule's output under the wildcard constraints (a wildcard
    without a constraint is a KeyError: Snakemake would let it match anything)."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile(
        "".join(
            f"(?:{design.WILDCARDS[part]})" if i % 2 else re.escape(part)
            for i, part in enumerate(parts)
        )
    )


def test_every_result_path_matches_its_wildcard_constraints(config):
    """Each path the design lists must match its rule's output under the wildcard
    constraints, or Snakemake finds no rule to make it."""
    config["grid"]["p_sd"] = [0.05]
    config["userdata"] |= {"scale": [1, 0.5, 2.5, 1e-5], "tau_quantiles": [0.25, 0.75]}
    cell = DataCell(10, 8, "p_sd", 0.05).path
    cases = [  # (the rule's output, what the design lists)
        (design.FIT_TABLE, {"table": "fits"}, design.fit_job_tables(config, "fits", "r")),
        (design.DATA, {}, [design.result_path(design.DATA, "r", datacell=cell, batch=10)]),
        (design.SBC_RANKS, {}, sbc_design.rank_files(config, "r")),
        (
            design.USERDATA_FIT,
            {"table": "groups"},
            design.userdata_fit_files(config, "groups", "r"),
        ),
        (
            design.USERDATA_DESIGN_FIT,
            {"table": "fits"},
            design.userdata_design_fit_files(config, "fits", "r"),
        ),
    ]
    for template, filled_by_rule, paths in cases:
        pattern = _pattern(design.result_path(template, "r", **filled_by_rule))
        assert paths, template
        for path in paths:
            assert pattern.fullmatch(path), (template, path)
    assert not _pattern(design.FIT_TABLE.replace("{table}", "fits")).fullmatch(
        "fits/n~10/groups~8/tau~0.5/batch=0/part-0.parquet"  # the old layout does not match
    )


def test_batches_cover_indices_once(config):
    assert design.batches(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert design.batches(6, 3) == [[0, 1, 2], [3, 4, 5]]
    assert design.batches(2, 5) == [[0, 1]]
    config |= {"replicates": 7, "batch_size": 3}
    assert design.replicate_batches(config) == [[0, 1, 2], [3, 4, 5], [6]]


def test_did_you_mean():
    assert did_you_mean("replicats", ["replicates", "seed"]) == " (did you mean 'replicates'?)"
    assert did_you_mean("xyz", ["replicates", "seed"]) == ""


def test_seeds_depend_on_cell_and_replicate_only():
    a = design.seed_sequence(1, "n~35/groups~100/tau~0.25", 3).generate_state(4)
    b = design.seed_sequence(1, "n~35/groups~100/tau~0.25", 3).generate_state(4)
    c = design.seed_sequence(1, "n~35/groups~100/tau~0.25", 4).generate_state(4)
    d = design.seed_sequence(1, "n~36/groups~100/tau~0.25", 3).generate_state(4)
    e = design.seed_sequence(2, "n~35/groups~100/tau~0.25", 3).generate_state(4)
    assert np.array_equal(a, b)
    assert not any(np.array_equal(a, x) for x in (c, d, e))
    assert 0 <= design.stan_seed(1, "x", 0) < 2**31


SEED_STATE = [2831447404, 4249827446]
STAN_SEED = 378217107


def test_seeds_are_the_same_as_ever():
    """Pinned values: the seed of every simulated data set and fit derives from these."""
    assert (
        design.seed_sequence(1, "n~35/groups~100/tau~0.25", 3).generate_state(2).tolist()
        == SEED_STATE
    )
    assert (
        design.stan_seed(20240501, "n~35/groups~100/tau~0.25/prior~weak/model~partial", 0)
        == STAN_SEED
    )


def test_n_sd_absolute_or_percentage(config):
    config["simulation"]["n_sd"] = "20%"
    assert design.n_sd(config, 50) == pytest.approx(10)
    config["simulation"]["n_sd"] = 5
    assert design.n_sd(config, 50) == 5


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
    ({"engine": "stan"}, "engine: 'stan' is not one of ['auto', 'cmdstanpy', 'pystan', 'nutpie']"),
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
        settings.check(merged(config, override), schema)
    assert expected in str(err.value)


def test_every_problem_reported_on_its_own_line(config, schema):
    bad = merged(config, {"replicates": 0, "engine": "stan", "grid": {"n": [-1]}})
    lines = str(pytest.raises(ConfigError, settings.check, bad, schema).value).splitlines()
    assert len(lines) == 4  # the heading and one line per problem


def test_large_grid_passes_when_confirmed(config, schema):
    settings.check(merged(config, {"replicates": 1000, "confirm_large_grid": True}), schema)


def test_merged_is_deep_and_leaves_base_alone():
    base = {"a": 1, "sampler": {"chains": 4, "draws": 500}}
    out = merged(base, {"sampler": {"draws": 1000}, "b": 2})
    assert out == {"a": 1, "b": 2, "sampler": {"chains": 4, "draws": 1000}}
    assert base["sampler"]["draws"] == 500


def test_results_folder_is_a_whole_path_component():
    """A storage prefix whose folder name ends in ``results`` is not the results folder."""
    path = "store/my_results/results/fits/x.parquet"
    assert design.results_folder(path) == "store/my_results/results"
