"""The marginalised Gaussian programs against their non-centred ones: ESS per second.

``python -m shrinksim.bench.marginal [--datasets 3] [--repeats 2] [--groups 8 100]`` fits, for
each family with a marginalised program (``gaussian``, ``gaussian_se``), each group count and
each of ``--datasets`` simulated data sets, both programs ``--repeats`` times, interleaved
(marginal first on even repeats, non-centred first on odd ones, so a change of the machine's
load hits both), PyStan, 4 chains x 1000 warmup + 1000 draws, chains one after another in one
process. It prints, per family, groups and program: the median sampling seconds and bulk ESS
per second of tau and mu, divergences, and the posterior agreement of the two programs (the
largest |mean difference| over mu, tau, [sigma] and every theta, in units of the joint MCSE,
over data sets and repeats: below 4 they agree).

Data: theta_g ~ Normal(0.3, 0.5); gaussian groups of max(1, round(Normal(10, 3))) outcomes
with sigma = 1; gaussian_se standard errors uniform on (0.5, 1.5). Priors: mu, tau and sigma
``student_t(3, 0, 2.5)``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shrinksim.bench import REPO, agreement, machine

FAMILIES = ("gaussian", "gaussian_se")
"""Families with a marginalised partial-pooling program."""


def simulate(family: str, groups: int, seed: int) -> pd.DataFrame:
    """One data set of ``groups`` groups of ``family`` (module docstring)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.3, 0.5, groups)
    if family == "gaussian_se":
        se = rng.uniform(0.5, 1.5, groups)
        return pd.DataFrame({"estimate": rng.normal(theta, se), "se": se})
    n = np.maximum(1, np.round(rng.normal(10, 3, groups))).astype(int)
    raw = [rng.normal(t, 1.0, k) for t, k in zip(theta, n, strict=True)]
    sd = [y.std(ddof=1) if len(y) > 1 else np.nan for y in raw]
    return pd.DataFrame({"n": n, "mean": [y.mean() for y in raw], "sd": sd})


def run(datasets: int, repeats: int, group_counts: Sequence[int], cache_dir: Path) -> pd.DataFrame:
    """Every fit of the benchmark, one row each; the draws' agreement in ``agreement_max``
    (the same value on both programs' rows of a data set and repeat)."""
    from shrinksim.engines import SamplerSettings, make_engine, program_source
    from shrinksim.families import OUTCOME_FAMILIES
    from shrinksim.fitting import example_data, group_draws, stan_data
    from shrinksim.priors import parse_prior

    settings = SamplerSettings(chains=4, warmup=1000, draws=1000, adapt_delta=0.9, max_treedepth=10)
    prior = parse_prior("student_t(3, 0, 2.5)", "prior")
    rows = []
    with make_engine("pystan", cache_dir=cache_dir, model_dir=cache_dir) as engine:
        for family in FAMILIES:
            spec = OUTCOME_FAMILIES[family]
            programs = {
                "marginal": spec.program("partial", True),
                "centred": spec.program("partial"),
            }
            compiled = {
                kind: engine.compile(
                    program_source(REPO / "stan" / f"{p}.stan"), p, example_data(p)
                )
                for kind, p in programs.items()
            }
            for groups in group_counts:
                for d in range(datasets):
                    data = simulate(family, groups, seed=1000 * groups + d)
                    for r in range(repeats):
                        order = ["marginal", "centred"] if r % 2 == 0 else ["centred", "marginal"]
                        kept = {}
                        for kind in order:
                            standata = stan_data(programs[kind], data, prior, prior)
                            draws = engine.sample(compiled[kind], standata, settings, seed=d + 1)
                            kept[kind] = draws
                            rows.append(_row(family, groups, d, r, kind, draws))
                        worst = _agreement(
                            *(
                                (kept[k], group_draws(kept[k], "partial", groups))
                                for k in ("marginal", "centred")
                            )
                        )
                        rows[-1]["agreement_max"] = rows[-2]["agreement_max"] = worst
    return pd.DataFrame(rows)


def _row(family: str, groups: int, dataset: int, repeat: int, kind: str, draws) -> dict:
    from shrinksim.diagnostics import ess_bulk

    row = {
        "family": family,
        "groups": groups,
        "dataset": dataset,
        "repeat": repeat,
        "program": kind,
        "seconds": draws.seconds,
        "divergences": int(draws.sampler["divergent__"].sum()),
    }
    for name in ("tau", "mu"):
        row[f"ess_{name}"] = float(ess_bulk(draws.params[name]))
        row[f"ess_per_s_{name}"] = row[f"ess_{name}"] / draws.seconds
    return row


def _agreement(a: tuple, b: tuple) -> float:
    """Largest |mean difference| / joint MCSE over mu, tau, [sigma] and every theta."""
    (da, theta_a), (db, theta_b) = a, b
    names = [k for k in ("mu", "tau", "sigma") if k in da.params]
    z = [agreement(da.params[k], db.params[k]) for k in names]
    z += [agreement(theta_a[..., g], theta_b[..., g]) for g in range(theta_a.shape[-1])]
    return max(z)


def summary(fits: pd.DataFrame) -> pd.DataFrame:
    """Per family, groups and program: medians over data sets and repeats, divergences, the
    worst agreement, and the marginalised program's ESS/s ratio to the non-centred one."""
    table = fits.groupby(["family", "groups", "program"]).agg(
        seconds=("seconds", "median"),
        ess_tau=("ess_tau", "median"),
        ess_per_s_tau=("ess_per_s_tau", "median"),
        ess_mu=("ess_mu", "median"),
        ess_per_s_mu=("ess_per_s_mu", "median"),
        divergences=("divergences", "sum"),
        agreement_max=("agreement_max", "max"),
    )
    for name in ("tau", "mu"):
        speed = table[f"ess_per_s_{name}"].unstack("program")
        ratio = (speed["marginal"] / speed["centred"]).rename(f"speedup_{name}")
        table = table.join(ratio, on=["family", "groups"])
    return table


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
        print(summary(fits).round(2).to_string())
    print(f"median sampling seconds of a fit: {statistics.median(fits['seconds']):.2f}")
    print(f"finished; {machine()}")


if __name__ == "__main__":
    main()
