"""Figure dispatch and the figures of studies without partial pooling (no Stan needed)."""

from __future__ import annotations

import pytest

from conftest import BINOMIAL_STUDY, synthetic_fit_job, write_fit_job
from shrinksim import tables
from shrinksim.study import measures, plot
from shrinksim.study.summarize import example_groups, reduce_jobs


def _baseline_summary(root) -> plot.Summary:
    """The summary tables of a study of no pooling only (the synthetic fit job)."""
    job = write_fit_job(root, *synthetic_fit_job(prior="none", model="none"))
    per_fit = reduce_jobs([job], BINOMIAL_STUDY)
    return plot.Summary(
        measures=measures.measures(per_fit, BINOMIAL_STUDY, chains=2),
        groups=example_groups([job[0]]),
        fits=per_fit,
        draws=tables.DRAWS.empty_table().to_pandas(),
        outcome=BINOMIAL_STUDY,
        density_n=35,
    )


def test_partial_pooling_figures_say_so_when_the_grid_has_none(tmp_path):
    names = ["shrinkage_vs_n", "posterior_densities", "tau_posterior", "rmse_vs_n"]
    paths = [tmp_path / f"{name}.{fmt}" for name in names for fmt in ("png", "svg")]
    plot.draw(_baseline_summary(tmp_path / "results"), paths)
    for path in paths:
        assert path.stat().st_size > 1000, path
    svg = (tmp_path / "tau_posterior.svg").read_text()
    assert "partial" in svg and not list(tmp_path.glob(".*.tmp"))


def test_unknown_figure_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown figure 'shrinkage'"):
        plot.draw(_baseline_summary(tmp_path / "results"), [tmp_path / "shrinkage.png"])


def test_parallel_drawing_writes_the_same_bytes_as_serial(tmp_path):
    """Figures drawn in 2 forked workers equal the serial ones byte for byte (SVG included:
    no date, fixed ids), so the report is reproducible however the figures were drawn."""
    names = ["shrinkage_vs_n", "tau_posterior", "coverage_vs_n", "diagnostics"]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    for out, workers in ((serial, 1), (parallel, 2)):
        out.mkdir()
        paths = [out / f"{name}.{fmt}" for name in names for fmt in ("png", "svg")]
        plot.draw(_baseline_summary(tmp_path / "results"), paths, workers=workers)
    for path in sorted(serial.iterdir()):
        assert path.read_bytes() == (parallel / path.name).read_bytes(), path.name
