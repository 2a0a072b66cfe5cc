"""Fit simulated data sets with Stan and reduce each fit to summaries and diagnostics.

A fitting job handles one fit cell and a batch of replicates in one process, with one
loaded engine. A failing fit never stops the batch: it is recorded with ``status`` and
``message``. Retry policy: a fit with divergent transitions is refitted with
``retry.adapt_delta`` (same seed) until ``retry.max_attempts`` attempts are used; a fit
still divergent after that is kept with status ``divergent``; a fit whose sampler raised
is kept with status ``error`` and no estimates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from shrinksim import diagnostics, tables
from shrinksim.config import (
    STAN_PROGRAMS,
    FitCell,
    Prior,
    parse_prior,
    seed_sequence,
    stan_seed,
)
from shrinksim.engine import Draws, Engine, SamplerSettings, SamplingError

QUANTILES = {
    "median": 0.5,
    "q025": 0.025,
    "q05": 0.05,
    "q25": 0.25,
    "q75": 0.75,
    "q95": 0.95,
    "q975": 0.975,
}
"""Posterior quantiles kept per quantity: the central 50, 90 and 95 % intervals and the median."""

DRAW_GROUPS = 12
"""Treatment groups whose thinned posterior draws are kept (first replicate of a partial fit job)."""

DRAWS_KEPT = 200
"""Thinned draws kept per group: evenly spaced over the pooled chains."""


class FitBatch(NamedTuple):
    """The tables of one fit job (schemas GROUPS, FITS and DRAWS of :mod:`shrinksim.tables`)."""

    groups: pd.DataFrame
    fits: pd.DataFrame
    draws: pd.DataFrame


def expit(x: np.ndarray) -> np.ndarray:
    """Inverse logit, in numpy: a fitting job does not import scipy (0.3 s per job)."""
    with np.errstate(over="ignore"):  # exp(-x) = inf for x < -709 gives 0, as it should
        return 1.0 / (1.0 + np.exp(-x))


def stan_data(
    program: str, groups: pd.DataFrame, intercept_prior: Prior, tau_prior: Prior | None = None
) -> dict[str, Any]:
    """Stan data for ``program`` from one data set's group rows (priors encoded as data)."""
    data: dict[str, Any] = {"G": len(groups), **intercept_prior.stan_data("mu_prior")}
    if program == "partial_pooling_bernoulli":
        from shrinksim.simulate import outcomes  # imports scipy: only for this program

        long = outcomes(groups)
        index = {g: i + 1 for i, g in enumerate(groups["group"])}
        data |= {
            "N": len(long),
            "group": long["group"].map(index).tolist(),
            "y": long["y"].tolist(),
        }
    else:
        data |= {"n": groups["n"].astype(int).tolist(), "y": groups["y"].astype(int).tolist()}
    if program.startswith("partial_pooling"):
        if tau_prior is None:
            raise ValueError(f"{program} needs a prior on tau")
        data |= tau_prior.stan_data("tau_prior")
    return data


def example_data(program: str) -> dict[str, Any]:
    """A tiny valid data set for ``program`` (compiling with PyStan needs one)."""
    groups = pd.DataFrame({"group": [1, 2], "n": [3, 4], "y": [1, 2]})
    return stan_data(program, groups, Prior("normal", (0.0, 1.0)), Prior("normal", (0.0, 1.0)))


def group_draws(draws: Draws, model: str, groups: int) -> np.ndarray:
    """Draws of every group's log-odds theta, shape (chains, draws, groups)."""
    p = draws.params
    if model == "partial":
        return p["mu"][..., None] + p["tau"][..., None] * p["z"]
    if model == "none":
        return p["theta"]
    return np.repeat(p["mu"][..., None], groups, axis=-1)


