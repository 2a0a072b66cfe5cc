"""Stages of the your-data analysis (``python -m shrinksim userdata-...``), called by
``workflow/rules/userdata.smk``; the logic lives in :mod:`shrinksim.userdata`."""

from __future__ import annotations

import argparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shrinksim import tables
from shrinksim.cli.common import engine_arguments, floats, integers, mapping
from shrinksim.log import logger


def _write_frame(frame: pd.DataFrame, path: str) -> None:
    """Parquet without a fixed schema (draws: one column per group), atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    tables.write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def _read(path: str, schema: pa.Schema | None = None) -> pd.DataFrame:
    return pq.read_table(path, schema=schema).to_pandas()


def _point(design: str, tau_index: int) -> dict:
    points = _read(design)
    return points[points["tau_index"] == tau_index].iloc[0].to_dict()


def cmd_prepare(args: argparse.Namespace) -> None:
    from shrinksim.userdata.load import load_data

    data = load_data(args.data, args.family, control=args.control)
    groups = data.prepared()
    tables.write_table(groups, args.out, tables.USER_DATA)
    logger.info(f"{args.data}: {len(groups)} groups, {data.form.name}, fitted as {data.fitted_as}")


def cmd_fit(args: argparse.Namespace) -> None:
    from shrinksim.engines import open_models
    from shrinksim.userdata.fit import fit_user_data
    from shrinksim.userdata.inference import write_inference

    engine, models = open_models(args.compiled, cache_dir=args.cache_dir, threads=args.threads)
    (compiled,) = models.values()
    data = _read(args.data, tables.USER_DATA)
    with engine:
        groups, fit, draws, inference = fit_user_data(
            engine, compiled, data, args.prior, args.model, args.settings
        )
    row = fit.iloc[0]
    logger.info(f"prior {args.prior}, model {args.model}: {row['status']} {row['message']}")
    tables.write_table(groups, args.groups_out, tables.USER_GROUPS)
    tables.write_table(fit, args.fits_out, tables.USER_FITS)
    _write_frame(draws, args.draws_out)
    write_inference(inference, args.inference_out)


def cmd_loo(args: argparse.Namespace) -> None:
    from shrinksim.design import userdata_fits, userdata_inference_files
    from shrinksim.userdata.inference import loo_table, read_inference

    paths = dict(
        zip(
            userdata_fits(args.study),
            userdata_inference_files(args.study, args.results),
            strict=True,
        )
    )
    table = loo_table(read_inference(paths))
    tables.write_table(table, args.out, tables.USER_LOO)
    shown = table[["prior", "model", "elpd_diff", "dse", "pareto_k_high", "warning"]]
    logger.info(shown.to_string(index=False))


def cmd_design(args: argparse.Namespace) -> None:
    from shrinksim.userdata.design import design_points

    data = _read(args.data, tables.USER_DATA)
    draws = [_read(path) for path in args.draws]
    points = design_points(draws, args.quantiles, data)
    _write_frame(points, args.out)
    logger.info(points.to_string(index=False))


def cmd_simulate(args: argparse.Namespace) -> None:
    from shrinksim.userdata.fit import simulate_design

    data = _read(args.data, tables.USER_DATA)
    frame = simulate_design(
        args.seed, data, _point(args.design, args.tau_index), args.scale, args.replicates
    )
    tables.write_table(frame, args.out, tables.DATA)


def cmd_design_fit(args: argparse.Namespace) -> None:
    from shrinksim.engines import open_models
    from shrinksim.userdata.fit import fit_design

    engine, models = open_models(args.compiled, cache_dir=args.cache_dir, threads=args.threads)
    (compiled,) = models.values()
    simulated = _read(args.data, tables.DATA)
    point = _point(args.design, args.tau_index)
    with engine:
        groups, fits = fit_design(
            engine, compiled, simulated, point, args.scale, args.prior, args.settings, logger.info
        )
    tables.write_table(groups, args.groups_out, tables.GROUPS)
    tables.write_table(fits, args.fits_out, tables.FITS)


def cmd_summarize(args: argparse.Namespace) -> None:
    from shrinksim.design import (
        userdata_design_fit_files,
        userdata_design_jobs,
        userdata_fit_files,
    )
    from shrinksim.userdata.outcome import data_family
    from shrinksim.userdata.study import design_cells, design_fit_rows, whatif

    study, root = args.study, args.results
    family = data_family(_read(args.data, tables.USER_DATA))
    points = _read(args.design)
    groups = tables.read_tables(userdata_fit_files(study, "groups", root), tables.USER_GROUPS)
    fits = tables.read_tables(userdata_fit_files(study, "fits", root), tables.USER_FITS)
    jobs = zip(
        userdata_design_jobs(study),
        userdata_design_fit_files(study, "groups", root),
        userdata_design_fit_files(study, "fits", root),
        strict=True,
    )
    rows = []
    for job, groups_path, fits_path in jobs:
        point = points[points["tau_index"] == job["tauk"]].iloc[0]
        job_groups = _read(groups_path, tables.GROUPS)
        job_fits = _read(fits_path, tables.FITS)
        rows.append(design_fit_rows(job_groups, job_fits, point, float(job["scale"]), family))
    per_fit = pd.concat(rows, ignore_index=True)
    cells = design_cells(per_fit)
    answer = whatif(cells, points, args.target, family)
    tables.write_table(groups, args.groups_out, tables.USER_GROUPS)
    tables.write_table(fits, args.fits_out, tables.USER_FITS)
    tables.write_table(per_fit, args.design_fits_out, tables.DESIGN_FITS)
    tables.write_table(cells, args.design_cells_out, tables.DESIGN_CELLS)
    tables.write_table(answer, args.whatif_out, tables.WHATIF)
    bad = (fits["status"] != "ok").sum() + (per_fit["status"] != "ok").sum()
    logger.info(
        f"{len(fits)} fits of your data, {len(per_fit)} design-matched fits; {bad} with problems"
    )


def cmd_plot(args: argparse.Namespace) -> None:
    from shrinksim.design import userdata_fit_files
    from shrinksim.userdata.plot import all_figures

    draws = [_read(path) for path in userdata_fit_files(args.study, "draws", args.results)]
    all_figures(
        data=_read(args.data, tables.USER_DATA),
        groups=_read(args.groups, tables.USER_GROUPS),
        fits=_read(args.fits, tables.USER_FITS),
        draws=pd.concat(draws, ignore_index=True),
        points=_read(args.design),
        cells=_read(args.design_cells, tables.DESIGN_CELLS),
        answer=_read(args.whatif_table, tables.WHATIF),
        loo=_read(args.loo, tables.USER_LOO),
        priors=args.priors,
        show_groups=args.show_groups,
        target=args.target,
        source=args.source,
        out={
            "estimates": args.estimates,
            "densities": args.densities,
            "hyperparameters": args.hyperparameters,
            "design": args.design_figure,
            "whatif": args.whatif,
            "summary": args.summary,
        },
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the your-data stages to the main parser's subcommands."""
    p = sub.add_parser("userdata-prepare", help="check your data file; one row per group")
    p.add_argument("--data", required=True, help="your CSV or Parquet file")
    p.add_argument("--family", default="binomial", help="the configured family of the file")
    p.add_argument("--control", default=None, help="label of the control group")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("userdata-fit", help="fit your data with one model (and prior)")
    engine_arguments(p)
    p.add_argument("--data", required=True)
    p.add_argument("--prior", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--groups-out", required=True)
    p.add_argument("--fits-out", required=True)
    p.add_argument("--draws-out", required=True)
    p.add_argument("--inference-out", required=True, help="ArviZ InferenceData (netCDF)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("userdata-design", help="true tau values from your tau posterior")
    p.add_argument("--data", required=True)
    p.add_argument("--draws", nargs="+", required=True, help="draws of the partial fits")
    p.add_argument("--quantiles", type=floats, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_design)

    p = sub.add_parser("userdata-simulate", help="design-matched data sets of one cell")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--design", required=True)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--tau-index", type=int, required=True)
    p.add_argument("--replicates", type=integers, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("userdata-design-fit", help="fit one design-matched cell's batch")
    engine_arguments(p)
    p.add_argument("--data", required=True, help="simulated data sets (one batch)")
    p.add_argument("--design", required=True)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--tau-index", type=int, required=True)
    p.add_argument("--prior", required=True)
    p.add_argument("--groups-out", required=True)
    p.add_argument("--fits-out", required=True)
    p.set_defaults(func=cmd_design_fit)

    p = sub.add_parser("userdata-summarize", help="combine your fits and the design study")
    p.add_argument("--study", type=mapping, required=True, help="JSON: grid, userdata, batch_size")
    p.add_argument("--results", required=True, help="the results folder holding the fits")
    p.add_argument("--data", required=True, help="your prepared groups (their family)")
    p.add_argument("--design", required=True)
    p.add_argument("--target", type=float, required=True)
    for name in ("groups", "fits", "design-fits", "design-cells", "whatif"):
        p.add_argument(f"--{name}-out", required=True)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("userdata-loo", help="PSIS-LOO comparison of the fits of your data")
    p.add_argument("--study", type=mapping, required=True, help="JSON: grid, userdata, batch_size")
    p.add_argument("--results", required=True, help="the results folder holding the fits")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_loo)

    p = sub.add_parser("userdata-plot", help="figures and summary page of your data")
    p.add_argument("--study", type=mapping, required=True, help="JSON: grid, userdata, batch_size")
    p.add_argument("--results", required=True, help="the results folder holding the fits")
    for name in ("data", "design", "groups", "fits", "design-cells", "whatif-table", "loo"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--priors", type=mapping, required=True, help="JSON: prior name -> prior text")
    p.add_argument("--show-groups", type=int, required=True)
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--source", required=True, help="your data file, as configured")
    for name in ("estimates", "densities", "hyperparameters", "design-figure", "whatif", "summary"):
        p.add_argument(f"--{name}", required=True)
    p.set_defaults(func=cmd_plot)
