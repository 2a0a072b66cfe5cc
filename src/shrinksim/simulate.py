"""Simulate binomial group data: the forum scenario, generalised.

Group 0 is the control group (when ``simulation.control.n > 0``); groups 1..G are treatments with
n_g = max(1, floor(Normal(n, n_sd))) outcomes and y_g ~ Binomial(n_g, p_g), where either
logit p_g = logit(p0) + tau z_g (``logit_normal``) or p_g ~ Normal(p0, p_sd) kept inside
(0, 1) by redrawing (``probability_normal``, the forum's generator).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from shrinksim.config import DataCell, n_sd, seed_sequence


def group_sizes(rng: np.random.Generator, mean: float, sd: float, groups: int) -> np.ndarray:
    """Outcomes per group: n_g = max(1, floor(Normal(mean, sd))), ``groups`` of them."""
    return np.maximum(1, np.floor(rng.normal(mean, sd, groups))).astype(int)


def simulate(config: Mapping[str, Any], cell: DataCell, replicate: int) -> pd.DataFrame:
    """One data set (rows: control group, then treatment groups) for (cell, replicate)."""
    data = config["simulation"]
    rng = np.random.default_rng(seed_sequence(int(config["seed"]), cell.path, replicate))
    groups = cell.groups
    n = group_sizes(rng, cell.n, n_sd(config, cell.n), groups)
    if cell.spread_axis == "tau":
        true_logit = logit(data["p0"]) + cell.spread * rng.standard_normal(groups)
        true_p = expit(true_logit)
    else:
        true_p = rng.normal(data["p0"], cell.spread, groups)
        while (bad := np.flatnonzero((true_p <= 0) | (true_p >= 1))).size:
            true_p[bad] = rng.normal(data["p0"], cell.spread, bad.size)
        true_logit = logit(true_p)
    y = rng.binomial(n, true_p)
    frame = pd.DataFrame(
        {
            "group": np.arange(1, groups + 1),
            "is_control": False,
            "n": n,
            "y": y,
            "true_p": true_p,
            "true_logit": true_logit,
        }
    )
    control = data["control"]
    if control["n"] > 0:
        row = {
            "group": 0,
            "is_control": True,
            "n": control["n"],
            "y": rng.binomial(control["n"], control["p"]),
            "true_p": control["p"],
            "true_logit": logit(control["p"]),
        }
        frame = pd.concat([pd.DataFrame([row]), frame], ignore_index=True)
    frame.insert(0, "replicate", replicate)
    return frame


def simulate_batch(
    config: Mapping[str, Any], cell: DataCell, replicates: list[int]
) -> pd.DataFrame:
    """Data sets of several replicates, stacked."""
    return pd.concat([simulate(config, cell, r) for r in replicates], ignore_index=True)


def outcomes(groups: pd.DataFrame) -> pd.DataFrame:
    """Per-outcome (bernoulli) form of one data set: one row per outcome, ``group`` and ``y``."""
    n, y = groups["n"].to_numpy(), groups["y"].to_numpy()
    ones = np.concatenate([np.arange(k) < s for k, s in zip(n, y, strict=True)])
    return pd.DataFrame({"group": np.repeat(groups["group"].to_numpy(), n), "y": ones.astype(int)})
