"""The convergence flags (shrinksim.study.measures.problems) and the retries that change the
seed (shrinksim.fitting.fit_replicate), without Stan: synthetic draws and a fake engine.

The measured false-alarm and detection rates on real fits are in docs/calibration.md and
tests/stan/test_convergence_controls.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.signal import lfilter

from shrinksim import tables
from shrinksim.design import DataCell, FitCell, stan_seed
from shrinksim.engines import CompiledModel, Draws, Engine, SamplingError
from shrinksim.fitting import attempt_seed, attempts_log, diagnose, fit_replicate
from shrinksim.study.measures import (
    ESS_PER_CHAIN,
    FLAGS,
    RHAT_ALPHA,
    cell_measures,
    problems,
    rhat_threshold,
    thresholds,
)
from shrinksim.study.plot_accuracy import flag_title
from shrinksim.study.report import flag_rules
from shrinksim.study.summarize import FIT_COLUMNS, _read_fits

CHAINS, DRAWS = 4, 500


def ar1(rng: np.random.Generator, phi: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) chains along axis 1 with unit marginal variance."""
    e = rng.standard_normal(shape) * np.sqrt(1 - phi**2)
    e[:, 0] /= np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], e, axis=1)


def sampler_variables(rng: np.random.Generator, chains: int = CHAINS) -> dict[str, np.ndarray]:
    return {
        "divergent__": np.zeros((chains, DRAWS)),
        "treedepth__": np.full((chains, DRAWS), 3.0),
        "energy__": rng.standard_normal((chains, DRAWS)),
    }


def partial_fit(rng: np.random.Generator, shift: float = 0.0, groups: int = 101) -> dict:
    """diagnose() of synthetic partial-pooling draws: mu, tau with bulk ESS ~ 400 (100 per
    chain), group effects ~ independent; chain 0's mu and tau shifted by ``shift`` sd."""
    hyper = ar1(rng, 0.667, (CHAINS, DRAWS, 2))
    hyper[0] += shift
    theta = ar1(rng, 0.2, (CHAINS, DRAWS, groups))
    draws = Draws({"mu": hyper[..., 0], "tau": hyper[..., 1]}, sampler_variables(rng), 0.0)
    return diagnose(draws, theta, 10) | {"model": "partial", "groups": groups - 1, "status": "ok"}


# --- thresholds -----------------------------------------------------------------------------


def test_rhat_thresholds_grow_with_quantities_and_shrink_with_chains():
    assert rhat_threshold(1, 4) == pytest.approx(1.0286, abs=5e-4)
    assert rhat_threshold(2, 4) == pytest.approx(1.031, abs=5e-4)
    assert rhat_threshold(101, 4) == pytest.approx(1.044, abs=5e-4)
    assert rhat_threshold(2, 4) < rhat_threshold(101, 4) < rhat_threshold(1001, 4)
    assert rhat_threshold(101, 8) < rhat_threshold(101, 4) < rhat_threshold(101, 2)
    assert np.isnan(rhat_threshold(0, 4))


@pytest.mark.slow  # 300 synthetic fits: ~10 s
def test_rhat_threshold_false_alarm_rate_at_its_calibration_ess():
    """Converged chains with bulk ESS ~ 100 per chain (the calibration point): the largest
    R-hat of 2 quantities exceeds its threshold in at most alpha = 1 % of fits (measured
    ... of 2,000); 300 fits here, so at most 3 % allows for the Monte Carlo error."""
    rng = np.random.default_rng(1)
    rows = [partial_fit(rng) for _ in range(300)]
    ess = np.median([row["ess_bulk_hyper_min"] for row in rows])
    assert 250 < ess < 550
    flags = problems(pd.DataFrame(rows), CHAINS)
    assert flags["rhat_hyper"].mean() <= 3 * RHAT_ALPHA
    assert flags["rhat_groups"].mean() <= 3 * RHAT_ALPHA


