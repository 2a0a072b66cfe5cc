"""Stages of the grid study: simulate, compile, fit, summarize, measures, plot, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from shrinksim import tables
from shrinksim.cli.common import engine_arguments, integers, mapping
from shrinksim.engines import ENGINES
from shrinksim.log import logger


def cmd_simulate(args: argparse.Namespace) -> None:
    from shrinksim.design import DataCell
    from shrinksim.study.simulate import simulate_batch

    frame = simulate_batch(args.settings, DataCell.from_path(args.cell), args.replicates)
    tables.write_table(frame, args.out, tables.DATA)


def cmd_compile(args: argparse.Namespace) -> None:
    from shrinksim.engines import make_engine, program_source
    from shrinksim.fitting import example_data

    program = Path(args.stan_file).stem
    logger.info(f"compiling {args.stan_file} with {args.engine}")
    with make_engine(
        args.engine, cache_dir=args.cache_dir, model_dir=Path(args.out).parent
    ) as engine:
        compiled = engine.compile(program_source(args.stan_file), program, example_data(program))
    compiled.write(args.out)


def cmd_fit(args: argparse.Namespace) -> None:
    """Every (prior, model) fit of ``settings["fits"]`` on one data cell's batch; one table
    of each kind for all of them."""
    from shrinksim.design import DataCell, FitCell
    from shrinksim.engines import open_models
    from shrinksim.families import study_family
    from shrinksim.study.fit import fit_batch

    settings = args.settings
    data_cell = DataCell.from_path(args.cell)
    data = tables.read_tables([args.data], tables.DATA)
    engine, models = open_models(args.compiled, cache_dir=args.cache_dir, threads=args.threads)
    done = []
    with engine:
        for i, (prior, model) in enumerate(settings["fits"], start=1):
            cell = FitCell(data_cell, prior, model)
            logger.info(f"fit cell {i}/{len(settings['fits'])}: {cell.key}")
            cell_settings = dict(settings)
            if model == "partial":
                cell_settings["tau_prior"] = settings["priors"][prior]
            program = models[study_family(settings).study_program(model)]
            done.append(fit_batch(engine, program, cell, data, cell_settings, logger.info))
    for table, schema, out in (
        ("groups", tables.GROUPS, args.groups_out),
        ("fits", tables.FITS, args.fits_out),
        ("draws", tables.DRAWS, args.draws_out),
    ):
        frames = [getattr(batch, table) for batch in done]
        tables.write_table(tables.concat(frames, schema), out, schema)


def cmd_summarize(args: argparse.Namespace) -> None:
    """The streaming reduce: every fit job's tables -> per-fit, shrinkage and cell tables,
    and the figures' examples (first batch of every data cell)."""
    from shrinksim import design
    from shrinksim.study.outcome import StudyOutcome
    from shrinksim.study.summarize import example_groups, reduce_jobs, shrinkage_per_cell

    study = args.study
    table = {name: design.fit_job_tables(study, name, args.results) for name in design.FIT_TABLES}
    missing = [path for paths in table.values() for path in paths if not Path(path).exists()]
    if missing:
        raise SystemExit(f"summarize: {len(missing)} fit tables missing, e.g. {missing[0]}")
    logger.info(f"reducing {len(table['fits'])} fit jobs with {args.threads} workers")
    per_fit = reduce_jobs(
        list(zip(table["groups"], table["fits"], strict=True)),
        StudyOutcome.from_config(study),
        workers=args.threads,
    )
    shrinkage = tables.to_table(per_fit, tables.SHRINKAGE).to_pandas()
    tables.write_table(per_fit, args.per_fit_out, tables.PER_FIT)
    tables.write_table(shrinkage, args.shrinkage_out, tables.SHRINKAGE)
    tables.write_table(shrinkage_per_cell(shrinkage), args.cells_out, tables.CELLS)
    first = {
        name: design.fit_job_tables(study, name, args.results, [0]) for name in ("groups", "draws")
    }
    tables.write_table(example_groups(first["groups"]), args.example_groups_out, tables.GROUPS)
    draws = tables.read_tables(first["draws"], tables.DRAWS)
    tables.write_table(draws, args.example_draws_out, tables.DRAWS)
    bad = int((per_fit["status"] != "ok").sum())
    logger.info(f"{len(per_fit)} fits: {len(per_fit) - bad} ok, {bad} with problems")


def cmd_measures(args: argparse.Namespace) -> None:
    from shrinksim.study.measures import measures
    from shrinksim.study.outcome import StudyOutcome

    per_fit = tables.read_tables([args.per_fit], tables.PER_FIT)
    frame = measures(per_fit, StudyOutcome.from_config(args.outcome), args.chains)
    tables.write_table(frame, args.out, tables.MEASURES)
    tables.write_atomic(args.csv, lambda tmp: frame.to_csv(tmp, index=False))
    logger.info(f"{len(frame)} measures of {len(per_fit)} fits")


