"""Read and check the user's data file: one row per group, or :class:`UserDataError`.

Input: a CSV or Parquet file in one of the forms its family allows
(:data:`shrinksim.userdata.forms.FORMS`; binomial, the default: one row per outcome,
``group`` and ``y`` (0 or 1), or one row per group, ``group``, ``n`` and ``successes``), with
an optional ``is_control`` column (true/false, 1/0, yes/no) marking one control group, which
can also be named by the configuration (``userdata.control``). Other columns are ignored.
:func:`load_data` checks everything before any job runs and raises :class:`UserDataError`
with one line per problem naming the file, row and column; it never writes anything.

The result is one row per group: ``group`` (the label, as text), ``is_control`` and the
form's outputs (binomial: ``n``, ``y``, table :data:`shrinksim.tables.USER_DATA`; poisson:
``y``, ``exposure``; gaussian: ``n``, ``mean``, ``sd`` or ``estimate``, ``se``), in the order
the groups first appear in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shrinksim.errors import did_you_mean
from shrinksim.tables import USER_DATA
from shrinksim.userdata.forms import DEFAULT_FAMILY, OUTPUT_TYPES, Form, family_of
from shrinksim.userdata.read import Problems, UserDataError, read
from shrinksim.userdata.rows import CONTROL_COLUMN, choose_form, read_groups
from shrinksim.userdata.values import label


@dataclass(frozen=True)
class UserData:
    """The user's groups, checked: their ``family``, the ``form`` of the file and ``groups``,
    one row per group (``group``, ``is_control`` and ``form.outputs``)."""

    family: str
    form: Form
    groups: pd.DataFrame

    @property
    def fitted_as(self) -> str:
        """The outcome family the groups are fitted as (:attr:`Form.fitted_as`: the family,
        or ``gaussian_se`` for estimates with known standard errors)."""
        return self.form.fitted_as

    def prepared(self) -> pd.DataFrame:
        """The groups as the later stages read them (table
        :data:`shrinksim.tables.USER_DATA`): every family's columns (those of other families
        empty) and ``family`` = :attr:`fitted_as`."""
        return self.groups.assign(family=self.fitted_as).reindex(columns=USER_DATA.names)


def _named_control(
    frame: pd.DataFrame, control: str | int, name: str, flagged: bool, first_row: dict[str, int]
) -> pd.Series:
    """``is_control`` when the configuration names the control group (``userdata.control``);
    ``flagged``: the file has an ``is_control`` column."""
    wanted = label(control)
    labels = frame["group"].tolist()
    if wanted not in labels:
        raise UserDataError(
            f"invalid data file:\n  userdata.control: group {wanted!r} is not in "
            f"{name}, column 'group'{did_you_mean(wanted, labels)}"
        )
    named = frame["group"] == wanted
    if flagged and frame["is_control"].any() and not frame.loc[named, "is_control"].iloc[0]:
        marked = frame.loc[frame["is_control"], "group"].iloc[0]
        raise UserDataError(
            f"invalid data file:\n  userdata.control names group {wanted!r} but "
            f"{name}, column {CONTROL_COLUMN!r} marks group {marked!r} (row "
            f"{first_row[marked]})"
        )
    return named


def _check_groups(frame: pd.DataFrame, first_row: dict[str, int], problems: Problems) -> None:
    """At most one control group and at least two treatment groups."""
    controls = frame.loc[frame["is_control"], "group"].tolist()
    if len(controls) > 1:
        problems.add(
            f"more than one control group ({', '.join(repr(c) for c in controls[:5])}); "
            "mark at most one",
            first_row[controls[1]],
            CONTROL_COLUMN,
        )
    treated = frame.loc[~frame["is_control"], "group"].tolist()
    if len(frame) == 1:
        problems.add(
            f"a single group ({treated[0] if treated else controls[0]!r}); partial pooling "
            "needs at least two groups",
            column="group",
        )
    elif len(treated) < 2:
        problems.add(
            f"{len(treated)} treatment group(s) besides the control group; shrinkage needs at "
            "least two",
            column="group",
        )


def load_data(
    path: str | Path, family: str = DEFAULT_FAMILY, control: str | int | None = None
) -> UserData:
    """Read and check the user's data of ``family`` (see the module docstring).

    ``control`` names the control group's label (config ``userdata.control``), as an
    alternative to an ``is_control`` column. Raises :class:`UserDataError` listing every
    problem found, each with the file, row and column (a header that fits no form of
    ``family``: the forms it expects and the columns found).
    """
    path = Path(path)
    name = str(path)
    header, rows, lines = read(path)
    where = name if lines is None else f"{name}, line 1 (the header)"
    form = choose_form(header, family, where)
    col = {h: i for i, h in enumerate(header)}
    problems = Problems(name, lines)
    groups, first_row = read_groups(form, rows, col, problems)
    problems.raise_if_any()
    frame = pd.DataFrame(
        {
            "group": pd.Series(list(groups), dtype=object),
            "is_control": [v["is_control"] for v in groups.values()],
            **{
                out: pd.Series([v[out] for v in groups.values()], dtype=OUTPUT_TYPES[out])
                for out in form.outputs
            },
        }
    )
    if control is not None:
        frame["is_control"] = _named_control(frame, control, name, CONTROL_COLUMN in col, first_row)
    _check_groups(frame, first_row, problems)
    problems.raise_if_any()
    return UserData(family, form, frame)


def load(
    path: str | Path, control: str | int | None = None, *, family: str = DEFAULT_FAMILY
) -> pd.DataFrame:
    """The groups of :func:`load_data`: binomial by default (``group``, ``is_control``,
    ``n``, ``y``), as every binomial caller reads them."""
    return load_data(path, family, control).groups


def check(config: dict[str, Any]) -> UserData:
    """Before any job runs: the ``userdata:`` settings, then the file itself, read as the
    family of :func:`~shrinksim.userdata.forms.family_of` (raises
    :class:`~shrinksim.errors.ConfigError` or :class:`UserDataError` naming what is wrong);
    the data, checked."""
    from shrinksim.errors import ConfigError
    from shrinksim.userdata.design import config_problems

    problems = config_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return load_data(config["data"], family_of(config), control=config["userdata"]["control"])
