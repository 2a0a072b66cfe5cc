"""The whole workflow on a tiny config, run by `snakemake` in a scratch copy of the repo."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import (
    REPO,
    TESTS,
    TINY,
    checkout,
    environment,
    lint,
    read_dataset,
    snakemake,
    snakemake_command,
    without_timings,
)
from shrinksim import design, tables
from shrinksim.design import DataCell
from shrinksim.doctor import httpstan_stan_version

SUMMARY = {
    "per_fit": tables.PER_FIT,
    "shrinkage": tables.SHRINKAGE,
    "cells": tables.CELLS,
    "measures": tables.MEASURES,
    "example_groups": tables.GROUPS,
    "example_draws": tables.DRAWS,
}
"""Every table of results/summary/ and its schema."""

FIT_TABLES = {"groups": tables.GROUPS, "fits": tables.FITS, "draws": tables.DRAWS}
CELLS = [DataCell(10, 8, "tau", 0.5), DataCell(40, 8, "tau", 0.5)]
"""tiny.yaml's data cells; one batch of 2 replicates each: 2 fit jobs."""

BEFORE_THE_REFACTOR = TESTS / "data/main_tiny"
"""cells, measures and shrinkage of the tiny study as main made them before issue 12 (the
layout refactor and the streaming reduce): the reference, never to be regenerated."""


def fit_table(root: Path, table: str, cell: DataCell, batch: int = 0) -> Path:
    return Path(
        design.result_path(design.FIT_TABLE, root, table=table, datacell=cell.path, batch=batch)
    )


def summaries(workdir: Path) -> dict[str, pd.DataFrame]:
    """The summary tables, without timings (the only numbers allowed to differ)."""
    folder = workdir / "results/summary"
    return {
        path.stem: without_timings(pq.read_table(path).to_pandas())
        for path in sorted(folder.glob("*.parquet"))
    }


def fit_job_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Every fit job's tables, without timings, by relative path."""
    return {
        str(path.relative_to(workdir)): without_timings(pq.read_table(path).to_pandas())
        for table in FIT_TABLES
        for path in sorted((workdir / "results" / table).rglob("*.parquet"))
    }


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
    for name in design.FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (results / "figures" / f"{name}.svg").read_text().rstrip().endswith("</svg>")
    assert {p.stem for p in (results / "summary").glob("*.parquet")} == set(SUMMARY)
    for name, schema in SUMMARY.items():
        assert pq.read_schema(results / "summary" / f"{name}.parquet").remove_metadata() == schema
    for table, schema in FIT_TABLES.items():
        files = sorted((results / table).rglob("*.parquet"))
        assert files == [fit_table(results, table, cell) for cell in CELLS]
        assert all(pq.read_schema(f).remove_metadata() == schema for f in files), table
    measures = pq.read_table(results / "summary/measures.parquet").to_pandas()
    csv = pd.read_csv(results / "summary/measures.csv")
    assert len(csv) == len(measures) and list(csv.columns) == tables.MEASURES.names
    # every fit cell has its shrinkage and diagnostics rows; tau rows only for partial pooling
    per_cell = measures.groupby(["n_per_group", "prior", "model"])["target"].agg(set)
    assert all({"groups", "shrinkage", "diagnostics"} <= t for t in per_cell)
    assert {m for (_, _, m), t in per_cell.items() if "tau" in t} == {"partial"}
    draws = pq.read_table(results / "summary/example_draws.parquet").to_pandas()
    # first replicate of each partial fit: 2 n x 2 priors x 8 groups x 200 draws
    assert len(draws) == 2 * 2 * 8 * 200 and set(draws["model"]) == {"partial"}
    assert set(draws["replicate"]) == {0}
    examples = pq.read_table(results / "summary/example_groups.parquet").to_pandas()
    # the first replicate's groups (8 and a control) of every fit: 2 n x 4 fits
    assert len(examples) == 2 * 4 * 9 and set(examples["replicate"]) == {0}
    per_fit = pq.read_table(results / "summary/per_fit.parquet").to_pandas()
    # tiny.yaml: 2 n x 1 tau x (2 priors + 2 baselines) x 2 replicates
    assert len(per_fit) == 16 and (per_fit["status"] == "ok").all()
    assert per_fit[["shrinkage", "squared_error", "coverage_0.95"]].notna().all().all()
    cells = pq.read_table(results / "summary/cells.parquet").to_pandas()
    assert (cells.loc[cells["model"] == "complete", "shrinkage_mean"] > 0.999).all()
    partial = cells[cells["model"] == "partial"].groupby("n_per_group")["shrinkage_mean"].mean()
    assert partial[10] > partial[40]  # more data per group, less shrinkage
    assert not list(results.rglob("*.tmp")), "temporary files left behind"


