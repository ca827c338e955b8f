"""Simulation: a fake GPU fleet for demos and tests, public cluster traces read as
scheduler jobs (traces), and fault injection from published interruption rates (failures)."""
