"""What the columns of the your-data tables mean (:mod:`shrinksim.userdata`), merged into
:data:`shrinksim.columns.COLUMNS`; the rules are those of :mod:`shrinksim.columns`.

theta's scale is the family's: log-odds (binomial), log-rate (poisson) or outcome units
(gaussian, gaussian_se); a group's size is its outcomes n (binomial, gaussian), its exposure
(poisson) or its known standard error se (gaussian_se).
"""

from __future__ import annotations

USERDATA: dict[str, str] = {
    # your data, normalised (USER_DATA)
    "USER_DATA.group": "Your label of the group, as text.",
    "USER_DATA.family": "The outcome family your data are fitted as, the same on every row: "
    "`binomial`, `poisson`, `gaussian` (n, mean, sd per group; the within-group sd sigma "
    "estimated) or `gaussian_se` (gaussian estimates with known standard errors).",
    # the fits of your data and the design-matched study
    "shrink_ratio": "(observed - posterior mean) / (observed - pooled) of this group on "
    "theta's scale, pooled = the posterior mean of mu (no pooling: the pooled estimate of "
    "all groups, shrinksim.families.pooled_effect); empty where |observed - pooled| <= 1e-6.",
    "shrinkage_normal": "Theory shrinkage of this group at its own size, v / (v + tau^2), "
    "tau = posterior median of tau, v = the sampling variance of its own estimate: "
    "1 / (n p (1 - p)), p = expit(mu) (binomial); 1 / (exposure exp(mu)) (poisson); "
    "sigma^2 / n (gaussian); se^2 (gaussian_se); mu and sigma the posterior medians; partial "
    "pooling only, else empty.",
    "USER_FITS.groups": "Groups in your data, the control group included.",
    "outcomes": "Outcomes in your data (binomial trials, gaussian observations), summed over "
    "every group (control group included); empty for poisson and gaussian_se.",
    "scale": "What-if factor of the data of your treatment groups: max(1, round(scale n)) "
    "outcomes, scale x exposure, or se / sqrt(scale); 1 = your own data.",
    "tau_index": "Index (from 0) of `quantile` in `userdata.tau_quantiles` (`tau=` in the paths).",
    "quantile": "Quantile of your tau posterior (pooled over the partial-pooling fits under "
    "every grid prior, equally) that gives the true tau.",
    "tau": "True tau of the design-matched simulation: the `quantile` quantile of your tau "
    "posterior (sd of theta, theta's scale).",
    "n_mean": "Mean size of the simulated design's treatment groups (your sizes times `scale`: "
    "outcomes n, exposure or standard error se; the same in every replicate).",
    "rmse_posterior": "Root mean square error of the posterior mean of theta against the true "
    "theta over the fit's treatment groups (theta's scale).",
    "rmse_observed": "The same for the observed effects `obs_logit`, i.e. without any "
    "shrinkage (theta's scale).",
    "coverage95": "Share of the fit's treatment groups whose central 95 % posterior interval "
    "[q025, q975] of theta contains the true theta.",
    "WHATIF.target": "The shrinkage factor asked for, `userdata.target`.",
    "n_now": "Your mean treatment-group size (the scale-1 design's `n_mean`).",
    "n_simulated": "Mean treatment-group size at which the simulated `shrinkage_mean` falls to "
    "`target`, interpolated linearly in log size between the what-if designs (how: "
    "`n_simulated_how`).",
    "n_simulated_how": "`interpolated`; `at most` (the smallest design is already at or below "
    "`target`: its size, an upper bound; for standard errors `at least`: the largest se "
    "already is); `not reached` (no design reaches it: empty size).",
    "n_theory": "Size at which the family's theory curve equals `target`: "
    "n = (1 - target) / (target tau^2 p0 (1 - p0)) (binomial), exposure = (1 - target) / "
    "(target tau^2 rate) (poisson), n = sigma^2 (1 - target) / (target tau^2) (gaussian), "
    "se = tau sqrt(target / (1 - target)) (gaussian_se); p0, rate and sigma of the design.",
    # the PSIS-LOO comparison of the fits of your data (shrinksim.userdata.inference)
    "USER_LOO.status": "`ok` (compared) or `error` (the fit failed: no draws, not compared).",
    "USER_LOO.rank": "Place of the fit in the comparison (arviz.compare), 0 = the highest "
    "elpd_loo.",
    "elpd_loo": "PSIS-LOO estimate of the expected log predictive density of a left-out "
    "group's outcomes, summed over the groups (log scale; higher is better).",
    "se": "Standard error of `elpd_loo`.",
    "p_loo": "Effective number of parameters: the in-sample log predictive density minus "
    "`elpd_loo`.",
    "elpd_diff": "`elpd_loo` of the best fit minus this fit's (0 for the best; log scale).",
    "dse": "Standard error of `elpd_diff` (0 for the best fit).",
    "weight": "Stacking weight of the fit in the comparison (arviz.compare; the weights sum to 1).",
    "pareto_k_max": "Largest Pareto k of the fit's leave-one-group-out terms.",
    "pareto_k_high": "Groups whose Pareto k exceeds 0.7: their leave-one-group-out terms are "
    "unreliable.",
    "USER_LOO.groups": "Leave-one-group-out terms: every group of your data, the control "
    "group included.",
    "warning": "What the Pareto k values say about the fit's PSIS-LOO in words, or why the "
    "fit was not compared; empty when all is well.",
    # written without a fixed schema (shrinksim.columns.markdown.UNFIXED)
    "p0": "The posterior median of mu (draws pooled like `quantile`'s) on the natural scale: "
    "the probability expit(mu) (binomial), the rate exp(mu) (poisson) or mu (gaussian "
    "families), the population value of the simulated treatment groups.",
    "control_n": "Size of the simulated control group: your control group's n (binomial, "
    "gaussian), exposure (poisson) or se (gaussian_se); 0 without one.",
    "control_p": "Natural-scale value of the simulated control group: your control group's "
    "observed proportion kept within [0.5 / n, 1 - 0.5 / n] (binomial; 0.5 without one), "
    "its rate (y + 1/2) / exposure, its mean or its estimate.",
    "control_theta": "Effect theta of the simulated control group (theta's scale): "
    "logit(`control_p`) (binomial), log((y + 1/2) / exposure), the mean or the estimate of "
    "your control group; empty without one (binomial: 0).",
    "USERDATA_POINTS.mu": "Posterior median of mu (theta's scale; draws pooled like "
    "`quantile`'s): the mean effect of the simulated treatment groups.",
    "USERDATA_POINTS.sigma": "Posterior median of sigma (draws pooled like `quantile`'s): the "
    "within-group sd of the simulated outcomes (gaussian); empty for the other families.",
    "chain": "Chain (from 0) of the draw.",
    "USERDATA_DRAWS.draw": "Index (from 0) of the draw within its chain, after warmup.",
    "USERDATA_DRAWS.mu": "Draw of mu (theta's scale; empty for no pooling).",
    "USERDATA_DRAWS.tau": "Draw of tau (sd of theta; empty unless partial pooling).",
    "USERDATA_DRAWS.sigma": "Draw of sigma, the within-group sd of the outcomes (outcome "
    "units; gaussian only: the other families' draws have no such column).",
    "USERDATA_DRAWS.theta[i]": "Draw of theta (theta's scale) of the i-th group (row) of your "
    "data, the control group included (i = 1..groups).",
}
"""The your-data columns described one by one."""
