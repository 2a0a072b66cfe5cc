"""The cells of the user's file: group labels, control flags, and the values of a form's
columns checked as :class:`~shrinksim.userdata.forms.Column` says (a ValueError says what is
wrong, for the reader to place at its row and column)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from shrinksim.userdata.forms import Column

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", ""}


def missing(value: Any) -> bool:
    """True for an empty cell: None, NaN or empty (or blank) text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def count(value: Any) -> int:
    """An integer, or ValueError saying what is wrong (no sign check here)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | Decimal | np.floating):
        number = float(value)
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


def number(value: Any) -> float:
    """A finite number, or ValueError saying what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float | Decimal | np.integer | np.floating):
        result = float(value)
    else:
        text = str(value).strip()
        try:
            result = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def binary(value: Any) -> int:
    """A 0/1 outcome (true/false too), or ValueError."""
    try:
        y = 1 if value is True else 0 if value is False else count(value)
    except ValueError:
        y = None
    if y not in (0, 1):
        try:
            numeric = not isinstance(value, bool) and math.isfinite(number(value))
        except ValueError:
            numeric = False
        hint = "; numeric outcomes: family gaussian" if numeric else ""
        raise ValueError(f"{value!r} is not 0 or 1 (one row per outcome{hint})")
    return y


def checked(column: Column, value: Any) -> int | float | None:
    """The value of a cell of ``column`` (None: empty, where the column allows it), or
    ValueError saying what is wrong with it."""
    if missing(value):
        if column.may_be_empty:
            return None
        binary_hint = f"; {column.name} must be 0 or 1" if column.kind == "binary" else ""
        raise ValueError(f"missing value{binary_hint}")
    if column.kind == "binary":
        return binary(value)
    result: int | float = count(value) if column.kind == "count" else number(value)
    if column.kind == "count" and result < 0:
        raise ValueError(f"{result} is negative; counts must be >= 0")
    low = column.minimum
    if low is not None and (result < low or (column.exclusive and result == low)):
        raise ValueError(column.too_small.format(value=result))
    return result


def flag(value: Any) -> bool:
    """A control flag: true/false, t/f, yes/no, y/n or 1/0 (empty: false)."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true/false (or 1/0, yes/no)")


def label(value: Any) -> str:
    """A group label as text (an integer-valued float without its ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
