"""Performance measures and their Monte Carlo standard errors: known cases, and hand-computed
answers on a synthetic fit job (conftest.synthetic_fit_job) taken the way the study takes
it: written as a fit job's files, reduced to the per-fit table, then measured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import BINOMIAL_STUDY, synthetic_fit_job, write_fit_job
from shrinksim import tables
from shrinksim.study import measures as m
from shrinksim.study.summarize import reduce_jobs

THEORY = 5 / 11
"""Normal approximation of the synthetic cell: sigma^2 = 1 / (20 * 0.4 * 0.6) = 5 / 24,
tau^2 = 6 / 24, so B = 5 / 11."""


def measured(root, groups: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """The measures of a fit job's tables, through the files and the reduce."""
    per_fit = reduce_jobs([write_fit_job(root, groups, fits)], BINOMIAL_STUDY)
    tables.to_table(per_fit, tables.PER_FIT)  # fits the declared schema
    return m.measures(per_fit, BINOMIAL_STUDY, chains=2)


def test_formulas_on_a_hand_computed_case():
    x = np.array([1.0, 2.0, 3.0, 4.0])  # truth 2: errors -1, 0, 1, 2
    sd = np.sqrt(5 / 3)  # sd of 1..4 with divisor R - 1
    assert m.bias(x, 2.0) == pytest.approx((0.5, sd / 2))
    assert m.relative_bias(x, 2.0) == pytest.approx((0.25, sd / 4))
    assert m.empirical_se(x) == pytest.approx((sd, sd / np.sqrt(6)))
    # squared errors 1, 0, 1, 4: MSE 1.5, MCSE sqrt(((-.5)^2 + 1.5^2 + .5^2 + 2.5^2) / 12)
    assert m.mse((x - 2) ** 2) == pytest.approx((1.5, np.sqrt(9 / 12)))
    assert m.rmse((x - 2) ** 2) == pytest.approx(
        (np.sqrt(1.5), np.sqrt(9 / 12) / (2 * np.sqrt(1.5)))
    )
    assert m.proportion([True] * 90 + [False] * 10) == pytest.approx((0.9, 0.03))
    assert m.mean([1.0, np.nan, 3.0]) == pytest.approx((2.0, np.sqrt(2) / np.sqrt(2)))


def test_degenerate_inputs_give_nan_not_errors():
    assert np.isnan(m.relative_bias([1.0, 2.0], 0.0).value)
    assert np.isnan(m.empirical_se([1.0]).value)
    assert m.mean([1.0]).value == 1.0 and np.isnan(m.mean([1.0]).mcse)
    assert all(np.isnan(m.mean([]))) and all(np.isnan(m.proportion([])))


def test_mcse_matches_spread_of_the_measure_over_repeated_studies():
    """Each MCSE formula estimates the sd of its measure across repeated simulation studies.

    4000 studies of R = 50 estimates ~ Normal(truth + 0.1, 1) (coverage: hits ~ Bernoulli(0.9));
    the mean MCSE must be within 8 % of the sd of the measure over the studies. Tolerance: the
    estimated MCSE is biased low by up to ~4 % at R = 50 (Jensen; delta method for RMSE), and
    the sd over 4000 studies has a relative Monte Carlo error of ~1.1 % (4 sd ~ 4.5 %). Wrong
    formulas miss by far more: sd / R instead of sd / sqrt(R) by 7x, EmpSE / sqrt(R - 1) by 1.4x.
    """
    rng = np.random.default_rng(20261126)
    truth, x = 0.5, rng.normal(0.6, 1.0, (4000, 50))
    hits = rng.random((4000, 50)) < 0.9
    cases = {
        "bias": [m.bias(v, truth) for v in x],
        "relative_bias": [m.relative_bias(v, truth) for v in x],
        "empse": [m.empirical_se(v) for v in x],
        "rmse": [m.rmse((v - truth) ** 2) for v in x],
        "coverage": [m.proportion(h) for h in hits],
    }
    for name, estimates in cases.items():
        values, mcse = np.array(estimates).T
        ratio = mcse.mean() / values.std(ddof=1)
        assert ratio == pytest.approx(1, abs=0.08), name


