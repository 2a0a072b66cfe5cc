"""Prior distributions: THE registry of prior families, and priors parsed from the config.

A prior is written like Stan, ``family(arg, ...)``, e.g. ``student_t(3, 0, 2.5)``. Every
place that needs to know a family (Stan data encoding, SBC prior draws, the quadrature
reference's densities, the prior curves of the figures) goes through :data:`FAMILIES`.

The Stan programs read a prior as data: an integer family code and a ``vector[3]`` of
arguments, evaluated by ``prior_lpdf`` in ``stan/prior.stanfunctions``, one line per family:
``if (family == k) return <name>_lpdf(x | args[i], ...);`` (the last family is the final,
unconditional ``return``). Each argument goes to its slot ``args[i]``; unused slots are 0.

How to add a prior family (``tests/test_priors.py`` checks both halves agree):

1. Add one :class:`PriorFamily` to :data:`FAMILIES`: its name, the next unused ``code``,
   argument names in config order, the ``vector[3]`` slot of each argument, which arguments
   must be > 0, a numpy sampler and the scipy frozen distribution (``_stats().<name>(...)``;
   ``support_positive=True`` if it has no mass below 0).
2. Add its line ``if (family == <code>) return <name>_lpdf(x | args[<slot>], ...);`` to
   ``prior_lpdf`` in ``stan/prior.stanfunctions``, above the final ``return``, and its
   ``<code> = <name>(...)`` to the comment there. (This changes the Stan code: every program
   is compiled again.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shrinksim.errors import ConfigError

Args = tuple[float, ...]


def _stats() -> Any:
    """:mod:`scipy.stats`, imported on first use: it takes seconds, and only densities need it."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class PriorFamily:
    """One prior family: how it is written, checked, encoded for Stan, drawn and evaluated."""

    name: str
    code: int
    """Family code of ``prior_lpdf`` in ``stan/prior.stanfunctions``."""
    params: tuple[str, ...]
    """Argument names, in the order they are written in the config."""
    stan_slots: tuple[int, ...]
    """Slot (1-based, as in Stan) of each argument in the ``vector[3]`` of Stan data."""
    positive: tuple[int, ...]
    """Indices of the arguments that must be > 0."""
    positive_what: str
    """What those arguments are called in the error message."""
    draw: Callable[[np.random.Generator, Args], float]
    """One draw from the (untruncated) distribution."""
    dist: Callable[[Args], Any]
    """The scipy frozen distribution."""
    support_positive: bool = False
    """True if the distribution has no mass below 0 (its half-density is its density)."""

    @property
    def arity(self) -> int:
        """Number of arguments."""
        return len(self.params)

    @property
    def label(self) -> str:
        """The family with its argument names, e.g. ``student_t(nu, loc, scale)``."""
        return f"{self.name}({', '.join(self.params)})"


FAMILIES: dict[str, PriorFamily] = {
    family.name: family
    for family in (
        PriorFamily(
            name="student_t",
            code=1,
            params=("nu", "loc", "scale"),
            stan_slots=(1, 2, 3),
            positive=(0, 2),
            positive_what="scale and degrees of freedom",
            draw=lambda rng, a: a[1] + a[2] * rng.standard_t(a[0]),
            dist=lambda a: _stats().t(a[0], loc=a[1], scale=a[2]),
        ),
        PriorFamily(
            name="normal",
            code=2,
            params=("loc", "scale"),
            stan_slots=(2, 3),
            positive=(1,),
            positive_what="scale and degrees of freedom",
            draw=lambda rng, a: rng.normal(a[0], a[1]),
            dist=lambda a: _stats().norm(loc=a[0], scale=a[1]),
        ),
        PriorFamily(
            name="cauchy",
            code=3,
            params=("loc", "scale"),
            stan_slots=(2, 3),
            positive=(1,),
            positive_what="scale and degrees of freedom",
            draw=lambda rng, a: a[0] + a[1] * rng.standard_cauchy(),
            dist=lambda a: _stats().cauchy(loc=a[0], scale=a[1]),
        ),
        PriorFamily(
            name="exponential",
            code=4,
            params=("rate",),
            stan_slots=(3,),
            positive=(0,),
            positive_what="rate",
            draw=lambda rng, a: rng.exponential(1.0 / a[0]),
            dist=lambda a: _stats().expon(scale=1.0 / a[0]),
            support_positive=True,
        ),
    )
}
"""Every prior family by name, in the order the error messages list them."""

STAN_ARGS = 3
"""Length of the ``vector`` of prior arguments in the Stan data."""


@dataclass(frozen=True)
class Prior:
    """A prior distribution: family name and its arguments as written in the config."""

    family: str
    args: Args

    @property
    def kind(self) -> PriorFamily:
        """The registry entry of the family."""
        return FAMILIES[self.family]

    def __str__(self) -> str:
        return f"{self.family}({', '.join(f'{a:g}' for a in self.args)})"

    def stan_data(self, prefix: str) -> dict[str, Any]:
        """Encode as Stan data ``{prefix}_family`` (int) and ``{prefix}_args`` (vector[3])."""
        args = [0.0] * STAN_ARGS
        for slot, value in zip(self.kind.stan_slots, self.args, strict=True):
            args[slot - 1] = float(value)
        return {f"{prefix}_family": self.kind.code, f"{prefix}_args": args}

    def sample(self, rng: np.random.Generator, positive: bool) -> float:
        """One draw; ``positive`` truncates to x >= 0 (Stan's lower=0) by drawing again."""
        while True:
            x = self.kind.draw(rng, self.args)
            if not positive or x >= 0:
                return float(x)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Log density at ``x`` (untruncated: on tau the truncation is a constant)."""
        return self.kind.dist(self.args).logpdf(x)

    def half_density(self, x: np.ndarray) -> np.ndarray:
        """Density of the prior truncated to [0, inf), for x >= 0 (the prior on tau)."""
        dist = self.kind.dist(self.args)
        if self.kind.support_positive:
            return dist.pdf(x)
        return dist.pdf(x) / dist.sf(0.0)


_PRIOR_RE = re.compile(r"^\s*([a-z_]+)\s*\(([^()]*)\)\s*$")


def parse_prior(text: str, where: str) -> Prior:
    """Parse ``family(arg, ...)``; ``where`` names the config key in error messages."""
    match = _PRIOR_RE.match(str(text))
    if not match:
        raise ConfigError(f"{where}: cannot read prior {text!r}; write e.g. student_t(3, 0, 2.5)")
    name = match.group(1)
    if name not in FAMILIES:
        allowed = ", ".join(f"{f.name}({f.arity} args)" for f in FAMILIES.values())
        raise ConfigError(f"{where}: unknown prior family {name!r}; allowed: {allowed}")
    family = FAMILIES[name]
    try:
        args = tuple(float(a) for a in match.group(2).split(","))
    except ValueError:
        raise ConfigError(f"{where}: prior arguments must be numbers, got {text!r}") from None
    if len(args) != family.arity:
        raise ConfigError(f"{where}: {name} takes {family.arity} arguments")
    if not all(math.isfinite(a) for a in args):
        raise ConfigError(f"{where}: prior arguments must be finite, got {text!r}")
    if any(args[i] <= 0 for i in family.positive):
        raise ConfigError(f"{where}: {family.positive_what} must be > 0, got {text!r}")
    return Prior(name, args)
