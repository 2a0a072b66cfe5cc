"""Fits of the user's data: each group once per prior with partial pooling and once with
each baseline, by the programs of the data's family
(:meth:`~shrinksim.families.OutcomeFamily.study_program`); and the design-matched data sets
of that family and their fits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from shrinksim.design import DataCell, FitCell, seed_sequence
from shrinksim.engines import CompiledModel, Engine
from shrinksim.families import OutcomeFamily, simulate_data, study_family
from shrinksim.fitting import fit_replicate
from shrinksim.log import logger
from shrinksim.shrinkage import fit_shrinkage, pooled_logit, shrinkage_ratios
from shrinksim.study.fit import fit_batch
from shrinksim.study.simulate import data_set, simulate_sizes
from shrinksim.tables import USER_FITS, USER_GROUPS
from shrinksim.userdata.design import design_key, design_sizes, treatment_sizes
from shrinksim.userdata.inference import failed_groups, inference_groups
from shrinksim.userdata.outcome import check_settings, data_family, population


def fit_key(prior: str, model: str) -> str:
    """Seed key of a fit of the user's data (replicate 0)."""
    return f"userdata/prior~{prior}/model~{model}"


def fit_user_data(
    engine: Engine,
    compiled: CompiledModel,
    data: pd.DataFrame,
    prior: str,
    model: str,
    settings: Mapping[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, xr.Dataset]]:
    """Fit the user's groups once with ``model`` (under ``prior`` for partial pooling).

    ``data`` are USER_DATA rows of one family (:func:`~shrinksim.userdata.outcome.data_family`),
    the family that ``settings`` name. Returns (groups, fit row, draws, inference):
    :data:`shrinksim.tables.USER_GROUPS` rows, a :data:`shrinksim.tables.USER_FITS` row, the
    draws (``chain``, ``draw``, ``mu``, ``tau``, ``sigma`` where the program has one,
    ``theta[i]`` for the i-th group of ``data``; absent mu and tau are NaN), and the fit's
    ArviZ InferenceData groups (:func:`shrinksim.userdata.inference.inference_groups`, with
    the per-group log-likelihood). A failed fit gives no group rows, no draws and observed
    data only.
    """
    family = data_family(data)
    check_settings(family, settings)
    treated = treatment_sizes(data)
    cell = FitCell(
        DataCell(int(round(treated.mean())), len(treated), "tau", float("nan")), prior, model
    )
    kept: dict[str, np.ndarray] = {}
    groups = data.reset_index(drop=True)
    attrs = {"prior": prior, "model": model, "engine": engine.name}
    inference = failed_groups(groups, attrs)

    def keep(draws: Any, theta: np.ndarray) -> None:
        nonlocal inference
        inference = inference_groups(draws, theta, groups, attrs)
        chains, iterations = theta.shape[:2]
        kept["chain"] = np.repeat(np.arange(chains), iterations)
        kept["draw"] = np.tile(np.arange(iterations), chains)
        for name in ("mu", "tau", *(["sigma"] if "sigma" in draws.params else [])):
            value = draws.params.get(name)
            kept[name] = (
                value.reshape(-1) if value is not None else np.full(theta[..., 0].size, np.nan)
            )
        for i in range(theta.shape[-1]):
            kept[f"theta[{i + 1}]"] = theta[..., i].reshape(-1)

    summary, row = fit_replicate(
        engine,
        compiled,
        cell,
        groups,
        settings,
        0,
        key=fit_key(prior, model),
        on_draws=keep,
        log_lik=True,
    )
    outcomes = int(data["n"].sum()) if "n" in family.columns else None
    row |= {"prior": prior, "model": model, "groups": len(data), "outcomes": outcomes}
    if summary is None:
        fit = pd.DataFrame([row]).reindex(columns=USER_FITS.names)
        return USER_GROUPS.empty_table().to_pandas(), fit, pd.DataFrame(), inference
    mu_mean = row.get("mu_mean", float("nan"))
    measured = fit_shrinkage(summary.assign(mu_mean=mu_mean), family)
    row |= measured.to_dict()
    pooled = pooled_logit(summary, mu_mean, family)
    summary["shrink_ratio"] = shrinkage_ratios(
        summary["obs_logit"].to_numpy(), summary["theta_mean"].to_numpy(), pooled
    )
    if model == "partial":
        outcome = population(family, row["mu_median"], row.get("sigma_median", float("nan")))
        summary["shrinkage_normal"] = outcome.theory(summary[family.size], row["tau_median"])
    else:
        summary["shrinkage_normal"] = np.nan
    summary = summary.assign(prior=prior, model=model)
    fit = pd.DataFrame([row]).reindex(columns=USER_FITS.names)
    return summary, fit, pd.DataFrame(kept).assign(prior=prior, model=model), inference


