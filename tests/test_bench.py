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


def test_family_data_are_valid_groups_of_their_family():
    from shrinksim.bench.families import DESIGNS, FAMILIES, simulate
    from shrinksim.families import OUTCOME_FAMILIES, check_groups
    from shrinksim.fitting import stan_data
    from shrinksim.priors import parse_prior

    prior = parse_prior("student_t(3, 0, 2.5)", "prior")
    for family in FAMILIES:
        data = simulate(family, 100, 7, DESIGNS[family])
        check_groups(OUTCOME_FAMILIES[family], data)
        program = OUTCOME_FAMILIES[family].program("partial")
        assert stan_data(program, data, prior, prior)["G"] == 100
        size = {"binomial": "n", "poisson": "exposure", "gaussian": "n"}.get(family)
        if size:  # sizes like the default study's n = 35 (sd 15 %)
            assert 33 < data[size].mean() < 37 and 3 < data[size].std() < 8
    se = simulate("gaussian_se", 100, 7, DESIGNS["gaussian_se"])["se"]
    assert np.allclose(se, 2 / np.sqrt(simulate("gaussian", 100, 7, DESIGNS["gaussian"])["n"]))


def test_family_rounds_interleave_every_program():
    from shrinksim.bench.families import MARGINAL, family_rounds

    rounds = family_rounds(3, groups=10)
    programs = [[fit.program for fit in fits] for fits in rounds]
    assert sorted(programs[0]) == sorted(
        [
            "partial_pooling",
            "poisson_partial_pooling",
            "gaussian_partial_pooling",
            "gaussian_partial_pooling_marginal",
            "gaussian_se_partial_pooling",
            "gaussian_se_partial_pooling_marginal",
        ]
    )
    assert programs[1] == programs[0][1:] + programs[0][:1]  # rotated by one per data set
    assert programs[2] == programs[0][2:] + programs[0][:2]
    for fits in rounds:
        assert len({fit.dataset for fit in fits}) == 1
        pair = [fit for fit in fits if fit.family == "gaussian"]
        assert {fit.variant for fit in pair} == {MARGINAL, "non-centred"}
        assert pair[0].data is pair[1].data and pair[0].seed == pair[1].seed  # same data, seed


def test_marginal_rounds_alternate_which_program_goes_first():
    from shrinksim.bench import marginal

    rounds = marginal.rounds(datasets=1, repeats=2, group_counts=[8])
    assert [[fit.variant for fit in fits] for fits in rounds[:2]] == [
        ["marginal", "non-centred"],
        ["non-centred", "marginal"],
    ]
    assert len(rounds) == 4 and rounds[0][0].data.shape[0] == 8  # 2 families x 2 repeats


def test_families_summary_pairs_marginal_with_non_centred_by_data_set():
    from shrinksim.bench.families import format_table, summary

    rows = []
    for dataset, (slow, fast) in enumerate([(10.0, 40.0), (20.0, 40.0), (40.0, 100.0)]):
        for variant, speed, program in (
            ("non-centred", slow, "gaussian_partial_pooling"),
            ("marginal", fast, "gaussian_partial_pooling_marginal"),
        ):
            rows.append(
                {
                    "family": "gaussian",
                    "groups": 100,
                    "dataset": dataset,
                    "repeat": 0,
                    "variant": variant,
                    "program": program,
                    "seconds": 1.0,
                    "divergences": 1,
                    "ess_tau": speed,
                    "ess_per_s_tau": speed,
                    "ess_mu": 2 * speed,
                    "ess_per_s_mu": 2 * speed,
                    "agreement_max": 1.5 + dataset,
                }
            )
    rows.append(rows[0] | {"family": "poisson", "program": "poisson_partial_pooling"})
    rows[-1]["agreement_max"] = float("nan")
    table = summary(pd.DataFrame(rows))
    marginal = table.loc[("gaussian", 100, "marginal")]
    # paired ratios 4, 2, 2.5: median 2.5 (the ratio of the medians, 40 / 20, would be 2)
    assert (marginal["speedup_tau"], marginal["speedup_tau_min"]) == (2.5, 2.0)
    assert marginal["speedup_tau_max"] == 4.0 and marginal["speedup_mu"] == 2.5
    assert marginal["divergences"] == 3 and marginal["agreement_max"] == 3.5
    assert np.isnan(table.loc[("gaussian", 100, "non-centred"), "speedup_tau"])
    assert np.isnan(table.loc[("poisson", 100, "non-centred"), "speedup_tau"])
    lines = format_table(table).splitlines()
    assert lines[2].split()[0] == "gaussian_partial_pooling_marginal"
    assert lines[2].split()[-4:] == ["2.50x", "(2.00-4.00)", "2.50x", "(2.00-4.00)"]
    assert lines[3].split() == ["poisson_partial_pooling", "1.00", "10.0", "20.0", "1"]
    assert lines[-1] == (
        "gaussian: marginalised and non-centred posteriors differ by at most 3.50 MCSE (agree, < 4)"
    )


def test_bench_runs_every_part_families_last(monkeypatch):
    from shrinksim.bench import __main__ as cli
    from shrinksim.bench import families, programs

    called = []

    def part(name, result=None):
        return lambda *args: called.append((name, args)) or result

    monkeypatch.setattr(programs, "part_programs", part("programs", {"pystan": 1.0}))
    monkeypatch.setattr(programs, "part_brms", part("brms"))
    monkeypatch.setattr(workflow, "part_workflow", part("workflow"))
    monkeypatch.setattr(workflow, "part_memory", part("memory"))
    monkeypatch.setattr(families, "part_families", part("families"))
    cli.main(["--reps", "2", "--grid", "tiny", "--cores", "1"])
    assert [name for name, _ in called] == ["programs", "brms", "workflow", "memory", "families"]
    reps, work, cache_dir = called[-1][1]
    assert reps == 2 and work == called[0][1][1] and cache_dir.is_absolute()
