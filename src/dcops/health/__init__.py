"""Health diagnosis: GPU and node faults from telemetry and events, with the evidence."""
