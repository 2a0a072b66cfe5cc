"""From the header and rows of the user's file to groups, by the forms of its family
(:data:`~shrinksim.userdata.forms.FORMS`): which form the header is, and each row's label,
control flag and checked values, reduced to one entry per group."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from shrinksim.userdata.forms import FAMILIES, Form, expected, family_forms
from shrinksim.userdata.read import Problems, UserDataError, fail
from shrinksim.userdata.values import checked, flag, label, missing

CONTROL_COLUMN = "is_control"

Groups = dict[str, dict[str, Any]]
"""Group label -> ``is_control`` and the form's outputs, in the order of first appearance."""


def _fits(form: Form, header: Sequence[str]) -> bool:
    """``header`` has the columns of ``form`` and, for one row per observation, none that
    only another form of its family has (``group,y,n`` is an incomplete per-group form)."""
    present = set(header)
    if not set(form.names) <= present:
        return False
    if form.per == "group":
        return True
    others = {c.name for f in family_forms(form.family) for c in f.columns} - set(form.names)
    return not others & present


def choose_form(header: Sequence[str], family: str, where: str) -> Form:
    """The form of ``family`` that ``header`` is; :class:`UserDataError` at ``where`` (the
    header's place) if it is none or more than one of them."""
    fitting = [form for form in family_forms(family) if _fits(form, header)]
    per_group = [form for form in fitting if form.per == "group"]
    if len(per_group) > 1:
        both = " and ".join(form.label() for form in per_group)
        raise fail(
            where,
            f"the columns fit more than one form of family {family}: {both}; "
            "keep the columns of the one you mean",
        )
    if fitting:
        return (per_group or fitting)[0]
    raise header_error(header, family, where)


def header_error(header: Sequence[str], family: str, where: str) -> UserDataError:
    """The error for a header that fits no form of ``family``: the missing columns of the
    nearest form (with near-miss names), the forms ``family`` expects, the columns found,
    and the family whose form they are, if any."""
    present = set(header)
    incomplete = [f for f in family_forms(family) if not set(f.names) <= present]
    forms = incomplete or family_forms(family)  # a complete form here has a column too many
    best = max(forms, key=lambda form: len(set(form.names[1:]) & present))  # first on ties
    if set(best.names[1:]) & present:
        need = [name for name in best.names if name not in present]
    else:
        need = [] if "group" in present else ["group"]
    parts = []
    if need:
        hints = []
        others = [h for h in header if h not in best.names]
        for name in need:
            close = difflib.get_close_matches(name, others, n=1, cutoff=0.6)
            if close:
                hints.append(f"{close[0]!r} -> {name!r}?")
        hint = f" (did you mean {', '.join(hints)})" if hints else ""
        plural = "s" if len(need) > 1 else ""
        parts.append(f"missing column{plural} {', '.join(repr(c) for c in need)}{hint}")
    parts.append(f"family {family} expects columns {expected(family)}")
    parts.append(f"found ({', '.join(header)})")
    fitting = [
        next(form for form in family_forms(other) if _fits(form, header))
        for other in FAMILIES
        if other != family and any(_fits(form, header) for form in family_forms(other))
    ]
    if fitting:
        if len({form.names for form in fitting}) == 1:
            fit = f"{fitting[0].label()} fits family {' or '.join(f.family for f in fitting)}"
        else:
            fit = "the columns fit family " + " or ".join(
                f"{form.family} as {form.label()}" for form in fitting
            )
        which = (
            f": {fitting[0].family} if you mean it" if len(fitting) == 1 else " to the one you mean"
        )
        parts.append(f"{fit}: set userdata.family{which}")
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        parts.append("the header has no commas: shrinksim reads comma-separated files")
    return fail(where, "; ".join(parts))


def _label_and_flag(
    fields: list[Any], col: dict[str, int], r: int, problems: Problems
) -> tuple[str, bool] | None:
    """The group label and control flag of data row ``r``; None without a label."""
    raw_label = fields[col["group"]]
    if missing(raw_label):
        problems.add("missing group label", r, "group")
        return None
    is_control = False
    if CONTROL_COLUMN in col:
        try:
            is_control = flag(fields[col[CONTROL_COLUMN]])
        except ValueError as err:
            problems.add(str(err), r, CONTROL_COLUMN)
    return label(raw_label), is_control


def _values(
    form: Form, fields: list[Any], col: dict[str, int], r: int, problems: Problems
) -> dict[str, Any] | None:
    """The checked values of data row ``r`` by column name; None if any is wrong."""
    valid: dict[str, Any] = {}
    for column in form.columns:
        try:
            valid[column.name] = checked(column, fields[col[column.name]])
        except ValueError as err:
            problems.add(str(err), r, column.name)
    wrong = form.row_check(valid) if form.row_check else []
    for name, what in wrong:
        problems.add(what, r, name)
    return valid if len(valid) == len(form.columns) and not wrong else None


def read_groups(
    form: Form, rows: list[list[Any]], col: dict[str, int], problems: Problems
) -> tuple[Groups, dict[str, int]]:
    """The groups of a file of ``form`` and the first data row of each; every problem is
    added to ``problems`` (a group with a wrong value has no outputs)."""
    groups: Groups = {}
    first_row: dict[str, int] = {}
    observed: dict[str, list[Any]] = {}
    for r, fields in enumerate(rows, start=1):
        found = _label_and_flag(fields, col, r, problems)
        valid = _values(form, fields, col, r, problems)
        if found is None:
            continue
        name, is_control = found
        if form.per == "group":
            if name in groups:
                problems.add(
                    f"group {name!r} appears twice (first on row {first_row[name]}); "
                    "one row per group has each group once",
                    r,
                    "group",
                )
                continue
            first_row[name] = r
            groups[name] = {"is_control": is_control}
            if valid is not None:
                groups[name] |= {
                    c.out: 0 if valid[c.name] is None else valid[c.name] for c in form.columns
                }
            continue
        if name not in groups:
            first_row[name] = r
            groups[name] = {"is_control": is_control}
            observed[name] = []
        elif CONTROL_COLUMN in col and groups[name]["is_control"] != is_control:
            problems.add(
                f"group {name!r} has is_control = {groups[name]['is_control']} on row "
                f"{first_row[name]} but {is_control} here",
                r,
                CONTROL_COLUMN,
            )
        if valid is not None:
            observed[name].append(valid[form.columns[0].name])
    if form.reduce is not None:
        for name, values in observed.items():
            if values:
                groups[name] |= form.reduce(values)
    if form.groups_check is not None and not problems.found:
        for column, what in form.groups_check(list(groups.values())):
            problems.add(what, column=column)
    return groups, first_row
