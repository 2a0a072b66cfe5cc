"""The peer of part 8 of ``make bench`` (:mod:`shrinksim.bench.peer`): the binomial
partial-pooling program (``stan/partial_pooling.stan``) as a PyMC model, and the timed job
that samples it with nutpie, ``python -m shrinksim.bench.peer job ...`` (:func:`run_peer_job`).

Needs the optional extra ``peer`` (pymc, nutpie) in the interpreter that runs the job (this
one, or ``--peer-python``: another venv's, with this package on its ``PYTHONPATH``); nothing
here imports them at module level.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from shrinksim.bench import python_env

PEER_INSTALL = "pip install -e '.[peer]', or --peer-python PATH of a venv that has them"
"""How to include the peer: the optional extra of pyproject.toml, or another interpreter."""
PEER_MODULES = ("pymc", "nutpie")
"""What the peer needs importable."""


def peer_problem(modules: Sequence[str] = PEER_MODULES, python: str = sys.executable) -> str | None:
    """Why the peer cannot run with the interpreter ``python`` (``None``: it can): ``import``
    of ``modules`` and of this package in a child process (a broken install fails there, not
    in the bench)."""
    code = f"import {', '.join(modules)}"
    try:
        done = subprocess.run(
            [python, "-c", f"{code}, shrinksim.bench.peer"],
            capture_output=True,
            text=True,
            env=python_env(),
        )
    except OSError as err:
        done = subprocess.CompletedProcess([], 1, "", f"{type(err).__name__}: {err}")
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["failed"])[-1]
    where = "" if python == sys.executable else f" with {python}"
    return f"`{code}` fails{where} ({last}); to include it: {PEER_INSTALL}"


# -- the peer's model and job ---------------------------------------------------------------


def pymc_prior(pm: types.ModuleType, name: str, prior: Any, *, positive: bool) -> Any:
    """The PyMC random variable of a shrinksim :class:`~shrinksim.priors.Prior` (inside a
    model context). ``positive``: the prior of a parameter declared ``<lower=0>`` in Stan,
    i.e. the half-distribution, which PyMC has for a location of 0 only."""
    args = prior.args
    if prior.family == "exponential":
        if not positive:
            raise ValueError(f"{name}: exponential prior on an unbounded parameter")
        return pm.Exponential(name, lam=args[0])
    loc = args[1] if prior.family == "student_t" else args[0]
    scale = args[-1]
    if positive and loc != 0:
        raise ValueError(f"{name}: a prior truncated at 0 with location {loc} has no PyMC twin")
    if prior.family == "student_t":
        if positive:
            return pm.HalfStudentT(name, nu=args[0], sigma=scale)
        return pm.StudentT(name, nu=args[0], mu=loc, sigma=scale)
    if prior.family == "normal":
        return pm.HalfNormal(name, sigma=scale) if positive else pm.Normal(name, loc, scale)
    if prior.family == "cauchy":
        return pm.HalfCauchy(name, beta=scale) if positive else pm.Cauchy(name, loc, scale)
    raise ValueError(f"{name}: prior family {prior.family!r} not mapped to PyMC")


def peer_model(groups: Any, mu_prior: Any, tau_prior: Any) -> Any:
    """``stan/partial_pooling.stan`` as a ``pm.Model``: y and n as ``pm.Data`` (so one
    compiled model serves every data set of the same size), non-centred z."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", groups["y"].to_numpy(dtype=np.int64))
        n = pm.Data("n", groups["n"].to_numpy(dtype=np.int64))
        mu = pymc_prior(pm, "mu", mu_prior, positive=False)
        tau = pymc_prior(pm, "tau", tau_prior, positive=True)
        z = pm.Normal("z", 0.0, 1.0, shape=y.shape[0])
        pm.Binomial("y_obs", n=n, logit_p=mu + tau * z, observed=y)
    return model


def nutpie_draws(trace: Any, seconds: float) -> Any:
    """nutpie's InferenceData of the peer's model as shrinksim's :class:`Draws`."""
    from shrinksim.engines.nutpie import trace_draws

    return trace_draws(trace, ("mu", "tau", "z"), seconds)


def run_peer_job(args: argparse.Namespace) -> None:
    """The peer's timed job: import PyMC and nutpie, build and compile the model once, fit
    every replicate of ``--data`` (``compiled.with_data``), then the same diagnostics and
    summaries as part 1's job; save timings (and with ``--draws`` mu, tau, theta)."""
    start = time.perf_counter()
    import nutpie
    import pymc  # noqa: F401 (timed: what a job pays)

    imported = time.perf_counter()
    from shrinksim.engines import SamplerSettings
    from shrinksim.fitting import diagnose, group_draws, summarise
    from shrinksim.priors import parse_prior

    settings = json.loads(args.settings)
    data = pq.read_table(args.data).to_pandas()
    replicates = sorted(set(data["replicate"]))
    by_replicate = {r: data[data["replicate"] == r].reset_index(drop=True) for r in replicates}
    mu_prior = parse_prior(settings["intercept_prior"], "intercept_prior")
    tau_prior = parse_prior(settings["tau_prior"], "tau_prior")
    sampler = SamplerSettings.from_config(settings["sampler"])
    first = by_replicate[replicates[0]]
    model = peer_model(first, mu_prior, tau_prior)
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    ready = time.perf_counter()
    out: dict[str, list[Any]] = {"sampling_seconds": [], "sampling_cpu": []}
    out |= {"leapfrog": [], "divergences": []}
    out |= {"mu": [], "tau": [], "theta": []} if args.draws else {}
    for replicate in replicates:
        groups = by_replicate[replicate]
        if len(groups) != len(first):
            raise ValueError("with_data needs data sets of one size; recompile per size")
        fit_model = compiled.with_data(
            y=groups["y"].to_numpy(dtype=np.int64), n=groups["n"].to_numpy(dtype=np.int64)
        )
        began, cpu = time.perf_counter(), time.process_time()
        trace = nutpie.sample(
            fit_model,
            chains=sampler.chains,
            tune=sampler.warmup,
            draws=sampler.draws,
            cores=1,
            seed=args.seed + replicate,
            progress_bar=False,
            save_warmup=False,
            target_accept=sampler.adapt_delta,
            maxdepth=sampler.max_treedepth,
        )
        draws = nutpie_draws(trace, time.perf_counter() - began)
        out["sampling_cpu"].append(time.process_time() - cpu)
        theta = group_draws(draws, "partial", len(groups))
        diagnose(draws, theta, sampler.max_treedepth)
        summarise(theta, "theta")
        out["sampling_seconds"].append(draws.seconds)
        out["leapfrog"].append(draws.sampler["n_leapfrog__"].mean())
        out["divergences"].append(draws.sampler["divergent__"].sum())
        if args.draws:
            out["mu"].append(draws.params["mu"])
            out["tau"].append(draws.params["tau"])
            out["theta"].append(theta)
    arrays = {name: np.asarray(values) for name, values in out.items()}
    np.savez(args.out, imports=imported - start, compile=ready - imported, **arrays)
