"""Shared fixtures: the repository's config and schema, and compiled Stan programs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shrinksim.settings import load_yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"  # compiled PyStan models, shared with `make run`


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    return load_yaml(REPO / "workflow/schemas/config.schema.yaml")


@pytest.fixture()
def config() -> dict[str, Any]:
    """A fresh copy of the default config.yaml."""
    return load_yaml(REPO / "config.yaml")


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
