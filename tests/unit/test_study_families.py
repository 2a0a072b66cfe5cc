"""The grid study's families without Stan: StudyOutcome, the simulators, pooled and observed
effects, the config checks and the SBC designs of each family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shrinksim import settings
from shrinksim.design import DataCell
from shrinksim.families import OUTCOME_FAMILIES, observed_natural, pooled_effect, simulate_data
from shrinksim.sbc import design as sbc_design
from shrinksim.sbc import fit as sbc_fit
from shrinksim.study.outcome import StudyOutcome
from shrinksim.study.simulate import simulate


def _config(config: dict, family: str, **simulation) -> dict:
    config = settings.merged(config, {"family": family, "simulation": simulation})
    config["grid"] |= {"n": [40], "groups": [400], "tau": [0.5]}
    return config


def test_outcome_reads_the_config_and_gives_each_theory(config):
    binomial = StudyOutcome.from_config(config)
    assert binomial.family.name == "binomial" and binomial.p0 == 0.4
    assert binomial.theory(35, 0.5) == pytest.approx(0.119048 / 0.369048, rel=1e-5)
    poisson = StudyOutcome.from_config(config | {"family": "poisson"})
    assert poisson.mu == pytest.approx(np.log(0.2))
    v = 1 / (40 * 0.2)  # 1 / (E rate)
    assert poisson.theory(40, 0.5) == pytest.approx(v / (v + 0.25))
    gaussian = StudyOutcome.from_config(config | {"family": "gaussian"})
    assert gaussian.theory(40, 0.5) == pytest.approx((1 / 40) / (1 / 40 + 0.25))
    assert gaussian.labels["theory"] == "exact for known sigma"
    with pytest.raises(ValueError, match="family: 'gaussian_se' is not one of"):
        StudyOutcome.from_config(config | {"family": "gaussian_se"})


def test_poisson_data_follow_the_model(config):
    """400 groups of exposure ~40 at rate 0.2 and tau 0.5: the Pearson statistic of the counts
    given the true rates is chi-square(400); within 4 sd of its mean (sd = sqrt(800))."""
    frame = simulate(_config(config, "poisson"), DataCell(40, 400, "tau", 0.5), 0)
    treat = frame[~frame["is_control"]]
    assert frame[["n", "mean", "sd"]].isna().all().all() and treat["exposure"].ge(1).all()
    expected = treat["exposure"] * treat["true_p"]
    np.testing.assert_allclose(treat["true_p"], np.exp(treat["true_logit"]))
    pearson = (((treat["y"] - expected) ** 2) / expected).sum()
    assert abs(pearson - 400) < 4 * np.sqrt(800)
    control = frame[frame["is_control"]].iloc[0]
    assert control["exposure"] == 1500 and control["true_logit"] == pytest.approx(np.log(0.2))


def test_gaussian_groups_are_sufficient_statistics_of_normal_outcomes(config):
    """Group means: (mean - theta) sqrt(n) / sigma ~ N(0, 1); sds: (n - 1) sd^2 / sigma^2 ~
    chi-square(n - 1). Kolmogorov-Smirnov over 400 groups, p > 0.001 (fixed seed)."""
    frame = simulate(_config(config, "gaussian", sigma=2.0), DataCell(40, 400, "tau", 0.5), 0)
    treat = frame[~frame["is_control"]]
    assert frame[["y", "exposure"]].isna().all().all()
    z = (treat["mean"] - treat["true_logit"]) * np.sqrt(treat["n"]) / 2.0
    assert stats.kstest(z, "norm").pvalue > 1e-3
    q = (treat["n"] - 1) * treat["sd"] ** 2 / 4.0
    assert stats.kstest(stats.chi2.cdf(q, treat["n"] - 1), "uniform").pvalue > 1e-3
    # the spread of theta is tau around the population mean
    assert abs(treat["true_logit"].std() - 0.5) < 0.1


def test_sbc_known_se_and_the_cap_of_huge_poisson_means():
    rng = np.random.default_rng(1)
    cell = sbc_design.SbcCell(16, 3, "weak", "gaussian_se")
    simulation = {"n_sd": 0}
    settings_ = {"seed": 1, "intercept_prior": "normal(0, 1)", "tau_prior": "normal(0, 1)"}
    _, groups = sbc_fit.simulate(
        settings_ | {"simulation": simulation, "sbc": {"group_effects": 0}}, cell, 0
    )
    np.testing.assert_allclose(groups["se"], 0.25)  # SBC: se = 1 / sqrt(n)
    huge = simulate_data(OUTCOME_FAMILIES["poisson"], rng, np.array([60.0]), np.array([10]))
    assert huge["y"][0] > 2**31  # drawn (capped mean), then rejected by the data checks


def test_pooled_and_observed_effects_per_family():
    poisson = pd.DataFrame({"y": [2, 8], "exposure": [10.0, 30.0]})
    assert pooled_effect(OUTCOME_FAMILIES["poisson"], poisson) == pytest.approx(np.log(10.5 / 40))
    np.testing.assert_allclose(
        observed_natural(OUTCOME_FAMILIES["poisson"], poisson), [0.2, 8 / 30]
    )
    gaussian = pd.DataFrame({"n": [1, 3], "mean": [2.0, 6.0], "sd": [np.nan, 1.0]})
    assert pooled_effect(OUTCOME_FAMILIES["gaussian"], gaussian) == pytest.approx(5.0)
    se = pd.DataFrame({"estimate": [1.0, 4.0], "se": [1.0, 2.0]})
    assert pooled_effect(OUTCOME_FAMILIES["gaussian_se"], se) == pytest.approx((1 + 1) / 1.25)
    binomial = {"y": np.array([3, 5]), "n": np.array([10, 10])}  # arrays, as the reduce has
    assert pooled_effect(OUTCOME_FAMILIES["binomial"], binomial) == pytest.approx(
        np.log(8.5 / 12.5)
    )


def test_config_names_a_generator_the_family_cannot_use(config, schema):
    config = settings.merged(config, {"family": "poisson"})
    config["simulation"]["generator"] = "probability_normal"
    config["grid"] |= {"tau": None, "p_sd": [0.05]}
    found = settings.problems(config, schema)
    assert any(line.startswith("simulation.generator: 'probability_normal'") for line in found)
    config = settings.merged(settings.merged(config, {}), {"sigma_prior": "gamma(2, 1)"})
    assert any(line.startswith("sigma_prior:") for line in settings.problems(config, schema))


def test_sbc_designs_of_every_family(config):
    config["sbc"]["families"] = ["binomial", "gaussian"]
    cells = sbc_design.cells(config)
    assert [c.family for c in cells][:1] == ["binomial"] and len(cells) == 2 * 2 * 4
    assert sbc_design.programs(config) == ["gaussian_partial_pooling_marginal", "partial_pooling"]
    gaussian = next(c for c in cells if c.family == "gaussian")
    job = sbc_design.job_settings(config, gaussian.path)
    assert '"sigma_prior"' in job and '"sigma_prior"' not in sbc_design.job_settings(
        config, cells[0].path
    )
    settings_ = {
        "seed": 1,
        "intercept_prior": "normal(0, 1)",
        "tau_prior": "normal(0, 1)",
        "sigma_prior": "normal(0, 1)",
        "simulation": {"n_sd": 0},
        "sbc": {"group_effects": 2},
    }
    truth, groups = sbc_fit.simulate(settings_, gaussian, 0)
    assert (
        list(truth)
        == sbc_design.parameters(2, "gaussian")
        == [
            "mu",
            "tau",
            "sigma",
            "theta[1]",
            "theta[2]",
        ]
    )
    assert list(groups.columns) == ["group", "n", "mean", "sd"] and truth["sigma"] > 0
