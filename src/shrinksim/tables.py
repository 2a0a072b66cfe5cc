"""Explicit Parquet schemas of every intermediate table, and atomic writing. :func:`field` and
:func:`named_schema` put the descriptions of :mod:`shrinksim.columns` into the schemas'
metadata, so they travel inside every Parquet file (docs/results.md lists them)."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shrinksim.columns import describe, describe_table


def field(name: str, type_: pa.DataType, table: str | None = None) -> pa.Field:
    """Column ``name`` with its description in the metadata (``table``: the description of
    ``TABLE.name`` if there is one); :class:`shrinksim.columns.MissingDescription` if none."""
    return pa.field(name, type_, metadata={"description": describe(name, table)})


def named_schema(name: str, fields: Iterable[pa.Field]) -> pa.Schema:
    """Schema of table ``name``, with its name and description in the metadata."""
    return pa.schema(fields, metadata={"name": name, "description": describe_table(name)})


CELL_FIELDS = [
    field("n_per_group", pa.int32()),
    field("groups", pa.int32()),
    field("spread_axis", pa.string()),
    field("spread", pa.float64()),
    field("prior", pa.string()),
    field("model", pa.string()),
]
"""The fit cell, on every row of fit and summary tables."""

_QUANTITY = ("mean", "sd", "median", "q025", "q05", "q25", "q75", "q95", "q975")
"""Posterior summaries per quantity; ``qXX`` is the XX % quantile (q025: 2.5 %)."""


def _summary_fields(prefix: str, quantities: Iterable[str] = _QUANTITY) -> list[pa.Field]:
    return [field(f"{prefix}_{q}", pa.float64()) for q in quantities]


DATA = named_schema(
    "DATA",
    [
        field("replicate", pa.int32()),
        field("group", pa.int32()),
        field("is_control", pa.bool_()),
        field("n", pa.int32()),
        field("y", pa.int32()),
        field("exposure", pa.float64()),
        *(field(name, pa.float64(), "DATA") for name in ("mean", "sd", "estimate", "se")),
        field("true_p", pa.float64()),
        field("true_logit", pa.float64()),
    ],
)

GROUPS = named_schema(
    "GROUPS",
    [
        *CELL_FIELDS,
        *DATA,
        field("obs_p", pa.float64()),
        field("obs_logit", pa.float64()),
        *_summary_fields("theta"),
        *_summary_fields("p"),
    ],
)

_EXTREMES = (("rhat", "max"), ("ess_bulk", "min"), ("ess_tail", "min"))
_BY_PART = [f"{q}_{part}_{end}" for part in ("hyper", "groups") for q, end in _EXTREMES]
"""R-hat maxima and ESS minima over the hyperparameters and over the group effects."""

FITS = named_schema(
    "FITS",
    [
        *CELL_FIELDS,
        field("replicate", pa.int32()),
        field("status", pa.string()),
        field("message", pa.string()),
        field("attempts", pa.int32()),
        field("adapt_delta", pa.float64()),
        field("seed", pa.int64()),
        field("attempts_log", pa.string()),
        field("engine", pa.string()),
        *_summary_fields("mu"),
        *_summary_fields("tau"),
        *_summary_fields("sigma"),
        field("divergences", pa.int32()),
        field("treedepth_hits", pa.int32()),
        field("ebfmi_min", pa.float64()),
        field("rhat_max", pa.float64()),
        field("ess_bulk_min", pa.float64()),
        field("ess_tail_min", pa.float64()),
        *(field(name, pa.float64()) for name in _BY_PART),
        field("sampling_seconds", pa.float64()),
    ],
)

DRAWS = named_schema(
    "DRAWS",
    [
        *CELL_FIELDS,
        field("replicate", pa.int32()),
        field("group", pa.int32()),
        field("draw", pa.int32()),
        field("p", pa.float32()),
    ],
)

SHRINKAGE = named_schema(
    "SHRINKAGE",
    [
        *CELL_FIELDS,
        field("replicate", pa.int32()),
        field("status", pa.string()),
        field("shrinkage", pa.float64()),
        field("shrinkage_ratio", pa.float64()),
        field("shrinkage_theory", pa.float64()),
        field("tau_mean", pa.float64()),
    ],
)

PER_FIT = named_schema(
    "PER_FIT",
    [
        *(
            FITS.field(name)
            for name in (
                *(f.name for f in CELL_FIELDS),
                "replicate",
                "status",
                "engine",
                "tau_mean",
                *(f"tau_{q}" for q in ("q025", "q05", "q25", "q75", "q95", "q975")),
                "divergences",
                "ebfmi_min",
                "rhat_max",
                "ess_bulk_min",
                "ess_tail_min",
                *_BY_PART,
                "sampling_seconds",
            )
        ),
        field("shrinkage", pa.float64()),
        field("shrinkage_ratio", pa.float64()),
        field("squared_error", pa.float64()),
        field("absolute_error", pa.float64()),
        field("rank_correlation", pa.float64()),
        *(
            field(f"{what}_{level}", pa.float64())
            for level in ("0.5", "0.9", "0.95")
            for what in ("coverage", "width")
        ),
        field("shrinkage_theory", pa.float64()),
    ],
)

CELLS = named_schema(
    "CELLS",
    [
        *CELL_FIELDS,
        field("fits", pa.int32()),
        field("fits_ok", pa.int32()),
        field("shrinkage_mean", pa.float64()),
        field("shrinkage_mcse", pa.float64()),
        field("shrinkage_theory", pa.float64()),
        field("tau_mean", pa.float64(), "CELLS"),
    ],
)

MEASURES = named_schema(
    "MEASURES",
    [
        *CELL_FIELDS,
        field("true_tau", pa.float64()),
        field("target", pa.string()),
        field("measure", pa.string()),
        field("level", pa.float64()),
        field("value", pa.float64()),
        field("mcse", pa.float64()),
        field("reference", pa.float64()),
        field("replicates", pa.int32()),
    ],
)

SBC_CELL_FIELDS = [
    field("family", pa.string()),
    field("n_per_group", pa.int32()),
    field("groups", pa.int32()),
    field("prior", pa.string()),
]
"""The SBC design, on every row of the calibration tables."""

SBC_RANKS = named_schema(
    "SBC_RANKS",
    [
        *SBC_CELL_FIELDS,
        field("simulation", pa.int32()),
        field("parameter", pa.string()),
        field("true_value", pa.float64()),
        field("rank", pa.int32()),
        field("thinned_draws", pa.int32()),
        field("posterior_mean", pa.float64()),
        field("posterior_sd", pa.float64()),
        field("status", pa.string()),
        field("message", pa.string()),
        field("divergences", pa.int32()),
        *(field(name, pa.float64(), "SBC_RANKS") for name in ("rhat_max", "ess_bulk_min")),
        field("ess_tail_min", pa.float64(), "SBC_RANKS"),
        field("sampling_seconds", pa.float64()),
    ],
)

SBC_TESTS = named_schema(
    "SBC_TESTS",
    [
        *SBC_CELL_FIELDS,
        field("parameter", pa.string()),
        field("simulations", pa.int32()),
        field("ranked", pa.int32()),
        field("errors", pa.int32()),
        field("divergent", pa.int32()),
        field("ess_below_thinned", pa.int32()),
        field("thinned_draws", pa.int32()),
        field("statistic", pa.float64()),
        field("p_value", pa.float64()),
        field("p_adjusted", pa.float64()),
        field("rejected", pa.bool_()),
    ],
)

# --- your data (shrinksim.userdata) --------------------------------------------------------

_USER_QUANTITY = ("mean", "sd", "median", "q025", "q975")
"""Posterior summaries per group of a fit of the user's data."""

