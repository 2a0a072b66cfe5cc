"""The nutpie engine: nutpie's NUTS on the log densities of :mod:`shrinksim.engines.densities`.

pip-only (``pip install 'shrinksim[nutpie]'``: nutpie and numba, no PyMC, no C++ compiler).
"Compiling" a program checks that it has a density here and compiles the numba callbacks
into numba's cache (``<cache_dir>/numba``), so fitting jobs load them in a fraction of a
second. The Stan program stays the definition of the model: the tests compare these
densities and gradients with Stan's ``log_prob`` and the draws with the exact reference.

nutpie is driven through its callback interface (``nutpie._lib``, as its own numba backend
for PyMC is), so the tested minor version is pinned (:data:`NUTPIE_TESTED`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
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

NUTPIE_TESTED = "0.16."
"""The nutpie minor version whose callback interface this engine was tested with."""

NO_NUTPIE = (
    "engine: nutpie needs nutpie 0.16 and numba: pip install 'shrinksim[nutpie]' (or make "
    "install). Or use a Stan engine: `engine: pystan` or `engine: cmdstanpy`."
)
"""Why the nutpie engine cannot be used, and the fix."""


@dataclass(frozen=True)
class ProgramDensity:
    """How the nutpie engine fits one Stan program."""

    structure: str
    """``partial``, ``no``, ``complete`` pooling or ``marginal`` (partial pooling, theta
    integrated out), ``gaussian_`` before them with sigma estimated: the callback
    ``<structure>_logp`` of :mod:`densities`."""
    likelihood: str
    """The group likelihood: a code name of :mod:`densities` (``BINOMIAL``...)."""
    columns: tuple[str, ...]
    """The Stan data arrays of the columns ``a``, ``b`` (and ``c``) of the data block."""

    @property
    def parameters(self) -> dict[str, bool]:
        """The parameters the sampler sees, in Stan's order, and whether each is a vector of
        the groups."""
        return {
            "partial": {"mu": False, "tau": False, "z": True},
            "no": {"theta": True},
            "complete": {"mu": False},
            "marginal": {"mu": False, "tau": False},
            "gaussian_marginal": {"mu": False, "tau": False, "sigma": False},
            "gaussian_no": {"theta": True, "sigma": False},
            "gaussian_complete": {"mu": False, "sigma": False},
        }[self.structure]


def _programs() -> dict[str, ProgramDensity]:
    """Every program with a density, by the file stem in ``stan/``."""
    families = {
        "": ("BINOMIAL", ("y", "n")),
        "poisson_": ("POISSON", ("y", "exposure")),
        "gaussian_se_": ("NORMAL_SE", ("estimate", "se")),
    }
    programs = {
        f"{prefix}{structure}_pooling": ProgramDensity(structure, likelihood, columns)
        for prefix, (likelihood, columns) in families.items()
        for structure in ("partial", "no", "complete")
    }
    gaussian = ("NORMAL", ("y_mean", "n", "y_sd"))
    return programs | {
        "gaussian_se_partial_pooling_marginal": ProgramDensity(
            "marginal", *families["gaussian_se_"]
        ),
        "gaussian_partial_pooling_marginal": ProgramDensity("gaussian_marginal", *gaussian),
        "gaussian_no_pooling": ProgramDensity("gaussian_no", *gaussian),
        "gaussian_complete_pooling": ProgramDensity("gaussian_complete", *gaussian),
    }


PROGRAMS = _programs()
"""The Stan programs the nutpie engine can fit (the others need a Stan engine)."""


def nutpie_problem() -> str | None:
    """Why the nutpie engine cannot run here (``None``: it can)."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("nutpie")
        importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        return NO_NUTPIE
    if not version.startswith(NUTPIE_TESTED):
        return f"nutpie {version} is installed; this engine is tested with {NUTPIE_TESTED}*. {NO_NUTPIE}"
    return None


