"""Real (small) Stan fits through both engines; failures are recorded, never raised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shrinksim import diagnostics, tables
from shrinksim.config import DataCell, FitCell, parse_prior
from shrinksim.engine import EngineError, SamplerSettings, find_cmdstan, make_engine, resolve_engine
from shrinksim.fit import fit_batch, stan_data
from shrinksim.simulate import simulate

pytestmark = pytest.mark.slow

CELL = DataCell(20, 10, "tau", 0.5)
SETTINGS = SamplerSettings(chains=4, warmup=500, draws=1000, adapt_delta=0.9, max_treedepth=10)
PRIOR = parse_prior("student_t(3, 0, 2.5)", "prior")


def fit_settings(config):
    return {
        "seed": config["seed"],
        "sampler": {**config["sampler"], "chains": 2, "warmup": 200, "draws": 200},
        "retry": config["retry"],
        "intercept_prior": config["intercept_prior"],
        "tau_prior": config["priors"]["brms_default"],
    }


def posterior(engine, compiled, program, data, seed=11):
    draws = engine.sample(compiled, stan_data(program, data, PRIOR, PRIOR), SETTINGS, seed)
    stacked = np.concatenate([draws.params["mu"][..., None], draws.params["tau"][..., None]], -1)
    return draws, stacked


@pytest.fixture(scope="module")
def data(config_module):
    return simulate(config_module, CELL, 0)


@pytest.fixture(scope="module")
def config_module():
    from conftest import REPO
    from shrinksim.config import load_yaml

    return load_yaml(REPO / "config.yaml")


def test_binomial_and_bernoulli_programs_agree(compile_program, data):
    """Sufficient statistics vs per-outcome likelihood: same posterior, within MCSE.

    Tolerance: |difference of posterior means| < 4 * sqrt(MCSE_a^2 + MCSE_b^2) with
    MCSE = posterior sd / sqrt(bulk ESS), for mu, tau and every group's theta (4 SE: a
    false alarm has probability ~1e-4 per quantity, ~1e-3 over the 13 compared).
    """
    binomial = compile_program("partial_pooling")
    bernoulli = compile_program("partial_pooling_bernoulli")
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        a, _ = posterior(engine, binomial, "partial_pooling", data)
        b, _ = posterior(engine, bernoulli, "partial_pooling_bernoulli", data, seed=12)

    def monitored(d):
        theta = d.params["mu"][..., None] + d.params["tau"][..., None] * d.params["z"]
        return np.concatenate([d.params["mu"][..., None], d.params["tau"][..., None], theta], -1)

    xa, xb = monitored(a), monitored(b)
    mean_a, mean_b = xa.mean(axis=(0, 1)), xb.mean(axis=(0, 1))
    mcse_a = xa.std(axis=(0, 1)) / np.sqrt(diagnostics.ess_bulk(xa))
    mcse_b = xb.std(axis=(0, 1)) / np.sqrt(diagnostics.ess_bulk(xb))
    assert np.all(np.abs(mean_a - mean_b) < 4 * np.hypot(mcse_a, mcse_b))
    # and the test can fail: a 1-sd shift in tau would be caught
    assert not np.all(np.abs(mean_a + xa.std(axis=(0, 1)) - mean_b) < 4 * np.hypot(mcse_a, mcse_b))


def test_pystan_draws_shapes_and_determinism(compile_program, data):
    compiled = compile_program("partial_pooling")
    small = SamplerSettings(2, 100, 50, 0.9, 10)
    standata = stan_data("partial_pooling", data, PRIOR, PRIOR)
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        one = engine.sample(compiled, standata, small, seed=5)
        two = engine.sample(compiled, standata, small, seed=5)
        other = engine.sample(compiled, standata, small, seed=6)
    assert one.params["z"].shape == (2, 50, len(data))
    assert one.params["mu"].shape == one.sampler["energy__"].shape == (2, 50)
    assert np.array_equal(one.params["z"], two.params["z"])
    assert not np.array_equal(one.params["z"], other.params["z"])


def test_fit_batch_outputs_match_schemas(compile_program, config_module, data):
    cell = FitCell(CELL, "brms_default", "partial")
    batch = pd.concat([data, simulate(config_module, CELL, 1)], ignore_index=True)
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        groups, fits = fit_batch(
            engine,
            compile_program("partial_pooling"),
            cell,
            batch,
            fit_settings(config_module),
            progress=lambda m: None,
        )
    tables.to_table(groups, tables.GROUPS)
    tables.to_table(fits, tables.FITS)
    assert fits["status"].tolist() == ["ok", "ok"] and len(groups) == 2 * len(data)
    assert (fits["rhat_max"] < 1.1).all() and (fits["tau_mean"] > 0).all()
    assert (groups["p_q025"] <= groups["p_median"]).all() and (
        groups["p_median"] <= groups["p_q975"]
    ).all()


def test_failing_fit_is_recorded_not_raised(compile_program, config_module, data):
    cell = FitCell(CELL, "brms_default", "partial")
    broken = data.assign(y=data["n"] + 1)  # y > n: Stan rejects every initial value
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        groups, fits = fit_batch(
            engine,
            compile_program("partial_pooling"),
            cell,
            broken,
            fit_settings(config_module),
            progress=lambda m: None,
        )
    row = fits.iloc[0]
    assert row["status"] == "error" and row["attempts"] == 2
    assert "Initialization failed" in row["message"] or "must be" in row["message"]
    assert groups.empty
    tables.to_table(fits, tables.FITS)


def test_cmdstanpy_without_cmdstan_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "missing"))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    with pytest.raises(EngineError, match="engine: pystan"):
        resolve_engine("cmdstanpy")
    assert resolve_engine("auto") == "pystan"


needs_cmdstan = pytest.mark.skipif(
    find_cmdstan() is None,
    reason="CmdStan not installed here ($CMDSTAN, ~/.cmdstan, $CONDA_PREFIX/bin/cmdstan); "
    "install conda-forge cmdstan (environment.yml) to run the cmdstanpy tests",
)


@needs_cmdstan
def test_cmdstanpy_and_pystan_agree(compile_program, data):
    """Same program, same data, two engines: same draws layout and posterior within MCSE."""
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        a, xa = posterior(engine, compile_program("partial_pooling"), "partial_pooling", data)
    with make_engine("cmdstanpy", cache_dir=".cache", model_dir=".", threads=2) as engine:
        b, xb = posterior(
            engine, compile_program("partial_pooling", "cmdstanpy"), "partial_pooling", data
        )
    assert a.params.keys() == b.params.keys() and a.sampler.keys() == b.sampler.keys()
    assert all(a.params[k].shape == b.params[k].shape for k in a.params)
    se = np.hypot(
        xa.std(axis=(0, 1)) / np.sqrt(diagnostics.ess_bulk(xa)),
        xb.std(axis=(0, 1)) / np.sqrt(diagnostics.ess_bulk(xb)),
    )
    assert np.all(np.abs(xa.mean(axis=(0, 1)) - xb.mean(axis=(0, 1))) < 4 * se)
