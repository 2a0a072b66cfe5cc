"""Your data of every family through the stages, without Stan or Snakemake: the prepared
groups record the family they are fitted as; the design-matched data keep the user's sizes
(scaled per family: n, exposure, se / sqrt(scale)) and control group; the design points, the
theory curve and its inverse, the what-if search (se: the other way round), the
InferenceData groups and the config check of every family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from shrinksim import settings, tables
from shrinksim.families import OUTCOME_FAMILIES, observed_effect, pooled_natural, simulate_data
from shrinksim.settings import merged
from shrinksim.study.outcome import StudyOutcome
from shrinksim.userdata.design import (
    control_group,
    design_points,
    design_sizes,
    size_for_shrinkage,
    size_for_shrinkage_simulated,
)
from shrinksim.userdata.fit import fit_user_data, simulate_design
from shrinksim.userdata.inference import inference_groups, observed_group
from shrinksim.userdata.load import load_data
from shrinksim.userdata.outcome import check_settings, data_family, population
from shrinksim.userdata.study import design_cells, design_fit_rows, whatif, whatif_text

EXAMPLES = REPO / "examples"
CASES = {  # fitted family -> (file, configured family)
    "binomial": ("forum_like.csv", "binomial"),
    "poisson": ("poisson_rates.csv", "poisson"),
    "gaussian": ("gaussian_scores.csv", "gaussian"),
    "gaussian_se": ("eight_schools.csv", "gaussian"),
}


def prepared(fitted: str, control: str | None = None) -> pd.DataFrame:
    """An example's groups as userdata-prepare writes and the stages read them."""
    name, family = CASES[fitted]
    frame = load_data(EXAMPLES / name, family, control).prepared()
    return tables.to_table(frame, tables.USER_DATA).to_pandas()


@pytest.mark.parametrize("fitted", sorted(CASES))
def test_prepared_groups_record_the_family(fitted):
    data = prepared(fitted)
    assert list(data.columns) == tables.USER_DATA.names
    assert (data["family"] == fitted).all() and data_family(data).name == fitted
    family = OUTCOME_FAMILIES[fitted]
    others = set(tables.USER_DATA.names) - {"group", "family", "is_control", *family.columns}
    assert data[sorted(others)].isna().all().all()
    assert data[list(family.columns)].notna().all().all()
    assert data_family(data.drop(columns="family")).name == "binomial"  # frames of before


def test_settings_must_name_the_datas_family():
    check_settings(OUTCOME_FAMILIES["binomial"], {"seed": 1})
    check_settings(OUTCOME_FAMILIES["gaussian_se"], {"family": "gaussian_se"})
    with pytest.raises(ValueError, match="the settings fit family 'binomial'; the data are"):
        fit_user_data(None, None, prepared("poisson"), "weak", "partial", {"seed": 1})


def test_sizes_scale_by_family():
    n = np.array([1, 3, 35])
    assert OUTCOME_FAMILIES["binomial"].scaled_sizes(n, 0.5).tolist() == [1, 2, 18]
    assert OUTCOME_FAMILIES["gaussian"].scaled_sizes(n, 2).tolist() == [2, 6, 70]
    assert OUTCOME_FAMILIES["poisson"].scaled_sizes([500.0, 1.5], 0.5).tolist() == [250.0, 0.75]
    se = OUTCOME_FAMILIES["gaussian_se"].scaled_sizes([15.0, 10.0], 4)
    assert se.tolist() == [7.5, 5.0]  # four times the data: half the standard error
    data = prepared("gaussian_se")
    assert design_sizes(data, 1.0).tolist() == data["se"].tolist()


