"""Shared fixtures and helpers of every test group.

* ``tests/unit/``: no Stan, no Snakemake (``make test-fast`` runs ``pytest -m "not slow"``);
* ``tests/stan/``: real Stan fits;
* ``tests/workflow/``: snakemake runs on the tiny configs in scratch checkouts.

Every test under ``stan/`` and ``workflow/`` is marked ``slow`` here, so a new file there
cannot forget it. Helpers are imported as ``from conftest import ...``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from shrinksim import design, tables
from shrinksim.families import OUTCOME_FAMILIES
from shrinksim.settings import load_yaml
from shrinksim.study.outcome import StudyOutcome

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
CACHE = REPO / ".cache"  # compiled PyStan models, shared with `make run`
CONFIGS = TESTS / "configs"
TINY = CONFIGS / "tiny.yaml"
SLOW_GROUPS = ("stan", "workflow")
"""Folders of ``tests/`` whose every test is slow."""
PROGRAM_DIRS = (REPO / "stan", TESTS / "stan" / "programs")
"""Every Stan program the slow tests compile (with PyStan, into :data:`CACHE`) is here."""
PRECOMPILE = "SHRINKSIM_TEST_PRECOMPILE"
"""Environment variable: ``1``: compile the programs of :data:`PROGRAM_DIRS` missing from
the cache before the first test; ``0``: never (each is compiled when a test first needs
it); unset or ``auto``: when tests of two or more files of ``tests/stan/`` are selected."""


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path)
        if path.is_relative_to(TESTS) and path.relative_to(TESTS).parts[0] in SLOW_GROUPS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    return load_yaml(REPO / "workflow/schemas/config.schema.yaml")


@pytest.fixture()
def config() -> dict[str, Any]:
    """A fresh copy of the default config.yaml."""
    return load_yaml(REPO / "config.yaml")


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def uncompiled_programs() -> list[Path]:
    """The programs of :data:`PROGRAM_DIRS` that PyStan's cache :data:`CACHE` holds no build
    of (no extension module in the model directory httpstan gives their code), largest
    first. A truncated build passes for one here; ``compile`` replaces it when loading fails.
    """
    from shrinksim.engines import program_source
    from shrinksim.engines.fastpath import module_files
    from shrinksim.engines.pystan import model_directory

    programs = sorted(path for folder in PROGRAM_DIRS for path in folder.glob("*.stan"))
    missing = [p for p in programs if not module_files(model_directory(CACHE, program_source(p)))]
    return sorted(missing, key=lambda p: len(program_source(p)), reverse=True)


def compile_in_parallel(programs: Sequence[Path], workers: int, out: Path) -> dict[str, str]:
    """Compile ``programs`` with PyStan into :data:`CACHE`, ``workers`` at a time, each by the
    workflow's own ``python -m shrinksim compile`` (as its ``compile_model`` jobs, which also
    run side by side: each build has its own model directory and object files). Returns
    the failed programs' output tails, by program."""

    def compile_(path: Path) -> tuple[str, str]:
        command = [sys.executable, "-m", "shrinksim", "compile", "--stan-file", str(path)]
        command += ["--engine", "pystan", "--cache-dir", str(CACHE)]
        command += ["--out", str(out / f"{path.stem}.json")]
        # cwd: httpstan's object files go to ./build/, as when the tests compile
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        return path.stem, tail if done.returncode else ""

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {name: tail for name, tail in pool.map(compile_, programs) if tail}


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first test (outside every test's timeout), when tests of two or more files
    of ``tests/stan/`` are selected (``make test``; see :data:`PRECOMPILE`): compile every
    Stan program of :data:`PROGRAM_DIRS` that the cache lacks, one per CPU at a time, not
    one after another as tests first need them (g++ is single-threaded; a fresh clone
    compiles ~17 programs of 30-90 s each). The tests compile their programs as before,
    now hitting the cache. A program that fails to compile here is only reported: its test
    fails with the error. Then pytest runs the tests as usual."""
    from shrinksim.engines.pystan import pystan_installed

    config = session.config
    if config.option.collectonly or (
        session.testsfailed and not config.option.continue_on_collection_errors
    ):
        return  # nothing to run, or pytest stops at the collection errors
    mode = os.environ.get(PRECOMPILE, "auto")
    stan = TESTS / "stan"
    files = {item.path for item in session.items if item.path.is_relative_to(stan)}
    if mode == "0" or (mode != "1" and len(files) < 2) or not pystan_installed():
        return
    programs = uncompiled_programs()
    if not programs:
        return
    workers = min(cores(), len(programs))
    say = config.pluginmanager.getplugin("terminalreporter").write_line
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        say(f"compiling {len(programs)} Stan programs missing from {CACHE}, {workers} at a time")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shrinksim-precompile-") as out:
        failed = compile_in_parallel(programs, workers, Path(out))
    with capture.global_and_fixture_disabled():
        say(f"compiled {len(programs) - len(failed)} in {time.perf_counter() - start:.0f} s")
        for name, tail in failed.items():
            say(f"{name}: compiling failed (its test will say why):\n{tail}")


@pytest.fixture(scope="session")
def compile_program(tmp_path_factory):
    """compile_program(program, engine="pystan") -> CompiledModel, compiled once."""
    from shrinksim.engines import CompiledModel, make_engine, program_source
    from shrinksim.fitting import example_data

    done: dict[tuple[str, str], CompiledModel] = {}
    model_dir = tmp_path_factory.mktemp("models")

    def compile_(program: str, engine: str = "pystan") -> CompiledModel:
        if (program, engine) not in done:
            with make_engine(engine, cache_dir=CACHE, model_dir=model_dir) as eng:
                code = program_source(REPO / "stan" / f"{program}.stan")
                done[program, engine] = eng.compile(code, program, example_data(program))
        return done[program, engine]

    return compile_


# --- small data sets of every outcome family (stan and unit tests) ------------------------

GAUSSIAN_OUTCOMES = [
    [0.84],
    [1.0, 0.74],
    [1.01, -0.27, 0.3],
    [-0.83, 0.25, -0.31, -0.64, -1.13],
    [0.5, 0.76, 0.48, 2.05],
    [1.53, -2.19, -1.37, 0.35, 0.1, 0.74, 0.74, 2.64],
    [-1.08, -0.35],
    [2.63, 1.24, 1.25, 0.08, -1.06, 0.76],
]
"""Raw outcomes of 8 Gaussian groups of 1-8 (theta_g ~ Normal(0.3, 0.5), sigma = 1)."""


def gaussian_groups(outcomes: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Groups (``group``, ``n``, ``mean``, ``sd``) of raw outcomes; sd NaN where n = 1."""
    return pd.DataFrame(
        {
            "group": range(1, len(outcomes) + 1),
            "n": [len(y) for y in outcomes],
            "mean": [float(np.mean(y)) for y in outcomes],
            "sd": [float(np.std(y, ddof=1)) if len(y) > 1 else np.nan for y in outcomes],
        }
    )


FAMILY_GROUPS = {
    "poisson": pd.DataFrame(
        {
            "group": range(1, 9),
            "y": [0, 3, 7, 2, 12, 5, 1, 9],
            "exposure": [2.5, 4.0, 6.2, 3.0, 10.0, 5.5, 1.2, 8.0],
        }
    ),
    "gaussian": gaussian_groups(GAUSSIAN_OUTCOMES),
    "gaussian_se": pd.DataFrame(  # the eight schools (Rubin 1981)
        {
            "group": range(1, 9),
            "estimate": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
            "se": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
        }
    ),
}
"""A small data set of each non-binomial family, 8 groups each."""


# --- Stan against an exact reference (stan tests) ------------------------------------------


def z_scores(draws: np.ndarray, ref: pd.DataFrame) -> pd.DataFrame:
    """(Stan - reference) / MCSE for the mean and each quantile, one row per parameter.

    ``draws`` (chains, draws, quantities) in the order of ``ref``'s rows (an exact reference's
    output: ``mean`` and ``q5``, ``q25``, ...). Mean: MCSE = sd / sqrt(ESS); quantile q_p:
    the share of draws below it against p, MCSE = sqrt(p (1 - p) / ESS of I(draw <= q_p)).
    """
    from shrinksim import diagnostics
    from shrinksim.reference_grid import QUANTILE_PROBS

    flat = draws.reshape(-1, draws.shape[-1])
    scores = {"mean": (flat.mean(axis=0) - ref["mean"].to_numpy()) / diagnostics.mcse_mean(draws)}
    for p in QUANTILE_PROBS:
        q = ref[f"q{100 * p:g}"].to_numpy()
        below = (draws <= q).astype(float)
        share = below.reshape(-1, below.shape[-1]).mean(axis=0)
        mcse = np.sqrt(p * (1 - p) / diagnostics.ess_bulk(below))
        scores[f"q{100 * p:g}"] = (share - p) / mcse
    return pd.DataFrame(scores, index=ref.index)


# --- the nutpie engine's numba log densities (unit and stan tests) -------------------------


def call_density(
    callback: Any, x: Sequence[float], block: np.ndarray
) -> tuple[int, float, np.ndarray]:
    """Call a log-density C callback of :mod:`shrinksim.engines.densities` (``int64(dim, x*,
    grad*, logp*, data*)``) through its ``ctypes`` wrapper, as nutpie calls it: the return
    code, the log density and the gradient at ``x`` on the data ``block``."""
    import ctypes

    x = np.ascontiguousarray(x, dtype=np.float64)
    grad, logp = np.full(x.size, np.nan), np.full(1, np.nan)
    doubles = ctypes.POINTER(ctypes.c_double)
    code = callback.ctypes(
        x.size,
        x.ctypes.data_as(doubles),
        grad.ctypes.data_as(doubles),
        logp.ctypes.data_as(doubles),
        block.ctypes.data_as(ctypes.c_void_p),
    )
    return int(code), float(logp[0]), grad


def call_expand(x: Sequence[float], block: np.ndarray) -> tuple[int, np.ndarray]:
    """Call :func:`shrinksim.engines.densities.expand` (``int64(dim, expanded, x*, out*,
    data*)``) as nutpie does: the return code and the draw as Stan writes it."""
    import ctypes

    from shrinksim.engines import densities

    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.full(x.size, np.nan)
    doubles = ctypes.POINTER(ctypes.c_double)
    code = densities.expand.ctypes(
        x.size,
        x.size,
        x.ctypes.data_as(doubles),
        out.ctypes.data_as(doubles),
        block.ctypes.data_as(ctypes.c_void_p),
    )
    return int(code), out


# --- a synthetic fit job with hand-computable measures (unit tests) ------------------------

BINOMIAL_STUDY = StudyOutcome(OUTCOME_FAMILIES["binomial"], p0=0.4)
"""The binomial study of the synthetic fit jobs (p0 = 0.4, as config.yaml's)."""

SYNTHETIC = design.DataCell(20, 3, "tau", 0.5)
"""The data cell of :func:`synthetic_fit_job`."""

SYNTHETIC_SHRINKAGE = [0.3, 0.5, 0.7, 0.5]
"""Shrinkage factor of the synthetic fits of replicates 0..3 (replicate 4 fails); the median
ratio is each minus 0.1."""

_OBSERVED = np.array([-4.0, 0.0, 4.0])  # observed log-odds of the 3 treatment groups
_MU = -8.0  # posterior mean of mu of every fit


def _fill(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """``frame`` with every other column of ``schema``: NaN, null, False or ""."""
    defaults = {
        field.name: (
            np.nan
            if pa.types.is_floating(field.type)
            else False
            if pa.types.is_boolean(field.type)
            else ""
            if pa.types.is_string(field.type)
            else pd.NA
        )
        for field in schema
        if field.name not in frame.columns
    }
    return frame.assign(**defaults)[schema.names]


def synthetic_fit_job(prior: str = "weak", model: str = "partial") -> tuple[pd.DataFrame, ...]:
    """Groups and fits tables (schemas GROUPS and FITS) of a fit job of five replicates of
    one cell (:data:`SYNTHETIC`): four fits with estimates, one sampler error; hand-computed
    in ``unit/test_measures.py``.

    * Fits: status divergent, ok, ok, ok, error; tau means 0.4, 0.6, 0.5, 0.7 with intervals
      whose misses are counted there; R-hat 1.2 in replicate 1, tail ESS 15 in replicate 2.
    * Groups: three treatment groups observed at log-odds -4, 0, 4 and a far-off control
      group (it must count nowhere). Posterior means lie on the line a + (1 - b) x with b
      of :data:`SYNTHETIC_SHRINKAGE` (so 1 - slope = b), mu = -8 and a = -8 (b - 0.1): the
      ratio (x - estimate) / (x - mu) rises with x, so the middle group's ratio
      -a / -mu = b - 0.1 is the median one. True log-odds: the estimates themselves (even
      replicates) or the estimates minus (-0.5, 0.5, 0.5) (odd ones); the ranks always agree.
      The 50 and 90 % intervals are estimate +- h, the 95 % ones +- 2 h, with h = 0.25 in
      replicate 0 (its 50 and 90 % intervals miss under a shifted truth) and 1 elsewhere.
    """
    cell = {
        "n_per_group": SYNTHETIC.n,
        "groups": SYNTHETIC.groups,
        "spread_axis": SYNTHETIC.spread_axis,
        "spread": SYNTHETIC.spread,
        "prior": prior,
        "model": model,
    }
    fits = pd.DataFrame(
        {
            **cell,
            "replicate": range(5),
            "status": ["divergent", "ok", "ok", "ok", "error"],
            "message": ["", "", "", "", "Initialization failed"],
            "attempts": [2, 1, 1, 1, 2],
            "adapt_delta": 0.9,
            "seed": range(100, 105),
            "engine": "pystan",
            "mu_mean": [_MU] * 4 + [np.nan],
            "tau_mean": [0.4, 0.6, 0.5, 0.7, np.nan],
            # 95 % intervals: the last one misses 0.5; 90 %: two miss; 50 %: three miss
            "tau_q025": [0.2, 0.3, 0.3, 0.55, np.nan],
            "tau_q975": [0.8, 0.9, 0.7, 0.95, np.nan],
            "tau_q05": [0.25, 0.51, 0.35, 0.6, np.nan],
            "tau_q95": [0.75, 0.85, 0.65, 0.9, np.nan],
            "tau_q25": [0.3, 0.55, 0.45, 0.65, np.nan],
            "tau_q75": [0.45, 0.65, 0.55, 0.75, np.nan],
            "divergences": pd.array([2, 0, 0, 0, None], dtype="Int32"),
            "treedepth_hits": pd.array([0, 0, 0, 0, None], dtype="Int32"),
            "rhat_max": [1.0, 1.2, 1.0, 1.0, np.nan],
            "ess_bulk_min": [900.0, 900, 900, 900, np.nan],
            "ess_tail_min": [900.0, 900, 15, 900, np.nan],  # 2 chains: low below 20
            "sampling_seconds": [1.0, 1.5, 2.0, 2.5, np.nan],
        }
    )
    rows = []
    for replicate, b in enumerate(SYNTHETIC_SHRINKAGE):
        estimate = _MU * (b - 0.1) + (1 - b) * _OBSERVED
        error = np.array([-0.5, 0.5, 0.5]) if replicate % 2 else np.zeros(3)
        half = 0.25 if replicate == 0 else 1.0
        group = pd.DataFrame(
            {
                "replicate": replicate,
                "group": [1, 2, 3],
                "is_control": False,
                "obs_logit": _OBSERVED,
                "true_logit": estimate - error,
                "theta_mean": estimate,
                "theta_sd": half,
                "theta_median": estimate,
                "theta_q25": estimate - half,
                "theta_q05": estimate - half,
                "theta_q75": estimate + half,
                "theta_q95": estimate + half,
                "theta_q025": estimate - 2 * half,
                "theta_q975": estimate + 2 * half,
            }
        )
        control = group.iloc[[2]].assign(group=0, is_control=True, obs_logit=-1.0, theta_mean=9.0)
        rows += [control, group]
    groups = pd.concat(rows, ignore_index=True).assign(**cell)
    groups["n"] = np.where(groups["is_control"], 200, SYNTHETIC.n)
    groups["y"] = np.round(groups["n"] / (1 + np.exp(-groups["obs_logit"]))).astype(int)
    expit = {name: 1 / (1 + np.exp(-groups[name])) for name in ("true_logit", "obs_logit")}
    groups = groups.assign(true_p=expit["true_logit"], obs_p=expit["obs_logit"])
    for name in tables.GROUPS.names:
        if name.startswith("theta_") and name != "theta_sd":
            groups["p_" + name.removeprefix("theta_")] = 1 / (1 + np.exp(-groups[name]))
    return _fill(groups, tables.GROUPS), _fill(fits, tables.FITS)


def write_fit_job(
    root: Path,
    groups: pd.DataFrame,
    fits: pd.DataFrame,
    batch: int = 0,
    draws: pd.DataFrame | None = None,
) -> tuple[str, str]:
    """Write ``groups``, ``fits`` and ``draws`` (default: none) where the fit job of ``batch``
    of their data cell writes them under ``root`` (a results folder); return the groups and
    fits paths (a job of :func:`shrinksim.study.summarize.reduce_jobs`)."""
    first = fits.iloc[0]
    cell = design.DataCell(
        int(first["n_per_group"]), int(first["groups"]), first["spread_axis"], first["spread"]
    )
    frames = {
        "groups": (groups, tables.GROUPS),
        "fits": (fits, tables.FITS),
        "draws": (tables.DRAWS.empty_table().to_pandas() if draws is None else draws, tables.DRAWS),
    }
    paths = {}
    for table, (frame, schema) in frames.items():
        paths[table] = design.result_path(
            design.FIT_TABLE, root, table=table, datacell=cell.path, batch=batch
        )
        tables.write_table(frame, paths[table], schema)
    return paths["groups"], paths["fits"]


# --- snakemake in scratch checkouts (workflow tests) ---------------------------------------

BIN = Path(sys.executable).parent
"""The venv's scripts (snakemake, python)."""

LINKED = ("Snakefile", "config.yaml", "workflow", "stan", "profiles")
"""What a scratch checkout links to: the workflow's sources, not its results."""


def checkout(workdir: Path) -> Path:
    """A scratch checkout in ``workdir``: links to the workflow sources, its own results/."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (workdir / name).symlink_to(REPO / name)
    return workdir


def environment(tmpdir: Path | None = None) -> dict[str, str]:
    """The environment of a snakemake run: the venv first on PATH (its jobs call ``python -m
    shrinksim``), and ``TMPDIR`` if given."""
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return env | {"TMPDIR": str(tmpdir)} if tmpdir else env


def snakemake_command(
    *args: str, configs: Sequence[Path] = (TINY,), config: Sequence[str] = ()
) -> list[str]:
    """The venv's snakemake: ``args`` (targets and options), the ``configs`` files, then
    ``--config cache_dir=<the shared cache>`` and the ``config`` overrides."""
    return [
        str(BIN / "snakemake"),
        *args,
        "--configfile",
        *map(str, configs),
        "--config",
        f"cache_dir={CACHE}",
        *config,
    ]


def snakemake(
    workdir: Path,
    *args: str,
    configs: Sequence[Path] = (TINY,),
    config: Sequence[str] = (),
    tmpdir: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` (2 cores unless ``args`` say otherwise), output captured."""
    cores = () if "--cores" in args else ("--cores", "2")
    return subprocess.run(
        snakemake_command(*args, *cores, configs=configs, config=config),
        cwd=workdir,
        env=environment(tmpdir),
        capture_output=True,
        text=True,
        check=False,
    )


def lint(*config: str) -> str:
    """What ``snakemake --lint`` says about the repository's workflow (with ``config``)."""
    extra = ["--config", *config] if config else []
    done = subprocess.run(
        [str(BIN / "snakemake"), "--lint", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the columns that measure time (the only numbers allowed to differ
    between runs)."""
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_seconds")])


def read_dataset(folder: Path) -> pd.DataFrame:
    """A Hive-partitioned dataset (e.g. ``results/fits``) with its partition columns, rows in
    file order (sorted paths)."""
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas()
