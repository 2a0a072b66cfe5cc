"""Outcome families: each one's per-group data columns, Stan programs and Stan data.

One row per group in every family; the columns of a data frame of groups:

=============  ======================  =====================================  ===============
family         columns                 likelihood of group g                  theta_g is
=============  ======================  =====================================  ===============
binomial       ``n``, ``y``            y ~ Binomial(n, logistic(theta))       log-odds
poisson        ``y``, ``exposure``     y ~ Poisson(exposure exp(theta))       log-rate
gaussian       ``n``, ``mean``, ``sd`` y_i ~ Normal(theta, sigma), i = 1..n   mean
gaussian_se    ``estimate``, ``se``    estimate ~ Normal(theta, se)           effect
=============  ======================  =====================================  ===============

``gaussian`` groups are the sufficient statistics of their raw outcomes (``sd`` with divisor
n - 1; NaN or anything where n = 1, which has none), and the within-group sd sigma is a
parameter with its own prior (default brms' ``student_t(3, 0, 2.5)``, half). Each family has
the three models of the study (``partial``, ``none``, ``complete``, as
:data:`shrinksim.design.STAN_PROGRAMS` for binomial) and the Gaussian ones a ``marginal``
partial-pooling program with the group effects integrated out exactly (theta then comes
from the draws' ``theta``, drawn in generated quantities: :func:`shrinksim.fitting.group_draws`).

:func:`stan_data` builds the Stan data of every non-binomial program
(:func:`shrinksim.fitting.stan_data` calls it, and keeps the binomial path as it was).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shrinksim.design import MODELS, STAN_PROGRAMS
from shrinksim.priors import Prior

STAN_INT_MAX = 2**31 - 1
"""The largest count Stan's ``int`` holds."""

POISSON_MEAN_MAX = 1e15
"""The largest Poisson mean drawn from (numpy's limit is about 9e18; Stan's int 2.1e9)."""

DEFAULT_SIGMA_PRIOR = Prior("student_t", (3.0, 0.0, 2.5))
"""Prior on the within-group sd sigma of the ``gaussian`` family (brms' default, half)."""


@dataclass(frozen=True)
class OutcomeFamily:
    """One outcome family: its group columns, Stan programs and a tiny example data set."""

    name: str
    columns: tuple[str, ...]
    """Per-group columns of a data frame of groups (besides ``group``)."""
    programs: Mapping[str, str]
    """Stan program (file stem in ``stan/``) of each model of :data:`MODELS`."""
    marginal: str | None
    """Partial-pooling program with the group effects integrated out, if there is one."""
    has_sigma: bool
    """Whether the programs estimate a within-group sd ``sigma`` (prior ``sigma_prior``)."""
    link: str
    """How theta maps to the outcome's natural scale: ``logit`` (theta is a log-odds, the
    natural scale a probability), ``log`` (a log-rate; a rate) or ``identity``."""
    example: Mapping[str, list[float]] = field(hash=False)
    """A tiny valid data set (two groups), e.g. for compiling with PyStan."""

    def program(self, model: str, marginal: bool = False) -> str:
        """The program fitting ``model``; ``marginal`` asks for the marginalised variant."""
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; allowed: {MODELS}")
        if not marginal:
            return self.programs[model]
        if model != "partial" or self.marginal is None:
            raise ValueError(f"{self.name}: no marginalised program of model {model!r}")
        return self.marginal

    def study_program(self, model: str) -> str:
        """The program the studies fit ``model`` with: the marginalised partial-pooling program
        where there is one (as accurate and several times faster: docs/families.md), else
        :meth:`program`."""
        return self.program(model, marginal=model == "partial" and self.marginal is not None)

    @property
    def scale(self) -> str:
        """What theta is measured in, for labels: log-odds, log-rate or outcome units."""
        return {"logit": "log-odds", "log": "log-rate", "identity": "outcome units"}[self.link]

    @property
    def natural_scale(self) -> str:
        """What :meth:`natural` gives, for labels."""
        return {"logit": "probability", "log": "rate per unit exposure", "identity": "mean"}[
            self.link
        ]

    def natural_text(self, x: str = "mu") -> str:
        """How :meth:`natural` of ``x`` is written: ``expit(mu)``, ``exp(mu)`` or ``mu``."""
        return {"logit": f"expit({x})", "log": f"exp({x})", "identity": x}[self.link]

    def natural(self, theta: np.ndarray) -> np.ndarray:
        """theta on the natural scale: expit (logit link), exp (log) or itself."""
        if self.link == "logit":
            with np.errstate(over="ignore"):  # exp(-x) = inf for x < -709 gives 0, as it should
                return 1.0 / (1.0 + np.exp(-theta))
        if self.link == "log":
            return np.exp(theta)
        return np.asarray(theta)

    @property
    def size(self) -> str:
        """The column that says how much data a group has, what a design scales: ``n``
        (outcomes), ``exposure`` (poisson) or ``se`` (gaussian_se: the known standard error,
        which shrinks as more data come in)."""
        return {"poisson": "exposure", "gaussian_se": "se"}.get(self.name, "n")

    @property
    def observed(self) -> str:
        """The column of a group's own outcome (the observed variable of its likelihood): ``y``
        (binomial successes, poisson events), ``mean`` (gaussian) or ``estimate``."""
        return {"gaussian": "mean", "gaussian_se": "estimate"}.get(self.name, "y")

    def scaled_sizes(self, sizes: np.ndarray, scale: float) -> np.ndarray:
        """Group sizes with ``scale`` times the data: max(1, round(scale n)) outcomes, scale x
        the exposure, or se / sqrt(scale)."""
        sizes = np.asarray(sizes)
        if self.size == "n":
            return np.maximum(1, np.rint(scale * sizes)).astype(int)
        if self.size == "se":
            return sizes.astype(float) / np.sqrt(scale)
        return scale * sizes.astype(float)

    def all_programs(self) -> tuple[str, ...]:
        """Every program of the family."""
        extra = (self.marginal,) if self.marginal else ()
        return (*self.programs.values(), *extra)


