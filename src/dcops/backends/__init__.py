"""Backends: one module per external system, each implementing a domain Protocol."""
