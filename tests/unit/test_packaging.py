"""Packaging: environment.yml carries every dependency of pyproject.toml under its conda name."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO

CONDA_NAMES = {"duckdb": "python-duckdb"}
"""pip names whose conda-forge package has another name."""
NOT_IN_CONDA_ENV = {"pystan", "peer"}
"""Extras the conda environment leaves out (it has CmdStan; PyStan is the pip route's; the
benchmark's peer, PyMC + nutpie, is installed by hand where wanted)."""


def names(requirements: list[str]) -> set[str]:
    """Package names of requirement strings (``snakemake>=9,<10`` -> ``snakemake``)."""
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def test_environment_yml_has_every_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        if extra not in NOT_IN_CONDA_ENV:
            wanted |= names(requirements)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = names([d for d in env["dependencies"] if isinstance(d, str)])
    missing = {CONDA_NAMES.get(name, name) for name in wanted} - conda
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    assert env["channels"][:2] == ["conda-forge", "bioconda"]  # Snakemake is Bioconda's
    python = next(d for d in env["dependencies"] if str(d).startswith("python"))
    assert python == "python" + project["requires-python"]
