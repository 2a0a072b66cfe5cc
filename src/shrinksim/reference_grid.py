"""Grids shared by the exact references (:mod:`shrinksim.reference`,
:mod:`shrinksim.reference_gaussian`): axes of cells uniform in asinh, the search for the
region where the posterior is, cell masses, and a marginal's moments and quantiles.

No Stan and nothing of the Stan path: as the references, an independent check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import interpolate

QUANTILE_PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Posterior quantiles reported by the references."""

DROP = 25.0  # the fine grid covers log density >= max - DROP


def logsumexp(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) over the last axis."""
    top = x.max(axis=-1)
    return top + np.log(np.sum(np.exp(x - top[..., None]), axis=-1))


@dataclass(frozen=True)
class Axis:
    """Cells of one axis, uniform in u = asinh((x - centre) / scale): dense where the
    posterior is, wide in its tails. Midpoints ``x``, cell ``width`` in x (midpoint rule
    in u: dx/du du) and cell ``edges``."""

    x: np.ndarray
    width: np.ndarray
    edges: np.ndarray

    @classmethod
    def make(cls, lo: float, hi: float, centre: float, scale: float, points: int) -> Axis:
        u = np.linspace(
            np.arcsinh((lo - centre) / scale), np.arcsinh((hi - centre) / scale), points + 1
        )
        mid = 0.5 * (u[1:] + u[:-1])
        return cls(
            centre + scale * np.sinh(mid),
            scale * np.cosh(mid) * (u[1] - u[0]),
            centre + scale * np.sinh(u),
        )


@dataclass(frozen=True)
class Box:
    """Where to look for the posterior: mu in [mu_lo, mu_hi], tau in [0, tau_hi]
    (and sigma in [0, sigma_hi] where there is one)."""

    mu_lo: float = -50.0
    mu_hi: float = 50.0
    tau_hi: float = 200.0
    sigma_hi: float = 200.0


LogDensity = Callable[..., np.ndarray]
"""Unnormalised log posterior on the grid of its axes' midpoints (one argument per axis)."""


def masses(log_post: np.ndarray, axes: Sequence[Axis]) -> np.ndarray:
    """Posterior probability of every grid cell from the log density at its midpoint."""
    log_mass = log_post
    for k, axis in enumerate(axes):
        log_mass = log_mass + np.log(axis.width).reshape(
            [-1 if j == k else 1 for j in range(len(axes))]
        )
    return np.exp(log_mass - logsumexp(log_mass.reshape(-1)))


def moments(axis: Axis, mass: np.ndarray, probs: Sequence[float]) -> list[float]:
    """Mean, sd and quantiles of a marginal given as cell masses."""
    mean = float(np.sum(mass * axis.x))
    var = float(np.sum(mass * ((axis.x - mean) ** 2 + axis.width**2 / 12)))
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    # monotone cubic through the CDF at the cell edges, inverted (x as a function of CDF);
    # edges where the CDF rises by less than 1e-12 (far tails) are left out
    rising = np.concatenate([[True], np.diff(cdf) > 1e-12])
    quantile = interpolate.PchipInterpolator(cdf[rising], axis.edges[rising])
    return [mean, np.sqrt(var), *(float(quantile(p)) for p in probs)]


def region(
    log_density: LogDensity,
    coarse: Sequence[Axis],
    positive: Sequence[bool],
    points: int,
    box: Box,
    centred: Sequence[bool] | None = None,
) -> list[Axis]:
    """Fine axes over the region where the posterior density exceeds exp(-DROP) of its
    maximum, found on the ``coarse`` axes (the ``positive`` ones start at 0); centred and
    scaled by the posterior's moments there. ``centred`` (default: the axes not
    ``positive``) says which are centred at their mean; the others at 0, where a between-group
    sd's posterior often piles up."""
    centred = [not p for p in positive] if centred is None else centred
    mass = masses(log_density(*(a.x for a in coarse)), coarse)
    density = mass / np.prod(np.meshgrid(*(a.width for a in coarse), indexing="ij"), axis=0)
    keep = density >= density.max() * np.exp(-DROP)
    fine = []
    for k, axis in enumerate(coarse):
        others = tuple(j for j in range(len(coarse)) if j != k)
        kept = np.flatnonzero(keep.any(axis=others))
        if (not positive[k] and kept[0] == 0) or kept[-1] == len(axis.x) - 1:
            raise ValueError(f"posterior not negligible at the edge of the search box {box}")
        mean, sd = moments(axis, mass.sum(axis=others), [])
        if positive[k]:
            lo = 0.0 if kept[0] <= 1 else axis.edges[kept[0] - 1]
        else:
            lo = axis.edges[kept[0] - 1]
        centre = mean if centred[k] else 0.0
        fine.append(Axis.make(lo, axis.edges[kept[-1] + 2], centre, sd, points))
    return fine


def table(rows: dict[str, list[float]], probs: Sequence[float]) -> pd.DataFrame:
    """The references' output: one row per parameter; ``mean``, ``sd``, ``q5``, ``q25``, ..."""
    columns = ["mean", "sd", *(f"q{100 * p:g}" for p in probs)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)