@pytest.mark.parametrize("name", ["poisson", "gaussian", "gaussian_se", "binomial"])
def test_simulated_data_follow_the_likelihood(name):
    family = OUTCOME_FAMILIES[name]
    rng = np.random.default_rng(3)
    theta = np.array([-0.5, 0.2, 1.0])
    sizes = {"n": [4000, 4000, 4000], "exposure": [3e4, 3e4, 3e4], "se": [0.01] * 3}
    data = pd.DataFrame(simulate_data(family, rng, theta, sizes[family.size], sigma=2.0))
    assert list(data.columns) == list(family.columns)
    np.testing.assert_allclose(observed_effect(family, data), theta, atol=0.1)
    if name == "gaussian":
        np.testing.assert_allclose(data["sd"], 2.0, rtol=0.05)


def test_gaussian_groups_are_the_statistics_of_their_outcomes():
    family = OUTCOME_FAMILIES["gaussian"]
    data = simulate_data(family, np.random.default_rng(1), np.array([0.0, 5.0]), [3, 1], 1.5)
    raw = np.random.default_rng(1).normal(np.repeat([0.0, 5.0], [3, 1]), 1.5)
    assert data["mean"][0] == pytest.approx(raw[:3].mean()) and data["mean"][1] == raw[3]
    assert data["sd"][0] == pytest.approx(raw[:3].std(ddof=1)) and np.isnan(data["sd"][1])


@pytest.mark.parametrize("fitted", ["poisson", "gaussian", "gaussian_se"])
def test_design_matched_data_keep_the_users_sizes_and_control(fitted):
    data = prepared(fitted).assign(is_control=lambda d: d.index == 2)  # the third group
    family = OUTCOME_FAMILIES[fitted]
    control = data.iloc[2]
    size, natural, theta = control_group(data)
    assert size == control[family.size]
    assert natural == pytest.approx(pooled_natural(family, data.iloc[[2]]))
    point = {"tau_index": 0, "tau": 0.3, "mu": float(theta) - 0.1, "sigma": 2.0}
    point |= {"control_n": size, "control_theta": theta, "p0": np.nan, "control_p": natural}
    treated = data.loc[~data["is_control"], family.size].to_numpy()
    for scale in (1.0, 4.0):
        sim = simulate_design(7, data, point, scale, [0, 1])
        tables.to_table(sim, tables.DATA)  # a DATA table: the study's fits read it
        for _, one in sim.groupby("replicate"):
            treat, ctl = one[~one["is_control"]], one[one["is_control"]]
            expected = family.scaled_sizes(treated, scale)
            np.testing.assert_array_equal(treat[family.size].to_numpy(), expected)
            assert ctl[family.size].tolist() == [control[family.size]]  # unscaled
            assert ctl["true_logit"].tolist() == [theta] and ctl["group"].tolist() == [0]
            assert treat["group"].tolist() == list(range(1, len(treated) + 1))
            assert one[list(family.columns)].drop(columns="sd", errors="ignore").notna().all().all()
    alone = simulate_design(7, data, point, 1.0, [1])
    both = simulate_design(7, data, point, 1.0, [0, 1])
    pd.testing.assert_frame_equal(both[both["replicate"] == 1].reset_index(drop=True), alone)
    other = simulate_design(7, data, point | {"tau": 0.31}, 1.0, [1])
    assert not other["true_logit"].equals(alone["true_logit"])


def test_design_points_of_gaussian_data_pool_sigma_like_tau():
    rng = np.random.default_rng(2)
    draws = [
        pd.DataFrame({"tau": rng.gamma(4, 0.5, 600), "mu": rng.normal(70, 1, 600),
                      "sigma": rng.normal(10, 0.3, 600)}),
        pd.DataFrame({"tau": rng.gamma(4, 0.8, 900), "mu": rng.normal(71, 1, 900),
                      "sigma": rng.normal(11, 0.3, 900)}),
    ]  # fmt: skip
    points = design_points(draws, [0.25, 0.75], prepared("gaussian"))
    pooled = {k: np.concatenate([draws[0][k], draws[1][k][:600]]) for k in ("mu", "sigma")}
    assert points["mu"].iloc[0] == pytest.approx(np.median(pooled["mu"]))
    assert points["p0"].iloc[0] == points["mu"].iloc[0]  # identity link: mu itself
    assert points["sigma"].iloc[0] == pytest.approx(np.median(pooled["sigma"]))
    assert (points["control_n"] == 0).all() and points["control_theta"].isna().all()
    poisson = design_points(
        [d.assign(mu=d["mu"] - 75).drop(columns="sigma") for d in draws], [0.5], prepared("poisson")
    )
    assert poisson["p0"].iloc[0] == pytest.approx(np.exp(poisson["mu"].iloc[0]))
    assert np.isnan(poisson["sigma"].iloc[0])


