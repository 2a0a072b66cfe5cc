"""Command line called by the Snakemake rules: ``python -m shrinksim STAGE ...``.

Each stage reads its inputs, does its work through the package and writes its outputs
atomically. Every input and output is a named flag; settings arrive as JSON holding only what
the stage needs, so Snakemake reruns exactly the jobs whose settings changed. Stages that
read many files (the reduces) get the results folder and the study settings, and list the
files with :mod:`shrinksim.design`, so no command line grows with the study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shrinksim.cli import sbc, study, userdata
from shrinksim.log import configure


def doctor(args: argparse.Namespace) -> None:
    """Print what a run would use: Python, Snakemake, engine, Stan versions, cache."""
    from shrinksim import doctor
    from shrinksim.settings import load_yaml

    config = load_yaml(args.config) if args.config.exists() else {}
    print(doctor.render(doctor.report(config)))


def parser() -> argparse.ArgumentParser:
    """The ``shrinksim`` argument parser."""
    top = argparse.ArgumentParser(prog="shrinksim", description=__doc__)
    from shrinksim.doctor import version  # stdlib only at import: cheap for every stage

    installed = version("shrinksim") or "unknown (not installed)"  # a checkout, not installed
    top.add_argument("--version", action="version", version=f"shrinksim {installed}")
    sub = top.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "doctor", help="which Python, Snakemake, engine, CmdStan/PyStan and cache a run uses"
    )
    check.add_argument(
        "--config",
        type=Path,
        default=Path("config.yaml"),
        help="the study's config (engine, cache_dir)",
    )
    check.set_defaults(func=doctor)
    for stages in (study, sbc, userdata):
        stages.register(sub)
    return top


def main(argv: list[str] | None = None) -> None:
    """Entry point: log to stderr (a job's log) with timestamps, run the stage."""
    configure()
    args = parser().parse_args(argv)
    args.func(args)
