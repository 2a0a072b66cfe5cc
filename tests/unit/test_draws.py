"""The thinned draw table kept for the posterior-densities figure (no Stan needed)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from shrinksim import tables
from shrinksim.design import DataCell, FitCell
from shrinksim.families import OUTCOME_FAMILIES
from shrinksim.study.fit import DRAW_GROUPS, DRAWS_KEPT, thinned_draws

EXPIT = OUTCOME_FAMILIES["binomial"].natural

DATA = DataCell(35, 30, "tau", 0.5)


def _theta(chains: int, draws: int, groups: int) -> np.ndarray:
    """Draws whose value encodes (group, chain, draw): group g lives in [g - 0.5, g + 0.5) / 10,
    in increasing order over the pooled draws."""
    c, d, g = np.meshgrid(range(chains), range(draws), range(groups), indexing="ij")
    return (g + (c * draws + d) / (chains * draws) - 0.5) / 10


def _groups(n: int) -> pd.DataFrame:
    # group 0 is the control group; treatment groups are numbered 1..n-1
    return pd.DataFrame({"group": range(n), "is_control": [True] + [False] * (n - 1)})


def test_keeps_evenly_thinned_draws_of_random_treatment_groups():
    theta = _theta(4, 500, 31)
    kept = thinned_draws(
        theta,
        _groups(31),
        seed=1,
        cell=FitCell(DATA, "weak", "partial"),
        replicate=0,
        natural=EXPIT,
    )
    ids = sorted(kept["group"].unique())
    assert len(ids) == DRAW_GROUPS and 0 not in ids and ids != list(range(1, 13))
    assert len(kept) == DRAW_GROUPS * DRAWS_KEPT
    for gid, one in kept.groupby("group"):
        fraction = 10 * np.log(one["p"] / (1 - one["p"])).to_numpy() - gid + 0.5
        # the group's own draws (row index = group id here), float32 rounding allowed for
        assert np.all((fraction > -1e-4) & (fraction < 1 + 1e-4))
        # evenly spaced over the 2000 pooled draws (all chains), first and last included
        assert np.allclose(np.diff(fraction), 1999 / 199 / 2000, atol=1e-3)
        assert fraction[0] == pytest.approx(0, abs=1e-4)
        assert fraction[-1] == pytest.approx(1999 / 2000, abs=1e-4)
    same = thinned_draws(theta, _groups(31), 1, FitCell(DATA, "brms_default", "partial"), 0, EXPIT)
    assert sorted(same["group"].unique()) == ids  # same groups for every prior
    other = thinned_draws(theta, _groups(31), 1, FitCell(DATA, "weak", "partial"), 1, EXPIT)
    assert sorted(other["group"].unique()) != ids  # another replicate, other groups


def test_short_runs_and_few_groups_keep_everything():
    kept = thinned_draws(
        _theta(2, 50, 5), _groups(5), 1, FitCell(DATA, "weak", "partial"), 0, EXPIT
    )
    assert sorted(kept["group"].unique()) == [1, 2, 3, 4] and len(kept) == 4 * 100


def test_draw_table_is_small():
    """12 groups x 200 draws in float32: a partial fit job adds well under 25 KB."""
    theta = np.random.default_rng(3).normal(size=(4, 500, 101))
    kept = thinned_draws(theta, _groups(101), 1, FitCell(DATA, "weak", "partial"), 0, EXPIT)
    cell = {"n_per_group": 35, "groups": 100, "spread_axis": "tau", "spread": 0.5}
    frame = kept.assign(**cell, prior="weak", model="partial")
    buffer = io.BytesIO()
    pq.write_table(tables.to_table(frame, tables.DRAWS), buffer)
    assert len(buffer.getvalue()) < 25_000