@pytest.mark.parametrize("name", ["binomial", "poisson", "gaussian", "gaussian_se"])
def test_theory_size_inverts_the_theory_curve(name):
    family = OUTCOME_FAMILIES[name]
    outcome = population(family, mu=-1.2 if name != "gaussian_se" else 4.0, sigma=3.0)
    for target, tau in [(0.5, 0.4), (0.2, 1.5)]:
        size = size_for_shrinkage(outcome, target, tau)
        assert outcome.theory(size, tau) == pytest.approx(target)
    if name == "binomial":  # the binomial population is scipy's expit of mu, as it was
        assert outcome.p0 == pytest.approx(1 / (1 + np.exp(1.2)))


def test_what_if_for_standard_errors_runs_the_other_way():
    family = OUTCOME_FAMILIES["gaussian_se"]
    se, shrinkage = np.array([20.0, 10.0, 5.0]), np.array([0.9, 0.6, 0.3])
    value, how = size_for_shrinkage_simulated(family, se, shrinkage, 0.5)
    assert how == "interpolated" and 5 < value < 10
    assert np.log(value) == pytest.approx(np.log(10) - (0.1 / 0.3) * np.log(2))
    assert size_for_shrinkage_simulated(family, se, shrinkage, 0.95) == (20.0, "at least")
    value, how = size_for_shrinkage_simulated(family, se, shrinkage, 0.1)
    assert np.isnan(value) and how == "not reached"
    n = size_for_shrinkage_simulated(OUTCOME_FAMILIES["gaussian"], se[::-1], shrinkage[::-1], 0.95)
    assert n == (5.0, "at most")


