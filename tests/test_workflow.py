"""The whole workflow on a tiny config, run by `snakemake` in a scratch copy of the repo."""

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
TINY = REPO / "tests/configs/tiny.yaml"


def snakemake(
    workdir: Path, *args: str, config: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run the venv's snakemake in ``workdir`` with the tiny config; output captured."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [
        str(Path(sys.executable).parent / "snakemake"),
        *args,
        "--cores",
        "2",
        "--configfile",
        str(TINY),
        "--config",
        f"cache_dir={CACHE}",
        *config,
    ]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A scratch checkout (links to the workflow sources) after one complete tiny run."""
    workdir = tmp_path_factory.mktemp("study")
    for name in ("Snakefile", "config.yaml", "workflow", "stan", "profiles"):
        (workdir / name).symlink_to(REPO / name)
    done = snakemake(workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_every_output_exists_with_declared_schema(study):
    results = study / "results"
    for name in ("shrinkage_vs_n.png", "estimate_vs_observed.png"):
        assert (results / "figures" / name).stat().st_size > 10_000
    for name, schema in [
        ("groups", tables.GROUPS),
        ("fits", tables.FITS),
        ("shrinkage", tables.SHRINKAGE),
        ("cells", tables.CELLS),
    ]:
        assert pq.read_schema(results / "summary" / f"{name}.parquet").remove_metadata() == schema
    fits = pq.read_table(results / "summary/fits.parquet").to_pandas()
    # tiny.yaml: 2 n x 1 tau x (2 priors + 2 baselines) x 2 replicates
    assert len(fits) == 16 and (fits["status"] == "ok").all()
    cells = pq.read_table(results / "summary/cells.parquet").to_pandas()
    assert (cells.loc[cells["model"] == "complete", "shrinkage_mean"] > 0.999).all()
    partial = cells[cells["model"] == "partial"].groupby("n_per_group")["shrinkage_mean"].mean()
    assert partial[10] > partial[40]  # more data per group, less shrinkage
    assert not list(results.rglob("*.tmp")), "temporary files left behind"


def test_second_run_has_nothing_to_do(study):
    again = snakemake(study, "--dry-run")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_rerun_of_one_cell_gives_identical_numbers(study):
    fits = next((study / "results/fits").rglob("model~partial/batch~0/fits.parquet"))
    before = pq.read_table(fits).to_pandas().drop(columns="sampling_seconds")
    fits.unlink()
    again = snakemake(study, str(fits.relative_to(study)))
    assert again.returncode == 0, again.stderr[-3000:]
    after = pq.read_table(fits).to_pandas().drop(columns="sampling_seconds")
    assert before.equals(after)


def test_lint_is_clean():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "--lint"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Congratulations" in done.stdout + done.stderr, done.stdout + done.stderr


def test_bad_config_stops_before_any_job(tmp_path):
    for name in ("Snakefile", "config.yaml", "workflow", "stan", "profiles"):
        (tmp_path / name).symlink_to(REPO / name)
    done = snakemake(tmp_path, "--dry-run", config=("replicates=0", "engine=stan"))
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "replicates: 0 must be >= 1" in said
    assert "engine: 'stan' is not one of" in said
    assert not (tmp_path / "results").exists()
