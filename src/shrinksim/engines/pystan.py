"""The PyStan 3 engine: httpstan's compiled models, sampled directly or through PyStan."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
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
from shrinksim.log import logger

NO_PYSTAN = (
    "engine: pystan, but httpstan (PyStan's Stan) is not installed. Fix: pip install "
    "'shrinksim[pystan]' (or `make install`), or use CmdStan: pip install 'shrinksim[cmdstan]'."
)
"""Why the pystan engine cannot be used, and the fix."""

# The public path's build (fastpath.BUILD is the direct one). PyStan compiles inside one HTTP
# request to its in-process httpstan server, with aiohttp's default 5-minute client timeout:
# on a loaded machine compiling can take longer.
_PYSTAN_BUILD = """
import json, sys
import aiohttp.client
aiohttp.client.DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30)
import stan
request = json.load(sys.stdin)
stan.build(request["code"], data=request["data"])
"""


def _tail(path: Path, lines: int = 15) -> str:
    """The last non-blank lines of the log ``path`` ("" if it cannot be read)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in text[-lines:] if line.strip())


def pystan_installed() -> bool:
    """Whether httpstan can be imported: all the direct path needs (PyStan's ``stan`` package
    is needed only where that path is off, for ``stan.build`` and ``model.sample()``)."""
    import importlib.util

    return importlib.util.find_spec("httpstan") is not None


def public_problem(direct_problem: str) -> None:
    """Raise :class:`EngineError` if PyStan's public path, needed because of
    ``direct_problem``, is missing too."""
    import importlib.metadata

    try:  # the distribution: a checkout's stan/ folder of programs would pass for a module
        importlib.metadata.version("pystan")
    except importlib.metadata.PackageNotFoundError:
        raise EngineError(
            f"PyStan's direct path is off ({direct_problem}) and PyStan, needed instead, is "
            "not installed: pip install 'pystan>=3.10,<4' (Python < 3.13), or install the "
            "tested httpstan (make install; constraints.txt)"
        ) from None