def _nutpie_model(logp: Any, block: np.ndarray, names: list[str], shapes: list[tuple]) -> Any:
    """A ``nutpie.sample`` model of the numba callback ``logp`` on the data ``block``."""
    from nutpie import _lib
    from nutpie.sample import CompiledModel as NutpieModel

    from shrinksim.engines import densities

    n_dim = int(sum(np.prod(shape, dtype=int) for shape in shapes))
    groups = int(block[0])
    dims = {name: ["group"] for name, shape in zip(names, shapes, strict=True) if shape}

    @dataclass(frozen=True)
    class CallbackModel(NutpieModel):
        @property
        def n_dim(self) -> int:
            return n_dim

        @property
        def shapes(self) -> dict[str, tuple]:
            return dict(zip(names, shapes, strict=True))

        @property
        def coords(self) -> dict[str, Any]:
            return {"group": np.arange(groups)}

        def _make_sampler(self, settings, init_mean, cores, progress_type, store):  # noqa: ANN001, ANN202
            model = self._make_model(init_mean)
            return _lib.PySampler.from_pymc(settings, cores, model, progress_type, store)

        def _make_model(self, init_mean):  # noqa: ANN001, ANN202, ARG002
            address = block.ctypes.data
            return _lib.PyMcModel(
                _lib.LogpFunc(logp.address, address, self),
                _lib.ExpandFunc(n_dim, n_dim, densities.expand.address, address, self),
                _lib.PyVariable.new_variables(
                    names, ["float64"] * len(names), shapes, {"group": groups}, dims
                ),
                n_dim,
                {"group": groups},
                self.coords,
                # Stan's initial values: uniform(-2, 2) on the unconstrained scale
                lambda seed: np.random.default_rng(seed).uniform(-2.0, 2.0, n_dim),
                None,
            )

    return CallbackModel(dims=dims)


class NutpieEngine(Engine):
    """nutpie (Rust NUTS, its own mass-matrix adaptation) on numba log densities.

    A :class:`CompiledModel` of this engine has ``location`` the callback's name in
    :mod:`shrinksim.engines.densities` and ``details`` ``nutpie``, ``numba`` (versions).
    """

    name = "nutpie"

    def __init__(self, cache_dir: str | Path, threads: int = 1) -> None:
        problem = nutpie_problem()
        if problem:
            raise EngineError(problem)
        # numba reads its cache folder when first imported
        os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(cache_dir).resolve() / "numba"))
        self.threads = max(1, threads)
        # Imported with the engine (≈ 3 s of CPU: nutpie's own imports, the callbacks loaded
        # from numba's cache), not in the first sample(): part of a job's model load, not of
        # its sampling (make bench times the sample() call).
        import nutpie  # noqa: F401

        from shrinksim.engines import densities  # noqa: F401

    def compile(self, code: str, program: str, example_data: dict[str, Any]) -> CompiledModel:
        import importlib.metadata

        if program not in PROGRAMS:
            raise EngineError(
                f"{program}: the nutpie engine has no density of this program; it fits "
                f"{sorted(PROGRAMS)}. Use `engine: pystan` or `engine: cmdstanpy` for it."
            )
        # A first sample compiles the callbacks into numba's cache for the fitting jobs.
        self.sample(
            CompiledModel(self.name, program, "", {}, code),
            example_data,
            SamplerSettings(chains=1, warmup=20, draws=5, adapt_delta=0.8, max_treedepth=5),
            seed=1,
        )
        return CompiledModel(
            engine=self.name,
            program=program,
            location=f"{PROGRAMS[program].structure}_logp",
            details={
                "nutpie": importlib.metadata.version("nutpie"),
                "numba": importlib.metadata.version("numba"),
            },
            code=code,
        )

    def sample(
        self, compiled: CompiledModel, data: dict[str, Any], settings: SamplerSettings, seed: int
    ) -> Draws:
        import nutpie

        from shrinksim.engines import densities

        self.check(compiled)
        density = PROGRAMS[compiled.program]
        groups = int(data["G"])
        block = data_block(density, data)
        names = list(density.parameters)
        shapes = [(groups,) if vector else () for vector in density.parameters.values()]
        model = _nutpie_model(getattr(densities, f"{density.structure}_logp"), block, names, shapes)
        start = time.perf_counter()
        try:
            trace = nutpie.sample(
                model,
                draws=settings.draws,
                tune=settings.warmup,
                chains=settings.chains,
                cores=min(self.threads, settings.chains),
                seed=seed,
                save_warmup=False,
                progress_bar=False,
                target_accept=settings.adapt_delta,
                maxdepth=settings.max_treedepth,
            )
        except Exception as err:  # nutpie raises RuntimeError and its own errors
            raise SamplingError(f"{type(err).__name__}: {err}") from err
        draws = trace_draws(trace, names, time.perf_counter() - start)
        params = draws.params
        if density.structure.endswith("marginal"):
            params["theta"] = marginal_theta(params, block, seed)
        # as the Stan programs: log_lik always, of size 0 without compute_log_lik
        params["log_lik"] = (
            log_lik(density, params, block)
            if data.get("compute_log_lik")
            else np.empty((settings.chains, settings.draws, 0))
        )
        return draws


