"""dcops: the operations control plane for GPU datacenters."""

__version__ = "0.1.0"
