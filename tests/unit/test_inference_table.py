"""Your-data InferenceData and the PSIS-LOO table, from synthetic draws (no Stan): the netCDF
file round-trips through ArviZ with the group labels in order; the comparison table agrees
with ``arviz.loo``, ranks and weighs the fits, flags high Pareto k and keeps failed fits."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from shrinksim import tables
from shrinksim.engines import Draws
from shrinksim.userdata.inference import (
    PARETO_K,
    failed_groups,
    inference_groups,
    loo_table,
    read_inference,
    write_inference,
)

CHAINS, DRAWS = 2, 500
DATA = pd.DataFrame(
    {
        "group": ["z", "b", "10", "a c", "k", "q", "ctl", "e"],
        "is_control": [False] * 6 + [True, False],
        "n": [40] * 8,
        "y": [8, 12, 15, 18, 20, 22, 25, 30],
    }
)
OBSERVED = np.log((DATA["y"] + 0.5) / (DATA["n"] - DATA["y"] + 0.5)).to_numpy()


def draws_of(log_odds: np.ndarray, rng: np.random.Generator, /, **params: np.ndarray) -> Draws:
    """Draws ``params`` of a fit with group log-odds ``log_odds``, with its binomial
    log-likelihood and sampler variables (no divergences)."""
    log_lik = stats.binom.logpmf(DATA["y"].to_numpy(), DATA["n"].to_numpy(), expit(log_odds))
    shape = log_odds.shape[:2]
    sampler = {
        "divergent__": np.zeros(shape),
        "treedepth__": np.full(shape, 3.0),
        "energy__": rng.normal(10, 1, shape),
    }
    return Draws(params | {"log_lik": log_lik}, sampler, 1.0)


def synthetic_fits() -> dict[tuple[str, str], dict]:
    """InferenceData groups of three fits: complete pooling (theta = mu), no pooling (theta
    close to the observed log-odds) and a partial pooling fit whose first group has
    heavy-tailed draws (t with 2 df): the one case with Pareto k > 0.7 (group ``z`` only)."""
    rng = np.random.default_rng(7)
    mu = rng.normal(0.0, 0.05, (CHAINS, DRAWS))
    complete = np.repeat(mu[..., None], len(DATA), -1)
    none = OBSERVED + rng.normal(0, 0.05, (CHAINS, DRAWS, len(DATA)))
    wild = OBSERVED + rng.normal(0, 0.05, (CHAINS, DRAWS, len(DATA)))
    wild[..., 0] = OBSERVED[0] + 0.3 * rng.standard_t(2, (CHAINS, DRAWS))
    tau = np.abs(rng.normal(1, 0.1, (CHAINS, DRAWS)))
    z = (wild - mu[..., None]) / tau[..., None]
    made = {
        ("none", "complete"): draws_of(complete, rng, mu=mu),
        ("none", "none"): draws_of(none, rng, theta=none),
        ("weak", "partial"): draws_of(wild, rng, mu=mu, tau=tau, z=z),
    }
    thetas = {("none", "complete"): complete, ("none", "none"): none, ("weak", "partial"): wild}
    return {
        key: inference_groups(draws, thetas[key], DATA, {"prior": key[0], "model": key[1]})
        for key, draws in made.items()
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[tuple[str, str], str]:
    """The synthetic fits and one failed fit, written as netCDF: (prior, model) -> path."""
    out = tmp_path_factory.mktemp("idata")
    paths = {}
    for (prior, model), groups in synthetic_fits().items():
        paths[prior, model] = str(out / f"{prior}-{model}.nc")
        write_inference(groups, paths[prior, model])
    paths["failed", "partial"] = str(out / "failed.nc")
    write_inference(failed_groups(DATA, {"prior": "failed", "model": "partial"}), out / "failed.nc")
    return paths


def test_netcdf_round_trip_keeps_groups_and_labels(written):
    idata = az.from_netcdf(written["weak", "partial"])
    assert set(idata.groups()) == {"posterior", "sample_stats", "observed_data", "log_likelihood"}
    for group in ("posterior", "observed_data", "log_likelihood"):
        assert idata[group]["group"].values.tolist() == DATA["group"].tolist()
    assert set(idata.posterior.data_vars) == {"mu", "tau", "z", "theta"}
    assert idata.posterior["z"].dims == ("chain", "draw", "group")
    assert set(idata.sample_stats.data_vars) == {"diverging", "tree_depth", "energy"}
    assert idata.sample_stats["diverging"].dtype == bool
    assert idata.observed_data["is_control"].values.tolist() == DATA["is_control"].tolist()
    assert idata.log_likelihood["y"].shape == (CHAINS, DRAWS, len(DATA))
    failed = az.from_netcdf(written["failed", "partial"])
    assert failed.groups() == ["observed_data"] and failed.observed_data.attrs["status"] == "error"
    (folder,) = {Path(path).parent for path in written.values()}
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"


def test_missing_or_misshapen_log_lik_is_refused():
    rng = np.random.default_rng(1)
    theta = np.zeros((CHAINS, DRAWS, len(DATA)))
    draws = draws_of(theta, rng, theta=theta)
    del draws.params["log_lik"]
    with pytest.raises(ValueError, match="no per-group log_lik"):
        inference_groups(draws, theta, DATA, {})
    with pytest.raises(ValueError, match="groups in the draws"):
        inference_groups(draws_of(theta, rng, theta=theta), theta, DATA.iloc[:3], {})


def test_loo_table_ranks_weighs_and_agrees_with_arviz(written, tmp_path):
    fits = read_inference(written)
    table = loo_table(fits)
    tables.write_table(table, tmp_path / "loo.parquet", tables.USER_LOO)  # fits the schema
    ok = table[table["status"] == "ok"].set_index("model")
    assert sorted(ok["rank"]) == [0, 1, 2] and np.isclose(ok["weight"].sum(), 1)
    best = ok["elpd_loo"].max()
    assert ok.loc[ok["rank"] == 0, "elpd_loo"].item() == best
    np.testing.assert_allclose(ok["elpd_diff"], best - ok["elpd_loo"], atol=1e-12)
    assert ok.loc[ok["rank"] == 0, "dse"].item() == 0 and (ok["dse"] >= 0).all()
    for (prior, model), idata in fits.items():
        if model not in ok.index or prior == "failed":
            continue
        loo = az.loo(idata, pointwise=True)
        assert ok.loc[model, "elpd_loo"] == pytest.approx(float(loo["elpd_loo"]), rel=1e-12)
        assert ok.loc[model, "elpd_loo"] == pytest.approx(float(loo["loo_i"].sum()), rel=1e-12)
        assert ok.loc[model, "se"] == pytest.approx(float(loo["se"]), rel=1e-12)
        assert ok.loc[model, "p_loo"] == pytest.approx(float(loo["p_loo"]), rel=1e-12)
        assert ok.loc[model, "pareto_k_max"] == pytest.approx(float(loo["pareto_k"].max()))
    assert (ok["groups"] == len(DATA)).all()


def test_high_pareto_k_gives_a_warning(written):
    table = loo_table(read_inference(written)).set_index("model")
    wild = table.loc["partial"]
    wild = wild[wild["prior"] == "weak"].iloc[0]
    assert wild["pareto_k_high"] == 1 and wild["pareto_k_max"] > PARETO_K
    assert wild["warning"].startswith("1 of 8 groups with Pareto k > 0.7")
    for model in ("none", "complete"):
        assert table.loc[model, "pareto_k_high"] == 0 and table.loc[model, "warning"] == ""


def test_failed_fit_is_listed_not_compared(written):
    table = loo_table(read_inference(written))
    failed = table[table["prior"] == "failed"].iloc[0]
    assert failed["status"] == "error" and "not compared" in failed["warning"]
    assert failed[["elpd_loo", "elpd_diff", "weight"]].isna().all()
    assert pd.isna(failed["rank"])
    only_failed = loo_table(read_inference({("failed", "partial"): written["failed", "partial"]}))
    assert only_failed["status"].tolist() == ["error"]