def _programs(prefix: str) -> dict[str, str]:
    """``{prefix}_partial_pooling``, ``{prefix}_no_pooling``, ``{prefix}_complete_pooling``."""
    names = ("partial", "no", "complete")
    return {m: f"{prefix}_{name}_pooling" for m, name in zip(MODELS, names, strict=True)}


OUTCOME_FAMILIES: dict[str, OutcomeFamily] = {
    family.name: family
    for family in (
        OutcomeFamily(
            "binomial",
            ("n", "y"),
            STAN_PROGRAMS,
            None,
            False,
            "logit",
            {"n": [3, 4], "y": [1, 2]},
        ),
        OutcomeFamily(
            "poisson",
            ("y", "exposure"),
            _programs("poisson"),
            None,
            False,
            "log",
            {"y": [1, 4], "exposure": [2.0, 3.5]},
        ),
        OutcomeFamily(
            "gaussian",
            ("n", "mean", "sd"),
            _programs("gaussian"),
            "gaussian_partial_pooling_marginal",
            True,
            "identity",
            {"n": [1, 4], "mean": [0.3, -0.2], "sd": [float("nan"), 1.1]},
        ),
        OutcomeFamily(
            "gaussian_se",
            ("estimate", "se"),
            _programs("gaussian_se"),
            "gaussian_se_partial_pooling_marginal",
            False,
            "identity",
            {"estimate": [28.0, 8.0], "se": [15.0, 10.0]},
        ),
    )
}
"""Every outcome family by name."""

_PROGRAM_FAMILY = {
    program: family for family in OUTCOME_FAMILIES.values() for program in family.all_programs()
} | {"partial_pooling_bernoulli": OUTCOME_FAMILIES["binomial"]}


def study_family(settings: Mapping[str, Any]) -> OutcomeFamily:
    """The outcome family a study's config or job settings name (``family``; unset or null:
    binomial, as before there were families)."""
    return OUTCOME_FAMILIES[settings.get("family") or "binomial"]


def family_of(program: str) -> OutcomeFamily:
    """The family whose likelihood ``program`` (a file stem in ``stan/``) fits."""
    try:
        return _PROGRAM_FAMILY[program]
    except KeyError:
        raise ValueError(f"unknown Stan program {program!r}") from None


def is_binomial(program: str) -> bool:
    """Whether ``program`` takes binomial data (the binomial family's, or an unknown program:
    those had binomial data before there were families, e.g. the tests' own programs)."""
    family = _PROGRAM_FAMILY.get(program)
    return family is None or family.name == "binomial"


def is_partial(program: str) -> bool:
    """Whether ``program`` has a between-group sd tau (and so needs its prior)."""
    family = family_of(program)
    return program in (family.programs["partial"], family.marginal, "partial_pooling_bernoulli")


