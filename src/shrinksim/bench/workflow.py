"""Parts 3-6 of ``make bench``: the workflow and its fitting jobs.

3. a grid run of the study: wall time against the sum of pure sampling time;
4. a rerun of the unchanged workflow;
5. bytes written per fit;
6. peak memory (RSS) of a fitting job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from shrinksim import design
from shrinksim.bench import (
    REPO,
    TARGETS,
    checkout,
    forum_config,
    overhead,
    python_env,
    tree_bytes,
    utilisation,
    verdict,
)
from shrinksim.bench.programs import FORUM_CELL

FIT_JOB_FILES = (*design.FIT_TABLES, "logs/fit", "benchmarks/fit")
"""What the fit jobs write, relative to ``results/``: their tables, logs and benchmark files."""


def snakemake(
    study: Path, cores: int, configfile: Path | None, cache_dir: Path, *extra: str
) -> tuple[float, str]:
    """Run snakemake in ``study``; return wall seconds and its output."""
    cmd = [str(Path(sys.executable).parent / "snakemake"), "--cores", str(cores), *extra]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--config", f"cache_dir={cache_dir}"]
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=study, env=python_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"snakemake failed in {study}:\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def part_workflow(grid: str, cores: int, work: Path, cache_dir: Path) -> None:
    """Parts 3 to 5: a grid run, a rerun and the bytes written per fit."""
    study = checkout(work / "study")
    configfile = REPO / "tests/configs/tiny.yaml" if grid == "tiny" else None
    label = "tests/configs/tiny.yaml" if configfile else "the default study (config.yaml)"
    print(f"\n## 3. grid run: {label}, snakemake --cores {cores}, models compiled beforehand")
    compiling, _ = snakemake(study, cores, configfile, cache_dir, "--until", "compile_model")
    wall, _ = snakemake(study, cores, configfile, cache_dir)
    results = study / design.RESULTS
    per_fit = pd.read_parquet(results / design.SUMMARY.format(name="per_fit"))
    fits = len(per_fit)
    sampling = float(per_fit["sampling_seconds"].sum())
    jobs = [
        float(pd.read_csv(f, sep="\t")["s"].iloc[0])
        for f in (results / "benchmarks/fit").rglob("*.tsv")
    ]
    share = utilisation(sampling, wall, cores)
    waste = overhead(jobs, [sampling])
    print(
        f"compiling (or finding in {cache_dir.name}/) the study's programs first: {compiling:.1f} s\n"
        f"{fits} fits in {len(jobs)} fit jobs; wall {wall:.1f} s; sum of sampling "
        f"{sampling:.1f} s; sum of fit-job wall {sum(jobs):.1f} s\n"
        f"sampling / (wall x cores) = {share:.2f} (target >= {TARGETS['utilisation']}: "
        f"{verdict(share, TARGETS['utilisation'])})\n"
        f"fitting overhead = {100 * waste:.1f} % of fit-job wall (target <= "
        f"{100 * TARGETS['overhead']:.0f} %: {verdict(waste, TARGETS['overhead'], False)})"
    )
    print("\n## 4. rerun of the unchanged workflow")
    rerun, said = snakemake(study, cores, configfile, cache_dir)
    nothing = "Nothing to be done" in said
    print(
        f"{rerun:.1f} s, {'nothing refitted' if nothing else 'SOMETHING RAN'} (target <= "
        f"{TARGETS['rerun_seconds']:.0f} s: "
        f"{verdict(rerun, TARGETS['rerun_seconds'], False) if nothing else 'MISSED'})"
    )
    print("\n## 5. bytes written per fit")
    per_job = tree_bytes([results / name for name in FIT_JOB_FILES]) / fits
    everything = tree_bytes([results]) / fits
    print(
        f"fit jobs' tables (groups, fits, thinned draws), logs and benchmark files: "
        f"{per_job / 1000:.1f} KB per fit (target <= {TARGETS['bytes_per_fit'] / 1000:.0f} KB: "
        f"{verdict(per_job, TARGETS['bytes_per_fit'], False)}); all of results/ (data, models, "
        f"summaries, figures): {everything / 1000:.1f} KB per fit; no httpstan fit cache"
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


def part_memory(work: Path, cache_dir: Path) -> None:
    """Part 6: peak RSS of a real fitting job (CLI) on the forum data, all its replicates."""
    from shrinksim.engines import resolve_engine

    config = forum_config()
    engine = resolve_engine("auto")
    compiled = (
        work
        / "study"
        / design.result_path(
            design.COMPILED, engine=engine, program=design.STAN_PROGRAMS["partial"]
        )
    )
    settings = {key: config[key] for key in ("seed", "sampler", "retry", "intercept_prior")} | {
        "priors": {"brms_default": config["priors"]["brms_default"]},
        "fits": [["brms_default", "partial"]],
    }
    out = work / "memory"
    cmd = fit_command(settings, FORUM_CELL.path, work / "forum.parquet", compiled, cache_dir, out)
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
        f"\n## 6. peak memory of a fitting job\n"
        f"`shrinksim fit` of {len(fits)} forum data sets (4 x 1000 + 1000 draws, 101 groups): "
        f"peak RSS {mb:.0f} MB (target <= {TARGETS['rss_mb']:.0f} MB: "
        f"{verdict(mb, TARGETS['rss_mb'], False)}); job wall {seconds:.1f} s, of which "
        f"{100 * waste:.1f} % not sampling"
    )
