"""The summary page of the user-data analysis: the data and its family (theta's scale, the
natural scale, the theory curve), every fit (estimates and diagnostics), the PSIS-LOO
comparison of the models, the design-matched shrinkage at the user's sizes, and the what-if
answer."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from shrinksim.families import pooled_natural
from shrinksim.figures import fit_label
from shrinksim.pages import page, table
from shrinksim.study.outcome import StudyOutcome
from shrinksim.tables import write_atomic
from shrinksim.userdata.inference import LOO_TEXT
from shrinksim.userdata.outcome import data_family, size_text
from shrinksim.userdata.study import whatif_text


def _interval(fits: pd.DataFrame, name: str) -> list[str]:
    """``name``'s posterior median [95 % interval] per fit ("–" where it has none)."""
    if f"{name}_median" not in fits:
        return ["–"] * len(fits)
    columns = (fits[f"{name}_{q}"] for q in ("median", "q025", "q975"))
    return [
        f"{m:.3g} [{a:.3g}, {b:.3g}]" if not np.isnan(m) else "–"
        for m, a, b in zip(*columns, strict=True)
    ]


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
    family = data_family(data)
    outcome = StudyOutcome(family)
    size = family.size
    treat = data[~data["is_control"]]
    control = data[data["is_control"]]
    sizes = treat[size]
    overview = {
        "file": source,
        "family": family.name,
        "groups": len(treat),
        "control group": (
            f"{control['group'].iloc[0]} ({size} = {size_text(family, control[size].iloc[0])})"
            if len(control)
            else "none"
        ),
        "outcomes": int(data["n"].sum()) if "n" in family.columns else None,
        f"{size} per group (min / median / max)": " / ".join(
            f"{x:g}" if size == "n" else size_text(family, x)  # a median n may end in .5
            for x in (sizes.min(), sizes.median(), sizes.max())
        ),
        f"observed {family.natural_scale}, groups pooled": f"{pooled_natural(family, data):.4g}",
    }
    overview = pd.DataFrame({k: [v] for k, v in overview.items() if v is not None})
    natural = f"pooled {family.natural_text('mu')}"
    shown = fits.assign(
        fit=[fit_label(m, p) for p, m in zip(fits["prior"], fits["model"], strict=True)],
        tau=_interval(fits, "tau"),
        sigma=_interval(fits, "sigma"),
        **{natural: family.natural(fits["mu_median"].to_numpy(float))},
    )[
        [
            "fit",
            "status",
            "tau",
            *(["sigma"] if family.has_sigma else []),
            natural,
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
            f"q{row['quantile']:g}): {html.escape(whatif_text(row, family))} (now "
            f"{size_text(family, row['n_now'])})</li>"
        )
    words = html.escape(
        f"Family {family.name}: each group's effect theta is on the {family.scale} scale, "
        f"shown on the natural scale as the {family.natural_scale} "
        f"{family.natural_text('theta')}; a group's size is its {size}. Theory curve of the "
        f"design-matched study and of shrinkage_normal: {outcome.theory_name}."
    )
    body = f"""<p>{words}</p>
{table(overview)}
<h2>Fits</h2>
<p>tau{" and sigma" if family.has_sigma else ""}: posterior median [95 % interval].
shrinkage: 1 - slope of the posterior mean on the observed effect ({family.scale}) over the
treatment groups (0 none, 1 complete pooling). Diagnostics: divergent transitions, max R-hat
(&lt; 1.01 is good), min bulk/tail ESS, min E-BFMI (&gt; 0.3).</p>
{table(shown)}
<h2>Partial, no and complete pooling compared (PSIS-LOO)</h2>
<p>{html.escape(LOO_TEXT)}</p>
{table(compared)}
<h2>Expected shrinkage at your group sizes (design-matched simulation)</h2>
{table(here)}
<h2>What if: mean {size} per treatment group for shrinkage {target:g}</h2>
<ul>{"".join(lines)}</ul>
"""
    text = page("Your data", body)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
