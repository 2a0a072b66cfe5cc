"""Study configuration: validation, priors as Stan data, the grid, result paths and seeds.

A study is a grid of *fit cells*. Each fit cell is a *data cell* (outcomes per group ``n``,
number of groups, true spread ``tau`` or ``p_sd``) plus a prior on tau and a model. Data
depend on the data cell and replicate only, so every prior and model sees the same data sets.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

MODELS = ("partial", "none", "complete")
"""partial pooling (hierarchical), no pooling (independent groups), complete pooling."""

STAN_PROGRAMS = {"partial": "partial_pooling", "none": "no_pooling", "complete": "complete_pooling"}
"""Stan program (file stem in ``stan/``) that fits each model."""

PRIOR_FAMILIES = {"student_t": (1, 3), "normal": (2, 2), "cauchy": (3, 2), "exponential": (4, 1)}
"""Prior family name -> (family code in ``stan/prior.stanfunctions``, number of arguments)."""

SPREAD_AXES = {"logit_normal": "tau", "probability_normal": "p_sd"}
"""The grid axis that holds the true between-group spread, for each data generator."""

NO_PRIOR = "none"
"""Prior label of models without a between-group sd (no pooling, complete pooling)."""

LARGE_GRID = 5000
"""Studies with more fits than this need ``confirm_large_grid: true``."""


class ConfigError(ValueError):
    """A configuration problem; the message has one line per problem, each naming its key."""


@dataclass(frozen=True)
class Prior:
    """A prior distribution: family name and its arguments as written in the config."""

    family: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.family}({', '.join(f'{a:g}' for a in self.args)})"

    def stan_data(self, prefix: str) -> dict[str, Any]:
        """Encode as Stan data ``{prefix}_family`` (int) and ``{prefix}_args`` (vector[3])."""
        code, _ = PRIOR_FAMILIES[self.family]
        if self.family == "student_t":
            args = list(self.args)
        elif self.family == "exponential":
            args = [0.0, 0.0, self.args[0]]
        else:
            args = [0.0, *self.args]
        return {f"{prefix}_family": code, f"{prefix}_args": [float(a) for a in args]}


_PRIOR_RE = re.compile(r"^\s*([a-z_]+)\s*\(([^()]*)\)\s*$")


def parse_prior(text: str, where: str) -> Prior:
    """Parse ``family(arg, ...)``; ``where`` names the config key in error messages."""
    allowed = ", ".join(f"{f}({n} args)" for f, (_, n) in PRIOR_FAMILIES.items())
    match = _PRIOR_RE.match(str(text))
    if not match:
        raise ConfigError(f"{where}: cannot read prior {text!r}; write e.g. student_t(3, 0, 2.5)")
    family = match.group(1)
    if family not in PRIOR_FAMILIES:
        raise ConfigError(f"{where}: unknown prior family {family!r}; allowed: {allowed}")
    try:
        args = tuple(float(a) for a in match.group(2).split(","))
    except ValueError:
        raise ConfigError(f"{where}: prior arguments must be numbers, got {text!r}") from None
    if len(args) != PRIOR_FAMILIES[family][1]:
        raise ConfigError(f"{where}: {family} takes {PRIOR_FAMILIES[family][1]} arguments")
    if not all(math.isfinite(a) for a in args):
        raise ConfigError(f"{where}: prior arguments must be finite, got {text!r}")
    if args[-1] <= 0 or (family == "student_t" and args[0] <= 0):
        what = "rate" if family == "exponential" else "scale and degrees of freedom"
        raise ConfigError(f"{where}: {what} must be > 0, got {text!r}")
    return Prior(family, args)


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class DataCell:
    """Where the data come from: outcomes per group, groups, and the true spread."""

    n: int
    groups: int
    spread_axis: str  # "tau" (logit sd) or "p_sd" (probability sd)
    spread: float

    @property
    def path(self) -> str:
        """Readable path segment, e.g. ``n~35/groups~100/tau~0.25``."""
        return f"n~{self.n}/groups~{self.groups}/{self.spread_axis}~{_fmt(self.spread)}"

    @classmethod
    def from_path(cls, path: str) -> DataCell:
        """Inverse of :attr:`path`."""
        parts = dict(p.split("~", 1) for p in path.strip("/").split("/"))
        axis = "tau" if "tau" in parts else "p_sd"
        return cls(int(parts["n"]), int(parts["groups"]), axis, float(parts[axis]))


@dataclass(frozen=True)
class FitCell:
    """A data cell fitted with one model under one prior on tau."""

    data: DataCell
    prior: str
    model: str

    @property
    def path(self) -> str:
        """Readable path segment, e.g. ``n~35/groups~100/tau~0.25/prior~weak/model~partial``."""
        return f"{self.data.path}/prior~{self.prior}/model~{self.model}"

    @classmethod
    def from_path(cls, path: str) -> FitCell:
        """Inverse of :attr:`path`."""
        head, prior, model = path.strip("/").rsplit("/", 2)
        return cls(DataCell.from_path(head), prior.split("~", 1)[1], model.split("~", 1)[1])


def data_cells(config: Mapping[str, Any]) -> list[DataCell]:
    """Every data cell of the grid, in grid order."""
    grid = config["grid"]
    axis = SPREAD_AXES[config["simulation"]["generator"]]
    return [
        DataCell(int(n), int(g), axis, float(s))
        for n in grid["n"]
        for g in grid["groups"]
        for s in grid[axis]
    ]


def model_fits(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (prior, model) fits of every data cell: partial pooling once per prior, the
    baselines once (prior ``none``)."""
    fits = []
    for model in config["grid"]["model"]:
        priors = config["grid"]["prior"] if model == "partial" else [NO_PRIOR]
        fits.extend((prior, model) for prior in priors)
    return fits


