"""Read and check the user's data file: one row per group, or :class:`UserDataError`.

Input: a CSV or Parquet file in one of two forms,

* one row per outcome: columns ``group`` and ``y`` (0 or 1);
* one row per group: columns ``group``, ``n`` (outcomes) and ``successes``;

either with an optional ``is_control`` column (true/false, 1/0, yes/no) marking one control
group, which can also be named by the configuration (``userdata.control``). Other columns
are ignored. :func:`load` checks everything before any job runs and raises
:class:`UserDataError` with one line per problem naming the file, row and column; it never
writes anything.

The result is one row per group (table :data:`shrinksim.tables.USER_DATA`): ``group`` (the
label, as text), ``is_control``, ``n``, ``y`` (successes), in the order the groups first
appear in the file.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinksim.errors import did_you_mean
from shrinksim.userdata.read import Problems, UserDataError, fail, read

OUTCOME_COLUMNS = ("group", "y")
GROUP_COLUMNS = ("group", "n", "successes")
CONTROL_COLUMN = "is_control"
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}

Groups = dict[str, dict[str, Any]]
"""Group label -> ``is_control``, ``n``, ``y``, in the order of first appearance."""


def _missing(value: Any) -> bool:
    """True for an empty cell: None, NaN or empty text."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _count(value: Any) -> int:
    """An integer count, or ValueError saying what is wrong (no sign check here)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float):
        number = value
    else:
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an integer") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _flag(value: Any) -> bool:
    """A control flag: true/false, t/f, yes/no, y/n or 1/0 (empty: false)."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text in ("0.0",):
        return False
    if text == "1.0":
        return True
    raise ValueError(f"{value!r} is not true/false (or 1/0, yes/no)")


