"""Part 7 of ``make bench``: each outcome family's partial-pooling program, ESS per second.

``python -m shrinksim.bench.families [--reps 3] [--groups 100]`` (and ``python -m
shrinksim.bench``, as its part 7) simulates ``--reps`` data sets of each outcome family from
the family's own model (:data:`DESIGNS`) and fits every data set with the family's
partial-pooling program (non-centred: ``partial_pooling``, ``poisson_partial_pooling``,
``gaussian_partial_pooling``, ``gaussian_se_partial_pooling``) and, for the Gaussian
families, the marginalised one (``*_partial_pooling_marginal``). The fits are interleaved:
data set d of every program, then data set d + 1, the order rotated by one program per data
set, so a change of the machine's load hits every program alike. PyStan, 4 chains x 1000
warmup + 1000 draws, adapt_delta 0.9, chains one after another in this process; priors on mu,
tau and sigma ``student_t(3, 0, 2.5)``. It prints one table: per program the median sampling
seconds, bulk ESS per second of tau and mu and the divergences, and for ``gaussian`` and
``gaussian_se`` the marginalised program's ESS/s over the non-centred one's (median of the
ratios paired by data set, min-max in brackets), with the largest |mean difference| of the two
posteriors (mu, tau, [sigma] and every theta) in joint MCSEs: below 4 they agree.

Data (:data:`DESIGNS`): 100 groups, theta_g ~ Normal(mu, 0.5) and n_g = max(1,
round(Normal(35, 5.25))), the default study's n = 35 with its 15 % sd: binomial outcomes
(p0 = 0.4, mu = logit 0.4), Poisson counts over an exposure of n_g (rate 0.24), n_g Gaussian
outcomes with sigma = 2, or one estimate with se_g = 2 / sqrt(n_g). A group's sampling variance
is then about 0.12 in every family (binomial 1 / (n p0 (1 - p0)), Poisson 1 / (n rate),
Gaussian sigma^2 / n), so every family shrinks about alike, B = v / (v + tau^2) ~ 0.3.

The fitting and summarising (:class:`Fit`, :func:`run`, :func:`summary`) are shared with
:mod:`shrinksim.bench.marginal`, which measures the marginalised programs alone, on more
group counts.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinksim.bench import REPO, agreement, machine

NON_CENTRED, MARGINAL = "non-centred", "marginal"
"""The two parameterisations of a partial-pooling program (:attr:`Fit.variant`)."""

FAMILIES = ("binomial", "poisson", "gaussian", "gaussian_se")
"""The families of part 7, in the order of its table."""

PRIOR = "student_t(3, 0, 2.5)"
"""Prior on mu, tau and sigma (brms' default)."""

SAMPLER = {"chains": 4, "warmup": 1000, "draws": 1000, "adapt_delta": 0.9, "max_treedepth": 10}
"""NUTS settings of every fit (chains one after another)."""


@dataclass(frozen=True)
class Design:
    """How a benchmark data set is simulated (:func:`simulate`).

    theta_g ~ Normal(mu, tau); n_g = max(1, round(Normal(n, n_sd))) outcomes (binomial,
    gaussian, with within-group sd ``sigma``), units of exposure (poisson), or se_g =
    sigma / sqrt(n_g) (gaussian_se), unless ``se_range`` is given: se_g uniform on it.
    """

    mu: float
    tau: float = 0.5
    n: float = 35.0
    n_sd: float = 5.25
    sigma: float = 1.0
    se_range: tuple[float, float] | None = None


DESIGNS = {
    "binomial": Design(mu=math.log(0.4 / 0.6)),
    "poisson": Design(mu=math.log(0.24)),
    "gaussian": Design(mu=0.0, sigma=2.0),
    "gaussian_se": Design(mu=0.0, sigma=2.0),
}
"""Part 7's data: 100 groups like the default study's n = 35, tau = 0.5, and a group sampling
variance of about 0.12 in every family (module docstring)."""


def simulate(family: str, groups: int, seed: int, design: Design) -> pd.DataFrame:
    """One data set of ``groups`` groups of ``family`` (its columns, and ``group`` 1..G)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(design.mu, design.tau, groups)
    if family == "gaussian_se" and design.se_range is not None:
        se = rng.uniform(*design.se_range, groups)
        columns: dict[str, Any] = {"estimate": rng.normal(theta, se), "se": se}
    else:
        n = np.maximum(1, np.round(rng.normal(design.n, design.n_sd, groups))).astype(int)
        if family == "binomial":
            columns = {"n": n, "y": rng.binomial(n, 1 / (1 + np.exp(-theta)))}
        elif family == "poisson":
            columns = {"y": rng.poisson(n * np.exp(theta)), "exposure": n.astype(float)}
        elif family == "gaussian_se":
            se = design.sigma / np.sqrt(n)
            columns = {"estimate": rng.normal(theta, se), "se": se}
        elif family == "gaussian":
            raw = [rng.normal(t, design.sigma, k) for t, k in zip(theta, n, strict=True)]
            sd = [y.std(ddof=1) if len(y) > 1 else np.nan for y in raw]
            columns = {"n": n, "mean": [y.mean() for y in raw], "sd": sd}
        else:
            raise ValueError(f"unknown family {family!r}")
    return pd.DataFrame({"group": np.arange(1, groups + 1), **columns})


@dataclass(frozen=True)
class Fit:
    """One fit of a benchmark: a family's partial-pooling program (``variant``) on a data set."""

    family: str
    variant: str
    data: pd.DataFrame
    dataset: int
    seed: int
    repeat: int = 0

    @property
    def program(self) -> str:
        """The Stan program (file stem in ``stan/``)."""
        from shrinksim.families import OUTCOME_FAMILIES

        return OUTCOME_FAMILIES[self.family].program("partial", self.variant == MARGINAL)


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` rotated left by ``k`` (for two items: reversed when ``k`` is odd)."""
    k %= max(len(items), 1)
    return [*items[k:], *items[:k]]


def family_rounds(reps: int, groups: int = 100) -> list[list[Fit]]:
    """Part 7's fits: round d fits data set d of every family with every partial-pooling
    program of it (:data:`FAMILIES`; marginalised after non-centred), rotated by d."""
    from shrinksim.families import OUTCOME_FAMILIES

    rounds = []
    for d in range(reps):
        fits = []
        for index, family in enumerate(FAMILIES):
            data = simulate(family, groups, 1000 * index + d, DESIGNS[family])
            variants = [NON_CENTRED] + [MARGINAL] * (OUTCOME_FAMILIES[family].marginal is not None)
            fits += [Fit(family, variant, data, d, seed=d + 1) for variant in variants]
        rounds.append(rotated(fits, d))
    return rounds


def run(
    rounds: Sequence[Sequence[Fit]], cache_dir: Path, compile_log: Path | None = None
) -> pd.DataFrame:
    """Compile every program of ``rounds`` (cached in ``cache_dir``; the compiler's output
    to ``compile_log`` if given), then fit the rounds' fits in order with PyStan. One row per
    fit; ``agreement_max`` is the worst agreement of a round's marginalised and non-centred
    fits of one family (the same value on both rows; NaN without a pair)."""
    from shrinksim.engines import SamplerSettings, make_engine, program_source, redirect_output
    from shrinksim.fitting import example_data, group_draws, stan_data
    from shrinksim.priors import parse_prior

    settings = SamplerSettings(**SAMPLER)
    prior = parse_prior(PRIOR, "prior")
    programs = dict.fromkeys(fit.program for fits in rounds for fit in fits)
    rows = []
    with make_engine("pystan", cache_dir=cache_dir, model_dir=cache_dir) as engine:
        quiet = redirect_output(compile_log) if compile_log else contextlib.nullcontext()
        with quiet:
            compiled = {
                p: engine.compile(program_source(REPO / "stan" / f"{p}.stan"), p, example_data(p))
                for p in programs
            }
        for fits in rounds:
            kept = {}
            for fit in fits:
                standata = stan_data(fit.program, fit.data, prior, prior)
                draws = engine.sample(compiled[fit.program], standata, settings, fit.seed)
                kept[fit.family, fit.variant] = (
                    draws,
                    group_draws(draws, "partial", len(fit.data)),
                )
                rows.append(_row(fit, draws))
            for fit, row in zip(fits, rows[-len(fits) :], strict=True):
                pair = [kept.get((fit.family, v)) for v in (MARGINAL, NON_CENTRED)]
                row["agreement_max"] = _agreement(*pair) if None not in pair else math.nan
    return pd.DataFrame(rows)


def _row(fit: Fit, draws) -> dict[str, Any]:
    from shrinksim.diagnostics import ess_bulk

    row = {
        "family": fit.family,
        "groups": len(fit.data),
        "dataset": fit.dataset,
        "repeat": fit.repeat,
        "variant": fit.variant,
        "program": fit.program,
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
    """Per family, groups and variant (in the order of ``fits``): the program, medians over
    data sets and repeats, divergences, the worst agreement, and on the marginalised rows the
    marginalised program's ESS/s over the non-centred one's: median, min and max of the
    ratios paired by data set and repeat (``speedup_tau``, ``speedup_tau_min``, ...)."""
    keys = ["family", "groups", "variant"]
    table = fits.groupby(keys, sort=False).agg(
        program=("program", "first"),
        seconds=("seconds", "median"),
        ess_tau=("ess_tau", "median"),
        ess_per_s_tau=("ess_per_s_tau", "median"),
        ess_mu=("ess_mu", "median"),
        ess_per_s_mu=("ess_per_s_mu", "median"),
        divergences=("divergences", "sum"),
        agreement_max=("agreement_max", "max"),
    )
    pair = ["family", "groups", "dataset", "repeat"]
    speed = fits.set_index([*pair, "variant"])[["ess_per_s_tau", "ess_per_s_mu"]].unstack()
    for name in ("tau", "mu"):
        column = f"ess_per_s_{name}"
        if (column, MARGINAL) not in speed or (column, NON_CENTRED) not in speed:
            table[f"speedup_{name}"] = math.nan
            continue
        ratio = (speed[column, MARGINAL] / speed[column, NON_CENTRED]).dropna()
        stats = ratio.groupby(["family", "groups"]).agg(["median", "min", "max"])
        stats.columns = [f"speedup_{name}", f"speedup_{name}_min", f"speedup_{name}_max"]
        stats["variant"] = MARGINAL
        table = table.join(stats.set_index("variant", append=True), on=keys)
    return table


def _speedup(row: pd.Series, name: str) -> str:
    """``12.20x (9.01-14.10)``, or nothing where the row has no ratio."""
    median = row.get(f"speedup_{name}", math.nan)
    if not np.isfinite(median):
        return ""
    low, high = row[f"speedup_{name}_min"], row[f"speedup_{name}_max"]
    return f"{median:.2f}x ({low:.2f}-{high:.2f})"


def format_table(table: pd.DataFrame) -> str:
    """Part 7's table from :func:`summary`: one line per program, then the agreement of each
    family's marginalised and non-centred posteriors."""
    head = (
        f"{'program':37} {'sampling s':>10} {'ESS/s tau':>10} {'ESS/s mu':>10} {'div':>4} "
        f"{'ratio tau':>22} {'ratio mu':>22}"
    )
    lines = [head]
    for _, row in table.reset_index().iterrows():
        lines.append(
            f"{row['program']:37} {row['seconds']:10.2f} {row['ess_per_s_tau']:10.1f} "
            f"{row['ess_per_s_mu']:10.1f} {row['divergences']:4d} {_speedup(row, 'tau'):>22} "
            f"{_speedup(row, 'mu'):>22}".rstrip()
        )
    lines.append(
        "ratio: the marginalised program's ESS/s over the non-centred one's, median (min-max) "
        "of the ratios paired by data set; div: divergent transitions, all fits"
    )
    paired = table.reset_index()
    paired = paired[(paired["variant"] == MARGINAL) & paired["agreement_max"].notna()]
    for _, row in paired.iterrows():
        z = row["agreement_max"]
        lines.append(
            f"{row['family']}: marginalised and non-centred posteriors differ by at most "
            f"{z:.2f} MCSE ({'agree' if z < 4 else 'DISAGREE'}, < 4)"
        )
    return "\n".join(lines)


def part_families(reps: int, work: Path, cache_dir: Path, groups: int = 100) -> pd.DataFrame:
    """Part 7 (module docstring); returns every fit's row."""
    sampler = SAMPLER
    print(
        f"\n## 7. outcome families: each family's partial-pooling program, non-centred and "
        f"marginalised\ndata: {groups} groups, n~35 (sd 15 %), tau 0.5, group sampling variance "
        f"~0.12 in every family (binomial p0 0.4; poisson rate 0.24 per unit of exposure n; "
        f"gaussian sigma 2; gaussian_se se 2/sqrt(n)); priors {PRIOR} on mu, tau, sigma; "
        f"pystan, {sampler['chains']} chains x {sampler['warmup']} warmup + {sampler['draws']} "
        f"draws, adapt_delta {sampler['adapt_delta']}, chains one after another; programs "
        f"interleaved; median of {reps} data sets"
    )
    fits = run(family_rounds(reps, groups), cache_dir, work / "families-compile.log")
    print(format_table(summary(fits)))
    return fits


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m shrinksim.bench.families``: part 7 alone."""
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m shrinksim.bench.families", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="data sets per family")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache")
    parser.add_argument("--out", type=Path, help="also write every fit's row to this CSV")
    args = parser.parse_args(argv)
    print(f"# shrinksim benchmark, part 7\n{machine()}")
    with tempfile.TemporaryDirectory(prefix="shrinksim-bench-") as tmp:
        fits = part_families(args.reps, Path(tmp), args.cache_dir.resolve(), args.groups)
    if args.out:
        fits.to_csv(args.out, index=False)
    print(f"\nfinished; {machine()}")


if __name__ == "__main__":
    main()