def cmd_plot(args: argparse.Namespace) -> None:
    from shrinksim.study.outcome import StudyOutcome
    from shrinksim.study.plot import Summary, draw
    from shrinksim.study.plot_accuracy import TAU_COLUMNS, TAU_REPLICATES

    shown = [("replicate", "<", TAU_REPLICATES)]  # the per-fit rows the tau figure draws
    summary = Summary(
        measures=tables.read_tables([args.measures], tables.MEASURES),
        groups=tables.read_tables([args.example_groups], tables.GROUPS),
        fits=tables.read_tables([args.per_fit], tables.PER_FIT, TAU_COLUMNS, filters=shown),
        draws=tables.read_tables([args.example_draws], tables.DRAWS),
        outcome=StudyOutcome.from_config(args.outcome),
        density_n=args.density_n,
    )
    draw(summary, args.out, workers=args.threads)


def cmd_report(args: argparse.Namespace) -> None:
    from shrinksim.study import report

    engines = tables.read_tables([args.per_fit], tables.PER_FIT, columns=["engine"])["engine"]
    measures = tables.read_tables([args.measures], tables.MEASURES)
    pages = {
        args.config_out: report.config_page(args.config),
        args.software_out: report.software_page(report.software(engines.dropna())),
        args.measures_out: report.measures_page(measures),
    }
    for path, text in pages.items():
        tables.write_atomic(path, lambda tmp, text=text: Path(tmp).write_text(text, "utf-8"))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the grid study's stages to the main parser's subcommands."""
    p = sub.add_parser("simulate", help="simulate the data sets of one data cell and batch")
    p.add_argument("--settings", type=mapping, required=True, help="JSON: seed, simulation")
    p.add_argument(
        "--cell", required=True, help="data cell, e.g. n_per_group=35/groups=100/tau=0.25"
    )
    p.add_argument("--replicates", type=integers, required=True, help="start:stop, e.g. 0:3")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("compile", help="compile one Stan program once for the whole study")
    p.add_argument("--stan-file", required=True)
    p.add_argument("--engine", required=True, choices=ENGINES)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--out", required=True, help="JSON describing the compiled model")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("fit", help="fit a data cell's batch with every (prior, model)")
    engine_arguments(p, programs="many")
    p.add_argument(
        "--cell", required=True, help="data cell, e.g. n_per_group=35/groups=100/tau=0.25"
    )
    p.add_argument("--data", required=True, help="the batch's simulated data sets")
    p.add_argument("--groups-out", required=True, help="group summaries of every fit")
    p.add_argument("--fits-out", required=True, help="one row per fit")
    p.add_argument("--draws-out", required=True, help="thinned draws of the first replicate")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summarize", help="reduce every fit job to per-fit and cell tables")
    p.add_argument(
        "--study",
        type=mapping,
        required=True,
        help="JSON: family, grid, simulation, replicates, batch_size",
    )
    p.add_argument("--results", required=True, help="the results folder holding the fit tables")
    p.add_argument("--threads", type=int, default=1, help="fit jobs read in parallel")
    for name in ("per-fit", "shrinkage", "cells", "example-groups", "example-draws"):
        p.add_argument(f"--{name}-out", required=True)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("measures", help="performance measures per cell, with MCSE")
    p.add_argument("--per-fit", required=True)
    p.add_argument("--outcome", type=mapping, required=True, help="JSON: family, simulation")
    p.add_argument("--chains", type=int, required=True, help="chains per fit (low-ESS threshold)")
    p.add_argument("--out", required=True, help="Parquet table")
    p.add_argument("--csv", required=True, help="CSV copy of the table")
    p.set_defaults(func=cmd_measures)

    p = sub.add_parser("plot", help="draw the figures from the summary tables")
    p.add_argument("--measures", required=True)
    p.add_argument("--per-fit", required=True)
    p.add_argument("--example-groups", required=True)
    p.add_argument("--example-draws", required=True)
    p.add_argument("--outcome", type=mapping, required=True, help="JSON: family, simulation")
    p.add_argument("--density-n", type=int, required=True, help="n of the densities figure")
    p.add_argument(
        "--out", nargs="+", required=True, help="figure files: the stem names the figure"
    )
    p.add_argument("--threads", type=int, default=1, help="figures drawn in parallel")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="report pages: configuration, software, measures")
    p.add_argument("--config", type=mapping, required=True, help="JSON: the configuration used")
    p.add_argument("--per-fit", required=True)
    p.add_argument("--measures", required=True)
    p.add_argument("--config-out", required=True)
    p.add_argument("--software-out", required=True)
    p.add_argument("--measures-out", required=True)
    p.set_defaults(func=cmd_report)
