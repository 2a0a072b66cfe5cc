"""Write the examples of the other outcome families (docs/your-data.md, *The file*):

* ``poisson_rates.csv``: 20 hospital wards, one row per ward (group, count, exposure): the
  exposure is patient-days, uniform on 500..6,000, and the count of infections is
  Poisson(exposure x rate) with log rate ~ Normal(log 4 per 1,000 patient-days, 0.3);
* ``gaussian_scores.csv``: 15 schools, one row per student (group, y): 8..30 students per
  school, school means ~ Normal(70, 4), scores ~ Normal(school mean, 10), one decimal;
* ``eight_schools.csv``: Rubin's (1981) eight schools, one row per school (group, estimate,
  se): the estimated coaching effects and their standard errors.

A fixed seed, so rerunning this script rewrites the identical files:

    PYTHONPATH=src python examples/make_family_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261216
HERE = Path(__file__).parent
EIGHT_SCHOOLS = {
    "group": list("ABCDEFGH"),
    "estimate": [28, 8, -3, 7, -1, 1, 18, 12],
    "se": [15, 10, 16, 11, 9, 11, 10, 18],
}


def poisson_rates(rng: np.random.Generator, wards: int = 20) -> pd.DataFrame:
    """Infections and patient-days per ward."""
    exposure = rng.integers(500, 6001, wards)
    rate = np.exp(rng.normal(np.log(4 / 1000), 0.3, wards))
    return pd.DataFrame(
        {
            "group": [f"ward_{w:02d}" for w in range(1, wards + 1)],
            "count": rng.poisson(exposure * rate),
            "exposure": exposure,
        }
    )


def gaussian_scores(rng: np.random.Generator, schools: int = 15) -> pd.DataFrame:
    """Test scores, one row per student."""
    sizes = rng.integers(8, 31, schools)
    means = rng.normal(70, 4, schools)
    labels = np.repeat([f"school_{s:02d}" for s in range(1, schools + 1)], sizes)
    scores = rng.normal(np.repeat(means, sizes), 10)
    return pd.DataFrame({"group": labels, "y": np.round(scores, 1)})


def main(out: Path = HERE) -> None:
    rng = np.random.default_rng(SEED)
    files = {
        "poisson_rates.csv": poisson_rates(rng),
        "gaussian_scores.csv": gaussian_scores(rng),
        "eight_schools.csv": pd.DataFrame(EIGHT_SCHOOLS),
    }
    for name, frame in files.items():
        frame.to_csv(out / name, index=False)
        print(f"wrote {out / name} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