REFERENCE_STAN = "2.35.0"
"""The Stan version (httpstan 4.13) the reference numbers were made with."""


@pytest.mark.skipif(
    httpstan_stan_version() != REFERENCE_STAN,
    reason=f"the reference numbers are Stan {REFERENCE_STAN}'s (httpstan 4.13); this httpstan "
    f"ships Stan {httpstan_stan_version()}, whose draws differ",
)
def test_numbers_unchanged_since_before_the_refactor(study):
    """cells, measures and shrinkage equal those of the tiny study run by main before the
    layout refactor (tests/data/main_tiny): the simulated data, the Stan seeds (from the
    unchanged seed keys) and the arithmetic of every reduce (the same operations on the same
    values in the same order, one fit job at a time or the whole table at once) are the
    same. Text, integer and the draws-derived columns match exactly; the float columns within
    a relative 1e-12, because a least-squares slope (``np.polyfit``: LAPACK in numpy's
    OpenBLAS, whose kernels depend on the CPU and the numpy release) can differ in the last
    bit between machines (seen: 1 ulp of one fit's shrinkage on another VM), while any change
    of behaviour (data, seeds, priors, formulas) moves these numbers by 1e-3 or more. The one
    intended change: the convergence flags (measures of target "diagnostics") follow the
    calibrated rules of issue 14, so those rows are left out."""
    for name in ("cells", "measures", "shrinkage"):
        before = pq.read_table(BEFORE_THE_REFACTOR / f"{name}.parquet").to_pandas()
        now = pq.read_table(study / "results/summary" / f"{name}.parquet").to_pandas()
        if name == "measures":
            before, now = (
                frame[frame["target"] != "diagnostics"].reset_index(drop=True)
                for frame in (before, now)
            )
            assert len(now) == len(before) > 0
        floats = [c for c in before.columns if pd.api.types.is_float_dtype(before[c])]
        exact = [c for c in before.columns if c not in floats]
        pd.testing.assert_frame_equal(now[exact], before[exact], check_exact=True, obj=name)
        pd.testing.assert_frame_equal(
            now[floats], before[floats], check_exact=False, rtol=1e-12, atol=1e-15, obj=name
        )
        # and the tolerance can fail: a change in the 10th digit is caught
        assert not np.allclose(
            now[floats] * (1 + 1e-10), before[floats], rtol=1e-12, atol=0, equal_nan=True
        )


