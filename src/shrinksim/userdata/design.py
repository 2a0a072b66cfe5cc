"""Design of the design-matched study: the user's treatment-group sizes (times a what-if
``scale``) and control group, true tau values spread over the fitted tau posterior, the seed
keys of its data cells, and the group size at which shrinkage reaches a target.

A group's size is its family's :attr:`~shrinksim.families.OutcomeFamily.size` column:
outcomes ``n`` (binomial, gaussian), ``exposure`` (poisson) or the known standard error
``se`` (gaussian_se); ``scale`` times the data is
:meth:`~shrinksim.families.OutcomeFamily.scaled_sizes` of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from shrinksim.families import OutcomeFamily, observed_effect, observed_natural
from shrinksim.study.outcome import StudyOutcome
from shrinksim.userdata.outcome import data_family, natural_mean


def treatment_sizes(data: pd.DataFrame) -> np.ndarray:
    """Sizes of the treatment groups (outcomes, exposure or se), in the file's order."""
    family = data_family(data)
    sizes = data.loc[~data["is_control"], family.size]
    return sizes.to_numpy(int if family.size == "n" else float)


def design_sizes(data: pd.DataFrame, scale: float) -> np.ndarray:
    """Treatment-group sizes of the what-if design ``scale`` x the user's data:
    max(1, round(s n)) outcomes, s x the exposure, or se / sqrt(s)."""
    return data_family(data).scaled_sizes(treatment_sizes(data), scale)


def control_group(data: pd.DataFrame) -> tuple[float, float, float]:
    """(size, natural-scale value, theta) of the control group; binomial: (outcomes, observed
    proportion kept off 0 and 1 by half an outcome, its logit), (0, 0.5, 0) without one; the
    other families: (exposure or n or se, observed rate or mean or estimate, the observed
    effect :func:`~shrinksim.families.observed_effect`), (0, NaN, NaN) without one."""
    family = data_family(data)
    control = data[data["is_control"]]
    if family.name == "binomial":
        if control.empty:
            return 0, 0.5, 0.0
        n, y = int(control["n"].iloc[0]), int(control["y"].iloc[0])
        p = float(np.clip(y / n, 0.5 / n, 1 - 0.5 / n))
        return n, p, float(logit(p))
    if control.empty:
        return 0, float("nan"), float("nan")
    size = control[family.size].iloc[0]
    size = int(size) if family.size == "n" else float(size)
    return (
        size,
        float(observed_natural(family, control)[0]),
        float(observed_effect(family, control)[0]),
    )


def design_points(
    draws: Sequence[pd.DataFrame], quantiles: Sequence[float], data: pd.DataFrame
) -> pd.DataFrame:
    """True tau values and population of the design-matched study.

    ``draws`` are the draws tables of the partial-pooling fits (one per prior, ``mu`` and
    ``tau`` columns, and ``sigma`` for gaussian); every prior contributes equally (its first
    ``m`` draws, ``m`` the smallest number of draws), so every prior is fitted to the same
    simulated data sets. Returns one row per quantile: ``tau_index``, ``quantile``, ``tau``,
    ``p0`` (the posterior median of mu on the natural scale: expit for binomial),
    ``control_n``, ``control_p`` (:func:`control_group`), ``mu`` (that median), ``sigma``
    (the posterior median of sigma; NaN without one) and ``control_theta``.
    """
    usable = [d for d in draws if len(d) and d["tau"].notna().all()]
    if not usable:
        raise ValueError("no partial-pooling fit of the data has draws; see the fit logs")
    m = min(len(d) for d in usable)

    def pooled(name: str) -> np.ndarray:
        return np.concatenate([d[name].to_numpy()[:m] for d in usable])

    tau, mu = pooled("tau"), pooled("mu")
    sigma = float(np.median(pooled("sigma"))) if "sigma" in usable[0] else float("nan")
    control_n, control_p, control_theta = control_group(data)
    family = data_family(data)
    return pd.DataFrame(
        {
            "tau_index": np.arange(len(quantiles)),
            "quantile": np.asarray(quantiles, dtype=float),
            "tau": np.quantile(tau, quantiles),
            "p0": natural_mean(family, np.median(mu)),
            "control_n": control_n,
            "control_p": control_p,
            "mu": float(np.median(mu)),
            "sigma": sigma,
            "control_theta": control_theta,
        }
    )


