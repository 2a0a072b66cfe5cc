"""Synthesise the fit jobs' tables of a large study from the tables of one real fit job.

No sampling: every fit job's three tables (:data:`shrinksim.design.FIT_TABLES`) are copies of
the template job's rows, relabelled. Replicate ``r`` of a job takes the rows of template
replicate ``r % copies`` (``copies``: the template's replicates) and the cell columns of the
job's data cell; draws, as a real job writes them, only for the first replicate of the batch
(from the template's first replicate). Rows are in a real job's order: fit by fit ((prior,
model) in the template's order), replicate by replicate.

Real fits never repeat a number, so Parquet's dictionary encoding gains nothing on them;
copies would compress to almost nothing. Each replicate's float64 values are therefore
scaled by ``1 + r * 2**-40`` (:func:`distinct`; relative change below 1e-8 at 10^4
replicates): schemas, row counts and file sizes are those of a real study, the numbers
repeat to eight digits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shrinksim import design, tables
from shrinksim.design import DataCell

SCHEMAS = {"groups": tables.GROUPS, "fits": tables.FITS, "draws": tables.DRAWS}
"""The schema of each fit-job table."""

EPSILON = 2.0**-40
"""Relative change of a float per replicate index (see :func:`distinct`)."""


def read_template(results: Path, cell: DataCell, batch: int = 0) -> dict[str, pa.Table]:
    """The three tables of the fit job (``cell``, ``batch``) under ``results``, exactly as
    written (schema metadata included); each checked against its schema."""
    template = {}
    for name, schema in SCHEMAS.items():
        path = design.result_path(
            design.FIT_TABLE, results, table=name, datacell=cell.path, batch=batch
        )
        table = pq.ParquetFile(path).read()
        if not table.schema.equals(schema):
            raise ValueError(f"{path}: schema differs from tables.{name.upper()}")
        template[name] = table
    return template


def take_replicates(table: pa.Table, replicates: Sequence[int], sources: Sequence[int]) -> pa.Table:
    """For each (prior, model) of ``table`` in order of appearance, the rows of template
    replicate ``sources[i]`` relabelled as replicate ``replicates[i]``, for every ``i``."""
    prior = table["prior"].to_numpy(zero_copy_only=False)
    model = table["model"].to_numpy(zero_copy_only=False)
    replicate = table["replicate"].to_numpy(zero_copy_only=False)
    fits = list(dict.fromkeys(zip(prior, model, strict=True)))
    rows, labels = [], []
    for fit_prior, fit_model in fits:
        in_fit = (prior == fit_prior) & (model == fit_model)
        for target, source in zip(replicates, sources, strict=True):
            taken = np.flatnonzero(in_fit & (replicate == source))
            rows.append(taken)
            labels.append(np.full(taken.size, target, dtype=np.int32))
    index = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    out = table.take(pa.array(index, pa.int64()))
    labels_array = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int32)
    return distinct(set_values(out, "replicate", pa.array(labels_array, pa.int32())))


def distinct(table: pa.Table) -> pa.Table:
    """Every float64 column scaled by ``1 + replicate * EPSILON``: no two replicates share a
    value, so the files compress like real ones (replicate 0 keeps the template's values)."""
    factor = pa.array(1.0 + table["replicate"].to_numpy().astype(np.float64) * EPSILON)
    for i, field in enumerate(table.schema):
        if field.type == pa.float64():
            scaled = pc.multiply(table.column(i).combine_chunks(), factor)
            table = table.set_column(i, field, scaled)
    return table


def set_values(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    """``table`` with column ``name`` replaced by ``values`` (cast to its field's type)."""
    i = table.schema.get_field_index(name)
    field = table.schema.field(i)
    return table.set_column(i, field, values.cast(field.type))


def with_cell(table: pa.Table, cell: DataCell) -> pa.Table:
    """``table`` with the data-cell columns (n_per_group, groups, spread_axis, spread) of
    ``cell`` on every row."""
    values = {
        "n_per_group": cell.n,
        "groups": cell.groups,
        "spread_axis": cell.spread_axis,
        "spread": cell.spread,
    }
    for name, value in values.items():
        field = table.schema.field(name)
        table = set_values(table, name, pa.repeat(pa.scalar(value, field.type), table.num_rows))
    return table


def job_tables(template: Mapping[str, pa.Table], replicates: Sequence[int]) -> dict[str, pa.Table]:
    """The three tables of a fit job of ``replicates`` (cell columns still the template's)."""
    template_replicates = sorted(set(template["fits"]["replicate"].to_pylist()))
    copies = len(template_replicates)
    out = {}
    for name, table in template.items():
        if name == "draws":
            first = min(table["replicate"].to_pylist(), default=0)
            out[name] = take_replicates(table, replicates[:1], [first])
        else:
            sources = [template_replicates[r % copies] for r in replicates]
            out[name] = take_replicates(table, replicates, sources)
    return out


@dataclass(frozen=True)
class Synthesis:
    """What :func:`synthesise` wrote."""

    jobs: int
    files: int
    bytes: int
    seconds: float


def synthesise(
    config: Mapping[str, Any], template: Mapping[str, pa.Table], results: Path
) -> Synthesis:
    """Write every fit job's tables of ``config``'s study under ``results`` (the files of
    :func:`shrinksim.design.fit_job_tables`)."""
    start = time.perf_counter()
    cells = design.data_cells(config)
    files = written = 0
    batches = design.replicate_batches(config)
    for batch, replicates in enumerate(batches):
        shared = job_tables(template, replicates)  # taken once, relabelled per cell
        for cell in cells:
            for name, table in shared.items():
                path = Path(
                    design.result_path(
                        design.FIT_TABLE, results, table=name, datacell=cell.path, batch=batch
                    )
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(with_cell(table, cell), path)
                files += 1
                written += path.stat().st_size
    return Synthesis(len(cells) * len(batches), files, written, time.perf_counter() - start)