def test_fit_tables_are_hive_datasets_of_every_fit(study):
    """Read as datasets, the partition columns (from the paths) agree with the columns."""
    fits = read_dataset(study / "results/fits")
    assert len(fits) == 16 and set(fits["batch"]) == {0}
    assert (fits["tau"].astype(float) == fits["spread"]).all()  # (tau=0.5 reads as text)
    per_fit = pq.read_table(study / "results/summary/per_fit.parquet").to_pandas()
    key = ["n_per_group", "prior", "model", "replicate"]
    joined = fits.merge(per_fit, on=key, suffixes=("", "_per_fit"), validate="one_to_one")
    pd.testing.assert_series_equal(  # NaN for the baselines: they have no tau
        joined["tau_mean"], joined["tau_mean_per_fit"], check_exact=True, check_names=False
    )
    groups = read_dataset(study / "results/groups")
    assert len(groups) == 16 * 9 and (groups["n_per_group"].isin([10, 40])).all()


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
    expected = [f"figures/{name}.png" for name in design.FIGURES] + [
        "summary/measures.csv",
        "report/config.html",
        "report/software.html",
        "report/measures.html",
    ]
    for name in expected:
        path = study / "results" / name
        assert base64.b64decode(embedded[path.name]) == path.read_bytes(), name
    for name in design.FIGURES:  # each figure has its own caption
        first_line = (REPO / "workflow/report" / f"{name}.rst").read_text().splitlines()[0]
        assert first_line.strip("*").split("**")[0][:30] in page, name


def test_second_run_has_nothing_to_do(study):
    again = snakemake(study, "--dry-run")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_rerun_of_one_fit_job_gives_identical_numbers(study):
    paths = {table: fit_table(study / "results", table, CELLS[1]) for table in FIT_TABLES}
    before = {t: without_timings(pq.read_table(p).to_pandas()) for t, p in paths.items()}
    paths["fits"].unlink()
    again = snakemake(study, str(paths["fits"].relative_to(study)))
    assert again.returncode == 0, again.stderr[-3000:]
    for table, path in paths.items():  # the job rewrote all three of its tables
        after = without_timings(pq.read_table(path).to_pandas())
        pd.testing.assert_frame_equal(after, before[table], check_exact=True, obj=table)


def test_lint_is_clean():
    said = lint()
    assert "Congratulations" in said, said


def test_bad_config_stops_before_any_job(tmp_path):
    checkout(tmp_path)
    done = snakemake(tmp_path, "--dry-run", config=("replicates=0", "engine=stan"))
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "replicates: 0 must be >= 1" in said
    assert "engine: 'stan' is not one of" in said
    assert not (tmp_path / "results").exists()


