"""Write examples/forum_like.csv: a small data set shaped like the Stan forum thread's.

60 treatment groups with n_g = max(1, floor(Normal(35, 5))) outcomes and true probabilities
p_g ~ Normal(0.4, 0.05) (the forum's generator, ``probability_normal``), plus a control group
of 1,500 outcomes at p = 0.4; one row per group (group, n, successes, is_control). Uses the
study's own generator (shrinksim.study.simulate.simulate_groups) with a fixed seed, so rerunning
this script rewrites the identical file:

    PYTHONPATH=src python examples/make_forum_like.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shrinksim.study.simulate import simulate_groups

SEED = 20261126
GROUPS, N, N_SD = 60, 35, 5
P0, P_SD = 0.4, 0.05
CONTROL_N, CONTROL_P = 1500, 0.4


OUT = Path(__file__).with_name("forum_like.csv")


def main(out: Path = OUT) -> None:
    rng = np.random.default_rng(SEED)
    sizes = np.maximum(1, np.floor(rng.normal(N, N_SD, GROUPS))).astype(int)
    frame = simulate_groups(rng, sizes, "p_sd", P_SD, P0, CONTROL_N, CONTROL_P)
    labels = [
        "control" if c else f"treat_{g:02d}"
        for g, c in zip(frame["group"], frame["is_control"], strict=True)
    ]
    table = frame.assign(group=labels).rename(columns={"y": "successes"})
    table[["group", "n", "successes", "is_control"]].to_csv(out, index=False)
    print(f"wrote {out} ({len(table)} groups)")


if __name__ == "__main__":
    main()
