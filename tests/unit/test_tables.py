"""Atomic writing and explicit schemas."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shrinksim import tables

SCHEMA = pa.schema([pa.field("a", pa.int32()), pa.field("b", pa.float64())])


def test_write_table_uses_exactly_the_schema(tmp_path):
    path = tmp_path / "x" / "t.parquet"
    tables.write_table(pd.DataFrame({"b": [0.5, None], "a": [1, None], "extra": 1}), path, SCHEMA)
    assert pq.read_schema(path).remove_metadata() == SCHEMA
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(KeyError, match=r"lacks columns \['b'\]"):
        tables.write_table(pd.DataFrame({"a": [1]}), path, SCHEMA)


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "t.parquet"
    tables.write_table(pd.DataFrame({"a": [1], "b": [2.0]}), path, SCHEMA)

    def crash(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"half a file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tables.write_atomic(path, crash)
    assert pq.read_table(path).to_pandas()["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_temporaries_of_a_killed_writer_are_removed(tmp_path):
    stale = tmp_path / ".t.parquet.abc123.tmp"  # what a SIGKILLed writer leaves
    stale.write_bytes(b"partial")
    other = tmp_path / ".u.parquet.abc123.tmp"  # another target's: not ours to remove
    other.write_bytes(b"partial")
    tables.write_table(pd.DataFrame({"a": [1], "b": [2.0]}), tmp_path / "t.parquet", SCHEMA)
    assert not stale.exists() and other.exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