def design_key(scale: float, tau: float) -> str:
    """Seed key of the design-matched data cell (scale, tau)."""
    return f"userdata/scale~{scale:g}/tau~{tau:.6g}"


def n_for_shrinkage(target: float, tau: float | np.ndarray, p0: float) -> np.ndarray:
    """Outcomes per group at which the normal approximation B(n) = s2 / (s2 + tau^2),
    s2 = 1 / (n p0 (1 - p0)), equals ``target``: n = (1 - X) / (X tau^2 p0 (1 - p0))."""
    tau = np.asarray(tau, dtype=float)
    with np.errstate(divide="ignore"):
        return (1 - target) / (target * tau**2 * p0 * (1 - p0))


def size_for_shrinkage(outcome: StudyOutcome, target: float, tau: float | np.ndarray) -> np.ndarray:
    """The group size at which the family's theory curve (:meth:`StudyOutcome.theory`)
    equals ``target`` X: binomial :func:`n_for_shrinkage`; poisson exposure (1 - X) /
    (X tau^2 rate); gaussian n = sigma^2 (1 - X) / (X tau^2); gaussian_se se =
    tau sqrt(X / (1 - X))."""
    name = outcome.family.name
    if name == "binomial":
        return n_for_shrinkage(target, tau, outcome.p0)
    tau = np.asarray(tau, dtype=float)
    if name == "gaussian_se":
        return tau * np.sqrt(target / (1 - target))
    scale = outcome.rate if name == "poisson" else outcome.sigma**-2
    with np.errstate(divide="ignore"):
        return (1 - target) / (target * tau**2 * scale)


def n_for_shrinkage_simulated(
    n: np.ndarray, shrinkage: np.ndarray, target: float
) -> tuple[float, str]:
    """Smallest mean n per group at which the simulated shrinkage reaches ``target``,
    interpolated linearly in log n between the what-if designs, and how it was found:
    ``"interpolated"``; ``"at most"`` (the smallest design is already at or below the target:
    n is that design's, an upper bound); ``"not reached"`` (no design reaches it: NaN)."""
    order = np.argsort(n)
    n, s = np.asarray(n, float)[order], np.asarray(shrinkage, float)[order]
    ok = ~np.isnan(s)
    n, s = n[ok], s[ok]
    if not len(n) or s.min() > target:
        return float("nan"), "not reached"
    if s[0] <= target:
        return float(n[0]), "at most"
    i = int(np.flatnonzero(s <= target)[0])
    x0, x1, y0, y1 = np.log(n[i - 1]), np.log(n[i]), s[i - 1], s[i]
    return float(np.exp(x0 + (target - y0) * (x1 - x0) / (y1 - y0))), "interpolated"


def size_for_shrinkage_simulated(
    family: OutcomeFamily, sizes: np.ndarray, shrinkage: np.ndarray, target: float
) -> tuple[float, str]:
    """:func:`n_for_shrinkage_simulated` in the family's size. Shrinkage falls as n or the
    exposure grows, but grows with the standard error: for gaussian_se the search runs on
    1 / se and finds the largest mean se that reaches ``target`` (``"at least"`` where the
    largest design's se already does)."""
    if family.size != "se":
        return n_for_shrinkage_simulated(sizes, shrinkage, target)
    value, how = n_for_shrinkage_simulated(1 / np.asarray(sizes, float), shrinkage, target)
    return 1 / value, {"at most": "at least"}.get(how, how)


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems of the ``userdata:`` settings that the schema cannot see."""
    found = []
    if "partial" not in config["grid"]["model"]:
        found.append("grid.model: must include 'partial' when data is set (the fit of your data)")
    if 1 not in [float(s) for s in config["userdata"]["scale"]]:
        found.append("userdata.scale: must include 1 (your own group sizes)")
    return found