def _design_job(family, sizes: list[float], point: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Groups and fits of two design-matched fits (replicates 0, 1) with a known slope."""
    cell = {"n_per_group": int(round(np.mean(sizes))), "groups": len(sizes),
            "spread_axis": "tau", "spread": point["tau"], "prior": "weak", "model": "partial"}  # fmt: skip
    observed = np.linspace(-2, 2, len(sizes))
    groups = pd.concat(
        [
            pd.DataFrame(
                {
                    "replicate": r,
                    "group": range(1, len(sizes) + 1),
                    "is_control": False,
                    family.size: sizes,
                    "obs_logit": observed,
                    "true_logit": observed,
                    "theta_mean": 0.25 * observed,
                    "theta_q025": observed - 1,
                    "theta_q975": observed + 1,
                }  # fmt: skip
            )
            for r in (0, 1)
        ],
        ignore_index=True,
    ).assign(**cell)
    fits = pd.DataFrame({"replicate": [0, 1], "status": "ok", "mu_mean": 0.0, "tau_mean": 0.5})
    return groups, fits.assign(**cell)


def test_design_summary_of_known_standard_errors():
    family = OUTCOME_FAMILIES["gaussian_se"]
    point = {"tau_index": 0, "quantile": 0.5, "tau": 2.0, "mu": 1.0, "sigma": np.nan, "p0": 1.0}
    sizes = [0.2, 0.3, 0.4]  # rounding their mean would give se = 0
    groups, fits = _design_job(family, sizes, point)
    rows = design_fit_rows(groups, fits, point, 1.0, family)
    assert rows["shrinkage"].tolist() == pytest.approx([0.75, 0.75])
    assert rows["n_mean"].tolist() == pytest.approx([0.3, 0.3])
    assert rows["shrinkage_theory"].tolist() == pytest.approx([0.09 / (0.09 + 4)] * 2)
    assert rows["coverage95"].tolist() == [1.0, 1.0]
    bigger = design_fit_rows(*_design_job(family, [0.1, 0.15, 0.2], point), point, 4.0, family)
    cells = pd.concat([rows, bigger.assign(shrinkage=0.25)], ignore_index=True)
    answer = whatif(design_cells(cells), pd.DataFrame([point]), 0.5, family)
    row = answer.iloc[0]
    assert row["n_simulated_how"] == "interpolated" and 0.15 < row["n_simulated"] < 0.3
    assert row["n_theory"] == pytest.approx(2.0)  # se = tau sqrt(X / (1 - X))
    assert row["n_now"] == pytest.approx(0.3)
    text = whatif_text(row, family)
    assert text.startswith("se ~0.") and "exact for known standard errors" in text


def test_design_summary_of_binomial_data_is_the_normal_approximation_at_rounded_n():
    family = OUTCOME_FAMILIES["binomial"]
    point = {"tau_index": 0, "quantile": 0.5, "tau": 0.5, "p0": 0.4}
    groups, fits = _design_job(family, [10, 20, 31], point)
    rows = design_fit_rows(groups, fits, point, 1.0)
    expected = StudyOutcome(family, p0=0.4).theory(20, 0.5)
    assert rows["shrinkage_theory"].tolist() == [expected, expected]


class _Draws:
    """The parts of the engines' Draws that inference_groups reads."""

    def __init__(self, params):
        shape = next(iter(params.values())).shape[:2]
        self.params = params
        self.sampler = {
            "divergent__": np.zeros(shape),
            "treedepth__": np.full(shape, 3),
            "energy__": np.ones(shape),
        }


@pytest.mark.parametrize(
    ("fitted", "variables"),
    [("binomial", ["y", "n"]), ("poisson", ["y", "exposure"]),
     ("gaussian", ["mean", "n", "sd"]), ("gaussian_se", ["estimate", "se"])],
)  # fmt: skip
def test_inference_data_of_every_family(fitted, variables):
    data = prepared(fitted)
    observed = observed_group(data)
    assert list(observed.data_vars) == variables
    for name in variables:
        kind = "i" if name in ("n", "y") else "f"
        assert (
            observed[name].dtype.kind == kind
            and observed[name].values.tolist() == data[name].tolist()
        )
    groups = len(data)
    rng = np.random.default_rng(0)
    params = {"mu": rng.normal(size=(2, 5)), "tau": rng.gamma(2, size=(2, 5))}
    if fitted == "gaussian":
        params["sigma"] = rng.gamma(9, size=(2, 5))
    params["log_lik"] = rng.normal(size=(2, 5, groups))
    theta = rng.normal(size=(2, 5, groups))
    made = inference_groups(_Draws(params), theta, data, {"prior": "weak", "model": "partial"})
    assert ("sigma" in made["posterior"]) == (fitted == "gaussian")
    assert list(made["log_likelihood"].data_vars) == [variables[0]]  # named as observed
    assert made["posterior"]["group"].values.tolist() == data["group"].tolist()


@pytest.mark.parametrize("preset", ["poisson", "gaussian", "eight_schools"])
def test_presets_pass_every_check(config, schema, preset):
    from shrinksim.userdata.load import check

    with_preset = merged(config, settings.load_yaml(REPO / f"config/userdata_{preset}.yaml"))
    with_preset["data"] = str(REPO / with_preset["data"])
    settings.check(with_preset, schema)
    expected = {"poisson": "poisson", "gaussian": "gaussian", "eight_schools": "gaussian_se"}
    assert check(with_preset).fitted_as == expected[preset]


def test_generator_must_suit_the_family(config, schema):
    bad = merged(config, {"family": "poisson", "simulation": {"generator": "probability_normal"},
                          "grid": {"tau": None, "p_sd": [0.05]}})  # fmt: skip
    with pytest.raises(settings.ConfigError, match="draws probabilities .binomial only."):
        settings.check(bad, schema)
