"""The reduce of the grid study: fit jobs' tables -> one row per fit -> cells.

Every number downstream (per-fit shrinkage, cells, measures, the tau figure) is a function of
one row per fit, so the study is reduced one fit job at a time (:func:`reduce_jobs`): a job's
groups table (a row per group of every fit) never meets another job's, and memory holds only
the per-fit rows. The arithmetic per fit (:func:`shrinkage_values`, :func:`group_errors`)
is the same whatever the batching, on the same values in the same order, so the numbers do
not depend on how the fits are batched (and equal :func:`shrinkage_per_fit`'s). The shrinkage measures are those of
:mod:`shrinksim.shrinkage`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shrinksim import tables
from shrinksim.families import OutcomeFamily
from shrinksim.shrinkage import CELL, FIT_KEY, fit_shrinkage, pooled_logit, shrinkage_values
from shrinksim.study.measures import LEVELS
from shrinksim.study.outcome import StudyOutcome

_BOUNDS = sorted({q for bounds in LEVELS.values() for q in bounds})

GROUP_COLUMNS = [
    *FIT_KEY,
    "is_control",
    "true_logit",
    "obs_logit",
    "theta_mean",
    *(f"theta_{q}" for q in _BOUNDS),
]
"""Columns of a job's groups table that the reduce reads, besides the family's own
(:func:`group_columns`)."""


def group_columns(family: OutcomeFamily) -> list[str]:
    """:data:`GROUP_COLUMNS` and the family's data columns (no pooling's pooled estimate)."""
    return [*GROUP_COLUMNS, *family.columns]


FIT_COLUMNS = [name for name in tables.PER_FIT.names if name in tables.FITS.names] + ["mu_mean"]
"""Columns of a job's fits table that the reduce reads: those the per-fit table keeps, and mu."""

ERRORS = ["squared_error", "absolute_error", "rank_correlation"] + [
    f"{what}_{level}" for level in LEVELS for what in ("coverage", "width")
]
"""Per-fit errors of the group estimates (log-odds scale, treatment groups only)."""


def shrinkage_per_fit(
    groups: pd.DataFrame, fits: pd.DataFrame, outcome: StudyOutcome
) -> pd.DataFrame:
    """One row per fit with both shrinkage measures and the theory value."""
    with_mu = groups.merge(fits[[*FIT_KEY, "mu_mean"]], on=FIT_KEY, how="left")
    measured = (
        with_mu.groupby(FIT_KEY, sort=True)[with_mu.columns.drop(FIT_KEY)]
        .apply(fit_shrinkage, family=outcome.family)
        .reset_index()
    )
    out = fits[[*FIT_KEY, "status", "tau_mean"]].merge(measured, on=FIT_KEY, how="left")
    tau = [
        outcome.implied_tau(a, s) for a, s in zip(out["spread_axis"], out["spread"], strict=True)
    ]
    out["shrinkage_theory"] = outcome.theory(out["n_per_group"], tau)
    return out.sort_values(FIT_KEY, ignore_index=True)


def shrinkage_per_cell(per_fit: pd.DataFrame) -> pd.DataFrame:
    """Mean shrinkage per cell over replicates, with MCSE = sd / sqrt(R) (fits with estimates)."""

    def reduce(cell: pd.DataFrame) -> pd.Series:
        ok = cell["shrinkage"].dropna()
        mcse = ok.std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan
        return pd.Series(
            {
                "fits": len(cell),
                "fits_ok": int((cell["status"] == "ok").sum()),
                "shrinkage_mean": ok.mean() if len(ok) else np.nan,
                "shrinkage_mcse": mcse,
                "shrinkage_theory": cell["shrinkage_theory"].iloc[0],
                "tau_mean": cell["tau_mean"].mean(),
            }
        )

    return per_fit.groupby(CELL, sort=True)[per_fit.columns.drop(CELL)].apply(reduce).reset_index()


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (``scipy.stats.rankdata``'s default, with
    the same arithmetic, without its per-call overhead: the reduce ranks twice per fit)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    first = np.empty(len(x), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    dense = first.cumsum()
    bounds = np.append(first.nonzero()[0], len(x))
    ranks = np.empty(len(x))
    ranks[order] = 0.5 * (bounds[dense] + bounds[dense - 1] + 1)
    return ranks


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation (average ranks); NaN if either side is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return np.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _mean(x: np.ndarray) -> float:
    """``np.mean(x)`` (the same sum divided by the same count) without its per-call overhead."""
    return x.sum(dtype=float) / x.size


def group_errors(truth: np.ndarray, estimate: np.ndarray, bounds: dict[str, np.ndarray]) -> list:
    """:data:`ERRORS` of one fit's treatment groups; ``bounds`` maps ``theta_qXX`` to values."""
    error = estimate - truth
    row = [_mean(error**2), _mean(np.abs(error)), rank_correlation(estimate, truth)]
    for lo, hi in LEVELS.values():
        low, high = bounds[f"theta_{lo}"], bounds[f"theta_{hi}"]
        row += [_mean((low <= truth) & (truth <= high)), _mean(high - low)]
    return row


def _read_fits(path: str) -> pd.DataFrame:
    """:data:`FIT_COLUMNS` of a job's fits table; a column that the table lacks (written
    before the column existed) is read as nulls, so older results can still be reduced."""
    have = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[name for name in FIT_COLUMNS if name in have])
    for name in FIT_COLUMNS:
        if name not in have:
            table = table.append_column(
                tables.FITS.field(name), pa.nulls(len(table), tables.FITS.field(name).type)
            )
    return table.select(FIT_COLUMNS).to_pandas()


