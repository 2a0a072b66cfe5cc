"""``make bench``: how fast shrinksim is, measured side by side in one run.

``python -m shrinksim.bench [--reps 3] [--grid default|tiny] [--cores 2]`` prints:

1. the binomial (sufficient statistics) program against the per-outcome bernoulli program
   (brms' likelihood) on forum-like data, for each engine present: sampling seconds,
   whole-job seconds (a fresh process: imports, model load, fit, summaries), ESS/s of tau
   and mu, and the posterior agreement of the two programs in MCSE units;
2. brms on the same data, where R and brms are installed;
3. a grid run of the study: wall time against the sum of pure sampling time;
4. a rerun of the unchanged workflow;
5. bytes written per fit;
6. peak memory (RSS) of a fitting job.

Medians over ``--reps`` repetitions. The numbers, the machine and how to reproduce them are
in docs/benchmarks.md. ``python -m shrinksim.bench job ...`` is the timed fitting job of
part 1 (internal).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = ("partial_pooling", "partial_pooling_bernoulli")
TARGETS = {
    "ess_ratio": 20.0,
    "brms_speedup": 50.0,
    "utilisation": 0.7,
    "overhead": 0.10,
    "rerun_seconds": 5.0,
    "bytes_per_fit": 50_000,
    "rss_mb": 500.0,
}
WORKFLOW_FILES = ("Snakefile", "config.yaml", "config", "workflow", "stan", "profiles")


def forum_config() -> dict[str, Any]:
    """config.yaml with config/forum.yaml merged over it (4 chains x 1000 + 1000)."""
    from shrinksim.config import load_yaml, merged

    return merged(load_yaml(REPO / "config.yaml"), load_yaml(REPO / "config/forum.yaml"))


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """|mean difference| of two fits' draws (chains, draws) in units of the joint MCSE.

    MCSE = posterior sd / sqrt(bulk ESS); below 4 the two posteriors agree.
    """
    from shrinksim.diagnostics import ess_bulk

    se = [x.std() / np.sqrt(float(ess_bulk(x))) for x in (a, b)]
    return float(abs(a.mean() - b.mean()) / np.hypot(*se))


def utilisation(sampling_seconds: float, wall_seconds: float, cores: int) -> float:
    """Share of the cores' time spent sampling: sum of sampling / (wall x cores)."""
    return sampling_seconds / (wall_seconds * cores)


def overhead(job_seconds: Sequence[float], sampling_seconds: Sequence[float]) -> float:
    """Share of fit-job wall time not spent sampling, over all jobs."""
    total = sum(job_seconds)
    return (total - sum(sampling_seconds)) / total


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    """``met`` or ``MISSED`` against ``target``."""
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def tree_bytes(paths: Sequence[Path]) -> int:
    """Total size of the files under ``paths``."""
    return sum(f.stat().st_size for p in paths if p.exists() for f in p.rglob("*") if f.is_file())


def _machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"load average {load}"
    )


