"""What every column and every table the workflow writes means, in one place.

:data:`COLUMNS` maps a column name to one sentence saying what it holds, its unit or scale
and when it is empty; a name is described once, whichever tables hold it. A key
``TABLE.name`` describes ``name`` in table ``TABLE`` only, where it means something else
(``shrinksim.tables.field(name, type, TABLE)`` picks it). Families of columns (``theta_mean``
... ``p_q975``, the diagnostics ``rhat_hyper_max`` ..., ``coverage_0.5`` ...) are composed
from the descriptions of their parts. :data:`TABLES` describes each table.

:mod:`shrinksim.tables` puts these texts into the schemas' metadata (``description``), so
they travel inside every Parquet file (``pyarrow.parquet.read_schema(path).field(name)``);
docs/results.md is generated from the schemas: ``python -m shrinksim.columns``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shrinksim.columns.userdata import USERDATA

_NAMED: dict[str, str] = {
    # the fit cell (every fit and summary table) and the simulated data
    "family": "Outcome family of the data: `binomial`, `poisson`, `gaussian` or `gaussian_se` "
    "(estimates with known standard errors).",
    "n_per_group": "Mean outcomes per treatment group: the grid's `n` (SBC: `sbc.n`), around which "
    "the group sizes are drawn as max(1, floor(Normal(n, n_sd))); in the design-matched fits of "
    "your data, the rounded mean of the treatment-group sizes.",
    "groups": "Treatment groups per data set, a control group not counted: the grid's `groups`, "
    "SBC's `sbc.groups` (no control group), or in the design-matched fits of your data your "
    "treatment groups.",
    "spread_axis": "Which true between-group spread the data were simulated with: `tau` (sd "
    "of the group log-odds, generator `logit_normal`) or `p_sd` (sd of the group "
    "probabilities, generator `probability_normal`).",
    "spread": "The true between-group spread on the `spread_axis` scale: tau as a log-odds "
    "sd, or p_sd as a probability sd; in the design-matched fits of your data the true tau.",
    "prior": "Name of the prior on tau (a key of the configuration's `priors:`) that tau was "
    "fitted with (SBC: also drawn from); `none` for the baselines, which have no tau.",
    "model": "`partial` (partial pooling: group log-odds theta = mu + tau z), `none` (no "
    "pooling: independent group log-odds) or `complete` (complete pooling: one log-odds mu).",
    "replicate": "Index (from 0) of the simulated data set within its cell; its data and "
    "Stan seeds derive from the configuration's `seed`, the cell and this index.",
    "group": "Group within the data set: 0 is the control group (if there is one), 1..G "
    "the treatment groups, in the order simulated.",
    "is_control": "True for the control group (simulated: group 0; your data: the group "
    "marked `is_control` or named by `userdata.control`); fitted like every group but left "
    "out of each fit's shrinkage and error measures.",
    "n": "Outcomes in the group (binomial: trials; gaussian: observations); empty for poisson "
    "and gaussian_se.",
    "y": "Successes among the group's `n` outcomes (binomial) or events (poisson); empty for "
    "the gaussian families.",
    "exposure": "Exposure of the group (poisson: units of time, size, ... in which its `y` "
    "events occurred); empty for the other families.",
    "DATA.mean": "Mean of the group's outcomes (gaussian); empty for the other families.",
    "DATA.sd": "Standard deviation of the group's outcomes, divisor n - 1 (gaussian; empty "
    "where n = 1 and for the other families).",
    "DATA.estimate": "The group's estimate of its effect (gaussian_se: estimates with known "
    "standard errors); empty for the other families.",
    "DATA.se": "Known standard error of the group's `estimate`, > 0 (gaussian_se); empty for "
    "the other families.",
    "true_p": "True value of the group on the natural scale that its data were drawn with: "
    "success probability (binomial), rate per unit exposure (poisson), mean (gaussian) or "
    "effect (gaussian_se).",
    "true_logit": "True group effect theta on the family's scale: log-odds logit(`true_p`) "
    "(binomial), log-rate (poisson), mean (gaussian) or effect (gaussian_se).",
    "obs_p": "Observed value on the natural scale: y / n (binomial), y / exposure (poisson), "
    "the mean (gaussian) or the estimate (gaussian_se).",
    "obs_logit": "Observed group effect on theta's scale, what shrinkage is measured against: "
    "empirical log-odds log((y + 1/2) / (n - y + 1/2)) (binomial), log((y + 1/2) / exposure) "
    "(poisson), the mean (gaussian) or the estimate (gaussian_se).",
    # one fit: outcome, attempts, sampler
    "status": "`ok`, `divergent` (divergent transitions remain in the kept draws after any "
    "retries) or `error` (the sampler raised on every attempt: no estimates, no ranks).",
    "message": "Why the status is not `ok`: the sampler's error (its first 2,000 characters) "
    "or the number of divergent transitions; empty for `ok`.",
    "attempts": "Sampling attempts made, 1 to `retry.max_attempts`: a fit with divergent "
    "transitions is refitted at `retry.adapt_delta`, one whose sampler raised with a new seed.",
    "adapt_delta": "Stan's adapt_delta (target acceptance probability) of the last attempt.",
    "seed": "Stan seed of the last attempt, the one whose draws are kept (every attempt's: "
    "`attempts_log`).",
    "attempts_log": "Every attempt as `attempt:seed:adapt_delta:outcome` (outcome ok, "
    "divergent or error), joined by `;`, e.g. `1:17:0.9:error;2:83:0.9:ok`.",
    "engine": "The Stan interface that sampled: `cmdstanpy` or `pystan`.",
    "divergences": "Divergent transitions after warmup, summed over the chains of the last "
    "attempt (empty when the sampler raised).",
    "treedepth_hits": "Transitions after warmup, over all chains, whose tree depth reached "
    "`sampler.max_treedepth`.",
    "ebfmi_min": "Smallest E-BFMI (energy Bayesian fraction of missing information) of a "
    "chain; below 0.3 flags poor exploration.",
    "sampling_seconds": "Wall time of the engine's sampling call of the last attempt, in "
    "seconds (every chain's warmup and draws; no compilation, no summaries).",
    "draw": "Index (from 0) of the kept draw: up to 200 draws evenly spaced over the pooled "
    "chains.",
    "p": "One posterior draw of the group's effect on the natural scale (float32): success "
    "probability expit(theta) (binomial), rate exp(theta) (poisson), mean (gaussian), "
    "effect (gaussian_se).",
    # shrinkage and the errors of the group estimates (one fit)
    "shrinkage": "Shrinkage factor of the fit: 1 - slope of the least-squares line of the "
    "posterior mean log-odds on `obs_logit` over the treatment groups; 0 = estimates follow the "
    "data, 1 = every group gets the pooled estimate (unitless; empty without estimates or when the "
    "observed log-odds do not vary).",
    "shrinkage_ratio": "Median over the treatment groups of (observed - posterior mean) / "
    "(observed - pooled) log-odds, pooled = the posterior mean of mu (no pooling: the pooled "
    "empirical log-odds of all groups); groups with |observed - pooled| <= 1e-6 skipped.",
    "shrinkage_theory": "Normal-approximation shrinkage factor s2 / (s2 + tau^2), "
    "s2 = 1 / (n p0 (1 - p0)): grid study at n = `n_per_group`, p0 = `simulation.p0` and the "
    "true tau (p_sd cells: p_sd / (p0 (1 - p0))); design-matched study of your data: the "
    "family's theory curve (as `shrinkage_normal`) at the rounded mean treatment-group n "
    "(poisson, gaussian_se: the mean exposure or se), the true `tau` and the design's mu "
    "and sigma.",
    "squared_error": "Mean over the fit's treatment groups of (posterior mean - true log-odds)^2 "
    "(log-odds squared; the groups' RMSE is the root of its mean over fits).",
    "absolute_error": "Mean over the fit's treatment groups of |posterior mean - true "
    "log-odds| (log-odds).",
    "rank_correlation": "Spearman correlation of the posterior mean and the true log-odds "
    "over the fit's treatment groups; empty where either is constant (complete pooling).",
    # cells
    "fits": "Fits in the cell, one per replicate, whatever their status.",
    "fits_ok": "Fits of the cell with status `ok`.",
    "shrinkage_mean": "Mean `shrinkage` over the cell's fits with estimates (status `ok` or "
    "`divergent`).",
    "shrinkage_mcse": "Monte Carlo standard error of `shrinkage_mean`: sd of those fits' "
    "shrinkage / sqrt(their number); empty with fewer than two.",
    # the measures table (docs/measures.md)
    "true_tau": "The true between-group sd of the log-odds the cell's measures compare with: "
    "`spread` (tau cells) or p_sd / (p0 (1 - p0)) (p_sd cells).",
    "target": "What the row measures: `tau` (the posterior of tau against the truth, partial "
    "pooling only), `groups` (the group log-odds estimates), `shrinkage` or `diagnostics` (shares "
    "of flagged fits).",
    "measure": "The measure (docs/measures.md): mean, bias, relative_bias, empse, rmse, mae, "
    "rank_correlation, coverage, width; shrinkage factor, median_ratio; or a diagnostic flag "
    "(divergent, ebfmi, rhat_hyper, rhat_groups, low_ess, error, any).",
    "level": "Central interval level (0.5, 0.9, 0.95) of coverage and width rows; for diagnostics "
    "rows the flag's threshold (low_ess: ESS per chain; empty for divergent, error, any, and "
    "rhat_hyper of no pooling); else empty.",
    "value": "The measure over the cell's replicates: log-odds for mean, bias, empse, rmse, "
    "mae and width; a proportion (0-1) for coverage and the diagnostics shares; unitless for "
    "relative_bias, rank_correlation and shrinkage.",
    "mcse": "Monte Carlo standard error of `value`, in its units (Morris, White & Crowther "
    "2019); empty when too few replicates.",
    "reference": "The value to compare `value` with: the true tau (tau mean), 0 (bias, "
    "relative bias, RMSE, MAE, diagnostics), 1 (rank correlation), the nominal level "
    "(coverage), `shrinkage_theory` (partial pooling's shrinkage); empty otherwise.",
    "replicates": "R, the fits `value` is computed from: those with estimates (status not "
    "`error`) for tau and groups, those with a value for rank_correlation and shrinkage, "
    "every fit for diagnostics.",
    # simulation-based calibration
    "simulation": "Index (from 0) of the simulation within its SBC design; its seeds "
    "derive from the configuration's `seed`, the design and this index.",
    "parameter": "The ranked quantity: `mu`, `tau` or `theta[g]`, the log-odds of group g "
    "(g = 1..`sbc.group_effects`).",
    "true_value": "The quantity's true value, drawn from the priors (mu from `intercept_prior`, "
    "tau from the design's prior, theta = mu + tau z); log-odds scale.",
    "rank": "Number of the thinned posterior draws below the true value, 0..`thinned_draws`: "
    "uniform if the fit is calibrated (empty when the sampler raised).",
    "thinned_draws": "L, the posterior draws (evenly spaced over the pooled chains, "
    "`sbc.thin_to`) a rank is taken among.",
    "posterior_mean": "Posterior mean of the quantity over every draw, not only the thinned ones "
    "(log-odds scale).",
    "posterior_sd": "Posterior standard deviation of the quantity over every draw (log-odds "
    "scale).",
    "simulations": "Simulations of the design (rows of the ranks table for this parameter).",
    "ranked": "Simulations with a rank (the sampler ran): those the test uses.",
    "errors": "Simulations whose sampler raised (no rank).",
    "divergent": "Simulations whose fit had divergent transitions (ranked, and kept in the test).",
    "ess_below_thinned": "Ranked simulations whose smallest bulk or tail ESS (over mu, tau and "
    "the ranked theta) is below `thinned_draws`.",
    "statistic": "ECDF test statistic: the smallest two-sided binomial tail probability of "
    "the ranks' ECDF at z_i = i / (L + 1), i = 1..L (small = not uniform).",
    "p_value": "Uniformity p-value: (1 + simulated uniform samples, of 20,000, with a "
    "statistic as small or smaller) / 20,001 (Säilynoja, Bürkner & Vehtari 2022).",
    "p_adjusted": "`p_value` Holm-adjusted over every row of the table (each n, groups, "
    "prior and parameter).",
    "rejected": "True when `p_adjusted` is below `sbc.alpha`: uniformity rejected.",
}
"""The columns described one by one (the families are composed below)."""

_PERCENT = {"q025": "2.5", "q05": "5", "q25": "25", "q75": "75", "q95": "95", "q975": "97.5"}
_SUMMARIES = {
    "mean": "Posterior mean",
    "sd": "Posterior standard deviation",
    "median": "Posterior median",
    **{name: f"Posterior {percent} % quantile" for name, percent in _PERCENT.items()},
}
"""Suffixes of the posterior summaries (over every chain and draw kept)."""

_QUANTITIES = {
    "mu": "of mu, the population mean of the group effects theta (complete pooling: every "
    "group's theta); theta's scale (log-odds, log-rate or outcome units), empty for no pooling",
    "tau": "of tau, the sd of the group effects theta around mu; theta's scale, partial "
    "pooling only",
    "sigma": "of sigma, the within-group sd of the outcomes (gaussian family only); outcome units",
    "theta": "of the group's effect theta (mu + tau z under partial pooling, the group's own "
    "under no pooling, mu under complete pooling); theta's scale: log-odds (binomial), "
    "log-rate (poisson), outcome units (gaussian)",
    "p": "of the group's effect on the natural scale: success probability expit(theta) "
    "(binomial), rate exp(theta) (poisson), theta itself (gaussian)",
}
"""Prefixes of the posterior summaries: the quantity."""

_EXTREMES = {
    ("rhat", "max"): "Largest rank-normalised split R-hat (the larger of bulk and folded)",
    ("ess_bulk", "min"): "Smallest bulk effective sample size (draws)",
    ("ess_tail", "min"): "Smallest tail effective sample size (draws; the smaller of the "
    "5 % and the 95 % quantile's)",
}
"""The diagnostics that are extremes over several quantities."""

_OVER = {
    "": "over mu, tau and sigma (those the model has) and every group's effect theta",
    "hyper": "over the hyperparameters mu, tau and sigma, those the model has (empty for no "
    "pooling of binomial and poisson data)",
    "groups": "over the group effects theta, the control group's included",
}
"""What the extremes are taken over: the part of a name between quantity and extreme."""

_SBC_OVER = "over the quantities the simulation ranks (mu, tau, theta[1..k])"
"""What the extremes of the SBC ranks table (no part in their names) are taken over."""

_INTERVALS = {
    "coverage": "Share of the fit's treatment groups whose central {} posterior interval of "
    "theta contains the true log-odds (0 to 1)",
    "width": "Mean width over the fit's treatment groups of the central {} posterior interval "
    "of theta (log-odds)",
}
_LEVELS = {"0.5": "50 % ([q25, q75])", "0.9": "90 % ([q05, q95])", "0.95": "95 % ([q025, q975])"}
"""Per-fit interval measures ``{what}_{level}``."""

_CELL_MEANS = {
    "CELLS": ("tau_mean",),
    "DESIGN_CELLS": ("rmse_posterior", "rmse_observed", "coverage95"),
}
"""Columns of a cells table that are means, over the cell's fits with estimates, of the
per-fit column of that name."""


def _families() -> Iterable[tuple[str, str]]:
    for quantity, of in _QUANTITIES.items():
        for summary, text in _SUMMARIES.items():
            yield f"{quantity}_{summary}", f"{text} {of}."
    for (quantity, end), text in _EXTREMES.items():
        for part, over in _OVER.items():
            yield "_".join(word for word in (quantity, part, end) if word), f"{text} {over}."
        yield f"SBC_RANKS.{quantity}_{end}", f"{text} {_SBC_OVER}."
    for what, text in _INTERVALS.items():
        for level, words in _LEVELS.items():
            yield f"{what}_{level}", text.format(words) + "."


def _merged(*parts: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The descriptions of every part; a name described twice is an error."""
    out: dict[str, str] = {}
    for name, text in (pair for part in parts for pair in part):
        if name in out:
            raise ValueError(f"column {name!r} is described twice")
        out[name] = text
    return out


