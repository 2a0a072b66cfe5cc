"""Stages of simulation-based calibration: sbc-fit, sbc-summarize, sbc-plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from shrinksim import tables
from shrinksim.cli.common import engine_arguments, integers, mapping
from shrinksim.log import logger


def cmd_sbc_fit(args: argparse.Namespace) -> None:
    from shrinksim.engines import open_models
    from shrinksim.sbc.design import SbcCell
    from shrinksim.sbc.fit import fit_batch

    engine, models = open_models(args.compiled, cache_dir=args.cache_dir, threads=args.threads)
    (compiled,) = models.values()
    with engine:
        ranks = fit_batch(
            engine,
            compiled,
            SbcCell.from_path(args.cell),
            args.settings,
            args.simulations,
            progress=logger.info,
        )
    tables.write_table(ranks, args.out, tables.SBC_RANKS)


def cmd_sbc_summarize(args: argparse.Namespace) -> None:
    from shrinksim.sbc.calibration import calibration_tests
    from shrinksim.sbc.design import rank_files

    files = rank_files(args.study, args.results)
    missing = [path for path in files if not Path(path).exists()]
    if missing:
        raise SystemExit(f"sbc-summarize: {len(missing)} rank tables missing, e.g. {missing[0]}")
    ranks = tables.read_tables(files, tables.SBC_RANKS)
    tests = calibration_tests(ranks, args.alpha)
    tables.write_table(ranks, args.ranks_out, tables.SBC_RANKS)
    tables.write_table(tests, args.tests_out, tables.SBC_TESTS)
    for row in tests.itertuples():
        logger.info(
            f"n={row.n_per_group} prior={row.prior} {row.parameter}: p={row.p_value:.4f} "
            f"(Holm {row.p_adjusted:.4f}){' REJECTED' if row.rejected else ''}"
        )
    rejected = int(tests["rejected"].sum())
    logger.info(f"{rejected} of {len(tests)} rank tests reject at {args.alpha}")


def cmd_sbc_plot(args: argparse.Namespace) -> None:
    from shrinksim.sbc.plot import sbc_ecdf

    ranks = tables.read_tables([args.ranks], tables.SBC_RANKS)
    tests = tables.read_tables([args.tests], tables.SBC_TESTS)
    sbc_ecdf(ranks, tests, args.out)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the SBC stages to the main parser's subcommands."""
    p = sub.add_parser("sbc-fit", help="simulation-based calibration: one design's batch")
    engine_arguments(p)
    p.add_argument(
        "--cell", required=True, help="SBC design, e.g. n_per_group=10/groups=10/prior=weak"
    )
    p.add_argument("--simulations", type=integers, required=True, help="start:stop, e.g. 0:3")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sbc_fit)

    p = sub.add_parser("sbc-summarize", help="combine SBC ranks and test their uniformity")
    p.add_argument("--study", type=mapping, required=True, help="JSON: the sbc section")
    p.add_argument("--results", required=True, help="the results folder holding the ranks")
    p.add_argument("--alpha", type=float, required=True, help="family-wise level (Holm)")
    p.add_argument("--ranks-out", required=True)
    p.add_argument("--tests-out", required=True)
    p.set_defaults(func=cmd_sbc_summarize)

    p = sub.add_parser("sbc-plot", help="ECDF differences of the SBC ranks with 95 %% bands")
    p.add_argument("--ranks", required=True)
    p.add_argument("--tests", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sbc_plot)
