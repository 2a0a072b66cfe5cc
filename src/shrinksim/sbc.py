"""Simulation-based calibration (SBC) of the partial-pooling Stan program.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference
algorithms with simulation-based calibration", arXiv:1804.06788: draw (mu, tau, z) from the
prior, simulate binomial groups given them, fit the model, and rank each true value among
``L`` thinned posterior draws. If the program, the priors' encoding and the sampler are
right, every rank is uniform on {0, ..., L}.

Uniformity is judged with the ECDF of the ranks against simultaneous bands (Säilynoja,
Bürkner & Vehtari 2022, "Graphical test for discrete uniformity and its applications in
goodness-of-fit evaluation and multiple sample comparison", Statistics and Computing 32:32,
the simulation method): at z_i = i / (L + 1), i = 1..L, the count of ranks below i is
Binomial(N, z_i) under uniformity; a sample's statistic is the smallest two-sided pointwise
tail probability over all i; its p-value is the share of simulated uniform samples whose
statistic is as small or smaller, and the 95 % band is the pointwise binomial band at the
level whose simultaneous coverage is 95 %. P-values are Holm-adjusted over every
(n, prior, parameter).

Every group of an SBC data set comes from the model (no control group); n_g follows the
study's ``simulation.n_sd``. A fit whose sampler raised has no ranks and is counted; fits
with divergent transitions are kept (dropping them would bias the ranks) and counted.
"""

from __future__ import annotations

import difflib
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from shrinksim import diagnostics, tables
from shrinksim.config import Prior, n_sd, parse_prior, seed_sequence, stan_seed
from shrinksim.engine import Engine, SamplerSettings, SamplingError
from shrinksim.fit import stan_data
from shrinksim.simulate import group_sizes

PROGRAM = "partial_pooling"
"""The Stan program under calibration (file stem in ``stan/``)."""

NULL_SIMULATIONS = 20_000
"""Uniform rank samples simulated for the band and the p-value (p-values >= 1 / 20,001)."""

NULL_SEED = 20220302
"""Seed of those simulations (fixed: bands and p-values are deterministic)."""

BAND_LEVEL = 0.95
"""Simultaneous coverage of the plotted ECDF band."""


@dataclass(frozen=True)
class SbcCell:
    """One SBC design: mean outcomes per group, groups per data set, prior on tau."""

    n: int
    groups: int
    prior: str

    @property
    def path(self) -> str:
        """Readable path segment, e.g. ``n~10/groups~10/prior~brms_default``."""
        return f"n~{self.n}/groups~{self.groups}/prior~{self.prior}"

    @property
    def key(self) -> str:
        """Seed key: distinct from every key of the shrinkage study's cells."""
        return f"sbc/{self.path}"

    @classmethod
    def from_path(cls, path: str) -> SbcCell:
        """Inverse of :attr:`path`."""
        parts = dict(p.split("~", 1) for p in path.strip("/").split("/"))
        return cls(int(parts["n"]), int(parts["groups"]), parts["prior"])


def cells(config: Mapping[str, Any]) -> list[SbcCell]:
    """Every SBC design of the configuration: each n under each prior."""
    sbc = config["sbc"]
    return [SbcCell(int(n), int(sbc["groups"]), p) for n in sbc["n"] for p in sbc["prior"]]


def batches(config: Mapping[str, Any]) -> list[list[int]]:
    """Simulation indices split into jobs of at most ``sbc.batch_size`` simulations."""
    total, size = int(config["sbc"]["simulations"]), int(config["sbc"]["batch_size"])
    return [list(range(start, min(start + size, total))) for start in range(0, total, size)]


def job_settings(config: Mapping[str, Any], cell_path: str) -> str:
    """JSON of what an SBC job's numbers depend on (Snakemake reruns the job when it changes)."""
    settings = {
        "seed": config["seed"],
        "intercept_prior": config["intercept_prior"],
        "tau_prior": config["priors"][SbcCell.from_path(cell_path).prior],
        "simulation": {"n_sd": config["simulation"]["n_sd"]},
        "sbc": {key: config["sbc"][key] for key in ("group_effects", "thin_to", "sampler")},
    }
    return json.dumps(settings, sort_keys=True)


def parameters(group_effects: int) -> list[str]:
    """Names of the ranked quantities: mu, tau and theta[1..group_effects]."""
    return ["mu", "tau", *(f"theta[{g}]" for g in range(1, group_effects + 1))]


