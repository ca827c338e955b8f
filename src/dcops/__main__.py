"""`python -m dcops` runs the CLI."""

from dcops.cli.entry import main

main()
