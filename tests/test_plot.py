"""Figure dispatch and the figures of studies without partial pooling (no Stan needed)."""

from __future__ import annotations

import pytest
from test_measures import synthetic_cell

from shrinksim import tables
from shrinksim.study import measures, plot


def _baseline_summary() -> plot.Summary:
    fits, groups, shrinkage = synthetic_cell()
    for frame in (fits, groups, shrinkage):
        frame["model"], frame["prior"] = "none", "none"
    return plot.Summary(
        measures=measures.measures(fits, groups, shrinkage, p0=0.4, chains=2),
        groups=groups,
        fits=fits,
        draws=tables.DRAWS.empty_table().to_pandas(),
        p0=0.4,
        density_n=35,
    )


def test_partial_pooling_figures_say_so_when_the_grid_has_none(tmp_path):
    names = ["shrinkage_vs_n", "posterior_densities", "tau_posterior", "rmse_vs_n"]
    paths = [tmp_path / f"{name}.{fmt}" for name in names for fmt in ("png", "svg")]
    plot.draw(_baseline_summary(), paths)
    for path in paths:
        assert path.stat().st_size > 1000, path
    svg = (tmp_path / "tau_posterior.svg").read_text()
    assert "partial" in svg and not list(tmp_path.glob(".*.tmp"))


def test_unknown_figure_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown figure 'shrinkage'"):
        plot.draw(_baseline_summary(), [tmp_path / "shrinkage.png"])


def test_parallel_drawing_writes_the_same_bytes_as_serial(tmp_path):
    """Figures drawn in 2 forked workers equal the serial ones byte for byte (SVG included:
    no date, fixed ids), so the report is reproducible however the figures were drawn."""
    names = ["shrinkage_vs_n", "tau_posterior", "coverage_vs_n", "diagnostics"]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    for out, workers in ((serial, 1), (parallel, 2)):
        out.mkdir()
        paths = [out / f"{name}.{fmt}" for name in names for fmt in ("png", "svg")]
        plot.draw(_baseline_summary(), paths, workers=workers)
    for path in sorted(serial.iterdir()):
        assert path.read_bytes() == (parallel / path.name).read_bytes(), path.name