@contextlib.contextmanager
def httpstan_cache(cache_dir: Path) -> Iterator[None]:
    """httpstan's cache in ``cache_dir`` while the block runs: httpstan finds its cache with
    ``appdirs.user_cache_dir``, which follows ``$XDG_CACHE_HOME`` on Linux (on macOS it is
    always ``~/Library/Caches/httpstan``)."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache_dir)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def model_directory(cache_dir: Path, code: str) -> Path:
    """Where httpstan keeps (or will build) the model of ``code``: asked of httpstan itself."""
    import httpstan.cache
    import httpstan.models

    with httpstan_cache(cache_dir):
        return Path(httpstan.cache.model_directory(httpstan.models.calculate_model_name(code)))


def by_chain(values: np.ndarray, dims: list[int], draws: int, chains: int) -> np.ndarray:
    """PyStan's ``fit[name]`` (*dims, draws x chains, chains varying fastest) as
    (chains, draws, *dims)."""
    split = values.reshape(*dims, draws, chains)
    return np.ascontiguousarray(np.moveaxis(split, (-1, -2), (0, 1)))


class PyStanEngine(Engine):
    """PyStan 3's compiled models.

    ``compile`` builds with ``stan.build`` (httpstan's cache in ``cache_dir``) unless that
    cache already holds a loadable build of the same code. ``sample`` calls the model's
    extension module directly (:mod:`shrinksim.engines.fastpath`): the same C++ function
    with the same arguments, defaults, seed and chain ids as ``model.sample()``, hence the
    same draws (tested), without PyStan's fixed costs: HTTP round trips, a zlib-compressed
    fit cache on disk (~12 MB per chain), per-draw JSON parsing and the event-loop polling.
    Chains run one after another in this process when ``threads`` is 1, else in a pool of
    ``threads`` forked processes. Nothing is written to disk but a socket; C++ output goes
    to a log. Where the direct path cannot be used (:data:`fastpath.PROBLEM`, or a compiled
    module it cannot call) it samples with PyStan's public ``stan.build(...).sample()``,
    saying why once per process.

    A :class:`CompiledModel` of this engine has httpstan's model directory as ``location``
    and ``details`` ``model_name`` (httpstan's) and ``python`` (the interpreter that built
    it: httpstan's cache is per interpreter).
    """

    name = "pystan"

    def __init__(self, cache_dir: str | Path, threads: int = 1) -> None:
        if not pystan_installed():
            raise EngineError(NO_PYSTAN)
        self.cache_dir = Path(cache_dir).resolve()
        self.threads = max(1, threads)
        self._scratch: Path | None = None  # for the chains' sockets, made when first sampling
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._public: dict[str, str] = {}  # model directory -> why it is sampled by PyStan

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> CompiledModel:
        import httpstan.models

        model_dir = model_directory(self.cache_dir, code)
        if not self._loads(model_dir):
            self._build(code, program, example_data)
        return CompiledModel(
            engine=self.name,
            program=program,
            location=str(model_dir),
            details={
                "model_name": httpstan.models.calculate_model_name(code),
                "python": sys.executable,
            },
            code=code,
        )

    @staticmethod
    def _loads(model_dir: str | Path) -> bool:
        """Whether httpstan's cache holds a loadable build of the model (then it is reused).

        A build cut short leaves no module (httpstan then builds it) or a truncated one,
        which can crash the process that loads it: it is loaded in a child process and,
        if that fails, removed so that httpstan builds it afresh.
        """
        from shrinksim.engines.fastpath import module_files

        if not module_files(model_dir):
            return False
        check = (
            "from shrinksim.engines.fastpath import services_module; "
            f"services_module({str(model_dir)!r})"
        )
        loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, check=False)
        if loaded.returncode != 0:
            shutil.rmtree(model_dir, ignore_errors=True)
            return False
        return True

    def _build(self, code: str, program: str, example_data: dict[str, Any]) -> None:
        """Build the model in a child process, directly with httpstan (or with
        ``stan.build`` where the direct path is off); echo its output."""
        from shrinksim.engines import fastpath

        if fastpath.PROBLEM is not None:
            public_problem(fastpath.PROBLEM)
        script = _PYSTAN_BUILD if fastpath.PROBLEM else fastpath.BUILD
        env = os.environ | {"XDG_CACHE_HOME": str(self.cache_dir)}  # as httpstan_cache()
        request = json.dumps({"code": code, "data": example_data})
        with tempfile.TemporaryFile() as log:
            done = subprocess.run(
                [sys.executable, "-c", script],
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

    def direct_problem(self, compiled: CompiledModel) -> str | None:
        """Why ``compiled`` is sampled through PyStan's ``model.sample()``, or None (directly).

        Says so in the log the first time per model and process."""
        from shrinksim.engines import fastpath

        model_dir = compiled.location
        if model_dir not in self._public:
            problem = fastpath.PROBLEM or fastpath.module_problem(
                fastpath.services_module(model_dir)
            )
            self._public[model_dir] = problem or ""
            if problem:
                public_problem(problem)
                logger.info(
                    "%s: sampling with PyStan's model.sample(), not directly: %s",
                    compiled.program,
                    problem,
                )
        return self._public[model_dir] or None

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
        data = json.loads(json.dumps(data))  # plain ints, floats and lists, as PyStan sends
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="shrinksim-pystan-"))
        log = self._scratch / "sample.log"
        log.write_bytes(b"")
        sample = self._sample_public if self.direct_problem(compiled) else self._sample_direct
        try:
            with redirect_output(log):
                return sample(compiled, data, settings, seed)
        except SamplingError as err:
            raise SamplingError(f"{err}\n{_tail(log)}".strip()) from err

    def _sample_public(
        self, compiled: CompiledModel, data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        """PyStan's own ``stan.build(...).sample()``; ``seconds`` counts both (the build of
        a cached model is part of every fit's cost on this path)."""
        import stan

        start = time.perf_counter()
        with httpstan_cache(self.cache_dir):
            try:
                model = stan.build(compiled.code, data=data, random_seed=seed)
                fit = model.sample(
                    num_chains=settings.chains,
                    num_warmup=settings.warmup,
                    num_samples=settings.draws,
                    delta=settings.adapt_delta,
                    max_depth=settings.max_treedepth,
                    refresh=settings.warmup + settings.draws,
                )
            except RuntimeError as err:  # PyStan's message when a chain fails
                raise SamplingError(f"{compiled.program}: {err}") from err
        seconds = time.perf_counter() - start
        shape = settings.draws, settings.chains
        params = {
            name: by_chain(fit[name], list(dims), *shape)
            for name, dims in zip(fit.param_names, fit.dims, strict=True)
        }
        sampler = {name: by_chain(fit[name], [], *shape) for name in SAMPLER_VARIABLES}
        return Draws(params, sampler, seconds)

    def _sample_direct(
        self, compiled: CompiledModel, data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        """The compiled module's sampler, called in this process (or a pool of forks)."""
        from shrinksim.engines.fastpath import run_chain, services_module

        model_dir, scratch = compiled.location, str(self._scratch)
        module = services_module(model_dir)
        arguments = self._arguments(module, settings, seed)
        chains = range(1, settings.chains + 1)
        start = time.perf_counter()
        if self.threads == 1 or settings.chains == 1:
            runs = [run_chain(model_dir, scratch, data, arguments, c) for c in chains]
        else:
            pool = self._chain_pool()
            jobs = [pool.submit(run_chain, model_dir, scratch, data, arguments, c) for c in chains]
            runs = [job.result() for job in jobs]
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

    def _arguments(self, module: Any, settings: SamplerSettings, seed: int) -> dict[str, Any]:
        """The direct path's sampler arguments (a hook: tests change the initial values)."""
        from shrinksim.engines.fastpath import arguments_of

        return arguments_of(module, settings, seed)

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
