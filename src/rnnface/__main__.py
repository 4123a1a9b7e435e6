"""`python -m rnnface` is the `rnnface` command."""

from rnnface.cli import main

main()
