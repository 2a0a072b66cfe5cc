"""Part 8 of ``make bench``: the fastest peer, PyMC + nutpie, against shrinksim's engines
(issue 17).

The binomial partial-pooling model of part 1 (``stan/partial_pooling.stan``: mu and tau with
brms' default priors, non-centred z, y ~ Binomial(n, invlogit(mu + tau z))) on the same
forum data sets, fitted by every side with the study's sampler settings (4 chains x 1000
warmup + 1000 draws one after another, target acceptance 0.9, tree depth 10):

* the peer: the model as a ``pm.Model`` (``pm.Data`` for y and n) sampled by nutpie
  (``nutpie.compile_pymc_model(model, backend="numba")``, ``nutpie.sample(..., cores=1)``),
  where ``import pymc, nutpie`` works in the peer's interpreter (this one, or
  ``--peer-python``; the optional extra: ``pip install -e '.[peer]'``); elsewhere it says so
  in one line and the engines are compared without it;
* shrinksim's engines present (:func:`shrinksim.bench.engines_present`): PyStan (the
  reference), the nutpie engine (nutpie's NUTS on numba densities of the Stan program), and
  cmdstanpy where CmdStan exists. Every engine runs the same jobs: its compiled-model file
  (:func:`shrinksim.bench.programs.compile_programs`) given to part 1's job and to
  ``python -m shrinksim fit``, which open it with :func:`shrinksim.engines.open_models`.

1. **One fit per job**, interleaved (data set 1 every side, data set 2 every side in reverse
   order, ...): sampling seconds, ESS/s of tau and mu (bulk ESS by
   :mod:`shrinksim.diagnostics` on every side), leapfrog steps per iteration (nutpie's
   ``n_steps``, Stan's ``n_leapfrog__``), whole-job seconds, each side's ratios to PyStan and
   to the peer, CPU per leapfrog step, issue 17's target (ESS/s of tau at least the peer's),
   and the posterior agreement with PyStan on the same data set: |difference of posterior
   means| of mu, tau and every theta in joint MCSEs. With ``--stanc-o1`` PyStan's program is
   also built with ``stanc --O1`` and compared.
2. **Per-fit cost inside a batch job**: one process that imports, compiles (the peer) or
   loads the compiled model (the engines) and fits k data sets, for k in
   :data:`BATCH_SIZES`: the peer's job (:func:`shrinksim.bench.peer_job.run_peer_job`, new
   data by ``compiled.with_data(y=..., n=...)``, no recompiling) against shrinksim's own fit
   job (``python -m shrinksim fit``) of each engine: job wall / k, its ratios, and the fixed
   and per-fit costs of a least-squares line through them.

``python -m shrinksim.bench.peer [--reps 3] [--rounds 1] [--stanc-o1] [--peer-python PATH]``
runs this part alone; ``python -m shrinksim.bench.peer job ...`` is the peer's timed job
(internal). The model and that job are in :mod:`shrinksim.bench.peer_job`, the records and
printed tables in :mod:`shrinksim.bench.peer_summary`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shrinksim.bench import REPO, engines_present, forum_config, machine, timed
from shrinksim.bench.peer_job import peer_problem, run_peer_job
from shrinksim.bench.peer_summary import (
    PEER,
    REFERENCE,
    Job,
    load_note,
    print_agreement,
    print_batches,
    print_ratio_details,
    print_table,
    ratio_lines,
    single_rows,
)

BATCH_SIZES = (1, 3, 10)
"""Data sets fitted per job in the batch-cost comparison."""
PROGRAM = "partial_pooling"
"""The Stan program the peer reproduces."""
O1 = "pystan --O1"
"""The side of PyStan's ``stanc --O1`` build (``--stanc-o1``; one fit per job only)."""

# -- timed child processes ------------------------------------------------------------------