def test_one_chain_shifted_by_a_posterior_sd_is_flagged():
    rng = np.random.default_rng(2)
    flags = problems(pd.DataFrame([partial_fit(rng, shift=1.0) for _ in range(40)]), CHAINS)
    assert flags["rhat_hyper"].all() and flags["any"].all()


def test_thresholds_per_model_and_size():
    fits = pd.DataFrame({"model": ["partial", "none", "complete"], "groups": [100, 100, 10]})
    level = thresholds(fits, CHAINS)
    assert level["rhat_hyper"].iloc[0] == rhat_threshold(2, CHAINS)
    assert np.isnan(level["rhat_hyper"].iloc[1])
    assert level["rhat_hyper"].iloc[2] == rhat_threshold(1, CHAINS)
    assert level["rhat_groups"].tolist() == [rhat_threshold(k, CHAINS) for k in (101, 101, 11)]
    assert (level["low_ess"] == ESS_PER_CHAIN).all() and (level["ebfmi"] == 0.3).all()


# --- the rules --------------------------------------------------------------------------------


def fit_rows(**changes: list) -> pd.DataFrame:
    """Rows of clean partial-pooling fits (100 groups), with ``changes`` per column."""
    clean = {
        "model": "partial",
        "groups": 100,
        "status": "ok",
        "divergences": 0,
        "ebfmi_min": 0.6,
        "rhat_max": 1.02,
        "rhat_hyper_max": 1.02,
        "rhat_groups_max": 1.02,
        "ess_bulk_min": 300.0,
        "ess_tail_min": 300.0,
    }
    size = len(next(iter(changes.values()))) if changes else 1
    return pd.DataFrame({k: changes.get(k, [v] * size) for k, v in clean.items()})


@pytest.mark.parametrize(
    ("column", "values", "flag"),
    [
        ("divergences", [0, 1], "divergent"),
        ("ebfmi_min", [0.31, 0.29], "ebfmi"),
        ("rhat_hyper_max", [1.03, 1.032], "rhat_hyper"),
        ("rhat_groups_max", [1.043, 1.045], "rhat_groups"),
        ("ess_tail_min", [40.0, 39.0], "low_ess"),
        ("ess_bulk_min", [40.0, 39.0], "low_ess"),
        ("status", ["divergent", "error"], "error"),
    ],
)
def test_each_rule_fires_on_its_own(column, values, flag):
    flags = problems(fit_rows(**{column: values}), CHAINS)
    assert flags[flag].tolist() == [False, True]
    others = flags.drop(columns=[flag, "any"])
    assert not others.to_numpy().any()
    assert flags["any"].tolist() == [False, True]
    assert set(flags.columns) == set(FLAGS)


def test_a_high_hyperparameter_rhat_is_not_blamed_on_the_group_effects():
    flags = problems(fit_rows(rhat_max=[1.05], rhat_hyper_max=[1.05]), CHAINS)
    assert flags["rhat_hyper"].all() and not flags["rhat_groups"].any()


def test_rows_without_the_group_maximum_use_the_overall_one():
    rows = fit_rows(rhat_max=[1.043, 1.045]).drop(columns=["rhat_groups_max", "rhat_hyper_max"])
    assert problems(rows, CHAINS)["rhat_groups"].tolist() == [False, True]


def test_missing_values_never_flag():
    rows = fit_rows(status=["error"]).assign(
        divergences=pd.NA, ebfmi_min=np.nan, rhat_max=np.nan, ess_bulk_min=np.nan
    )
    rows = rows.drop(columns=["rhat_hyper_max", "rhat_groups_max"])
    flags = problems(pd.concat([rows, rows.assign(status="ok")], ignore_index=True), CHAINS)
    assert flags["error"].tolist() == [True, False]
    assert not flags.drop(columns=["error", "any"]).to_numpy().any()


