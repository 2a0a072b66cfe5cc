"""Part 8 of ``make bench`` (:mod:`shrinksim.bench.peer`): its timed jobs' records, and the
tables and lines it prints from them."""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shrinksim.bench import agreement

LOADED = 1.5
"""Load average per core above which the printed seconds carry a warning."""


@dataclass
class Job:
    """One timed child process: wall and CPU seconds (its process tree), the 1-minute load
    average when it started, and what it saved."""

    side: str
    fits: int
    seconds: float
    cpu: float
    load: float
    sampling: list[float]
    leapfrog: list[float] = field(default_factory=list)
    sampling_cpu: list[float] = field(default_factory=list)  # process CPU of each fit's call
    divergences: int = 0
    draws: list[dict[str, np.ndarray]] = field(default_factory=list)
    imports: float = float("nan")
    compile: float = float("nan")


# -- summaries ------------------------------------------------------------------------------


def fit_agreement(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Largest |mean difference| in joint MCSEs of two fits of one data set: of mu, of tau,
    and over every theta (draws (chains, draws) and (chains, draws, groups))."""
    thetas = [
        agreement(a["theta"][..., g], b["theta"][..., g]) for g in range(a["theta"].shape[-1])
    ]
    return {
        "mu": agreement(a["mu"], b["mu"]),
        "tau": agreement(a["tau"], b["tau"]),
        "theta": max(thetas),
    }


def ess_per_second(job: Job, name: str) -> float:
    """Bulk ESS of ``name`` (mu or tau) of the job's single fit per sampling second."""
    from shrinksim.diagnostics import ess_bulk

    return float(ess_bulk(job.draws[0][name])) / job.sampling[0]


def cost_line(jobs: Sequence[Job], what: str = "seconds") -> tuple[float, float]:
    """Fixed cost per job and cost per fit: least squares of job wall (``what="cpu"``: CPU)
    seconds on fits per job."""
    fits = np.array([j.fits for j in jobs], float)
    seconds = np.array([getattr(j, what) for j in jobs], float)
    if len(set(fits)) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(fits, seconds, 1)
    return float(intercept), float(slope)


def load_note(jobs: Sequence[Job]) -> str:
    """The load averages the jobs started under, with a warning when the machine is busy."""
    loads = [j.load for j in jobs]
    cores = os.cpu_count() or 1
    text = f"load average at job start {min(loads):.1f}-{max(loads):.1f} on {cores} cores"
    if max(loads) > LOADED * cores:
        text += (
            " -- LOADED machine: every second is inflated (and ESS/s deflated) by an unknown, "
            "varying factor; compare the sides of one run (interleaved), not these seconds "
            "with other runs'"
        )
    return text


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


SINGLE_COLUMNS = {
    "sampling s": lambda j: j.sampling[0],
    "sampling CPU s": lambda j: j.sampling_cpu[0],
    "ESS/s tau": lambda j: ess_per_second(j, "tau"),
    "ESS/s mu": lambda j: ess_per_second(j, "mu"),
    "leapfrog/iter": lambda j: j.leapfrog[0],
    "job s": lambda j: j.seconds,
    "job CPU s": lambda j: j.cpu,
}
"""The one-fit-per-job table's columns: each a job's value (the median over jobs is shown)."""


def single_rows(sides: Mapping[str, Sequence[Job]]) -> dict[str, dict[str, float]]:
    """Per side, the median over its one-fit jobs of every :data:`SINGLE_COLUMNS` column."""
    return {
        side: {name: median([value(j) for j in jobs]) for name, value in SINGLE_COLUMNS.items()}
        for side, jobs in sides.items()
    }


def batch_rows(jobs: Sequence[Job]) -> dict[int, dict[str, float]]:
    """Per k (fits per job), the medians of each side's job wall and CPU seconds per fit."""
    rows = {}
    for k in sorted({j.fits for j in jobs}):
        rows[k] = {
            f"{side} {what}": median(
                [getattr(j, attr) / k for j in jobs if j.fits == k and j.side == side]
            )
            for side in ("pystan", "peer")
            for what, attr in (("s/fit", "seconds"), ("CPU s/fit", "cpu"))
        }
    return rows


def print_table(rows: Mapping[Any, Mapping[str, float]], first: str, ratios: Sequence[str]) -> None:
    """``rows`` (label: column: value) as a table, ``first`` heading the labels; then a line
    for each of ``ratios``, ``"a / b"``: row a over row b, column by column."""
    names = list(next(iter(rows.values())))
    width = max(len(first), *(len(str(r)) for r in rows), *(len(r) for r in ratios)) + 1
    print(f"{first:{width}}" + "".join(f"{n:>{max(10, len(n) + 1)}}" for n in names))
    for label, row in rows.items():
        print(f"{label!s:{width}}" + "".join(f"{row[n]:>{max(10, len(n) + 1)}.2f}" for n in names))
    for line in ratios:
        a, b = line.split(" / ")
        cells = [rows[a][n] / rows[b][n] for n in names]
        print(
            f"{line:{width}}"
            + "".join(
                f"{c:>{max(10, len(n) + 1) - 1}.2f}x" for n, c in zip(names, cells, strict=True)
            )
        )


def per_step_ratios(a: Sequence[Job], b: Sequence[Job]) -> list[float]:
    """Sampling CPU seconds per leapfrog step of a's fits over b's, paired by data set. Both
    sides run the same iterations, so this is the ratio of CPU per gradient if warmup takes
    the draws' steps per iteration in the same proportion on both (only the draws' steps are
    counted)."""
    return [
        (x.sampling_cpu[0] / x.leapfrog[0]) / (y.sampling_cpu[0] / y.leapfrog[0])
        for x, y in zip(a, b, strict=True)
    ]


def print_agreement(a: Sequence[Job], b: Sequence[Job], label: str) -> None:
    """The largest disagreement of two sides' fits of the same data sets, in MCSEs."""
    worst = {"mu": 0.0, "tau": 0.0, "theta": 0.0}
    for x, y in zip(a, b, strict=True):
        for name, z in fit_agreement(x.draws[0], y.draws[0]).items():
            worst[name] = max(worst[name], z)
    groups = a[0].draws[0]["theta"].shape[-1]
    top = max(worst.values())
    print(
        f"agreement {label}, same data sets: |posterior mean difference| at most "
        f"{worst['mu']:.2f} (mu), {worst['tau']:.2f} (tau), {worst['theta']:.2f} (max over "
        f"{groups} theta) joint MCSE over {len(a)} data sets: "
        f"{'agree' if top < 4 else 'DISAGREE'} (< 4)"
    )


def print_batches(jobs: Sequence[Job]) -> None:
    """Per-fit cost inside a batch job, per k, both sides; the cost lines; the peer's timers."""
    rows = batch_rows(jobs)
    for row in rows.values():
        row["peer / pystan s"] = row["peer s/fit"] / row["pystan s/fit"]
        row["peer / pystan CPU s"] = row["peer CPU s/fit"] / row["pystan CPU s/fit"]
    print_table(rows, "k", [])
    biggest = max(j.fits for j in jobs)
    for side in ("pystan", "peer"):
        own = [j for j in jobs if j.side == side]
        fixed, per_fit = cost_line(own)
        fixed_cpu, per_fit_cpu = cost_line(own, "cpu")
        inner = [s for j in own if j.fits == biggest for s in j.sampling]
        print(
            f"{side}: least squares over its {len(own)} jobs: {fixed:.1f} s per job + "
            f"{per_fit:.2f} s per fit (CPU: {fixed_cpu:.1f} s + {per_fit_cpu:.2f} s per fit); "
            f"sampling s per fit inside the k={biggest} jobs, median "
            f"{median(inner):.2f}; divergences {sum(j.divergences for j in own)}"
        )
    lines = {
        side: cost_line([j for j in jobs if j.side == side], "cpu") for side in ("pystan", "peer")
    }
    (py_fixed, py_fit), (peer_fixed, peer_fit) = lines.values()
    if peer_fit < py_fit:
        print(
            f"equal CPU per fit at k = {(peer_fixed - py_fixed) / (py_fit - peer_fit):.1f} fits "
            "per job (the two CPU lines cross); the peer is cheaper above"
        )
    peers = [j for j in jobs if j.side == "peer"]
    imports, compiling = (
        median([getattr(j, what) for j in peers]) for what in ("imports", "compile")
    )
    print(
        f"peer job's own timers, median: import pymc + nutpie {imports:.1f} s, build + compile "
        f"the model {compiling:.1f} s (once per job; new data by compiled.with_data(y=..., "
        "n=...), no recompiling)"
    )
