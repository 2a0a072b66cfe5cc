"""tests/slurm/compare.py, which `make test-slurm` uses to compare a SLURM run with a local
one: equal trees of tables pass, timings aside; a changed number or a missing table fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from conftest import TESTS, synthetic_fit_job, write_fit_job

_spec = importlib.util.spec_from_file_location("compare", TESTS / "slurm/compare.py")
compare_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_script)


def compare(left: Path, right: Path, capsys) -> tuple[int, str, str]:
    """compare.py's exit status, stdout and stderr."""
    status = compare_script.main([str(left), str(right)])
    said = capsys.readouterr()
    return status, said.out, said.err


def results(root: Path, fits: pd.DataFrame, groups: pd.DataFrame) -> Path:
    """A results folder with a fit job's tables and a summary table."""
    write_fit_job(root, groups, fits)
    (root / "summary").mkdir()
    fits.to_parquet(root / "summary/per_fit.parquet")
    return root


def test_identical_runs_pass_whatever_their_timings(tmp_path, capsys):
    groups, fits = synthetic_fit_job()
    local = results(tmp_path / "local", fits, groups)
    slurm = results(tmp_path / "slurm", fits.assign(sampling_seconds=9.0), groups)
    status, said, errors = compare(local, slurm, capsys)
    assert status == 0, errors
    assert "summary/per_fit.parquet: 5 rows" in said
    assert "fits/n_per_group=20/groups=3/tau=0.5/batch=0/part-0.parquet: 5 rows" in said
    assert "draws/n_per_group=20/groups=3/tau=0.5/batch=0/part-0.parquet: 0 rows" in said


def test_a_changed_number_or_a_missing_table_fails(tmp_path, capsys):
    groups, fits = synthetic_fit_job()
    local = results(tmp_path / "local", fits, groups)
    changed = fits.copy()
    changed.loc[2, "tau_mean"] += 1e-15
    slurm = results(tmp_path / "slurm", changed, groups)
    status, _, errors = compare(local, slurm, capsys)
    assert status == 1 and "summary/per_fit.parquet differs" in errors
    (slurm / "summary/per_fit.parquet").unlink()
    status, _, errors = compare(local, slurm, capsys)
    assert status == 1 and "different or missing tables: ['summary/per_fit.parquet']" in errors
    assert compare(tmp_path / "local/summary", tmp_path / "nothing", capsys)[0] == 1
