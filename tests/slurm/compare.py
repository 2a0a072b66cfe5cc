"""Check that two runs' tables are identical, timing columns aside.

Usage: python tests/slurm/compare.py LOCAL_DIR SLURM_DIR   (e.g. the two results folders)
Every *.parquet file below LOCAL_DIR is compared with the file at the same relative path
below SLURM_DIR: the summary tables (per_fit, shrinkage, cells, measures, example_groups,
example_draws), and the Hive datasets of the fit jobs (data, groups, fits, draws). Exit 0 if
both directories hold the same files (at least one) and they are equal cell for cell (exact,
NaN == NaN) after dropping columns that measure time (``*_seconds``); else print what
differs and exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


def tables(directory: Path) -> set[str]:
    """Relative paths of every Parquet file below ``directory``."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*.parquet")}


def load(directory: Path, name: str) -> pd.DataFrame:
    table = pq.read_table(directory / name).to_pandas()
    return table.drop(columns=[c for c in table.columns if c.endswith("_seconds")])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    left, right = map(Path, argv)
    names, others = tables(left), tables(right)
    if names != others or not names:
        only = sorted(names ^ others) or "none found"
        print(f"different or missing tables: {only}", file=sys.stderr)
        return 1
    failed = False
    for name in sorted(names):
        a, b = load(left, name), load(right, name)
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError as err:
            failed = True
            print(f"{name} differs:\n{err}", file=sys.stderr)
        else:
            print(f"{name}: {len(a)} rows x {a.shape[1]} columns identical")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
