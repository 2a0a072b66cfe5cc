"""The benchmark's pure helpers (not its timings) and the scale benchmark's synthesiser."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shrinksim import bench, tables
from shrinksim.bench import peer, peer_job, peer_summary, runs, scale, synth, workflow
from shrinksim.design import DataCell
from shrinksim.engines import SAMPLER_VARIABLES


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


def _fake_parts(monkeypatch):
    """Every part of ``python -m shrinksim.bench`` replaced by a recorder of its calls."""
    from shrinksim.bench import families, peer, programs

    called = []

    def part(name, result=None):
        return lambda *args, **kwargs: called.append((name, args, kwargs)) or result

    monkeypatch.setattr(programs, "part_programs", part("programs", {"pystan": 1.0}))
    monkeypatch.setattr(programs, "part_brms", part("brms"))
    monkeypatch.setattr(workflow, "part_workflow", part("workflow"))
    monkeypatch.setattr(workflow, "part_memory", part("memory"))
    monkeypatch.setattr(families, "part_families", part("families"))
    monkeypatch.setattr(peer, "part_peer", part("peer"))
    return called


def test_bench_runs_every_part_peer_last(monkeypatch):
    from shrinksim.bench import __main__ as cli

    called = _fake_parts(monkeypatch)
    cli.main(["--reps", "2", "--grid", "tiny", "--cores", "1", "--peer-rounds", "3"])
    names = [name for name, _, _ in called]
    assert names == ["programs", "brms", "workflow", "memory", "families", "peer"]
    assert called[2][1][-1] == [3, 4, 5]  # the workflow prints parts 3, 4 and 5
    assert called[3][1][2] == 2  # part 6 fits --reps data sets
    reps, work, cache_dir = called[-2][1]
    assert reps == 2 and work == called[0][1][1] and cache_dir.is_absolute()
    assert called[-1][1] == (reps, work, cache_dir)
    assert called[-1][2] == {"rounds": 3, "peer_python": sys.executable}


def test_bench_parts_run_a_subset_with_the_parts_they_need(monkeypatch, capsys):
    from shrinksim.bench import __main__ as cli

    called = _fake_parts(monkeypatch)
    cli.main(["--parts", "8,2", "--peer-python", "/venv/bin/python"])
    assert [name for name, _, _ in called] == ["programs", "brms", "peer"]
    assert called[-1][2]["peer_python"] == "/venv/bin/python"
    assert capsys.readouterr().out.startswith("# shrinksim benchmark, parts 1, 2, 8\n")
    called.clear()
    cli.main(["--parts", "4,6"])
    assert [name for name, _, _ in called] == ["workflow", "memory"]
    assert called[0][1][-1] == [3, 4]  # part 4 reruns part 3's study; part 5 not printed
    for wrong in ("9", "3,x", ""):
        with pytest.raises(SystemExit):
            cli.main(["--parts", wrong])


def test_grid_runs_print_each_engine_against_pystan(capsys, tmp_path):
    runs = {
        "pystan": workflow.GridRun(tmp_path, 3.0, 200.0, 168, 14, 320.0, 360.0, 2),
        "nutpie": workflow.GridRun(tmp_path, 6.0, 50.0, 168, 14, 40.0, 80.0, 2),
    }
    workflow.print_grid_runs(runs, tmp_path / ".cache")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["engine", "compile", "s"]
    assert lines[1].split() == ["pystan", "3.0", "200.0", "320.0", "360.0", "168", "14"] + [
        "0.80",
        "11.1%",
    ]
    assert "nutpie / pystan: wall 0.25x, sum of sampling 0.12x, sum of fit-job wall 0.22x" in (
        "\n".join(lines)
    )
    assert lines[-2].startswith("pystan: sampling / (wall x cores) = 0.80 (target >= 0.7: met)")
    assert lines[-1].startswith("nutpie: sampling / (wall x cores) = 0.40 (target >= 0.7: MISSED)")


# -- part 8: the peer (PyMC + nutpie) -------------------------------------------------------

HAS_PEER = all(importlib.util.find_spec(m) for m in peer_job.PEER_MODULES)
needs_peer = pytest.mark.skipif(
    not HAS_PEER,
    reason=f"PyMC and nutpie not installed (the optional extra: {peer_job.PEER_INSTALL})",
)


def _job(side, fits=1, seconds=10.0, cpu=5.0, load=1.0, **extra):
    job = peer_summary.Job(side, fits, seconds, cpu, load, [seconds / 2] * fits)
    for name, value in extra.items():
        setattr(job, name, value)
    return job


def test_peer_problem_says_how_to_install_the_extra():
    problem = peer_job.peer_problem(("no_such_module_of_shrinksim",))
    assert "ModuleNotFoundError" in problem and problem.endswith(peer_job.PEER_INSTALL)


def _fake_fit(side, rng, shift=0.0, cpu=1.0, leapfrog=15.0):
    """A one-fit job of part 8a with normal draws of mu, tau and 3 theta."""
    draws = {"mu": rng.normal(size=(4, 500)) + shift, "tau": rng.normal(size=(4, 500))}
    draws["theta"] = rng.normal(size=(4, 500, 3))
    return _job(side, 1, 4.0, 2.0, sampling_cpu=[cpu], leapfrog=[leapfrog], draws=[draws])


def _fake_part(monkeypatch, engines, problem):
    """part_peer with ``engines`` present, the peer's ``problem``, and jobs that run nothing."""
    rng = np.random.default_rng(4)
    monkeypatch.setattr(peer, "engines_present", lambda: (engines, ["cmdstanpy: skipped: ..."]))
    monkeypatch.setattr(peer, "peer_problem", lambda python: problem)
    monkeypatch.setattr(
        peer, "compile_engines", lambda engines, *_: {e: f"{e}.json" for e in engines}
    )

    def peer_job(python, data, settings, seed, draws=False):
        if draws:
            return _fake_fit(peer_summary.PEER, rng)
        return _job(peer_summary.PEER, int(data.stem.split("-")[-1]), imports=1.0, compile=2.0)

    monkeypatch.setattr(peer, "peer_job", peer_job)
    monkeypatch.setattr(
        peer,
        "engine_job",
        lambda side, *a: _fake_fit(side, rng, cpu=0.5 if side == "nutpie" else 1.0),
    )
    monkeypatch.setattr(
        peer, "fit_job", lambda side, data, *a: _job(side, int(data.stem.split("-")[-1]))
    )