USER_DATA = named_schema(
    "USER_DATA",
    [
        *(field(name, pa.string(), "USER_DATA") for name in ("group", "family")),
        field("is_control", pa.bool_()),
        *map(DATA.field, ("n", "y", "exposure", "mean", "sd", "estimate", "se")),
    ],
)

USER_GROUPS = named_schema(
    "USER_GROUPS",
    [
        field("prior", pa.string()),
        field("model", pa.string()),
        *USER_DATA,
        field("obs_p", pa.float64()),
        field("obs_logit", pa.float64()),
        *_summary_fields("theta", _USER_QUANTITY),
        *_summary_fields("p", _USER_QUANTITY),
        field("shrink_ratio", pa.float64()),
        field("shrinkage_normal", pa.float64()),
    ],
)

USER_FITS = named_schema(
    "USER_FITS",
    [
        field("prior", pa.string()),
        field("model", pa.string()),
        field("groups", pa.int32(), "USER_FITS"),
        field("outcomes", pa.int64()),
        *[f for f in FITS if f.name not in {c.name for c in CELL_FIELDS} | {"replicate"}],
        field("shrinkage", pa.float64()),
        field("shrinkage_ratio", pa.float64()),
    ],
)

DESIGN_FITS = named_schema(
    "DESIGN_FITS",
    [
        field("scale", pa.float64()),
        field("tau_index", pa.int32()),
        field("quantile", pa.float64()),
        field("tau", pa.float64()),
        field("prior", pa.string()),
        field("replicate", pa.int32()),
        field("n_mean", pa.float64()),
        field("status", pa.string()),
        field("tau_mean", pa.float64()),
        field("shrinkage", pa.float64()),
        field("shrinkage_ratio", pa.float64()),
        field("shrinkage_theory", pa.float64()),
        field("rmse_posterior", pa.float64()),
        field("rmse_observed", pa.float64()),
        field("coverage95", pa.float64()),
    ],
)

