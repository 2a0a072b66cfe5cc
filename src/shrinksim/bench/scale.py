"""Scale benchmark (``make bench-scale``): everything after fitting, for 10^3 to 10^6 fits.

``python -m shrinksim.bench.scale [--sizes 1000,10000,100000,1000000] [--batch-size 250]``

For each study size N it synthesises the fit jobs' tables of an N-fit study (7 sizes x 5 tau
x 100 groups x the default priors and models: 140 fits per replicate, replicates to reach N)
from the tables of one real fit job (:mod:`shrinksim.bench.synth`: the schemas and row
counts are real; the numbers repeat), then measures:

* ``snakemake -n -p`` of the whole study (the DAG of every job) in an empty checkout: wall
  time, peak RSS, and the longest shell command of any job;
* the rules after fitting (summarize, measures, plot, report_pages) run by snakemake with
  every other rule disallowed: wall time, and peak RSS of each job (its ``benchmark:`` file)
  and of the largest process (``os.wait4``);

and prints how each grows with N (exponent of a log-log fit from 10^4 up) against the
targets. Each size's scratch checkouts are deleted after it is measured.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from shrinksim import design
from shrinksim.bench import REPO, checkout, machine, verdict
from shrinksim.bench.runs import (
    JobRecord,
    Run,
    job_counts,
    log_tails,
    longest_command,
    rule_benchmarks,
    snakemake,
    sources_digest,
    summary_mb,
)
from shrinksim.bench.synth import read_template, synthesise
from shrinksim.settings import load_yaml, merged

SIZES = (1_000, 10_000, 100_000, 1_000_000)
"""Study sizes measured by default (fits)."""

BATCH_SIZE = 250
"""Replicates per fit job of the synthesised studies (see docs/cluster.md, batch size)."""

AFTER_FITTING = ("summarize", "measures", "plot", "report_pages")
"""The rules that run after the fits, measured here."""

GRID = {
    "n": [5, 10, 20, 35, 50, 100, 200],
    "groups": [100],
    "tau": [0.1, 0.25, 0.5, 0.75, 1.0],
}
"""The grid of the synthesised studies (priors and models: config.yaml's)."""

TEMPLATE = {
    "replicates": 3,
    "batch_size": 3,
    "grid": {"n": [35], "groups": [100], "tau": [0.5]},
}
"""One real fit job: every (prior, model) of the default study on 3 data sets."""

TARGETS = {"after_seconds": 15 * 60, "after_mb": 2048, "exponent": 1.1, "dag_seconds": 60}
"""Targets at 10^6 fits, and for the growth exponents (from 10^4 up)."""

MAX_ARG_STRLEN = 131_072
"""Linux's limit on one argument: a job's shell command is one argument of ``bash -c``."""


def study_config(fits: int, batch_size: int) -> dict[str, Any]:
    """The configfile of an N-fit study (merged over config.yaml)."""
    base = load_yaml(REPO / "config.yaml")
    per_replicate = len(design.fit_cells(merged(base, {"grid": GRID, "replicates": 1})))
    return {
        "grid": GRID,
        "replicates": math.ceil(fits / per_replicate),
        "batch_size": batch_size,
        "confirm_large_grid": True,
    }


def write_config(folder: Path, config: Mapping[str, Any]) -> Path:
    """``config`` as ``folder/study.yaml``."""
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Measured:
    """One study size's numbers."""

    fits: int
    jobs: int
    fit_jobs: int
    disk_gb: float
    synth_seconds: float
    dag: Run
    after: Run
    command: tuple[str, int]
    rules: dict[str, JobRecord] = field(default_factory=dict)
    tables_mb: float = math.nan
    load: float = field(default_factory=lambda: os.getloadavg()[1])
    """5-minute load average when measured (the machine may be shared)."""

    @property
    def peak_mb(self) -> float:
        """Peak RSS of any after-fitting job: its benchmark record (the sum over its
        processes) or the largest single process, whichever is larger."""
        rss = [job.rss_mb for job in self.rules.values() if not math.isnan(job.rss_mb)]
        return max([self.after.peak_mb, *rss])

    @property
    def peak_pss_mb(self) -> float:
        """Peak PSS of any after-fitting job (pages shared by forked workers counted once,
        as a cgroup memory limit counts them), or the largest single process's RSS."""
        pss = [job.pss_mb for job in self.rules.values() if not math.isnan(job.pss_mb)]
        return max([self.after.peak_mb, *pss])


def template_tables(work: Path, cache_dir: Path, cores: int) -> dict[str, pa.Table]:
    """Run the workflow's one fit job of :data:`TEMPLATE` for real; return its tables."""
    folder = checkout(work / "template")
    configfile = write_config(folder, TEMPLATE)
    config = merged(load_yaml(REPO / "config.yaml"), TEMPLATE)
    targets = [design.fit_job_tables(config, name)[0] for name in design.FIT_TABLES]
    done = snakemake(folder, configfile, cache_dir, "--cores", str(cores), *targets)
    print(f"template: one real fit job of {TEMPLATE['grid']}, {done.seconds:.0f} s")
    (cell,) = design.data_cells(config)
    return read_template(folder / design.RESULTS, cell)


def measure(
    fits: int,
    batch_size: int,
    template: Mapping[str, pa.Table],
    work: Path,
    cache_dir: Path,
    cores: int,
) -> Measured:
    """Synthesise and measure a study of at least ``fits`` fits; delete its checkouts."""
    extra = study_config(fits, batch_size)
    config = merged(load_yaml(REPO / "config.yaml"), extra)
    total_fits = len(design.fit_cells(config)) * int(config["replicates"])
    empty, full = work / f"dag-{fits}", work / f"study-{fits}"
    try:
        dag_folder = checkout(empty)
        dag = snakemake(dag_folder, write_config(dag_folder, extra), cache_dir, "-n", "-p")
        counts = job_counts(dag.output)
        study = checkout(full)
        made = synthesise(config, template, study / design.RESULTS)
        print(
            f"{total_fits:,} fits: synthesised {made.jobs:,} fit jobs' {made.files:,} tables "
            f"({made.bytes / 1e9:.2f} GB) in {made.seconds:.0f} s",
            flush=True,
        )
        try:
            after = snakemake(
                study,
                write_config(study, extra),
                cache_dir,
                "--cores",
                str(cores),
                "-p",
                "--allowed-rules",
                *AFTER_FITTING,
            )
        except RuntimeError as err:
            logs = log_tails(study / design.RESULTS, AFTER_FITTING)
            raise RuntimeError(f"{err}\n{logs}") from None
        ran = set(job_counts(after.output)) - {*AFTER_FITTING, "all", "total"}
        if ran:
            raise RuntimeError(f"snakemake ran more than the rules after fitting: {sorted(ran)}")
        results = study / design.RESULTS
        reduced = pq.read_metadata(results / design.SUMMARY.format(name="per_fit")).num_rows
        if reduced != total_fits:
            raise RuntimeError(f"per_fit has {reduced} rows, the study {total_fits} fits")
        return Measured(
            fits=total_fits,
            jobs=counts.get("total", 0),
            fit_jobs=counts.get("fit", 0),
            disk_gb=made.bytes / 1e9,
            synth_seconds=made.seconds,
            dag=dag,
            after=after,
            command=max(
                longest_command(dag.output), longest_command(after.output), key=lambda c: c[1]
            ),
            rules=rule_benchmarks(results, AFTER_FITTING),
            tables_mb=summary_mb(results),
        )
    finally:
        for folder in (empty, full):
            shutil.rmtree(folder, ignore_errors=True)


def exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Slope of log(value) against log(size): the growth exponent."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def report(rows: Sequence[Measured]) -> None:
    """The tables, the growth exponents (from 10^4 fits up) and the targets."""
    print(
        f"\n{'fits':>10} {'jobs':>6} {'fit jobs':>8} {'disk GB':>7} {'synth s':>7} {'DAG s':>6} "
        f"{'DAG MB':>6} {'after s':>7} {'peak MB':>7} {'tables MB':>9} {'load':>5} "
        f"{'longest command':>22}"
    )
    for m in rows:
        print(
            f"{m.fits:>10,} {m.jobs:>6,} {m.fit_jobs:>8,} {m.disk_gb:>7.2f} "
            f"{m.synth_seconds:>7.0f} {m.dag.seconds:>6.1f} {m.dag.peak_mb:>6.0f} "
            f"{m.after.seconds:>7.1f} {m.peak_mb:>7.0f} {m.tables_mb:>9.1f} {m.load:>5.1f} "
            f"{m.command[1]:>9,} ({m.command[0]})"
        )
    print(f"\nafter-fitting jobs, wall s / peak RSS MB / peak PSS MB:\n{'fits':>10}", end="")
    print("".join(f" {rule:>20}" for rule in AFTER_FITTING) + f" {'largest process MB':>19}")
    missing = JobRecord(math.nan, math.nan, math.nan)
    for m in rows:
        jobs = [m.rules.get(rule, missing) for rule in AFTER_FITTING]
        print(
            f"{m.fits:>10,}"
            + "".join(f" {f'{j.seconds:.1f} / {j.rss_mb:.0f} / {j.pss_mb:.0f}':>20}" for j in jobs)
            + f" {m.after.peak_mb:>19.0f}"
        )
    fitted = [m for m in rows if m.fits >= 10_000] or list(rows)
    if len(fitted) >= 2:
        sizes = [m.fits for m in fitted]
        print(
            f"\ngrowth exponents (target <= {TARGETS['exponent']}): from {sizes[0]:,} to "
            f"{sizes[-1]:,} fits, and over the last step ({sizes[-2]:,} to {sizes[-1]:,})"
        )
        series = {
            "snakemake -n seconds": [m.dag.seconds for m in fitted],
            "snakemake -n peak RSS": [m.dag.peak_mb for m in fitted],
            "after fitting, seconds": [m.after.seconds for m in fitted],
            "after fitting, peak RSS": [m.peak_mb for m in fitted],
            "after fitting, peak PSS": [m.peak_pss_mb for m in fitted],
        }
        for rule in AFTER_FITTING:
            if all(rule in m.rules for m in fitted):
                series[f"{rule} seconds"] = [m.rules[rule].seconds for m in fitted]
                series[f"{rule} peak RSS"] = [m.rules[rule].rss_mb for m in fitted]
        for name, values in series.items():
            slope, last = exponent(sizes, values), exponent(sizes[-2:], values[-2:])
            print(
                f"  {name:28} {slope:5.2f} ({verdict(slope, TARGETS['exponent'], False)}), "
                f"last step {last:5.2f} ({verdict(last, TARGETS['exponent'], False)})"
            )
    largest = max(rows, key=lambda m: m.fits)
    if largest.fits >= 1_000_000:
        print(f"\nat {largest.fits:,} fits:")
        checks = [
            ("after fitting, s", largest.after.seconds, TARGETS["after_seconds"]),
            ("after fitting, peak RSS MB", largest.peak_mb, TARGETS["after_mb"]),
            ("after fitting, peak PSS MB", largest.peak_pss_mb, TARGETS["after_mb"]),
            ("snakemake -n, s", largest.dag.seconds, TARGETS["dag_seconds"]),
        ]
        for name, value, target in checks:
            print(f"  {name:28} {value:8.1f} (target <= {target}: {verdict(value, target, False)})")
    rule, length = max((m.command for m in rows), key=lambda c: c[1])
    print(
        f"\nlongest shell command: {length:,} characters ({rule}); Linux allows "
        f"{MAX_ARG_STRLEN:,} per argument: {verdict(length, MAX_ARG_STRLEN - 1, False)}"
    )


def disk_needed(template: Mapping[str, pa.Table], results: Path, fits: int) -> float:
    """Bytes the synthesised tables of ``fits`` fits will take, from the template's files."""
    per_fit = sum(
        f.stat().st_size for name in design.FIT_TABLES for f in (results / name).rglob("*.parquet")
    ) / max(1, template["fits"].num_rows)
    return 1.2 * per_fit * fits


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m shrinksim.bench.scale``."""
    top = argparse.ArgumentParser(prog="python -m shrinksim.bench.scale", description=__doc__)
    top.add_argument("--sizes", default=",".join(map(str, SIZES)), help="fits, comma-separated")
    top.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="replicates per fit job")
    top.add_argument("--cores", type=int, default=min(2, os.cpu_count() or 1))
    top.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    top.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    args = top.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    cache_dir = args.cache_dir.resolve()
    digest = sources_digest()
    print(
        f"# shrinksim scale benchmark, batch size {args.batch_size}, sources {digest}\n{machine()}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="shrinksim-scale-", dir=args.work))
    try:
        template = template_tables(work, cache_dir, args.cores)
        rows = []
        for fits in sizes:
            needed = disk_needed(template, work / "template" / design.RESULTS, fits)
            free = shutil.disk_usage(work).free
            if needed > free - 10e9:
                print(
                    f"{fits:,} fits: skipped, needs ~{needed / 1e9:.0f} GB, {free / 1e9:.0f} GB free"
                )
                continue
            try:
                done = measure(fits, args.batch_size, template, work, cache_dir, args.cores)
            except RuntimeError as err:
                print(f"{fits:,} fits: FAILED\n{err}", flush=True)
                continue
            rows.append(done)
            print(
                f"{done.fits:,} fits: DAG {done.dag.seconds:.1f} s, after fitting "
                f"{done.after.seconds:.1f} s, peak RSS {done.peak_mb:.0f} MB, jobs (s / MB) "
                + ", ".join(f"{r} {j.seconds:.0f} / {j.rss_mb:.0f}" for r, j in done.rules.items())
                + f"; load {done.load:.1f}",
                flush=True,
            )
            if (now := sources_digest()) != digest:
                print(f"WARNING: sources changed while measuring ({digest} -> {now})")
                digest = now
        if rows:
            report(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nfinished; {machine()}")


if __name__ == "__main__":
    main()
