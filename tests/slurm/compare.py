"""Check that two runs' summary tables are identical, timing columns aside.

Usage: python tests/slurm/compare.py LOCAL_DIR SLURM_DIR   (e.g. the two results/summary)
Exit 0 if both directories hold the same *.parquet tables (at least one) and they are equal
cell for cell (exact, NaN == NaN) after dropping columns that measure time (``*_seconds``);
else print what differs and exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


def load(directory: Path, name: str) -> pd.DataFrame:
    table = pq.read_table(directory / f"{name}.parquet").to_pandas()
    return table.drop(columns=[c for c in table.columns if c.endswith("_seconds")])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    left, right = map(Path, argv)
    names = {path.stem for path in left.glob("*.parquet")}
    others = {path.stem for path in right.glob("*.parquet")}
    if names != others or not names:
        print(f"different or missing tables: {sorted(names)} vs {sorted(others)}", file=sys.stderr)
        return 1
    failed = False
    for name in sorted(names):
        a, b = load(left, name), load(right, name)
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError as err:
            failed = True
            print(f"{name}.parquet differs:\n{err}", file=sys.stderr)
        else:
            print(f"{name}.parquet: {len(a)} rows x {a.shape[1]} columns identical")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
