"""``python -m shrinksim.columns``: print docs/results.md (every table and column, described)."""

import sys

from shrinksim.columns.markdown import results_markdown

sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
sys.stdout.write(results_markdown())
