"""Fit one data set with Stan and reduce the fit to summaries and diagnostics (every study).

A failing fit never raises: it is recorded with ``status`` and ``message``. Retry policy,
until ``retry.max_attempts`` attempts are used: a fit with divergent transitions is refitted
with the same seed and ``retry.adapt_delta``; a fit whose sampler raised is refitted with a
new seed derived from (key, replicate, attempt) (:func:`attempt_seed`), so a deterministic
failure does not simply repeat and the seeds do not depend on job order or batching. A fit
still divergent after that is kept with status ``divergent``; one whose sampler raised every
time is kept with status ``error`` and no estimates. Every attempt's seed, adapt_delta and
outcome is kept in ``attempts_log`` (:func:`attempts_log`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shrinksim import diagnostics, families
from shrinksim.design import FitCell, stan_seed
from shrinksim.engines import CompiledModel, Draws, Engine, SamplerSettings, SamplingError
from shrinksim.priors import Prior, parse_prior

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


def outcomes(groups: pd.DataFrame) -> pd.DataFrame:
    """Per-outcome (bernoulli) form of one data set: one row per outcome, ``group`` and ``y``."""
    n, y = groups["n"].to_numpy(), groups["y"].to_numpy()
    ones = np.concatenate([np.arange(k) < s for k, s in zip(n, y, strict=True)])
    return pd.DataFrame({"group": np.repeat(groups["group"].to_numpy(), n), "y": ones.astype(int)})


def stan_data(
    program: str,
    groups: pd.DataFrame,
    intercept_prior: Prior,
    tau_prior: Prior | None = None,
    *,
    log_lik: bool = False,
    sigma_prior: Prior | None = None,
) -> dict[str, Any]:
    """Stan data for ``program`` from one data set's group rows (priors encoded as data).

    ``log_lik`` sets the flag ``compute_log_lik``: with it the program also writes the
    per-group log-likelihood ``log_lik`` (a generated quantity without random numbers, so the
    draws are the same either way); the study and SBC leave it off and pay nothing.
    Programs of the poisson, gaussian and gaussian_se families take their groups' columns
    and ``sigma_prior`` as :func:`shrinksim.families.stan_data` says.
    """
    if not families.is_binomial(program):
        return families.stan_data(
            program, groups, intercept_prior, tau_prior, sigma_prior=sigma_prior, log_lik=log_lik
        )
    data: dict[str, Any] = {"G": len(groups), **intercept_prior.stan_data("mu_prior")}
    if program == "partial_pooling_bernoulli":
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
    data["compute_log_lik"] = int(log_lik)
    return data


def example_data(program: str) -> dict[str, Any]:
    """A tiny valid data set for ``program`` (compiling with PyStan needs one)."""
    groups = families.example_groups(
        "partial_pooling" if families.is_binomial(program) else program
    )
    return stan_data(program, groups, Prior("normal", (0.0, 1.0)), Prior("normal", (0.0, 1.0)))


def group_draws(draws: Draws, model: str, groups: int) -> np.ndarray:
    """Draws of every group's effect theta (log-odds for binomial), shape (chains, draws,
    groups): the program's own ``theta`` where it writes one (no pooling, and the
    marginalised partial-pooling programs, which draw it in generated quantities), else
    mu + tau * z (partial) or mu (complete)."""
    p = draws.params
    if model == "partial":
        if "theta" in p:
            return p["theta"]
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


HYPERPARAMETERS = ("mu", "tau", "sigma")
"""Scalar parameters judged apart from the group effects (those a program has; sigma, the
within-group sd, only in the gaussian family)."""


def _extreme(reduce: Callable[..., Any], values: np.ndarray) -> float:
    """``reduce`` (np.nanmax or np.nanmin) of ``values``; NaN if there are none or all are NaN."""
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(reduce(values))


def diagnose(draws: Draws, theta: np.ndarray, max_treedepth: int) -> dict[str, Any]:
    """Sampler diagnostics of one fit: divergences, tree-depth hits, smallest E-BFMI of a
    chain, and the largest R-hat and smallest bulk and tail ESS over mu, tau and every theta
    (``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``), and separately over the
    hyperparameters (``*_hyper_*``: mu and tau, those the program has; NaN for none) and over
    the group effects theta (``*_groups_*``)."""
    scalars = [draws.params[k][..., None] for k in HYPERPARAMETERS if k in draws.params]
    monitored = np.concatenate([*scalars, theta], axis=-1)
    values = {
        "rhat": diagnostics.rhat(monitored),
        "ess_bulk": diagnostics.ess_bulk(monitored),
        "ess_tail": diagnostics.ess_tail(monitored),
    }
    row = {
        "divergences": int(draws.sampler["divergent__"].sum()),
        "treedepth_hits": int((draws.sampler["treedepth__"] >= max_treedepth).sum()),
        "ebfmi_min": float(np.min(diagnostics.ebfmi(draws.sampler["energy__"]))),
        "rhat_max": float(np.nanmax(values["rhat"])),
        "ess_bulk_min": float(np.nanmin(values["ess_bulk"])),
        "ess_tail_min": float(np.nanmin(values["ess_tail"])),
        "sampling_seconds": draws.seconds,
    }
    for part, where in (("hyper", slice(0, len(scalars))), ("groups", slice(len(scalars), None))):
        row[f"rhat_{part}_max"] = _extreme(np.nanmax, values["rhat"][where])
        for name in ("ess_bulk", "ess_tail"):
            row[f"{name}_{part}_min"] = _extreme(np.nanmin, values[name][where])
    return row


def observed(groups: pd.DataFrame, family: families.OutcomeFamily) -> pd.DataFrame:
    """Each group's own estimate: ``obs_p`` on the natural scale and ``obs_logit`` on theta's
    (binomial: observed proportion and empirical log-odds log((y + 1/2) / (n - y + 1/2));
    :func:`shrinksim.families.observed_effect`)."""
    return groups.assign(
        obs_p=families.observed_natural(family, groups),
        obs_logit=families.observed_effect(family, groups),
    )


def sigma_prior(settings: Mapping[str, Any]) -> Prior | None:
    """The prior on the within-group sd of ``settings["sigma_prior"]``; None where unset
    (the programs' default, :data:`shrinksim.families.DEFAULT_SIGMA_PRIOR`)."""
    text = settings.get("sigma_prior")
    return parse_prior(text, "sigma_prior") if text else None


def attempt_seed(seed: int, key: str, replicate: int, attempt: int) -> int:
    """Stan seed of attempt ``attempt`` (1, 2, ...) of the fit (``key``, replicate) after a
    sampler error: the fit's own seed for the first attempt, a new seed derived from
    (``key``, replicate, attempt) for every later one."""
    if attempt == 1:
        return stan_seed(seed, key, replicate)
    return stan_seed(seed, f"{key}/attempt~{attempt}", replicate)


def attempts_log(attempts: list[tuple[int, float, str]]) -> str:
    """Every attempt's seed, adapt_delta and outcome (ok, divergent, error) as
    ``"1:seed:adapt_delta:outcome;2:..."``, in order; e.g. ``"1:17:0.9:error;2:83:0.9:ok"``."""
    return ";".join(
        f"{i}:{seed}:{delta:g}:{outcome}" for i, (seed, delta, outcome) in enumerate(attempts, 1)
    )


def fit_replicate(
    engine: Engine,
    compiled: CompiledModel,
    cell: FitCell,
    groups: pd.DataFrame,
    settings: Mapping[str, Any],
    replicate: int,
    key: str | None = None,
    on_draws: Callable[[Draws, np.ndarray], None] | None = None,
    log_lik: bool = False,
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Fit one data set, with retries; return group summaries (None on error) and a fit row.

    The Stan seed derives from (``key``, replicate); ``key`` defaults to the cell's seed key
    (retries: see the module docstring). ``seed`` in the row is the seed of the last attempt,
    the one whose draws are kept. ``on_draws(draws, theta)``, if given, sees the draws of a
    fit that sampled (e.g. to keep them for figures); ``log_lik`` asks the program for the
    per-group log-likelihood (:func:`stan_data`), in ``draws.params["log_lik"]``.
    """
    sampler = SamplerSettings.from_config(settings["sampler"])
    family = families.study_family(settings)
    intercept = parse_prior(settings["intercept_prior"], "intercept_prior")
    tau_prior = (
        parse_prior(settings["tau_prior"], f"priors.{cell.prior}")
        if cell.model == "partial"
        else None
    )
    program = family.study_program(cell.model)
    data = stan_data(
        program, groups, intercept, tau_prior, log_lik=log_lik, sigma_prior=sigma_prior(settings)
    )
    key = cell.key if key is None else key
    seed = attempt_seed(int(settings["seed"]), key, replicate, 1)
    row: dict[str, Any] = {"replicate": replicate, "engine": engine.name, "message": ""}
    attempts = int(settings["retry"]["max_attempts"])
    log: list[tuple[int, float, str]] = []
    draws = None
    for attempt in range(1, attempts + 1):
        if log and log[-1][2] == "error":
            seed = attempt_seed(int(settings["seed"]), key, replicate, attempt)
        row |= {"attempts": attempt, "adapt_delta": sampler.adapt_delta, "seed": seed}
        try:
            draws = engine.sample(compiled, data, sampler, seed)
        except SamplingError as err:
            row |= {"status": "error", "message": str(err)[:2000]}
            log.append((seed, sampler.adapt_delta, "error"))
            draws = None
            continue
        divergences = int(draws.sampler["divergent__"].sum())
        row |= {"status": "ok" if divergences == 0 else "divergent", "message": ""}
        log.append((seed, sampler.adapt_delta, row["status"]))
        if divergences == 0 or attempt == attempts:
            if divergences:
                row["message"] = f"{divergences} divergent transitions after {attempt} attempts"
            break
        sampler = replace(
            sampler, adapt_delta=max(sampler.adapt_delta, settings["retry"]["adapt_delta"])
        )
    row["attempts_log"] = attempts_log(log)
    if draws is None:
        return None, row
    theta = group_draws(draws, cell.model, len(groups))
    if on_draws is not None:
        on_draws(draws, theta)
    row |= diagnose(draws, theta, sampler.max_treedepth)
    for name in HYPERPARAMETERS:
        if name in draws.params:
            row |= {k: float(v) for k, v in summarise(draws.params[name], name).items()}
    natural = family.natural(theta)
    summary = observed(groups, family).assign(
        **summarise(theta, "theta"), **summarise(natural, "p")
    )
    return summary, row
