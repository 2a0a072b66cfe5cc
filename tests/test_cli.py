"""Command-line checks that need no Stan."""

from __future__ import annotations

import pytest

from shrinksim.cli import main


def test_fit_needs_one_output_of_each_kind_per_cell(tmp_path):
    cells = [
        "n~10/groups~8/tau~0.5/prior~weak/model~partial",
        "n~10/groups~8/tau~0.5/prior~none/model~none",
    ]
    argv = ["fit", "--settings", "{}", "--cells", *cells, "--data", "d", "--compiled", "c"]
    argv += ["--cache-dir", str(tmp_path), "--groups-out", "g1", "g2", "--fits-out", "f1"]
    argv += ["--draws-out", "d1", "d2"]
    with pytest.raises(SystemExit, match="one entry per cell; got 2, 2, 1, 2"):
        main(argv)
    assert not list(tmp_path.iterdir())