def check_groups(family: OutcomeFamily, groups: pd.DataFrame) -> None:
    """Raise ValueError naming the column and rows if ``groups`` is not valid data of
    ``family`` (missing column, non-finite value, count not a whole number, out of range)."""
    missing = [c for c in family.columns if c not in groups.columns]
    if missing:
        raise ValueError(f"{family.name} groups need columns {family.columns}; missing {missing}")
    if len(groups) == 0:
        raise ValueError(f"{family.name}: no groups")
    rules = {
        "n": (lambda x: x >= 1, f"a whole number, 1 to {STAN_INT_MAX}", True),
        "y": (lambda x: x >= 0, f"a whole number, 0 to {STAN_INT_MAX}", True),
        "exposure": (lambda x: x > 0, "> 0", False),
        "mean": (lambda x: np.isfinite(x), "finite", False),
        "estimate": (lambda x: np.isfinite(x), "finite", False),
        "se": (lambda x: x > 0, "> 0", False),
        "sd": (lambda x: x >= 0, ">= 0 (or NaN where n = 1)", False),
    }
    for column in family.columns:
        ok_rule, what, whole = rules[column]
        x = groups[column].to_numpy(dtype=float)
        ok = np.isfinite(x) & ok_rule(x)
        if whole:  # and within Stan's int
            ok &= (x == np.round(x)) & (x <= STAN_INT_MAX)
        if column == "sd":  # a single outcome has no sd: anything goes there
            ok |= groups["n"].to_numpy(dtype=float) == 1
        if family.name == "binomial" and column == "y":
            ok &= x <= groups["n"].to_numpy(dtype=float)
            what += " and <= n"
        if not ok.all():
            rows = np.flatnonzero(~ok)[:5].tolist()
            raise ValueError(f"{family.name}: column {column!r} must be {what}; rows {rows}")


def stan_data(
    program: str,
    groups: pd.DataFrame,
    intercept_prior: Prior,
    tau_prior: Prior | None = None,
    *,
    sigma_prior: Prior | None = None,
    log_lik: bool = False,
) -> dict[str, Any]:
    """Stan data of a poisson, gaussian or gaussian_se ``program`` from a frame of groups
    (columns of its family, checked) and the priors, encoded as data.

    Stan names: poisson ``y``, ``exposure``; gaussian ``n``, ``y_mean``, ``y_sd`` (0 where
    n = 1); gaussian_se ``estimate``, ``se``; ``tau_prior_*`` for partial pooling,
    ``sigma_prior_*`` for gaussian (``sigma_prior`` defaults to
    :data:`DEFAULT_SIGMA_PRIOR`; a prior the program does not use is ignored, as
    ``tau_prior`` is for no and complete pooling); ``compute_log_lik`` = ``log_lik``.
    """
    family = family_of(program)
    if family.name == "binomial":
        raise ValueError(f"{program}: binomial data come from shrinksim.fitting.stan_data")
    check_groups(family, groups)
    data: dict[str, Any] = {"G": len(groups)}
    if family.name == "poisson":
        data |= {
            "y": groups["y"].astype(int).tolist(),
            "exposure": groups["exposure"].astype(float).tolist(),
        }
    elif family.name == "gaussian":
        n = groups["n"].astype(int)
        data |= {
            "n": n.tolist(),
            "y_mean": groups["mean"].astype(float).tolist(),
            # n = 1: no sd (NaN in the data); Stan multiplies it by n - 1 = 0, so 0 it is
            "y_sd": groups["sd"].astype(float).where(n > 1, 0.0).tolist(),
        }
    else:
        data |= {
            "estimate": groups["estimate"].astype(float).tolist(),
            "se": groups["se"].astype(float).tolist(),
        }
    data |= intercept_prior.stan_data("mu_prior")
    if is_partial(program):
        if tau_prior is None:
            raise ValueError(f"{program} needs a prior on tau")
        data |= tau_prior.stan_data("tau_prior")
    if family.has_sigma:
        data |= (sigma_prior or DEFAULT_SIGMA_PRIOR).stan_data("sigma_prior")
    data["compute_log_lik"] = int(log_lik)
    return data


def example_groups(program: str) -> pd.DataFrame:
    """The family's tiny example data set, as a frame of groups."""
    family = family_of(program)
    return pd.DataFrame({"group": [1, 2], **family.example})


