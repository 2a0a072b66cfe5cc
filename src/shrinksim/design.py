"""The study design: the grid of data and fit cells, batches of replicates, and seeds.

A study is a grid of *fit cells*. Each fit cell is a *data cell* (outcomes per group ``n``,
number of groups, true spread ``tau`` or ``p_sd``) plus a prior on tau and a model. Data
depend on the data cell and replicate only, so every prior and model sees the same data sets.

Every random number comes from :func:`seed_sequence` of the config's ``seed``, a cell's
:attr:`DataCell.key` or :attr:`FitCell.key` and the replicate: results do not depend on job
order, batch size or executor. The keys must never change (they would change every number);
result paths (:attr:`DataCell.path`) are free to.

Every file the workflow writes is defined here once, as a template relative to
:data:`RESULTS` (filled by :func:`result_path`); the rule files and the stages that read
many files use these templates and nothing else. The per-fit tables are Hive-partitioned
datasets: ``results/fits/n_per_group=35/groups=100/tau=0.25/batch=0/part-0.parquet``.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

MODELS = ("partial", "none", "complete")
"""partial pooling (hierarchical), no pooling (independent groups), complete pooling."""

STAN_PROGRAMS = {"partial": "partial_pooling", "none": "no_pooling", "complete": "complete_pooling"}
"""Stan program (file stem in ``stan/``) that fits each model."""

SPREAD_AXES = {"logit_normal": "tau", "probability_normal": "p_sd"}
"""The grid axis that holds the true between-group spread, for each data generator."""

NO_PRIOR = "none"
"""Prior label of models without a between-group sd (no pooling, complete pooling)."""


def _fmt(value: float) -> str:
    return f"{value:g}"


def _fields(key: str) -> dict[str, str]:
    """``{"n": "35", ...}`` of a key ``n~35/groups~100/...``."""
    return dict(part.split("~", 1) for part in key.strip("/").split("/"))


@dataclass(frozen=True)
class DataCell:
    """Where the data come from: outcomes per group, groups, and the true spread."""

    n: int
    groups: int
    spread_axis: str  # "tau" (logit sd) or "p_sd" (probability sd)
    spread: float

    @property
    def key(self) -> str:
        """Seed key, e.g. ``n~35/groups~100/tau~0.25``: must never change."""
        return f"n~{self.n}/groups~{self.groups}/{self.spread_axis}~{_fmt(self.spread)}"

    @classmethod
    def from_key(cls, key: str) -> DataCell:
        """Inverse of :attr:`key`."""
        fields = _fields(key)
        axis = "tau" if "tau" in fields else "p_sd"
        return cls(int(fields["n"]), int(fields["groups"]), axis, float(fields[axis]))

    @property
    def path(self) -> str:
        """Hive partition path, e.g. ``n_per_group=35/groups=100/tau=0.25``."""
        return f"n_per_group={self.n}/groups={self.groups}/{self.spread_axis}={_fmt(self.spread)}"

    @classmethod
    def from_path(cls, path: str) -> DataCell:
        """Inverse of :attr:`path`."""
        fields = dict(part.split("=", 1) for part in path.strip("/").split("/"))
        axis = "tau" if "tau" in fields else "p_sd"
        return cls(int(fields["n_per_group"]), int(fields["groups"]), axis, float(fields[axis]))


@dataclass(frozen=True)
class FitCell:
    """A data cell fitted with one model under one prior on tau."""

    data: DataCell
    prior: str
    model: str

    @property
    def key(self) -> str:
        """Seed key, e.g. ``n~35/groups~100/tau~0.25/prior~weak/model~partial``: must never
        change."""
        return f"{self.data.key}/prior~{self.prior}/model~{self.model}"

    @classmethod
    def from_key(cls, key: str) -> FitCell:
        """Inverse of :attr:`key`."""
        head, prior, model = key.strip("/").rsplit("/", 2)
        return cls(DataCell.from_key(head), prior.split("~", 1)[1], model.split("~", 1)[1])


def data_cells(config: Mapping[str, Any]) -> list[DataCell]:
    """Every data cell of the grid, in grid order."""
    grid = config["grid"]
    axis = SPREAD_AXES[config["simulation"]["generator"]]
    return [
        DataCell(int(n), int(g), axis, float(s))
        for n in grid["n"]
        for g in grid["groups"]
        for s in grid[axis]
    ]


def model_fits(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (prior, model) fits of every data cell: partial pooling once per prior, the
    baselines once (prior ``none``)."""
    fits = []
    for model in config["grid"]["model"]:
        priors = config["grid"]["prior"] if model == "partial" else [NO_PRIOR]
        fits.extend((prior, model) for prior in priors)
    return fits


def fit_cells(config: Mapping[str, Any]) -> list[FitCell]:
    """Every fit cell: each data cell with each of :func:`model_fits`."""
    return [FitCell(data, *fit) for data in data_cells(config) for fit in model_fits(config)]


