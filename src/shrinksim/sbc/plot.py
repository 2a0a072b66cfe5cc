"""The SBC figure: ECDF differences of the ranks against the simultaneous uniformity band."""

from __future__ import annotations

from pathlib import Path

import matplotlib.patches
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from shrinksim.figures import save
from shrinksim.sbc.calibration import ecdf_band, ecdf_difference


def sbc_ecdf(ranks: pd.DataFrame, tests: pd.DataFrame, path: str | Path) -> None:
    """SBC: ECDF difference of the ranks (one line per n) with the simultaneous 95 % band,
    one panel per (family, prior) and parameter, annotated with Holm-adjusted p-values; a
    parameter a family does not have (sigma) leaves its panel empty."""
    ranked = ranks.dropna(subset=["rank"])
    designs = list(dict.fromkeys(zip(tests["family"], tests["prior"], strict=True)))
    names = list(dict.fromkeys(tests["parameter"]))
    ns = sorted(tests["n_per_group"].unique())
    palette = dict(zip(ns, sns.color_palette("colorblind"), strict=False))
    fig, axes = plt.subplots(
        len(designs),
        len(names),
        figsize=(2.6 * len(names), 2.2 * len(designs)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    one_family = len({family for family, _ in designs}) == 1
    for row, (family, prior) in enumerate(designs):
        for col, name in enumerate(names):
            ax = axes[row][col]
            design = (tests["family"] == family) & (tests["prior"] == prior)
            panel = tests[design & (tests["parameter"] == name)]
            if panel.empty:
                ax.set_visible(False)
                continue
            band = ecdf_band(int(panel["ranked"].min()), int(panel["thinned_draws"].iloc[0]))
            ax.fill_between(band["z"], band["lower"], band["upper"], color="0.85", step="post")
            ax.axhline(0, color="0.5", linewidth=0.6)
            notes = []
            for test in panel.itertuples():
                part = ranked[
                    (ranked["family"] == family)
                    & (ranked["prior"] == prior)
                    & (ranked["parameter"] == name)
                    & (ranked["n_per_group"] == test.n_per_group)
                ]
                diff = ecdf_difference(part["rank"].to_numpy(int), test.thinned_draws)
                color = palette[test.n_per_group]
                ax.step(diff["z"], diff["difference"], where="post", color=color, linewidth=1)
                notes.append(f"n={test.n_per_group}: p={test.p_adjusted:.2g}")
            ax.text(0.03, 0.04, "\n".join(notes), transform=ax.transAxes, fontsize=7)
            if row == 0:
                ax.set_title(name)
            if col == 0:
                label = prior if one_family else f"{family}, {prior}"
                ax.set_ylabel(f"{label}\nECDF - uniform")
            if row == len(designs) - 1:
                ax.set_xlabel("fractional rank")
    handles = [plt.Line2D([], [], color=palette[n], label=f"n = {n}") for n in ns]
    handles.append(matplotlib.patches.Patch(color="0.85", label="95 % simultaneous band"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0))
    sims = int(tests["simulations"].max())
    fig.suptitle(
        f"Simulation-based calibration of partial pooling ({sims} simulations per panel line; "
        "p: Holm-adjusted)",
        y=1.03,
    )
    save(fig, path)
