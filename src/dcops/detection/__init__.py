"""Anomaly detection and forecasting on telemetry: streaming, causal detectors whose scores
become series and alerts, and the public benchmarks that measure them."""
