"""``python -m taskforge`` runs the command line, as does ``accelerate launch -m taskforge``."""

from taskforge.cli import main

main()
