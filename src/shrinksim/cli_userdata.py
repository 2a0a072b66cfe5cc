"""Command-line stages of the user-data analysis (``python -m shrinksim userdata-...``),
called by ``workflow/rules/userdata.smk``. Registered on the main parser by
:func:`register`; logic lives in :mod:`shrinksim.userdata` and :mod:`shrinksim.userplot`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shrinksim import tables

DESIGN_CELL = re.compile(r"scale~([^/]+)/tau~(\d+)/")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _write_frame(frame: pd.DataFrame, path: str) -> None:
    """Parquet without a fixed schema (draws: one column per group), atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    tables.write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def _read(path: str, schema: pa.Schema | None = None) -> pd.DataFrame:
    return pq.read_table(path, schema=schema).to_pandas()


def _point(design: str, tau_index: int) -> dict:
    points = _read(design)
    return points[points["tau_index"] == tau_index].iloc[0].to_dict()


def _engine(compiled: dict[str, str], args: argparse.Namespace):
    from shrinksim.engine import make_engine

    return make_engine(
        compiled["engine"],
        cache_dir=args.cache_dir,
        model_dir=Path(args.compiled).parent,
        threads=args.threads,
    )


def cmd_prepare(args: argparse.Namespace) -> None:
    from shrinksim.userdata import USER_DATA, load

    data = load(args.data, control=args.control)
    tables.write_table(data, args.out, USER_DATA)
    _progress(f"{args.data}: {len(data)} groups, {int(data['n'].sum())} outcomes")


def cmd_fit(args: argparse.Namespace) -> None:
    from shrinksim.userdata import USER_DATA, USER_FITS, USER_GROUPS, fit_user_data

    settings = json.loads(args.settings)
    compiled = json.loads(Path(args.compiled).read_text())
    data = _read(args.data, USER_DATA)
    with _engine(compiled, args) as engine:
        groups, fit, draws = fit_user_data(engine, compiled, data, args.prior, args.model, settings)
    row = fit.iloc[0]
    _progress(f"prior {args.prior}, model {args.model}: {row['status']} {row['message']}")
    tables.write_table(groups, args.groups_out, USER_GROUPS)
    tables.write_table(fit, args.fits_out, USER_FITS)
    _write_frame(draws, args.draws_out)


def cmd_design(args: argparse.Namespace) -> None:
    from shrinksim.userdata import USER_DATA, design_points

    data = _read(args.data, USER_DATA)
    draws = [_read(path) for path in args.draws]
    points = design_points(draws, args.quantiles, data)
    _write_frame(points, args.out)
    _progress(points.to_string(index=False))


def cmd_simulate(args: argparse.Namespace) -> None:
    from shrinksim.userdata import USER_DATA, simulate_design

    data = _read(args.data, USER_DATA)
    frame = simulate_design(
        args.seed, data, _point(args.design, args.tau_index), args.scale, args.replicates
    )
    tables.write_table(frame, args.out, tables.DATA)


def cmd_design_fit(args: argparse.Namespace) -> None:
    from shrinksim.userdata import fit_design

    settings = json.loads(args.settings)
    compiled = json.loads(Path(args.compiled).read_text())
    simulated = _read(args.data, tables.DATA)
    point = _point(args.design, args.tau_index)
    with _engine(compiled, args) as engine:
        groups, fits = fit_design(
            engine, compiled, simulated, point, args.scale, args.prior, settings, _progress
        )
    tables.write_table(groups, args.groups_out, tables.GROUPS)
    tables.write_table(fits, args.fits_out, tables.FITS)


