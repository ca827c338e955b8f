"""Layer 6: the `dcops` command line."""
