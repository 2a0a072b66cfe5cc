"""The marginalised Gaussian programs against their non-centred ones: ESS per second.

``python -m shrinksim.bench.marginal [--datasets 3] [--repeats 2] [--groups 8 100]`` fits, for
each family with a marginalised program (``gaussian``, ``gaussian_se``), each group count and
each of ``--datasets`` simulated data sets, both programs ``--repeats`` times, interleaved
(marginal first on even repeats, non-centred first on odd ones, so a change of the machine's
load hits both), PyStan, 4 chains x 1000 warmup + 1000 draws, chains one after another in one
process. It prints, per family, groups and program: the median sampling seconds and bulk ESS
per second of tau and mu, divergences, the posterior agreement of the two programs (the
largest |mean difference| over mu, tau, [sigma] and every theta, in units of the joint MCSE,
over data sets and repeats: below 4 they agree), and the marginalised program's ESS/s over the
non-centred one's (median, min and max of the ratios paired by data set and repeat).

Data: theta_g ~ Normal(0.3, 0.5); gaussian groups of max(1, round(Normal(10, 3))) outcomes
with sigma = 1; gaussian_se standard errors uniform on (0.5, 1.5). Priors: mu, tau and sigma
``student_t(3, 0, 2.5)``.

The fitting and summarising are :mod:`shrinksim.bench.families`' (part 7 of ``make bench``,
every family's partial-pooling program on data like the default study's).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from shrinksim.bench import REPO, machine
from shrinksim.bench.families import MARGINAL, NON_CENTRED, Design, Fit, rotated, summary
from shrinksim.bench.families import run as run_fits
from shrinksim.bench.families import simulate as simulate_family

FAMILIES = ("gaussian", "gaussian_se")
"""Families with a marginalised partial-pooling program."""

DESIGN = Design(mu=0.3, tau=0.5, n=10, n_sd=3, sigma=1.0, se_range=(0.5, 1.5))
"""This benchmark's data (module docstring)."""


def simulate(family: str, groups: int, seed: int) -> pd.DataFrame:
    """One data set of ``groups`` groups of ``family`` (module docstring)."""
    return simulate_family(family, groups, seed, DESIGN)


def rounds(datasets: int, repeats: int, group_counts: Sequence[int]) -> list[list[Fit]]:
    """Per family, group count, data set and repeat, the two programs' fits: marginalised
    first on even repeats, non-centred first on odd ones."""
    out = []
    for family in FAMILIES:
        for groups in group_counts:
            for d in range(datasets):
                data = simulate(family, groups, seed=1000 * groups + d)
                for r in range(repeats):
                    pair = [
                        Fit(family, v, data, d, seed=d + 1, repeat=r)
                        for v in (MARGINAL, NON_CENTRED)
                    ]
                    out.append(rotated(pair, r))
    return out


def run(datasets: int, repeats: int, group_counts: Sequence[int], cache_dir: Path) -> pd.DataFrame:
    """Every fit of the benchmark, one row each (:func:`shrinksim.bench.families.run`); the
    draws' agreement in ``agreement_max`` (the same value on both programs' rows of a data
    set and repeat)."""
    return run_fits(rounds(datasets, repeats, group_counts), cache_dir)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m shrinksim.bench.marginal``."""
    parser = argparse.ArgumentParser(prog="python -m shrinksim.bench.marginal", description=__doc__)
    parser.add_argument("--datasets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--groups", type=int, nargs="+", default=[8, 100])
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    parser.add_argument("--out", type=Path, help="also write every fit's row to this CSV")
    args = parser.parse_args(argv)
    print(f"# marginalised vs non-centred Gaussian programs\n{machine()}")
    fits = run(args.datasets, args.repeats, args.groups, args.cache_dir.resolve())
    if args.out:
        fits.to_csv(args.out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary(fits).drop(columns="program").round(2).to_string())
    print(f"median sampling seconds of a fit: {statistics.median(fits['seconds']):.2f}")
    print(f"finished; {machine()}")


if __name__ == "__main__":
    main()
