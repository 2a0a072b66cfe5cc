"""Part 8 of ``make bench`` (:mod:`shrinksim.bench.peer`): its timed jobs' records, and the
tables and lines it prints from them."""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shrinksim.bench import TARGETS, agreement, verdict

LOADED = 1.5
"""Load average per core above which the printed seconds carry a warning."""
PEER = "pymc + nutpie"
"""The peer's side (label) in the tables."""
REFERENCE = "pystan"
"""The side every other is also compared with."""


@dataclass
class Job:
    """One timed child process: wall and CPU seconds (its process tree), the 1-minute load
    average when it started, and what it saved."""

    side: str  # PEER, or the engine (``pystan``, ``nutpie``, ``cmdstanpy``, ``pystan --O1``)
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


def batch_rows(jobs: Sequence[Job]) -> dict[str, dict[str, float]]:
    """Per side (in the order of ``jobs``), the medians of its job wall and CPU seconds per
    fit, for each k (fits per job)."""
    sizes = sorted({j.fits for j in jobs})
    return {
        side: {
            f"{what} k={k}": median(
                [getattr(j, attr) / k for j in jobs if j.fits == k and j.side == side]
            )
            for what, attr in (("s/fit", "seconds"), ("CPU s/fit", "cpu"))
            for k in sizes
        }
        for side in dict.fromkeys(j.side for j in jobs)
    }


def ratio_lines(sides: Sequence[str]) -> list[str]:
    """The ratio lines of a table of ``sides``: each side over :data:`REFERENCE` and over
    :data:`PEER` (those present), side by side; not ``REFERENCE / PEER`` (the inverse of
    ``PEER / REFERENCE``)."""
    return [
        f"{side} / {base}"
        for side in sides
        for base in (REFERENCE, PEER)
        if base in sides and side not in (base, REFERENCE if base == PEER else "")
    ]


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


def ess_ratios(a: Sequence[Job], b: Sequence[Job], name: str = "tau") -> list[float]:
    """ESS/s of ``name`` of a's one-fit jobs over b's, paired by data set."""
    return [ess_per_second(x, name) / ess_per_second(y, name) for x, y in zip(a, b, strict=True)]


def print_ratio_details(sides: Mapping[str, Sequence[Job]]) -> None:
    """Below the one-fit table: CPU per leapfrog step for each ratio line, and issue 17's
    target (ESS/s of tau at least the peer's), each paired by data set."""
    for line in ratio_lines(list(sides)):
        a, b = line.split(" / ")
        steps = per_step_ratios(sides[a], sides[b])
        print(
            f"sampling CPU s per leapfrog step, {line}, paired by data set: median "
            f"{median(steps):.2f}x ({min(steps):.2f}-{max(steps):.2f}x)"
        )
    if PEER in sides:
        target = TARGETS["peer_ess_ratio"]
        for side in sides:
            if side != PEER:
                got = ess_ratios(sides[side], sides[PEER])
                print(
                    f"ESS/s tau, {side} / {PEER}, paired by data set: median {median(got):.2f}x "
                    f"({min(got):.2f}-{max(got):.2f}x; issue 17's target >= {target:.0f}x: "
                    f"{verdict(median(got), target)})"
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
    """Per-fit cost inside a batch job, per side and k, with the ratio lines; each side's cost
    lines; where the CPU lines of each ratio line's pair cross; the peer's own timers."""
    rows = batch_rows(jobs)
    sides = list(rows)
    print_table(rows, "", ratio_lines(sides))
    biggest = max(j.fits for j in jobs)
    lines = {}
    for side in sides:
        own = [j for j in jobs if j.side == side]
        fixed, per_fit = cost_line(own)
        lines[side] = cost_line(own, "cpu")
        inner = [s for j in own if j.fits == biggest for s in j.sampling]
        print(
            f"{side}: least squares over its {len(own)} jobs: {fixed:.1f} s per job + "
            f"{per_fit:.2f} s per fit (CPU: {lines[side][0]:.1f} s + {lines[side][1]:.2f} s "
            f"per fit); sampling s per fit inside the k={biggest} jobs, median "
            f"{median(inner):.2f}; divergences {sum(j.divergences for j in own)}"
        )
    for line in ratio_lines(sides):
        a, b = line.split(" / ")
        print(f"{a} vs {b}: {crossing(a, lines[a], b, lines[b])}")
    peers = [j for j in jobs if j.side == PEER]
    if peers:
        imports, compiling = (
            median([getattr(j, what) for j in peers]) for what in ("imports", "compile")
        )
        print(
            f"peer job's own timers, median: import pymc + nutpie {imports:.1f} s, build + "
            f"compile the model {compiling:.1f} s (once per job; new data by "
            "compiled.with_data(y=..., n=...), no recompiling)"
        )


def crossing(a: str, line_a: tuple[float, float], b: str, line_b: tuple[float, float]) -> str:
    """Which of two sides costs less CPU per fit, from their (fixed, per fit) CPU lines."""
    (fixed_a, fit_a), (fixed_b, fit_b) = line_a, line_b
    if np.isnan(fit_a) or np.isnan(fit_b):
        return "no cost lines (jobs of one k only)"
    if fit_a != fit_b and (k := (fixed_b - fixed_a) / (fit_a - fit_b)) > 0:
        cheaper = a if fit_a < fit_b else b
        return (
            f"equal CPU per fit at k = {k:.1f} fits per job (the CPU lines cross); "
            f"{cheaper} is cheaper above"
        )
    if (fixed_a, fit_a) == (fixed_b, fit_b):
        return "the same CPU lines"
    cheaper = a if fixed_a + fit_a < fixed_b + fit_b else b
    return f"{cheaper} is cheaper at every k (the CPU lines do not cross at k > 0)"
