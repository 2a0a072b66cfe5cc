"""Shrinkage measures against closed forms and hand-computed values; the streaming reduce
(one fit job at a time) against the whole-table functions, however the fits are batched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import BINOMIAL_STUDY, synthetic_fit_job, write_fit_job
from shrinksim.shrinkage import FIT_KEY, implied_tau, theory_shrinkage
from shrinksim.study.summarize import (
    average_ranks,
    rank_correlation,
    reduce_jobs,
    shrinkage_per_cell,
    shrinkage_per_fit,
)
from shrinksim.tables import FITS, GROUPS, read_tables

KEY = {
    "n_per_group": 35,
    "groups": 6,
    "spread_axis": "tau",
    "spread": 0.5,
    "prior": "weak",
    "model": "partial",
}


def test_theory_curve_closed_form():
    # sigma^2 = 1 / (35 * 0.4 * 0.6) = 0.119048; B = 0.119048 / (0.119048 + 0.25) = 0.32258
    assert theory_shrinkage(35, 0.5, 0.4) == pytest.approx(0.119048 / 0.369048, rel=1e-5)
    assert theory_shrinkage(np.array([1, 1e9]), 0.5, 0.4) == pytest.approx([0.943, 0.0], abs=1e-3)
    assert implied_tau("p_sd", 0.048, 0.4) == pytest.approx(0.2)


def _fit(replicate: int, b: float, mu: float = -0.4) -> tuple[pd.DataFrame, dict]:
    obs = np.array([-1.5, -1.0, -0.2, 0.3, 0.9, 1.4])
    n = np.full(6, 35)
    y = np.round(n / (1 + np.exp(-obs))).astype(int)
    obs_logit = np.log((y + 0.5) / (n - y + 0.5))
    groups = pd.DataFrame(
        {
            **KEY,
            "replicate": replicate,
            "group": range(1, 7),
            "is_control": False,
            "n": n,
            "y": y,
            "obs_logit": obs_logit,
            "theta_mean": mu + (1 - b) * (obs_logit - mu),  # exact linear shrinkage by b
        }
    )
    control = groups.iloc[[0]].assign(group=0, is_control=True, obs_logit=5.0, theta_mean=-3.0)
    return pd.concat([control, groups]), {
        **KEY,
        "replicate": replicate,
        "status": "ok",
        "mu_mean": mu,
        "tau_mean": 0.4,
    }


def test_shrinkage_recovers_exact_linear_shrinkage():
    parts = [_fit(0, 0.3), _fit(1, 0.5), _fit(2, 0.7)]
    groups = pd.concat([g for g, _ in parts])
    fits = pd.DataFrame([f for _, f in parts])
    per_fit = shrinkage_per_fit(groups, fits, BINOMIAL_STUDY)
    # the control row (an outlier by construction) is excluded, so both measures are exact
    assert per_fit["shrinkage"].to_numpy() == pytest.approx([0.3, 0.5, 0.7], abs=1e-12)
    assert per_fit["shrinkage_ratio"].to_numpy() == pytest.approx([0.3, 0.5, 0.7], abs=1e-12)
    cell = shrinkage_per_cell(per_fit)
    assert len(cell) == 1
    # mean 0.5, sd 0.2, MCSE = sd / sqrt(3)
    assert cell["shrinkage_mean"].iloc[0] == pytest.approx(0.5)
    assert cell["shrinkage_mcse"].iloc[0] == pytest.approx(0.2 / np.sqrt(3))
    assert cell["shrinkage_theory"].iloc[0] == pytest.approx(theory_shrinkage(35, 0.5, 0.4))


def test_reduce_gives_the_shrinkage_of_the_whole_table_functions(tmp_path):
    """Job by job, the reduce computes exactly (bit for bit) what shrinkage_per_fit computes
    on the whole groups and fits tables (the your-data study uses the latter)."""
    job = write_fit_job(tmp_path, *synthetic_fit_job())
    streamed = reduce_jobs([job], BINOMIAL_STUDY)
    groups, fits = read_tables([job[0]], GROUPS), read_tables([job[1]], FITS)
    whole = shrinkage_per_fit(groups, fits, BINOMIAL_STUDY)
    columns = [*FIT_KEY, "status", "tau_mean", "shrinkage", "shrinkage_ratio", "shrinkage_theory"]
    # (integer dtypes differ: the reduce keeps the files' pandas metadata, nullable Int64)
    pd.testing.assert_frame_equal(
        streamed[columns], whole[columns], check_exact=True, check_dtype=False
    )
    assert streamed["shrinkage"].notna().sum() == 4  # the failed fit has none


def test_reduce_does_not_depend_on_batches_job_order_or_workers(tmp_path):
    groups, fits = synthetic_fit_job()
    whole = reduce_jobs([write_fit_job(tmp_path / "one", groups, fits)], BINOMIAL_STUDY)
    jobs = [
        write_fit_job(
            tmp_path / "two",
            groups[groups["replicate"].isin(replicates)],
            fits[fits["replicate"].isin(replicates)],
            batch,
        )
        for batch, replicates in enumerate(([0, 1, 2], [3, 4]))
    ]
    for order, workers in ((jobs, 1), (jobs[::-1], 1), (jobs, 2)):
        batched = reduce_jobs(order, BINOMIAL_STUDY, workers=workers)
        pd.testing.assert_frame_equal(batched, whole, check_exact=True)
    assert whole["replicate"].tolist() == [0, 1, 2, 3, 4]


def test_average_ranks_equal_scipy_rankdata_exactly():
    from scipy.stats import rankdata

    rng = np.random.default_rng(7)
    for _ in range(300):
        size = int(rng.integers(1, 120))
        ties = rng.integers(0, int(rng.integers(1, 30)), size=size).astype(float)
        for x in (ties, rng.normal(size=size)):
            assert np.array_equal(average_ranks(x), rankdata(x))


def test_rank_correlation_of_monotone_and_constant_values():
    assert rank_correlation(np.array([3.0, 1, 2]), np.array([30.0, 10, 20])) == pytest.approx(1)
    assert rank_correlation(np.array([3.0, 1, 2]), np.array([10.0, 30, 20])) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(np.ones(3), np.arange(3.0)))
