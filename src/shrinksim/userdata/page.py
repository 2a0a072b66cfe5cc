"""The summary page of the user-data analysis: the data, every fit (estimates and
diagnostics), the PSIS-LOO comparison of the models, the design-matched shrinkage at the
user's sizes, and the what-if answer."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from shrinksim.figures import fit_label
from shrinksim.pages import page, table
from shrinksim.tables import write_atomic
from shrinksim.userdata.inference import LOO_TEXT
from shrinksim.userdata.study import whatif_text


def summary_page(
    data: pd.DataFrame,
    fits: pd.DataFrame,
    cells: pd.DataFrame,
    answer: pd.DataFrame,
    loo: pd.DataFrame,
    source: str,
    path: str | Path,
) -> None:
    """One HTML page: the data, every fit (estimates and diagnostics), the PSIS-LOO
    comparison ``loo`` (table USER_LOO), the design-matched shrinkage at the user's sizes,
    and the what-if answer."""
    treat = data[~data["is_control"]]
    control = data[data["is_control"]]
    overview = pd.DataFrame(
        {
            "file": [source],
            "groups": [len(treat)],
            "control group": [
                f"{control['group'].iloc[0]} (n = {control['n'].iloc[0]})"
                if len(control)
                else "none"
            ],
            "outcomes": [int(data["n"].sum())],
            "n per group (min / median / max)": [
                f"{treat['n'].min()} / {treat['n'].median():g} / {treat['n'].max()}"
            ],
            "observed proportion": [f"{data['y'].sum() / data['n'].sum():.3f}"],
        }
    )
    shown = fits.assign(
        fit=[fit_label(m, p) for p, m in zip(fits["prior"], fits["model"], strict=True)],
        tau=[
            f"{m:.3g} [{a:.3g}, {b:.3g}]" if not np.isnan(m) else "–"
            for m, a, b in zip(fits["tau_median"], fits["tau_q025"], fits["tau_q975"], strict=True)
        ],
        pooled_p=expit(fits["mu_median"]),
    )[
        [
            "fit",
            "status",
            "tau",
            "pooled_p",
            "shrinkage",
            "shrinkage_ratio",
            "divergences",
            "rhat_max",
            "ess_bulk_min",
            "ess_tail_min",
            "ebfmi_min",
            "message",
        ]
    ]
    compared = loo.assign(
        fit=[fit_label(m, p) for p, m in zip(loo["prior"], loo["model"], strict=True)]
    )[
        [
            "fit",
            "rank",
            "elpd_loo",
            "se",
            "p_loo",
            "elpd_diff",
            "dse",
            "weight",
            "pareto_k_max",
            "pareto_k_high",
            "warning",
        ]
    ].rename(columns={"pareto_k_high": "groups with Pareto k > 0.7"})
    here = cells[cells["scale"] == 1.0][
        [
            "prior",
            "quantile",
            "tau",
            "n_mean",
            "fits_ok",
            "shrinkage_mean",
            "shrinkage_mcse",
            "shrinkage_theory",
            "rmse_posterior",
            "rmse_observed",
            "coverage95",
        ]
    ]
    target = float(answer["target"].iloc[0]) if len(answer) else float("nan")
    lines = []
    for _, row in answer.iterrows():
        lines.append(
            f"<li>prior {html.escape(row['prior'])}, tau = {row['tau']:.3g} (posterior "
            f"q{row['quantile']:g}): {html.escape(whatif_text(row))} (now {row['n_now']:.0f})</li>"
        )
    body = f"""{table(overview)}
<h2>Fits</h2>
<p>tau: posterior median [95 % interval]. shrinkage: 1 - slope of posterior mean on observed
log-odds over the treatment groups (0 none, 1 complete pooling). Diagnostics: divergent
transitions, max R-hat (&lt; 1.01 is good), min bulk/tail ESS, min E-BFMI (&gt; 0.3).</p>
{table(shown)}
<h2>Partial, no and complete pooling compared (PSIS-LOO)</h2>
<p>{html.escape(LOO_TEXT)}</p>
{table(compared)}
<h2>Expected shrinkage at your group sizes (design-matched simulation)</h2>
{table(here)}
<h2>What if: mean outcomes per treatment group for shrinkage {target:g}</h2>
<ul>{"".join(lines)}</ul>
"""
    text = page("Your data", body)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