def problems(config: Mapping[str, Any]) -> list[str]:
    """Semantic problems of the ``sbc`` section (the schema has checked its types)."""
    sbc = config["sbc"]
    found = []
    for i, name in enumerate(sbc["prior"]):
        if name not in config["priors"]:
            close = difflib.get_close_matches(name, list(config["priors"]), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(
                f"sbc.prior[{i}]: unknown prior {name!r}{hint}; "
                f"defined in priors: {sorted(config['priors'])}"
            )
    kept = sbc["sampler"]["chains"] * sbc["sampler"]["draws"]
    if sbc["thin_to"] > kept:
        found.append(
            f"sbc.thin_to: {sbc['thin_to']} is more than the {kept} posterior draws "
            "(sbc.sampler.chains x sbc.sampler.draws)"
        )
    if sbc["group_effects"] > sbc["groups"]:
        found.append(f"sbc.group_effects: {sbc['group_effects']} is more than sbc.groups")
    return found


def draw_prior(rng: np.random.Generator, prior: Prior, positive: bool) -> float:
    """One draw from ``prior``; ``positive`` truncates it to x >= 0 (Stan's lower=0)."""
    family, args = prior.family, prior.args
    while True:
        if family == "student_t":
            x = args[1] + args[2] * rng.standard_t(args[0])
        elif family == "normal":
            x = rng.normal(args[0], args[1])
        elif family == "cauchy":
            x = args[0] + args[1] * rng.standard_cauchy()
        else:
            x = rng.exponential(1.0 / args[0])
        if not positive or x >= 0:
            return float(x)


def simulate(
    settings: Mapping[str, Any], cell: SbcCell, simulation: int
) -> tuple[dict[str, float], pd.DataFrame]:
    """Truth and data of one simulation: (mu, tau, z) from the prior, then binomial groups.

    Returns the true values of :func:`parameters` and the groups (``group``, ``n``, ``y``).
    """
    rng = np.random.default_rng(seed_sequence(int(settings["seed"]), cell.key, simulation))
    mu = draw_prior(rng, parse_prior(settings["intercept_prior"], "intercept_prior"), False)
    tau = draw_prior(rng, parse_prior(settings["tau_prior"], f"priors.{cell.prior}"), True)
    z = rng.standard_normal(cell.groups)
    theta = mu + tau * z
    n = group_sizes(rng, cell.n, n_sd(settings, cell.n), cell.groups)
    groups = pd.DataFrame(
        {"group": np.arange(1, cell.groups + 1), "n": n, "y": rng.binomial(n, expit(theta))}
    )
    k = int(settings["sbc"]["group_effects"])
    truth = {"mu": mu, "tau": tau} | {f"theta[{g}]": float(theta[g - 1]) for g in range(1, k + 1)}
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
    compiled: dict[str, str],
    cell: SbcCell,
    settings: Mapping[str, Any],
    simulation: int,
) -> list[dict[str, Any]]:
    """Simulate, fit and rank one simulation; one row per parameter (no ranks on error)."""
    sbc = settings["sbc"]
    truth, groups = simulate(settings, cell, simulation)
    data = stan_data(
        PROGRAM,
        groups,
        parse_prior(settings["intercept_prior"], "intercept_prior"),
        parse_prior(settings["tau_prior"], f"priors.{cell.prior}"),
    )
    seed = stan_seed(int(settings["seed"]), cell.key, simulation)
    base = {"n_per_group": cell.n, "groups": cell.groups, "prior": cell.prior}
    base |= {"simulation": simulation, "thinned_draws": int(sbc["thin_to"])}
    try:
        draws = engine.sample(compiled, data, SamplerSettings.from_config(sbc["sampler"]), seed)
    except SamplingError as err:
        return [
            base
            | {"parameter": name, "true_value": value, "status": "error"}
            | {"message": str(err)[:2000]}
            for name, value in truth.items()
        ]
    k = int(sbc["group_effects"])
    p = draws.params
    monitored = {"mu": p["mu"], "tau": p["tau"]}
    for g in range(1, k + 1):
        monitored[f"theta[{g}]"] = p["mu"] + p["tau"] * p["z"][..., g - 1]
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
    compiled: dict[str, str],
    cell: SbcCell,
    settings: Mapping[str, Any],
    simulations: list[int],
    progress: Callable[[str], None] = print,
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


