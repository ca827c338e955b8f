"""Alerting and recording rules in Prometheus's format, evaluated over the PromQL engine."""