def test_peer_part_compares_the_engines_where_the_peer_is_missing(monkeypatch, tmp_path, capsys):
    problem = "`import pymc, nutpie` fails (...); to include it: ..."
    _fake_part(monkeypatch, ["pystan", "nutpie"], problem)
    peer.part_peer(2, tmp_path, tmp_path)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("## 8. peer") and "(pystan, nutpie)" in lines[0]
    assert lines[1:3] == ["cmdstanpy: skipped: ...", f"pymc + nutpie: skipped: {problem}"]
    assert "\nnutpie / pystan " in out and "pymc + nutpie" not in out.split(problem)[1]
    assert (
        "sampling CPU s per leapfrog step, nutpie / pystan, paired by data set: median 0.50x"
        in (out)
    )
    assert "agreement nutpie vs pystan, same data sets:" in out
    assert "nutpie vs pystan: the same CPU lines" in out  # the fake jobs are alike
    assert out.count("least squares over its 3 jobs") == 2


def test_peer_part_prints_ratios_to_pystan_and_to_the_peer(monkeypatch, tmp_path, capsys):
    _fake_part(monkeypatch, ["pystan", "nutpie"], None)
    peer.part_peer(2, tmp_path, tmp_path)
    out = capsys.readouterr().out
    for line in ("pymc + nutpie / pystan ", "nutpie / pystan ", "nutpie / pymc + nutpie "):
        assert out.count(f"\n{line}") == 2  # 8a and 8b
    assert "ESS/s tau, nutpie / pymc + nutpie, paired by data set: median" in out
    assert "issue 17's target >= 1x" in out
    assert "agreement pymc + nutpie vs pystan" in out and "agreement nutpie vs pystan" in out
    assert "peer job's own timers, median: import pymc + nutpie 1.0 s, build + compile" in out


def test_peer_part_needs_something_to_compare_with_pystan(monkeypatch, tmp_path, capsys):
    _fake_part(monkeypatch, ["pystan"], "`import pymc, nutpie` fails (...)")
    peer.part_peer(3, tmp_path, tmp_path)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("## 8. peer") and lines[-1] == (
        "skipped: needs pystan and one more side (the peer or another engine)"
    )
    assert len(lines) == 4


def test_ratio_lines_are_against_pystan_and_the_peer():
    sides = [peer_summary.PEER, "pystan", "nutpie", "pystan --O1"]
    assert peer_summary.ratio_lines(sides) == [
        "pymc + nutpie / pystan",
        "nutpie / pystan",
        "nutpie / pymc + nutpie",
        "pystan --O1 / pystan",
        "pystan --O1 / pymc + nutpie",
    ]
    assert peer_summary.ratio_lines(["pystan", "nutpie"]) == ["nutpie / pystan"]


