"""Scheduling: GPU jobs, the policies that order and place them, and the Protocol of what
runs them (local processes, Slurm, the trace simulator)."""
