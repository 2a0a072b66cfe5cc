"""The calibration rules on a tiny SBC design, run by `snakemake` in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import CACHE, REPO
from shrinksim import tables

pytestmark = pytest.mark.slow
CONFIGS = [REPO / "tests/configs/tiny.yaml", REPO / "tests/configs/tiny_sbc.yaml"]


def snakemake(workdir: Path, *args: str, sbc: bool = True) -> subprocess.CompletedProcess:
    """The venv's snakemake in ``workdir`` on the tiny configs (the SBC one if ``sbc``)."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    configs = CONFIGS if sbc else CONFIGS[:1]
    cmd = [str(Path(sys.executable).parent / "snakemake"), *args, "--cores", "2"]
    cmd += ["--configfile", *map(str, configs), "--config", f"cache_dir={CACHE}"]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A scratch directory (links to the workflow sources) after `snakemake calibration`."""
    workdir = tmp_path_factory.mktemp("sbc")
    for name in ("Snakefile", "config.yaml", "workflow", "stan", "profiles"):
        (workdir / name).symlink_to(REPO / name)
    done = snakemake(workdir, "calibration")
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


def test_rerun_of_one_batch_gives_identical_ranks(study):
    batch = next((study / "results/sbc/fits").rglob("batch~1.parquet"))
    before = pq.read_table(batch).to_pandas().drop(columns="sampling_seconds")
    batch.unlink()
    again = snakemake(study, str(batch.relative_to(study)))
    assert again.returncode == 0, again.stderr[-3000:]
    after = pq.read_table(batch).to_pandas().drop(columns="sampling_seconds")
    assert before.equals(after)


def test_rule_all_has_calibration_only_when_enabled(study):
    enabled = snakemake(study, "--dry-run", "--forceall")
    disabled = snakemake(study, "--dry-run", "--forceall", sbc=False)
    assert enabled.returncode == 0 and disabled.returncode == 0, disabled.stderr[-3000:]
    assert "sbc_plot" in enabled.stdout and "sbc_plot" not in disabled.stdout
