"""Parts 3-6 of ``make bench``: the workflow and its fitting jobs.

3. a grid run of the study once per engine present (PyStan, the nutpie engine, cmdstanpy
   where CmdStan exists), one after another, side by side: the programs' compile time (apart),
   wall time, sum of pure sampling time, sum of fit-job wall, sampling / (wall x cores) and
   the fitting overhead, and each engine's wall and sampling over PyStan's;
4. a rerun of the unchanged workflow (the default engine's study);
5. bytes written per fit (the default engine's study);
6. peak memory (RSS) of a fitting job (the default engine).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shrinksim import design
from shrinksim.bench import (
    REPO,
    TARGETS,
    checkout,
    engines_present,
    forum_config,
    overhead,
    python_env,
    tree_bytes,
    utilisation,
    verdict,
)
from shrinksim.bench.programs import FORUM_CELL, compile_programs, forum_data

FIT_JOB_FILES = (*design.FIT_TABLES, "logs/fit", "benchmarks/fit")
"""What the fit jobs write, relative to ``results/``: their tables, logs and benchmark files."""


def snakemake(
    study: Path, cores: int, configfile: Path | None, cache_dir: Path, engine: str, *extra: str
) -> tuple[float, str]:
    """Run snakemake in ``study`` with ``engine``; return wall seconds and its output."""
    cmd = [str(Path(sys.executable).parent / "snakemake"), "--cores", str(cores), *extra]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--config", f"cache_dir={cache_dir}", f"engine={engine}"]
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=study, env=python_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"snakemake failed in {study}:\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


@dataclass(frozen=True)
class GridRun:
    """Part 3's run of the study with one engine."""

    study: Path
    compile_seconds: float  # compiling (or finding in the cache) the programs, before the run
    wall: float
    fits: int
    jobs: int
    sampling: float  # sum over the fits
    job_wall: float  # sum over the fit jobs (Snakemake's benchmark files)
    cores: int

    @property
    def utilisation(self) -> float:
        return utilisation(self.sampling, self.wall, self.cores)

    @property
    def overhead(self) -> float:
        return overhead([self.job_wall], [self.sampling])


def grid_run(
    study: Path, engine: str, cores: int, configfile: Path | None, cache_dir: Path
) -> GridRun:
    """Compile the study's programs with ``engine``, then run the study and time it."""
    compiling, _ = snakemake(
        study, cores, configfile, cache_dir, engine, "--until", "compile_model"
    )
    wall, _ = snakemake(study, cores, configfile, cache_dir, engine)
    results = study / design.RESULTS
    per_fit = pd.read_parquet(results / design.SUMMARY.format(name="per_fit"))
    jobs = [
        float(pd.read_csv(f, sep="\t")["s"].iloc[0])
        for f in (results / "benchmarks/fit").rglob("*.tsv")
    ]
    sampling = float(per_fit["sampling_seconds"].sum())
    return GridRun(study, compiling, wall, len(per_fit), len(jobs), sampling, sum(jobs), cores)


def print_grid_runs(runs: Mapping[str, GridRun], cache_dir: Path) -> None:
    """Part 3's table, one row per engine, its ratios to PyStan and the targets."""
    head = ("compile s", "wall s", "sampling s", "fit-job s", "fits", "jobs", "use", "overhead")
    print(f"{'engine':10}" + "".join(f"{h:>11}" for h in head))
    for engine, run in runs.items():
        print(
            f"{engine:10}{run.compile_seconds:11.1f}{run.wall:11.1f}{run.sampling:11.1f}"
            f"{run.job_wall:11.1f}{run.fits:11d}{run.jobs:11d}{run.utilisation:11.2f}"
            f"{100 * run.overhead:10.1f}%"
        )
    print(
        f"compile s: compiling (or finding in {cache_dir.name}/) the study's programs, before "
        "and not part of the timed run; sampling s: sum over the fits; fit-job s: sum of the "
        "fit jobs' wall; use: sampling / (wall x cores)"
    )
    base = runs.get("pystan")
    for engine, run in runs.items():
        if base and engine != "pystan":
            print(
                f"{engine} / pystan: wall {run.wall / base.wall:.2f}x, sum of sampling "
                f"{run.sampling / base.sampling:.2f}x, sum of fit-job wall "
                f"{run.job_wall / base.job_wall:.2f}x, compile "
                f"{run.compile_seconds / base.compile_seconds:.2f}x"
            )
    for engine, run in runs.items():
        print(
            f"{engine}: sampling / (wall x cores) = {run.utilisation:.2f} (target >= "
            f"{TARGETS['utilisation']}: {verdict(run.utilisation, TARGETS['utilisation'])}); "
            f"fitting overhead = {100 * run.overhead:.1f} % of fit-job wall (target <= "
            f"{100 * TARGETS['overhead']:.0f} %: "
            f"{verdict(run.overhead, TARGETS['overhead'], False)})"
        )


