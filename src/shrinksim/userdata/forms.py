"""The forms of the user's data file, per outcome family: written once, used by the reader
(:mod:`~shrinksim.userdata.rows`), its error messages and the docs (:func:`forms_markdown`).

A family (``userdata.family``, else the top-level ``family``, else ``binomial``: see
:func:`family_of`) allows some forms; a form is a set of columns besides ``group``, each with
its checks, and says whether the file has one row per group or one row per observation (the
observations of a group are then reduced to one row). Every form gives one row per group
with ``group``, ``is_control`` and its :attr:`Form.outputs`:

* binomial: ``n`` (outcomes), ``y`` (successes);
* poisson: ``y`` (count), ``exposure``;
* gaussian: ``n``, ``mean``, ``sd`` (sample sd, divisor n - 1; 0 when n = 1), or with known
  standard errors ``estimate``, ``se``, fitted as the outcome family ``gaussian_se``
  (:attr:`Form.fitted_as`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from shrinksim.errors import ConfigError, did_you_mean

FAMILIES = ("binomial", "poisson", "gaussian")
"""The outcome families, in the order the docs list them."""

DEFAULT_FAMILY = "binomial"

OUTPUT_TYPES: dict[str, type] = {
    "n": int,
    "y": int,
    "exposure": float,
    "mean": float,
    "sd": float,
    "estimate": float,
    "se": float,
}
"""Type of every per-group output column (besides ``group`` and ``is_control``)."""

RowCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]
"""A row's valid values -> (column, problem) pairs of checks across its columns."""

Reduce = Callable[[Sequence[Any]], dict[str, Any]]
"""The values of one group's observations -> its per-group outputs."""

GroupsCheck = Callable[[Sequence[Mapping[str, Any]]], list[tuple[str, str]]]
"""Every group's outputs -> (column, problem) pairs of checks across groups."""


@dataclass(frozen=True)
class Column:
    """A column of a form and its checks.

    ``kind``: ``count`` (an integer >= 0), ``number`` (a finite number) or ``binary`` (0 or
    1); ``minimum`` (``exclusive``: the minimum itself is not allowed) with the problem
    ``too_small`` (formatted with ``value``); ``may_be_empty``: an empty cell is None (the
    form's row check decides); ``output``: its column in the per-group frame (default: the
    same name; None for an observation's value).
    """

    name: str
    kind: Literal["count", "number", "binary"]
    meaning: str
    minimum: float | None = None
    exclusive: bool = False
    too_small: str = ""
    may_be_empty: bool = False
    output: str | None = ""

    @property
    def out(self) -> str | None:
        """The per-group column this column fills (None: reduced by the form)."""
        return self.name if self.output == "" else self.output


@dataclass(frozen=True)
class Form:
    """One form of a family's file: its columns besides ``group`` and how rows become
    groups (``reduce`` for one row per observation; None for one row per group)."""

    family: str
    name: str
    per: Literal["group", "observation"]
    columns: tuple[Column, ...]
    outputs: tuple[str, ...]
    example: str
    row_check: RowCheck | None = None
    reduce: Reduce | None = None
    groups_check: GroupsCheck | None = None
    notes: str = ""
    fitted_as: str = ""
    """The outcome family (:data:`shrinksim.families.OUTCOME_FAMILIES`) whose programs fit
    the form's groups; default: the form's own ``family``."""
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", ("group", *(c.name for c in self.columns)))
        object.__setattr__(self, "fitted_as", self.fitted_as or self.family)

    def label(self) -> str:
        """The form's columns as messages write them: ``(group, n, mean, sd)``."""
        return f"({', '.join(self.names)})"


def _successes_within_n(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Binomial: successes <= n."""
    n, successes = row.get("n"), row.get("successes")
    if n is not None and successes is not None and successes > n:
        return [("successes", f"successes = {successes} is more than n = {n}")]
    return []


def _sd_fits_n(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Gaussian summaries: an sd for n >= 2; empty or 0 for n = 1 (a single observation)."""
    n, sd = row.get("n"), row.get("sd")
    if n is None or "sd" not in row:
        return []
    if n == 1 and sd not in (None, 0):
        return [("sd", f"sd = {sd:g} with n = 1: one observation has no sd; leave it empty or 0")]
    if n > 1 and sd is None:
        return [("sd", "missing value; only a group with n = 1 may leave sd empty")]
    return []


def _some_n_above_one(column: str) -> GroupsCheck:
    """Gaussian with unknown sd: some group has two or more observations, or the
    within-group sd cannot be estimated; the problem is reported at ``column``."""
    return partial(_n_above_one, column=column)


def _n_above_one(groups: Sequence[Mapping[str, Any]], column: str) -> list[tuple[str, str]]:
    """See :func:`_some_n_above_one`."""
    if groups and all(g["n"] == 1 for g in groups):
        return [
            (
                column,
                "every group has a single observation (n = 1), so the within-group sd cannot "
                "be estimated; give a group with n >= 2, or use columns (group, estimate, se)",
            )
        ]
    return []


def _binomial_outcomes(values: Sequence[Any]) -> dict[str, Any]:
    """Outcomes and successes of a group's 0/1 outcomes."""
    return {"n": len(values), "y": int(sum(values))}


def _gaussian_observations(values: Sequence[Any]) -> dict[str, Any]:
    """n, mean and sample sd (divisor n - 1; 0 for one observation) of a group's values."""
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "sd": sd}


