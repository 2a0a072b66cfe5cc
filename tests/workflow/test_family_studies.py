"""The grid study of the Poisson and Gaussian families end to end: snakemake on a tiny grid
(n = 10 and 40, 40 groups, tau = 0.5, partial pooling under brms' default prior and no
pooling, 2 replicates), in a scratch checkout.

Checks: every summary table with its schema; the family's programs compiled (and no other);
the theory column is the family's curve (exact arithmetic: the same function of n, tau and
the population); the data columns of the family filled and the others empty; sigma estimated
for gaussian near its true value 1 (within 0.35: 40 groups x 10-40 outcomes give a posterior sd
of sigma below 0.1, so this fails only for a wrong likelihood); shrinkage smaller at n = 40
than at n = 10 in the mean over replicates, as the theory curve says (B = 0.67 vs 0.33 for
poisson, 0.29 vs 0.09 for gaussian), and figures that name the family's scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import TINY, checkout, snakemake
from shrinksim import tables
from shrinksim.families import OUTCOME_FAMILIES
from shrinksim.study.outcome import StudyOutcome

GRID = (
    "grid: {n: [10, 40], groups: [40], tau: [0.5], prior: [brms_default], model: [partial, none]}"
)
"""Merged over tiny.yaml (a file: --config would read the numbers as text)."""


@pytest.fixture(scope="module", params=["poisson", "gaussian"])
def family_study(request, tmp_path_factory) -> tuple[str, Path]:
    workdir = checkout(tmp_path_factory.mktemp(request.param))
    study = workdir / "family.yaml"
    study.write_text(f"family: {request.param}\n{GRID}\n")
    done = snakemake(workdir, configs=(TINY, study))
    assert done.returncode == 0, done.stderr[-4000:]
    return request.param, workdir


def test_tables_programs_theory_and_data_columns(family_study):
    family, workdir = family_study
    results = workdir / "results"
    for name, schema in (("per_fit", tables.PER_FIT), ("cells", tables.CELLS)):
        assert pq.read_schema(results / f"summary/{name}.parquet").names == schema.names
    compiled = {path.stem for path in (results / "models/pystan").glob("*.json")}
    spec = OUTCOME_FAMILIES[family]
    assert compiled == {spec.study_program("partial"), spec.study_program("none")}
    cells = pq.read_table(results / "summary/cells.parquet").to_pandas()
    outcome = StudyOutcome.from_config(
        {"family": family, "simulation": {"p0": 0.4, "rate": 0.2, "mean": 0.0, "sigma": 1.0}}
    )
    np.testing.assert_array_equal(
        cells["shrinkage_theory"], outcome.theory(cells["n_per_group"], 0.5)
    )
    partial = cells[cells["model"] == "partial"].set_index("n_per_group")["shrinkage_mean"]
    assert partial[10] > partial[40]
    groups = pq.read_table(results / "summary/example_groups.parquet").to_pandas()
    for column in ("n", "y", "exposure", "mean", "sd"):
        filled = groups[column].notna().all()
        assert filled == (column in spec.columns), column


def test_gaussian_sigma_is_estimated(family_study):
    family, workdir = family_study
    if family != "gaussian":
        pytest.skip("sigma: gaussian only")
    fits = tables.read_tables(sorted((workdir / "results/fits").rglob("*.parquet")), tables.FITS)
    assert fits["sigma_mean"].notna().all()
    assert np.abs(fits["sigma_mean"] - 1.0).max() < 0.35


def test_figures_name_the_scale(family_study):
    family, workdir = family_study
    figures = workdir / "results/figures"
    svg = (figures / "tau_posterior.svg").read_text()
    scale = OUTCOME_FAMILIES[family].scale
    assert f"true tau ({scale} sd)" in svg
    assert "log-odds" not in svg
