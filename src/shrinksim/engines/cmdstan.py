"""The cmdstanpy engine, used whenever a CmdStan installation is found."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
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
)

NO_CMDSTAN = (
    "engine: cmdstanpy needs cmdstanpy (pip install 'shrinksim[cmdstan]') and a CmdStan "
    "installation ($CMDSTAN, ~/.cmdstan or $CONDA_PREFIX/bin/cmdstan; cmdstanpy.install_cmdstan() "
    "or conda-forge's cmdstan, as in environment.yml). Or set `engine: pystan` "
    "(pip install 'shrinksim[pystan]')."
)
"""Why the cmdstanpy engine cannot be used, and the fix."""


def find_cmdstan() -> str | None:
    """Path of a usable CmdStan installation, or None.

    Looks at ``$CMDSTAN``, ``~/.cmdstan`` (cmdstanpy's own search) and conda-forge's
    ``cmdstan`` in ``$CONDA_PREFIX/bin/cmdstan`` (then sets ``$CMDSTAN`` to it).
    """
    conda = Path(os.environ.get("CONDA_PREFIX", "/nonexistent")) / "bin" / "cmdstan"
    if not os.environ.get("CMDSTAN") and conda.is_dir():
        os.environ["CMDSTAN"] = str(conda)
    try:
        import cmdstanpy

        return str(cmdstanpy.cmdstan_path())
    except (ImportError, ValueError):
        return None


class CmdStanEngine(Engine):
    """cmdstanpy. Executables are built in ``model_dir`` (a path every node can read).

    A :class:`CompiledModel` of this engine has the executable as ``location`` and
    ``details`` ``cmdstan`` (the installation that built it) and ``sha256`` (of the code).
    """

    name = "cmdstanpy"

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        if not find_cmdstan():
            raise EngineError(NO_CMDSTAN)
        self.model_dir = Path(model_dir)
        self.threads = max(1, threads)
        self._models: dict[str, Any] = {}  # executable path -> cmdstanpy.CmdStanModel
        logging.getLogger("cmdstanpy").setLevel(logging.WARNING)

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> CompiledModel:
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
        return CompiledModel(
            engine=self.name,
            program=program,
            location=str(Path(model.exe_file).resolve()),
            details={
                "cmdstan": find_cmdstan() or "",
                "sha256": hashlib.sha256(code.encode()).hexdigest(),
            },
            code=code,
        )

    def sample(
        self, compiled: CompiledModel, data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        import cmdstanpy

        self.check(compiled)
        exe = compiled.location
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
