"""Your-data fits as ArviZ InferenceData, from real small fits of the three models (PyStan,
fixed seeds): the written netCDF file loads with ArviZ, carries the user's group labels in
order, its log-likelihood is the binomial log-pmf at the draws' theta, and PSIS-LOO runs;
the per-outcome program's log_lik is the same up to log choose(n, y); without the flag Stan
writes no log_lik and the same draws."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, gammaln

from conftest import CACHE
from shrinksim.design import STAN_PROGRAMS
from shrinksim.engines import SamplerSettings, make_engine
from shrinksim.fitting import stan_data
from shrinksim.priors import parse_prior
from shrinksim.userdata.fit import fit_user_data
from shrinksim.userdata.inference import loo_table, read_inference, write_inference

# Labels in no sorted order, one numeric-looking and one with a space: they must stay as given.
DATA = pd.DataFrame(
    {
        "group": ["beta", "alpha", "ctl", "10", "g 7", "delta"],
        "is_control": [False, False, True, False, False, False],
        "n": [12, 30, 80, 7, 25, 18],
        "y": [3, 14, 31, 5, 9, 2],
    }
)
SETTINGS = {
    "seed": 20261201,
    "sampler": {"chains": 2, "warmup": 200, "draws": 200, "adapt_delta": 0.95, "max_treedepth": 10},
    "retry": {"max_attempts": 1, "adapt_delta": 0.99},
    "intercept_prior": "student_t(3, 0, 2.5)",
    "tau_prior": "student_t(3, 0, 2.5)",
}
FITS = [("brms_default", "partial"), ("none", "none"), ("none", "complete")]
RTOL = 1e-8  # the same closed form in Stan and scipy: floating-point agreement


def binomial_log_lik(theta: np.ndarray) -> np.ndarray:
    """log Binomial(y_g | n_g, expit(theta_g)) for draws theta (chains, draws, groups)."""
    return stats.binom.logpmf(DATA["y"].to_numpy(), DATA["n"].to_numpy(), expit(theta))


@pytest.fixture(scope="module")
def written(compile_program, tmp_path_factory):
    """(prior, model) -> (fit row, path of the written InferenceData)."""
    out = tmp_path_factory.mktemp("inference")
    done = {}
    with make_engine("pystan", cache_dir=CACHE, model_dir=out) as engine:
        for prior, model in FITS:
            compiled = compile_program(STAN_PROGRAMS[model])
            _, fit, _, inference = fit_user_data(engine, compiled, DATA, prior, model, SETTINGS)
            path = out / f"{model}.nc"
            write_inference(inference, path)
            done[prior, model] = fit.iloc[0], path
    return done


@pytest.mark.parametrize(("prior", "model"), FITS)
def test_file_loads_with_arviz_groups_and_labels(written, prior, model):
    row, path = written[prior, model]
    assert row["status"] == "ok", row["message"]
    idata = az.from_netcdf(path)
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        assert group in idata.groups(), group
    labels = DATA["group"].tolist()
    for group in ("posterior", "observed_data", "log_likelihood"):
        assert idata[group]["group"].values.tolist() == labels
    posterior = idata.posterior
    assert posterior["theta"].dims == ("chain", "draw", "group")
    assert posterior["theta"].shape == (2, 200, len(DATA))
    assert ("tau" in posterior) == (model == "partial")
    assert ("mu" in posterior) == (model != "none")
    if model == "complete":  # theta_g = mu
        np.testing.assert_array_equal(
            posterior["theta"].values, np.repeat(posterior["mu"].values[..., None], len(DATA), -1)
        )
    for name in ("diverging", "tree_depth", "energy"):
        assert idata.sample_stats[name].dims == ("chain", "draw")
    assert idata.sample_stats["diverging"].dtype == bool
    np.testing.assert_array_equal(idata.observed_data["y"].values, DATA["y"])
    np.testing.assert_array_equal(idata.observed_data["n"].values, DATA["n"])
    np.testing.assert_array_equal(idata.observed_data["is_control"].values, DATA["is_control"])
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "group")
    assert idata.posterior.attrs["model"] == model and idata.posterior.attrs["prior"] == prior


@pytest.mark.parametrize(("prior", "model"), FITS)
def test_log_lik_is_the_binomial_log_pmf_at_theta(written, prior, model):
    idata = az.from_netcdf(written[prior, model][1])
    theta = idata.posterior["theta"].values
    np.testing.assert_allclose(
        idata.log_likelihood["y"].values, binomial_log_lik(theta), rtol=RTOL, atol=0
    )


@pytest.mark.parametrize(("prior", "model"), FITS)
def test_loo_runs_with_a_pareto_k_per_group(written, prior, model):
    idata = az.from_netcdf(written[prior, model][1])
    loo = az.loo(idata, pointwise=True)
    assert np.isfinite(loo["elpd_loo"]) and np.isfinite(loo["se"]) and np.isfinite(loo["p_loo"])
    assert loo["pareto_k"].dims == ("group",)
    assert loo["pareto_k"]["group"].values.tolist() == DATA["group"].tolist()
    assert np.isfinite(loo["pareto_k"].values).all()


def test_comparison_table_of_the_three_models(written):
    table = loo_table(read_inference({key: path for key, (_, path) in written.items()}))
    assert sorted(zip(table["prior"], table["model"], strict=True)) == sorted(FITS)
    assert (table["status"] == "ok").all() and sorted(table["rank"]) == [0, 1, 2]
    best = table[table["rank"] == 0].iloc[0]
    assert best["elpd_diff"] == 0 and (table["elpd_diff"] >= 0).all()
    assert np.isclose(table["weight"].sum(), 1) and (table["groups"] == len(DATA)).all()
    assert table[["elpd_loo", "se", "p_loo", "dse", "pareto_k_max"]].notna().all().all()


def test_bernoulli_log_lik_sums_the_groups_outcomes(compile_program, tmp_path):
    """Per-outcome program: log_lik_g = sum of the group's Bernoulli terms = the binomial
    log-pmf less log choose(n_g, y_g); and with the flag off, no log_lik and the same draws."""
    compiled = compile_program("partial_pooling_bernoulli")
    prior = parse_prior("student_t(3, 0, 2.5)", "prior")
    groups = DATA.assign(group=np.arange(1, len(DATA) + 1))
    small = SamplerSettings(chains=2, warmup=150, draws=100, adapt_delta=0.9, max_treedepth=10)
    program = "partial_pooling_bernoulli"
    with make_engine("pystan", cache_dir=CACHE, model_dir=tmp_path) as engine:
        on = engine.sample(
            compiled, stan_data(program, groups, prior, prior, log_lik=True), small, 3
        )
        off = engine.sample(compiled, stan_data(program, groups, prior, prior), small, 3)
    p = on.params
    theta = p["mu"][..., None] + p["tau"][..., None] * p["z"]
    n, y = DATA["n"].to_numpy(), DATA["y"].to_numpy()
    log_choose = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    np.testing.assert_allclose(p["log_lik"] + log_choose, binomial_log_lik(theta), rtol=RTOL)
    assert off.params["log_lik"].shape == (2, 100, 0)
    for name in ("mu", "tau", "z"):
        np.testing.assert_array_equal(on.params[name], off.params[name])