def peer_job(python: str, data: Path, settings: str, seed: int, draws: bool = False) -> Job:
    """:func:`run_peer_job` in a fresh process of ``python`` on every replicate of ``data``."""
    with tempfile.TemporaryDirectory(prefix="shrinksim-peer-") as tmp:
        out = Path(tmp) / "peer.npz"
        cmd = [python, "-m", "shrinksim.bench.peer", "job", "--data", str(data)]
        cmd += ["--settings", settings, "--seed", str(seed), "--out", str(out)]
        seconds, cpu, load = timed([*cmd, "--draws"] if draws else cmd)
        with np.load(out) as saved:
            got = {name: saved[name] for name in saved.files}
    sampling = [float(s) for s in got["sampling_seconds"]]
    job = Job(PEER, len(sampling), seconds, cpu, load, sampling)
    job.leapfrog = [float(s) for s in got["leapfrog"]]
    job.sampling_cpu = [float(s) for s in got["sampling_cpu"]]
    job.divergences = int(got["divergences"].sum())
    job.imports, job.compile = float(got["imports"]), float(got["compile"])
    if draws:
        job.draws = [
            {name: got[name][i] for name in ("mu", "tau", "theta")} for i in range(len(sampling))
        ]
    return job


def fit_job(
    side: str, data: Path, compiled: Path, config: Mapping[str, Any], cache_dir: Path
) -> Job:
    """shrinksim's own fit job (``python -m shrinksim fit``) with the compiled model
    ``compiled`` (any engine's) of the binomial partial-pooling fit under brms' default
    prior, on every replicate of ``data``; no refits (``retry.max_attempts`` 1: the peer does
    not refit either)."""
    import pandas as pd

    from shrinksim.bench.programs import FORUM_CELL
    from shrinksim.bench.workflow import fit_command

    settings = {key: config[key] for key in ("seed", "sampler", "intercept_prior")} | {
        "retry": config["retry"] | {"max_attempts": 1},
        "priors": {"brms_default": config["priors"]["brms_default"]},
        "fits": [["brms_default", "partial"]],
    }
    with tempfile.TemporaryDirectory(prefix="shrinksim-peer-") as tmp:
        out = Path(tmp)
        cmd = fit_command(settings, FORUM_CELL.path, data, compiled, cache_dir, out)
        seconds, cpu, load = timed(cmd)
        fits = pd.read_parquet(out / "fits.parquet")
    job = Job(side, len(fits), seconds, cpu, load, fits["sampling_seconds"].tolist())
    job.divergences = int(fits["divergences"].sum())
    return job


def engine_job(
    side: str, compiled: Path, data: Path, replicate: int, settings: str, cache_dir: Path
) -> Job:
    """Part 1's timed job (:func:`shrinksim.bench.programs.run_job`) with the compiled model
    ``compiled`` (any engine's), every theta kept."""
    from shrinksim.bench.programs import timed_job

    load = os.getloadavg()[0]
    run = timed_job(compiled, data, replicate, settings, cache_dir, theta=True)
    job = Job(side, 1, run.job_seconds, run.cpu_seconds, load, [run.sampling_seconds])
    job.leapfrog, job.sampling_cpu = [run.leapfrog], [run.sampling_cpu]
    job.draws = [{"mu": run.mu, "tau": run.tau, "theta": run.theta}]
    return job


# -- stanc --O1 (investigation: the study's builds are --O0, httpstan's fixed arguments) ----

STANC_O1 = """
import subprocess, types
import httpstan.compile
def _run(args, *rest, **kwargs):  # httpstan.compile runs stanc with fixed arguments
    return subprocess.run([args[0], "--O1", *args[1:]], *rest, **kwargs)
httpstan.compile.subprocess = types.SimpleNamespace(run=_run)
"""
"""Prepended to :data:`shrinksim.engines.fastpath.BUILD`: the same build, stanc ``--O1``."""
O1_MARK = "stan::math::var_value<Eigen::Matrix<double,-1,1>>"
"""In the C++ of the binomial program built with ``--O1`` only (z as a struct of arrays)."""


