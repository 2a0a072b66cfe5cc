"""The engine interface shared by both back-ends: settings in, :class:`Draws` out."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLER_VARIABLES = ("divergent__", "treedepth__", "energy__", "n_leapfrog__")
"""Sampler variables every engine returns in :attr:`Draws.sampler` (``n_leapfrog__``, the
leapfrog steps of each iteration, for ``make bench``: the cost of an iteration)."""


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
        """The settings from the config's ``sampler`` section (extra keys ignored)."""
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


@dataclass(frozen=True)
class CompiledModel:
    """A Stan program compiled once by one engine: what a fitting job needs to sample it.

    ``location`` is what the engine loads (CmdStan: the executable; PyStan: httpstan's model
    directory). ``details`` records engine-specific provenance, documented by each engine
    (CmdStan: ``cmdstan``, ``sha256``; PyStan: ``model_name``, ``python``).
    """

    engine: str
    program: str
    location: str
    details: dict[str, str] = field(hash=False)
    code: str

    def write(self, path: str | Path) -> None:
        """Write the model as JSON to ``path``, atomically."""
        from shrinksim.tables import write_atomic  # lazy: keeps pyarrow out of engine imports

        text = json.dumps(asdict(self), indent=1)
        write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    @classmethod
    def read(cls, path: str | Path) -> CompiledModel:
        """The model written by :meth:`write` to ``path``."""
        fields = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            return cls(**fields)
        except TypeError as err:
            raise EngineError(
                f"{path}: not a compiled-model file of this version ({err}). "
                "Delete results/models and rerun."
            ) from err


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


class Engine(ABC):
    """Compile a Stan program once; sample it many times."""

    name: str

    @abstractmethod
    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> CompiledModel:
        """Compile ``code``; return what a fitting job needs to load it."""

    def check(self, compiled: CompiledModel) -> None:
        """Raise :class:`EngineError` unless ``compiled`` was compiled by this engine."""
        if compiled.engine != self.name:
            raise EngineError(
                f"{compiled.program}: compiled by {compiled.engine}, cannot be sampled by "
                f"{self.name}"
            )

    @abstractmethod
    def sample(
        self, compiled: CompiledModel, data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        """Sample the compiled program with NUTS; raise :class:`SamplingError` on failure."""

    def close(self) -> None:  # noqa: B027 (optional hook: most engines hold nothing)
        """Release scratch space."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
