"""Pages of the grid study's Snakemake report besides the figures: the configuration used,
the software versions and the measures table (each a small self-contained HTML file)."""

from __future__ import annotations

import html
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import pandas as pd
import yaml

from shrinksim.pages import page
from shrinksim.study.measures import FLAGS

PACKAGES = (
    "shrinksim",
    "snakemake",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "seaborn",
    "pystan",
    "httpstan",
    "cmdstanpy",
)
"""Python packages whose versions the report lists."""


def config_page(config: Mapping[str, Any]) -> str:
    """The configuration the study ran with (config.yaml merged with every override)."""
    text = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=None)
    return page("Configuration used", f"<pre>{html.escape(text)}</pre>")


def software(engines: Iterable[str]) -> dict[str, str]:
    """Versions of Python, the platform, the packages and, for cmdstanpy, CmdStan's path."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    engines = sorted(set(engines))
    versions["engines used"] = ", ".join(engines) or "none"
    if "cmdstanpy" in engines:
        from shrinksim.engines import find_cmdstan  # the engine layer only when needed

        versions["CmdStan"] = str(find_cmdstan() or "not found")
    return versions


def software_page(versions: Mapping[str, str]) -> str:
    """The software versions as an HTML table."""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in versions.items()
    )
    return page(
        "Software versions", f"<table><tr><th>software</th><th>version</th></tr>{rows}</table>"
    )


TARGETS = {
    "tau": "tau: posterior mean and intervals of the between-group sd",
    "groups": "group effects (log-odds) against the truth",
    "shrinkage": "shrinkage: 1 - slope (factor) and median ratio",
    "diagnostics": "diagnostics: share of fits flagged by each rule",
}
"""Heading of each target's table."""


def _fit_label(model: str, prior: str) -> str:
    return f"partial, {prior}" if model == "partial" else f"{model} pooling"


MODEL_NAMES = {"partial": "partial pooling", "none": "no pooling", "complete": "complete pooling"}
"""How the flag rules name a model."""


def flag_rules(diagnostics: pd.DataFrame) -> str:
    """The rule and threshold of every flag in ``diagnostics`` (its measures rows) as an HTML
    list; a threshold that differs between cells (it depends on the model and the number of
    groups) is given for each, with the cells it applies to."""
    items = []
    for name, rule in FLAGS.items():
        rows = diagnostics[diagnostics["measure"] == name]
        if rows.empty:
            continue
        levels = rows["level"].dropna().unique()
        if "{level" not in rule or len(levels) == 0:
            text = rule
        elif len(levels) == 1:
            text = rule.format(level=levels[0])
        else:
            parts = []
            for level, part in rows.groupby("level", sort=True):
                cells = zip(part["model"], part["groups"], strict=True)
                where = sorted({f"{MODEL_NAMES.get(m, m)}, {g} groups" for m, g in cells})
                parts.append(rule.format(level=level) + f" ({'; '.join(where)})")
            text = " / ".join(parts)
        items.append(f"<li><b>{html.escape(name)}</b>: {html.escape(text)}</li>")
    return f"<ul>{''.join(items)}</ul>"


def measures_page(measures: pd.DataFrame) -> str:
    """One table per target: a row per fit cell, a column per measure, ``value (MCSE)``; the
    diagnostics table comes with the rule and threshold of each flag."""
    frame = measures.assign(
        fit=[_fit_label(m, p) for m, p in zip(measures["model"], measures["prior"], strict=True)],
        column=[
            m if pd.isna(level) or target == "diagnostics" else f"{m} {level:.0%}"
            for m, level, target in zip(
                measures["measure"], measures["level"], measures["target"], strict=True
            )
        ],
        cell=[
            "" if pd.isna(v) else f"{v:.3f}" + ("" if pd.isna(e) else f" ({e:.3f})")
            for v, e in zip(measures["value"], measures["mcse"], strict=True)
        ],
    )
    index = ["n_per_group", "spread_axis", "spread", "fit"]
    parts = []
    for target, rows in frame.groupby("target", sort=False):
        table = rows.pivot_table(
            index=index, columns="column", values="cell", aggfunc="first", sort=False
        )
        if target in ("tau", "shrinkage"):
            what = "true tau" if target == "tau" else "normal approximation"
            column = "true_tau" if target == "tau" else "reference"
            ref = rows[rows["measure"].isin(["mean", "factor"])].set_index(index)[column]
            table.insert(0, what, ref.map(lambda v: "" if pd.isna(v) else f"{v:.3f}"))
        table = table.reset_index().rename(columns={"n_per_group": "n", "spread_axis": "axis"})
        table.columns.name = None
        heading = f"<h3>{html.escape(TARGETS.get(str(target), str(target)))}</h3>"
        rules = flag_rules(rows) if target == "diagnostics" else ""
        parts.append(heading + rules + table.to_html(index=False, na_rep="", escape=True))
    note = (
        "<p>Each entry is <i>value (Monte Carlo standard error)</i> over the replicates of the "
        "cell; docs/measures.md defines every measure. Group measures are on the log-odds "
        "scale; diagnostics are shares of fits flagged by each rule (docs/calibration.md says "
        "how the thresholds were chosen and how often they fire on converged and on failing "
        "fits); the raw values of every fit are in the dataset results/fits.</p>"
    )
    return page("Performance measures", note + "".join(parts))