def test_diagnostics_rows_carry_the_thresholds():
    from conftest import synthetic_fit_job

    _, fits = synthetic_fit_job()
    per_fit = fits.assign(
        squared_error=1.0,
        absolute_error=1.0,
        rank_correlation=0.5,
        shrinkage=0.5,
        shrinkage_ratio=0.5,
        shrinkage_theory=0.5,
    )
    for level in ("0.5", "0.9", "0.95"):
        per_fit[f"coverage_{level}"] = 1.0
        per_fit[f"width_{level}"] = 1.0
    rows = pd.DataFrame(cell_measures(per_fit, 0.5, 2))
    diag = rows[rows["target"] == "diagnostics"].set_index("measure")
    assert diag.loc["rhat_hyper", "level"] == rhat_threshold(2, 2)
    assert diag.loc["rhat_groups", "level"] == rhat_threshold(4, 2)  # 3 groups + control
    assert diag.loc["low_ess", "level"] == ESS_PER_CHAIN
    assert diag.loc[["divergent", "error", "any"], "level"].isna().all()
    assert (diag["reference"] == 0).all()


def test_figure_and_report_state_rule_and_threshold():
    levels = pd.Series([rhat_threshold(1, 4), rhat_threshold(2, 4)])
    assert flag_title(FLAGS["rhat_hyper"], levels) == "R-hat of mu or tau > 1.029 / 1.031"
    assert flag_title(FLAGS["low_ess"], pd.Series([10.0])) == "bulk or tail ESS per chain < 10"
    assert flag_title(FLAGS["error"], pd.Series([np.nan])) == FLAGS["error"]
    diagnostics = pd.DataFrame(
        {
            "measure": ["rhat_hyper", "rhat_hyper", "low_ess", "any"],
            "level": [rhat_threshold(2, 4), rhat_threshold(1, 4), 10.0, np.nan],
            "model": ["partial", "complete", "partial", "partial"],
            "groups": 100,
        }
    )
    text = flag_rules(diagnostics)
    assert "R-hat of mu or tau &gt; 1.029 (complete pooling, 100 groups) / " in text
    assert "&gt; 1.031 (partial pooling, 100 groups)" in text
    assert "<b>low_ess</b>: bulk or tail ESS per chain &lt; 10</li>" in text
    assert "any of these" in text


# --- retries ----------------------------------------------------------------------------------


class FakeEngine(Engine):
    """Samples complete-pooling draws from the seed; fails (or diverges) for given seeds."""

    name = "fake"

    def __init__(self, failing: set[int] = frozenset(), divergent: set[int] = frozenset()):
        self.failing, self.divergent, self.calls = failing, divergent, []

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> CompiledModel:
        return CompiledModel(self.name, program, "", {}, code)

    def sample(self, compiled, data, settings, seed):
        self.calls.append((seed, settings.adapt_delta))
        if seed in self.failing:
            raise SamplingError(f"seed {seed} fails")
        rng = np.random.default_rng(seed)
        variables = sampler_variables(rng, settings.chains)
        variables["divergent__"][0, 0] = float(
            seed in self.divergent and settings.adapt_delta < 0.99
        )
        return Draws({"mu": ar1(rng, 0.3, (settings.chains, DRAWS))}, variables, 0.0)


SETTINGS = {
    "seed": 7,
    "sampler": {"chains": 2, "warmup": 10, "draws": DRAWS, "adapt_delta": 0.9, "max_treedepth": 10},
    "retry": {"max_attempts": 3, "adapt_delta": 0.99},
    "intercept_prior": "normal(0, 1)",
}
CELL = FitCell(DataCell(5, 2, "tau", 0.5), "none", "complete")
GROUPS = pd.DataFrame({"group": [1, 2], "n": [5, 6], "y": [1, 3]})


def fit(engine: FakeEngine, replicate: int = 3) -> dict:
    return fit_replicate(
        engine, CompiledModel("fake", "p", "", {}, ""), CELL, GROUPS, SETTINGS, replicate
    )[1]