def part_workflow(
    grid: str, cores: int, work: Path, cache_dir: Path, parts: Sequence[int] = (3, 4, 5)
) -> None:
    """Part 3, then those of parts 4 and 5 in ``parts`` (on the default engine's study)."""
    configfile = REPO / "tests/configs/tiny.yaml" if grid == "tiny" else None
    label = "tests/configs/tiny.yaml" if configfile else "the default study (config.yaml)"
    engines, missing = engines_present()
    print(
        f"\n## 3. grid run: {label}, snakemake --cores {cores}, once per engine "
        f"({', '.join(engines)}; one after another), models compiled beforehand"
    )
    for line in missing:
        print(line)
    runs = {
        engine: grid_run(checkout(work / f"study-{engine}"), engine, cores, configfile, cache_dir)
        for engine in engines
    }
    print_grid_runs(runs, cache_dir)
    default = engines[0]
    study = runs[default].study
    if 4 in parts:
        print(f"\n## 4. rerun of the unchanged workflow ({default})")
        rerun, said = snakemake(study, cores, configfile, cache_dir, default)
        nothing = "Nothing to be done" in said
        print(
            f"{rerun:.1f} s, {'nothing refitted' if nothing else 'SOMETHING RAN'} (target <= "
            f"{TARGETS['rerun_seconds']:.0f} s: "
            f"{verdict(rerun, TARGETS['rerun_seconds'], False) if nothing else 'MISSED'})"
        )
    if 5 in parts:
        print(f"\n## 5. bytes written per fit ({default})")
        results = study / design.RESULTS
        fits = runs[default].fits
        per_job = tree_bytes([results / name for name in FIT_JOB_FILES]) / fits
        everything = tree_bytes([results]) / fits
        print(
            f"fit jobs' tables (groups, fits, thinned draws), logs and benchmark files: "
            f"{per_job / 1000:.1f} KB per fit (target <= "
            f"{TARGETS['bytes_per_fit'] / 1000:.0f} KB: "
            f"{verdict(per_job, TARGETS['bytes_per_fit'], False)}); all of results/ (data, "
            f"models, summaries, figures): {everything / 1000:.1f} KB per fit; no httpstan fit "
            "cache"
        )


def fit_command(
    settings: Mapping[str, Any], cell: str, data: Path, compiled: Path, cache_dir: Path, out: Path
) -> list[str]:
    """A ``python -m shrinksim fit`` job fitting ``settings["fits"]`` on data cell ``cell``
    (:attr:`DataCell.path`), its three tables written to ``out``."""
    cmd = [sys.executable, "-m", "shrinksim", "fit", "--settings", json.dumps(settings)]
    cmd += ["--cell", cell, "--data", str(data), "--compiled", str(compiled)]
    cmd += ["--cache-dir", str(cache_dir), "--threads", "1"]
    cmd += ["--groups-out", str(out / "groups.parquet"), "--fits-out", str(out / "fits.parquet")]
    return cmd + ["--draws-out", str(out / "draws.parquet")]


def part_memory(work: Path, cache_dir: Path, reps: int) -> None:
    """Part 6: peak RSS of a real fitting job (CLI) of the default engine on the forum data,
    ``reps`` replicates."""
    config = forum_config()
    engine = engines_present()[0][0]
    program = design.STAN_PROGRAMS["partial"]
    compiled = compile_programs(engine, work / "memory-model", cache_dir, [program])[program]
    data = forum_data(work, reps)
    settings = {key: config[key] for key in ("seed", "sampler", "retry", "intercept_prior")} | {
        "priors": {"brms_default": config["priors"]["brms_default"]},
        "fits": [["brms_default", "partial"]],
    }
    out = work / "memory"
    cmd = fit_command(settings, FORUM_CELL.path, data, compiled, cache_dir, out)
    wrapper = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL).returncode; "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], env=python_env(), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    code, rss_kb = map(int, done.stdout.split())
    if code != 0:
        raise RuntimeError(f"fit job failed: {' '.join(cmd)}")
    fits = pd.read_parquet(out / "fits.parquet")
    mb = rss_kb / 1024
    waste = overhead([seconds], [float(fits["sampling_seconds"].sum())])
    print(
        f"\n## 6. peak memory of a fitting job ({engine})\n"
        f"`shrinksim fit` of {len(fits)} forum data sets (4 x 1000 + 1000 draws, 101 groups): "
        f"peak RSS {mb:.0f} MB (target <= {TARGETS['rss_mb']:.0f} MB: "
        f"{verdict(mb, TARGETS['rss_mb'], False)}); job wall {seconds:.1f} s, of which "
        f"{100 * waste:.1f} % not sampling"
    )
