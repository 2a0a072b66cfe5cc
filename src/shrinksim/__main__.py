"""``python -m shrinksim``."""

from shrinksim.cli import main

main()
