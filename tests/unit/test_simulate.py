"""Data generation: shapes, determinism, and the generators' moments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from shrinksim import tables
from shrinksim.design import DataCell
from shrinksim.fitting import outcomes
from shrinksim.settings import merged
from shrinksim.study.simulate import simulate, simulate_batch

CELL = DataCell(35, 100, "tau", 0.25)


def test_rows_columns_and_control_group(config):
    frame = simulate(config, CELL, replicate=0)
    assert len(frame) == 101
    tables.to_table(frame, tables.DATA)  # exactly the declared schema
    control = frame[frame["is_control"]]
    assert control["group"].tolist() == [0] and control["n"].tolist() == [1500]
    assert (frame["n"] >= 1).all() and ((frame["y"] >= 0) & (frame["y"] <= frame["n"])).all()
    assert np.allclose(frame["true_logit"], logit(frame["true_p"]))


def test_same_cell_and_replicate_same_data_in_any_batch(config):
    one = simulate(config, CELL, replicate=2)
    batch = simulate_batch(config, CELL, [0, 1, 2, 3])
    pd.testing.assert_frame_equal(one, batch[batch["replicate"] == 2].reset_index(drop=True))
    assert not simulate(config, CELL, 3)["y"].equals(one["y"])


def test_control_group_does_not_change_treatment_data(config):
    with_control = simulate(config, CELL, 0)
    without = simulate(merged(config, {"simulation": {"control": {"n": 0}}}), CELL, 0)
    assert len(without) == 100 and not without["is_control"].any()
    pd.testing.assert_frame_equal(
        with_control[~with_control["is_control"]].reset_index(drop=True), without
    )


def test_logit_normal_moments(config):
    # 20,000 groups: the mean of true_logit has SE tau / sqrt(G) = 0.0018 and the sd has
    # SE ~ tau / sqrt(2G) = 0.0013; 4 SE tolerances fail with probability < 1e-4 (fixed seed).
    cell = DataCell(40, 20000, "tau", 0.25)
    frame = simulate(config, cell, 0)
    treat = frame[~frame["is_control"]]
    assert treat["true_logit"].mean() == pytest.approx(logit(0.4), abs=4 * 0.25 / np.sqrt(20000))
    assert treat["true_logit"].std() == pytest.approx(0.25, abs=4 * 0.25 / np.sqrt(40000))
    # n_g = max(1, floor(N(40, 6))): E = 40 - 0.5 (floor of a smooth density), SE 6/sqrt(G).
    assert treat["n"].mean() == pytest.approx(39.5, abs=4 * 6 / np.sqrt(20000))
    # pooled y/n vs mean p: binomial SE sqrt(p(1-p)/sum n) ~ 0.0005.
    pooled = treat["y"].sum() / treat["n"].sum()
    assert pooled == pytest.approx(np.average(treat["true_p"], weights=treat["n"]), abs=0.002)


def test_probability_normal_moments_and_bounds(config):
    # p_g ~ N(0.4, 0.05) truncated to (0, 1) (8 sd away: truncation has no visible effect).
    config = merged(config, {"simulation": {"generator": "probability_normal"}})
    frame = simulate(config, DataCell(35, 20000, "p_sd", 0.05), 0)
    treat = frame[~frame["is_control"]]
    assert treat["true_p"].mean() == pytest.approx(0.4, abs=4 * 0.05 / np.sqrt(20000))
    assert treat["true_p"].std() == pytest.approx(0.05, abs=4 * 0.05 / np.sqrt(40000))
    wide = simulate(config, DataCell(35, 5000, "p_sd", 0.5), 0)
    assert ((wide["true_p"] > 0) & (wide["true_p"] < 1)).all()


def test_per_outcome_form_matches_counts(config):
    frame = simulate(config, DataCell(10, 5, "tau", 0.5), 0)
    long = outcomes(frame)
    assert len(long) == frame["n"].sum()
    counts = long.groupby("group")["y"].agg(["size", "sum"])
    assert counts["size"].tolist() == frame["n"].tolist()
    assert counts["sum"].tolist() == frame["y"].tolist()
