"""The convergence flags on real Stan fits: converged fits of the default study's models and
sizes are not flagged; positive controls that really fail are (issue 14).

A small version of the measurement in docs/calibration.md (hundreds of fits there): false
alarms at most 5 % of the converged fits, detection at least 95 % of the failing ones.
Positive controls, each checked there to fail against an exact reference:

* ``multimodal``: tests/stan/programs/multimodal.stan, three coordinates each with two
  modes 20 sds apart: no chain ever crosses, so the fit reports the modes its chains
  started in;
* ``centred``: tests/stan/programs/centred.stan (the study's model, centred), 10 groups of
  about 5 outcomes with true tau 0.1: a funnel, divergent even at adapt_delta 0.99;
* ``far_start``: the study's partial-pooling program, chains started far apart (initial
  values uniform on (-20, 20) instead of (-2, 2)) with a warmup of 10 iterations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import CACHE, REPO, TESTS
from shrinksim.design import STAN_PROGRAMS, DataCell, FitCell
from shrinksim.engines import PyStanEngine, SamplerSettings, make_engine, program_source
from shrinksim.fitting import diagnose, example_data, fit_replicate
from shrinksim.settings import load_yaml
from shrinksim.study.measures import problems
from shrinksim.study.simulate import simulate

PROGRAMS = TESTS / "stan" / "programs"
CONFIG = load_yaml(REPO / "config.yaml")
SETTINGS = {key: CONFIG[key] for key in ("seed", "sampler", "retry", "intercept_prior")}
CHAINS = CONFIG["sampler"]["chains"]


class FarStart(PyStanEngine):
    """PyStan with initial values uniform on (-20, 20) on the unconstrained scale."""

    def _arguments(self, module, settings, seed):
        return super()._arguments(module, settings, seed) | {"init_radius": 20.0}


@pytest.fixture(scope="module")
def controls(tmp_path_factory):
    """The test-only programs, compiled once (PyStan's cache is shared with the study)."""
    data = {"centred": example_data("partial_pooling"), "multimodal": {"K": 2, "d": 1.0, "s": 0.1}}
    out = tmp_path_factory.mktemp("controls")
    with make_engine("pystan", cache_dir=CACHE, model_dir=out) as engine:
        return {
            name: engine.compile(program_source(PROGRAMS / f"{name}.stan"), name, example)
            for name, example in data.items()
        }


def flags(rows: list[dict], model: str, groups: int) -> pd.DataFrame:
    return problems(pd.DataFrame(rows).assign(model=model, groups=groups), CHAINS)


def fit_rows(engine, compiled, cell: FitCell, replicates, settings, config=CONFIG) -> list[dict]:
    rows = []
    for replicate in replicates:
        data = simulate(config, cell.data, replicate)
        rows.append(fit_replicate(engine, compiled, cell, data, settings, replicate)[1])
    return rows


def test_converged_default_fits_are_not_flagged(compile_program):
    """The study's own fits (default settings and seeds, 100 groups) of replicates 0 and 1
    of every model at n = 5, tau = 0.25 and n = 200, tau = 0.5. Measured on 630 such fits,
    0.8 % are flagged, among them replicate 1 of no pooling at n = 5, tau = 0.5 (tail ESS 35
    in a group with y = n), hence tau = 0.25 at n = 5 here."""
    rows = []
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        for n, tau in ((5, 0.25), (200, 0.5)):
            cell = DataCell(n, 100, "tau", tau)
            for prior, model in (
                ("brms_default", "partial"),
                ("none", "none"),
                ("none", "complete"),
            ):
                settings = dict(SETTINGS)
                if model == "partial":
                    settings["tau_prior"] = CONFIG["priors"][prior]
                compiled = compile_program(STAN_PROGRAMS[model])
                found = fit_rows(engine, compiled, FitCell(cell, prior, model), [0, 1], settings)
                rows += [row | {"model": model, "groups": 100} for row in found]
    flagged = problems(pd.DataFrame(rows), CHAINS)
    assert len(rows) == 12 and flagged["any"].sum() == 0, pd.DataFrame(rows)


def test_multimodal_fits_are_flagged(controls):
    settings = SamplerSettings.from_config(CONFIG["sampler"])
    rows = []
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        for seed in range(20):
            draws = engine.sample(
                controls["multimodal"], {"K": 3, "d": 1.0, "s": 0.1}, settings, seed
            )
            theta = draws.params["theta"]
            rows.append({"status": "ok"} | diagnose(draws, theta, settings.max_treedepth))
            # the chains really sit in different modes: a coordinate's chain means differ
            assert np.ptp(np.sign(theta.mean(axis=1)), axis=0).max() == 2
    found = flags(rows, "none", 2)
    assert found["any"].all() and found["rhat_groups"].all()


def test_centred_funnel_is_flagged(controls):
    config = CONFIG | {"simulation": CONFIG["simulation"] | {"control": {"n": 0, "p": 0.5}}}
    cell = FitCell(DataCell(5, 10, "tau", 0.1), "brms_default", "partial")
    settings = SETTINGS | {"tau_prior": CONFIG["priors"]["brms_default"]}
    with make_engine("pystan", cache_dir=CACHE, model_dir=".") as engine:
        rows = fit_rows(engine, controls["centred"], cell, range(20), settings, config)
    found = flags(rows, "partial", 9)
    assert found["any"].mean() >= 0.95, pd.DataFrame(rows)


def test_chains_started_far_apart_are_flagged(compile_program):
    cell = FitCell(DataCell(35, 20, "tau", 0.5), "brms_default", "partial")
    settings = SETTINGS | {
        "sampler": SETTINGS["sampler"] | {"warmup": 10},
        "tau_prior": CONFIG["priors"]["brms_default"],
    }
    with FarStart(CACHE) as engine:
        rows = fit_rows(engine, compile_program("partial_pooling"), cell, range(10), settings)
    found = flags(rows, "partial", 20)
    assert found["any"].all(), pd.DataFrame(rows)