def cmd_summarize(args: argparse.Namespace) -> None:
    from shrinksim import userdata as ud

    points = _read(args.design)
    out = Path(args.out_dir)
    groups = pd.concat([_read(p, ud.USER_GROUPS) for p in args.groups], ignore_index=True)
    fits = pd.concat([_read(p, ud.USER_FITS) for p in args.fits], ignore_index=True)
    rows = []
    for g_path, f_path in zip(args.design_groups, args.design_fits, strict=True):
        match = DESIGN_CELL.search(g_path)
        if match is None:
            raise ValueError(f"{g_path}: not a design-matched fit (no scale~S/tau~K/ in path)")
        scale, k = float(match.group(1)), int(match.group(2))
        point = points[points["tau_index"] == k].iloc[0]
        rows.append(
            ud.design_fit_rows(
                _read(g_path, tables.GROUPS), _read(f_path, tables.FITS), point, scale
            )
        )
    per_fit = pd.concat(rows, ignore_index=True)
    cells = ud.design_cells(per_fit)
    answer = ud.whatif(cells, points, args.target)
    tables.write_table(groups, out / "groups.parquet", ud.USER_GROUPS)
    tables.write_table(fits, out / "fits.parquet", ud.USER_FITS)
    tables.write_table(per_fit, out / "design_fits.parquet", ud.DESIGN_FITS)
    tables.write_table(cells, out / "design_cells.parquet", ud.DESIGN_CELLS)
    tables.write_table(answer, out / "whatif.parquet", ud.WHATIF)
    bad = (fits["status"] != "ok").sum() + (per_fit["status"] != "ok").sum()
    _progress(
        f"{len(fits)} fits of your data, {len(per_fit)} design-matched fits; {bad} with problems"
    )


def cmd_plot(args: argparse.Namespace) -> None:
    from shrinksim import userdata as ud
    from shrinksim.userplot import all_figures

    summary = Path(args.summary_dir)
    draws = pd.concat([_read(p) for p in args.draws], ignore_index=True)
    all_figures(
        data=_read(args.data, ud.USER_DATA),
        groups=_read(str(summary / "groups.parquet"), ud.USER_GROUPS),
        fits=_read(str(summary / "fits.parquet"), ud.USER_FITS),
        draws=draws,
        points=_read(args.design),
        cells=_read(str(summary / "design_cells.parquet"), ud.DESIGN_CELLS),
        answer=_read(str(summary / "whatif.parquet"), ud.WHATIF),
        priors=json.loads(args.priors),
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


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", required=True, help="JSON: seed, sampler, retry, priors")
    p.add_argument("--compiled", required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--threads", type=int, default=1)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``userdata-*`` stages to the main parser's subcommands."""
    p = sub.add_parser("userdata-prepare", help="check your data file; one row per group")
    p.add_argument("--data", required=True, help="your CSV or Parquet file")
    p.add_argument("--control", default=None, help="label of the control group")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("userdata-fit", help="fit your data with one model (and prior)")
    _engine_args(p)
    p.add_argument("--data", required=True)
    p.add_argument("--prior", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--groups-out", required=True)
    p.add_argument("--fits-out", required=True)
    p.add_argument("--draws-out", required=True)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("userdata-design", help="true tau values from your tau posterior")
    p.add_argument("--data", required=True)
    p.add_argument("--draws", nargs="+", required=True, help="draws of the partial fits")
    p.add_argument("--quantiles", type=_floats, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_design)

    p = sub.add_parser("userdata-simulate", help="design-matched data sets of one cell")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--design", required=True)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--tau-index", type=int, required=True)
    p.add_argument("--replicates", type=_ints, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("userdata-design-fit", help="fit one design-matched cell's batch")
    _engine_args(p)
    p.add_argument("--data", required=True, help="simulated data sets (one batch)")
    p.add_argument("--design", required=True)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--tau-index", type=int, required=True)
    p.add_argument("--prior", required=True)
    p.add_argument("--groups-out", required=True)
    p.add_argument("--fits-out", required=True)
    p.set_defaults(func=cmd_design_fit)

    p = sub.add_parser("userdata-summarize", help="combine your fits and the design study")
    p.add_argument("--groups", nargs="+", required=True)
    p.add_argument("--fits", nargs="+", required=True)
    p.add_argument("--design", required=True)
    p.add_argument("--design-groups", nargs="+", required=True)
    p.add_argument("--design-fits", nargs="+", required=True)
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("userdata-plot", help="figures and summary page of your data")
    p.add_argument("--summary-dir", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--design", required=True)
    p.add_argument("--draws", nargs="+", required=True)
    p.add_argument("--priors", required=True, help="JSON: prior name -> prior text")
    p.add_argument("--show-groups", type=int, required=True)
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--source", required=True, help="your data file, as configured")
    for name in ("estimates", "densities", "hyperparameters", "design-figure", "whatif", "summary"):
        p.add_argument(f"--{name}", required=True)
    p.set_defaults(func=cmd_plot)
