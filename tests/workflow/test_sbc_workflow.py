"""The calibration rules on a tiny SBC design, run by `snakemake` in a scratch directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import CONFIGS, TINY, checkout, read_dataset, snakemake, without_timings
from shrinksim import design, tables

SBC = (TINY, CONFIGS / "tiny_sbc.yaml")
"""tiny_sbc.yaml: 1 n x 2 priors, 6 simulations in batches of 3."""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A scratch checkout after `snakemake calibration`."""
    workdir = checkout(tmp_path_factory.mktemp("sbc"))
    done = snakemake(workdir, "calibration", configs=SBC)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_calibration_outputs(study):
    results = study / "results"
    assert (results / "figures/sbc_ecdf.png").stat().st_size > 10_000
    ranks = pq.read_table(results / "sbc/ranks.parquet").to_pandas()
    tests = pq.read_table(results / "sbc/tests.parquet").to_pandas()
    assert pq.read_schema(results / "sbc/ranks.parquet").remove_metadata() == tables.SBC_RANKS
    assert pq.read_schema(results / "sbc/tests.parquet").remove_metadata() == tables.SBC_TESTS
    # tiny_sbc.yaml: 2 priors x 1 n x 6 simulations x (mu, tau, theta[1], theta[2])
    assert len(ranks) == 48 and len(tests) == 8
    assert ranks["status"].isin(["ok", "divergent"]).all()
    assert ranks["rank"].between(0, 19).all()
    assert (tests["ranked"] == 6).all() and tests["p_value"].between(0, 1).all()
    assert not list(results.rglob("*.tmp"))


def test_rank_tables_are_a_hive_dataset_of_every_batch(study):
    batches = read_dataset(study / "results/sbc/ranks")
    assert len(batches) == 48 and set(batches["batch"]) == {0, 1}
    assert set(batches["prior"]) == {"brms_default", "half_normal"}
    for (_, batch), one in batches.groupby(["prior", "batch"]):
        assert sorted(one["simulation"].unique()) == [3 * batch, 3 * batch + 1, 3 * batch + 2]


def test_rerun_of_one_batch_gives_identical_ranks(study):
    batch = Path(
        design.result_path(
            design.SBC_RANKS,
            study / "results",
            sbccell="n_per_group=10/groups=6/prior=half_normal",
            batch=1,
        )
    )
    before = without_timings(pq.read_table(batch).to_pandas())
    batch.unlink()
    again = snakemake(study, str(batch.relative_to(study)), configs=SBC)
    assert again.returncode == 0, again.stderr[-3000:]
    after = without_timings(pq.read_table(batch).to_pandas())
    pd.testing.assert_frame_equal(after, before, check_exact=True)


def test_rule_all_has_calibration_only_when_enabled(study):
    enabled = snakemake(study, "--dry-run", "--forceall", configs=SBC)
    disabled = snakemake(study, "--dry-run", "--forceall")
    assert enabled.returncode == 0 and disabled.returncode == 0, disabled.stderr[-3000:]
    assert "sbc_plot" in enabled.stdout and "sbc_plot" not in disabled.stdout
