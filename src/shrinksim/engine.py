"""One small interface to Stan with two back-ends that return the same :class:`Draws`.

* :class:`CmdStanEngine` (cmdstanpy) whenever a CmdStan installation is found:
  ``$CMDSTAN``, ``~/.cmdstan`` or conda-forge's ``cmdstan`` in ``$CONDA_PREFIX/bin/cmdstan``.
* :class:`PyStanEngine` (PyStan 3 / httpstan), pip-only.

The Stan programs in ``stan/`` are the single source of truth: ``#include`` lines are
expanded here, so both engines compile the very same text. Each program is compiled once
per study (:meth:`Engine.compile`), never inside a fitting job.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import importlib.util
import json
import logging
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import simdjson

ENGINES = ("cmdstanpy", "pystan")
SAMPLER_VARIABLES = ("divergent__", "treedepth__", "energy__")


class EngineError(RuntimeError):
    """An engine cannot be used here; the message names the fix."""


class SamplingError(RuntimeError):
    """Stan failed to sample (initialisation failure, exception in the model, crash)."""


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings shared by both engines."""

    chains: int
    warmup: int
    draws: int
    adapt_delta: float
    max_treedepth: int

    @classmethod
    def from_config(cls, sampler: dict[str, Any]) -> SamplerSettings:
        return cls(**{k: sampler[k] for k in cls.__dataclass_fields__})


@dataclass
class Draws:
    """Posterior draws of the parameters and the sampler variables.

    ``params[name]`` has shape (chains, draws, *dims); ``sampler[name]`` has shape
    (chains, draws) for each of :data:`SAMPLER_VARIABLES`; ``seconds`` is the wall time of
    the engine's sampling call.
    """

    params: dict[str, np.ndarray]
    sampler: dict[str, np.ndarray]
    seconds: float


def program_source(stan_file: str | Path) -> str:
    """The text of a Stan program with its ``#include`` lines expanded (one level)."""
    path = Path(stan_file)
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#include"):
            included = path.parent / line.split(maxsplit=1)[1].strip().strip("<>\"'")
            lines.append(included.read_text(encoding="utf-8").rstrip("\n"))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def find_cmdstan() -> str | None:
    """Path of a usable CmdStan installation, or None."""
    conda = Path(os.environ.get("CONDA_PREFIX", "/nonexistent")) / "bin" / "cmdstan"
    if not os.environ.get("CMDSTAN") and conda.is_dir():
        os.environ["CMDSTAN"] = str(conda)
    try:
        import cmdstanpy

        return str(cmdstanpy.cmdstan_path())
    except (ImportError, ValueError):
        return None


def resolve_engine(requested: str) -> str:
    """Turn ``auto`` into a concrete engine; fail clearly if the requested one is missing."""
    if requested == "auto":
        return "cmdstanpy" if find_cmdstan() else "pystan"
    if requested == "cmdstanpy" and not find_cmdstan():
        raise EngineError(
            "engine: cmdstanpy, but no CmdStan installation was found (looked at $CMDSTAN, "
            "~/.cmdstan and $CONDA_PREFIX/bin/cmdstan). Fix: set `engine: pystan` (or `auto`), "
            "or use the conda environment in environment.yml, which installs conda-forge cmdstan."
        )
    if requested not in ENGINES:
        raise EngineError(f"engine: unknown engine {requested!r}; allowed: auto, {ENGINES}")
    return requested


@contextlib.contextmanager
def redirect_output(path: str | Path) -> Iterator[None]:
    """Send everything written to file descriptors 1 and 2 (C++ included) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in text[-lines:] if line.strip())


class Engine(ABC):
    """Compile a Stan program once; sample it many times."""

    name: str

    @abstractmethod
    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> dict[str, str]:
        """Compile ``code``; return what a fitting job needs to load it (written to JSON)."""

    @abstractmethod
    def sample(
        self, compiled: dict[str, str], data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        """Sample the compiled program with NUTS; raise :class:`SamplingError` on failure."""

    def close(self) -> None:  # noqa: B027 (optional hook: most engines hold nothing)
        """Release scratch space."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
