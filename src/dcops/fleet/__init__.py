"""Layer 1: what exists in the datacenter: sites, rooms, racks, nodes and GPUs."""