def _python_env() -> dict[str, str]:
    """Environment of child processes: this interpreter's bin first, this package importable."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return os.environ | {"PATH": path, "PYTHONPATH": pythonpath}


# -- 1. binomial vs bernoulli ---------------------------------------------------------------


@dataclass
class ProgramRun:
    """One timed fitting job of part 1."""

    sampling_seconds: float
    job_seconds: float
    mu: np.ndarray
    tau: np.ndarray

    def ess_per_second(self, name: str) -> float:
        from shrinksim.diagnostics import ess_bulk

        return float(ess_bulk(getattr(self, name))) / self.sampling_seconds


def run_job(args: argparse.Namespace) -> None:
    """The timed job of part 1: load the model, fit one data set, summarise, save mu and tau."""
    import pyarrow.parquet as pq

    from shrinksim.config import parse_prior
    from shrinksim.engine import SamplerSettings, make_engine
    from shrinksim.fit import diagnose, group_draws, stan_data, summarise

    settings = json.loads(args.settings)
    data = pq.read_table(args.data).to_pandas()
    groups = data[data["replicate"] == args.replicate].reset_index(drop=True)
    compiled = json.loads(Path(args.compiled).read_text())
    prior = parse_prior(settings["intercept_prior"], "intercept_prior")
    tau_prior = parse_prior(settings["tau_prior"], "tau_prior")
    standata = stan_data(compiled["program"], groups, prior, tau_prior)
    sampler = SamplerSettings.from_config(settings["sampler"])
    with make_engine(
        compiled["engine"], cache_dir=args.cache_dir, model_dir=Path(args.compiled).parent
    ) as engine:
        draws = engine.sample(compiled, standata, sampler, args.seed)
    theta = group_draws(draws, "partial", len(groups))
    diagnose(draws, theta, sampler.max_treedepth)
    summarise(theta, "theta")
    mu, tau = draws.params["mu"], draws.params["tau"]
    np.savez(args.out, mu=mu, tau=tau, sampling_seconds=draws.seconds)


def compile_programs(engine_name: str, model_dir: Path, cache_dir: Path) -> dict[str, Path]:
    """Compile part 1's programs (cached); return the compiled-model JSON of each."""
    from shrinksim.engine import make_engine, program_source, redirect_output
    from shrinksim.fit import example_data

    out = {}
    with (
        make_engine(engine_name, cache_dir=cache_dir, model_dir=model_dir) as engine,
        redirect_output(model_dir / "compile.log"),
    ):
        for program in PROGRAMS:
            code = program_source(REPO / "stan" / f"{program}.stan")
            compiled = engine.compile(code, program, example_data(program))
            out[program] = model_dir / f"{engine_name}-{program}.json"
            out[program].write_text(json.dumps(compiled))
    return out