_LOGGER_PROGRESS = ("info:Iteration:", "info: Elapsed Time:", "info:" + " " * 15)
_MODULES: dict[str, ModuleType] = {}
_POLL_SECONDS = 0.002
"""Reader's sleep after a pass that read little: a 100-group chain sends ~12 MB/s, ~25 KB
per sleep, well within the sender's socket buffer (~200 KB on Linux)."""
_BUSY_BYTES = 1 << 16
"""A pass that read this much is followed by another one at once: a large model's stream
would otherwise fill the socket buffer during the sleep and stall the sampler."""


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


def _receive(server: socket.socket, done: threading.Event, streams: list[bytes]) -> None:
    """Read every connection to ``server`` (Stan's logger and three writers) to EOF.

    Polls, sleeping :data:`_POLL_SECONDS` after a pass that read less than
    :data:`_BUSY_BYTES`, instead of blocking in ``select()``: a reader blocked on the
    socket is woken by each of the thousands of messages a chain sends per second, and those
    wake-ups cost the sampler about 10 % of its time. Runs until ``done`` is set
    (the services call has returned, so every connection it made is pending or open) and
    every connection is read to EOF. Diagnostic messages (unconstrained draws, momenta and
    gradients of every iteration, 3x the size of the draws) are dropped; the other streams
    are appended to ``streams``.
    """
    server.setblocking(False)
    buffers: dict[socket.socket, list[bytes] | None] = {}
    while True:
        finished = done.is_set()  # then this pass sees every connection through to EOF
        with contextlib.suppress(BlockingIOError):
            while True:
                conn, _ = server.accept()
                conn.setblocking(False)
                buffers[conn] = []
        read = sum(_drain(conn, buffers, streams) for conn in list(buffers))
        if finished and not buffers:
            return
        if read < _BUSY_BYTES:
            time.sleep(_POLL_SECONDS)


def _drain(
    conn: socket.socket, buffers: dict[socket.socket, list[bytes] | None], streams: list[bytes]
) -> int:
    """Read what ``conn`` holds; at EOF close it and move its bytes to ``streams``.

    Returns the number of bytes read.
    """
    kept = buffers[conn]
    read = 0
    while True:
        try:
            chunk = conn.recv(1 << 20)
        except BlockingIOError:
            return read
        read += len(chunk)
        if not chunk:
            conn.close()
            del buffers[conn]
            if kept:
                streams.append(b"".join(kept))
            return read
        if kept == [] and chunk.startswith(b'{"version":1,"topic":"diagnostic"'):
            buffers[conn] = kept = None
        elif kept is not None:
            kept.append(chunk)


def _parse_draws(stream: bytes) -> tuple[list[str], np.ndarray]:
    """Column names and draws (draws, columns) from a chain's sample-writer stream.

    Draw messages are JSON objects ``{"lp__": ..., ..., "z.1": ...}``; they are parsed as
    one JSON array by simdjson (exact doubles), or by ``json`` where Stan wrote NaN or
    Infinity, which simdjson rejects.
    """
    prefix = b'{"version":1,"topic":"sample","values":{'
    rows = [line[len(prefix) - 1 : -1] for line in stream.split(b"\n") if line.startswith(prefix)]
    if not rows:
        return [], np.empty((0, 0))
    document = b"[" + b",".join(rows) + b"]"
    try:
        parsed = simdjson.Parser().parse(document)
        names = list(parsed[0].keys())
        values = [list(row.values()) for row in parsed]
    except ValueError:
        parsed = json.loads(document)
        names = list(parsed[0])
        values = [list(row.values()) for row in parsed]
    return names, np.array(values, dtype=float)


