"""Parts 1-2 of ``make bench``: the binomial against the bernoulli program, and brms.

1. the binomial (sufficient statistics) program against the per-outcome bernoulli program
   (brms' likelihood) on forum-like data, for each Stan engine present (the nutpie engine
   has no density of the bernoulli program; its binomial job is in part 8): sampling
   seconds, whole-job seconds (a fresh process: imports, model load, fit, summaries), ESS/s
   of tau and mu, and the posterior agreement of the two programs in MCSE units;
2. brms on the same data, where R and brms are installed.

``python -m shrinksim.bench job ...`` is the timed fitting job of part 1 (:func:`run_job`,
engine-agnostic: the engine is the compiled-model file's; part 8 uses it for every engine,
with ``--theta``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from shrinksim.bench import (
    REPO,
    TARGETS,
    agreement,
    engines_present,
    forum_config,
    timed,
    verdict,
)
from shrinksim.design import DataCell
from shrinksim.engines import fastpath

PROGRAMS = ("partial_pooling", "partial_pooling_bernoulli")
"""The two programs of part 1: binomial (sufficient statistics) and per-outcome bernoulli."""

FORUM_CELL = DataCell(35, 100, "p_sd", 0.05)
"""The forum data cell of parts 1, 2 and 6."""


# -- 1. binomial vs bernoulli ---------------------------------------------------------------


@dataclass
class ProgramRun:
    """One timed fitting job of part 1."""

    sampling_seconds: float
    job_seconds: float
    cpu_seconds: float  # of the job's process tree: sampler processes included
    mu: np.ndarray
    tau: np.ndarray
    theta: np.ndarray | None = None  # (chains, draws, groups), with ``--theta`` (part 8)
    leapfrog: float = float("nan")  # mean leapfrog steps per iteration, with ``--theta``
    sampling_cpu: float = float("nan")  # CPU seconds of the engine call, with ``--theta``

    def ess_per_second(self, name: str) -> float:
        """Bulk ESS of ``name`` (mu or tau) per sampling second."""
        from shrinksim.diagnostics import ess_bulk

        return float(ess_bulk(getattr(self, name))) / self.sampling_seconds


def cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of its waited-for children (CmdStan
    samples in one)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_job(args: argparse.Namespace) -> None:
    """The timed job of parts 1 and 8: load the model, fit one data set, summarise, save mu
    and tau (with ``--theta`` also every theta and the mean leapfrog steps per iteration)."""
    from shrinksim.engines import SamplerSettings, open_models
    from shrinksim.fitting import diagnose, group_draws, stan_data, summarise
    from shrinksim.priors import parse_prior

    settings = json.loads(args.settings)
    data = pq.read_table(args.data).to_pandas()
    groups = data[data["replicate"] == args.replicate].reset_index(drop=True)
    engine, models = open_models([args.compiled], cache_dir=args.cache_dir)
    (compiled,) = models.values()
    prior = parse_prior(settings["intercept_prior"], "intercept_prior")
    tau_prior = parse_prior(settings["tau_prior"], "tau_prior")
    standata = stan_data(compiled.program, groups, prior, tau_prior, log_lik=False)
    sampler = SamplerSettings.from_config(settings["sampler"])
    with engine:
        cpu = cpu_seconds()
        draws = engine.sample(compiled, standata, sampler, args.seed)
        cpu = cpu_seconds() - cpu
    theta = group_draws(draws, "partial", len(groups))
    diagnose(draws, theta, sampler.max_treedepth)
    summarise(theta, "theta")
    mu, tau = draws.params["mu"], draws.params["tau"]
    extra = {}
    if args.theta:
        extra = {"theta": theta, "leapfrog": draws.sampler["n_leapfrog__"].mean(), "cpu": cpu}
    np.savez(args.out, mu=mu, tau=tau, sampling_seconds=draws.seconds, **extra)


def compile_programs(
    engine_name: str, model_dir: Path, cache_dir: Path, programs: Sequence[str] = PROGRAMS
) -> dict[str, Path]:
    """Compile ``programs`` (part 1's by default) with the engine (cached); return the
    compiled-model JSON of each, ``<model_dir>/<engine>-<program>.json``."""
    from shrinksim.engines import make_engine, program_source, redirect_output
    from shrinksim.fitting import example_data

    out = {}
    model_dir.mkdir(parents=True, exist_ok=True)
    with (
        make_engine(engine_name, cache_dir=cache_dir, model_dir=model_dir) as engine,
        redirect_output(model_dir / "compile.log"),
    ):
        for program in programs:
            code = program_source(REPO / "stan" / f"{program}.stan")
            compiled = engine.compile(code, program, example_data(program))
            out[program] = model_dir / f"{engine_name}-{program}.json"
            compiled.write(out[program])
    return out


def timed_job(
    compiled: Path,
    data: Path,
    replicate: int,
    settings: str,
    cache_dir: Path,
    env: Mapping[str, str] | None = None,
    theta: bool = False,
) -> ProgramRun:
    """Run :func:`run_job` in a fresh process (``env`` added to its environment); its wall
    time is the whole-job time. ``theta``: keep every theta and the leapfrog steps too."""
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        out = Path(tmp) / "draws.npz"
        cmd = [sys.executable, "-m", "shrinksim.bench", "job", "--compiled", str(compiled)]
        cmd += ["--data", str(data), "--replicate", str(replicate), "--settings", settings]
        cmd += ["--seed", str(1000 + replicate), "--cache-dir", str(cache_dir), "--out", str(out)]
        cmd += ["--theta"] if theta else []
        seconds, cpu, _ = timed(cmd, env)
        with np.load(out) as saved:
            sampling = float(saved["sampling_seconds"])
            run = ProgramRun(sampling, seconds, cpu, saved["mu"], saved["tau"])
            if theta:
                run.theta, run.leapfrog = saved["theta"], float(saved["leapfrog"])
                run.sampling_cpu = float(saved["cpu"])
            return run


def forum_data(work: Path, reps: int) -> Path:
    """The forum data sets of parts 1, 2 and 6 (``reps`` replicates of :data:`FORUM_CELL`),
    written to ``work/forum.parquet`` by the first part that needs them."""
    from shrinksim import tables
    from shrinksim.study.simulate import simulate_batch

    path = work / "forum.parquet"
    if not path.exists():
        rows = simulate_batch(forum_config(), FORUM_CELL, list(range(reps)))
        tables.write_table(rows, path, tables.DATA)
    return path


def part_programs(reps: int, work: Path, cache_dir: Path) -> dict[str, float]:
    """Part 1; returns the median binomial job seconds per engine (for part 2)."""
    config = forum_config()
    cell = FORUM_CELL
    data = forum_data(work, reps)
    settings = json.dumps(
        {
            "sampler": config["sampler"],
            "intercept_prior": config["intercept_prior"],
            "tau_prior": config["priors"]["brms_default"],
        }
    )
    sampler = config["sampler"]
    print(
        f"\n## 1. binomial (sufficient statistics) vs bernoulli (per outcome) program\n"
        f"data: {cell.path}, control group of {config['simulation']['control']['n']}, "
        f"{sampler['chains']} chains x {sampler['warmup']} warmup + {sampler['draws']} draws, "
        f"chains one after another on one core; median of {reps} data sets"
    )
    present, missing = engines_present()
    for line in missing:
        if not line.startswith("nutpie"):
            print(line)
    if "nutpie" in present:
        print("nutpie: no density of the bernoulli program; its binomial job is in part 8")
    engines = [name for name in present if name != "nutpie"]
    job_seconds = {}
    for engine in engines:
        compiled = compile_programs(engine, work, cache_dir)
        runs: dict[str, list[ProgramRun]] = {program: [] for program in PROGRAMS}
        public: list[ProgramRun] = []  # pystan: the binomial program through model.sample()
        for rep in range(reps):  # interleaved, so every variant sees the same machine load
            for program in PROGRAMS:
                runs[program].append(timed_job(compiled[program], data, rep, settings, cache_dir))
            if engine == "pystan":
                off = {fastpath.SWITCH: "0"}
                public.append(timed_job(compiled[PROGRAMS[0]], data, rep, settings, cache_dir, off))
        print(f"\n{engine}:")
        print(f"{'program':28} {'sampling s':>10} {'job s':>8} {'ESS/s tau':>10} {'ESS/s mu':>10}")
        rates = {}
        for program in PROGRAMS:
            got = runs[program]
            rates[program] = {
                name: statistics.median(r.ess_per_second(name) for r in got)
                for name in ("tau", "mu")
            }
            print(
                f"{program:28} {statistics.median(r.sampling_seconds for r in got):10.2f} "
                f"{statistics.median(r.job_seconds for r in got):8.2f} "
                f"{rates[program]['tau']:10.1f} {rates[program]['mu']:10.1f}"
            )
        binomial, bernoulli = (rates[p] for p in PROGRAMS)
        for name in ("tau", "mu"):
            ratio = binomial[name] / bernoulli[name]
            z = max(
                agreement(getattr(a, name), getattr(b, name))
                for a, b in zip(*runs.values(), strict=True)
            )
            print(
                f"ESS/s ratio {name}: {ratio:.2f}x (target >= {TARGETS['ess_ratio']:.0f}x: "
                f"{verdict(ratio, TARGETS['ess_ratio'])}); posterior means differ by at most "
                f"{z:.2f} MCSE ({'agree' if z < 4 else 'DISAGREE'}, < 4)"
            )
        if public:
            print_fallback(runs[PROGRAMS[0]], public)
        job_seconds[engine] = statistics.median(r.job_seconds for r in runs[PROGRAMS[0]])
    return job_seconds


def print_fallback(direct: list[ProgramRun], public: list[ProgramRun]) -> None:
    """PyStan's public ``model.sample()`` (the fallback when httpstan's internals are not the
    tested ones) against the direct path, on the same data sets and seeds."""
    same = all(np.array_equal(d.tau, p.tau) for d, p in zip(direct, public, strict=True))
    print(
        f"pystan fallback (model.sample(), {fastpath.SWITCH}=0) against the direct path, "
        f"binomial program; draws {'identical' if same else 'DIFFERENT'} for the same seeds"
    )
    print(f"{'':10} {'sampling s':>10} {'job s':>8} {'job CPU s':>10}")
    for name, runs in (("direct", direct), ("fallback", public)):
        medians = [
            statistics.median(getattr(r, what) for r in runs)
            for what in ("sampling_seconds", "job_seconds", "cpu_seconds")
        ]
        print(f"{name:10} {medians[0]:10.2f} {medians[1]:8.2f} {medians[2]:10.2f}")
    ratios = [
        statistics.median(getattr(p, what) for p in public)
        / statistics.median(getattr(d, what) for d in direct)
        for what in ("sampling_seconds", "job_seconds", "cpu_seconds")
    ]
    print(
        f"fallback / direct: sampling {ratios[0]:.2f}x, job {ratios[1]:.2f}x, job CPU "
        f"{ratios[2]:.2f}x (model.sample() runs the chains in parallel processes; the direct "
        "path one after another in a one-thread job; fallback sampling includes stan.build)"
    )


# -- 2. brms ----------------------------------------------------------------------------------


_BRMS = """
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(brms))
rstan::rstan_options(boost_lib = args[3])  # Debian's r-cran-bh is empty: libboost-dev's headers
d <- read.csv(args[1])
fit <- brm(y ~ 1 + (1 | group), family = bernoulli(), data = d, seed = 1,
           prior = set_prior(args[4], class = "sd"), chains = 4, cores = 1,
           warmup = 1000, iter = 2000, refresh = 0, silent = 2)