_MEAN_OF = "Mean over the cell's fits with estimates of `{}`: {}"


def _cell_means(per_fit: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    for table, names in _CELL_MEANS.items():
        for name in names:
            text = per_fit[name][0].lower() + per_fit[name][1:]
            yield f"{table}.{name}", _MEAN_OF.format(name, text)


_PER_FIT = _merged(_NAMED.items(), USERDATA.items(), _families())
COLUMNS: Mapping[str, str] = _merged(_PER_FIT.items(), _cell_means(_PER_FIT))
"""Column name (or ``TABLE.name``) -> its description."""

TABLES: Mapping[str, str] = {
    "DATA": "Simulated data sets: one row per (replicate, group); group 0 is the control "
    "group (when `simulation.control.n` > 0), groups 1..G the treatment groups.",
    "GROUPS": "Every group of every fit: the data, the truth, the observed proportion and "
    "log-odds, and posterior summaries of the group's log-odds theta (`theta_*`) and "
    "probability p (`p_*`); no rows for a fit whose sampler raised.",
    "FITS": "One row per fit (a fit cell's replicate): status and attempts, posterior "
    "summaries of mu and tau, sampler diagnostics of the kept draws, sampling time; "
    "estimates and diagnostics are empty when the sampler raised.",
    "DRAWS": "Thinned posterior draws of p, long format: up to 200 draws for 12 random "
    "treatment groups (the same under every prior) of the first replicate of each fit job, "
    "for each partial-pooling fit (none for the baselines).",
    "SHRINKAGE": "Shrinkage of every fit: the shrinkage factor, the median ratio and the "
    "normal approximation (docs/measures.md, target shrinkage).",
    "PER_FIT": "One row per fit, everything the measures and the tau figure need: status, "
    "engine, tau summaries and diagnostics (from the fits table), shrinkage, and the errors "
    "of the group estimates (treatment groups, log-odds).",
    "CELLS": "Shrinkage per fit cell: the mean over its replicates with the Monte Carlo "
    "standard error, and the normal approximation.",
    "MEASURES": "Performance measures per fit cell, one row per (cell, target, measure, "
    "level), with Monte Carlo standard error, the value to compare with and the replicates "
    "used (docs/measures.md).",
    "SBC_RANKS": "Simulation-based calibration: one row per (simulation, parameter): the true "
    "value, its rank among the thinned posterior draws and the fit's diagnostics.",
    "SBC_TESTS": "Simulation-based calibration: the ECDF uniformity test of the ranks per "
    "(n, groups, prior, parameter); p-values Holm-adjusted over every row.",
    "USER_DATA": "Your data, checked and normalised: one row per group, in the order the "
    "groups first appear in your file.",
    "USER_GROUPS": "Every group of every fit of your data: data, posterior summaries, and how "
    "far the group moved (`shrink_ratio`, `shrinkage_normal`); no rows for a failed fit.",
    "USER_FITS": "One row per fit of your data (partial pooling under each prior, and the "
    "baselines): status, mu and tau summaries, diagnostics, shrinkage factor and ratio.",
    "DESIGN_FITS": "One row per fit of the design-matched study (your group sizes times "
    "`scale`, true tau from your tau posterior): shrinkage, recovery of the true group "
    "effects theta.",
    "DESIGN_CELLS": "The design-matched study per (scale, tau, prior): means over its "
    "replicates, with the Monte Carlo standard error of the shrinkage.",
    "WHATIF": "The what-if answer per prior and true tau: the mean treatment-group size "
    "(outcomes, exposure or standard error) at which shrinkage falls to `target`, from the "
    "simulated designs and from the family's theory curve.",
    "USER_LOO": "PSIS-LOO comparison of the fits of your data (arviz.compare), leaving out "
    "one group at a time: how well each fit predicts a new group's outcomes.",
    "USERDATA_POINTS": "The design-matched study's true values: one row per quantile of "
    "`userdata.tau_quantiles`.",
    "USERDATA_DRAWS": "Every posterior draw of one fit of your data, one column per parameter.",
}
"""Table name (the schema's name in :mod:`shrinksim.tables`) -> its description."""


class MissingDescription(KeyError):
    """A column or table without a description in :data:`COLUMNS` or :data:`TABLES`."""

    def __str__(self) -> str:
        return str(self.args[0])


def describe(name: str, table: str | None = None) -> str:
    """The description of column ``name`` (in ``table``: ``TABLE.name`` first)."""
    for key in ([f"{table}.{name}"] if table else []) + [name]:
        if key in COLUMNS:
            return COLUMNS[key]
    where = f" ({table}.{name})" if table else ""
    raise MissingDescription(
        f"column {name!r}{where} has no description: add it to shrinksim.columns.COLUMNS"
    )


def describe_table(name: str) -> str:
    """The description of table ``name``."""
    if name not in TABLES:
        raise MissingDescription(
            f"table {name!r} has no description: add it to shrinksim.columns.TABLES"
        )
    return TABLES[name]