def _logger_messages(stream: bytes) -> list[str]:
    """Stan's log messages of one chain that are not progress reports ("info:" dropped)."""
    out = []
    for line in stream.splitlines():
        try:
            text = str(json.loads(line)["values"][0])
        except (ValueError, KeyError, IndexError):
            continue
        if text.strip() != "info:" and not text.startswith(_LOGGER_PROGRESS):
            out.append(text.removeprefix("info:").strip())
    return out


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
        reader = threading.Thread(target=_receive, args=(server, done, streams), daemon=True)
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
            names, values = _parse_draws(stream)
        elif stream.startswith(b'{"version":1,"topic":"logger"'):
            messages = _logger_messages(stream)
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
    """

    name = "pystan"

    def __init__(self, cache_dir: str | Path, threads: int = 1) -> None:
        self.cache_dir = Path(cache_dir).resolve()
        self.threads = max(1, threads)
        self._scratch: Path | None = None  # for the chains' sockets, made when first sampling
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> dict[str, str]:
        import httpstan.models

        model_name = httpstan.models.calculate_model_name(code)
        model_dir = self.cache_dir / "httpstan" / httpstan.__version__ / model_name
        if not self._loads(model_dir):
            self._build(code, program, example_data)
        return {
            "engine": self.name,
            "program": program,
            "model_name": model_name,
            "model_dir": str(model_dir),
            "python": sys.executable,
            "code": code,
        }

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
            f"from shrinksim.engine import _services_module; _services_module({str(model_dir)!r})"
        )
        loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, check=False)
        if loaded.returncode != 0:
            shutil.rmtree(model_dir, ignore_errors=True)
            return False
        return True

    def _build(self, code: str, program: str, example_data: dict[str, Any]) -> None:
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
        self, compiled: dict[str, str], data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        if compiled["python"] != sys.executable:
            raise EngineError(
                f"{compiled['program']}: compiled by {compiled['python']}, not by "
                f"{sys.executable}; PyStan's cache is per interpreter. Delete results/models "
                "and rerun so it is compiled by the interpreter that fits."
            )
        model_dir = compiled["model_dir"]
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
            raise EngineError(f"{compiled['program']}: unexpected columns {names[: first + 3]}...")
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
        # Forked after the model is loaded, so workers inherit it.
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


class CmdStanEngine(Engine):
    """cmdstanpy. Executables are built in ``model_dir`` (a path every node can read)."""

    name = "cmdstanpy"

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        if not find_cmdstan():
            resolve_engine("cmdstanpy")  # raises the explanatory EngineError
        self.model_dir = Path(model_dir)
        self.threads = max(1, threads)
        self._models: dict[str, Any] = {}
        logging.getLogger("cmdstanpy").setLevel(logging.WARNING)

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> dict[str, str]:
        import cmdstanpy

        self.model_dir.mkdir(parents=True, exist_ok=True)
        stan_file = self.model_dir / f"{program}.stan"
        if not stan_file.exists() or stan_file.read_text() != code:
            tmp = stan_file.with_suffix(".stan.tmp")
            tmp.write_text(code)
            os.replace(tmp, stan_file)
        try:
            model = cmdstanpy.CmdStanModel(stan_file=stan_file)
        except Exception as err:
            raise EngineError(f"{program}: CmdStan could not compile it: {err}") from err
        return {
            "engine": self.name,
            "program": program,
            "exe": str(Path(model.exe_file).resolve()),
            "cmdstan": find_cmdstan() or "",
            "sha256": hashlib.sha256(code.encode()).hexdigest(),
            "code": code,
        }

    def sample(
        self, compiled: dict[str, str], data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        import cmdstanpy

        exe = compiled["exe"]
        if exe not in self._models:
            self._models[exe] = cmdstanpy.CmdStanModel(exe_file=exe)
        with tempfile.TemporaryDirectory(prefix="shrinksim-cmdstan-") as out:
            start = time.perf_counter()
            try:
                fit = self._models[exe].sample(
                    data=data,
                    chains=settings.chains,
                    parallel_chains=min(self.threads, settings.chains),
                    seed=seed,
                    iter_warmup=settings.warmup,
                    iter_sampling=settings.draws,
                    adapt_delta=settings.adapt_delta,
                    max_treedepth=settings.max_treedepth,
                    output_dir=out,
                    show_progress=False,
                    show_console=False,
                )
            except Exception as err:
                raise SamplingError(f"{type(err).__name__}: {err}") from err
            seconds = time.perf_counter() - start
            chains, draws = settings.chains, settings.draws
            params = {
                name: arr.reshape(chains, draws, *arr.shape[1:])
                for name, arr in fit.stan_variables().items()
            }
            method = fit.method_variables()
            sampler = {
                name: np.asarray(method[name]).reshape(draws, chains).T
                for name in SAMPLER_VARIABLES
            }
        return Draws(params, sampler, seconds)


def make_engine(
    name: str, *, cache_dir: str | Path, model_dir: str | Path, threads: int = 1
) -> Engine:
    """The engine ``name`` (already resolved, see :func:`resolve_engine`)."""
    if name == "pystan":
        return PyStanEngine(cache_dir, threads)
    if name == "cmdstanpy":
        return CmdStanEngine(model_dir, threads)
    raise EngineError(f"engine: unknown engine {name!r}; allowed: {ENGINES}")
