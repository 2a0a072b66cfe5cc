"""The package logger: one ``logging`` logger for every stage, timestamped in job logs."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("shrinksim")
"""Every module logs through this logger (``from shrinksim.log import logger``)."""


def configure(level: int = logging.INFO) -> None:
    """Log to stderr with timestamps (a job's stderr is its Snakemake log); idempotent."""
    if any(getattr(h, "_shrinksim", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler._shrinksim = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
