"""Simulation-based calibration: designs, prior draws, ranks and the ECDF uniformity test.

Everything here runs without Stan; the Stan runs are in test_sbc_workflow.py (tiny) and the
config/sbc.yaml preset (250 simulations per design).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shrinksim import settings as study
from shrinksim import tables
from shrinksim.priors import parse_prior
from shrinksim.sbc import calibration, design, fit
from shrinksim.settings import merged


def settings(config, prior: str = "brms_default") -> dict:
    """An SBC job's settings, as the rule passes them."""
    return json.loads(design.job_settings(config, f"n_per_group=10/groups=10/prior={prior}"))


def test_designs_batches_and_paths(config):
    cells = design.cells(config)
    assert len(cells) == len(config["sbc"]["n"]) * len(config["sbc"]["prior"])
    assert design.SbcCell.from_path(cells[0].path) == cells[0]
    assert cells[0].path == "n_per_group=10/groups=10/prior=brms_default"
    assert cells[0].key == "sbc/n~10/groups~10/prior~brms_default"  # seeds: never changes
    config["sbc"] |= {"simulations": 7, "batch_size": 3}
    assert design.batches(config) == [[0, 1, 2], [3, 4, 5], [6]]
    assert design.parameters(2) == ["mu", "tau", "theta[1]", "theta[2]"]
    files = design.rank_files(config, "r")
    assert len(files) == len(cells) * 3
    assert files[:2] == [
        f"r/sbc/ranks/{cells[0].path}/batch=0/part-0.parquet",
        f"r/sbc/ranks/{cells[0].path}/batch=1/part-0.parquet",
    ]


def test_bad_sbc_section_is_named(config, schema):
    bad = merged(
        config,
        {"sbc": {"prior": ["half_normall"], "thin_to": 5000, "group_effects": 20}},
    )
    found = study.problems(bad, schema)
    assert "sbc.prior[0]: unknown prior 'half_normall' (did you mean 'half_normal'?)" in found[0]
    assert found[1].startswith("sbc.thin_to: 5000 is more than the 1000 posterior draws")
    assert found[2] == "sbc.group_effects: 20 is more than sbc.groups"
    assert study.problems(config, schema) == []


@pytest.mark.parametrize(
    ("text", "mean"),
    [
        ("normal(0, 1)", np.sqrt(2 / np.pi)),
        ("exponential(2)", 0.5),
        ("student_t(5, 0, 2)", None),
    ],
)
def test_prior_draws_are_the_half_distributions(text, mean):
    """Mean (or median) of 20,000 truncated draws vs the closed form.

    Tolerance 4 SE (sd / sqrt(20,000); for the median sqrt(p(1-p)) / (f(m) sqrt(N))): a
    false alarm has probability ~6e-5 with the fixed seed.
    """
    prior = parse_prior(text, "test")
    rng = np.random.default_rng(1)
    draws = np.array([prior.sample(rng, positive=True) for _ in range(20_000)])
    assert (draws >= 0).all()
    if mean is not None:
        assert draws.mean() == pytest.approx(mean, abs=4 * draws.std() / np.sqrt(draws.size))
    else:  # half-t(5, 0, 2): median = 2 * t5.ppf(0.75), density there 2 * t5.pdf(.) / 2
        median = 2 * stats.t(5).ppf(0.75)
        se = 0.5 / (2 * stats.t(5, scale=2).pdf(median) * np.sqrt(draws.size))
        assert np.median(draws) == pytest.approx(median, abs=4 * se)


def test_simulation_is_deterministic_and_keyed_by_cell_and_index(config):
    cell = design.SbcCell(10, 10, "brms_default")
    truth, groups = fit.simulate(settings(config), cell, 3)
    again, same = fit.simulate(settings(config), cell, 3)
    assert truth == again and groups.equals(same)
    other, _ = fit.simulate(settings(config), cell, 4)
    assert other["mu"] != truth["mu"]
    weak, _ = fit.simulate(settings(config, "weak"), design.SbcCell(10, 10, "weak"), 3)
    assert weak["mu"] != truth["mu"]  # every design has its own simulations
    assert list(truth) == design.parameters(config["sbc"]["group_effects"])
    assert truth["tau"] >= 0 and len(groups) == 10
    assert ((groups["y"] >= 0) & (groups["y"] <= groups["n"]) & (groups["n"] >= 1)).all()


def test_thin_and_rank():
    draws = np.arange(20.0).reshape(2, 10)  # chain 0: 0..9, chain 1: 10..19
    kept = fit.thin(draws, 5)
    assert kept.tolist() == [0.0, 5.0, 10.0, 14.0, 19.0]
    assert fit.rank(kept, -1.0) == 0 and fit.rank(kept, 12.0) == 3 and fit.rank(kept, 99) == 5