cat(sum(rstan::get_elapsed_time(fit$fit)), summary(fit)$random$group[1, "Bulk_ESS"],
    "\\n", file = args[2])
"""


def part_brms(work: Path, job_seconds: Mapping[str, float]) -> None:
    """Part 2: brms on the first forum data set, where R, brms and Boost headers exist."""
    from shrinksim.fitting import outcomes

    print("\n## 2. brms peer: y ~ 1 + (1 | group), bernoulli, one data set")
    boost = Path("/usr/include")
    if not shutil.which("Rscript") or not (boost / "boost").is_dir():
        print(
            "skipped: R or the Boost headers are not installed. To include it (Debian): "
            "apt-get install r-cran-brms libboost-dev, then rerun `make bench`."
        )
        return
    data = pd.read_parquet(work / "forum.parquet")
    outcomes(data[data["replicate"] == 0]).to_csv(work / "brms.csv", index=False)
    script, out = work / "brms.R", work / "brms.out"
    script.write_text(_BRMS)
    prior = forum_config()["priors"]["brms_default"]
    cmd = ["Rscript", str(script), str(work / "brms.csv"), str(out), str(boost), prior]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"skipped: brms failed: {done.stderr.strip()[-500:]}")
        return
    sampling, ess_tau = map(float, out.read_text().split())
    speedup = seconds / job_seconds["pystan"]
    print(
        f"brms job (compile + sample + summary) {seconds:.1f} s, sampling {sampling:.1f} s, "
        f"ESS/s tau {ess_tau / sampling:.1f}\nshrinksim (pystan, binomial) per-job speed-up: "
        f"{speedup:.1f}x (target >= {TARGETS['brms_speedup']:.0f}x: "
        f"{verdict(speedup, TARGETS['brms_speedup'])})"
    )
