"""The grid study's outcome family and population: theta's scale, the true tau of a cell and
the theory curve of shrinkage against n (docs/families.md).

``family`` (config, default ``binomial``) picks the family of :mod:`shrinksim.families`; the
population comes from ``simulation``: ``p0`` (binomial, the mean probability), ``rate``
(poisson, the mean rate per unit exposure, mu = log rate) or ``mean`` and ``sigma`` (gaussian:
the mean of the group means and the within-group sd). The grid's ``n`` is outcomes per group,
or for poisson the exposure per group. The analysis of your data (:mod:`shrinksim.userdata`)
builds one at its fitted population, also for ``gaussian_se`` (estimates with known standard
errors), whose n is the standard error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shrinksim.families import OutcomeFamily, study_family
from shrinksim.shrinkage import (
    implied_tau,
    theory_shrinkage,
    theory_shrinkage_gaussian,
    theory_shrinkage_known_se,
    theory_shrinkage_poisson,
)

STUDY_FAMILIES = ("binomial", "poisson", "gaussian")
"""The families the grid study simulates (gaussian_se is a form of your data only)."""

LABELS = {
    "binomial": {
        "observed": "observed proportion y / n",
        "estimate": "posterior median of p",
        "natural": "probability p",
        "observed_line": "observed y / n",
        "true_line": "true p",
        "compared": "proportions",
        "theory": "normal approximation",
        "n_axis": "outcomes per group, n (log scale)",
    },
    "poisson": {
        "observed": "observed rate y / exposure",
        "estimate": "posterior median of the rate exp(theta)",
        "natural": "rate exp(theta)",
        "observed_line": "observed y / exposure",
        "true_line": "true rate",
        "compared": "rates",
        "theory": "normal approximation",
        "n_axis": "exposure per group, n (log scale)",
    },
    "gaussian": {
        "observed": "observed group mean",
        "estimate": "posterior median of theta",
        "natural": "group mean theta",
        "observed_line": "observed mean",
        "true_line": "true theta",
        "compared": "group means",
        "theory": "exact for known sigma",
        "n_axis": "outcomes per group, n (log scale)",
    },
    "gaussian_se": {  # a form of your data only (shrinksim.userdata)
        "observed": "observed estimate",
        "estimate": "posterior median of theta",
        "natural": "effect theta",
        "observed_line": "observed estimate",
        "true_line": "true theta",
        "compared": "estimates",
        "theory": "exact for known standard errors",
        "n_axis": "standard error per group, se (log scale)",
    },
}
"""The figures' words for each family (the study's, and gaussian_se of your data)."""

THEORY = {
    "binomial": "normal approximation, sigma^2 = 1 / (n p0 (1 - p0))",
    "poisson": "normal approximation, sigma^2 = 1 / (E rate)",
    "gaussian": "exact for known sigma: (sigma^2 / n) / (sigma^2 / n + tau^2)",
    "gaussian_se": "exact for known standard errors: se^2 / (se^2 + tau^2)",
}
"""The theory curve of each family, as the figures and report name it."""


@dataclass(frozen=True)
class StudyOutcome:
    """The study's family and the population settings its theory curve needs."""

    family: OutcomeFamily
    p0: float = 0.5
    rate: float = 1.0
    mean: float = 0.0
    sigma: float = 1.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StudyOutcome:
        """From a config's ``family`` and ``simulation`` (unset keys take their defaults)."""
        family = study_family(config)
        if family.name not in STUDY_FAMILIES:
            raise ValueError(f"family: {family.name!r} is not one of {STUDY_FAMILIES}")
        sim = config["simulation"]
        keys = ("p0", "rate", "mean", "sigma")
        return cls(family, **{k: float(sim[k]) for k in keys if k in sim})

    def settings(self) -> dict[str, Any]:
        """The config keys :meth:`from_config` reads (for a command line)."""
        return {
            "family": self.family.name,
            "simulation": {
                "p0": self.p0,
                "rate": self.rate,
                "mean": self.mean,
                "sigma": self.sigma,
            },
        }

    @property
    def mu(self) -> float:
        """The population mean of theta."""
        if self.family.name == "binomial":
            return float(np.log(self.p0 / (1 - self.p0)))
        return float(np.log(self.rate)) if self.family.name == "poisson" else self.mean

    def implied_tau(self, spread_axis: str, spread: float | np.ndarray) -> float | np.ndarray:
        """True sd of theta of a cell: tau, or for binomial p_sd its delta-method log-odds sd."""
        return implied_tau(spread_axis, spread, self.p0)

    def theory(self, n: float | np.ndarray, tau: float | np.ndarray) -> np.ndarray:
        """Shrinkage B(n) of the family's theory curve (:data:`THEORY`) at n outcomes (or
        exposure, or for gaussian_se the standard error) per group."""
        if self.family.name == "gaussian_se":
            return theory_shrinkage_known_se(n, tau)
        if self.family.name == "poisson":
            return theory_shrinkage_poisson(n, tau, self.mu)
        if self.family.name == "gaussian":
            return theory_shrinkage_gaussian(n, tau, self.sigma)
        return theory_shrinkage(n, tau, self.p0)

    @property
    def theory_name(self) -> str:
        """How the theory curve is computed."""
        return THEORY[self.family.name]

    @property
    def labels(self) -> dict[str, str]:
        """The figures' words for the family (:data:`LABELS`)."""
        return LABELS[self.family.name]

    def group_title(self, group: Mapping[str, Any]) -> str:
        """A group's data in a panel title: y / n = 3 / 35, y / E = 3 / 35, mean = 0.12 (n = 35)."""
        if self.family.name == "binomial":
            return f"y / n = {group['y']} / {group['n']}"
        if self.family.name == "poisson":
            return f"y / E = {group['y']} / {group['exposure']:g}"
        if self.family.name == "gaussian_se":
            return f"estimate = {group['estimate']:.3g} (se = {group['se']:.3g})"
        return f"mean = {group['mean']:.3g} (n = {group['n']})"
