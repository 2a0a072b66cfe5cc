"""The engines' parts that need no Stan: socket reader, parsers, compiled-model files."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import replace

import numpy as np
import pytest

from conftest import REPO
from shrinksim.engines import (
    CompiledModel,
    EngineError,
    PyStanEngine,
    SamplerSettings,
    open_models,
    program_source,
    resolve_engine,
    stream,
)

PYSTAN_MODEL = CompiledModel(
    engine="pystan",
    program="partial_pooling",
    location="/cache/httpstan/4.13.0/models/abc",
    details={"model_name": "models/abc", "python": "/usr/bin/python3"},
    code="parameters { real mu; }\n",
)


def test_socket_reader_keeps_every_stream_but_the_diagnostic_one(tmp_path):
    """Streams are read whole, whatever their size (a 6 MB one exceeds the socket buffer, so
    the writer blocks until the reader drains it), from connections made before and after the
    reader starts polling; the diagnostic stream is dropped."""
    path = str(tmp_path / "chain.sock")
    logger = b'{"version":1,"topic":"logger","values":["info:x"]}\n' * 100
    sample = b'{"version":1,"topic":"sample","values":{"lp__":-1.5}}\n' * 120_000
    diagnostic = b'{"version":1,"topic":"diagnostic","values":{"p_mu":0.1}}\n' * 50_000
    streams: list[bytes] = []
    done = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(4)
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first.connect(path)  # pending before the reader runs
        reader = threading.Thread(target=stream.receive, args=(server, done, streams))
        reader.start()
        first.sendall(logger)
        first.close()
        for payload in (sample, diagnostic):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
                client.sendall(payload)
        done.set()
        reader.join(timeout=30)
    assert not reader.is_alive()
    assert sorted(streams) == sorted([logger, sample])


def test_draws_are_parsed_exactly_with_nan_and_infinity():
    """simdjson parses ordinary draws; a stream holding NaN or Infinity falls back to json."""
    head = b'{"version":1,"topic":"sample","values":'
    rows = [{"lp__": -1.25, "mu": 0.1}, {"lp__": -2.0, "mu": 1 / 3}]
    text = b"".join(head + json.dumps(row).encode() + b"}\n" for row in rows)
    names, values = stream.parse_draws(b'{"version":1,"topic":"sample","values":["lp__"]}\n' + text)
    assert names == ["lp__", "mu"] and np.array_equal(values, [[-1.25, 0.1], [-2.0, 1 / 3]])
    names, values = stream.parse_draws(text + head + b'{"lp__": NaN, "mu": Infinity}}\n')
    assert values.shape == (3, 2) and np.isnan(values[2, 0]) and np.isinf(values[2, 1])
    names, values = stream.parse_draws(b"")
    assert names == [] and values.shape == (0, 0)


def test_logger_messages_drop_progress_reports():
    lines = ["info:Iteration: 1 / 100", "info:", "info: Elapsed Time: 0.1", "warn:bad", "info:x"]
    text = b"".join(
        json.dumps({"version": 1, "topic": "logger", "values": [line]}).encode() + b"\n"
        for line in lines
    )
    assert stream.logger_messages(text + b"not json\n") == ["warn:bad", "x"]


def test_program_source_expands_includes():
    code = program_source(REPO / "stan" / "partial_pooling.stan")
    included = (REPO / "stan" / "prior.stanfunctions").read_text().rstrip("\n")
    assert "#include" not in code and included in code and code.endswith("\n")


def test_compiled_model_round_trips_and_old_files_name_the_fix(tmp_path):
    path = tmp_path / "models" / "partial_pooling.json"
    PYSTAN_MODEL.write(path)
    assert CompiledModel.read(path) == PYSTAN_MODEL
    assert list(path.parent.iterdir()) == [path]  # written atomically, no temporary left
    old = {"engine": "pystan", "program": "p", "model_dir": "/x", "python": "py", "code": ""}
    path.write_text(json.dumps(old))
    with pytest.raises(EngineError, match="Delete results/models"):
        CompiledModel.read(path)


def test_open_models_gives_one_engine_for_models_of_one_engine(tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    PYSTAN_MODEL.write(paths[0])
    replace(PYSTAN_MODEL, program="complete_pooling").write(paths[1])
    engine, models = open_models(paths, cache_dir=tmp_path, threads=2)
    with engine:
        assert isinstance(engine, PyStanEngine) and engine.threads == 2
        assert models == {
            "partial_pooling": PYSTAN_MODEL,
            "complete_pooling": replace(PYSTAN_MODEL, program="complete_pooling"),
        }
    replace(PYSTAN_MODEL, engine="cmdstanpy").write(paths[1])
    with pytest.raises(EngineError, match="several engines"):
        open_models(paths, cache_dir=tmp_path)
    PYSTAN_MODEL.write(paths[1])
    with pytest.raises(EngineError, match="same program"):
        open_models(paths, cache_dir=tmp_path)


def test_engine_refuses_a_model_it_did_not_compile(tmp_path):
    settings = SamplerSettings(1, 10, 10, 0.8, 10)
    with PyStanEngine(tmp_path) as engine:
        with pytest.raises(EngineError, match="compiled by cmdstanpy"):
            engine.sample(replace(PYSTAN_MODEL, engine="cmdstanpy"), {}, settings, 1)
        with pytest.raises(EngineError, match="per interpreter"):
            engine.sample(PYSTAN_MODEL, {}, settings, 1)


def test_unknown_engine_is_an_engine_error():
    with pytest.raises(EngineError, match="unknown engine"):
        resolve_engine("stan2")


def test_cmdstanpy_without_cmdstan_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "missing"))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    with pytest.raises(EngineError, match="engine: pystan"):
        resolve_engine("cmdstanpy")
    assert resolve_engine("auto") == "pystan"


def test_a_missing_engine_names_the_extra_to_install(monkeypatch, tmp_path):
    from shrinksim.engines import pystan

    monkeypatch.setattr(pystan, "pystan_installed", lambda: False)
    monkeypatch.setattr("shrinksim.engines.pystan_installed", lambda: False)
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "missing"))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    for requested in ("pystan", "auto"):
        with pytest.raises(EngineError, match=r"pip install 'shrinksim\[pystan\]'"):
            resolve_engine(requested)
    with pytest.raises(EngineError, match=r"pip install 'shrinksim\[cmdstan\]'"):
        resolve_engine("cmdstanpy")
    with pytest.raises(EngineError, match=r"shrinksim\[pystan\]"):
        PyStanEngine(tmp_path)


def test_fast_path_is_off_for_an_untested_httpstan_or_when_switched_off(monkeypatch):
    """The check at import: the tested httpstan passes; another version, or
    SHRINKSIM_PYSTAN_FAST=0, turns the direct path off with the reason."""
    from shrinksim.engines import fastpath

    assert fastpath._problem() is None  # this machine's httpstan (constraints.txt) is tested
    monkeypatch.setattr(fastpath.importlib.metadata, "version", lambda name: "4.99.0")
    assert fastpath._problem() == "httpstan 4.99.0 is not a version it was tested with (4.13.*)"
    monkeypatch.setenv(fastpath.SWITCH, "0")
    assert fastpath._problem() == "SHRINKSIM_PYSTAN_FAST=0"


def test_a_compiled_module_without_the_pieces_is_sampled_through_pystan():
    from types import SimpleNamespace

    from shrinksim.engines import fastpath

    stub = SimpleNamespace(get_dims=None)
    assert fastpath.module_problem(stub) == (
        "the compiled model lacks hmc_nuts_diag_e_adapt_wrapper, constrained_param_names, "
        "get_param_names"
    )


def test_pystan_fit_layout_becomes_chains_draws_dims():
    """PyStan's ``fit[name]`` is (*dims, draws x chains) with chains varying fastest."""
    from shrinksim.engines.pystan import by_chain

    chains, draws = 3, 4
    ours = np.arange(chains * draws * 2 * 5, dtype=float).reshape(chains, draws, 2, 5)
    pystan_layout = np.moveaxis(ours, (0, 1), (-1, -2)).reshape(2, 5, -1)
    assert np.array_equal(by_chain(pystan_layout, [2, 5], draws, chains), ours)
    scalar = ours[..., 0, 0]
    assert np.array_equal(by_chain(scalar.T.reshape(1, -1), [], draws, chains), scalar)
    assert by_chain(np.empty((0, draws * chains)), [0], draws, chains).shape == (3, 4, 0)


def test_httpstan_cache_is_where_httpstan_puts_it(tmp_path, monkeypatch):
    """The model directory is httpstan's own answer (appdirs: $XDG_CACHE_HOME on Linux,
    ~/Library/Caches on macOS), asked with the cache folder set, which is then restored."""
    import os
    import sys
    from importlib.metadata import version

    from shrinksim.engines.pystan import model_directory

    monkeypatch.setenv("XDG_CACHE_HOME", "/elsewhere")
    found = model_directory(tmp_path, "parameters { real mu; }")
    expected = ("httpstan", version("httpstan"), "models")
    if sys.platform == "darwin":
        assert found.parts[-6:-1] == ("Library", "Caches", *expected)
    else:
        assert found.relative_to(tmp_path).parts[:-1] == expected
    assert os.environ["XDG_CACHE_HOME"] == "/elsewhere"