def reduce_job(groups_path: str, fits_path: str, family: OutcomeFamily) -> pd.DataFrame:
    """One row per fit of one fit job: its fit row (:data:`FIT_COLUMNS` but ``mu_mean``),
    ``shrinkage``, ``shrinkage_ratio`` and :data:`ERRORS` (NaN for a fit without estimates)."""
    columns = group_columns(family)
    groups = pq.read_table(groups_path, columns=columns).to_pandas()
    fits = _read_fits(fits_path)
    rows_of = groups.groupby(FIT_KEY, sort=False).indices if len(groups) else {}
    column = {name: groups[name].to_numpy() for name in columns[len(FIT_KEY) :]}
    bounds = [f"theta_{q}" for q in _BOUNDS]
    values = []
    for key, mu_mean in zip(
        fits[FIT_KEY].itertuples(index=False, name=None), fits["mu_mean"], strict=True
    ):
        rows = rows_of.get(key)
        if rows is None:  # the sampler failed: no estimates
            values.append([np.nan] * (2 + len(ERRORS)))
            continue
        fit = {name: array[rows] for name, array in column.items()}
        shrinkage = shrinkage_values(
            fit["is_control"],
            fit["obs_logit"],
            fit["theta_mean"],
            pooled_logit(fit, mu_mean, family),
        )
        treat = ~fit["is_control"]
        errors = group_errors(
            fit["true_logit"][treat],
            fit["theta_mean"][treat],
            {name: fit[name][treat] for name in bounds},
        )
        values.append([*shrinkage, *errors])
    measured = pd.DataFrame(values, columns=["shrinkage", "shrinkage_ratio", *ERRORS])
    return pd.concat([fits.drop(columns="mu_mean"), measured], axis=1)


def _reduce_job(job: tuple[str, str, OutcomeFamily]) -> pd.DataFrame:
    return reduce_job(*job)


def reduce_jobs(
    jobs: Sequence[tuple[str, str]], outcome: StudyOutcome, workers: int = 1
) -> pd.DataFrame:
    """The per-fit table (schema PER_FIT) of every job's (groups, fits) files, sorted by fit;
    jobs are read by ``workers`` processes."""
    family = outcome.family
    jobs = [(str(groups), str(fits), family) for groups, fits in jobs]
    if workers > 1 and len(jobs) > 1:
        chunk = max(1, len(jobs) // (16 * workers))
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_reduce_job, jobs, chunksize=chunk))
    else:
        parts = [_reduce_job(job) for job in jobs]
    per_fit = pd.concat(parts, ignore_index=True).sort_values(FIT_KEY, ignore_index=True)
    spread = per_fit["spread"].to_numpy(float)
    tau = np.where(per_fit["spread_axis"] == "tau", spread, outcome.implied_tau("p_sd", spread))
    return per_fit.assign(shrinkage_theory=outcome.theory(per_fit["n_per_group"], tau))


def example_groups(paths: Sequence[str]) -> pd.DataFrame:
    """The groups rows of each file's first replicate (the figures' examples)."""
    parts = []
    for path in paths:
        groups = tables.read_tables([path], tables.GROUPS)
        parts.append(groups[groups["replicate"] == groups["replicate"].min()])
    return pd.concat(parts, ignore_index=True) if parts else tables.read_tables([], tables.GROUPS)
