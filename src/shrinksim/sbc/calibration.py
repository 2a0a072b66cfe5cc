"""Calibration tests of SBC ranks: is each parameter's rank uniform on {0, ..., L}?

Uniformity is judged with the ECDF of the ranks against simultaneous bands (Säilynoja,
Bürkner & Vehtari 2022, "Graphical test for discrete uniformity and its applications in
goodness-of-fit evaluation and multiple sample comparison", Statistics and Computing 32:32,
the simulation method): at z_i = i / (L + 1), i = 1..L, the count of ranks below i is
Binomial(N, z_i) under uniformity; a sample's statistic is the smallest two-sided pointwise
tail probability over all i; its p-value is the share of simulated uniform samples whose
statistic is as small or smaller, and the 95 % band is the pointwise binomial band at the
level whose simultaneous coverage is 95 %. P-values are Holm-adjusted over every
(n, prior, parameter).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import stats

from shrinksim import tables

NULL_SIMULATIONS = 20_000
"""Uniform rank samples simulated for the band and the p-value (p-values >= 1 / 20,001)."""

NULL_SEED = 20220302
"""Seed of those simulations (fixed: bands and p-values are deterministic)."""

BAND_LEVEL = 0.95
"""Simultaneous coverage of the plotted ECDF band."""


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
    """One row per (family, n, groups, prior, parameter): uniformity p-value, Holm-adjusted
    over all.

    Fits without ranks (sampler errors) are left out and counted; divergent fits and fits
    whose smallest ESS is below the number of thinned draws are counted too.
    """
    key = ["family", "n_per_group", "groups", "prior", "parameter"]
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
