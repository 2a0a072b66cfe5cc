"""``python -m shrinksim STAGE ...``."""

from shrinksim.cli.main import main

main()
