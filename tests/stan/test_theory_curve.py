"""The normal-approximation shrinkage curve against fitted shrinkage (real Stan fits).

Cells of config/theory.yaml (100 groups, no control group, 8 replicates, 2 chains x 300
draws, brms' default prior): the same seeds, so the same numbers as docs/calibration.md.

* Large n, p0 = 0.4 (n = 400 and 1,600, tau = 0.25): the mean fitted shrinkage over the
  replicates equals ``theory_shrinkage`` within 4 MCSE (MCSE = sd / sqrt(8); with 7 degrees
  of freedom a correct curve fails with probability ~0.5 % per cell).
* Small n and rare events (n = 5, p0 = 0.05, tau = 0.5): the curve is wrong there: it
  overstates shrinkage by more than 4 MCSE (docs/calibration.md explains why).
"""

from __future__ import annotations

import pandas as pd

from conftest import REPO
from shrinksim.design import DataCell, FitCell
from shrinksim.engines import make_engine
from shrinksim.settings import load_yaml, merged
from shrinksim.study.fit import fit_batch
from shrinksim.study.outcome import StudyOutcome
from shrinksim.study.simulate import simulate_batch
from shrinksim.study.summarize import shrinkage_per_cell, shrinkage_per_fit


def fitted_shrinkage(compiled, p0: float, cells: list[DataCell]) -> pd.DataFrame:
    """Per cell: mean fitted shrinkage over the replicates, its MCSE and the theory value."""
    config = merged(load_yaml(REPO / "config.yaml"), load_yaml(REPO / "config/theory.yaml"))
    config = merged(config, {"simulation": {"p0": p0}})
    settings = {key: config[key] for key in ("seed", "sampler", "retry", "intercept_prior")}
    settings["tau_prior"] = config["priors"]["brms_default"]
    groups, fits = [], []
    with make_engine("pystan", cache_dir=REPO / ".cache", model_dir=".") as engine:
        for cell in cells:
            data = simulate_batch(config, cell, list(range(config["replicates"])))
            g, f = fit_batch(
                engine,
                compiled,
                FitCell(cell, "brms_default", "partial"),
                data,
                settings,
                progress=lambda m: None,
            )[:2]  # group summaries and fit rows
            groups.append(g)
            fits.append(f)
    outcome = StudyOutcome.from_config(config)  # binomial at p0
    per_fit = shrinkage_per_fit(pd.concat(groups), pd.concat(fits), outcome)
    out = shrinkage_per_cell(per_fit)
    return out.assign(z=(out["shrinkage_mean"] - out["shrinkage_theory"]) / out["shrinkage_mcse"])


def test_theory_curve_holds_at_large_n(compile_program):
    cells = [DataCell(n, 100, "tau", 0.25) for n in (400, 1600)]
    result = fitted_shrinkage(compile_program("partial_pooling"), 0.4, cells)
    print(result[["n_per_group", "shrinkage_mean", "shrinkage_mcse", "shrinkage_theory", "z"]])
    assert (result["fits_ok"] == 8).all()
    assert (result["z"].abs() < 4).all()


def test_theory_curve_breaks_down_at_small_n_and_rare_events(compile_program):
    cells = [DataCell(5, 100, "tau", 0.5)]
    result = fitted_shrinkage(compile_program("partial_pooling"), 0.05, cells)
    print(result[["n_per_group", "shrinkage_mean", "shrinkage_mcse", "shrinkage_theory", "z"]])
    assert result["z"].iloc[0] < -4
