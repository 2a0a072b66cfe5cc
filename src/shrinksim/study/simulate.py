"""Simulate the grid study's binomial group data: the forum scenario, generalised.

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

from shrinksim.design import DataCell, n_sd, seed_sequence


def group_sizes(rng: np.random.Generator, mean: float, sd: float, groups: int) -> np.ndarray:
    """Outcomes per group: n_g = max(1, floor(Normal(mean, sd))), ``groups`` of them."""
    return np.maximum(1, np.floor(rng.normal(mean, sd, groups))).astype(int)


def simulate(config: Mapping[str, Any], cell: DataCell, replicate: int) -> pd.DataFrame:
    """One data set (rows: control group, then treatment groups) for (cell, replicate)."""
    data = config["simulation"]
    rng = np.random.default_rng(seed_sequence(int(config["seed"]), cell.key, replicate))
    n = group_sizes(rng, cell.n, n_sd(config, cell.n), cell.groups)
    control = data["control"]
    frame = simulate_groups(
        rng, n, cell.spread_axis, cell.spread, data["p0"], control["n"], control["p"]
    )
    frame.insert(0, "replicate", replicate)
    return frame


def simulate_groups(
    rng: np.random.Generator,
    sizes: np.ndarray,
    spread_axis: str,
    spread: float,
    p0: float,
    control_n: int = 0,
    control_p: float = 0.5,
) -> pd.DataFrame:
    """Treatment groups of the given ``sizes`` (groups 1..G, in order) and, when
    ``control_n > 0``, a control group 0 of ``control_n`` outcomes with success probability
    ``control_p``: the generator shared by the grid study and the design-matched study."""
    n = np.asarray(sizes, dtype=int)
    groups = len(n)
    if spread_axis == "tau":
        true_logit = logit(p0) + spread * rng.standard_normal(groups)
        true_p = expit(true_logit)
    else:
        true_p = rng.normal(p0, spread, groups)
        while (bad := np.flatnonzero((true_p <= 0) | (true_p >= 1))).size:
            true_p[bad] = rng.normal(p0, spread, bad.size)
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
    if control_n > 0:
        row = {
            "group": 0,
            "is_control": True,
            "n": control_n,
            "y": rng.binomial(control_n, control_p),
            "true_p": control_p,
            "true_logit": logit(control_p),
        }
        frame = pd.concat([pd.DataFrame([row]), frame], ignore_index=True)
    return frame


def simulate_sizes(
    seed: int,
    key: str,
    replicate: int,
    sizes: np.ndarray,
    tau: float,
    p0: float,
    control_n: int = 0,
    control_p: float = 0.5,
) -> pd.DataFrame:
    """One ``logit_normal`` data set with exactly the given treatment-group ``sizes`` (and an
    optional control group), seeded by (``key``, replicate) like every other data set."""
    rng = np.random.default_rng(seed_sequence(int(seed), key, replicate))
    frame = simulate_groups(rng, sizes, "tau", tau, p0, control_n, control_p)
    frame.insert(0, "replicate", replicate)
    return frame


def simulate_batch(
    config: Mapping[str, Any], cell: DataCell, replicates: list[int]
) -> pd.DataFrame:
    """Data sets of several replicates, stacked."""
    return pd.concat([simulate(config, cell, r) for r in replicates], ignore_index=True)