def timed_job(
    compiled: Path, data: Path, replicate: int, settings: str, cache_dir: Path
) -> ProgramRun:
    """Run :func:`run_job` in a fresh process; its wall time is the whole-job time."""
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        out = Path(tmp) / "draws.npz"
        cmd = [sys.executable, "-m", "shrinksim.bench", "job", "--compiled", str(compiled)]
        cmd += ["--data", str(data), "--replicate", str(replicate), "--settings", settings]
        cmd += ["--seed", str(1000 + replicate), "--cache-dir", str(cache_dir), "--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=_python_env(), capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        with np.load(out) as saved:
            return ProgramRun(float(saved["sampling_seconds"]), seconds, saved["mu"], saved["tau"])


def part_programs(reps: int, work: Path, cache_dir: Path) -> dict[str, float]:
    """Part 1; returns the median binomial job seconds per engine (for part 2)."""
    from shrinksim import tables
    from shrinksim.config import DataCell
    from shrinksim.engine import find_cmdstan
    from shrinksim.simulate import simulate_batch

    config = forum_config()
    cell = DataCell(35, 100, "p_sd", 0.05)
    data = work / "forum.parquet"
    tables.write_table(simulate_batch(config, cell, list(range(reps))), data, tables.DATA)
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
    engines = ["pystan"]
    if find_cmdstan():
        engines.append("cmdstanpy")
    else:
        print("cmdstanpy: skipped, no CmdStan installation found ($CMDSTAN, ~/.cmdstan, conda)")
    job_seconds = {}
    for engine in engines:
        compiled = compile_programs(engine, work, cache_dir)
        runs: dict[str, list[ProgramRun]] = {program: [] for program in PROGRAMS}
        for rep in range(reps):  # interleaved, so both programs see the same machine load
            for program in PROGRAMS:
                runs[program].append(timed_job(compiled[program], data, rep, settings, cache_dir))
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
        job_seconds[engine] = statistics.median(r.job_seconds for r in runs[PROGRAMS[0]])
    return job_seconds


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
    import pandas as pd

    from shrinksim.simulate import outcomes

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


# -- 3.-6. the workflow -----------------------------------------------------------------------


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
        cmd, cwd=study, env=_python_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"snakemake failed in {study}:\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def part_workflow(grid: str, cores: int, work: Path, cache_dir: Path) -> None:
    """Parts 3 to 5: a grid run, a rerun and the bytes written per fit."""
    import pandas as pd

    study = work / "study"
    study.mkdir()
    for name in WORKFLOW_FILES:
        (study / name).symlink_to(REPO / name)
    configfile = REPO / "tests/configs/tiny.yaml" if grid == "tiny" else None
    label = "tests/configs/tiny.yaml" if configfile else "the default study (config.yaml)"
    print(f"\n## 3. grid run: {label}, snakemake --cores {cores}, models compiled beforehand")
    compiling, _ = snakemake(study, cores, configfile, cache_dir, "--until", "compile_model")
    wall, _ = snakemake(study, cores, configfile, cache_dir)
    results = study / "results"
    fits = pd.read_parquet(results / "summary/fits.parquet")
    sampling = float(fits["sampling_seconds"].sum())
    jobs = [
        float(pd.read_csv(f, sep="\t")["s"].iloc[0])
        for f in (results / "benchmarks/fit").rglob("*.tsv")
    ]
    share = utilisation(sampling, wall, cores)
    waste = overhead(jobs, [sampling])
    print(
        f"compiling (or finding in {cache_dir.name}/) the study's programs first: {compiling:.1f} s\n"
        f"{len(fits)} fits in {len(jobs)} fit jobs; wall {wall:.1f} s; sum of sampling "
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
    per_job = [results / "fits", results / "logs/fit", results / "benchmarks/fit"]
    per_fit = tree_bytes(per_job) / len(fits)
    everything = tree_bytes([results]) / len(fits)
    print(
        f"fit jobs' tables, logs and benchmark files: {per_fit / 1000:.1f} KB per fit (target <= "
        f"{TARGETS['bytes_per_fit'] / 1000:.0f} KB: {verdict(per_fit, TARGETS['bytes_per_fit'], False)}); "
        f"all of results/ (data, models, summaries, figures): {everything / 1000:.1f} KB per fit; "
        "no draws, no httpstan fit cache"
    )


def fit_command(
    settings: Mapping[str, Any], data: Path, compiled: Path, cache_dir: Path, out: Path
) -> list[str]:
    """The ``python -m shrinksim fit`` job of part 6 (forum data, partial pooling)."""
    cmd = [sys.executable, "-m", "shrinksim", "fit", "--settings", json.dumps(settings)]
    cmd += ["--cells", "n~35/groups~100/p_sd~0.05/prior~brms_default/model~partial"]
    cmd += ["--data", str(data), "--compiled", str(compiled)]
    cmd += ["--cache-dir", str(cache_dir), "--threads", "1"]
    cmd += ["--groups-out", str(out / "groups.parquet"), "--fits-out", str(out / "fits.parquet")]
    return cmd + ["--draws-out", str(out / "draws.parquet")]


def part_memory(work: Path, cache_dir: Path) -> None:
    """Part 6: peak RSS of a real fitting job (CLI) on the forum data, all its replicates."""
    from shrinksim.engine import resolve_engine

    config = forum_config()
    engine = resolve_engine("auto")
    compiled = work / "study/results/models" / engine / "partial_pooling.json"
    settings = {key: config[key] for key in ("seed", "sampler", "retry", "intercept_prior")} | {
        "priors": {"brms_default": config["priors"]["brms_default"]}
    }
    out = work / "memory"
    cmd = fit_command(settings, work / "forum.parquet", compiled, cache_dir, out)
    wrapper = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL).returncode; "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], env=_python_env(), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    code, rss_kb = map(int, done.stdout.split())
    if code != 0:
        raise RuntimeError(f"fit job failed: {' '.join(cmd)}")
    import pandas as pd

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


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m shrinksim.bench``."""
    top = argparse.ArgumentParser(prog="python -m shrinksim.bench", description=__doc__)
    top.add_argument("--reps", type=int, default=3, help="data sets fitted per program")
    top.add_argument("--grid", choices=["default", "tiny"], default="default")
    top.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    top.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    sub = top.add_subparsers(dest="command")
    job = sub.add_parser("job", help="internal: the timed fitting job of part 1")
    for name in ("--compiled", "--data", "--settings", "--cache-dir", "--out"):
        job.add_argument(name, required=True)
    job.add_argument("--replicate", type=int, required=True)
    job.add_argument("--seed", type=int, required=True)
    args = top.parse_args(argv)
    if args.command == "job":
        run_job(args)
        return
    print(f"# shrinksim benchmark\n{_machine()}")
    cache_dir = args.cache_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        work = Path(tmp)
        job_seconds = part_programs(args.reps, work, cache_dir)
        part_brms(work, job_seconds)
        part_workflow(args.grid, args.cores, work, cache_dir)
        part_memory(work, cache_dir)
    print(f"\nfinished; {_machine()}")


if __name__ == "__main__":
    main()
