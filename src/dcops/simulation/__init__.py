"""Simulation: a fake GPU fleet for demos and tests, and (later) trace replay with faults."""
