"""Fitting jobs of the grid study: one fit cell and a batch of replicates per process.

Each replicate is fitted by :func:`shrinksim.fitting.fit_replicate` (retries, failures kept
as rows); the job also keeps thinned posterior draws of its first replicate for the
posterior-densities figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from shrinksim import tables
from shrinksim.design import FitCell, seed_sequence
from shrinksim.engines import CompiledModel, Draws, Engine
from shrinksim.families import study_family
from shrinksim.fitting import fit_replicate
from shrinksim.log import logger

DRAW_GROUPS = 12
"""Treatment groups whose thinned posterior draws are kept (first replicate of a partial fit job)."""

DRAWS_KEPT = 200
"""Thinned draws kept per group: evenly spaced over the pooled chains."""


class FitBatch(NamedTuple):
    """The tables of one fit job (schemas GROUPS, FITS and DRAWS of :mod:`shrinksim.tables`)."""

    groups: pd.DataFrame
    fits: pd.DataFrame
    draws: pd.DataFrame


def thinned_draws(
    theta: np.ndarray,
    groups: pd.DataFrame,
    seed: int,
    cell: FitCell,
    replicate: int,
    natural: Callable[[np.ndarray], np.ndarray],
) -> pd.DataFrame:
    """Draws of ``natural(theta)`` (p for binomial) for :data:`DRAW_GROUPS` random treatment
    groups, thinned to
    :data:`DRAWS_KEPT` evenly spaced draws of the pooled chains; long format.

    The groups depend on the data cell and replicate only, so every prior shows the same ones.
    """
    rng = np.random.default_rng(seed_sequence(seed, "draws:" + cell.data.key, replicate))
    treatment = np.flatnonzero(~groups["is_control"].to_numpy())
    chosen = np.sort(rng.choice(treatment, min(DRAW_GROUPS, treatment.size), replace=False))
    pooled = theta.reshape(-1, theta.shape[-1])
    rows = np.unique(np.linspace(0, len(pooled) - 1, min(DRAWS_KEPT, len(pooled))).round())
    p = natural(pooled[rows.astype(int)][:, chosen]).astype(np.float32)
    return pd.DataFrame(
        {
            "replicate": replicate,
            "group": np.tile(groups["group"].to_numpy()[chosen], len(rows)),
            "draw": np.repeat(np.arange(len(rows)), len(chosen)),
            "p": p.ravel(),
        }
    )


def fit_batch(
    engine: Engine,
    compiled: CompiledModel,
    cell: FitCell,
    data: pd.DataFrame,
    settings: Mapping[str, Any],
    progress: Callable[[str], None] = logger.info,
    key: str | None = None,
) -> FitBatch:
    """Fit every replicate in ``data``: group summaries, one row per fit, and thinned draws
    of the first replicate (partial pooling only; other models give an empty draws table).

    Stan seeds derive from (``key``, replicate), ``key`` defaulting to the cell's seed key.
    """
    cell_columns = {
        "n_per_group": cell.data.n,
        "groups": cell.data.groups,
        "spread_axis": cell.data.spread_axis,
        "spread": cell.data.spread,
        "prior": cell.prior,
        "model": cell.model,
    }
    natural = study_family(settings).natural
    summaries, rows, kept = [], [], []
    replicates = sorted(data["replicate"].unique())
    for i, replicate in enumerate(replicates, start=1):
        start = time.perf_counter()
        groups = data[data["replicate"] == replicate].reset_index(drop=True)
        keep = cell.model == "partial" and i == 1

        def keep_thinned(
            _: Draws, theta: np.ndarray, groups: pd.DataFrame = groups, rep: int = int(replicate)
        ) -> None:
            kept.append(thinned_draws(theta, groups, int(settings["seed"]), cell, rep, natural))

        summary, row = fit_replicate(
            engine,
            compiled,
            cell,
            groups,
            settings,
            int(replicate),
            key,
            keep_thinned if keep else None,
            log_lik=False,  # the study needs no log-likelihood: Stan writes none
        )
        if summary is not None:
            summaries.append(summary)
        rows.append(row)
        progress(
            f"{cell.key} replicate {replicate} ({i}/{len(replicates)}): {row['status']} "
            f"after {row['attempts']} attempt(s), {time.perf_counter() - start:.1f} s"
        )
    groups_out = (
        pd.concat(summaries, ignore_index=True)
        if summaries
        else tables.GROUPS.empty_table().to_pandas()
    )
    fits_out = pd.DataFrame(rows).reindex(columns=tables.FITS.names)
    draws_out = (
        pd.concat(kept, ignore_index=True) if kept else tables.DRAWS.empty_table().to_pandas()
    )
    return FitBatch(
        groups_out.assign(**cell_columns),
        fits_out.assign(**cell_columns),
        draws_out.assign(**cell_columns),
    )
