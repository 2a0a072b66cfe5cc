"""Command-line stages that need no Stan: simulate, the summarize reduce over fit jobs found
by the design, and the reduces' refusal to run on missing inputs."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import BINOMIAL_STUDY, SYNTHETIC, synthetic_fit_job, write_fit_job
from shrinksim import design, tables
from shrinksim.cli.main import main
from shrinksim.study.simulate import simulate_batch
from shrinksim.study.summarize import reduce_jobs

STUDY = {
    "grid": {"n": [20], "groups": [3], "tau": [0.5], "prior": ["weak"], "model": ["partial"]},
    "simulation": {"generator": "logit_normal", "p0": 0.4},
    "replicates": 5,
    "batch_size": 3,
}
"""A study whose one data cell is the synthetic one, in two fit jobs (replicates 0-2, 3-4)."""

SUMMARY = ("per-fit", "shrinkage", "cells", "example-groups", "example-draws")


def test_simulate_writes_the_batch_of_the_cell_named_by_its_path(config, tmp_path):
    out = tmp_path / "data.parquet"
    settings = json.dumps({"seed": config["seed"], "simulation": config["simulation"]})
    cell = design.DataCell(10, 8, "tau", 0.5)
    argv = ["simulate", "--settings", settings, "--cell", cell.path, "--replicates", "2,3"]
    main([*argv, "--out", str(out)])
    got = tables.read_tables([out], tables.DATA)
    expected = simulate_batch(config, cell, [2, 3])
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)
    assert got["replicate"].unique().tolist() == [2, 3] and len(got) == 2 * 9


def summarize(results, out) -> list[str]:
    argv = ["summarize", "--study", json.dumps(STUDY), "--results", str(results)]
    for name in SUMMARY:
        argv += [f"--{name}-out", str(out / f"{name}.parquet")]
    return argv


def test_summarize_reduces_every_job_of_the_design(tmp_path):
    groups, fits = synthetic_fit_job()
    draws = pd.DataFrame(
        {
            **fits.iloc[0][[f.name for f in tables.CELL_FIELDS]].to_dict(),
            "replicate": 0,
            "group": [1, 1, 2, 2],
            "draw": [0, 1, 0, 1],
            "p": [0.1, 0.2, 0.3, 0.4],
        }
    )
    results, out = tmp_path / "results", tmp_path / "summary"
    for batch, replicates in enumerate(design.replicate_batches(STUDY)):
        rows = groups["replicate"].isin(replicates)
        write_fit_job(
            results,
            groups[rows],
            fits[fits["replicate"].isin(replicates)],
            batch,
            draws if batch == 0 else None,
        )
    main(summarize(results, out))
    one_job = reduce_jobs([write_fit_job(tmp_path / "whole", groups, fits)], BINOMIAL_STUDY)
    read = {name: pq.read_table(out / f"{name}.parquet").to_pandas() for name in SUMMARY}
    for name, schema in zip(
        SUMMARY,
        (tables.PER_FIT, tables.SHRINKAGE, tables.CELLS, tables.GROUPS, tables.DRAWS),
        strict=True,
    ):
        assert pq.read_schema(out / f"{name}.parquet").remove_metadata() == schema, name
    pd.testing.assert_frame_equal(
        read["per-fit"], tables.to_table(one_job, tables.PER_FIT).to_pandas(), check_exact=True
    )
    assert read["shrinkage"]["shrinkage"].tolist()[:4] == pytest.approx([0.3, 0.5, 0.7, 0.5])
    cells = read["cells"].iloc[0]
    assert cells[["fits", "fits_ok", "shrinkage_mean"]].tolist() == pytest.approx([5, 3, 0.5])
    # the figures' examples: the first replicate of the first batch, its control group too
    examples = read["example-groups"]
    assert examples["replicate"].unique().tolist() == [0] and len(examples) == 4
    assert examples["is_control"].sum() == 1
    pd.testing.assert_frame_equal(read["example-draws"], draws.astype(read["example-draws"].dtypes))


def test_summarize_refuses_missing_fit_tables_and_writes_nothing(tmp_path):
    groups, fits = synthetic_fit_job()
    results, out = tmp_path / "results", tmp_path / "summary"
    write_fit_job(results, groups, fits, batch=0)  # batch 1 is missing
    missing = design.result_path(
        design.FIT_TABLE, results, table="groups", datacell=SYNTHETIC.path, batch=1
    )
    with pytest.raises(SystemExit, match=f"3 fit tables missing, e.g. {missing}"):
        main(summarize(results, out))
    assert not out.exists()


def test_sbc_summarize_refuses_missing_rank_tables(tmp_path, config):
    config["sbc"] |= {"n": [10], "prior": ["weak"], "groups": 10, "simulations": 4}
    config["sbc"]["batch_size"] = 2
    study = json.dumps({"sbc": config["sbc"]})
    out = tmp_path / "sbc"
    argv = ["sbc-summarize", "--study", study, "--results", str(tmp_path), "--alpha", "0.01"]
    argv += ["--ranks-out", str(out / "ranks.parquet"), "--tests-out", str(out / "tests.parquet")]
    first = design.result_path(
        design.SBC_RANKS, tmp_path, sbccell="n_per_group=10/groups=10/prior=weak", batch=0
    )
    with pytest.raises(SystemExit, match=f"2 rank tables missing, e.g. {first}"):
        main(argv)
    assert not out.exists()


def test_version_and_doctor(capsys, tmp_path, monkeypatch):
    """``--version`` prints the installed version; ``doctor`` what a run would use."""
    from importlib.metadata import version

    from shrinksim.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"shrinksim {version('shrinksim')}\n"
    (tmp_path / "config.yaml").write_text("engine: pystan\ncache_dir: models-here\n")
    monkeypatch.chdir(tmp_path)
    main(["doctor"])
    text = capsys.readouterr().out
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.splitlines())
    assert lines["engine (pystan)"] == "pystan"
    assert lines["PyStan sampling"] == "direct"
    assert lines["httpstan"].startswith(version("httpstan") + " (Stan 2.")
    assert lines["PyStan model cache"].startswith(str(tmp_path / "models-here" / "httpstan"))
    assert lines["Snakemake"] == version("snakemake")
