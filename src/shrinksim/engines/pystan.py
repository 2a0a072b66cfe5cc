"""The PyStan 3 engine: httpstan's compiled models, sampled through ``stan_services``."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

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
from shrinksim.engines.stream import logger_messages, parse_draws, receive

# PyStan compiles inside one HTTP request to its in-process httpstan server, with aiohttp's
# default 5-minute client timeout: on a loaded machine compiling can take longer.
_PYSTAN_BUILD = """
import json, sys
import aiohttp.client
aiohttp.client.DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30)
import stan
request = json.load(sys.stdin)
stan.build(request["code"], data=request["data"])
"""

_CHAIN_ARGS_SET_HERE = ("data", "init", "random_seed", "chain")
"""Arguments of the services call that :func:`run_chain` sets, not httpstan's defaults."""
_MODULES: dict[str, ModuleType] = {}
"""Loaded ``stan_services`` modules by model directory."""


def _tail(path: Path, lines: int = 15) -> str:
    """The last non-blank lines of the log ``path`` ("" if it cannot be read)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in text[-lines:] if line.strip())


def _module_files(model_dir: str | Path) -> list[Path]:
    """Python extension modules in ``model_dir`` (httpstan builds one per model)."""
    return [p for p in Path(model_dir).glob("*") if p.name.endswith(tuple(EXTENSION_SUFFIXES))]


def _services_module(model_dir: str) -> ModuleType:
    """httpstan's compiled ``stan_services`` extension module of one model, loaded once.

    The same loading as ``httpstan.models.import_services_extension_module``, from
    ``model_dir`` instead of httpstan's per-user cache.
    """
    if model_dir not in _MODULES:
        paths = _module_files(model_dir)
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


def run_chain(
    model_dir: str, socket_dir: str, data: dict[str, Any], arguments: dict[str, Any], chain: int
) -> tuple[list[str], np.ndarray]:
    """Sample one chain with ``hmc_nuts_diag_e_adapt_wrapper``, as httpstan does for PyStan.

    The C++ sampler runs in this thread (Stan's autodiff tape is set up for a process's
    main thread; a chain in a Python thread segfaults) and writes to a Unix socket that a
    reader thread drains. Returns the column names and draws (draws, columns); raises
    :class:`SamplingError` with Stan's error and warning messages when it fails.
    """
    module = _services_module(model_dir)
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


class PyStanEngine(Engine):
    """PyStan 3's compiled models, sampled through httpstan's ``stan_services`` module.

    ``compile`` builds with ``stan.build`` (httpstan's cache in ``cache_dir``) unless that
    cache already holds a loadable build of the same code. ``sample``
    calls the model's extension module directly, the same C++ function with the same
    arguments, defaults, seed and chain ids as ``model.sample()``, hence the same draws
    (tested), without PyStan's fixed costs: HTTP round trips, a zlib-compressed fit cache
    on disk (~12 MB per chain), per-draw JSON parsing and the event-loop polling. Chains run
    one after another in this process when ``threads`` is 1, else in a pool of ``threads``
    forked processes. Nothing is written to disk but a socket; C++ output goes to a log.

    A :class:`CompiledModel` of this engine has httpstan's model directory as ``location``
    and ``details`` ``model_name`` (httpstan's) and ``python`` (the interpreter that built
    it: httpstan's cache is per interpreter).
    """

    name = "pystan"

    def __init__(self, cache_dir: str | Path, threads: int = 1) -> None:
        self.cache_dir = Path(cache_dir).resolve()
        self.threads = max(1, threads)
        self._scratch: Path | None = None  # for the chains' sockets, made when first sampling
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> CompiledModel:
        import httpstan.models

        model_name = httpstan.models.calculate_model_name(code)
        model_dir = self.cache_dir / "httpstan" / httpstan.__version__ / model_name
        if not self._loads(model_dir):
            self._build(code, program, example_data)
        return CompiledModel(
            engine=self.name,
            program=program,
            location=str(model_dir),
            details={"model_name": model_name, "python": sys.executable},
            code=code,
        )

    @staticmethod
    def _loads(model_dir: str | Path) -> bool:
        """Whether httpstan's cache holds a loadable build of the model (then it is reused).

        A build cut short leaves no module (httpstan then builds it) or a truncated one,
        which can crash the process that loads it: it is loaded in a child process and,
        if that fails, removed so that httpstan builds it afresh.
        """
        if not _module_files(model_dir):
            return False
        check = (
            "from shrinksim.engines.pystan import _services_module; "
            f"_services_module({str(model_dir)!r})"
        )
        loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, check=False)
        if loaded.returncode != 0:
            shutil.rmtree(model_dir, ignore_errors=True)
            return False
        return True

    def _build(self, code: str, program: str, example_data: dict[str, Any]) -> None:
        """Build the model with ``stan.build`` in a child process; echo its output."""
        # In a child process: httpstan's cache location is read from $XDG_CACHE_HOME.
        env = os.environ | {"XDG_CACHE_HOME": str(self.cache_dir)}
        request = json.dumps({"code": code, "data": example_data})
        with tempfile.TemporaryFile() as log:
            done = subprocess.run(
                [sys.executable, "-c", _PYSTAN_BUILD],
                input=request.encode(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
            log.seek(0)
            output = log.read().decode(errors="replace")
        sys.stderr.write(output)
        if done.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise EngineError(f"{program}: PyStan could not compile it:\n{tail}")

    def _arguments(self, module: ModuleType, settings: SamplerSettings, seed: int) -> dict:
        """Keyword arguments of the services call: httpstan's defaults, then ours."""
        from httpstan.services import arguments

        names = arguments.function_arguments("hmc_nuts_diag_e_adapt", module)
        out = {
            name: arguments.lookup_default(arguments.Method.SAMPLE, name)
            for name in names
            if name not in _CHAIN_ARGS_SET_HERE
        }
        return out | {
            "random_seed": seed,
            "num_warmup": settings.warmup,
            "num_samples": settings.draws,
            "delta": settings.adapt_delta,
            "max_depth": settings.max_treedepth,
            "refresh": settings.warmup + settings.draws,  # progress messages: only the last
        }

    def sample(
        self, compiled: CompiledModel, data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        self.check(compiled)
        python = compiled.details.get("python")
        if python != sys.executable:
            raise EngineError(
                f"{compiled.program}: compiled by {python}, not by {sys.executable}; "
                "PyStan's cache is per interpreter. Delete results/models "
                "and rerun so it is compiled by the interpreter that fits."
            )
        model_dir = compiled.location
        module = _services_module(model_dir)
        data = json.loads(json.dumps(data))  # plain ints, floats and lists, as PyStan sends
        arguments = self._arguments(module, settings, seed)
        chains = range(1, settings.chains + 1)
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="shrinksim-pystan-"))
        log = self._scratch / "sample.log"
        log.write_bytes(b"")
        start = time.perf_counter()
        try:
            with redirect_output(log):
                if self.threads == 1 or settings.chains == 1:
                    runs = [
                        run_chain(model_dir, str(self._scratch), data, arguments, c) for c in chains
                    ]
                else:
                    pool = self._chain_pool()
                    jobs = [
                        pool.submit(run_chain, model_dir, str(self._scratch), data, arguments, c)
                        for c in chains
                    ]
                    runs = [job.result() for job in jobs]
        except SamplingError as err:
            raise SamplingError(f"{err}\n{_tail(log)}".strip()) from err
        seconds = time.perf_counter() - start
        names = runs[0][0]
        values = np.stack([v for _, v in runs])  # (chains, draws, columns)
        first = sum(name.endswith("__") for name in names)  # sampler columns come first
        if names[first:] != module.constrained_param_names(data):
            raise EngineError(f"{compiled.program}: unexpected columns {names[: first + 3]}...")
        params = {}
        for name, dims in zip(module.get_param_names(data), module.get_dims(data), strict=True):
            size = int(np.prod(dims))
            # Stan writes a multi-dimensional parameter in column-major order.
            block = values[..., first : first + size].reshape(*values.shape[:2], *dims[::-1])
            params[name] = np.transpose(block, (0, 1, *range(block.ndim - 1, 1, -1)))
            first += size
        column = {name: i for i, name in enumerate(names)}
        sampler = {name: values[..., column[name]] for name in SAMPLER_VARIABLES}
        return Draws(params, sampler, seconds)

    def _chain_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        """The pool of chain processes, forked after the model is loaded (they inherit it)."""
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.threads, mp_context=multiprocessing.get_context("fork")
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