def fit_cells(config: Mapping[str, Any]) -> list[FitCell]:
    """Every fit cell: each data cell with each of :func:`model_fits`."""
    return [FitCell(data, *fit) for data in data_cells(config) for fit in model_fits(config)]


def batches(config: Mapping[str, Any]) -> list[list[int]]:
    """Replicate indices split into fit jobs of at most ``batch_size`` replicates."""
    reps, size = int(config["replicates"]), int(config["batch_size"])
    return [list(range(start, min(start + size, reps))) for start in range(0, reps, size)]


def seed_sequence(seed: int, key: str, replicate: int) -> np.random.SeedSequence:
    """Seed for (``key``, replicate): independent of job order, batch size and executor."""
    words = np.frombuffer(hashlib.sha256(key.encode()).digest()[:16], dtype=np.uint32)
    return np.random.SeedSequence(seed, spawn_key=(*map(int, words), replicate))


def stan_seed(seed: int, key: str, replicate: int) -> int:
    """A Stan ``seed`` (0 <= s < 2**31) for (``key``, replicate)."""
    return int(seed_sequence(seed, "stan:" + key, replicate).generate_state(1)[0] % 2**31)


def n_sd(config: Mapping[str, Any], n: int) -> float:
    """Standard deviation of outcomes per group: absolute, or ``"15%"`` of ``n``."""
    value = config["simulation"]["n_sd"]
    if isinstance(value, str):
        return float(value.rstrip("%")) / 100 * n
    return float(value)


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` over ``base``, as Snakemake merges ``--configfile`` files."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return loaded


def _key(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_problem(error: Any) -> str:
    """One line for a jsonschema error: the key, what is wrong, what is allowed."""
    where = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        lines = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(
                f"{_key([*error.absolute_path, key])}: unknown key{hint}; allowed: {allowed}"
            )
        return "\n".join(lines)
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "type":
        return f"{where}: expected {error.validator_value}, got {error.instance!r}"
    if error.validator == "uniqueItems":
        dupes = sorted({repr(v) for v in error.instance if error.instance.count(v) > 1})
        return f"{where}: duplicate values {', '.join(dupes)}"
    if error.validator == "minItems":
        return f"{where}: must not be empty"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": ">=",
            "exclusiveMinimum": ">",
            "maximum": "<=",
            "exclusiveMaximum": "<",
        }[error.validator]
        return f"{where}: {error.instance!r} must be {relation} {error.validator_value}"
    return f"{where}: {error.message}"


def problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every problem of ``config``: JSON-schema violations, then semantic checks."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    found = [
        _schema_problem(e) for e in sorted(validator.iter_errors(config), key=lambda e: e.path)
    ]
    if found:
        return found
    grid, data = config["grid"], config["simulation"]
    axis = SPREAD_AXES[data["generator"]]
    other = next(a for a in SPREAD_AXES.values() if a != axis)
    if grid.get(axis) is None:
        found.append(f"grid.{axis}: required by simulation.generator {data['generator']!r}")
    if grid.get(other) is not None:
        found.append(
            f"grid.{other}: not used by simulation.generator {data['generator']!r}; "
            f"use grid.{axis} (set {other}: null when merging over config.yaml)"
        )
    for i, name in enumerate(grid["prior"]):
        if name not in config["priors"]:
            close = difflib.get_close_matches(name, list(config["priors"]), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(
                f"grid.prior[{i}]: unknown prior {name!r}{hint}; "
                f"defined in priors: {sorted(config['priors'])}"
            )
    for name, text in config["priors"].items():
        try:
            parse_prior(text, f"priors.{name}")
        except ConfigError as err:
            found.append(str(err))
    try:
        parse_prior(config["intercept_prior"], "intercept_prior")
    except ConfigError as err:
        found.append(str(err))
    from shrinksim.sbc import problems as sbc_problems  # sbc imports this module

    found.extend(sbc_problems(config))
    if not found:
        total = len(fit_cells(config)) * int(config["replicates"])
        if total > LARGE_GRID and not config.get("confirm_large_grid", False):
            found.append(
                f"grid: {total} fits (more than {LARGE_GRID}); "
                "set confirm_large_grid: true if you mean it"
            )
    return found


def check(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` listing every problem of ``config`` (one per line)."""
    found = problems(config, schema)
    if found:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(found))
