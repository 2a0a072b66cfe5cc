"""Real (small) Stan fits through both engines; failures are recorded, never raised."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from conftest import CACHE, REPO
from shrinksim import diagnostics, tables
from shrinksim.design import DataCell, FitCell
from shrinksim.doctor import version
from shrinksim.engines import SAMPLER_VARIABLES, SamplerSettings, find_cmdstan, make_engine
from shrinksim.fitting import stan_data
from shrinksim.priors import parse_prior
from shrinksim.settings import load_yaml
from shrinksim.study.fit import fit_batch
from shrinksim.study.simulate import simulate

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


_PYSTAN_REFERENCE = """
import json, sys
import numpy as np
import stan
r = json.load(sys.stdin)
model = stan.build(r["code"], data=r["data"], random_seed=r["seed"])
fit = model.sample(num_chains=2, num_warmup=100, num_samples=50, delta=0.9, max_depth=10)
np.savez(r["out"], **{k: fit[k] for k in ("mu", "tau", "z", "divergent__", "energy__")})
"""


needs_pystan = pytest.mark.skipif(
    version("pystan") is None,
    reason="PyStan is not installed (it cannot be on Python 3.13: its pysimdjson < 7 has no "
    "wheel there); the engine's direct path runs on httpstan alone",
)


@needs_pystan
def test_pystan_engine_gives_model_sample_draws(compile_program, data, tmp_path):
    """The direct services call reproduces PyStan's public ``model.sample()`` bit for bit."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    compiled = compile_program("partial_pooling")
    standata = stan_data("partial_pooling", data, PRIOR, PRIOR)
    # PyStan in a child process, on a private httpstan cache that links the compiled model.
    model_dir = Path(compiled.location)
    private = tmp_path / "httpstan" / model_dir.parent.parent.name / "models" / model_dir.name
    private.mkdir(parents=True)
    for item in model_dir.iterdir():
        (private / item.name).symlink_to(item)
    request = {"code": compiled.code, "data": standata, "seed": 5, "out": str(tmp_path / "r")}
    done = subprocess.run(
        [sys.executable, "-c", _PYSTAN_REFERENCE],
        input=json.dumps(request),
        env=os.environ | {"XDG_CACHE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reference = np.load(tmp_path / "r.npz")
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        ours = engine.sample(compiled, standata, SamplerSettings(2, 100, 50, 0.9, 10), seed=5)

    def same(ours: np.ndarray, theirs: np.ndarray) -> bool:
        # PyStan's layout: (*dims, draws * chains), chains interleaved; ours (chains, draws, *dims)
        flat = np.moveaxis(ours, (0, 1), (-1, -2)).reshape(*ours.shape[2:], -1)
        return np.array_equal(flat, theirs.reshape(flat.shape))

    for name in ("mu", "tau", "z"):
        assert same(ours.params[name], reference[name]), name
    for name in ("divergent__", "energy__"):
        assert same(ours.sampler[name], reference[name]), name


_FALLBACK = """
import json, sys
import numpy as np
from shrinksim.engines import CompiledModel, SamplerSettings, make_engine
from shrinksim.log import configure
configure()
r = json.load(sys.stdin)
compiled = CompiledModel.read(r["compiled"])
with make_engine("pystan", cache_dir=r["cache"], model_dir=".") as engine:
    runs = {seed: engine.sample(compiled, r["data"], SamplerSettings(*r["settings"]), seed)
            for seed in (3, 4)}
np.savez(r["out"], **{f"{k}_{seed}": v for seed, d in runs.items()
                      for k, v in (d.params | d.sampler).items()})
"""


@needs_pystan
def test_fallback_to_model_sample_gives_the_same_posterior(compile_program, data, tmp_path):
    """With the direct path off (``SHRINKSIM_PYSTAN_FAST=0``, as for an httpstan it was not
    tested with), a fitting process compiles and samples through PyStan's public API, says
    so once, and gets the same posterior. It runs in a child process, as a fitting job
    does: PyStan's in-process httpstan is never mixed with the direct path in one process.

    The same seed gives the same draws (the same C++ call with the same arguments). With
    different seeds the posterior means of mu, tau and every z agree within 4 combined MCSE
    (MCSE = sd / sqrt(bulk ESS); a false alarm has probability ~1e-4 per quantity).
    """
    import json
    import os
    import subprocess
    import sys

    from shrinksim.engines import fastpath

    compiled = compile_program("partial_pooling")
    standata = stan_data("partial_pooling", data, PRIOR, PRIOR)
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        assert engine.direct_problem(compiled) is None  # this machine's httpstan is tested
        direct = engine.sample(compiled, standata, SETTINGS, seed=3)
    compiled.write(tmp_path / "compiled.json")
    request = {
        "compiled": str(tmp_path / "compiled.json"),
        "cache": str(CACHE),
        "data": standata,
        "settings": dataclasses.astuple(SETTINGS),
        "out": str(tmp_path / "fallback.npz"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _FALLBACK],
        input=json.dumps(request),
        env=os.environ | {fastpath.SWITCH: "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = [line for line in done.stderr.splitlines() if "model.sample()" in line]
    assert len(said) == 1 and said[0].endswith(
        "partial_pooling: sampling with PyStan's model.sample(), not directly: "
        "SHRINKSIM_PYSTAN_FAST=0"
    )  # said once per model and process
    fallback = np.load(tmp_path / "fallback.npz")
    for name in ("mu", "tau", "z"):
        assert np.array_equal(fallback[f"{name}_3"], direct.params[name]), name
    for name in SAMPLER_VARIABLES:  # n_leapfrog__ included
        assert np.array_equal(fallback[f"{name}_3"], direct.sampler[name]), name

    a = np.concatenate(
        [direct.params["mu"][..., None], direct.params["tau"][..., None], direct.params["z"]], -1
    )
    b = np.concatenate(
        [fallback["mu_4"][..., None], fallback["tau_4"][..., None], fallback["z_4"]], -1
    )
    mcse = np.hypot(*(x.std(axis=(0, 1)) / np.sqrt(diagnostics.ess_bulk(x)) for x in (a, b)))
    assert np.all(np.abs(a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))) < 4 * mcse)
    # the test can fail: a shift of one posterior sd would be caught
    assert not np.all(
        np.abs(a.mean(axis=(0, 1)) + a.std(axis=(0, 1)) - b.mean(axis=(0, 1))) < 4 * mcse
    )


def test_fit_batch_outputs_match_schemas(compile_program, config_module, data):
    cell = FitCell(CELL, "brms_default", "partial")
    batch = pd.concat([data, simulate(config_module, CELL, 1)], ignore_index=True)
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        groups, fits, draws = fit_batch(
            engine,
            compile_program("partial_pooling"),
            cell,
            batch,
            fit_settings(config_module),
            progress=lambda m: None,
        )
    tables.to_table(groups, tables.GROUPS)
    tables.to_table(fits, tables.FITS)
    tables.to_table(draws, tables.DRAWS)
    assert fits["status"].tolist() == ["ok", "ok"] and len(groups) == 2 * len(data)
    assert (fits["rhat_max"] < 1.1).all() and (fits["tau_mean"] > 0).all()
    order = ["q025", "q05", "q25", "median", "q75", "q95", "q975"]
    for frame, prefix in [(groups, "theta"), (groups, "p"), (fits, "tau"), (fits, "mu")]:
        q = frame[[f"{prefix}_{name}" for name in order]].to_numpy()
        assert (np.diff(q, axis=1) >= 0).all(), prefix
    # thinned draws: first replicate only, all 10 treatment groups (fewer than 12), 200 of
    # the 2 x 200 draws. Their median per group must match the group's posterior median
    # within 0.5 posterior sd: the MC SE of a median of 200 draws is ~1.25 sd / sqrt(ESS),
    # <= 0.18 sd for an ESS >= 50, so 0.5 sd is ~3 SE even for poorly mixing chains.
    assert set(draws["replicate"]) == {0} and len(draws) == 10 * 200
    first = groups[(groups["replicate"] == 0) & ~groups["is_control"]].set_index("group")
    kept = draws.groupby("group")["p"]
    assert set(kept.groups) == set(first.index)
    assert ((kept.median() - first["p_median"]).abs() < 0.5 * first["p_sd"]).all()


def test_failing_fit_is_recorded_not_raised(compile_program, config_module, data):
    cell = FitCell(CELL, "brms_default", "partial")
    broken = data.assign(y=data["n"] + 1)  # y > n: Stan rejects every initial value
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        groups, fits, draws = fit_batch(
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
    assert groups.empty and draws.empty
    tables.to_table(fits, tables.FITS)
    tables.to_table(draws, tables.DRAWS)


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


def test_divergent_fit_is_retried_then_recorded(compile_program, config_module):
    """tau = 0 with 8 groups of 5 outcomes is a funnel: at adapt_delta 0.3 this seed
    diverges; the retry at 0.99 clears it. With no higher adapt_delta to retry with, the
    fit is kept with status 'divergent' and says so."""
    cell = FitCell(DataCell(5, 8, "tau", 0.0), "weak", "partial")
    data = simulate(config_module, cell.data, 0)
    settings = fit_settings(config_module) | {"seed": 1, "tau_prior": "student_t(3, 0, 10)"}
    settings["sampler"] = settings["sampler"] | {"adapt_delta": 0.3}
    compiled = compile_program("partial_pooling")
    with make_engine("pystan", cache_dir=".cache", model_dir=".") as engine:
        _, fixed, _ = fit_batch(engine, compiled, cell, data, settings, progress=lambda m: None)
        stuck = settings | {"retry": {"max_attempts": 2, "adapt_delta": 0.3}}
        _, kept, _ = fit_batch(engine, compiled, cell, data, stuck, progress=lambda m: None)
    assert fixed[["status", "attempts", "adapt_delta"]].iloc[0].tolist() == ["ok", 2, 0.99]
    assert fixed["divergences"].iloc[0] == 0
    row = kept.iloc[0]
    assert row["status"] == "divergent" and row["attempts"] == 2 and row["divergences"] > 0
    assert "divergent transitions after 2 attempts" in row["message"]


def test_pystan_compile_reuses_a_loadable_build_and_replaces_a_broken_one(
    compile_program, tmp_path, monkeypatch
):
    """A cached build is reused without starting PyStan; a truncated module is removed."""
    import shutil
    from pathlib import Path

    from shrinksim.engines import PyStanEngine

    compiled = compile_program("complete_pooling")
    cached = Path(compiled.location)
    # A private cache holding a copy of the build, under the same model name.
    cache = tmp_path / "cache"
    copy = cache / cached.relative_to(cached.parents[3])
    shutil.copytree(cached, copy)
    built = []
    monkeypatch.setattr(PyStanEngine, "_build", lambda *args: built.append(args))
    engine = PyStanEngine(cache)
    again = engine.compile(compiled.code, "complete_pooling", {})
    assert again == dataclasses.replace(compiled, location=str(copy))
    assert not built

    module = next(p for p in copy.iterdir() if p.suffix == ".so")
    head = module.read_bytes()[:4096]
    module.unlink()  # a new file: the loaded one stays mapped in this process
    module.write_bytes(head)  # a build cut short mid-link: loading it crashes with SIGBUS
    engine.compile(compiled.code, "complete_pooling", {})
    assert len(built) == 1
    assert not copy.exists()  # removed, so that httpstan builds it afresh
