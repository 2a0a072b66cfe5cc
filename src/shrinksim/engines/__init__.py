"""One small interface to Stan with two back-ends that return the same :class:`Draws`.

* :class:`CmdStanEngine` (cmdstanpy) whenever a CmdStan installation is found:
  ``$CMDSTAN``, ``~/.cmdstan`` or conda-forge's ``cmdstan`` in ``$CONDA_PREFIX/bin/cmdstan``.
* :class:`PyStanEngine` (PyStan 3 / httpstan), pip-only.
* :class:`NutpieEngine` (nutpie on numba log densities of the same programs), pip-only and
  no C++ compiler; fits the programs of :data:`shrinksim.engines.nutpie.PROGRAMS`, and
  ``auto`` picks it for them (:func:`resolve_engine`). The Stan programs stay the definition
  of the models: the tests check its densities against Stan's and its draws against the
  exact reference.

Each is an extra (``pip install 'shrinksim[pystan]'``, ``'shrinksim[cmdstan]'``,
``'shrinksim[nutpie]'``), imported
only when used; a missing one is named in the error.

The Stan programs in ``stan/`` are the single source of truth: ``#include`` lines are
expanded by :func:`program_source`, so both engines compile the very same text. Each program
is compiled once per study (:meth:`Engine.compile`, written with :meth:`CompiledModel.write`),
never inside a fitting job, which opens the files with :func:`open_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shrinksim.engines import nutpie
from shrinksim.engines.base import (
    SAMPLER_VARIABLES,
    CompiledModel,
    Draws,
    Engine,
    EngineError,
    SamplerSettings,
    SamplingError,
    redirect_output,
)
from shrinksim.engines.cmdstan import NO_CMDSTAN, CmdStanEngine, find_cmdstan
from shrinksim.engines.nutpie import NutpieEngine, nutpie_problem
from shrinksim.engines.pystan import NO_PYSTAN, PyStanEngine, pystan_installed
from shrinksim.engines.source import program_source

__all__ = [
    "ENGINES",
    "SAMPLER_VARIABLES",
    "CmdStanEngine",
    "CompiledModel",
    "Draws",
    "Engine",
    "EngineError",
    "NutpieEngine",
    "PyStanEngine",
    "SamplerSettings",
    "SamplingError",
    "find_cmdstan",
    "make_engine",
    "open_models",
    "program_source",
    "redirect_output",
    "resolve_engine",
]

ENGINES = ("cmdstanpy", "pystan", "nutpie")
"""The engines, by the name the config's ``engine`` key uses."""


def resolve_engine(requested: str, program: str | None = None) -> str:
    """Turn ``auto`` into a concrete engine (for ``program``, if given); fail clearly if the
    requested one is missing.

    ``auto`` is nutpie for the programs it has a density of, where it is installed (the
    fastest per fit at the same accuracy: docs/benchmarks.md), else cmdstanpy where CmdStan
    is found, else PyStan.
    """
    if requested not in ("auto", *ENGINES):
        raise EngineError(f"engine: unknown engine {requested!r}; allowed: auto, {ENGINES}")
    if requested == "auto":
        if program in nutpie.PROGRAMS and nutpie_problem() is None:
            return "nutpie"
        if find_cmdstan():
            return "cmdstanpy"
        if not pystan_installed():
            raise EngineError(f"engine: auto found no Stan engine. {NO_CMDSTAN}")
        return "pystan"
    if requested == "cmdstanpy" and not find_cmdstan():
        raise EngineError(NO_CMDSTAN)
    if requested == "pystan" and not pystan_installed():
        raise EngineError(NO_PYSTAN)
    if requested == "nutpie" and (problem := nutpie_problem()):
        raise EngineError(problem)
    return requested


def make_engine(
    name: str, *, cache_dir: str | Path, model_dir: str | Path, threads: int = 1
) -> Engine:
    """The engine ``name`` (already resolved, see :func:`resolve_engine`).

    ``cache_dir`` holds PyStan's builds and numba's cache, ``model_dir`` CmdStan's executables.
    """
    if name == "pystan":
        return PyStanEngine(cache_dir, threads)
    if name == "cmdstanpy":
        return CmdStanEngine(model_dir, threads)
    if name == "nutpie":
        return NutpieEngine(cache_dir, threads)
    raise EngineError(f"engine: unknown engine {name!r}; allowed: {ENGINES}")


def open_models(
    paths: Sequence[str | Path], *, cache_dir: str | Path, threads: int = 1
) -> tuple[Engine, dict[str, CompiledModel]]:
    """The compiled models written to ``paths`` (by program) and the engine that samples them.

    Every model must come from the same engine; use the engine as a context manager.
    """
    models = [CompiledModel.read(path) for path in paths]
    if not models:
        raise EngineError("no compiled-model file given")
    engines = {model.engine for model in models}
    if len(engines) > 1:
        raise EngineError(f"compiled models of several engines {sorted(engines)}: {list(paths)}")
    by_program = {model.program: model for model in models}
    if len(by_program) < len(models):
        raise EngineError(f"several compiled models of the same program: {list(paths)}")
    engine = make_engine(
        models[0].engine, cache_dir=cache_dir, model_dir=Path(paths[0]).parent, threads=threads
    )
    return engine, by_program
