"""`python -m dcops` runs the CLI."""

from dcops.cli.main import main

main()