def trace_draws(trace: Any, names: Iterable[str], seconds: float) -> Draws:
    """nutpie's InferenceData (warmup not saved) as :class:`Draws`: the variables ``names``
    and Stan's sampler variables (also the PyMC + nutpie peer's, in ``make bench``)."""
    params = {name: np.asarray(trace.posterior[name].values) for name in names}
    stats = trace.sample_stats
    sampler = {
        ours: np.asarray(stats[theirs].values, float) for ours, theirs in NUTPIE_STATS.items()
    }
    assert set(sampler) == set(SAMPLER_VARIABLES)
    return Draws(params, sampler, seconds)


def data_block(density: ProgramDensity, data: dict[str, Any]) -> np.ndarray:
    """The data block (:func:`densities.pack`) of the program's Stan ``data``."""
    from shrinksim.engines import densities

    a, b, *c = (np.asarray(data[column], float) for column in density.columns)

    def prior(name: str) -> tuple[int, list[float]] | None:
        if name not in density.parameters:
            return None
        return data[f"{name}_prior_family"], list(data[f"{name}_prior_args"])

    return densities.pack(
        getattr(densities, density.likelihood),
        a,
        b,
        (data["mu_prior_family"], list(data["mu_prior_args"])),
        prior("tau"),
        prior("sigma"),
        *c,
    )


def columns(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The data block's columns a, b and c (empty where there is no third column)."""
    from shrinksim.engines import densities

    groups = int(block[0])
    start = densities.HEADER
    return tuple(block[start + k * groups : start + (k + 1) * groups] for k in range(3))


def marginal_theta(params: dict[str, np.ndarray], block: np.ndarray, seed: int) -> np.ndarray:
    """theta (chains, draws, G) drawn from its exact conditional normal given each draw of
    (mu, tau), as the marginalised program's generated quantities do, with random numbers
    from ``seed`` (so a fit is reproducible)."""
    a, b, _ = columns(block)
    if "sigma" in params:  # gaussian: the mean of n_g = b outcomes, variance sigma^2 / n_g
        estimate, var = a, params["sigma"][..., None] ** 2 / b
    else:  # an estimate a with known se b
        estimate, var = a, b**2
    mu, tau2 = params["mu"][..., None], params["tau"][..., None] ** 2
    weight = var / (var + tau2)  # B_g, the shrinkage of group g
    normal = np.random.default_rng([seed, 1]).standard_normal(weight.shape)
    return weight * mu + (1 - weight) * estimate + np.sqrt(var * tau2 / (var + tau2)) * normal


def log_lik(
    density: ProgramDensity, params: dict[str, np.ndarray], block: np.ndarray
) -> np.ndarray:
    """The Stan programs' generated quantity ``log_lik`` (chains, draws, G): each group's
    normalised log-likelihood at its theta, from the draws."""
    from scipy.special import gammaln

    a, b, c = columns(block)
    groups = len(a)
    if density.structure == "partial":
        theta = params["mu"][..., None] + params["tau"][..., None] * params["z"]
    elif "theta" in params:  # no pooling, the marginalised programs
        theta = params["theta"]
    else:
        theta = np.repeat(params["mu"][..., None], groups, axis=-1)
    if density.likelihood == "BINOMIAL":  # y = a of n = b
        return (
            gammaln(b + 1)
            - gammaln(a + 1)
            - gammaln(b - a + 1)
            + a * theta
            - b * np.logaddexp(0, theta)
        )
    if density.likelihood == "POISSON":  # y = a in exposure b
        return a * (np.log(b) + theta) - b * np.exp(theta) - gammaln(a + 1)
    if density.likelihood == "NORMAL":  # gaussian_log_lik: mean a, n = b, sd c; sigma
        sigma = params["sigma"][..., None]
        squares = (b - 1) * c**2 + b * (a - theta) ** 2
        return -0.5 * np.log(2 * np.pi) * b - b * np.log(sigma) - squares / (2 * sigma**2)
    return (
        -0.5 * ((a - theta) / b) ** 2 - np.log(b) - 0.5 * np.log(2 * np.pi)
    )  # a ~ normal(theta, b)


NUTPIE_STATS = {
    "divergent__": "diverging",
    "treedepth__": "depth",
    "energy__": "energy",
    "n_leapfrog__": "n_steps",
}
"""Stan's sampler variables and nutpie's names of them."""