def _tail_probability(below: np.ndarray, size: int, z: np.ndarray) -> np.ndarray:
    """Smallest two-sided pointwise tail probability of counts ``below`` (..., L) at ``z``."""
    lower = stats.binom.cdf(below, size, z)
    upper = stats.binom.sf(below - 1, size, z)
    return np.min(np.minimum(1.0, 2.0 * np.minimum(lower, upper)), axis=-1)


def _evaluation_points(thinned: int) -> np.ndarray:
    return np.arange(1, thinned + 1) / (thinned + 1)


def counts_below(ranks: np.ndarray, thinned: int) -> np.ndarray:
    """Number of ranks below i for i = 1..L (ranks on {0, ..., L})."""
    return np.cumsum(np.bincount(ranks, minlength=thinned + 1))[:thinned]


@functools.cache
def null_statistics(size: int, thinned: int) -> np.ndarray:
    """Sorted statistics of :data:`NULL_SIMULATIONS` samples of ``size`` uniform ranks."""
    rng = np.random.default_rng(NULL_SEED)
    bins = rng.multinomial(size, np.full(thinned + 1, 1.0 / (thinned + 1)), NULL_SIMULATIONS)
    below = np.cumsum(bins[:, :thinned], axis=1)
    return np.sort(_tail_probability(below, size, _evaluation_points(thinned)))


def uniformity_test(ranks: np.ndarray, thinned: int) -> tuple[float, float]:
    """ECDF test of discrete uniformity of ``ranks`` on {0, ..., thinned}: (statistic, p).

    The statistic is the smallest two-sided binomial tail probability of the ECDF over the
    evaluation points; p = (1 + #null statistics <= it) / (1 + #null simulations).
    """
    ranks = np.asarray(ranks, dtype=int)
    stat = float(
        _tail_probability(counts_below(ranks, thinned), ranks.size, _evaluation_points(thinned))
    )
    null = null_statistics(ranks.size, thinned)
    p = (1 + np.searchsorted(null, stat, side="right")) / (1 + null.size)
    return stat, float(p)


def ecdf_band(size: int, thinned: int, level: float = BAND_LEVEL) -> pd.DataFrame:
    """Simultaneous ``level`` band of the ECDF difference F(z) - z of ``size`` uniform ranks.

    Columns ``z``, ``lower`` and ``upper`` at the evaluation points z_i = i / (thinned + 1).
    """
    z = _evaluation_points(thinned)
    gamma = float(np.quantile(null_statistics(size, thinned), 1 - level))
    lower = stats.binom.ppf(gamma / 2, size, z) / size - z
    upper = stats.binom.ppf(1 - gamma / 2, size, z) / size - z
    return pd.DataFrame({"z": z, "lower": lower, "upper": upper})


def ecdf_difference(ranks: np.ndarray, thinned: int) -> pd.DataFrame:
    """ECDF difference F(z_i) - z_i of ``ranks`` at z_i = i / (thinned + 1)."""
    ranks = np.asarray(ranks, dtype=int)
    z = _evaluation_points(thinned)
    return pd.DataFrame({"z": z, "difference": counts_below(ranks, thinned) / ranks.size - z})


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error under any dependence)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    scaled = np.minimum(1.0, (p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def calibration_tests(ranks: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """One row per (n, groups, prior, parameter): uniformity p-value, Holm-adjusted over all.

    Fits without ranks (sampler errors) are left out and counted; divergent fits and fits
    whose smallest ESS is below the number of thinned draws are counted too.
    """
    key = ["n_per_group", "groups", "prior", "parameter"]
    rows = []
    for values, part in ranks.groupby(key, sort=True):
        ok = part.dropna(subset=["rank"])
        thinned = int(part["thinned_draws"].iloc[0])
        stat, p = uniformity_test(ok["rank"].to_numpy(int), thinned)
        rows.append(
            dict(zip(key, values, strict=True))
            | {
                "simulations": len(part),
                "ranked": len(ok),
                "errors": int((part["status"] == "error").sum()),
                "divergent": int((part["status"] == "divergent").sum()),
                "ess_below_thinned": int(
                    (np.fmin(ok["ess_bulk_min"], ok["ess_tail_min"]) < thinned).sum()
                ),
                "thinned_draws": thinned,
                "statistic": stat,
                "p_value": p,
            }
        )
    out = pd.DataFrame(rows).reindex(columns=tables.SBC_TESTS.names)
    out["p_adjusted"] = holm(out["p_value"].to_numpy())
    out["rejected"] = out["p_adjusted"] < alpha
    return out
