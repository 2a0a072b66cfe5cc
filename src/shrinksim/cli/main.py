"""Command line called by the Snakemake rules: ``python -m shrinksim STAGE ...``.

Each stage reads its inputs, does its work through the package and writes its outputs
atomically. Every input and output is a named flag; settings arrive as JSON holding only what
the stage needs, so Snakemake reruns exactly the jobs whose settings changed. Stages that
read many files (the reduces) get the results folder and the study settings, and list the
files with :mod:`shrinksim.design`, so no command line grows with the study.
"""

from __future__ import annotations

import argparse

from shrinksim.cli import sbc, study, userdata
from shrinksim.log import configure


def parser() -> argparse.ArgumentParser:
    """The ``shrinksim`` argument parser."""
    top = argparse.ArgumentParser(prog="shrinksim", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for stages in (study, sbc, userdata):
        stages.register(sub)
    return top


def main(argv: list[str] | None = None) -> None:
    """Entry point: log to stderr (a job's log) with timestamps, run the stage."""
    configure()
    args = parser().parse_args(argv)
    args.func(args)
