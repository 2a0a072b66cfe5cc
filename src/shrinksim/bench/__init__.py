"""The benchmarks (``make bench``, ``make bench-scale``): shared helpers.

* :mod:`shrinksim.bench.programs`: programs and engines, the brms peer (parts 1-2);
* :mod:`shrinksim.bench.workflow`: a grid run per engine, a rerun, bytes per fit, a job's
  memory (3-6);
* :mod:`shrinksim.bench.families`: each outcome family's partial-pooling program (7), and the
  fitting shared with :mod:`shrinksim.bench.marginal` (marginalised against non-centred);
* :mod:`shrinksim.bench.peer`: the peer, PyMC + nutpie, against shrinksim's engines (8);
* :mod:`shrinksim.bench.scale`: everything after fitting, for 10^3 to 10^6 fits;
* :mod:`shrinksim.bench.synth`: the fit-job tables of a large study, made from one real job;
* :mod:`shrinksim.bench.runs`: running snakemake and reading what it reports.

``python -m shrinksim.bench`` runs parts 1-8, ``--parts`` a subset
(:mod:`shrinksim.bench.__main__`). The numbers, the machine and how to reproduce them are in
docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[3]
"""The repository (the workflow's sources)."""

WORKFLOW_FILES = ("Snakefile", "config.yaml", "config", "workflow", "stan", "profiles")
"""What a scratch checkout of the workflow links to."""

TARGETS = {
    "ess_ratio": 20.0,
    "brms_speedup": 50.0,
    "utilisation": 0.7,
    "overhead": 0.10,
    "rerun_seconds": 5.0,
    "bytes_per_fit": 50_000,
    "rss_mb": 500.0,
    "peer_ess_ratio": 1.0,
}
"""Targets of ``make bench`` (docs/benchmarks.md)."""


def timed(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``cmd`` (environment :func:`python_env` plus ``env``); return its wall and CPU
    seconds (user + sys of its process tree) and the 1-minute load average at its start.
    Raises naming the command if it fails."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        cmd, env=python_env() | dict(env or {}), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, load


def engines_present() -> tuple[list[str], list[str]]:
    """The engines that run here, the default one (config.yaml's ``engine: auto`` for the
    default study's programs) first, then the others in the order of
    :data:`shrinksim.engines.ENGINES`; and a line for each missing one, saying how to include
    it."""
    from shrinksim.engines import ENGINES, EngineError, resolve_engine

    present, missing = [], []
    for name in ENGINES:
        try:
            present.append(resolve_engine(name))
        except EngineError as err:
            missing.append(f"{name}: skipped: {err}")
    try:
        default = resolve_engine("auto", "partial_pooling")
    except EngineError:
        return present, missing
    return [default, *(name for name in present if name != default)], missing


def forum_config() -> dict[str, Any]:
    """config.yaml with config/forum.yaml merged over it (4 chains x 1000 + 1000)."""
    from shrinksim.settings import load_yaml, merged

    return merged(load_yaml(REPO / "config.yaml"), load_yaml(REPO / "config/forum.yaml"))


def checkout(folder: Path) -> Path:
    """A scratch checkout of the workflow in ``folder`` (created): links to its sources, its
    own ``results/``."""
    folder.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        (folder / name).symlink_to(REPO / name)
    return folder


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """|mean difference| of two fits' draws (chains, draws) in units of the joint MCSE.

    MCSE = posterior sd / sqrt(bulk ESS); below 4 the two posteriors agree.
    """
    from shrinksim.diagnostics import ess_bulk

    se = [x.std() / np.sqrt(float(ess_bulk(x))) for x in (a, b)]
    return float(abs(a.mean() - b.mean()) / np.hypot(*se))


def utilisation(sampling_seconds: float, wall_seconds: float, cores: int) -> float:
    """Share of the cores' time spent sampling: sum of sampling / (wall x cores)."""
    return sampling_seconds / (wall_seconds * cores)


def overhead(job_seconds: Sequence[float], sampling_seconds: Sequence[float]) -> float:
    """Share of fit-job wall time not spent sampling, over all jobs."""
    total = sum(job_seconds)
    return (total - sum(sampling_seconds)) / total


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    """``met`` or ``MISSED`` against ``target``."""
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def tree_bytes(paths: Sequence[Path]) -> int:
    """Total size of the files under ``paths``."""
    return sum(f.stat().st_size for p in paths if p.exists() for f in p.rglob("*") if f.is_file())


def machine() -> str:
    """One line: host, cores, CPU model, Python, load average."""
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"load average {load}"
    )


def python_env() -> dict[str, str]:
    """Environment of child processes: this interpreter's bin first, this package importable."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return os.environ | {"PATH": path, "PYTHONPATH": pythonpath}