def test_nutpie_draws_are_shrinksim_draws():
    import arviz as az

    rng = np.random.default_rng(1)
    shape = (4, 50)
    trace = az.from_dict(
        posterior={"mu": rng.normal(size=shape), "tau": rng.gamma(2, size=shape)}
        | {"z": rng.normal(size=(*shape, 7))},
        sample_stats={
            "diverging": np.zeros(shape, bool),
            "depth": np.full(shape, 4),
            "energy": rng.normal(size=shape),
            "n_steps": np.full(shape, 15),
        },
    )
    draws = peer_job.nutpie_draws(trace, 2.5)
    assert draws.seconds == 2.5 and draws.params["z"].shape == (*shape, 7)
    assert set(draws.sampler) == set(SAMPLER_VARIABLES)
    assert draws.sampler["n_leapfrog__"].mean() == 15 and draws.sampler["divergent__"].sum() == 0


def test_fit_agreement_covers_mu_tau_and_every_theta():
    rng = np.random.default_rng(2)
    a = {"mu": rng.normal(size=(4, 1000)), "tau": rng.normal(size=(4, 1000))}
    a["theta"] = rng.normal(size=(4, 1000, 5))
    b = {"mu": a["mu"][::-1], "tau": a["tau"][::-1], "theta": a["theta"].copy()}
    b["theta"][..., 3] += 0.2  # ~9 joint MCSE, as in test_agreement_is_in_mcse_units
    got = peer_summary.fit_agreement(a, b)
    assert got["mu"] < 1e-9 and got["tau"] < 1e-9 and 6 < got["theta"] < 12


def test_cost_line_is_fixed_cost_plus_cost_per_fit():
    jobs = [_job("peer", k, 30.0 + 4.0 * k) for k in (1, 3, 10)]
    fixed, per_fit = peer_summary.cost_line(jobs)
    assert abs(fixed - 30.0) < 1e-9 and abs(per_fit - 4.0) < 1e-9
    assert np.isnan(peer_summary.cost_line(jobs[:1])[0])


