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
6. peak memory (RSS) of a fitting job;
7. each outcome family's partial-pooling program (binomial, poisson, gaussian, gaussian_se)
   and the Gaussian families' marginalised programs on data simulated from each family's
   model, interleaved: sampling seconds, ESS/s of tau and mu, and the marginalised over
   non-centred ESS/s ratio (``python -m shrinksim.bench.families`` runs it alone);
8. the peer, PyMC + nutpie, where installed (``pip install -e '.[peer]'``): the binomial
   model on the forum data against PyStan, one fit per job (sampling seconds, ESS/s of tau
   and mu, leapfrog steps, posterior agreement) and the per-fit cost inside batch jobs of
   1, 3 and 10 fits (``python -m shrinksim.bench.peer`` runs it alone).

Medians over ``--reps`` repetitions. The numbers, the machine and how to reproduce them are
in docs/benchmarks.md. ``python -m shrinksim.bench job ...`` is the timed fitting job of
parts 1 and 8 (internal).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from shrinksim.bench import REPO, machine


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m shrinksim.bench``."""
    top = argparse.ArgumentParser(prog="python -m shrinksim.bench", description=__doc__)
    top.add_argument(
        "--reps", type=int, default=3, help="data sets fitted per program (parts 1 and 7)"
    )
    top.add_argument("--grid", choices=["default", "tiny"], default="default")
    top.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    top.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    top.add_argument(
        "--peer-rounds", type=int, default=1, help="rounds of part 8's batch jobs (k = 1, 3, 10)"
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

    print(f"# shrinksim benchmark\n{machine()}")
    cache_dir = args.cache_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        work = Path(tmp)
        job_seconds = programs.part_programs(args.reps, work, cache_dir)
        programs.part_brms(work, job_seconds)
        workflow.part_workflow(args.grid, args.cores, work, cache_dir)
        workflow.part_memory(work, cache_dir)
        families.part_families(args.reps, work, cache_dir)
        peer.part_peer(args.reps, work, cache_dir, rounds=args.peer_rounds)
    print(f"\nfinished; {machine()}")


if __name__ == "__main__":
    main()