def test_first_attempt_keeps_the_fits_own_seed():
    first = stan_seed(7, CELL.key, 3)
    assert attempt_seed(7, CELL.key, 3, 1) == first
    assert attempt_seed(7, CELL.key, 3, 2) == stan_seed(7, f"{CELL.key}/attempt~2", 3)
    row = fit(engine := FakeEngine())
    assert engine.calls == [(first, 0.9)]
    assert row["seed"] == first and row["attempts"] == 1 and row["status"] == "ok"
    assert row["attempts_log"] == f"1:{first}:0.9:ok"


def test_sampler_error_is_retried_with_a_new_seed():
    first, second, third = (attempt_seed(7, CELL.key, 3, k) for k in (1, 2, 3))
    assert len({first, second, third}) == 3
    row = fit(engine := FakeEngine(failing={first}))
    assert [seed for seed, _ in engine.calls] == [first, second]
    assert row["status"] == "ok" and row["seed"] == second and row["attempts"] == 2
    assert row["attempts_log"] == f"1:{first}:0.9:error;2:{second}:0.9:ok"
    assert np.isfinite(row["mu_mean"])
    row = fit(engine := FakeEngine(failing={first, second, third}))
    assert row["status"] == "error" and row["attempts"] == 3 and "fails" in row["message"]
    assert row["attempts_log"].count(":error") == 3 and "mu_mean" not in row


def test_divergent_fit_is_refitted_with_the_same_seed():
    first = attempt_seed(7, CELL.key, 3, 1)
    row = fit(engine := FakeEngine(divergent={first}))
    assert engine.calls == [(first, 0.9), (first, 0.99)]
    assert row["status"] == "ok" and row["adapt_delta"] == 0.99
    assert row["attempts_log"] == f"1:{first}:0.9:divergent;2:{first}:0.99:ok"


def test_retry_seeds_do_not_depend_on_job_order():
    """A replicate's attempts get the same seeds whether it is fitted alone or after others."""
    failing = {attempt_seed(7, CELL.key, r, 1) for r in range(4)}
    alone = fit(FakeEngine(failing=failing), replicate=2)
    engine = FakeEngine(failing=failing)
    batch = [fit(engine, replicate=r) for r in (3, 0, 2, 1)]
    assert batch[2]["attempts_log"] == alone["attempts_log"]
    assert len({row["seed"] for row in batch}) == 4


def test_attempts_log_format():
    assert (
        attempts_log([(11, 0.9, "divergent"), (11, 0.99, "ok")])
        == "1:11:0.9:divergent;2:11:0.99:ok"
    )
    assert attempts_log([]) == ""


# --- tables -----------------------------------------------------------------------------------


def test_new_raw_columns_are_in_fits_per_fit_and_user_fits():
    new = [
        "attempts_log",
        "rhat_hyper_max",
        "ess_bulk_hyper_min",
        "ess_tail_hyper_min",
        "rhat_groups_max",
        "ess_bulk_groups_min",
        "ess_tail_groups_min",
    ]
    for schema in (tables.FITS, tables.USER_FITS):
        assert set(new) <= set(schema.names)
    assert {"ebfmi_min", *new[1:]} <= set(tables.PER_FIT.names)


def test_reduce_reads_fits_tables_written_before_the_new_columns(tmp_path):
    from conftest import synthetic_fit_job

    _, fits = synthetic_fit_job()
    table = tables.to_table(fits, tables.FITS)
    old = table.drop_columns(["attempts_log", "rhat_hyper_max", "ess_tail_groups_min"])
    pq.write_table(old, tmp_path / "old.parquet")
    read = _read_fits(str(tmp_path / "old.parquet"))
    assert read.columns.tolist() == FIT_COLUMNS
    assert read["rhat_hyper_max"].isna().all() and read["ess_tail_groups_min"].isna().all()
    pd.testing.assert_series_equal(read["rhat_max"], fits["rhat_max"])
