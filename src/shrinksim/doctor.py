"""``shrinksim doctor``: which Python, Snakemake, engine, Stan and cache a run will use."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from typing import Any


def version(package: str) -> str | None:
    """The installed version of ``package``, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def httpstan_stan_version() -> str | None:
    """The Stan version httpstan was built with (from its bundled ``stan/version.hpp``)."""
    spec = importlib.util.find_spec("httpstan")
    if spec is None or spec.origin is None:
        return None
    header = Path(spec.origin).parent / "include" / "stan" / "version.hpp"
    if not header.exists():
        return None
    parts = re.findall(r"#define STAN_(?:MAJOR|MINOR|PATCH) (\d+)", header.read_text())
    return ".".join(parts) if len(parts) == 3 else None


def cmdstan_report() -> tuple[str, str]:
    """CmdStan's path and version, or why there is none."""
    from shrinksim.engines import find_cmdstan

    if version("cmdstanpy") is None:
        return "not installed", "pip install 'shrinksim[cmdstan]', then CmdStan itself"
    path = find_cmdstan()
    if path is None:
        return "not found", "looked at $CMDSTAN, ~/.cmdstan and $CONDA_PREFIX/bin/cmdstan"
    from cmdstanpy.utils import cmdstan_version

    found = cmdstan_version()
    return path, ".".join(map(str, found)) if found else "version unknown"


def jobs_python() -> str:
    """The ``python`` on PATH, which the rules' jobs run, and whether it is this one (PyStan's
    compiled models are per interpreter)."""
    found = shutil.which("python")
    if found is None:
        return "none on PATH: put the venv's bin first (make does)"
    same = Path(found).absolute() == Path(sys.executable).absolute()
    return found if same else f"{found}: NOT this interpreter; put its venv's bin first on PATH"


def nutpie_report() -> str:
    """nutpie's and numba's versions, or why the nutpie engine cannot run."""
    from shrinksim.engines.nutpie import nutpie_problem

    problem = nutpie_problem()
    return problem or f"{version('nutpie')} (numba {version('numba')})"


def report(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, value) lines: what a run with ``config`` (``engine``, ``cache_dir``) uses."""
    from shrinksim.engines import EngineError, resolve_engine

    requested = config.get("engine", "auto")
    try:
        engine = resolve_engine(requested)
        if resolve_engine(requested, "partial_pooling") == "nutpie" != engine:
            engine = f"nutpie for the programs it fits (engines/nutpie.py), else {engine}"
    except EngineError as err:
        engine = f"none: {err}"
    cmdstan_path, cmdstan_version = cmdstan_report()
    lines = [
        ("shrinksim", version("shrinksim") or "not installed (run from a checkout?)"),
        ("Python", f"{sys.version.split()[0]} ({sys.executable})"),
        ("python of the jobs", jobs_python()),
        ("Snakemake", version("snakemake") or "not installed"),
        (f"engine ({requested})", engine),
        ("cmdstanpy", version("cmdstanpy") or "not installed"),
        ("CmdStan", f"{cmdstan_path} ({cmdstan_version})"),
        ("nutpie", nutpie_report()),
    ]
    pystan, httpstan = version("pystan"), version("httpstan")
    if httpstan is None:
        lines.append(("PyStan", "not installed: pip install 'shrinksim[pystan]'"))
        return lines
    from shrinksim.engines import fastpath
    from shrinksim.engines.pystan import model_directory

    cache_dir = Path(config.get("cache_dir", ".cache")).resolve()
    models = model_directory(cache_dir, "").parent
    direct = "direct" if fastpath.PROBLEM is None else f"model.sample() ({fastpath.PROBLEM})"
    lines += [
        ("PyStan", pystan or "not installed (needed only where the direct path is off)"),
        ("httpstan", f"{httpstan} (Stan {httpstan_stan_version() or '?'})"),
        ("PyStan sampling", direct),
        ("PyStan model cache", f"{models} ({'exists' if models.is_dir() else 'not made yet'})"),
    ]
    return lines


def render(lines: list[tuple[str, str]]) -> str:
    """The report as aligned text."""
    width = max(len(what) for what, _ in lines)
    return "\n".join(f"{what:<{width}}  {value}" for what, value in lines)
