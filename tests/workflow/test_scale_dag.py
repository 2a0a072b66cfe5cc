"""A 10^5-fit study's DAG: no job's command line grows with the number of fits."""

from __future__ import annotations

import re

import yaml

from conftest import checkout, snakemake

LIMIT = 100_000
"""Longest shell command allowed (bytes): the kernel refuses 2 MB of arguments in all."""


def test_no_command_of_a_100k_fit_study_is_longer_than_100_kb(tmp_path):
    # 2 data cells x 4 fits (2 priors, no and complete pooling) x 12,500 replicates = 10^5 fits
    # in 100 fit jobs of 250 replicates; the reduce's inputs are 200 fit tables.
    big = tmp_path / "big.yaml"
    big.write_text(
        yaml.safe_dump(
            {
                "replicates": 12_500,
                "batch_size": 250,
                "confirm_large_grid": True,
                "grid": {"n": [10, 20], "groups": [100], "tau": [0.5]},
            }
        )
    )
    study = checkout(tmp_path / "study")
    done = snakemake(study, "--dry-run", "--printshellcmds", configs=[big])
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    commands = re.findall(r"^Shell command: (python -m shrinksim \S+.*)$", said, flags=re.M)
    stages = {command.split()[3] for command in commands}
    assert {"simulate", "fit", "summarize", "measures", "plot", "report"} <= stages
    assert len(commands) == 100 + 100 + 3 + 4  # simulate, fit, compile, the rest
    longest = max(commands, key=len)
    assert len(longest.encode()) < LIMIT, longest[:300]
    # and nothing lists the replicates or the fit tables: every command is a few KB at most
    assert len(longest.encode()) < 5_000, longest[:300]
