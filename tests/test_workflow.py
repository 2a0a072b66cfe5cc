"""The whole workflow on a tiny config, run by `snakemake` in a scratch copy of the repo."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import CACHE, REPO
from shrinksim import tables

pytestmark = pytest.mark.slow
TINY = REPO / "tests/configs/tiny.yaml"
FIGURES = (
    "shrinkage_vs_n",
    "estimate_vs_observed",
    "posterior_densities",
    "tau_posterior",
    "rmse_vs_n",
    "coverage_vs_n",
    "diagnostics",
)


def command(*args: str, config: tuple[str, ...] = ()) -> list[str]:
    """The venv's snakemake with the tiny config (targets and options first)."""
    return [
        str(Path(sys.executable).parent / "snakemake"),
        *args,
        "--configfile",
        str(TINY),
        "--config",
        f"cache_dir={CACHE}",
        *config,
    ]


def environment(tmpdir: Path | None = None) -> dict[str, str]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return env | {"TMPDIR": str(tmpdir)} if tmpdir else env


def snakemake(
    workdir: Path, *args: str, config: tuple[str, ...] = (), tmpdir: Path | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` (2 cores unless ``args`` say otherwise); output captured."""
    cores = () if "--cores" in args else ("--cores", "2")
    return subprocess.run(
        command(*args, *cores, config=config),
        cwd=workdir,
        env=environment(tmpdir),
        capture_output=True,
        text=True,
        check=False,
    )


def checkout(workdir: Path) -> Path:
    """A scratch checkout: links to the workflow sources, its own results/."""
    for name in ("Snakefile", "config.yaml", "workflow", "stan", "profiles"):
        (workdir / name).symlink_to(REPO / name)
    return workdir


def summaries(workdir: Path) -> dict[str, pd.DataFrame]:
    """The summary tables, without timings (the only numbers allowed to differ)."""
    out = {}
    for path in sorted((workdir / "results/summary").glob("*.parquet")):
        frame = pq.read_table(path).to_pandas()
        out[path.stem] = frame.drop(columns=["sampling_seconds"], errors="ignore")
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A scratch checkout (links to the workflow sources) after one complete tiny run."""
    workdir = checkout(tmp_path_factory.mktemp("study"))
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    done = snakemake(workdir, tmpdir=tmpdir)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_every_output_exists_with_declared_schema(study):
    results = study / "results"
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (results / "figures" / f"{name}.svg").read_text().rstrip().endswith("</svg>")
    for name, schema in [
        ("groups", tables.GROUPS),
        ("fits", tables.FITS),
        ("shrinkage", tables.SHRINKAGE),
        ("cells", tables.CELLS),
        ("draws", tables.DRAWS),
        ("measures", tables.MEASURES),
    ]:
        assert pq.read_schema(results / "summary" / f"{name}.parquet").remove_metadata() == schema
    measures = pq.read_table(results / "summary/measures.parquet").to_pandas()
    csv = pd.read_csv(results / "summary/measures.csv")
    assert len(csv) == len(measures) and list(csv.columns) == tables.MEASURES.names
    # every fit cell has its shrinkage and diagnostics rows; tau rows only for partial pooling
    per_cell = measures.groupby(["n_per_group", "prior", "model"])["target"].agg(set)
    assert all({"groups", "shrinkage", "diagnostics"} <= t for t in per_cell)
    assert {m for (_, _, m), t in per_cell.items() if "tau" in t} == {"partial"}
    draws = pq.read_table(results / "summary/draws.parquet").to_pandas()
    # first replicate of each partial fit job: 2 n x 2 priors x 8 groups x 200 draws
    assert len(draws) == 2 * 2 * 8 * 200 and set(draws["model"]) == {"partial"}
    fits = pq.read_table(results / "summary/fits.parquet").to_pandas()
    # tiny.yaml: 2 n x 1 tau x (2 priors + 2 baselines) x 2 replicates
    assert len(fits) == 16 and (fits["status"] == "ok").all()
    cells = pq.read_table(results / "summary/cells.parquet").to_pandas()
    assert (cells.loc[cells["model"] == "complete", "shrinkage_mean"] > 0.999).all()
    partial = cells[cells["model"] == "partial"].groupby("n_per_group")["shrinkage_mean"].mean()
    assert partial[10] > partial[40]  # more data per group, less shrinkage
    assert not list(results.rglob("*.tmp")), "temporary files left behind"


def test_report_builds_from_existing_results_with_every_figure(study):
    fits = sorted((study / "results/fits").rglob("*.parquet"))
    before = {path: path.stat().st_mtime_ns for path in fits}
    done = snakemake(study, "--report", "results/report.html")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in fits} == before  # nothing refitted
    page = (study / "results/report.html").read_text()
    embedded = dict(
        re.findall(r"data:[a-z/+]+;charset=utf8;filename=([^;]+);base64,([^\"']+)", page)
    )
    expected = [f"figures/{name}.png" for name in FIGURES] + [
        "summary/measures.csv",
        "report/config.html",
        "report/software.html",
        "report/measures.html",
    ]
    for name in expected:
        path = study / "results" / name
        assert base64.b64decode(embedded[path.name]) == path.read_bytes(), name
    for name in FIGURES:  # each figure has its own caption
        first_line = (REPO / "workflow/report" / f"{name}.rst").read_text().splitlines()[0]
        assert first_line.strip("*").split("**")[0][:30] in page, name


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
    checkout(tmp_path)
    done = snakemake(tmp_path, "--dry-run", config=("replicates=0", "engine=stan"))
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "replicates: 0 must be >= 1" in said
    assert "engine: 'stan' is not one of" in said
    assert not (tmp_path / "results").exists()


def test_missing_cmdstan_names_the_fix(tmp_path):
    checkout(tmp_path)
    os.environ.pop("CONDA_PREFIX", None)
    done = subprocess.run(
        command("--dry-run", "--cores", "1", config=("engine=cmdstanpy",)),
        cwd=tmp_path,
        env=environment() | {"CMDSTAN": str(tmp_path / "no-cmdstan")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "Fix: set `engine: pystan`" in done.stdout + done.stderr


def test_fits_leave_no_pystan_scratch_behind(study):
    # every fitting process wrote its fits to a scratch cache under TMPDIR: all removed
    assert not list((study / "tmp").iterdir())


def test_sigkill_mid_fitting_then_resume_matches_uninterrupted_run(study, tmp_path):
    """Kill snakemake and its running jobs (SIGKILL to the process group, like a lost node)
    while it fits with --cores 1, resume with --cores 1, and compare with the fixture's
    uninterrupted --cores 2 run: the same numbers (so also: independent of --cores)."""
    workdir = checkout(tmp_path)
    fits = workdir / "results/fits"
    run = subprocess.Popen(
        command("--cores", "1"),
        cwd=workdir,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while len(list(fits.rglob("fits.parquet"))) < 3 and run.poll() is None:
        assert time.monotonic() < deadline, "no fit finished in 10 minutes"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished = list(fits.rglob("fits.parquet"))
    assert 3 <= len(finished) < 8, "the kill did not land in the middle of fitting"
    for path in workdir.joinpath("results").rglob("*.parquet"):
        pq.read_table(path)  # whatever exists is complete: atomic writes
    assert snakemake(workdir, "--unlock").returncode == 0
    resumed = snakemake(workdir, "--cores", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = summaries(study), summaries(workdir)
    assert (
        expected.keys()
        == got.keys()
        == {"cells", "draws", "fits", "groups", "measures", "shrinkage"}
    )
    for name in expected:
        pd.testing.assert_frame_equal(expected[name], got[name], check_exact=True)
    assert not list(workdir.joinpath("results").rglob("*.tmp"))
