"""Your data of every other family through snakemake: each example (poisson rates with a
control ward, gaussian scores, the eight schools as gaussian_se) fitted by its family's
programs, its design-matched study at its own sizes, the InferenceData and PSIS-LOO table,
the figures and a summary page that names the family, its scale and theory. Tiny settings
(tests/configs/userdata_families.yaml), the compiled models shared with the Stan tests."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import pyarrow.parquet as pq
import pytest

from conftest import CONFIGS, REPO, checkout, snakemake
from shrinksim import design, tables
from shrinksim.families import OUTCOME_FAMILIES
from shrinksim.study.outcome import StudyOutcome

CASES = {  # fitted as -> (example, configured family, control group)
    "poisson": ("poisson_rates.csv", "poisson", "ward_20"),
    "gaussian": ("gaussian_scores.csv", "gaussian", None),
    "gaussian_se": ("eight_schools.csv", "gaussian", None),
}
STUDY = {"grid": {"prior": ["brms_default"], "model": ["partial", "complete"]}}


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request, tmp_path_factory) -> tuple[str, Path]:
    """(fitted family, scratch checkout after `snakemake userdata` on its example)."""
    name, family, control = CASES[request.param]
    workdir = checkout(tmp_path_factory.mktemp(request.param))
    settings = f"{{family: {family}" + (f", control: {control}}}" if control else "}")
    done = snakemake(
        workdir,
        "userdata",
        configs=(CONFIGS / "userdata_families.yaml",),
        config=(f"data={REPO / 'examples' / name}", f"userdata={settings}"),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return request.param, workdir


def test_every_stage_knows_the_family(run):
    fitted, workdir = run
    family = OUTCOME_FAMILIES[fitted]
    out = workdir / "results/userdata"
    data = pq.read_table(out / "data.parquet").to_pandas()
    assert (data["family"] == fitted).all()
    fits = pq.read_table(out / "summary/fits.parquet").to_pandas()
    assert sorted(fits["model"]) == ["complete", "partial"] and (fits["status"] != "error").all()
    partial = fits[fits["model"] == "partial"].iloc[0]
    assert partial["tau_median"] > 0 and (partial["sigma_median"] > 0) == family.has_sigma
    groups = pq.read_table(out / "summary/groups.parquet").to_pandas()
    assert groups.loc[groups["model"] == "partial", "shrinkage_normal"].between(0, 1).all()
    for name, schema in [("design_fits", tables.DESIGN_FITS), ("whatif", tables.WHATIF)]:
        assert pq.read_schema(out / "summary" / f"{name}.parquet").remove_metadata() == schema
    design_fits = pq.read_table(out / "summary/design_fits.parquet").to_pandas()
    assert len(design_fits) == 2 and design_fits["shrinkage"].notna().all()
    treated = data.loc[~data["is_control"], family.size].mean()
    assert design_fits["n_mean"].tolist() == pytest.approx([treated, treated])
    sim = pq.read_table(
        design.result_path(design.USERDATA_SIMULATED, workdir / "results", scale=1, tauk=0, batch=0)
    ).to_pandas()
    assert sim[list(family.columns)].drop(columns="sd", errors="ignore").notna().all().all()
    assert sim["is_control"].sum() == 2 * data["is_control"].sum()


def test_inference_data_and_loo(run):
    fitted, workdir = run
    family = OUTCOME_FAMILIES[fitted]
    for path in design.userdata_inference_files(STUDY, workdir / "results"):
        idata = az.from_netcdf(path)
        assert list(idata.log_likelihood.data_vars) == [family.observed]
        assert list(idata.observed_data.data_vars)[0] == family.observed
        assert ("sigma" in idata.posterior) == family.has_sigma
    loo = pq.read_table(workdir / "results/userdata/summary/loo.parquet").to_pandas()
    assert (loo["status"] == "ok").all() and sorted(loo["rank"]) == [0, 1]


def test_figures_and_page_name_the_family(run):
    fitted, workdir = run
    family = OUTCOME_FAMILIES[fitted]
    figures = workdir / "results/userdata/figures"
    for name in ("estimate_vs_observed", "group_densities", "tau_mu", "design_matched", "whatif"):
        assert (figures / f"{name}.png").stat().st_size > 10_000
    page = (figures / "summary.html").read_text()
    assert f"Family {fitted}" in page and family.scale in page
    assert StudyOutcome(family).theory_name.split(":")[0] in page