def test_holm_matches_hand_computation():
    # sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5)
    adjusted = calibration.holm(np.array([0.03, 0.5, 0.01, 0.02]))
    assert adjusted == pytest.approx([0.06, 0.5, 0.04, 0.06])


def test_uniformity_test_has_its_size_and_power():
    """Size: 400 uniform samples (N = 250, L = 99) reject at 5 % in 5 % of cases; the count
    is Binomial(400, 0.05) (sd 4.4), and 4 sd either side allows 3..38 (the simulated null
    makes the level exact up to 1 / 20,001). Power: ranks of a posterior 30 % too narrow,
    or shifted by 0.4 posterior sd, are rejected with p < 0.001."""
    rng = np.random.default_rng(7)
    p = [calibration.uniformity_test(rng.integers(0, 100, 250), 99)[1] for _ in range(400)]
    assert 3 <= sum(pv < 0.05 for pv in p) <= 38
    truth = rng.standard_normal(250)
    narrow = 0.7 * rng.standard_normal((250, 99))
    shifted = 0.4 + rng.standard_normal((250, 99))
    for posterior in (narrow, shifted):
        ranks = np.sum(posterior < truth[:, None], axis=1)
        assert calibration.uniformity_test(ranks, 99)[1] < 0.001


def test_band_has_simultaneous_coverage():
    """95 % band: share of 2,000 fresh uniform samples whose ECDF stays inside it.

    SE sqrt(0.95 * 0.05 / 2000) = 0.005; 4 SE either side (discreteness can only add
    coverage, as being inside means the statistic is at least the band's level).
    """
    band = calibration.ecdf_band(200, 49)
    ranks = np.random.default_rng(3).integers(0, 50, (2000, 200))
    diff = (ranks[:, :, None] < np.arange(1, 50)).mean(axis=1) - band["z"].to_numpy()
    assert np.allclose(diff[0], calibration.ecdf_difference(ranks[0], 49)["difference"])
    lower, upper = band["lower"].to_numpy() - 1e-12, band["upper"].to_numpy() + 1e-12
    inside = np.all((diff >= lower) & (diff <= upper), axis=1).mean()
    assert 0.95 - 0.02 <= inside <= 0.95 + 0.03


def _conjugate_ranks(prior: str, posterior_scale: float, sims: int, rng) -> pd.DataFrame:
    """SBC of theta ~ N(0, 1), y ~ N(theta, 1) with exact posterior draws N(y/2, 1/2),
    the posterior sd scaled by ``posterior_scale`` (1: exact)."""
    theta = rng.standard_normal(sims)
    y = theta + rng.standard_normal(sims)
    draws = y[:, None] / 2 + posterior_scale * np.sqrt(0.5) * rng.standard_normal((sims, 99))
    rows = [
        {
            "family": "binomial",
            "n_per_group": 1,
            "groups": 1,
            "prior": prior,
            "simulation": s,
            "parameter": "theta",
            "true_value": theta[s],
            "rank": fit.rank(draws[s], theta[s]),
            "thinned_draws": 99,
            "status": "ok",
            "ess_bulk_min": 1000.0,
            "ess_tail_min": 1000.0,
        }
        for s in range(sims)
    ]
    return pd.DataFrame(rows).reindex(columns=tables.SBC_RANKS.names)


def test_calibration_tests_pass_exact_posteriors_and_reject_wrong_ones():
    """Exact conjugate posteriors pass; a posterior 25 % too narrow is rejected after Holm."""
    rng = np.random.default_rng(11)
    ranks = pd.concat(
        [_conjugate_ranks("exact", 1.0, 300, rng), _conjugate_ranks("narrow", 0.75, 300, rng)]
    )
    tests = calibration.calibration_tests(ranks, alpha=0.01).set_index("prior")
    tables.to_table(tests.reset_index(), tables.SBC_TESTS)
    assert not tests.loc["exact", "rejected"] and tests.loc["narrow", "rejected"]
    assert tests.loc["exact", "ranked"] == 300 and tests.loc["exact", "ess_below_thinned"] == 0


@pytest.mark.parametrize("family", ["poisson", "gaussian", "gaussian_se"])
def test_cells_keep_binomial_keys_and_name_the_family(family):
    binomial, other = design.SbcCell(10, 6, "weak"), design.SbcCell(10, 6, "weak", family)
    assert binomial.key == "sbc/n~10/groups~6/prior~weak"  # as before the families
    assert other.key == f"sbc/family~{family}/n~10/groups~6/prior~weak"
    assert design.SbcCell.from_path(other.path) == other
    assert design.SbcCell.from_path(binomial.path) == binomial