def summarise(x: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Mean, sd and the :data:`QUANTILES` over chains and draws (axes 0 and 1)."""
    flat = x.reshape(-1, *x.shape[2:])
    out = {f"{prefix}_mean": flat.mean(axis=0), f"{prefix}_sd": flat.std(axis=0, ddof=1)}
    qs = np.quantile(flat, list(QUANTILES.values()), axis=0)
    out |= {f"{prefix}_{name}": q for name, q in zip(QUANTILES, qs, strict=True)}
    return out


def diagnose(draws: Draws, theta: np.ndarray, max_treedepth: int) -> dict[str, Any]:
    """Sampler diagnostics of one fit; R-hat and ESS over mu, tau and every theta."""
    scalars = [draws.params[k][..., None] for k in ("mu", "tau") if k in draws.params]
    monitored = np.concatenate([*scalars, theta], axis=-1)
    return {
        "divergences": int(draws.sampler["divergent__"].sum()),
        "treedepth_hits": int((draws.sampler["treedepth__"] >= max_treedepth).sum()),
        "ebfmi_min": float(np.min(diagnostics.ebfmi(draws.sampler["energy__"]))),
        "rhat_max": float(np.nanmax(diagnostics.rhat(monitored))),
        "ess_bulk_min": float(np.nanmin(diagnostics.ess_bulk(monitored))),
        "ess_tail_min": float(np.nanmin(diagnostics.ess_tail(monitored))),
        "sampling_seconds": draws.seconds,
    }


def observed(groups: pd.DataFrame) -> pd.DataFrame:
    """Observed proportion and empirical log-odds log((y + 1/2) / (n - y + 1/2))."""
    n, y = groups["n"].to_numpy(float), groups["y"].to_numpy(float)
    return groups.assign(obs_p=y / n, obs_logit=np.log((y + 0.5) / (n - y + 0.5)))


def fit_replicate(
    engine: Engine,
    compiled: dict[str, str],
    cell: FitCell,
    groups: pd.DataFrame,
    settings: Mapping[str, Any],
    replicate: int,
    key: str | None = None,
    on_draws: Callable[[Draws, np.ndarray], None] | None = None,
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Fit one data set, with retries; return group summaries (None on error) and a fit row.

    The Stan seed derives from (``key``, replicate); ``key`` defaults to the cell's path.
    ``on_draws(draws, theta)``, if given, sees the draws of a fit that sampled (e.g. to keep
    them for figures).
    """
    sampler = SamplerSettings.from_config(settings["sampler"])
    intercept = parse_prior(settings["intercept_prior"], "intercept_prior")
    tau_prior = (
        parse_prior(settings["tau_prior"], f"priors.{cell.prior}")
        if cell.model == "partial"
        else None
    )
    data = stan_data(STAN_PROGRAMS[cell.model], groups, intercept, tau_prior)
    seed = stan_seed(int(settings["seed"]), cell.path if key is None else key, replicate)
    row: dict[str, Any] = {
        "replicate": replicate,
        "seed": seed,
        "engine": engine.name,
        "message": "",
    }
    attempts = int(settings["retry"]["max_attempts"])
    draws = None
    for attempt in range(1, attempts + 1):
        row |= {"attempts": attempt, "adapt_delta": sampler.adapt_delta}
        try:
            draws = engine.sample(compiled, data, sampler, seed)
        except SamplingError as err:
            row |= {"status": "error", "message": str(err)[:2000]}
            draws = None
            continue
        divergences = int(draws.sampler["divergent__"].sum())
        row |= {"status": "ok" if divergences == 0 else "divergent", "message": ""}
        if divergences == 0 or attempt == attempts:
            if divergences:
                row["message"] = f"{divergences} divergent transitions after {attempt} attempts"
            break
        sampler = replace(
            sampler, adapt_delta=max(sampler.adapt_delta, settings["retry"]["adapt_delta"])
        )
    if draws is None:
        return None, row
    theta = group_draws(draws, cell.model, len(groups))
    if on_draws is not None:
        on_draws(draws, theta)
    row |= diagnose(draws, theta, sampler.max_treedepth)
    for name in ("mu", "tau"):
        if name in draws.params:
            row |= {k: float(v) for k, v in summarise(draws.params[name], name).items()}
    summary = observed(groups).assign(**summarise(theta, "theta"), **summarise(expit(theta), "p"))
    return summary, row


def thinned_draws(
    theta: np.ndarray, groups: pd.DataFrame, seed: int, cell: FitCell, replicate: int
) -> pd.DataFrame:
    """Draws of p for :data:`DRAW_GROUPS` random treatment groups, thinned to
    :data:`DRAWS_KEPT` evenly spaced draws of the pooled chains; long format.

    The groups depend on the data cell and replicate only, so every prior shows the same ones.
    """
    rng = np.random.default_rng(seed_sequence(seed, "draws:" + cell.data.path, replicate))
    treatment = np.flatnonzero(~groups["is_control"].to_numpy())
    chosen = np.sort(rng.choice(treatment, min(DRAW_GROUPS, treatment.size), replace=False))
    pooled = theta.reshape(-1, theta.shape[-1])
    rows = np.unique(np.linspace(0, len(pooled) - 1, min(DRAWS_KEPT, len(pooled))).round())
    p = expit(pooled[rows.astype(int)][:, chosen]).astype(np.float32)
    return pd.DataFrame(
        {
            "replicate": replicate,
            "group": np.tile(groups["group"].to_numpy()[chosen], len(rows)),
            "draw": np.repeat(np.arange(len(rows)), len(chosen)),
            "p": p.ravel(),
        }
    )


def fit_batch(
    engine: Engine,
    compiled: dict[str, str],
    cell: FitCell,
    data: pd.DataFrame,
    settings: Mapping[str, Any],
    progress: Callable[[str], None] = print,
    key: str | None = None,
) -> FitBatch:
    """Fit every replicate in ``data``: group summaries, one row per fit, and thinned draws
    of the first replicate (partial pooling only; other models give an empty draws table).

    Stan seeds derive from (``key``, replicate), ``key`` defaulting to the cell's path.
    """
    cell_columns = {
        "n_per_group": cell.data.n,
        "groups": cell.data.groups,
        "spread_axis": cell.data.spread_axis,
        "spread": cell.data.spread,
        "prior": cell.prior,
        "model": cell.model,
    }
    summaries, rows, kept = [], [], []
    replicates = sorted(data["replicate"].unique())
    for i, replicate in enumerate(replicates, start=1):
        start = time.perf_counter()
        groups = data[data["replicate"] == replicate].reset_index(drop=True)
        keep = cell.model == "partial" and i == 1

        def keep_thinned(
            _: Draws, theta: np.ndarray, groups: pd.DataFrame = groups, rep: int = int(replicate)
        ) -> None:
            kept.append(thinned_draws(theta, groups, int(settings["seed"]), cell, rep))

        summary, row = fit_replicate(
            engine,
            compiled,
            cell,
            groups,
            settings,
            int(replicate),
            key,
            keep_thinned if keep else None,
        )
        if summary is not None:
            summaries.append(summary)
        rows.append(row)
        progress(
            f"{cell.path} replicate {replicate} ({i}/{len(replicates)}): {row['status']} "
            f"after {row['attempts']} attempt(s), {time.perf_counter() - start:.1f} s"
        )
    groups_out = (
        pd.concat(summaries, ignore_index=True)
        if summaries
        else tables.GROUPS.empty_table().to_pandas()
    )
    fits_out = pd.DataFrame(rows).reindex(columns=tables.FITS.names)
    draws_out = (
        pd.concat(kept, ignore_index=True) if kept else tables.DRAWS.empty_table().to_pandas()
    )
    return FitBatch(
        groups_out.assign(**cell_columns),
        fits_out.assign(**cell_columns),
        draws_out.assign(**cell_columns),
    )
