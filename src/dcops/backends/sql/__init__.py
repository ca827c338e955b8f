"""Backend for dcops's state in SQLite or PostgreSQL: inventory, tokens, audit, meta.

Open it with `open_state(url)`; `memory_state()` gives the in-memory twins.
"""

from dcops.backends.sql.state import StateStore, memory_state, open_state

__all__ = ["StateStore", "memory_state", "open_state"]
