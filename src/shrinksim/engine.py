"""One small interface to Stan with two back-ends that return the same :class:`Draws`.

* :class:`CmdStanEngine` (cmdstanpy) whenever a CmdStan installation is found:
  ``$CMDSTAN``, ``~/.cmdstan`` or conda-forge's ``cmdstan`` in ``$CONDA_PREFIX/bin/cmdstan``.
* :class:`PyStanEngine` (PyStan 3 / httpstan), pip-only.

The Stan programs in ``stan/`` are the single source of truth: ``#include`` lines are
expanded here, so both engines compile the very same text. Each program is compiled once
per study (:meth:`Engine.compile`), never inside a fitting job.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


_SCRATCH: list[Path] = []


def _process_scratch() -> Path:
    """This process's httpstan cache for fits (``$XDG_CACHE_HOME``), removed at exit.

    One per process, never per engine: an extension module loaded from two paths crashes
    the interpreter at exit.
    """
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="shrinksim-httpstan-")))
        atexit.register(shutil.rmtree, _SCRATCH[0], ignore_errors=True)
        # httpstan finds its cache through appdirs, i.e. $XDG_CACHE_HOME, at every call,
        # and leaves one Unix socket per chain in the temporary folder: keep both in here.
        os.environ["XDG_CACHE_HOME"] = str(_SCRATCH[0])
        tempfile.tempdir = str(_SCRATCH[0])
    return _SCRATCH[0]


class PyStanEngine(Engine):
    """PyStan 3. Compiled models live in ``cache_dir`` (httpstan's cache); fits go to a
    per-process scratch cache that is emptied after every fit and removed at exit, so
    httpstan's fit cache never grows and parallel jobs never touch each other's files.
    """

    name = "pystan"

    def __init__(self, cache_dir: str | Path, threads: int = 1) -> None:
        self.cache_dir = Path(cache_dir).resolve()
        self.threads = max(1, threads)

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> dict[str, str]:
        # Build in a child process: loading one extension module from two paths (the shared
        # cache here, the scratch cache when sampling) crashes the interpreter at exit.
        import httpstan.models

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
        model_name = httpstan.models.calculate_model_name(code)
        return {
            "engine": self.name,
            "program": program,
            "model_name": model_name,
            "model_dir": str(self.cache_dir / "httpstan" / httpstan.__version__ / model_name),
            "python": sys.executable,
            "code": code,
        }

    def _scratch_model(self, compiled: dict[str, str]) -> Path:
        """Link the compiled model into this process's scratch cache; return the scratch root."""
        import httpstan.models

        if httpstan.models.calculate_model_name(compiled["code"]) != compiled["model_name"]:
            raise EngineError(
                f"{compiled['program']}: compiled by {compiled['python']}, not by "
                f"{sys.executable}; PyStan's cache is per interpreter. Delete results/models "
                "and rerun so it is compiled by the interpreter that fits."
            )
        source = Path(compiled["model_dir"])
        if not any(source.glob("*.so")):
            raise EngineError(
                f"{compiled['program']}: compiled model missing in {source} (cache_dir deleted?). "
                "Delete results/models and rerun."
            )
        scratch = _process_scratch()
        self._limit_chain_processes()
        target = scratch / "httpstan" / httpstan.__version__ / compiled["model_name"]
        if not target.exists():
            target.mkdir(parents=True)
            for item in source.iterdir():
                if item.is_file():
                    (target / item.name).symlink_to(item)
        return scratch

    def _limit_chain_processes(self) -> None:
        # httpstan runs chains in a module-level process pool sized to every core of the
        # machine, whatever Snakemake granted; replace it with one of `threads` workers.
        import concurrent.futures
        import multiprocessing

        import httpstan.services_stub as stub

        if getattr(stub.executor, "_max_workers", None) == self.threads:
            return
        stub.executor.shutdown(wait=False)
        stub.executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.threads,
            mp_context=multiprocessing.get_context("fork"),
            initializer=stub.init_worker,
        )

    def sample(
        self, compiled: dict[str, str], data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        scratch = self._scratch_model(compiled)
        import stan

        log = scratch / "sample.log"
        log.write_bytes(b"")
        try:
            with redirect_output(log):
                model = stan.build(compiled["code"], data=data, random_seed=seed)
                start = time.perf_counter()
                fit = model.sample(
                    num_chains=settings.chains,
                    num_warmup=settings.warmup,
                    num_samples=settings.draws,
                    delta=settings.adapt_delta,
                    max_depth=settings.max_treedepth,
                )
                seconds = time.perf_counter() - start
        except Exception as err:
            raise SamplingError(f"{type(err).__name__}: {err}\n{_tail(log)}".strip()) from err
        finally:
            for fits in (scratch / "httpstan").glob("*/models/*/fits"):
                shutil.rmtree(fits, ignore_errors=True)
            for sock in scratch.glob("httpstan_*.sock"):
                sock.unlink(missing_ok=True)
        chains, draws = settings.chains, settings.draws

        def reshape(flat: np.ndarray, dims: list[int]) -> np.ndarray:
            # PyStan's last axis runs over draws with chains interleaved (draw * chains + chain).
            arr = np.asarray(flat).reshape(*dims, draws, chains)
            return np.moveaxis(arr, (-1, -2), (0, 1))

        params = {
            name: reshape(fit[name], list(dims))
            for name, dims in zip(fit.param_names, fit.dims, strict=True)
        }
        sampler = {name: reshape(fit[name], []) for name in SAMPLER_VARIABLES}
        return Draws(params, sampler, seconds)


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
