"""Your-data fits as ArviZ InferenceData, and the PSIS-LOO comparison of the models.

Every fit of the user's data is also written as one netCDF file (h5netcdf) in ArviZ's
layout, readable with ``arviz.from_netcdf``, with the user's group labels as the ``group``
coordinate, in the order of the data file:

* ``posterior``: ``mu``, ``tau``, ``sigma`` and ``z`` (those the program has) and every
  group's effect ``theta`` on the family's scale (chain, draw, group; complete pooling:
  theta_g = mu);
* ``sample_stats``: ``diverging``, ``tree_depth``, ``energy`` (and ``lp`` when the engine
  returns ``lp__``);
* ``observed_data``: the family's columns per group, its observed variable first
  (:attr:`shrinksim.families.OutcomeFamily.observed`): binomial ``y`` (successes) and
  ``n``; poisson ``y`` (events) and ``exposure``; gaussian ``mean``, ``n`` and ``sd``;
  gaussian_se ``estimate`` and ``se``; ``is_control`` as a coordinate;
* ``log_likelihood``: each group's log-likelihood of its own data at its theta (the Stan
  generated quantity ``log_lik``; gaussian: of the group's raw outcomes), named after the
  observed variable as ArviZ expects (``y``, ``mean`` or ``estimate``).

A fit whose sampler failed has ``observed_data`` only (attribute ``status`` = error).

:func:`loo_table` compares the fits with PSIS-LOO (``arviz.compare``). The "observations"
of the log-likelihood are whole groups, so this is leave-one-group-out: how well each model
predicts a new group's outcomes. Under no pooling (and partial pooling of groups with many
outcomes) a group's theta rests on its own outcomes, so leaving it out changes the posterior
a lot and high Pareto k values are expected there; they mean the PSIS estimate of that
group's term is unreliable, not that the model is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from shrinksim.tables import USER_LOO, write_atomic
from shrinksim.userdata.forms import OUTPUT_TYPES
from shrinksim.userdata.outcome import data_family

if TYPE_CHECKING:
    from shrinksim.engines import Draws

GROUP = "group"
"""The dimension (and coordinate: the user's labels) of every per-group variable."""

PARETO_K = 0.7
"""Pareto k above which a group's PSIS-LOO term is counted as unreliable."""

SAMPLE_STATS = {"divergent__": "diverging", "treedepth__": "tree_depth", "energy__": "energy"}
"""Stan's sampler variables and their ArviZ names (``lp__`` -> ``lp`` when present)."""

LOO_TEXT = (
    "elpd_loo is the expected log predictive density of a left-out group's outcomes "
    "(higher is better); elpd_diff is each fit's difference from the best one and dse its "
    "standard error, so a difference within about two dse is no clear preference. Each "
    "'observation' is a whole group, so this is leave-one-group-out: high Pareto k (> 0.7) "
    "is expected for no and partial pooling when a group's estimate rests mainly on its own "
    "outcomes, and marks that group's estimate as unreliable, not the model as wrong."
)
"""The page's explanation of the comparison table."""


def _draw_coords(chains: int, draws: int) -> dict[str, np.ndarray]:
    return {"chain": np.arange(chains), "draw": np.arange(draws)}


def observed_group(data: pd.DataFrame) -> xr.Dataset:
    """``observed_data``: the family's columns per group (table USER_DATA rows, in order),
    its observed variable first (binomial: successes ``y``, outcomes ``n``), labels as the
    ``group`` coordinate, ``is_control`` beside it."""
    family = data_family(data)
    coords = {
        GROUP: data["group"].astype(str).to_numpy(dtype=object),
        "is_control": (GROUP, data["is_control"].to_numpy(bool)),
    }
    names = [family.observed, *(c for c in family.columns if c != family.observed)]
    types = {int: np.int64, float: np.float64}
    return xr.Dataset(
        {name: (GROUP, data[name].to_numpy(types[OUTPUT_TYPES[name]])) for name in names},
        coords=coords,
    )


def inference_groups(
    draws: Draws, theta: np.ndarray, data: pd.DataFrame, attrs: Mapping[str, Any]
) -> dict[str, xr.Dataset]:
    """The InferenceData groups of one fit of ``data`` (its rows are the program's groups).

    ``theta`` are the group effects (chains, draws, groups); ``draws.params["log_lik"]``
    must hold the per-group log-likelihood (the fit asked for it). ``attrs`` (prior, model,
    engine, ...) go on every group.
    """
    chains, iterations, groups = theta.shape
    if len(data) != groups:
        raise ValueError(f"{groups} groups in the draws, {len(data)} in the data")
    log_lik = draws.params.get("log_lik")
    if log_lik is None or log_lik.shape != theta.shape:
        got = None if log_lik is None else log_lik.shape
        raise ValueError(f"no per-group log_lik of shape {theta.shape} in the draws ({got})")
    observed = observed_group(data)
    labels = observed.coords
    coords = _draw_coords(chains, iterations)
    group_dims = ("chain", "draw", GROUP)
    posterior = {
        name: (("chain", "draw"), draws.params[name])
        for name in ("mu", "tau", "sigma")
        if name in draws.params
    }
    if "z" in draws.params:
        posterior["z"] = (group_dims, draws.params["z"])
    posterior["theta"] = (group_dims, theta)
    stats = {new: draws.sampler[old] for old, new in SAMPLE_STATS.items()}
    if "lp__" in draws.sampler:
        stats["lp"] = draws.sampler["lp__"]
    stats["diverging"] = stats["diverging"].astype(bool)
    stats["tree_depth"] = stats["tree_depth"].astype(np.int64)
    sample_stats = {name: (("chain", "draw"), value) for name, value in stats.items()}
    made = {
        "posterior": xr.Dataset(posterior, coords=coords | dict(labels)),
        "sample_stats": xr.Dataset(sample_stats, coords=coords),
        "observed_data": observed,
        "log_likelihood": xr.Dataset(
            {data_family(data).observed: (group_dims, log_lik)}, coords=coords | dict(labels)
        ),
    }
    for group in made.values():
        group.attrs.update({k: str(v) for k, v in attrs.items()}, status="ok")
    return made


def failed_groups(data: pd.DataFrame, attrs: Mapping[str, Any]) -> dict[str, xr.Dataset]:
    """The InferenceData of a fit whose sampler failed: ``observed_data`` only."""
    observed = observed_group(data)
    observed.attrs.update({k: str(v) for k, v in attrs.items()}, status="error")
    return {"observed_data": observed}


def write_inference(groups: Mapping[str, xr.Dataset], path: str | Path) -> None:
    """Write the groups as one netCDF file in ArviZ's layout (h5netcdf, zlib), atomically."""

    def write(tmp: str) -> None:
        mode = "w"
        for name, group in groups.items():
            encoding = {
                var: {"zlib": True}
                for var in group.data_vars
                if np.issubdtype(group[var].dtype, np.number)
            }
            group.to_netcdf(tmp, mode=mode, group=name, engine="h5netcdf", encoding=encoding)
            mode = "a"

    write_atomic(path, write)


def _warning(high: int, groups: int, flagged: bool, threshold: float) -> str:
    """What the Pareto k values say about one fit's PSIS-LOO, in words ("" if all is well)."""
    if high:
        return (
            f"{high} of {groups} groups with Pareto k > {PARETO_K:g}: their leave-one-group-out "
            "terms are unreliable (expected when a group's estimate rests on its own outcomes)"
        )
    if flagged:
        return (
            f"Pareto k above {threshold:.2f}, ArviZ's threshold for this number of draws: "
            "more draws would make the estimate reliable"
        )
    return ""


def loo_table(fits: Mapping[tuple[str, str], Any]) -> pd.DataFrame:
    """:data:`shrinksim.tables.USER_LOO`: the PSIS-LOO comparison (``arviz.compare``,
    stacking weights, log scale) of the fits ``(prior, model) -> InferenceData``; fits
    without a log-likelihood (failed) get a row with status ``error`` and no numbers."""
    import arviz as az

    from shrinksim.figures import fit_label  # not at import: a fit job needs no matplotlib

    usable = {key: idata for key, idata in fits.items() if "log_likelihood" in idata.groups()}
    rows = []
    if usable:
        labels = {fit_label(model, prior): (prior, model) for prior, model in usable}
        compared = az.compare(
            {label: usable[key] for label, key in labels.items()}, ic="loo", scale="log"
        )
        for label, line in compared.iterrows():
            prior, model = labels[str(label)]
            loo = az.loo(usable[prior, model], pointwise=True, scale="log")
            k = np.asarray(loo["pareto_k"], dtype=float)
            high = int((k > PARETO_K).sum())
            threshold = float(loo["good_k"])  # min(1 - 1 / log10(draws), 0.7)
            rows.append(
                {
                    "prior": prior,
                    "model": model,
                    "status": "ok",
                    "rank": int(line["rank"]),
                    "elpd_loo": float(line["elpd_loo"]),
                    "se": float(line["se"]),
                    "p_loo": float(line["p_loo"]),
                    "elpd_diff": float(line["elpd_diff"]),
                    "dse": float(line["dse"]),
                    "weight": float(line["weight"]),
                    "pareto_k_max": float(np.nanmax(k)),
                    "pareto_k_high": high,
                    "groups": int(k.size),
                    "warning": _warning(high, k.size, bool(line["warning"]), threshold),
                }
            )
    for prior, model in fits:
        if (prior, model) not in usable:
            rows.append(
                {"prior": prior, "model": model, "status": "error"}
                | {"warning": "no draws (the fit failed): not compared"}
            )
    return pd.DataFrame(rows).reindex(columns=USER_LOO.names)


def read_inference(paths: Mapping[tuple[str, str], str | Path]) -> dict[tuple[str, str], Any]:
    """``(prior, model) -> InferenceData`` of the written files (loaded into memory)."""
    import arviz as az

    with az.rc_context({"data.load": "eager"}):
        return {key: az.from_netcdf(path) for key, path in paths.items()}
