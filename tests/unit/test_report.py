"""Report pages: the configuration, software versions and measures tables."""

from __future__ import annotations

import html
import re

import yaml

from conftest import BINOMIAL_STUDY, synthetic_fit_job, write_fit_job
from shrinksim.study import measures, report
from shrinksim.study.summarize import reduce_jobs


def test_config_page_holds_the_config_verbatim(config):
    page = report.config_page(config)
    text = html.unescape(re.search(r"<pre>(.*)</pre>", page, re.S).group(1))
    assert yaml.safe_load(text) == config


def test_software_lists_packages_and_engines():
    versions = report.software(["pystan", "pystan"])
    assert versions["engines used"] == "pystan" and "CmdStan" not in versions
    assert versions["shrinksim"] != "not installed" and versions["snakemake"][0].isdigit()
    assert "CmdStan" in report.software(["cmdstanpy"])
    assert "<td>engines used</td><td>pystan</td>" in report.software_page(versions)


def test_measures_page_shows_value_and_mcse_per_target(tmp_path):
    per_fit = reduce_jobs([write_fit_job(tmp_path, *synthetic_fit_job())], BINOMIAL_STUDY)
    page = report.measures_page(measures.measures(per_fit, BINOMIAL_STUDY, chains=2))
    for heading in report.TARGETS.values():
        assert f"<h3>{html.escape(heading)}</h3>" in page
    # tau mean 0.55 with MCSE sd(0.4, 0.6, 0.5, 0.7) / 2 = 0.0645, next to the true tau 0.5
    assert "<td>0.550 (0.065)</td>" in page and "<th>true tau</th>" in page
    # shrinkage: the normal approximation 5 / 11 next to the factor 0.5
    assert "<th>normal approximation</th>" in page and "<td>0.455</td>" in page
    assert "<th>coverage 95%</th>" in page