def _label(value: Any) -> str:
    """A group label as text (an integer-valued float without its ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _missing_columns(path: str, header: list[str]) -> UserDataError:
    """The error for a header that fits neither form, with the near-miss column names."""
    found = ", ".join(repr(h) for h in header)
    if "n" in header or "successes" in header:
        need = [c for c in GROUP_COLUMNS if c not in header]
        form = "one row per group needs columns group, n, successes"
    else:
        need = [c for c in OUTCOME_COLUMNS if c not in header]
        form = (
            "one row per outcome needs columns group, y (0/1); "
            "one row per group needs group, n, successes"
        )
    hints = []
    for name in need:
        close = difflib.get_close_matches(name, header, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} -> {name!r}?")
    hint = f" (did you mean {', '.join(hints)})" if hints else ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        hint += "; the header has no commas: shrinksim reads comma-separated files"
    missing = ", ".join(repr(c) for c in need)
    plural = "s" if len(need) > 1 else ""
    return fail(
        f"{path}, line 1 (the header)",
        f"missing column{plural} {missing}{hint}; {form}; found {found}",
    )


def _label_and_flag(
    fields: list[Any], col: dict[str, int], r: int, problems: Problems
) -> tuple[str, bool] | None:
    """The group label and control flag of data row ``r``; None without a label."""
    raw_label = fields[col["group"]]
    if _missing(raw_label):
        problems.add("missing group label", r, "group")
        return None
    flag = False
    if CONTROL_COLUMN in col:
        try:
            flag = _flag(fields[col[CONTROL_COLUMN]])
        except ValueError as err:
            problems.add(str(err), r, CONTROL_COLUMN)
    return _label(raw_label), flag


def _counts(fields: list[Any], col: dict[str, int], r: int, problems: Problems) -> dict[str, int]:
    """The valid ``n`` and ``successes`` of data row ``r`` (one row per group)."""
    counts = {}
    for column in ("n", "successes"):
        value = fields[col[column]]
        if _missing(value):
            problems.add("missing value", r, column)
            continue
        try:
            counts[column] = _count(value)
        except ValueError as err:
            problems.add(str(err), r, column)
            continue
        if counts[column] < 0:
            problems.add(f"{counts[column]} is negative; counts must be >= 0", r, column)
            del counts[column]
    if counts.get("n") == 0:
        problems.add("0 outcomes; every group needs n >= 1", r, "n")
    if "n" in counts and "successes" in counts and counts["successes"] > counts["n"]:
        problems.add(
            f"successes = {counts['successes']} is more than n = {counts['n']}", r, "successes"
        )
    return counts


def _group_rows(
    rows: list[list[Any]], col: dict[str, int], problems: Problems
) -> tuple[Groups, dict[str, int]]:
    """Groups of a file with one row per group, and the data row of each."""
    groups: Groups = {}
    first_row: dict[str, int] = {}
    for r, fields in enumerate(rows, start=1):
        found = _label_and_flag(fields, col, r, problems)
        if found is None:
            continue
        label, flag = found
        counts = _counts(fields, col, r, problems)
        if label in groups:
            problems.add(
                f"group {label!r} appears twice (first on row {first_row[label]}); "
                "one row per group has each group once",
                r,
                "group",
            )
            continue
        first_row[label] = r
        groups[label] = {
            "is_control": flag,
            "n": counts.get("n", 0),
            "y": counts.get("successes", 0),
        }
    return groups, first_row


def _outcome(value: Any, r: int, problems: Problems) -> int | None:
    """The 0/1 outcome ``y`` of data row ``r``; None if it is not one."""
    if _missing(value):
        problems.add("missing value; y must be 0 or 1", r, "y")
        return None
    try:
        y = 1 if value is True else 0 if value is False else _count(value)
    except ValueError:
        y = None
    if y not in (0, 1):
        problems.add(f"{value!r} is not 0 or 1 (one row per outcome)", r, "y")
        return None
    return y


def _outcome_rows(
    rows: list[list[Any]], col: dict[str, int], problems: Problems
) -> tuple[Groups, dict[str, int]]:
    """Groups of a file with one row per outcome, and the first data row of each."""
    groups: Groups = {}
    first_row: dict[str, int] = {}
    for r, fields in enumerate(rows, start=1):
        found = _label_and_flag(fields, col, r, problems)
        if found is None:
            continue
        label, flag = found
        y = _outcome(fields[col["y"]], r, problems)
        if label not in groups:
            first_row[label] = r
            groups[label] = {"is_control": flag, "n": 0, "y": 0}
        elif CONTROL_COLUMN in col and groups[label]["is_control"] != flag:
            problems.add(
                f"group {label!r} has is_control = {groups[label]['is_control']} on row "
                f"{first_row[label]} but {flag} here",
                r,
                CONTROL_COLUMN,
            )
        groups[label]["n"] += 1
        groups[label]["y"] += y or 0
    return groups, first_row


def _named_control(
    frame: pd.DataFrame, control: str | int, name: str, flagged: bool, first_row: dict[str, int]
) -> pd.Series:
    """``is_control`` when the configuration names the control group (``userdata.control``);
    ``flagged``: the file has an ``is_control`` column."""
    wanted = _label(control)
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


def load(path: str | Path, control: str | int | None = None) -> pd.DataFrame:
    """Read and check the user's data; one row per group (see the module docstring).

    ``control`` names the control group's label (config ``userdata.control``), as an
    alternative to an ``is_control`` column. Raises :class:`UserDataError` listing every
    problem found, each with the file, row and column.
    """
    path = Path(path)
    name = str(path)
    header, rows, lines = read(path)
    if "group" in header and "n" in header and "successes" in header:
        read_rows = _group_rows
    elif "group" in header and "y" in header and "n" not in header and "successes" not in header:
        read_rows = _outcome_rows
    else:
        raise _missing_columns(name, header)
    col = {h: i for i, h in enumerate(header)}
    problems = Problems(name, lines)
    groups, first_row = read_rows(rows, col, problems)
    problems.raise_if_any()
    frame = pd.DataFrame(
        {
            "group": pd.Series(list(groups), dtype=object),
            "is_control": [v["is_control"] for v in groups.values()],
            "n": [v["n"] for v in groups.values()],
            "y": [v["y"] for v in groups.values()],
        }
    )
    if control is not None:
        frame["is_control"] = _named_control(frame, control, name, CONTROL_COLUMN in col, first_row)
    _check_groups(frame, first_row, problems)
    problems.raise_if_any()
    frame["n"] = frame["n"].astype(int)
    frame["y"] = frame["y"].astype(int)
    return frame


def check(config: dict[str, Any]) -> None:
    """Before any job runs: the ``userdata:`` settings, then the file itself (raises
    :class:`~shrinksim.errors.ConfigError` or :class:`UserDataError` naming what is wrong)."""
    from shrinksim.errors import ConfigError
    from shrinksim.userdata.design import config_problems

    problems = config_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    load(config["data"], control=config["userdata"]["control"])
