"""Layer 0: clock, errors and small shared vocabulary. Standard library only."""
