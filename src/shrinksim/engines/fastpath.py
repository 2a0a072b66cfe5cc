"""PyStan's direct path: httpstan's model build and compiled ``stan_services`` module, in-process.

It relies on httpstan internals that are not a public API: the build steps of httpstan's
``POST /models`` (:data:`BUILD`), the extension module's ``hmc_nuts_diag_e_adapt_wrapper``
and its metadata functions, ``httpstan.services.arguments`` and the JSON-lines messages the
sampler writes to a Unix socket. It needs httpstan alone (PyStan cannot be installed on
Python 3.13: its pysimdjson < 7 has no wheel there). :data:`PROBLEM` says, at
import, why the path cannot be used here (``None`` when it can): an httpstan version it was
not tested with, a missing piece, or ``SHRINKSIM_PYSTAN_FAST=0``. The engine then samples
through PyStan's public ``model.sample()`` instead.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import socket
import threading
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from shrinksim.engines.base import EngineError, SamplerSettings, SamplingError

TESTED_HTTPSTAN = ("4.13.",)
"""httpstan releases (version prefixes) whose internals this path was tested against."""
SWITCH = "SHRINKSIM_PYSTAN_FAST"
"""Environment variable: ``0`` turns the direct path off (PyStan's ``model.sample()``)."""
MODULE_FUNCTIONS = (
    "hmc_nuts_diag_e_adapt_wrapper",
    "constrained_param_names",
    "get_param_names",
    "get_dims",
)
"""Functions of a compiled model's extension module that the path calls."""
_ARGUMENTS_SET_HERE = ("data", "init", "random_seed", "chain")
"""Arguments of the services call that :func:`run_chain` sets, not httpstan's defaults."""
_ARGUMENTS_NEEDED = ("random_seed", "chain", "num_warmup", "num_samples", "delta", "max_depth")
"""Arguments the services call must take (checked against its signature)."""
HTTPSTAN_FUNCTIONS = {
    "httpstan.cache": (
        "model_directory",
        "delete_model_directory",
        "dump_stanc_warnings",
        "dump_services_extension_module_compiler_output",
    ),
    "httpstan.compile": ("compile",),
    "httpstan.models": ("calculate_model_name", "build_services_extension_module"),
    "httpstan.services.arguments": ("function_arguments", "lookup_default", "Method"),
}
"""httpstan's functions that the path calls, by module."""
BUILD = """
import asyncio, json, sys
import httpstan.cache, httpstan.compile, httpstan.models
code = json.load(sys.stdin)["code"]
name = httpstan.models.calculate_model_name(code)
httpstan.cache.delete_model_directory(name)
_, warnings = httpstan.compile.compile(code, f"model_{name.split('/')[1]}")
httpstan.cache.dump_stanc_warnings(warnings, name)
output = asyncio.run(httpstan.models.build_services_extension_module(code))
httpstan.cache.dump_services_extension_module_compiler_output(output, name)
print(warnings, output)
"""
"""The build of httpstan's ``POST /models`` handler (so PyStan finds the model in the cache),
without PyStan and its HTTP client's 5-minute timeout: a script for a child process."""
_MODULES: dict[str, ModuleType] = {}
"""Loaded ``stan_services`` modules by model directory."""


def _problem() -> str | None:
    """Why the direct path cannot be used in this environment, or None."""
    if os.environ.get(SWITCH, "1") == "0":
        return f"{SWITCH}=0"
    try:
        version = importlib.metadata.version("httpstan")
        modules = {name: importlib.import_module(name) for name in HTTPSTAN_FUNCTIONS}
    except (ImportError, importlib.metadata.PackageNotFoundError) as err:
        return f"httpstan cannot be imported ({err})"
    if not version.startswith(TESTED_HTTPSTAN):
        tested = ", ".join(f"{v}*" for v in TESTED_HTTPSTAN)
        return f"httpstan {version} is not a version it was tested with ({tested})"
    missing = [
        f"{module}.{name}"
        for module, names in HTTPSTAN_FUNCTIONS.items()
        for name in names
        if not hasattr(modules[module], name)
    ]
    method = getattr(modules["httpstan.services.arguments"], "Method", None)
    if method is not None and not hasattr(method, "SAMPLE"):
        missing.append("httpstan.services.arguments.Method.SAMPLE")
    return f"httpstan {version} lacks {', '.join(missing)}" if missing else None


PROBLEM: str | None = _problem()
"""Why the direct path is off here (``None``: it is on)."""


def module_files(model_dir: str | Path) -> list[Path]:
    """Python extension modules in ``model_dir`` (httpstan builds one per model)."""
    return [p for p in Path(model_dir).glob("*") if p.name.endswith(tuple(EXTENSION_SUFFIXES))]


def services_module(model_dir: str) -> ModuleType:
    """httpstan's compiled ``stan_services`` extension module of one model, loaded once.

    The same loading as ``httpstan.models.import_services_extension_module``, from
    ``model_dir`` instead of httpstan's per-user cache.
    """
    if model_dir not in _MODULES:
        paths = module_files(model_dir)
        if not paths:
            raise EngineError(
                f"compiled model missing in {model_dir} (cache_dir deleted?). "
                "Delete results/models and rerun."
            )
        # The module name is always "stan_services", whatever the model (as in httpstan).
        spec = importlib.util.spec_from_file_location("stan_services", paths[0])
        if spec is None or spec.loader is None:
            raise EngineError(f"cannot load {paths[0]}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[model_dir] = module
    return _MODULES[model_dir]


def module_problem(module: ModuleType) -> str | None:
    """Why the direct path cannot call this compiled module, or None."""
    from httpstan.services import arguments

    missing = [name for name in MODULE_FUNCTIONS if not hasattr(module, name)]
    if missing:
        return f"the compiled model lacks {', '.join(missing)}"
    try:
        names = arguments.function_arguments("hmc_nuts_diag_e_adapt", module)
    except Exception as err:  # a docstring in another format fails to parse
        return f"the sampler's signature cannot be read ({type(err).__name__}: {err})"
    absent = [name for name in _ARGUMENTS_NEEDED if name not in names]
    return f"the sampler takes no {', '.join(absent)}" if absent else None


def arguments_of(module: ModuleType, settings: SamplerSettings, seed: int) -> dict[str, Any]:
    """Keyword arguments of the services call: httpstan's defaults, then ours."""
    from httpstan.services import arguments

    names = arguments.function_arguments("hmc_nuts_diag_e_adapt", module)
    out = {
        name: arguments.lookup_default(arguments.Method.SAMPLE, name)
        for name in names
        if name not in _ARGUMENTS_SET_HERE
    }
    return out | {
        "random_seed": seed,
        "num_warmup": settings.warmup,
        "num_samples": settings.draws,
        "delta": settings.adapt_delta,
        "max_depth": settings.max_treedepth,
        "refresh": settings.warmup + settings.draws,  # progress messages: only the last
    }


def run_chain(
    model_dir: str, socket_dir: str, data: dict[str, Any], arguments: dict[str, Any], chain: int
) -> tuple[list[str], np.ndarray]:
    """Sample one chain with ``hmc_nuts_diag_e_adapt_wrapper``, as httpstan does for PyStan.

    The C++ sampler runs in this thread (Stan's autodiff tape is set up for a process's
    main thread; a chain in a Python thread segfaults) and writes to a Unix socket that a
    reader thread drains. Returns the column names and draws (draws, columns); raises
    :class:`SamplingError` with Stan's error and warning messages when it fails.
    """
    from shrinksim.engines.stream import logger_messages, parse_draws, receive

    module = services_module(model_dir)
    path = os.path.join(socket_dir, f"chain-{os.getpid()}-{chain}.sock")
    streams: list[bytes] = []
    error: Exception | None = None
    done = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(4)
        reader = threading.Thread(target=receive, args=(server, done, streams), daemon=True)
        reader.start()
        try:
            code = module.hmc_nuts_diag_e_adapt_wrapper(path, data, {}, chain=chain, **arguments)
        except Exception as err:  # C++ exceptions arrive as ValueError or RuntimeError
            code, error = -1, err
        done.set()
        reader.join()
    os.unlink(path)
    names, values = [], np.empty((0, 0))
    messages: list[str] = []
    for stream in streams:
        if stream.startswith(b'{"version":1,"topic":"sample"'):
            names, values = parse_draws(stream)
        elif stream.startswith(b'{"version":1,"topic":"logger"'):
            messages = logger_messages(stream)
    if code != 0 or not names:
        problems = [m for m in messages if m.startswith(("error:", "warn:"))] or messages[-5:]
        cause = f"{type(error).__name__}: {error}" if error else f"return code {code}"
        raise SamplingError(f"chain {chain}: {cause}\n" + "\n".join(problems[-10:]))
    return names, values
