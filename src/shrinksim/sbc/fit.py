"""SBC fitting jobs: draw the truth from the prior, simulate, fit, and rank the truth.

Every group of an SBC data set comes from the model (no control group); n_g follows the
study's ``simulation.n_sd`` (outcomes; poisson: exposure; gaussian_se: se_g = 1 / sqrt(n_g),
the standard error of the mean of n_g unit-sd outcomes). Gaussian data draw sigma from
``sigma_prior`` too. A fit whose sampler raised has no ranks and is kept with status
``error``; fits with divergent transitions are kept (dropping them would bias the ranks)
with status ``divergent``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from shrinksim import diagnostics, tables
from shrinksim.design import n_sd, seed_sequence, stan_seed
from shrinksim.engines import CompiledModel, Engine, SamplerSettings, SamplingError
from shrinksim.families import OUTCOME_FAMILIES, simulate_data
from shrinksim.fitting import group_draws, sigma_prior, stan_data
from shrinksim.log import logger
from shrinksim.priors import parse_prior
from shrinksim.sbc.design import SbcCell
from shrinksim.study.simulate import group_sizes


def simulate(
    settings: Mapping[str, Any], cell: SbcCell, simulation: int
) -> tuple[dict[str, float], pd.DataFrame]:
    """Truth and data of one simulation: (mu, tau[, sigma], z) from the prior, then groups of
    the cell's family.

    Returns the true values of :func:`shrinksim.sbc.design.parameters` and the groups
    (``group`` and the family's columns: binomial ``n``, ``y``).
    """
    rng = np.random.default_rng(seed_sequence(int(settings["seed"]), cell.key, simulation))
    mu = parse_prior(settings["intercept_prior"], "intercept_prior").sample(rng, False)
    tau = parse_prior(settings["tau_prior"], f"priors.{cell.prior}").sample(rng, True)
    truth = {"mu": mu, "tau": tau}
    sigma = 1.0  # gaussian_se: unit-sd outcomes behind each estimate
    if cell.family == "gaussian":
        sigma = truth["sigma"] = parse_prior(settings["sigma_prior"], "sigma_prior").sample(
            rng, True
        )
    z = rng.standard_normal(cell.groups)
    theta = mu + tau * z
    n = group_sizes(rng, cell.n, n_sd(settings, cell.n), cell.groups)
    group = np.arange(1, cell.groups + 1)
    if cell.family == "binomial":
        groups = pd.DataFrame({"group": group, "n": n, "y": rng.binomial(n, expit(theta))})
    else:
        family = OUTCOME_FAMILIES[cell.family]
        sizes = sigma / np.sqrt(n) if family.size == "se" else n
        groups = pd.DataFrame({"group": group, **simulate_data(family, rng, theta, sizes, sigma)})
    k = int(settings["sbc"]["group_effects"])
    truth |= {f"theta[{g}]": float(theta[g - 1]) for g in range(1, k + 1)}
    return truth, groups


def thin(draws: np.ndarray, keep: int) -> np.ndarray:
    """``keep`` evenly spaced draws of (chains, draws) draws, chains one after another."""
    flat = draws.reshape(-1)
    return flat[np.round(np.linspace(0, flat.size - 1, keep)).astype(int)]


def rank(draws: np.ndarray, truth: float) -> int:
    """Number of draws below the true value: uniform on {0, ..., len(draws)} if calibrated."""
    return int(np.sum(draws < truth))


def fit_simulation(
    engine: Engine,
    compiled: CompiledModel,
    cell: SbcCell,
    settings: Mapping[str, Any],
    simulation: int,
) -> list[dict[str, Any]]:
    """Simulate, fit and rank one simulation; one row per parameter (no ranks on error)."""
    sbc = settings["sbc"]
    truth, groups = simulate(settings, cell, simulation)
    seed = stan_seed(int(settings["seed"]), cell.key, simulation)
    base = {"family": cell.family, "n_per_group": cell.n, "groups": cell.groups}
    base |= {"prior": cell.prior}
    base |= {"simulation": simulation, "thinned_draws": int(sbc["thin_to"])}
    try:
        # a count beyond Stan's int (poisson, mu from the far tail of its prior) is an error
        # row, as a sampler error is
        data = stan_data(
            cell.program,
            groups,
            parse_prior(settings["intercept_prior"], "intercept_prior"),
            parse_prior(settings["tau_prior"], f"priors.{cell.prior}"),
            log_lik=False,  # SBC ranks mu, tau and theta only: Stan writes no log-likelihood
            sigma_prior=sigma_prior(settings),
        )
        draws = engine.sample(compiled, data, SamplerSettings.from_config(sbc["sampler"]), seed)
    except (SamplingError, ValueError) as err:
        return [
            base
            | {"parameter": name, "true_value": value, "status": "error"}
            | {"message": str(err)[:2000]}
            for name, value in truth.items()
        ]
    k = int(sbc["group_effects"])
    p = draws.params
    monitored = {name: p[name] for name in ("mu", "tau", "sigma") if name in truth}
    theta = group_draws(draws, "partial", cell.groups)
    for g in range(1, k + 1):
        monitored[f"theta[{g}]"] = theta[..., g - 1]
    stacked = np.stack(list(monitored.values()), axis=-1)
    divergences = int(draws.sampler["divergent__"].sum())
    fit = {
        "status": "ok" if divergences == 0 else "divergent",
        "message": f"{divergences} divergent transitions" if divergences else "",
        "divergences": divergences,
        "rhat_max": float(np.nanmax(diagnostics.rhat(stacked))),
        "ess_bulk_min": float(np.nanmin(diagnostics.ess_bulk(stacked))),
        "ess_tail_min": float(np.nanmin(diagnostics.ess_tail(stacked))),
        "sampling_seconds": draws.seconds,
    }
    return [
        base
        | fit
        | {
            "parameter": name,
            "true_value": truth[name],
            "rank": rank(thin(x, int(sbc["thin_to"])), truth[name]),
            "posterior_mean": float(x.mean()),
            "posterior_sd": float(x.std(ddof=1)),
        }
        for name, x in monitored.items()
    ]


def fit_batch(
    engine: Engine,
    compiled: CompiledModel,
    cell: SbcCell,
    settings: Mapping[str, Any],
    simulations: list[int],
    progress: Callable[[str], None] = logger.info,
) -> pd.DataFrame:
    """Every simulation of a batch, as a table with the :data:`tables.SBC_RANKS` columns."""
    rows = []
    for i, simulation in enumerate(simulations, start=1):
        start = time.perf_counter()
        done = fit_simulation(engine, compiled, cell, settings, simulation)
        rows.extend(done)
        progress(
            f"sbc {cell.path} simulation {simulation} ({i}/{len(simulations)}): "
            f"{done[0]['status']}, {time.perf_counter() - start:.1f} s"
        )
    return pd.DataFrame(rows).reindex(columns=tables.SBC_RANKS.names)
