"""Explicit Parquet schemas of every intermediate table, and atomic writing."""

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


def _summary_fields(prefix: str, quantities: Iterable[str] = _QUANTITY) -> list[pa.Field]:
    return [pa.field(f"{prefix}_{q}", pa.float64()) for q in quantities]


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

_EXTREMES = (("rhat", "max"), ("ess_bulk", "min"), ("ess_tail", "min"))
_BY_PART = [f"{q}_{part}_{end}" for part in ("hyper", "groups") for q, end in _EXTREMES]
"""R-hat maxima and ESS minima over the hyperparameters and over the group effects."""

FITS = pa.schema(
    [
        *CELL_FIELDS,
        pa.field("replicate", pa.int32()),
        pa.field("status", pa.string()),
        pa.field("message", pa.string()),
        pa.field("attempts", pa.int32()),
        pa.field("adapt_delta", pa.float64()),
        pa.field("seed", pa.int64()),
        pa.field("attempts_log", pa.string()),
        pa.field("engine", pa.string()),
        *_summary_fields("mu"),
        *_summary_fields("tau"),
        pa.field("divergences", pa.int32()),
        pa.field("treedepth_hits", pa.int32()),
        pa.field("ebfmi_min", pa.float64()),
        pa.field("rhat_max", pa.float64()),
        pa.field("ess_bulk_min", pa.float64()),
        pa.field("ess_tail_min", pa.float64()),
        *(pa.field(name, pa.float64()) for name in _BY_PART),
        pa.field("sampling_seconds", pa.float64()),
    ]
)
"""One row per fit (:func:`shrinksim.fitting.fit_replicate`): status, mu and tau summaries, raw
diagnostics (``diagnose``), every attempt in ``attempts_log`` (``seed``: the last one's)."""


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
fit job (see :func:`shrinksim.study.fit.thinned_draws`); empty for the other models."""

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
"""Shrinkage of one fit (see :mod:`shrinksim.shrinkage` for the definitions)."""

PER_FIT = pa.schema(
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
        pa.field("shrinkage", pa.float64()),
        pa.field("shrinkage_ratio", pa.float64()),
        pa.field("squared_error", pa.float64()),
        pa.field("absolute_error", pa.float64()),
        pa.field("rank_correlation", pa.float64()),
        *(
            pa.field(f"{what}_{level}", pa.float64())
            for level in ("0.5", "0.9", "0.95")
            for what in ("coverage", "width")
        ),
        pa.field("shrinkage_theory", pa.float64()),
    ]
)
"""One row per fit, everything the measures and the tau figure need: the fit's status,
engine, tau summaries and diagnostics (from FITS), its shrinkage, and the errors of its
group estimates (mean squared and absolute error, rank correlation with the truth, coverage
and width of the 50/90/95 % intervals; treatment groups, log-odds). See
:mod:`shrinksim.study.summarize`."""

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
"""Performance measures per fit cell, one row per (cell, target, measure, level), with MCSE,
the value to compare with (``reference``: truth, nominal coverage, normal approximation) and
the replicates used; diagnostics rows: ``level`` = the flag's threshold. docs/measures.md."""

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

# --- your data (shrinksim.userdata) --------------------------------------------------------

_USER_QUANTITY = ("mean", "sd", "median", "q025", "q975")
"""Posterior summaries per group of a fit of the user's data."""

USER_DATA = pa.schema(
    [
        pa.field("group", pa.string()),
        pa.field("is_control", pa.bool_()),
        pa.field("n", pa.int32()),
        pa.field("y", pa.int32()),
    ]
)
"""The user's data, one row per group (``y`` = successes)."""

USER_GROUPS = pa.schema(
    [
        pa.field("prior", pa.string()),
        pa.field("model", pa.string()),
        *USER_DATA,
        pa.field("obs_p", pa.float64()),
        pa.field("obs_logit", pa.float64()),
        *_summary_fields("theta", _USER_QUANTITY),
        *_summary_fields("p", _USER_QUANTITY),
        pa.field("shrink_ratio", pa.float64()),
        pa.field("shrinkage_normal", pa.float64()),
    ]
)
"""Every group of every fit of the user's data: data, posterior summaries, and how far it
moved: ``shrink_ratio`` = (observed - posterior mean) / (observed - pooled) on the log-odds
scale, ``shrinkage_normal`` = the normal approximation s2 / (s2 + tau^2) at its own n, with
s2 = 1 / (n p (1 - p)), p = expit(median mu), tau = median tau (partial pooling only)."""

USER_FITS = pa.schema(
    [
        pa.field("prior", pa.string()),
        pa.field("model", pa.string()),
        pa.field("groups", pa.int32()),
        pa.field("outcomes", pa.int64()),
        *[f for f in FITS if f.name not in {c.name for c in CELL_FIELDS} | {"replicate"}],
        pa.field("shrinkage", pa.float64()),
        pa.field("shrinkage_ratio", pa.float64()),
    ]
)
"""One row per fit of the user's data: status, mu and tau summaries, diagnostics, and the
shrinkage factor and ratio of :mod:`shrinksim.shrinkage`."""

DESIGN_FITS = pa.schema(
    [
        pa.field("scale", pa.float64()),
        pa.field("tau_index", pa.int32()),
        pa.field("quantile", pa.float64()),
        pa.field("tau", pa.float64()),
        pa.field("prior", pa.string()),
        pa.field("replicate", pa.int32()),
        pa.field("n_mean", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("tau_mean", pa.float64()),
        pa.field("shrinkage", pa.float64()),
        pa.field("shrinkage_ratio", pa.float64()),
        pa.field("shrinkage_theory", pa.float64()),
        pa.field("rmse_posterior", pa.float64()),
        pa.field("rmse_observed", pa.float64()),
        pa.field("coverage95", pa.float64()),
    ]
)
"""One row per design-matched fit of the user's design: shrinkage (:mod:`shrinksim.shrinkage`
definitions, theory at the mean size) and recovery of the true group effects."""

DESIGN_CELLS = pa.schema(
    [
        pa.field("scale", pa.float64()),
        pa.field("tau_index", pa.int32()),
        pa.field("quantile", pa.float64()),
        pa.field("tau", pa.float64()),
        pa.field("prior", pa.string()),
        pa.field("n_mean", pa.float64()),
        pa.field("fits", pa.int32()),
        pa.field("fits_ok", pa.int32()),
        pa.field("shrinkage_mean", pa.float64()),
        pa.field("shrinkage_mcse", pa.float64()),
        pa.field("shrinkage_theory", pa.float64()),
        pa.field("rmse_posterior", pa.float64()),
        pa.field("rmse_observed", pa.float64()),
        pa.field("coverage95", pa.float64()),
    ]
)
"""Design-matched shrinkage per (scale, tau, prior): mean over replicates with MCSE."""

WHATIF = pa.schema(
    [
        pa.field("prior", pa.string()),
        pa.field("tau_index", pa.int32()),
        pa.field("quantile", pa.float64()),
        pa.field("tau", pa.float64()),
        pa.field("target", pa.float64()),
        pa.field("n_now", pa.float64()),
        pa.field("n_simulated", pa.float64()),
        pa.field("n_simulated_how", pa.string()),
        pa.field("n_theory", pa.float64()),
    ]
)
"""What-if answer: mean outcomes per treatment group at which shrinkage falls to ``target``:
interpolated from the simulated designs (``n_simulated_how``: interpolated, at most, not
reached; see :func:`shrinksim.userdata.design.n_for_shrinkage_simulated`) and from the normal
approximation; ``n_now`` is the user's mean size."""

# --- end of your data ----------------------------------------------------------------------


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
