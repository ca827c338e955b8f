"""Layer 1: what is measured. Samples, series, the metrics-store Protocol and its parsers."""