def batches(count: int, size: int) -> list[list[int]]:
    """Indices ``0 .. count - 1`` split into consecutive jobs of at most ``size``."""
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


def replicate_batches(config: Mapping[str, Any]) -> list[list[int]]:
    """Replicate indices split into fit jobs of at most ``batch_size`` replicates."""
    return batches(int(config["replicates"]), int(config["batch_size"]))


def span(indices: Sequence[int]) -> str:
    """A batch's consecutive indices as ``start:stop``: a command-line argument whose length
    does not grow with the batch."""
    start, stop = indices[0], indices[-1] + 1
    if list(indices) != list(range(start, stop)):
        raise ValueError(f"not consecutive: {list(indices)}")
    return f"{start}:{stop}"


def seed_sequence(seed: int, key: str, replicate: int) -> np.random.SeedSequence:
    """Seed for (``key``, replicate): independent of job order, batch size and executor."""
    words = np.frombuffer(hashlib.sha256(key.encode()).digest()[:16], dtype=np.uint32)
    return np.random.SeedSequence(seed, spawn_key=(*map(int, words), replicate))


def stan_seed(seed: int, key: str, replicate: int) -> int:
    """A Stan ``seed`` (0 <= s < 2**31) for (``key``, replicate)."""
    return int(seed_sequence(seed, "stan:" + key, replicate).generate_state(1)[0] % 2**31)


def n_sd(config: Mapping[str, Any], n: int) -> float:
    """Standard deviation of outcomes per group: absolute, or ``"15%"`` of ``n``."""
    value = config["simulation"]["n_sd"]
    if isinstance(value, str):
        return float(value.rstrip("%")) / 100 * n
    return float(value)


RESULTS = "results"
"""The folder every result path is relative to."""

DATA = "data/{datacell}/batch={batch}/data.parquet"
"""Simulated data sets of one data cell and batch of replicates."""

FIT_TABLES = ("groups", "fits", "draws")
"""The tables of a fit job (schemas GROUPS, FITS, DRAWS of :mod:`shrinksim.tables`)."""

FIT_TABLE = "{table}/{datacell}/batch={batch}/part-0.parquet"
"""One fit job's ``table``: every (prior, model) fit of a data cell's batch. The folder
``results/{table}`` is a Hive-partitioned dataset (partitions n_per_group, groups, tau or
p_sd, batch)."""

COMPILED = "models/{engine}/{program}.json"
"""A compiled Stan program (:class:`shrinksim.engines.CompiledModel`)."""

SUMMARY = "summary/{name}.parquet"
"""The study's single-file tables: ``per_fit``, ``shrinkage``, ``cells``, ``measures``."""

MEASURES_CSV = "summary/measures.csv"
"""CSV copy of the measures table."""

FIGURE = "figures/{name}.{ext}"
"""A figure (``ext`` png or svg)."""

FIGURES = (
    "shrinkage_vs_n",
    "estimate_vs_observed",
    "posterior_densities",
    "tau_posterior",
    "rmse_vs_n",
    "coverage_vs_n",
    "diagnostics",
)
"""The grid study's figures (drawn by :data:`shrinksim.study.plot.FIGURES`)."""

REPORT_PAGE = "report/{name}.html"
"""A page of the report besides the figures (config, software, measures)."""

LOG = "logs/{job}.log"
"""A job's log (``job`` names the rule and its wildcards, e.g. ``fit/{datacell}/batch={batch}``)."""

BENCHMARK = "benchmarks/{job}.tsv"
"""A job's Snakemake benchmark record (wall time, peak RSS)."""

SBC_RANKS = "sbc/ranks/{sbccell}/batch={batch}/part-0.parquet"
"""SBC ranks of one design's batch of simulations (a Hive-partitioned dataset)."""

SBC_TABLE = "sbc/{name}.parquet"
"""SBC's combined tables: ``ranks``, ``tests``."""

USERDATA_DATA = "userdata/data.parquet"
"""The user's data, checked and normalised."""

USERDATA_FIT = "userdata/fit/prior={prior}/model={model}/{table}.parquet"
"""A fit of the user's data (``table`` groups, fits or draws)."""

USERDATA_INFERENCE = "userdata/fit/prior={prior}/model={model}/inference.nc"
"""A fit of the user's data as ArviZ InferenceData (netCDF; :mod:`shrinksim.userdata.inference`):
posterior, sample_stats, observed_data and the per-group log_likelihood, group labels as
coordinates."""

USERDATA_POINTS = "userdata/design/points.parquet"
"""The design-matched study's true (mu, tau) values."""

USERDATA_SIMULATED = "userdata/design/scale={scale}/tau={tauk}/batch={batch}.parquet"
"""Simulated data sets of the design-matched study."""

