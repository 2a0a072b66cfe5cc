"""Read the user's data file into a header and data rows (CSV or Parquet), and the errors
that name file, row and column; problems of the file's shape raise at once."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

MAX_LISTED = 10
"""Problems listed in one error message; the rest are counted."""


class UserDataError(ValueError):
    """A problem with the user's data file; one line per problem, each naming file, row and
    column."""


class Problems:
    """Collects problems of one file, each located by row (1-based data row) and column."""

    def __init__(self, path: str, line_numbers: Sequence[int] | None) -> None:
        self.path = path
        self.lines = line_numbers  # CSV: the file line of each data row; Parquet: None
        self.found: list[str] = []

    def where(self, row: int | None = None, column: str | None = None) -> str:
        """The file, then row (with its line in a CSV file) and column."""
        parts = [self.path]
        if row is not None:
            line = f" (line {self.lines[row - 1]})" if self.lines is not None else ""
            parts.append(f"row {row}{line}")
        if column is not None:
            parts.append(f"column {column!r}")
        return ", ".join(parts)

    def add(self, what: str, row: int | None = None, column: str | None = None) -> None:
        """Record one problem at ``row`` and ``column``."""
        self.found.append(f"{self.where(row, column)}: {what}")

    def raise_if_any(self) -> None:
        """Raise :class:`UserDataError` listing the problems (at most :data:`MAX_LISTED`)."""
        if self.found:
            shown = self.found[:MAX_LISTED]
            more = len(self.found) - len(shown)
            if more:
                shown.append(f"... and {more} more problem{'s' if more > 1 else ''}")
            raise UserDataError("invalid data file:\n  " + "\n  ".join(shown))


def fail(where: str, what: str) -> UserDataError:
    """An error at ``where`` (the file, then row, line or column, comma-separated)."""
    return UserDataError(f"invalid data file:\n  {where}: {what}")


def _is_parquet(path: Path, head: bytes) -> bool:
    """Parquet by the suffix or the magic bytes of the file's ``head``."""
    return path.suffix.lower() in (".parquet", ".pq") or head[:4] == b"PAR1"


def _read_csv(path: str, raw: bytes) -> tuple[list[str], list[list[Any]], list[int]]:
    """Header, data rows and the file line of each data row; decoding and shape problems
    raise at once (nothing after them can be trusted)."""
    if not raw.strip():
        raise fail(path, "empty file; expected a header line and one row per group or outcome")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw.count(b"\n", 0, err.start) + 1
        field = raw[line_start : err.start].count(b",")
        header = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().split(",")
        if line > 1:
            # data row number = line - 1 when no blank or multi-line rows come before it
            where = f"{path}, row {line - 1} (line {line})"
            if field < len(header):
                where += f", column {header[field].strip()!r}"
        else:
            where = f"{path}, line 1 (the header)"
        raise fail(
            where,
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet)",
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[Any]] = []
    lines: list[int] = []
    header: list[str] | None = None
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line
            if header is None:
                header = [f.strip() for f in fields]
                continue
            rows.append(fields)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise fail(f"{path}, line {reader.line_num}", f"malformed CSV ({err})") from None
    assert header is not None  # raw.strip() was not empty
    for i, name in enumerate(header):
        if not name:
            raise fail(f"{path}, line 1 (the header)", f"column {i + 1} has no name")
        if name in header[:i]:
            raise fail(f"{path}, line 1 (the header), column {name!r}", "appears twice")
    for i, fields in enumerate(rows, start=1):
        if len(fields) != len(header):
            raise fail(
                f"{path}, row {i} (line {lines[i - 1]})",
                f"malformed CSV: {len(fields)} fields, but the header has {len(header)} "
                f"({', '.join(header)})",
            )
    if not rows:
        raise fail(path, "empty file: a header but no data rows")
    return header, rows, lines


def _read_parquet(path: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a Parquet file."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise fail(path, f"cannot read it as Parquet: {err}") from None
    if table.num_rows == 0:
        raise fail(path, "empty file: no rows")
    header = [str(name).strip() for name in table.column_names]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return header, [list(row) for row in zip(*columns, strict=True)]


def read(path: Path) -> tuple[list[str], list[list[Any]], list[int] | None]:
    """Header, data rows and (CSV) the file line of each data row; Parquet by its suffix or
    its magic bytes."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise fail(str(path), f"cannot read it: {err.strerror or err}") from None
    if _is_parquet(path, raw[:4]):
        return (*_read_parquet(str(path)), None)
    return _read_csv(str(path), raw)
