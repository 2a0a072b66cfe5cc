"""Your data through snakemake: a small per-outcome file (10 groups and a control named in the
config) fitted end to end; bad files stop the run before any job; lint with data set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import CONFIGS, checkout, lint, snakemake, without_timings
from shrinksim import design, tables

SIZES = [8, 12, 15, 20, 25, 30, 18, 10, 40, 22]


def userdata_run(workdir: Path, *args: str, data: str) -> subprocess.CompletedProcess:
    """snakemake in ``workdir`` on the user-data test config and the data file ``data``."""
    return snakemake(workdir, *args, configs=(CONFIGS / "userdata.yaml",), config=(f"data={data}",))


def outcome_file(path: Path) -> None:
    """One row per outcome, rows shuffled: 10 groups of SIZES outcomes and a control 'ctl'."""
    rng = np.random.default_rng(5)
    p = 1 / (1 + np.exp(0.4 - 0.6 * rng.standard_normal(len(SIZES))))
    rows = [
        (f"g{g + 1}", int(rng.random() < pg))
        for g, (n, pg) in enumerate(zip(SIZES, p, strict=True))
        for _ in range(n)
    ]
    rows += [("ctl", int(rng.random() < 0.4)) for _ in range(60)]
    frame = pd.DataFrame(rows, columns=["group", "y"]).iloc[rng.permutation(len(rows))]
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A scratch checkout after `snakemake userdata` on the small file."""
    workdir = checkout(tmp_path_factory.mktemp("userdata"))
    outcome_file(workdir / "small.csv")
    done = userdata_run(workdir, "userdata", data="small.csv")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_fit_design_and_figures_exist(run):
    out = run / "results/userdata"
    for name in ("estimate_vs_observed", "group_densities", "tau_mu", "design_matched", "whatif"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    assert "What if" in (out / "figures/summary.html").read_text()
    for name, schema in [
        ("groups", tables.USER_GROUPS),
        ("fits", tables.USER_FITS),
        ("design_fits", tables.DESIGN_FITS),
        ("design_cells", tables.DESIGN_CELLS),
        ("whatif", tables.WHATIF),
    ]:
        assert pq.read_schema(out / "summary" / f"{name}.parquet").remove_metadata() == schema
    fits = pq.read_table(out / "summary/fits.parquet").to_pandas()
    # 2 priors + no pooling + complete pooling, all on the user's 11 groups
    assert len(fits) == 4 and (fits["status"] != "error").all()
    assert (fits["groups"] == 11).all() and (fits["outcomes"] == sum(SIZES) + 60).all()
    partial = fits[fits["model"] == "partial"]
    assert partial["tau_median"].between(0, 5).all() and partial["shrinkage"].between(0, 1).all()
    groups = pq.read_table(out / "summary/groups.parquet").to_pandas()
    assert set(groups.loc[groups["is_control"], "group"]) == {"ctl"}
    design_fits = pq.read_table(out / "summary/design_fits.parquet").to_pandas()
    # 2 scales x 2 tau x 2 priors x 2 replicates
    assert len(design_fits) == 16 and design_fits["shrinkage"].notna().all()
    assert not list((run / "results").rglob("*.tmp")), "temporary files left behind"


def test_fits_as_inference_data_and_loo_table(run):
    """Every fit of the data as InferenceData, labels in the file's order; the PSIS-LOO table
    compares all four fits and is on the summary page."""
    import arviz as az

    out = run / "results/userdata"
    labels = pq.read_table(out / "data.parquet").column("group").to_pylist()
    study = {"grid": {"prior": ["brms_default", "weak"], "model": ["partial", "none", "complete"]}}
    paths = design.userdata_inference_files(study, run / "results")
    assert len(paths) == 4
    for path in paths:
        idata = az.from_netcdf(path)
        assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(
            idata.groups()
        )
        assert idata.log_likelihood["y"].shape == (2, 150, 11)
        for group in ("posterior", "observed_data", "log_likelihood"):
            assert idata[group]["group"].values.tolist() == labels
    loo = pq.read_table(out / "summary/loo.parquet")
    assert loo.schema.remove_metadata() == tables.USER_LOO.remove_metadata()
    loo = loo.to_pandas()
    assert len(loo) == 4 and (loo["status"] == "ok").all() and sorted(loo["rank"]) == [0, 1, 2, 3]
    assert loo["elpd_loo"].notna().all() and np.isclose(loo["weight"].sum(), 1)
    assert "PSIS-LOO" in (out / "figures/summary.html").read_text()


def test_design_uses_the_users_sizes_exactly(run):
    out = run / "results/userdata"
    data = pq.read_table(out / "data.parquet").to_pandas()
    assert sorted(data.loc[~data["is_control"], "n"]) == sorted(SIZES)
    treated = data.loc[~data["is_control"], "n"].to_numpy()
    for scale in (1, 3):
        paths = [
            design.result_path(
                design.USERDATA_SIMULATED, run / "results", scale=scale, tauk=k, batch=0
            )
            for k in (0, 1)
        ]
        assert (
            sorted(map(str, (out / "design").glob(f"scale={scale}/tau=*/batch=*.parquet"))) == paths
        )
        for path in paths:
            sim = pq.read_table(path, schema=tables.DATA).to_pandas()
            for _, one in sim.groupby("replicate"):
                assert one.loc[~one["is_control"], "n"].tolist() == (scale * treated).tolist()
                assert one.loc[one["is_control"], "n"].tolist() == [60]


def test_report_has_a_your_data_section(run):
    done = userdata_run(run, "userdata", "--report", "report.html", data="small.csv")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Your data" in (run / "report.html").read_text(errors="replace")


def test_nothing_left_to_do_and_same_numbers_on_rerun(run):
    again = userdata_run(run, "userdata", "--dry-run", data="small.csv")
    assert "Nothing to be done" in again.stdout + again.stderr
    fits = Path(
        design.result_path(
            design.USERDATA_FIT, run / "results", prior="weak", model="partial", table="fits"
        )
    )
    before = without_timings(pq.read_table(fits).to_pandas())
    fits.unlink()
    redo = userdata_run(run, str(fits.relative_to(run)), data="small.csv")
    assert redo.returncode == 0, redo.stderr[-3000:]
    after = without_timings(pq.read_table(fits).to_pandas())
    pd.testing.assert_frame_equal(after, before, check_exact=True)


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("group,n,successes\nA,10,3\nB,12,13\n", "row 2 (line 3), column 'successes'"),
        ("group,y\nA,1\nA,0\nB,7\n", "row 3 (line 4), column 'y'"),
        (b"group,n,successes\nA,10,3\nB\xe9,12,5\n", "row 2 (line 3), column 'group': not UTF-8"),
    ],
)
def test_bad_data_stops_before_any_job(tmp_path, content, phrase):
    checkout(tmp_path)
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = userdata_run(tmp_path, "--dry-run", data="bad.csv")
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"bad.csv, {phrase}" in said, said[-2000:]
    assert not (tmp_path / "results").exists()


def test_lint_is_clean_with_data():
    said = lint("data=examples/forum_like.csv")
    assert "Congratulations" in said, said
