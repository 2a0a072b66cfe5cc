"""Simulate the grid study's group data: the forum scenario, generalised to every family.

Group 0 is the control group (when ``simulation.control.n > 0``); groups 1..G are treatments with
n_g = max(1, floor(Normal(n, n_sd))) outcomes (poisson: units of exposure E_g) and, by
``family`` (:class:`shrinksim.study.outcome.StudyOutcome`):

* binomial: y_g ~ Binomial(n_g, p_g), where either logit p_g = logit(p0) + tau z_g
  (``logit_normal``) or p_g ~ Normal(p0, p_sd) kept inside (0, 1) by redrawing
  (``probability_normal``, the forum's generator); the control group has p = control.p;
* poisson: y_g ~ Poisson(E_g exp(theta_g)), theta_g = log(rate) + tau z_g;
* gaussian: y_gi ~ Normal(theta_g, sigma), i = 1..n_g, theta_g = mean + tau z_g, kept as the
  group's n, mean and sd (divisor n - 1).

The control group of poisson and gaussian data has the population's theta (log(rate), mean).
``true_logit`` holds theta_g on the family's scale, ``true_p`` it on the natural scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from shrinksim.design import DataCell, n_sd, seed_sequence
from shrinksim.families import simulate_data
from shrinksim.study.outcome import StudyOutcome
from shrinksim.tables import DATA


def group_sizes(rng: np.random.Generator, mean: float, sd: float, groups: int) -> np.ndarray:
    """Outcomes per group: n_g = max(1, floor(Normal(mean, sd))), ``groups`` of them."""
    return np.maximum(1, np.floor(rng.normal(mean, sd, groups))).astype(int)


def simulate(config: Mapping[str, Any], cell: DataCell, replicate: int) -> pd.DataFrame:
    """One data set (rows: control group, then treatment groups) for (cell, replicate)."""
    data = config["simulation"]
    rng = np.random.default_rng(seed_sequence(int(config["seed"]), cell.key, replicate))
    n = group_sizes(rng, cell.n, n_sd(config, cell.n), cell.groups)
    control = data["control"]
    outcome = StudyOutcome.from_config(config)
    if outcome.family.name == "binomial":
        frame = simulate_groups(
            rng, n, cell.spread_axis, cell.spread, data["p0"], control["n"], control["p"]
        )
    else:
        frame = simulate_family_groups(rng, outcome, n, cell.spread, control["n"])
    return data_set(frame, replicate)


def data_set(groups: pd.DataFrame, replicate: int) -> pd.DataFrame:
    """Simulated ``groups`` as rows of a DATA table: the replicate first, and the columns of
    the other families empty."""
    return groups.assign(replicate=replicate).reindex(columns=DATA.names)


def simulate_family_groups(
    rng: np.random.Generator,
    outcome: StudyOutcome,
    sizes: np.ndarray,
    tau: float,
    control_n: int = 0,
) -> pd.DataFrame:
    """Poisson or gaussian groups of the given ``sizes`` (outcomes, or units of exposure) with
    theta_g = mu + tau z_g, and a control group 0 of ``control_n`` with theta = mu when
    ``control_n > 0``."""
    mu = outcome.mu
    theta = mu + tau * rng.standard_normal(len(sizes))
    sizes = np.asarray(sizes, dtype=int)
    is_control = np.zeros(len(sizes), dtype=bool)
    if control_n > 0:
        theta, sizes = np.append(mu, theta), np.append(control_n, sizes)
        is_control = np.append(True, is_control)
    frame = pd.DataFrame(
        {
            "group": np.arange(len(sizes)) + (0 if control_n > 0 else 1),
            "is_control": is_control,
            "true_p": outcome.family.natural(theta),
            "true_logit": theta,
        }
    )
    return frame.assign(**simulate_data(outcome.family, rng, theta, sizes, outcome.sigma))


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
    return data_set(simulate_groups(rng, sizes, "tau", tau, p0, control_n, control_p), replicate)


def simulate_batch(
    config: Mapping[str, Any], cell: DataCell, replicates: list[int]
) -> pd.DataFrame:
    """Data sets of several replicates, stacked."""
    return pd.concat([simulate(config, cell, r) for r in replicates], ignore_index=True)