def observed_natural(family: OutcomeFamily, groups: pd.DataFrame) -> np.ndarray:
    """Each group's own estimate on the natural scale: y / n, y / exposure, the mean or the
    estimate."""
    if family.name == "binomial":
        return groups["y"].to_numpy(float) / groups["n"].to_numpy(float)
    if family.name == "poisson":
        return groups["y"].to_numpy(float) / groups["exposure"].to_numpy(float)
    return observed_effect(family, groups)


def pooled_effect(family: OutcomeFamily, groups: Mapping[str, Any]) -> float:
    """The complete-pooling estimate on theta's scale from the groups' own data (a frame, or
    a mapping of column arrays), what no pooling's shrinkage is measured against: binomial
    log((sum y + 1/2) / (sum n - sum y + 1/2)), poisson log((sum y + 1/2) / sum exposure),
    gaussian the mean of every outcome, gaussian_se the inverse-variance weighted mean."""

    def column(name: str) -> np.ndarray:
        return np.asarray(groups[name])

    if family.name == "binomial":
        ys, ns = column("y").sum(), column("n").sum()
        return float(np.log((ys + 0.5) / (ns - ys + 0.5)))
    if family.name == "poisson":
        ys, es = column("y").astype(float).sum(), column("exposure").astype(float).sum()
        return float(np.log((ys + 0.5) / es))
    if family.name == "gaussian":
        n = column("n").astype(float)
        return float((n * column("mean").astype(float)).sum() / n.sum())
    weight = column("se").astype(float) ** -2.0
    return float((weight * column("estimate").astype(float)).sum() / weight.sum())


def observed_effect(family: OutcomeFamily, groups: pd.DataFrame) -> np.ndarray:
    """Each group's own estimate on theta's scale, what shrinkage is measured against:
    binomial log((y + 1/2) / (n - y + 1/2)), poisson log((y + 1/2) / exposure), gaussian the
    group mean, gaussian_se the estimate."""
    if family.name == "binomial":
        y, n = groups["y"].to_numpy(float), groups["n"].to_numpy(float)
        return np.log((y + 0.5) / (n - y + 0.5))
    if family.name == "poisson":
        return np.log((groups["y"].to_numpy(float) + 0.5) / groups["exposure"].to_numpy(float))
    column = "mean" if family.name == "gaussian" else "estimate"
    return groups[column].to_numpy(float)


def pooled_natural(family: OutcomeFamily, groups: pd.DataFrame) -> float:
    """Every group's data pooled, on the natural scale: sum y / sum n, sum y / sum exposure,
    the mean of every outcome, or the inverse-variance weighted mean of the estimates."""
    if family.name in ("binomial", "poisson"):
        return float(groups["y"].sum() / groups[family.size].astype(float).sum())
    return pooled_effect(family, groups)


def simulate_data(
    family: OutcomeFamily,
    rng: np.random.Generator,
    theta: np.ndarray,
    sizes: np.ndarray,
    sigma: float = 1.0,
) -> dict[str, np.ndarray]:
    """Data of groups with effects ``theta`` and sizes ``sizes`` (the family's
    :attr:`~OutcomeFamily.size` column), drawn from the family's likelihood: the family's
    columns. Gaussian groups are drawn outcome by outcome (sd ``sigma``) and kept as n, mean
    and sd (divisor n - 1, NaN where n = 1)."""
    theta = np.asarray(theta, dtype=float)
    if family.name == "binomial":
        n = np.asarray(sizes, dtype=int)
        return {"n": n, "y": rng.binomial(n, family.natural(theta))}
    if family.name == "poisson":
        exposure = np.asarray(sizes, dtype=float)
        # a mean beyond POISSON_MEAN_MAX (SBC: theta from the far tails of its priors) would
        # make numpy raise; capped, its count is still far beyond Stan's int: the data
        # checks reject it (an error row of SBC)
        mean = np.minimum(exposure * np.exp(theta), POISSON_MEAN_MAX)
        return {"y": rng.poisson(mean), "exposure": exposure}
    if family.name == "gaussian_se":
        se = np.asarray(sizes, dtype=float)
        return {"estimate": rng.normal(theta, se), "se": se}
    n = np.asarray(sizes, dtype=int)
    values = rng.normal(np.repeat(theta, n), sigma)
    which = np.repeat(np.arange(len(n)), n)
    stats = pd.DataFrame({"g": which, "v": values}).groupby("g")["v"].agg(["mean", "std"])
    return {"n": n, "mean": stats["mean"].to_numpy(), "sd": stats["std"].to_numpy()}
