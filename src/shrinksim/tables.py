"""Explicit Parquet schemas of every intermediate table, and atomic writing."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CELL_FIELDS = [
    pa.field("n_per_group", pa.int32()),
    pa.field("groups", pa.int32()),
    pa.field("spread_axis", pa.string()),
    pa.field("spread", pa.float64()),
    pa.field("prior", pa.string()),
    pa.field("model", pa.string()),
]
"""The fit cell, on every row of fit and summary tables."""

_QUANTITY = ("mean", "sd", "median", "q025", "q05", "q25", "q75", "q95", "q975")
"""Posterior summaries per quantity; ``qXX`` is the XX % quantile (q025: 2.5 %)."""


def _summary_fields(prefix: str) -> list[pa.Field]:
    return [pa.field(f"{prefix}_{q}", pa.float64()) for q in _QUANTITY]


DATA = pa.schema(
    [
        pa.field("replicate", pa.int32()),
        pa.field("group", pa.int32()),
        pa.field("is_control", pa.bool_()),
        pa.field("n", pa.int32()),
        pa.field("y", pa.int32()),
        pa.field("true_p", pa.float64()),
        pa.field("true_logit", pa.float64()),
    ]
)
"""Simulated data: one row per (replicate, group); group 0 is the control group."""

GROUPS = pa.schema(
    [
        *CELL_FIELDS,
        *DATA,
        pa.field("obs_p", pa.float64()),
        pa.field("obs_logit", pa.float64()),
        *_summary_fields("theta"),
        *_summary_fields("p"),
    ]
)
"""Group-level posterior summaries: log-odds ``theta_*`` and probability ``p_*``."""

FITS = pa.schema(
    [
        *CELL_FIELDS,
        pa.field("replicate", pa.int32()),
        pa.field("status", pa.string()),
        pa.field("message", pa.string()),
        pa.field("attempts", pa.int32()),
        pa.field("adapt_delta", pa.float64()),
        pa.field("seed", pa.int64()),
        pa.field("engine", pa.string()),
        *_summary_fields("mu"),
        *_summary_fields("tau"),
        pa.field("divergences", pa.int32()),
        pa.field("treedepth_hits", pa.int32()),
        pa.field("ebfmi_min", pa.float64()),
        pa.field("rhat_max", pa.float64()),
        pa.field("ess_bulk_min", pa.float64()),
        pa.field("ess_tail_min", pa.float64()),
        pa.field("sampling_seconds", pa.float64()),
    ]
)
"""One row per fit: status, hyperparameter summaries and sampler diagnostics."""

DRAWS = pa.schema(
    [
        *CELL_FIELDS,
        pa.field("replicate", pa.int32()),
        pa.field("group", pa.int32()),
        pa.field("draw", pa.int32()),
        pa.field("p", pa.float32()),
    ]
)
"""Thinned posterior draws of p for a few groups of the first replicate of a partial-pooling
fit job (see :func:`shrinksim.fit.thinned_draws`); empty for the other models."""

SHRINKAGE = pa.schema(
    [
        *CELL_FIELDS,
        pa.field("replicate", pa.int32()),
        pa.field("status", pa.string()),
        pa.field("shrinkage", pa.float64()),
        pa.field("shrinkage_ratio", pa.float64()),
        pa.field("shrinkage_theory", pa.float64()),
        pa.field("tau_mean", pa.float64()),
    ]
)
"""Shrinkage of one fit (see :mod:`shrinksim.summarize` for the definitions)."""

CELLS = pa.schema(
    [
        *CELL_FIELDS,
        pa.field("fits", pa.int32()),
        pa.field("fits_ok", pa.int32()),
        pa.field("shrinkage_mean", pa.float64()),
        pa.field("shrinkage_mcse", pa.float64()),
        pa.field("shrinkage_theory", pa.float64()),
        pa.field("tau_mean", pa.float64()),
    ]
)
"""Shrinkage per fit cell, averaged over replicates, with its Monte Carlo standard error."""


MEASURES = pa.schema(
    [
        *CELL_FIELDS,
        pa.field("true_tau", pa.float64()),
        pa.field("target", pa.string()),
        pa.field("measure", pa.string()),
        pa.field("level", pa.float64()),
        pa.field("value", pa.float64()),
        pa.field("mcse", pa.float64()),
        pa.field("reference", pa.float64()),
        pa.field("replicates", pa.int32()),
    ]
)
"""Performance measures per fit cell, one row per (cell, target, measure, level), with Monte
Carlo standard error, the value to compare with (``reference``: truth, nominal coverage or
the normal approximation; NaN if none) and the replicates used. See docs/measures.md."""

SBC_CELL_FIELDS = [
    pa.field("n_per_group", pa.int32()),
    pa.field("groups", pa.int32()),
    pa.field("prior", pa.string()),
]
"""The SBC design, on every row of the calibration tables."""

SBC_RANKS = pa.schema(
    [
        *SBC_CELL_FIELDS,
        pa.field("simulation", pa.int32()),
        pa.field("parameter", pa.string()),
        pa.field("true_value", pa.float64()),
        pa.field("rank", pa.int32()),
        pa.field("thinned_draws", pa.int32()),
        pa.field("posterior_mean", pa.float64()),
        pa.field("posterior_sd", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("message", pa.string()),
        pa.field("divergences", pa.int32()),
        pa.field("rhat_max", pa.float64()),
        pa.field("ess_bulk_min", pa.float64()),
        pa.field("ess_tail_min", pa.float64()),
        pa.field("sampling_seconds", pa.float64()),
    ]
)
"""SBC: one row per (simulation, parameter): true value, its rank among the thinned draws
(0..thinned_draws; null when the sampler failed) and the fit's diagnostics."""

SBC_TESTS = pa.schema(
    [
        *SBC_CELL_FIELDS,
        pa.field("parameter", pa.string()),
        pa.field("simulations", pa.int32()),
        pa.field("ranked", pa.int32()),
        pa.field("errors", pa.int32()),
        pa.field("divergent", pa.int32()),
        pa.field("ess_below_thinned", pa.int32()),
        pa.field("thinned_draws", pa.int32()),
        pa.field("statistic", pa.float64()),
        pa.field("p_value", pa.float64()),
        pa.field("p_adjusted", pa.float64()),
        pa.field("rejected", pa.bool_()),
    ]
)
"""SBC: ECDF uniformity test of the ranks per (n, prior, parameter); p-values Holm-adjusted
over every row."""


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert with exactly ``schema``'s columns, order and types (missing column: error)."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}")
    frame = frame[schema.names].copy()
    for field in schema:
        if pa.types.is_integer(field.type):  # nullable: a failed fit has no diagnostics
            frame[field.name] = pd.array(frame[field.name], dtype="Int64")
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def write_table(frame: pd.DataFrame, path: str | Path, schema: pa.Schema) -> None:
    """Write Parquet atomically: a temporary file in the same folder, then rename."""
    table = to_table(frame, schema)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_atomic(path: str | Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)``, then rename onto ``path``; no partial file is ever left.

    Temporary files of an earlier writer of ``path`` that was killed are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_tables(paths: Iterable[str | Path], schema: pa.Schema) -> pd.DataFrame:
    """Read and concatenate Parquet files that share ``schema``."""
    tables = [pq.read_table(p, schema=schema) for p in paths]
    return pa.concat_tables(tables).to_pandas() if tables else schema.empty_table().to_pandas()
