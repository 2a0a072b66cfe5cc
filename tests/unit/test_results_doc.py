"""Every column of every table is described, in the schemas' metadata (so in every Parquet
file), and docs/results.md is generated from those descriptions."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from shrinksim import columns, tables
from shrinksim.columns.markdown import COMMAND, UNFIXED, results_markdown, schemas

RESULTS_MD = REPO / "docs/results.md"


def undescribed(schema: pa.Schema) -> list[str]:
    """The columns of ``schema`` without a non-empty description, and ``<table>`` if the
    schema itself has no name or description."""
    missing = [
        column.name
        for column in schema
        if not (column.metadata or {}).get(b"description", b"").strip()
    ]
    table = schema.metadata or {}
    if not (table.get(b"name", b"").strip() and table.get(b"description", b"").strip()):
        missing.append("<table>")
    return missing


def test_every_column_of_every_schema_is_described():
    found = schemas()  # every pa.Schema of shrinksim.tables: a new one is checked too
    assert {"DATA", "GROUPS", "FITS", "PER_FIT", "MEASURES", "SBC_TESTS", "WHATIF"} <= set(found)
    assert all(schema.metadata[b"name"].decode() == name for name, schema in found.items())
    problems = {
        name: missing
        for name, schema in {**found, **UNFIXED}.items()
        if (missing := undescribed(schema))
    }
    assert not problems, (
        f"columns without a description (add them to shrinksim.columns): {problems}"
    )


def test_the_check_sees_what_lacks_a_description():
    described = tables.named_schema("DATA", [tables.field("y", pa.int32())])
    assert undescribed(described) == []
    bare = pa.schema([tables.field("y", pa.int32()), pa.field("z", pa.int32())])
    assert undescribed(bare) == ["z", "<table>"]
    empty = pa.field("y", pa.int32(), metadata={"description": " "})
    assert undescribed(pa.schema([empty], metadata=described.metadata)) == ["y"]


def test_a_column_without_description_is_refused_by_name():
    with pytest.raises(KeyError, match="column 'no_such_column' has no description"):
        tables.field("no_such_column", pa.float64())
    with pytest.raises(KeyError, match=r"'no_such_column' \(FITS.no_such_column\)"):
        tables.field("no_such_column", pa.float64(), "FITS")
    with pytest.raises(KeyError, match="table 'NO_SUCH_TABLE' has no description"):
        tables.named_schema("NO_SUCH_TABLE", [])


def test_names_are_described_once_and_every_description_is_used():
    with pytest.raises(ValueError, match="'a' is described twice"):
        columns._merged([("a", "one")], [("a", "two")])
    # a qualified name wins in its table only; the others keep the plain one
    assert tables.USER_FITS.field("groups").metadata != tables.FITS.field("groups").metadata
    assert columns.describe("groups", "USER_FITS") == columns.COLUMNS["USER_FITS.groups"]
    assert columns.describe("groups", "DATA") == columns.COLUMNS["groups"]
    used = {
        column.metadata[b"description"].decode()
        for schema in {**schemas(), **UNFIXED}.values()
        for column in schema
    }
    stale = sorted(name for name, text in columns.COLUMNS.items() if text not in used)
    assert not stale, f"descriptions no column uses (a typo in a TABLE.name key?): {stale}"
    assert set(columns.TABLES) == set(schemas()) | set(UNFIXED)


def test_families_are_composed_from_their_parts():
    assert columns.COLUMNS["theta_q025"].startswith("Posterior 2.5 % quantile of the group's")
    assert "log-odds" in columns.COLUMNS["theta_q025"]
    assert "probability" in columns.COLUMNS["p_q975"]
    assert columns.COLUMNS["rhat_hyper_max"].startswith("Largest rank-normalised split R-hat")
    assert "hyperparameters" in columns.COLUMNS["rhat_hyper_max"]
    assert (
        "95 %" in columns.COLUMNS["coverage_0.95"]
        and "[q025, q975]" in columns.COLUMNS["coverage_0.95"]
    )


def test_results_md_is_generated_from_the_schemas():
    expected = results_markdown()
    assert RESULTS_MD.read_text(encoding="utf-8") == expected, (
        f"docs/results.md is out of date: regenerate it with `{COMMAND}`"
    )
    for name, schema in schemas().items():
        assert f"## `{name}`" in expected
        assert all(f"| `{column}` |" in expected for column in schema.names), name
    assert "* `results/fits/{datacell}/batch={batch}/part-0.parquet`" in expected


def test_module_prints_the_markdown():
    done = subprocess.run(
        [sys.executable, "-m", "shrinksim.columns"], capture_output=True, check=True, cwd=REPO
    )
    assert done.stdout.decode("utf-8") == results_markdown()


def test_written_parquet_keeps_the_descriptions(tmp_path):
    frame = pd.DataFrame(
        {
            "replicate": [0, 0],
            "group": [0, 1],
            "is_control": [True, False],
            "n": [10, 12],
            "y": [3, 5],
            "true_p": [0.3, 0.4],
            "true_logit": [-0.85, -0.41],
        }
    ).reindex(columns=tables.DATA.names)  # the other families' columns empty
    path = tmp_path / "data.parquet"
    tables.write_table(frame, path, tables.DATA)
    written = pq.read_schema(path)
    assert written.remove_metadata() == tables.DATA  # the comparison the tests make: unchanged
    assert written.metadata[b"name"] == b"DATA"
    assert written.metadata[b"description"] == tables.DATA.metadata[b"description"]
    for column in tables.DATA:
        assert written.field(column.name).metadata == column.metadata, column.name
    # read, concatenated and written again (as the reduce does): still described
    again = tmp_path / "again.parquet"
    both = tables.concat([tables.read_tables([path, path], tables.DATA), frame], tables.DATA)
    tables.write_table(both, again, tables.DATA)
    rewritten = pq.read_schema(again)
    assert rewritten.field("true_logit").metadata == tables.DATA.field("true_logit").metadata
    assert rewritten.metadata[b"description"] == tables.DATA.metadata[b"description"]
    assert len(pq.read_table(again)) == 6
