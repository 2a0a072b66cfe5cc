"""Command line called by the Snakemake rules: ``python -m shrinksim STAGE ...``.

Each stage reads its inputs, does its work through the package and writes its outputs
atomically. Settings arrive as JSON holding only what the stage needs, so Snakemake reruns
exactly the jobs whose settings changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shrinksim import tables


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_simulate(args: argparse.Namespace) -> None:
    from shrinksim.config import DataCell
    from shrinksim.simulate import simulate_batch

    settings = json.loads(args.settings)
    frame = simulate_batch(settings, DataCell.from_path(args.cell), args.replicates)
    tables.write_table(frame, args.out, tables.DATA)


def cmd_compile(args: argparse.Namespace) -> None:
    from shrinksim.engine import make_engine, program_source
    from shrinksim.fit import example_data

    program = Path(args.stan_file).stem
    _progress(f"compiling {args.stan_file} with {args.engine}")
    with make_engine(
        args.engine, cache_dir=args.cache_dir, model_dir=Path(args.out).parent
    ) as engine:
        compiled = engine.compile(program_source(args.stan_file), program, example_data(program))
    text = json.dumps(compiled, indent=1)
    tables.write_atomic(args.out, lambda tmp: Path(tmp).write_text(text))


def cmd_fit(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from shrinksim.config import STAN_PROGRAMS, FitCell
    from shrinksim.engine import make_engine
    from shrinksim.fit import fit_batch

    lengths = [len(args.cells), len(args.groups_out), len(args.fits_out), len(args.draws_out)]
    if len(set(lengths)) != 1:
        sys.exit(
            f"fit: --cells, --groups-out, --fits-out and --draws-out need one entry per cell; "
            f"got {', '.join(map(str, lengths))}"
        )
    settings = json.loads(args.settings)
    compiled = [json.loads(Path(path).read_text()) for path in args.compiled]
    models = {c["program"]: c for c in compiled}
    data = pq.read_table(args.data, schema=tables.DATA).to_pandas()
    outputs = zip(args.cells, args.groups_out, args.fits_out, args.draws_out, strict=True)
    with make_engine(
        compiled[0]["engine"],
        cache_dir=args.cache_dir,
        model_dir=Path(args.compiled[0]).parent,
        threads=args.threads,
    ) as engine:
        for i, (path, groups_out, fits_out, draws_out) in enumerate(outputs, start=1):
            cell = FitCell.from_path(path)
            _progress(f"fit cell {i}/{len(args.cells)}: {cell.path}")
            cell_settings = dict(settings)
            if cell.model == "partial":
                cell_settings["tau_prior"] = settings["priors"][cell.prior]
            done = fit_batch(
                engine, models[STAN_PROGRAMS[cell.model]], cell, data, cell_settings, _progress
            )
            tables.write_table(done.groups, groups_out, tables.GROUPS)
            tables.write_table(done.fits, fits_out, tables.FITS)
            tables.write_table(done.draws, draws_out, tables.DRAWS)


def cmd_summarize(args: argparse.Namespace) -> None:
    from shrinksim.summarize import shrinkage_per_cell, shrinkage_per_fit

    groups = tables.read_tables(args.groups, tables.GROUPS)
    fits = tables.read_tables(args.fits, tables.FITS)
    per_fit = shrinkage_per_fit(groups, fits, args.p0)
    out = Path(args.out_dir)
    tables.write_table(groups, out / "groups.parquet", tables.GROUPS)
    tables.write_table(fits, out / "fits.parquet", tables.FITS)
    draws = tables.read_tables(args.draws, tables.DRAWS)
    tables.write_table(draws, out / "draws.parquet", tables.DRAWS)
    tables.write_table(per_fit, out / "shrinkage.parquet", tables.SHRINKAGE)
    tables.write_table(shrinkage_per_cell(per_fit), out / "cells.parquet", tables.CELLS)
    bad = fits[fits["status"] != "ok"]
    _progress(f"{len(fits)} fits: {len(fits) - len(bad)} ok, {len(bad)} with problems")


def cmd_measures(args: argparse.Namespace) -> None:
    from shrinksim.measures import measures

    groups = tables.read_tables([args.groups], tables.GROUPS)
    fits = tables.read_tables([args.fits], tables.FITS)
    shrinkage = tables.read_tables([args.shrinkage], tables.SHRINKAGE)
    frame = measures(fits, groups, shrinkage, args.p0, args.chains)
    tables.write_table(frame, args.out, tables.MEASURES)
    tables.write_atomic(args.csv, lambda tmp: frame.to_csv(tmp, index=False))
    _progress(f"{len(frame)} measures of {len(fits)} fits")


def cmd_plot(args: argparse.Namespace) -> None:
    from shrinksim import plot

    summary = plot.Summary(
        measures=tables.read_tables([args.measures], tables.MEASURES),
        groups=tables.read_tables([args.groups], tables.GROUPS),
        fits=tables.read_tables([args.fits], tables.FITS),
        draws=tables.read_tables([args.draws], tables.DRAWS),
        p0=args.p0,
        density_n=args.density_n,
    )
    plot.draw(summary, args.out, workers=args.threads)


def cmd_report(args: argparse.Namespace) -> None:
    from shrinksim import report

    fits = tables.read_tables([args.fits], tables.FITS)
    measures = tables.read_tables([args.measures], tables.MEASURES)
    pages = {
        args.config_out: report.config_page(json.loads(args.config)),
        args.software_out: report.software_page(report.software(fits["engine"].dropna())),
        args.measures_out: report.measures_page(measures),
    }
    for path, text in pages.items():
        tables.write_atomic(path, lambda tmp, text=text: Path(tmp).write_text(text, "utf-8"))


def cmd_sbc_fit(args: argparse.Namespace) -> None:
    from shrinksim import sbc
    from shrinksim.engine import make_engine

    settings = json.loads(args.settings)
    compiled = json.loads(Path(args.compiled).read_text())
    with make_engine(
        compiled["engine"],
        cache_dir=args.cache_dir,
        model_dir=Path(args.compiled).parent,
        threads=args.threads,
    ) as engine:
        ranks = sbc.fit_batch(
            engine,
            compiled,
            sbc.SbcCell.from_path(args.cell),
            settings,
            args.simulations,
            progress=_progress,
        )
    tables.write_table(ranks, args.out, tables.SBC_RANKS)


def cmd_sbc_summarize(args: argparse.Namespace) -> None:
    from shrinksim import sbc

    ranks = tables.read_tables(args.ranks, tables.SBC_RANKS)
    tests = sbc.calibration_tests(ranks, args.alpha)
    tables.write_table(ranks, args.ranks_out, tables.SBC_RANKS)
    tables.write_table(tests, args.tests_out, tables.SBC_TESTS)
    for row in tests.itertuples():
        _progress(
            f"n={row.n_per_group} prior={row.prior} {row.parameter}: p={row.p_value:.4f} "
            f"(Holm {row.p_adjusted:.4f}){' REJECTED' if row.rejected else ''}"
        )
    _progress(f"{int(tests['rejected'].sum())} of {len(tests)} rank tests reject at {args.alpha}")


def cmd_sbc_plot(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from shrinksim import plot

    ranks = pq.read_table(args.ranks).to_pandas()
    tests = pq.read_table(args.tests).to_pandas()
    plot.sbc_ecdf(ranks, tests, args.out)


def parser() -> argparse.ArgumentParser:
    """The ``shrinksim`` argument parser."""
    top = argparse.ArgumentParser(prog="shrinksim", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="simulate the data sets of one data cell and batch")
    p.add_argument("--settings", required=True, help="JSON: seed and data settings")
    p.add_argument("--cell", required=True, help="data cell path, e.g. n~35/groups~100/tau~0.25")
    p.add_argument("--replicates", required=True, type=lambda s: [int(r) for r in s.split(",")])
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("compile", help="compile one Stan program once for the whole study")
    p.add_argument("--stan-file", required=True)
    p.add_argument("--engine", required=True, choices=["cmdstanpy", "pystan"])
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--out", required=True, help="JSON describing the compiled model")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser(
        "fit", help="fit a data cell's batch of replicates with several fits (prior, model)"
    )
    p.add_argument(
        "--settings", required=True, help="JSON: seed, sampler, retry, intercept_prior, priors"
    )
    p.add_argument(
        "--cells",
        nargs="+",
        required=True,
        help="fit cell paths, e.g. .../prior~weak/model~partial",
    )
    p.add_argument("--data", required=True)
    p.add_argument("--compiled", nargs="+", required=True, help="compiled-model JSON per program")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--groups-out", nargs="+", required=True, help="one per cell, in --cells order")
    p.add_argument("--fits-out", nargs="+", required=True, help="one per cell")
    p.add_argument("--draws-out", nargs="+", required=True, help="one per cell (thinned draws)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summarize", help="combine fits and measure shrinkage")
    p.add_argument("--groups", nargs="+", required=True)
    p.add_argument("--fits", nargs="+", required=True)
    p.add_argument("--draws", nargs="+", required=True)
    p.add_argument("--p0", type=float, required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("measures", help="performance measures per cell, with MCSE")
    p.add_argument("--groups", required=True)
    p.add_argument("--fits", required=True)
    p.add_argument("--shrinkage", required=True)
    p.add_argument("--p0", type=float, required=True)
    p.add_argument("--chains", type=int, required=True, help="chains per fit (low-ESS threshold)")
    p.add_argument("--out", required=True, help="Parquet table")
    p.add_argument("--csv", required=True, help="CSV copy of the table")
    p.set_defaults(func=cmd_measures)

    p = sub.add_parser("plot", help="draw the figures from the summary tables")
    p.add_argument("--measures", required=True)
    p.add_argument("--groups", required=True)
    p.add_argument("--fits", required=True)
    p.add_argument("--draws", required=True)
    p.add_argument("--p0", type=float, required=True)
    p.add_argument("--density-n", type=int, required=True, help="n of the densities figure")
    p.add_argument(
        "--out", nargs="+", required=True, help="figure files: the stem names the figure"
    )
    p.add_argument("--threads", type=int, default=1, help="figures drawn in parallel")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="report pages: configuration, software, measures")
    p.add_argument("--config", required=True, help="JSON: the configuration used")
    p.add_argument("--fits", required=True)
    p.add_argument("--measures", required=True)
    p.add_argument("--config-out", required=True)
    p.add_argument("--software-out", required=True)
    p.add_argument("--measures-out", required=True)
    p.set_defaults(func=cmd_report)

    from shrinksim.cli_userdata import register

    register(sub)  # userdata-* stages (your data)

    p = sub.add_parser("sbc-fit", help="simulation-based calibration: one design's batch")
    p.add_argument("--settings", required=True, help="JSON: seed, priors, n_sd, sbc section")
    p.add_argument("--cell", required=True, help="SBC design, e.g. n~10/groups~10/prior~weak")
    p.add_argument("--simulations", required=True, type=lambda s: [int(i) for i in s.split(",")])
    p.add_argument("--compiled", required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sbc_fit)

    p = sub.add_parser("sbc-summarize", help="combine SBC ranks and test their uniformity")
    p.add_argument("--ranks", nargs="+", required=True)
    p.add_argument("--alpha", type=float, required=True, help="family-wise level (Holm)")
    p.add_argument("--ranks-out", required=True)
    p.add_argument("--tests-out", required=True)
    p.set_defaults(func=cmd_sbc_summarize)

    p = sub.add_parser("sbc-plot", help="ECDF differences of the SBC ranks with 95 %% bands")
    p.add_argument("--ranks", required=True)
    p.add_argument("--tests", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sbc_plot)
    return top


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
