"""The dcops agent: runs on every GPU server, measures it, and pushes the samples home.

One process per host: a host collector (psutil), a GPU collector (NVML, when a driver is
present), an on-disk spool that survives outages and restarts, and a pusher that delivers
spooled batches to the control plane in order. Kept lean on purpose: it never imports
numpy, duckdb or fastapi.
"""
