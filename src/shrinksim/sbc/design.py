"""The SBC designs: cells (n, groups, prior on tau), batches of simulations, the settings a
job depends on, the ranked parameters, and the semantic checks of the ``sbc`` section.

This module reads the configuration as a plain mapping: :mod:`shrinksim.settings` calls
:func:`problems`, so nothing here imports the settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shrinksim import design
from shrinksim.errors import did_you_mean

PROGRAM = "partial_pooling"
"""The Stan program under calibration (file stem in ``stan/``)."""


@dataclass(frozen=True)
class SbcCell:
    """One SBC design: mean outcomes per group, groups per data set, prior on tau."""

    n: int
    groups: int
    prior: str

    @property
    def path(self) -> str:
        """Hive partition path, e.g. ``n_per_group=10/groups=10/prior=brms_default``."""
        return f"n_per_group={self.n}/groups={self.groups}/prior={self.prior}"

    @property
    def key(self) -> str:
        """Seed key, distinct from every key of the shrinkage study's cells: must never change."""
        return f"sbc/n~{self.n}/groups~{self.groups}/prior~{self.prior}"

    @classmethod
    def from_path(cls, path: str) -> SbcCell:
        """Inverse of :attr:`path`."""
        parts = dict(p.split("=", 1) for p in path.strip("/").split("/"))
        return cls(int(parts["n_per_group"]), int(parts["groups"]), parts["prior"])


def cells(config: Mapping[str, Any]) -> list[SbcCell]:
    """Every SBC design of the configuration: each n under each prior."""
    sbc = config["sbc"]
    return [SbcCell(int(n), int(sbc["groups"]), p) for n in sbc["n"] for p in sbc["prior"]]


def batches(config: Mapping[str, Any]) -> list[list[int]]:
    """Simulation indices split into jobs of at most ``sbc.batch_size`` simulations."""
    return design.batches(int(config["sbc"]["simulations"]), int(config["sbc"]["batch_size"]))


def job_settings(config: Mapping[str, Any], cell_path: str) -> str:
    """JSON of what an SBC job's numbers depend on (Snakemake reruns the job when it changes)."""
    settings = {
        "seed": config["seed"],
        "intercept_prior": config["intercept_prior"],
        "tau_prior": config["priors"][SbcCell.from_path(cell_path).prior],
        "simulation": {"n_sd": config["simulation"]["n_sd"]},
        "sbc": {key: config["sbc"][key] for key in ("group_effects", "thin_to", "sampler")},
    }
    return json.dumps(settings, sort_keys=True)


def parameters(group_effects: int) -> list[str]:
    """Names of the ranked quantities: mu, tau and theta[1..group_effects]."""
    return ["mu", "tau", *(f"theta[{g}]" for g in range(1, group_effects + 1))]


def problems(config: Mapping[str, Any]) -> list[str]:
    """Semantic problems of the ``sbc`` section (the schema has checked its types)."""
    sbc = config["sbc"]
    found = []
    for i, name in enumerate(sbc["prior"]):
        if name not in config["priors"]:
            found.append(
                f"sbc.prior[{i}]: unknown prior {name!r}{did_you_mean(name, config['priors'])}; "
                f"defined in priors: {sorted(config['priors'])}"
            )
    kept = sbc["sampler"]["chains"] * sbc["sampler"]["draws"]
    if sbc["thin_to"] > kept:
        found.append(
            f"sbc.thin_to: {sbc['thin_to']} is more than the {kept} posterior draws "
            "(sbc.sampler.chains x sbc.sampler.draws)"
        )
    if sbc["group_effects"] > sbc["groups"]:
        found.append(f"sbc.group_effects: {sbc['group_effects']} is more than sbc.groups")
    return found


def rank_files(config: Mapping[str, Any], root: str = design.RESULTS) -> list[str]:
    """Every SBC job's ranks table."""
    return [
        design.result_path(design.SBC_RANKS, root, sbccell=cell.path, batch=batch)
        for cell in cells(config)
        for batch in range(len(batches(config)))
    ]
