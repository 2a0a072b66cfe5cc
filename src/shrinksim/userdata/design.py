"""Design of the design-matched study: the user's treatment-group sizes (times a what-if
``scale``) and control group, true tau values spread over the fitted tau posterior, the seed
keys of its data cells, and the group size at which shrinkage reaches a target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit


def treatment_sizes(data: pd.DataFrame) -> np.ndarray:
    """Outcomes per treatment group, in the file's order."""
    return data.loc[~data["is_control"], "n"].to_numpy(int)


def design_sizes(data: pd.DataFrame, scale: float) -> np.ndarray:
    """Treatment-group sizes of the what-if design ``scale`` x the user's: max(1, round(s n))."""
    return np.maximum(1, np.rint(scale * treatment_sizes(data))).astype(int)


def control_group(data: pd.DataFrame) -> tuple[int, float]:
    """(outcomes, success probability) of the control group, (0, 0.5) without one.

    The probability is the observed proportion, kept off 0 and 1 by half an outcome.
    """
    control = data[data["is_control"]]
    if control.empty:
        return 0, 0.5
    n, y = int(control["n"].iloc[0]), int(control["y"].iloc[0])
    return n, float(np.clip(y / n, 0.5 / n, 1 - 0.5 / n))


def design_points(
    draws: Sequence[pd.DataFrame], quantiles: Sequence[float], data: pd.DataFrame
) -> pd.DataFrame:
    """True tau values and population mean of the design-matched study.

    ``draws`` are the draws tables of the partial-pooling fits (one per prior, ``mu`` and
    ``tau`` columns); every prior contributes equally (its first ``m`` draws, ``m`` the
    smallest number of draws), so every prior is fitted to the same simulated data sets.
    Returns one row per quantile: ``tau_index``, ``quantile``, ``tau``, ``p0`` (expit of the
    posterior median of mu), ``control_n``, ``control_p``.
    """
    usable = [d for d in draws if len(d) and d["tau"].notna().all()]
    if not usable:
        raise ValueError("no partial-pooling fit of the data has draws; see the fit logs")
    m = min(len(d) for d in usable)
    tau = np.concatenate([d["tau"].to_numpy()[:m] for d in usable])
    mu = np.concatenate([d["mu"].to_numpy()[:m] for d in usable])
    control_n, control_p = control_group(data)
    return pd.DataFrame(
        {
            "tau_index": np.arange(len(quantiles)),
            "quantile": np.asarray(quantiles, dtype=float),
            "tau": np.quantile(tau, quantiles),
            "p0": float(expit(np.median(mu))),
            "control_n": control_n,
            "control_p": control_p,
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


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems of the ``userdata:`` settings that the schema cannot see."""
    found = []
    if "partial" not in config["grid"]["model"]:
        found.append("grid.model: must include 'partial' when data is set (the fit of your data)")
    if 1 not in [float(s) for s in config["userdata"]["scale"]]:
        found.append("userdata.scale: must include 1 (your own group sizes)")
    return found
