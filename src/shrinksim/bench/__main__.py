"""``make bench``: how fast shrinksim is, measured side by side in one run.

``python -m shrinksim.bench [--reps 3] [--grid default|tiny] [--cores 2] [--parts 1-8]
[--peer-python PATH]`` prints:

1. the binomial (sufficient statistics) program against the per-outcome bernoulli program
   (brms' likelihood) on forum-like data, for each Stan engine present (the nutpie engine
   has no bernoulli density; its binomial job is in part 8): sampling seconds, whole-job
   seconds (a fresh process: imports, model load, fit, summaries), ESS/s of tau and mu, and
   the posterior agreement of the two programs in MCSE units;
2. brms on the same data, where R and brms are installed;
3. a grid run of the study once per engine present (PyStan, the nutpie engine, cmdstanpy
   where CmdStan exists), side by side: compile time (apart), wall time, sum of pure
   sampling time, their ratio, and each engine's over PyStan's;
4. a rerun of the unchanged workflow;
5. bytes written per fit;
6. peak memory (RSS) of a fitting job;
7. each outcome family's partial-pooling program (binomial, poisson, gaussian, gaussian_se)
   and the Gaussian families' marginalised programs on data simulated from each family's
   model, interleaved: sampling seconds, ESS/s of tau and mu, and the marginalised over
   non-centred ESS/s ratio (``python -m shrinksim.bench.families`` runs it alone);
8. the peer, PyMC + nutpie, where installed (``pip install -e '.[peer]'``, or
   ``--peer-python`` of a venv that has it), against every engine present, on the binomial
   model and the forum data: one fit per job (sampling seconds, ESS/s of tau and mu,
   leapfrog steps, posterior agreement with PyStan, ratios to PyStan and to the peer) and the
   per-fit cost inside batch jobs of 1, 3 and 10 fits; without the peer, the engines alone
   (``python -m shrinksim.bench.peer`` runs it alone).

``--parts 3,8`` runs a subset (default: every part); a part runs the part it needs too: 2
runs 1 (it compares with part 1's job), 4 and 5 run 3 (they use its study).

Medians over ``--reps`` repetitions. The numbers, the machine and how to reproduce them are
in docs/benchmarks.md. ``python -m shrinksim.bench job ...`` is the timed fitting job of
parts 1 and 8 (internal).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from shrinksim.bench import REPO, machine

PARTS = range(1, 9)
"""The parts of the benchmark."""


def parse_parts(text: str) -> list[int]:
    """``--parts``: comma-separated part numbers (``3,8``), sorted."""
    try:
        parts = sorted({int(part) for part in text.split(",")})
    except ValueError:
        parts = []
    if not parts or not set(parts) <= set(PARTS):
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated parts of 1-8, e.g. 3,8")
    return parts


def needed(parts: Sequence[int]) -> set[int]:
    """The parts to run for ``parts``: 2 needs 1's job, 4 and 5 need 3's study."""
    run = set(parts)
    if 2 in run:
        run.add(1)
    if run & {4, 5}:
        run.add(3)
    return run


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m shrinksim.bench``."""
    top = argparse.ArgumentParser(prog="python -m shrinksim.bench", description=__doc__)
    top.add_argument(
        "--reps", type=int, default=3, help="data sets fitted per program (parts 1, 6, 7, 8a)"
    )
    top.add_argument("--grid", choices=["default", "tiny"], default="default")
    top.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    top.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    top.add_argument(
        "--peer-rounds", type=int, default=1, help="rounds of part 8's batch jobs (k = 1, 3, 10)"
    )
    top.add_argument(
        "--peer-python",
        default=sys.executable,
        help="interpreter of part 8's peer jobs (one with pymc and nutpie; default: this one)",
    )
    top.add_argument(
        "--parts",
        type=parse_parts,
        default=list(PARTS),
        help="comma-separated parts to run, e.g. 3,8 (default: all; 2 runs 1, 4 and 5 run 3)",
    )
    sub = top.add_subparsers(dest="command")
    job = sub.add_parser("job", help="internal: the timed fitting job of parts 1 and 8")
    for name in ("--compiled", "--data", "--settings", "--cache-dir", "--out"):
        job.add_argument(name, required=True)
    job.add_argument("--replicate", type=int, required=True)
    job.add_argument("--seed", type=int, required=True)
    job.add_argument("--theta", action="store_true", help="also save theta and leapfrog steps")
    args = top.parse_args(argv)
    from shrinksim.bench import programs  # after parsing: the timed job imports no more

    if args.command == "job":
        programs.run_job(args)
        return
    from shrinksim.bench import families, peer, workflow

    run = needed(args.parts)
    plural = "s" if len(run) > 1 else ""
    subset = "" if run == set(PARTS) else f", part{plural} {', '.join(map(str, sorted(run)))}"
    print(f"# shrinksim benchmark{subset}\n{machine()}")
    cache_dir = args.cache_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        work = Path(tmp)
        if 1 in run:
            job_seconds = programs.part_programs(args.reps, work, cache_dir)
        if 2 in run:
            programs.part_brms(work, job_seconds)
        if 3 in run:
            parts = [part for part in (3, 4, 5) if part in run]
            workflow.part_workflow(args.grid, args.cores, work, cache_dir, parts)
        if 6 in run:
            workflow.part_memory(work, cache_dir, args.reps)
        if 7 in run:
            families.part_families(args.reps, work, cache_dir)
        if 8 in run:
            peer.part_peer(
                args.reps,
                work,
                cache_dir,
                rounds=args.peer_rounds,
                peer_python=args.peer_python,
            )
    print(f"\nfinished; {machine()}")


if __name__ == "__main__":
    main()
