"""The benchmark's pure helpers (not its timings) and the scale benchmark's synthesiser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from shrinksim import bench, tables
from shrinksim.bench import runs, scale, synth, workflow
from shrinksim.design import DataCell


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
    from shrinksim.cli.main import parser

    cell = "n_per_group=35/groups=100/p_sd=0.05"
    cmd = workflow.fit_command(
        {"seed": 1}, cell, tmp_path / "d", tmp_path / "c", tmp_path, tmp_path
    )
    args = parser().parse_args(cmd[3:])  # after "python -m shrinksim"
    assert args.command == "fit" and args.cell == cell
    assert args.draws_out.endswith("draws.parquet") and args.groups_out.endswith("groups.parquet")


def _template(schema: pa.Schema, fits: list[tuple[str, str]], replicates: list[int]) -> pa.Table:
    """A tiny fit-job table: two rows per (fit, replicate), cell n=35 tau=0.5."""
    rows = [
        (prior, model, replicate, row)
        for prior, model in fits
        for replicate in replicates
        for row in range(2)
    ]
    frame = pd.DataFrame(
        {
            name: (
                [0.5] * len(rows)
                if pa.types.is_floating(schema.field(name).type)
                else [""] * len(rows)
                if pa.types.is_string(schema.field(name).type)
                else [False] * len(rows)
                if pa.types.is_boolean(schema.field(name).type)
                else [0] * len(rows)
            )
            for name in schema.names
        }
    )
    frame = frame.assign(
        n_per_group=35,
        groups=100,
        spread_axis="tau",
        prior=[r[0] for r in rows],
        model=[r[1] for r in rows],
        replicate=[r[2] for r in rows],
    )
    marker = "group" if "group" in schema.names else "attempts"
    frame[marker] = [10 * r[2] + r[3] for r in rows]  # template replicate and row, to trace
    return tables.to_table(frame, schema)


def test_synthesiser_relabels_replicates_and_cells():
    fits = [("brms_default", "partial"), ("none", "none")]
    template = {
        "groups": _template(tables.GROUPS, fits, [0, 1, 2]),
        "fits": _template(tables.FITS, fits, [0, 1, 2]),
        "draws": _template(tables.DRAWS, fits[:1], [0]),
    }
    shared = synth.job_tables(template, [4, 5, 6, 7])
    cell = DataCell(200, 100, "tau", 0.75)
    out = {name: synth.with_cell(table, cell) for name, table in shared.items()}
    for name, table in out.items():
        assert table.schema.equals(synth.SCHEMAS[name])
        assert set(table["n_per_group"].to_pylist()) == {200}
        assert set(table["spread"].to_pylist()) == {0.75}
        assert set(table["spread_axis"].to_pylist()) == {"tau"}
        assert set(table["groups"].to_pylist()) == {100}
    groups = out["groups"].to_pandas()
    assert len(groups) == 2 * 4 * 2  # fits x replicates x rows
    # fit by fit, replicate by replicate; replicate r is template replicate r % 3
    assert groups["model"].tolist() == ["partial"] * 8 + ["none"] * 8
    assert groups["replicate"].tolist() == [4, 4, 5, 5, 6, 6, 7, 7] * 2
    assert groups["group"].tolist() == [10, 11, 20, 21, 0, 1, 10, 11] * 2
    assert out["fits"]["replicate"].to_pylist() == [4, 4, 5, 5, 6, 6, 7, 7] * 2
    # draws: only the batch's first replicate, from the template's first
    draws = out["draws"].to_pandas()
    assert draws["replicate"].tolist() == [4, 4] and draws["group"].tolist() == [0, 1]
    # floats differ by replicate (so files compress like real ones), by less than 1e-10
    spread = groups["theta_mean"].to_numpy()
    assert len(set(spread[:8])) == 4 and np.allclose(spread, 0.5, rtol=1e-10, atol=0)


def test_scale_study_config_and_output_parsing():
    config = scale.study_config(1_000_000, 250)
    assert config["replicates"] == 7143 and config["confirm_large_grid"]  # 140 fits each
    said = "Job stats:\njob      count\n-----  -------\nfit        70\ntotal     145\n\nReasons:"
    assert runs.job_counts(said) == {"fit": 70, "total": 145}
    printed = "rule fit:\n    jobid: 3\nShell command: python -m shrinksim fit x\nrule plot:\n"
    assert runs.longest_command(printed) == ("fit", len("python -m shrinksim fit x"))
    assert abs(scale.exponent([1e4, 1e5, 1e6], [2.0, 20.0, 200.0]) - 1) < 1e-9


def test_fallback_comparison_prints_ratios_and_whether_draws_match(capsys):
    from shrinksim.bench.programs import ProgramRun, print_fallback

    tau = np.arange(4.0).reshape(2, 2)
    direct = [ProgramRun(1.0, 2.0, 2.0, tau, tau), ProgramRun(1.0, 2.0, 2.0, tau, tau)]
    public = [ProgramRun(1.5, 3.0, 5.0, tau, tau), ProgramRun(1.5, 3.0, 5.0, tau, tau + 1)]
    print_fallback(direct, public)
    out = capsys.readouterr().out
    assert "draws DIFFERENT for the same seeds" in out
    assert "sampling 1.50x, job 1.50x, job CPU 2.50x" in out
