"""Simulation-based calibration of every non-binomial family's partial-pooling program, the one
the studies fit (marginalised for the Gaussian ones), with real PyStan fits.

Per family 100 simulations (truth from the prior, data from the model: ``shrinksim.sbc.fit``)
of 6 groups at n = 10 (poisson: exposure 10; gaussian_se: se = 1 / sqrt(10)), brms' default
priors on mu and sigma, half-normal(0, 1) on tau, 2 chains x 200 warmup + 200 draws, ranks
among 39 thinned draws of mu, tau, [sigma] and theta[1], theta[2]. A simulation whose Poisson
counts exceed Stan's int is an error row, left out of the ranks (a function of the data only,
so the ranks stay uniform). The binomial program's calibration is the default SBC's
(config/sbc.yaml). Why not brms' half-student_t(3, 0, 2.5) on tau: on the Poisson log-rate it
puts prior mass on rates of e^(+-20) and beyond, where the non-centred sampler diverges and
SBC rejects tau (config/sbc_families.yaml; docs/families.md).

Tolerance: the rank tests of :func:`shrinksim.sbc.calibration.calibration_tests`, Holm over
every (family, parameter) at alpha = 0.01, so a calibrated program fails with probability
< 1 %. The test can fail: the same design with Poisson exposures reported at half their value
(a data-builder mistake, mu off by log 2) is rejected.
"""

from __future__ import annotations

import pandas as pd

from conftest import CACHE
from shrinksim.engines import make_engine
from shrinksim.sbc import calibration, fit
from shrinksim.sbc.design import SbcCell

FAMILIES = ("poisson", "gaussian", "gaussian_se")
SIMULATIONS = 100
ALPHA = 0.01
SETTINGS = {
    "seed": 20261202,
    "intercept_prior": "student_t(3, 0, 2.5)",
    "tau_prior": "normal(0, 1)",
    "sigma_prior": "student_t(3, 0, 2.5)",
    "simulation": {"n_sd": 0},
    "sbc": {
        "group_effects": 2,
        "thin_to": 39,
        "sampler": {
            "chains": 2,
            "warmup": 200,
            "draws": 200,
            "adapt_delta": 0.95,
            "max_treedepth": 10,
        },
    },
}


def _ranks(compile_program, family: str, simulations: int) -> pd.DataFrame:
    cell = SbcCell(10, 6, "half_normal", family)
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        compiled = compile_program(cell.program)
        return fit.fit_batch(
            engine, compiled, cell, SETTINGS, list(range(simulations)), lambda _: None
        )


def test_every_family_is_calibrated(compile_program):
    ranks = pd.concat([_ranks(compile_program, f, SIMULATIONS) for f in FAMILIES])
    # only a Poisson count beyond Stan's int (theta = mu + tau z from the far tails of
    # the priors) may leave a simulation unfitted
    errors = ranks.drop_duplicates(["family", "simulation"]).query("status == 'error'")
    assert set(errors["family"]) <= {"poisson"} and len(errors) <= 2, errors["message"]
    tests = calibration.calibration_tests(ranks, ALPHA)
    assert set(tests["family"]) == set(FAMILIES)
    assert "sigma" in set(tests.loc[tests["family"] == "gaussian", "parameter"])
    assert not tests["rejected"].any(), tests[["family", "parameter", "p_adjusted"]]


def test_misreported_exposure_is_rejected(compile_program, monkeypatch):
    real = fit.simulate_data

    def halved_exposure(*args, **kwargs):
        columns = real(*args, **kwargs)
        return columns | {"exposure": columns["exposure"] / 2}

    monkeypatch.setattr(fit, "simulate_data", halved_exposure)
    tests = calibration.calibration_tests(_ranks(compile_program, "poisson", 40), ALPHA)
    assert tests.set_index("parameter").loc["mu", "rejected"]