def test_missing_cmdstan_names_the_fix(tmp_path, monkeypatch):
    checkout(tmp_path)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    done = subprocess.run(
        snakemake_command("--dry-run", "--cores", "1", config=("engine=cmdstanpy",)),
        cwd=tmp_path,
        env=environment() | {"CMDSTAN": str(tmp_path / "no-cmdstan")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "shrinksim[cmdstan]" in done.stdout + done.stderr
    assert "set `engine: pystan`" in done.stdout + done.stderr


def test_fits_leave_no_pystan_scratch_behind(study):
    # every fitting process wrote its fits to a scratch cache under TMPDIR: all removed
    assert not list((study / "tmp").iterdir())


def test_sigkill_mid_fitting_then_resume_matches_uninterrupted_run(study, tmp_path):
    """Kill snakemake and its running jobs (SIGKILL to the process group, like a lost node)
    while it fits with --cores 1 (one fit job done, the other fitting), resume with --cores
    1, and compare with the fixture's uninterrupted --cores 2 run: the same numbers (so
    also: independent of --cores)."""
    workdir = checkout(tmp_path / "killed")
    results = workdir / "results"
    logs = [
        Path(design.result_path(design.LOG, results, job=f"fit/{c.path}/batch=0")) for c in CELLS
    ]
    run = subprocess.Popen(
        snakemake_command("--cores", "1"),
        cwd=workdir,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def fitting() -> tuple[int, int]:
        """(fit jobs finished, fit jobs that have started a fit)."""
        finished = sum(fit_table(results, "fits", c).exists() for c in CELLS)
        started = sum(log.exists() and "fit cell" in log.read_text() for log in logs)
        return finished, started

    deadline = time.monotonic() + 600
    while fitting() != (1, 2) and run.poll() is None:
        assert time.monotonic() < deadline, f"no fit job finished in 10 minutes: {fitting()}"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished, started = fitting()
    assert (finished, started) == (1, 2), "the kill did not land in the middle of fitting"
    for path in results.rglob("*.parquet"):
        pq.read_table(path)  # whatever exists is complete: atomic writes
    assert snakemake(workdir, "--unlock").returncode == 0
    resumed = snakemake(workdir, "--cores", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = summaries(study), summaries(workdir)
    assert expected.keys() == got.keys() == set(SUMMARY)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True, obj=name)
    expected, got = fit_job_tables(study), fit_job_tables(workdir)
    assert expected.keys() == got.keys() and len(got) == 3 * len(CELLS)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True, obj=name)
    assert not list(results.rglob("*.tmp"))


@pytest.fixture(scope="module")
def nutpie_study(tmp_path_factory) -> Path:
    """The tiny study again with ``engine: nutpie`` (a config file, as a user would write)."""
    pytest.importorskip("nutpie", reason="engine nutpie: pip install 'shrinksim[nutpie]'")
    workdir = checkout(tmp_path_factory.mktemp("nutpie"))
    engine = workdir / "nutpie.yaml"
    engine.write_text("engine: nutpie\n")
    done = snakemake(workdir, configs=(TINY, engine))
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_nutpie_engine_gives_the_same_tables_and_agreeing_posteriors(study, nutpie_study):
    """``engine: nutpie`` end to end: the same tables (schemas, rows, data bit for bit, as
    the data do not depend on the engine) as PyStan's run, every fit ok, and per fit the
    posterior means of mu, tau and every theta equal to PyStan's within 4.5 joint MCSEs
    (MCSE of a mean = sd / sqrt(bulk ESS), the smallest ESS of the fit's hyperparameters or
    groups: an upper bound; 4.5 keeps the ~160 comparisons' false-alarm rate below 0.1 %).
    The sampler-level checks against Stan's log density and the exact reference, with
    negative controls, are in tests/stan/test_nutpie_engine.py."""
    keys = ["n_per_group", "prior", "model", "replicate"]
    for table in ("fits", "groups"):
        stan = read_dataset(study / "results" / table).sort_values([*keys], kind="stable")
        pie = read_dataset(nutpie_study / "results" / table).sort_values([*keys], kind="stable")
        assert list(pie.columns) == list(stan.columns) and len(pie) == len(stan), table
        if table == "fits":
            assert (pie["status"] == "ok").all() and set(pie["engine"]) == {"nutpie"}
            params = [("mu", "ess_bulk_hyper_min"), ("tau", "ess_bulk_hyper_min")]
        else:
            data = ["group", "n", "y", "true_logit", "obs_logit"]
            pd.testing.assert_frame_equal(pie[keys + data], stan[keys + data], check_exact=True)
            ess = read_dataset(study / "results/fits").set_index(keys)["ess_bulk_groups_min"]
            ess_pie = read_dataset(nutpie_study / "results/fits").set_index(keys)
            stan = stan.join(ess.rename("ess"), on=keys)
            pie = pie.join(ess_pie["ess_bulk_groups_min"].rename("ess"), on=keys)
            params = [("theta", "ess")]
        for name, ess_column in params:
            rows = stan[f"{name}_mean"].notna().to_numpy()
            mcse2 = (stan[f"{name}_sd"] ** 2 / stan[ess_column]).to_numpy() + (
                pie[f"{name}_sd"] ** 2 / pie[ess_column]
            ).to_numpy()
            diff = (pie[f"{name}_mean"] - stan[f"{name}_mean"]).to_numpy()
            z = np.abs(diff[rows]) / np.sqrt(mcse2[rows])
            assert rows.sum() > 0 and z.max() < 4.5, (table, name, z.max())
    compiled = sorted(p.name for p in (nutpie_study / "results/models/nutpie").glob("*.json"))
    assert compiled == ["complete_pooling.json", "no_pooling.json", "partial_pooling.json"]
