"""Argument helpers shared by the stages."""

from __future__ import annotations

import argparse
import json
from typing import Any


def integers(text: str) -> list[int]:
    """``"0:3"`` (start:stop, as :func:`shrinksim.design.span` writes) or ``"0,1,2"`` ->
    ``[0, 1, 2]``."""
    if ":" in text:
        start, stop = text.split(":")
        return list(range(int(start), int(stop)))
    return [int(x) for x in text.split(",")]


def floats(text: str) -> list[float]:
    """``"0.5,1"`` -> ``[0.5, 1.0]``."""
    return [float(x) for x in text.split(",")]


def mapping(text: str) -> dict[str, Any]:
    """A JSON object."""
    return json.loads(text)


def engine_arguments(p: argparse.ArgumentParser, *, programs: str = "one") -> None:
    """The arguments of a stage that samples: settings, compiled models, cache, threads."""
    p.add_argument("--settings", type=mapping, required=True, help="JSON: what the fits depend on")
    if programs == "one":
        p.add_argument("--compiled", nargs=1, required=True, help="compiled-model JSON")
    else:
        p.add_argument(
            "--compiled", nargs="+", required=True, help="compiled-model JSON per program"
        )
    p.add_argument("--cache-dir", required=True, help="PyStan's compile cache")
    p.add_argument("--threads", type=int, default=1, help="chains sampled in parallel")