def _n(what: str) -> Column:
    """The ``n`` column: ``what`` in the group, at least one."""
    too_small = f"{{value}} {what}; every group needs n >= 1"
    return Column("n", "count", f"{what}, >= 1", minimum=1, too_small=too_small)


FORMS: dict[str, tuple[Form, ...]] = {
    "binomial": (
        Form(
            "binomial",
            "outcomes",
            "observation",
            (Column("y", "binary", "0 or 1", output=None),),
            ("n", "y"),
            "A,1",
            reduce=_binomial_outcomes,
        ),
        Form(
            "binomial",
            "groups",
            "group",
            (
                _n("outcomes"),
                Column("successes", "count", "outcomes that are 1, 0..n", output="y"),
            ),
            ("n", "y"),
            "A,35,14",
            row_check=_successes_within_n,
        ),
    ),
    "poisson": (
        Form(
            "poisson",
            "counts",
            "group",
            (
                Column("count", "count", "events, an integer >= 0", output="y"),
                Column(
                    "exposure",
                    "number",
                    "person-time, population, ..., > 0",
                    minimum=0,
                    exclusive=True,
                    too_small="{value:g} is not positive; exposure must be > 0",
                ),
            ),
            ("y", "exposure"),
            "A,12,3400.5",
        ),
    ),
    "gaussian": (
        Form(
            "gaussian",
            "observations",
            "observation",
            (Column("y", "number", "the outcome, a number", output=None),),
            ("n", "mean", "sd"),
            "A,71.5",
            reduce=_gaussian_observations,
            groups_check=_some_n_above_one("y"),
            notes="the sd with divisor n - 1, 0 for a single observation",
        ),
        Form(
            "gaussian",
            "summaries",
            "group",
            (
                _n("observations"),
                Column("mean", "number", "their mean"),
                Column(
                    "sd",
                    "number",
                    "their sd, >= 0; empty or 0 when n = 1",
                    minimum=0,
                    too_small="{value:g} is negative; sd must be >= 0",
                    may_be_empty=True,
                ),
            ),
            ("n", "mean", "sd"),
            "A,25,71.5,9.8",
            row_check=_sd_fits_n,
            groups_check=_some_n_above_one("n"),
        ),
        Form(
            "gaussian",
            "estimates",
            "group",
            (
                Column("estimate", "number", "the group's estimate"),
                Column(
                    "se",
                    "number",
                    "its known standard error, > 0",
                    minimum=0,
                    exclusive=True,
                    too_small="{value:g} is not positive; se must be > 0",
                ),
            ),
            ("estimate", "se"),
            "A,28,15",
            notes="known standard errors (meta-analysis); fitted as family gaussian_se",
            fitted_as="gaussian_se",
        ),
    ),
}
"""Family -> its forms, in the order messages and docs list them."""


def family_forms(family: str, key: str = "userdata.family") -> tuple[Form, ...]:
    """The forms of ``family``; :class:`ConfigError` naming ``key`` if there is no such
    family."""
    if not isinstance(family, str) or family not in FORMS:
        raise ConfigError(
            f"invalid configuration:\n  {key}: {family!r} is not one of {list(FAMILIES)}"
            f"{did_you_mean(str(family), FAMILIES)}"
        )
    return FORMS[family]


def family_of(config: Mapping[str, Any]) -> str:
    """The family of the user's data: ``userdata.family``, else the top-level ``family``,
    else ``binomial`` (an unset or null key counts as absent)."""
    userdata = config.get("userdata") or {}
    for key, value in (
        ("userdata.family", userdata.get("family")),
        ("family", config.get("family")),
    ):
        if value is not None:
            family_forms(value, key)
            return str(value)
    return DEFAULT_FAMILY


def expected(family: str) -> str:
    """The column sets ``family`` accepts: ``(group, y) or (group, n, successes)``."""
    return " or ".join(form.label() for form in family_forms(family))


def forms_markdown() -> str:
    """The docs' table of every family's forms (``docs/your-data.md``)."""
    lines = [
        "| `family` | one row per | columns | example row | gives per group |",
        "| --- | --- | --- | --- | --- |",
    ]
    for family in FAMILIES:
        for form in FORMS[family]:
            columns = ", ".join(f"`{c.name}` ({c.meaning})" for c in form.columns)
            gives = ", ".join(f"`{name}`" for name in form.outputs)
            notes = f"; {form.notes}" if form.notes else ""
            lines.append(
                f"| {family} | {form.per} | `group`, {columns} | `{form.example}` | "
                f"{gives}{notes} |"
            )
    return "\n".join(lines) + "\n"