def test_batch_rows_are_medians_per_fit_and_the_table_prints_ratios(capsys):
    jobs = [_job("pystan", 2, 10.0, 8.0), _job("pystan", 2, 14.0, 8.0), _job("nutpie", 2, 4.0, 2.0)]
    jobs += [_job("nutpie", 1, 3.0, 1.5), _job("pystan", 1, 7.0, 5.0)]
    rows = peer_summary.batch_rows(jobs)
    assert rows == {
        "pystan": {"s/fit k=1": 7.0, "s/fit k=2": 6.0, "CPU s/fit k=1": 5.0, "CPU s/fit k=2": 4.0},
        "nutpie": {"s/fit k=1": 3.0, "s/fit k=2": 2.0, "CPU s/fit k=1": 1.5, "CPU s/fit k=2": 1.0},
    }
    peer_summary.print_table({"a": {"x": 1.0, "y": 4.0}, "b": {"x": 2.0, "y": 2.0}}, "", ["a / b"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["a", "1.00", "4.00"] and lines[3].split() == [
        "a",
        "/",
        "b",
        "0.50x",
        "2.00x",
    ]


def test_single_rows_take_the_median_over_data_sets():
    rng = np.random.default_rng(3)
    jobs = []
    for seconds in (1.0, 2.0, 9.0):
        draws = {"mu": rng.normal(size=(4, 500)), "tau": rng.normal(size=(4, 500))}
        jobs.append(
            _job(
                "peer", 1, seconds * 3, 2.0, sampling_cpu=[seconds], leapfrog=[15.0], draws=[draws]
            )
        )
        jobs[-1].sampling = [seconds]
    row = peer_summary.single_rows({"peer": jobs})["peer"]
    assert row["sampling s"] == 2.0 and row["job s"] == 6.0 and row["leapfrog/iter"] == 15.0
    assert list(row) == list(peer_summary.SINGLE_COLUMNS)


def test_load_note_warns_on_a_loaded_machine():
    cores = os.cpu_count() or 1
    assert "LOADED" not in peer_summary.load_note([_job("peer", load=0.5)])
    assert "LOADED" in peer_summary.load_note(
        [_job("peer", load=0.5), _job("peer", load=2.0 * cores)]
    )


def test_alternate_reverses_the_order_on_odd_rounds():
    ran = []
    steps = [lambda i=i: ran.append(i) or i for i in range(3)]
    assert peer.alternate(0, steps) == [0, 1, 2] and ran == [0, 1, 2]
    assert peer.alternate(1, steps) == [0, 1, 2] and ran[3:] == [2, 1, 0]


@pytest.mark.skipif(importlib.util.find_spec("httpstan") is None, reason="httpstan not installed")
def test_stanc_o1_patch_turns_on_stancs_optimisations():
    """httpstan runs stanc with fixed arguments; the patch of the --O1 build adds --O1."""
    from shrinksim.engines import program_source

    code = program_source(bench.REPO / "stan" / "partial_pooling.stan")
    check = (
        "import httpstan.compile, sys; print(httpstan.compile.compile(sys.stdin.read(), 'm')[0])"
    )
    runs = {
        patched: subprocess.run(
            [sys.executable, "-c", (peer.STANC_O1 if patched else "") + check],
            input=code,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for patched in (False, True)
    }
    assert peer.O1_MARK in runs[True] and peer.O1_MARK not in runs[False]
    assert "stan::math::fma(tau, z, mu)" in runs[True]


@needs_peer
def test_pymc_priors_are_the_stan_programs():
    import pymc as pm

    from shrinksim.priors import parse_prior

    with pm.Model():
        with pytest.raises(ValueError, match="no PyMC twin"):
            peer_job.pymc_prior(pm, "tau", parse_prior("normal(1, 2)", "x"), positive=True)
        with pytest.raises(ValueError, match="unbounded"):
            peer_job.pymc_prior(pm, "mu", parse_prior("exponential(1)", "x"), positive=False)
        rv = peer_job.pymc_prior(pm, "t", parse_prior("student_t(3, 0, 2.5)", "x"), positive=True)
        assert rv.owner.op.name == "halfstudentt"


@needs_peer
def test_peer_model_has_the_stan_programs_log_density():
    """Without the Jacobian of tau's log transform, the model's log density is the Stan
    program's (full densities; the half-t's factor 2 is a constant)."""
    from scipy import stats
    from scipy.special import expit

    from shrinksim.priors import parse_prior

    groups = pd.DataFrame({"n": [1500, 33, 41, 20], "y": [600, 10, 17, 9]})
    model = peer_job.peer_model(
        groups,
        parse_prior("student_t(3, 0, 2.5)", "mu"),
        parse_prior("student_t(3, 0, 2.5)", "tau"),
    )
    point = {"mu": -0.4, "tau_log__": np.log(0.3), "z": np.array([0.1, -1.0, 0.5, 2.0])}
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")(point)
    theta = point["mu"] + 0.3 * point["z"]
    expected = (
        stats.t(3, 0, 2.5).logpdf(point["mu"])
        + np.log(2)
        + stats.t(3, 0, 2.5).logpdf(0.3)
        + stats.norm.logpdf(point["z"]).sum()
        + stats.binom(groups["n"], expit(theta)).logpmf(groups["y"]).sum()
    )
    assert np.isclose(logp, expected, rtol=1e-8, atol=0)


def test_per_step_ratios_pair_cpu_per_leapfrog_step_by_data_set():
    a = [
        _job("x", sampling_cpu=[2.0], leapfrog=[10.0]),
        _job("x", sampling_cpu=[1.0], leapfrog=[20.0]),
    ]
    b = [
        _job("y", sampling_cpu=[4.0], leapfrog=[10.0]),
        _job("y", sampling_cpu=[1.0], leapfrog=[10.0]),
    ]
    assert peer_summary.per_step_ratios(a, b) == [0.5, 0.5]


def test_batch_summary_says_where_the_cpu_lines_cross(capsys):
    jobs = [_job("pystan", k, 1.0 + 4.0 * k, 1.0 + 4.0 * k) for k in (1, 3, 10)]
    jobs += [_job(peer_summary.PEER, k, 21.0 + 2.0 * k, 21.0 + 2.0 * k) for k in (1, 3, 10)]
    jobs += [_job("nutpie", k, 0.5 + 1.0 * k, 0.5 + 1.0 * k) for k in (1, 3, 10)]
    for job in jobs:
        job.imports = job.compile = 1.0
    peer_summary.print_batches(jobs)
    out = capsys.readouterr().out
    assert (
        "pystan: least squares over its 3 jobs: 1.0 s per job + 4.00 s per fit (CPU: 1.0 s" in out
    )
    assert (
        "pymc + nutpie vs pystan: equal CPU per fit at k = 10.0 fits per job (the CPU lines "
        "cross); pymc + nutpie is cheaper above"
    ) in out
    assert "nutpie vs pystan: nutpie is cheaper at every k" in out
    assert "nutpie vs pymc + nutpie: nutpie is cheaper at every k" in out
    assert "peer job's own timers, median: import pymc + nutpie 1.0 s" in out