def simulate_design(
    seed: int, data: pd.DataFrame, point: Mapping[str, Any], scale: float, replicates: list[int]
) -> pd.DataFrame:
    """Data sets with the user's treatment-group sizes times ``scale`` (outcomes, exposure or
    se: :func:`shrinksim.userdata.design.design_sizes`) and the user's control group, at the
    true tau and population of design ``point`` (a row of
    :func:`shrinksim.userdata.design.design_points`), of the data's family; table
    :data:`shrinksim.tables.DATA`. Binomial data come from the study's generator
    (:func:`shrinksim.study.simulate.simulate_sizes`), the others from
    :func:`simulate_family`."""
    family = data_family(data)
    sizes = design_sizes(data, scale)
    key = design_key(scale, float(point["tau"]))
    if family.name != "binomial":
        sets = [simulate_family(seed, key, r, family, sizes, point) for r in replicates]
        return pd.concat(sets, ignore_index=True)
    return pd.concat(
        [
            simulate_sizes(
                seed,
                key,
                r,
                sizes,
                float(point["tau"]),
                float(point["p0"]),
                int(point["control_n"]),
                float(point["control_p"]),
            )
            for r in replicates
        ],
        ignore_index=True,
    )


def simulate_family(
    seed: int,
    key: str,
    replicate: int,
    family: OutcomeFamily,
    sizes: np.ndarray,
    point: Mapping[str, Any],
) -> pd.DataFrame:
    """One data set of ``family`` seeded by (``key``, replicate): treatment groups 1..G of the
    given sizes with theta_g = mu + tau z_g, and the control group 0 (when ``control_n`` >
    0) at its own observed theta ``control_theta``; data drawn by
    :func:`shrinksim.families.simulate_data` (gaussian: sd ``sigma`` of the point)."""
    rng = np.random.default_rng(seed_sequence(int(seed), key, replicate))
    theta = float(point["mu"]) + float(point["tau"]) * rng.standard_normal(len(sizes))
    groups, is_control = np.arange(1, len(sizes) + 1), np.zeros(len(sizes), dtype=bool)
    if float(point["control_n"]) > 0:
        theta = np.append(float(point["control_theta"]), theta)
        sizes = np.append(point["control_n"], sizes)
        groups, is_control = np.append(0, groups), np.append(True, is_control)
    frame = pd.DataFrame(
        {
            "group": groups,
            "is_control": is_control,
            "true_p": family.natural(theta),
            "true_logit": theta,
            **simulate_data(family, rng, theta, sizes, float(point.get("sigma", np.nan))),
        }
    )
    return data_set(frame, replicate)


def fit_design(
    engine: Engine,
    compiled: CompiledModel,
    simulated: pd.DataFrame,
    point: Mapping[str, Any],
    scale: float,
    prior: str,
    settings: Mapping[str, Any],
    progress: Callable[[str], None] = logger.info,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit simulated design-matched data sets with partial pooling under ``prior``; tables
    :data:`shrinksim.tables.GROUPS` and :data:`shrinksim.tables.FITS`, whose cell columns say
    n_per_group = the rounded mean treatment-group size, spread = the true tau; ``progress``
    gets one message per fit; the family is the one ``settings`` name."""
    first = simulated[simulated["replicate"] == simulated["replicate"].min()]
    treated = first.loc[~first["is_control"], study_family(settings).size]
    tau = float(point["tau"])
    cell = FitCell(DataCell(int(round(treated.mean())), len(treated), "tau", tau), prior, "partial")
    key = f"{design_key(scale, tau)}/prior~{prior}/model~partial"
    done = fit_batch(engine, compiled, cell, simulated, settings, progress=progress, key=key)
    return done.groups, done.fits