def test_measures_on_synthetic_fits_match_hand_computation(tmp_path):
    got = measured(tmp_path, *synthetic_fit_job())
    tables.to_table(got, tables.MEASURES)  # fits the declared schema

    def row(target, measure, level=np.nan):
        hit = got[
            (got["target"] == target)
            & (got["measure"] == measure)
            & ((got["level"] == level) | (np.isnan(level) & got["level"].isna()))
        ]
        assert len(hit) == 1, (target, measure, level)
        return hit.iloc[0]

    sd = np.std([0.4, 0.6, 0.5, 0.7], ddof=1)  # 0.129099
    assert row("tau", "mean")[["value", "mcse", "reference"]].tolist() == pytest.approx(
        [0.55, sd / 2, 0.5]
    )
    assert row("tau", "bias")[["value", "mcse"]].tolist() == pytest.approx([0.05, sd / 2])
    assert row("tau", "relative_bias")["value"] == pytest.approx(0.1)
    assert row("tau", "bias")["replicates"] == 4  # the error fit has no estimate
    # squared errors .01 .01 0 .04: MSE .015
    assert row("tau", "rmse")["value"] == pytest.approx(np.sqrt(0.015))
    assert row("tau", "coverage", 0.95)[["value", "mcse"]].tolist() == pytest.approx(
        [0.75, np.sqrt(0.75 * 0.25 / 4)]
    )
    assert row("tau", "coverage", 0.9)["value"] == pytest.approx(0.5)
    assert row("tau", "coverage", 0.5)["value"] == pytest.approx(0.25)
    assert row("tau", "width", 0.95)["value"] == pytest.approx(np.mean([0.6, 0.6, 0.4, 0.4]))

    # groups: per-fit MSE 0, 0.25, 0, 0.25 -> MSE 0.125; MAE 0, .5, 0, .5
    assert row("groups", "rmse")["value"] == pytest.approx(np.sqrt(0.125))
    mse_mcse = np.std([0, 0.25, 0, 0.25], ddof=1) / 2
    assert row("groups", "rmse")["mcse"] == pytest.approx(mse_mcse / (2 * np.sqrt(0.125)))
    assert row("groups", "mae")["value"] == pytest.approx(0.25)
    # estimates -1.5, 0.5, 1.5 or the truth itself: ranks always agree with the truth
    assert row("groups", "rank_correlation")["value"] == pytest.approx(1.0)
    # per-fit coverage at 50 %: replicate 0 (exact estimates, half-width .25) covers all 3;
    # odd replicates (off by .5, half-width 1) cover all; replicate 2 covers all -> 1.0
    assert row("groups", "coverage", 0.5)["value"] == pytest.approx(1.0)
    assert row("groups", "coverage", 0.95)["value"] == pytest.approx(1.0)
    assert row("groups", "width", 0.95)["value"] == pytest.approx(np.mean([1.0, 4, 4, 4]))

    # shrinkage 0.3 0.5 0.7 0.5 and median ratios 0.2 0.4 0.6 0.4 of the four estimated fits
    factor = row("shrinkage", "factor")
    assert factor[["value", "reference", "replicates"]].tolist() == pytest.approx([0.5, THEORY, 4])
    assert factor["mcse"] == pytest.approx(np.std([0.3, 0.5, 0.7, 0.5], ddof=1) / 2)
    assert row("shrinkage", "median_ratio")["value"] == pytest.approx(0.4)
    # diagnostics over all five fits: one each divergent, R-hat, low ESS, error (the rows'
    # level is each rule's threshold, tested in unit/test_flags.py)
    diagnostics = got[got["target"] == "diagnostics"].set_index("measure")
    for name in ("divergent", "rhat_groups", "low_ess", "error"):
        assert diagnostics.loc[name, ["value", "replicates"]].tolist() == [0.2, 5], name
    for name in ("ebfmi", "rhat_hyper"):
        assert diagnostics.loc[name, "value"] == 0.0, name
    assert diagnostics.loc["any", "value"] == pytest.approx(0.8)
    assert diagnostics.loc["any", "mcse"] == pytest.approx(np.sqrt(0.8 * 0.2 / 5))


def test_group_coverage_counts_misses(tmp_path):
    groups, fits = synthetic_fit_job()
    groups = groups.assign(true_logit=groups["true_logit"] + 0.75)  # shift the truth
    out = measured(tmp_path, groups, fits)
    cov = out[(out["target"] == "groups") & (out["measure"] == "coverage")].set_index("level")
    # replicate 0: every error .75 exceeds the half-widths .25 (50 %) and .5 (95 %)
    # odd replicates: errors 1.25, .25, .25 against half-widths 1 (50 %) and 2 (95 %)
    # replicate 2: every error .75 is within 1 and 2
    assert cov.loc[0.5, "value"] == pytest.approx(np.mean([0, 2 / 3, 1, 2 / 3]))
    assert cov.loc[0.95, "value"] == pytest.approx(np.mean([0, 1, 1, 1]))


def test_baselines_have_no_tau_measures_and_no_theory(tmp_path):
    groups, fits = synthetic_fit_job(prior="none", model="complete")
    groups["theta_mean"] = 0.0  # complete pooling: every group gets the same estimate
    out = measured(tmp_path, groups, fits)
    assert "tau" not in set(out["target"])
    rank = out[out["measure"] == "rank_correlation"].iloc[0]
    assert np.isnan(rank["value"]) and rank["replicates"] == 0
    assert out.loc[out["target"] == "shrinkage", "reference"].isna().all()
    # estimates that ignore the data: shrinkage 1 in every fit with estimates
    factor = out[out["measure"] == "factor"].iloc[0]
    assert factor[["value", "replicates"]].tolist() == pytest.approx([1.0, 4])
