"""``python -m shrinksim STAGE ...``."""

from shrinksim.cli import main

main()
