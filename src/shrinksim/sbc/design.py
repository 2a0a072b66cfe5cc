"""The SBC designs: cells (outcome family, n, groups, prior on tau), batches of simulations,
the settings a job depends on, the ranked parameters, and the semantic checks of the ``sbc``
section.

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
from shrinksim.families import OUTCOME_FAMILIES

DEFAULT_FAMILIES = ["binomial"]
"""The families calibrated when ``sbc.families`` is not set."""


@dataclass(frozen=True)
class SbcCell:
    """One SBC design: outcome family, mean outcomes per group (poisson: exposure; gaussian_se:
    se = 1 / sqrt(n)), groups per data set, prior on tau."""

    n: int
    groups: int
    prior: str
    family: str = "binomial"

    @property
    def program(self) -> str:
        """The Stan program under calibration: the family's partial-pooling program."""
        return OUTCOME_FAMILIES[self.family].study_program("partial")

    @property
    def path(self) -> str:
        """Hive partition path, e.g. ``n_per_group=10/groups=10/prior=brms_default``, after
        ``family=poisson/`` for another family than binomial."""
        head = "" if self.family == "binomial" else f"family={self.family}/"
        return f"{head}n_per_group={self.n}/groups={self.groups}/prior={self.prior}"

    @property
    def key(self) -> str:
        """Seed key, distinct from every key of the shrinkage study's cells: must never change
        (binomial's has no family: it was there before the families)."""
        head = "sbc/" if self.family == "binomial" else f"sbc/family~{self.family}/"
        return f"{head}n~{self.n}/groups~{self.groups}/prior~{self.prior}"

    @classmethod
    def from_path(cls, path: str) -> SbcCell:
        """Inverse of :attr:`path`."""
        parts = dict(p.split("=", 1) for p in path.strip("/").split("/"))
        family = parts.get("family", "binomial")
        return cls(int(parts["n_per_group"]), int(parts["groups"]), parts["prior"], family)


def families(config: Mapping[str, Any]) -> list[str]:
    """The outcome families of ``sbc.families`` (default: binomial)."""
    return list(config["sbc"].get("families") or DEFAULT_FAMILIES)


def cells(config: Mapping[str, Any]) -> list[SbcCell]:
    """Every SBC design of the configuration: each family's n under each prior."""
    sbc = config["sbc"]
    return [
        SbcCell(int(n), int(sbc["groups"]), p, family)
        for family in families(config)
        for n in sbc["n"]
        for p in sbc["prior"]
    ]


def programs(config: Mapping[str, Any]) -> list[str]:
    """The Stan programs the SBC jobs need, one per family."""
    return sorted({cell.program for cell in cells(config)})


def batches(config: Mapping[str, Any]) -> list[list[int]]:
    """Simulation indices split into jobs of at most ``sbc.batch_size`` simulations."""
    return design.batches(int(config["sbc"]["simulations"]), int(config["sbc"]["batch_size"]))


def job_settings(config: Mapping[str, Any], cell_path: str) -> str:
    """JSON of what an SBC job's numbers depend on (Snakemake reruns the job when it changes)."""
    cell = SbcCell.from_path(cell_path)
    settings = {
        "seed": config["seed"],
        "intercept_prior": config["intercept_prior"],
        "tau_prior": config["priors"][cell.prior],
        "simulation": {"n_sd": config["simulation"]["n_sd"]},
        "sbc": {key: config["sbc"][key] for key in ("group_effects", "thin_to", "sampler")},
    }
    if OUTCOME_FAMILIES[cell.family].has_sigma:
        settings["sigma_prior"] = config["sigma_prior"]
    return json.dumps(settings, sort_keys=True)


def parameters(group_effects: int, family: str = "binomial") -> list[str]:
    """Names of the ranked quantities: mu, tau, sigma (gaussian) and theta[1..group_effects]."""
    sigma = ["sigma"] if OUTCOME_FAMILIES[family].has_sigma else []
    return ["mu", "tau", *sigma, *(f"theta[{g}]" for g in range(1, group_effects + 1))]


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