USERDATA_DESIGN_FIT = (
    "userdata/design/scale={scale}/tau={tauk}/prior={prior}/batch={batch}/{table}.parquet"
)
"""The design-matched fits of one (scale, tau, prior) and batch (``table`` groups or fits)."""

USERDATA_SUMMARY = "userdata/summary/{name}.parquet"
"""Your-data summary tables: groups, fits, design_fits, design_cells, whatif, loo."""

USERDATA_FIGURE = "userdata/figures/{name}"
"""Your-data figures and summary page (``name`` with its suffix)."""

WILDCARDS = {
    "datacell": r"n_per_group=\d+/groups=\d+/(tau|p_sd)=[^/]+",
    "sbccell": r"(family=[a-z_]+/)?n_per_group=\d+/groups=\d+/prior=[^/]+",
    "batch": r"\d+",
    "program": r"[a-z_]+",
    "engine": r"[a-z]+",
    "prior": r"[^/]+",
    "model": "|".join(MODELS),
    "scale": r"[0-9.]+(e[+-]?\d+)?",
    "tauk": r"\d+",
}
"""What each wildcard of the templates may match."""


class _Partial(dict):
    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def result_path(template: str, root: str | Path = RESULTS, **fields: object) -> str:
    """``root/template`` with ``fields`` filled in; every other ``{name}`` stays a wildcard."""
    filled = string.Formatter().vformat(template, (), _Partial(fields))
    return f"{root}/{filled}"


def fit_jobs(config: Mapping[str, Any]) -> list[tuple[DataCell, int]]:
    """Every fit job of the study: (data cell, batch), in grid order."""
    count = len(replicate_batches(config))
    return [(cell, batch) for cell in data_cells(config) for batch in range(count)]


def fit_job_tables(
    config: Mapping[str, Any],
    table: str,
    root: str | Path = RESULTS,
    batches: Iterable[int] | None = None,
) -> list[str]:
    """The ``table`` file of every fit job (or of the jobs of ``batches`` only)."""
    wanted = None if batches is None else set(batches)
    return [
        result_path(FIT_TABLE, root, table=table, datacell=cell.path, batch=batch)
        for cell, batch in fit_jobs(config)
        if wanted is None or batch in wanted
    ]


def results_folder(path: str) -> str:
    """The results folder of a result file's ``path``: the path up to its last component
    named :data:`RESULTS` (a storage plugin may have prefixed it; no template has a folder
    of that name below it)."""
    parts = PurePosixPath(path).parts
    if RESULTS not in parts:
        raise ValueError(f"{path}: not under {RESULTS}/")
    last = len(parts) - 1 - parts[::-1].index(RESULTS)
    return str(PurePosixPath(*parts[: last + 1]))


def userdata_fits(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (prior, model) fits of the user's data: partial pooling under every grid prior,
    then the baselines of the grid."""
    baselines = [m for m in ("none", "complete") if m in config["grid"]["model"]]
    return [(p, "partial") for p in config["grid"]["prior"]] + [(NO_PRIOR, m) for m in baselines]


def userdata_scales(config: Mapping[str, Any]) -> list[str]:
    """The what-if scales as they appear in paths (``1``, ``0.5``)."""
    return [f"{float(s):g}" for s in config["userdata"]["scale"]]


def userdata_design_jobs(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every design-matched fit job: scale, tau index, prior and batch."""
    count = len(batches(int(config["userdata"]["replicates"]), int(config["batch_size"])))
    return [
        {"scale": scale, "tauk": k, "prior": prior, "batch": batch}
        for scale in userdata_scales(config)
        for k in range(len(config["userdata"]["tau_quantiles"]))
        for prior in config["grid"]["prior"]
        for batch in range(count)
    ]


def userdata_fit_files(
    config: Mapping[str, Any], table: str, root: str | Path = RESULTS
) -> list[str]:
    """The ``table`` of every fit of the user's data, in :func:`userdata_fits` order."""
    return [
        result_path(USERDATA_FIT, root, prior=prior, model=model, table=table)
        for prior, model in userdata_fits(config)
    ]


def userdata_inference_files(config: Mapping[str, Any], root: str | Path = RESULTS) -> list[str]:
    """The InferenceData file of every fit of the user's data, in :func:`userdata_fits` order."""
    return [
        result_path(USERDATA_INFERENCE, root, prior=prior, model=model)
        for prior, model in userdata_fits(config)
    ]


def userdata_design_fit_files(
    config: Mapping[str, Any], table: str, root: str | Path = RESULTS
) -> list[str]:
    """The ``table`` of every design-matched fit job, in :func:`userdata_design_jobs` order."""
    return [
        result_path(USERDATA_DESIGN_FIT, root, table=table, **job)
        for job in userdata_design_jobs(config)
    ]
