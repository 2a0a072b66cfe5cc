"""Settings: YAML loading and merging, and every problem of a configuration, worded by key.

:func:`check` is what the workflow runs before any job: JSON-schema violations first, each
as one line naming its key (``grid.n[1]: -5 must be >= 1``), then the checks the schema
cannot express (the spread axis of the generator, prior names and texts, the SBC section,
the size of the grid).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from shrinksim.design import SPREAD_AXES, fit_cells
from shrinksim.errors import ConfigError, did_you_mean
from shrinksim.priors import parse_prior
from shrinksim.sbc.design import problems as sbc_problems

__all__ = [
    "LARGE_GRID",
    "ConfigError",
    "check",
    "did_you_mean",
    "load_yaml",
    "merged",
    "problems",
    "schema_problem",
]

LARGE_GRID = 5000
"""Studies with more fits than this need ``confirm_large_grid: true``."""


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
    """A config key as written in messages: ``grid.n[1]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_RELATIONS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def schema_problem(error: Any) -> str:
    """The line(s) for a jsonschema error: the key, what is wrong, what is allowed."""
    where = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return "\n".join(
            f"{_key([*error.absolute_path, key])}: unknown key"
            f"{did_you_mean(key, allowed)}; allowed: {allowed}"
            for key in extra
        )
    if error.validator == "enum":
        allowed = error.validator_value
        hint = did_you_mean(str(error.instance), [str(value) for value in allowed])
        return f"{where}: {error.instance!r} is not one of {allowed}{hint}"
    if error.validator == "type":
        return f"{where}: expected {error.validator_value}, got {error.instance!r}"
    if error.validator == "uniqueItems":
        dupes = sorted({repr(v) for v in error.instance if error.instance.count(v) > 1})
        return f"{where}: duplicate values {', '.join(dupes)}"
    if error.validator == "minItems":
        return f"{where}: must not be empty"
    if error.validator in _RELATIONS:
        relation = _RELATIONS[error.validator]
        return f"{where}: {error.instance!r} must be {relation} {error.validator_value}"
    return f"{where}: {error.message}"


def _spread_problems(config: Mapping[str, Any]) -> list[str]:
    """The generator's spread axis is set and the other one is not."""
    grid, generator = config["grid"], config["simulation"]["generator"]
    axis = SPREAD_AXES[generator]
    other = next(a for a in SPREAD_AXES.values() if a != axis)
    found = []
    if grid.get(axis) is None:
        found.append(f"grid.{axis}: required by simulation.generator {generator!r}")
    if grid.get(other) is not None:
        found.append(
            f"grid.{other}: not used by simulation.generator {generator!r}; "
            f"use grid.{axis} (set {other}: null when merging over config.yaml)"
        )
    return found


def _prior_problems(config: Mapping[str, Any]) -> list[str]:
    """Every prior of the grid is defined, and every prior text can be read."""
    found = []
    for i, name in enumerate(config["grid"]["prior"]):
        if name not in config["priors"]:
            found.append(
                f"grid.prior[{i}]: unknown prior {name!r}{did_you_mean(name, config['priors'])}; "
                f"defined in priors: {sorted(config['priors'])}"
            )
    texts = [(f"priors.{name}", text) for name, text in config["priors"].items()]
    texts.append(("intercept_prior", config["intercept_prior"]))
    if config.get("sigma_prior"):
        texts.append(("sigma_prior", config["sigma_prior"]))
    for where, text in texts:
        try:
            parse_prior(text, where)
        except ConfigError as err:
            found.append(str(err))
    return found


def _family_problems(config: Mapping[str, Any]) -> list[str]:
    """The generator fits the family (``probability_normal`` draws probabilities: binomial
    only)."""
    found = []
    family = config.get("family") or "binomial"
    generator = config["simulation"]["generator"]
    if family != "binomial" and generator != "logit_normal":
        found.append(
            f"simulation.generator: {generator!r} draws probabilities (binomial only); "
            f"family {family!r} needs logit_normal (theta_g = mu + tau z_g)"
        )
    return found


def problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every problem of ``config``: JSON-schema violations, then semantic checks."""
    import jsonschema  # slow to import: only when a configuration is checked

    validator = jsonschema.Draft202012Validator(schema)
    found = [schema_problem(e) for e in sorted(validator.iter_errors(config), key=lambda e: e.path)]
    if found:
        return found
    found = [
        *_spread_problems(config),
        *_prior_problems(config),
        *sbc_problems(config),
        *_family_problems(config),
    ]
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