DESIGN_CELLS = named_schema(
    "DESIGN_CELLS",
    [
        *map(DESIGN_FITS.field, ("scale", "tau_index", "quantile", "tau", "prior", "n_mean")),
        *(field(name, pa.int32()) for name in ("fits", "fits_ok")),
        *(field(name, pa.float64()) for name in ("shrinkage_mean", "shrinkage_mcse")),
        DESIGN_FITS.field("shrinkage_theory"),
        *(field(n, pa.float64(), "DESIGN_CELLS") for n in DESIGN_FITS.names[-3:]),  # rmse, coverage
    ],
)

WHATIF = named_schema(
    "WHATIF",
    [
        *map(DESIGN_FITS.field, ("prior", "tau_index", "quantile", "tau")),
        field("target", pa.float64(), "WHATIF"),
        field("n_now", pa.float64()),
        field("n_simulated", pa.float64()),
        field("n_simulated_how", pa.string()),
        field("n_theory", pa.float64()),
    ],
)

USER_LOO = named_schema(
    "USER_LOO",
    [
        *(field(name, pa.string(), "USER_LOO") for name in ("prior", "model", "status")),
        field("rank", pa.int32(), "USER_LOO"),
        *(field(n, pa.float64()) for n in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse")),
        *(field(name, pa.float64()) for name in ("weight", "pareto_k_max")),
        *(field(name, pa.int32(), "USER_LOO") for name in ("pareto_k_high", "groups")),
        field("warning", pa.string()),
    ],
)

# --- end of your data ----------------------------------------------------------------------


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert with exactly ``schema``'s columns, order and types (missing column: error)."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}")
    frame = frame[schema.names].copy()
    for column in schema:
        if pa.types.is_integer(column.type):  # nullable: a failed fit has no diagnostics
            frame[column.name] = pd.array(frame[column.name], dtype="Int64")
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


def concat(frames: Iterable[pd.DataFrame], schema: pa.Schema) -> pd.DataFrame:
    """Concatenate frames of one schema, leaving out empty ones (an empty table if all are)."""
    kept = [frame for frame in frames if len(frame)]
    return pd.concat(kept, ignore_index=True) if kept else schema.empty_table().to_pandas()


def read_tables(
    paths: Iterable[str | Path],
    schema: pa.Schema,
    columns: Sequence[str] | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
) -> pd.DataFrame:
    """Read and concatenate Parquet files that share ``schema``; only ``columns`` (default:
    all) of the rows that pass ``filters`` (pyarrow's DNF, e.g. ``[("replicate", "<", 20)]``)."""
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    parts = [pq.read_table(p, schema=schema, columns=columns, filters=filters) for p in paths]
    return pa.concat_tables(parts).to_pandas() if parts else schema.empty_table().to_pandas()