def compile_o1(code: str, program: str, cache_dir: Path) -> Any:
    """``code`` built by httpstan with stanc ``--O1``, in its own cache ``cache_dir``
    (httpstan's model name hashes the code only, so an --O0 build of the same code would
    share the directory); the :class:`CompiledModel`. Built once, then found there."""
    from shrinksim.engines import PyStanEngine, fastpath
    from shrinksim.engines.pystan import model_directory
    from shrinksim.fitting import example_data

    def built() -> bool:
        folder = model_directory(cache_dir, code)
        return any(O1_MARK in cpp.read_text() for cpp in folder.glob("*.cpp"))

    if not built():
        env = os.environ | {"XDG_CACHE_HOME": str(cache_dir)}
        done = subprocess.run(
            [sys.executable, "-c", STANC_O1 + fastpath.BUILD],
            input=json.dumps({"code": code}),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0 or not built():
            raise RuntimeError(f"{program}: the --O1 build failed:\n{done.stderr[-2000:]}")
    with PyStanEngine(cache_dir) as engine:
        return engine.compile(code, program, example_data(program))


def compile_engines(
    engines: Sequence[str], cache_dir: Path, out: Path, o1: bool
) -> dict[str, Path]:
    """The binomial program compiled by each of ``engines`` (cached), and with ``o1`` PyStan's
    ``--O1`` build; the compiled-model JSON of each, by side."""
    from shrinksim.bench.programs import compile_programs
    from shrinksim.engines import program_source, redirect_output

    paths = {e: compile_programs(e, out, cache_dir, [PROGRAM])[PROGRAM] for e in engines}
    if o1:
        paths[O1] = out / "pystan-o1.json"
        code = program_source(REPO / "stan" / f"{PROGRAM}.stan")
        with redirect_output(out / "compile.log"):
            compile_o1(code, PROGRAM, cache_dir / "stanc-O1").write(paths[O1])
    return paths


# -- the part -------------------------------------------------------------------------------


def alternate(round_: int, steps: Sequence[Callable[[], Job]]) -> list[Job]:
    """Run ``steps`` in order on even rounds, reversed on odd ones (so neither side always
    goes first after the other); the jobs in the order of ``steps``."""
    order = list(range(len(steps)))
    if round_ % 2:
        order.reverse()
    done = {i: steps[i]() for i in order}
    return [done[i] for i in range(len(steps))]


def part_peer(
    reps: int,
    work: Path,
    cache_dir: Path,
    rounds: int = 1,
    stanc_o1: bool = False,
    peer_python: str = sys.executable,
) -> None:
    """Part 8: the peer and shrinksim's engines, one fit per job and batch jobs (see the
    module); without the peer, the engines alone."""
    from shrinksim import tables
    from shrinksim.bench.programs import FORUM_CELL
    from shrinksim.study.simulate import simulate_batch

    engines, missing = engines_present()
    print(
        f"\n## 8. peer: PyMC + nutpie (numba) against shrinksim's engines ({', '.join(engines)}), "
        "binomial program, forum data"
    )
    problem = peer_problem(python=peer_python)
    for line in [*missing, *([f"{PEER}: skipped: {problem}"] if problem else [])]:
        print(line)
    if REFERENCE not in engines or (problem and len(engines) < 2):
        print(f"skipped: needs {REFERENCE} and one more side (the peer or another engine)")
        return
    config = forum_config()
    sampler = config["sampler"]
    print(
        f"{sampler['chains']} chains x {sampler['warmup']} warmup + {sampler['draws']} draws "
        f"one after another (cores=1), target acceptance {sampler['adapt_delta']}, tree depth "
        f"{sampler['max_treedepth']}, on every side; {machine()}"
    )
    folder = work / "peer"
    folder.mkdir(parents=True, exist_ok=True)
    data = simulate_batch(config, FORUM_CELL, list(range(max(reps, *BATCH_SIZES))))

    def data_file(name: str, chosen: Sequence[int]) -> Path:
        path = folder / f"forum-{name}.parquet"
        rows = data[data["replicate"].isin(chosen)].reset_index(drop=True)
        tables.write_table(rows, path, tables.DATA)
        return path

    single = {r: data_file(f"replicate-{r}", [r]) for r in range(reps)}
    batches = {k: data_file(f"first-{k}", range(k)) for k in BATCH_SIZES}
    compiled = compile_engines(engines, cache_dir, folder, stanc_o1)
    settings = json.dumps(
        {
            "sampler": sampler,
            "intercept_prior": config["intercept_prior"],
            "tau_prior": config["priors"]["brms_default"],
        }
    )
    peer = [] if problem else [PEER]

    print(f"\n### 8a. one fit per job (a fresh process each), median of {reps} data sets")
    sides: dict[str, list[Job]] = {side: [] for side in [*peer, *compiled]}
    for rep in range(reps):
        steps = [lambda r=rep: peer_job(peer_python, single[r], settings, 1000, draws=True)]
        steps = steps if peer else []
        steps += [
            lambda r=rep, s=side, p=path: engine_job(s, p, single[r], r, settings, cache_dir)
            for side, path in compiled.items()
        ]
        for side, job in zip(sides, alternate(rep, steps), strict=True):
            sides[side].append(job)
    print_table(single_rows(sides), "", ratio_lines(list(sides)))
    print_ratio_details(sides)
    for side in sides:
        if side not in (REFERENCE, O1):
            print_agreement(sides[side], sides[REFERENCE], f"{side} vs {REFERENCE}")
    if stanc_o1:
        o1, o0 = sides[O1], sides[REFERENCE]
        same = all(
            np.array_equal(a.draws[0]["tau"], b.draws[0]["tau"])
            for a, b in zip(o1, o0, strict=True)
        )
        print_agreement(o1, o0, "pystan --O1 vs --O0 (same seeds)")
        print(f"pystan --O1 draws {'identical to' if same else 'differ from'} --O0's")
    print(load_note([j for jobs in sides.values() for j in jobs]))

    print(
        f"\n### 8b. per-fit cost inside a batch job of k fits (imports, compile or model "
        f"load paid once per job), k = {', '.join(map(str, BATCH_SIZES))}; median of "
        f"{rounds} round(s)"
    )
    batch: list[Job] = []
    for round_ in range(rounds):
        for i, k in enumerate(BATCH_SIZES):
            steps = [lambda k=k: peer_job(peer_python, batches[k], settings, 1000)]
            steps = steps if peer else []
            steps += [
                lambda k=k, s=side: fit_job(s, batches[k], compiled[s], config, cache_dir)
                for side in engines
            ]
            batch += alternate(round_ + i, steps)
    print_batches(batch)
    print(load_note(batch))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m shrinksim.bench.peer``: part 8 alone, or (``job``) the peer's timed job."""
    top = argparse.ArgumentParser(prog="python -m shrinksim.bench.peer", description=__doc__)
    top.add_argument("--reps", type=int, default=3, help="data sets of the one-fit jobs")
    top.add_argument("--rounds", type=int, default=1, help="rounds of the batch jobs")
    top.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    top.add_argument("--stanc-o1", action="store_true", help="also PyStan with stanc --O1")
    top.add_argument(
        "--peer-python",
        default=sys.executable,
        help="the interpreter of the peer's jobs (one with pymc and nutpie; default: this one)",
    )
    sub = top.add_subparsers(dest="command")
    job = sub.add_parser("job", help="internal: the peer's timed job")
    for name in ("--data", "--settings", "--out"):
        job.add_argument(name, required=True)
    job.add_argument("--seed", type=int, required=True)
    job.add_argument("--draws", action="store_true", help="also save mu, tau and theta")
    args = top.parse_args(argv)
    if args.command == "job":
        run_peer_job(args)
        return
    print(f"# shrinksim benchmark, part 8\n{machine()}")
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        cache_dir = args.cache_dir.resolve()
        part_peer(args.reps, Path(tmp), cache_dir, args.rounds, args.stanc_o1, args.peer_python)
    print(f"\nfinished; {machine()}")


if __name__ == "__main__":
    main()
