"""Simulation: a fake GPU fleet for demos and tests, public cluster traces read as
scheduler jobs (traces), fault injection from published interruption rates (failures),
the signals those faults show with their truth (faulttrace, signalio), an Actuator over
simulated nodes (actuator) and the goodput (ETTR) of one large training job (goodput)."""
