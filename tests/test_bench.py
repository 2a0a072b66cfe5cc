"""The benchmark's pure helpers (not its timings)."""

from __future__ import annotations

import numpy as np

from shrinksim import bench


def test_forum_config_is_the_forum_preset():
    config = bench.forum_config()
    assert config["sampler"]["warmup"] == config["sampler"]["draws"] == 1000
    assert config["simulation"]["control"]["n"] == 1500 and config["seed"]


def test_agreement_is_in_mcse_units():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 1000)), rng.standard_normal((4, 1000))
    assert bench.agreement(a, b) < 4
    # a shift of 0.2 sd with MCSE ~ 1/sqrt(4000) per fit is ~9 joint MCSE
    assert 6 < bench.agreement(a, b + 0.2) < 12


def test_utilisation_overhead_and_verdict():
    assert bench.utilisation(140.0, 100.0, 2) == 0.7
    assert abs(bench.overhead([10.0, 10.0], [9.0, 9.0]) - 0.1) < 1e-12
    assert bench.verdict(0.7, 0.7) == "met" and bench.verdict(0.69, 0.7) == "MISSED"
    assert bench.verdict(4.0, 5.0, higher_is_better=False) == "met"


def test_tree_bytes_counts_files_under_paths(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/x").write_bytes(b"12345")
    (tmp_path / "a/y").write_bytes(b"123")
    assert bench.tree_bytes([tmp_path / "a", tmp_path / "missing"]) == 8


def test_memory_job_is_a_valid_fit_command(tmp_path):
    from shrinksim.cli import parser

    cmd = bench.fit_command({"seed": 1}, tmp_path / "d", tmp_path / "c", tmp_path, tmp_path)
    args = parser().parse_args(cmd[3:])  # after "python -m shrinksim"
    assert args.command == "fit" and args.draws_out[0].endswith("draws.parquet")
    assert len(args.cells) == len(args.groups_out) == len(args.fits_out) == 1
