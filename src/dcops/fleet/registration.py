"""Registering nodes and GPUs the first time an agent reports them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from dcops.access.model import AuditRecord
from dcops.access.store import AuditLog
from dcops.core.clock import Clock
from dcops.core.errors import NotFound
from dcops.fleet.inventory import Inventory
from dcops.fleet.model import Gpu, Node

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 30.0


class Registrar:
    """Adds reporting nodes to the inventory and keeps their last-seen time fresh."""

    def __init__(self, inventory: Inventory, audit: AuditLog, clock: Clock) -> None:
        self.inventory = inventory
        self.audit = audit
        self.clock = clock
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, node: str, gpus: Sequence[dict[str, object]]) -> None:
        now = self.clock.now()
        with self._lock:
            last = self._touched.get(node)
            if last is not None and now - last < TOUCH_EVERY_S:
                return
            self._touched[node] = now
        try:
            self.inventory.get_node(node)
        except NotFound:
            self._register(node, gpus, now)
        self.inventory.touch_node(node, now)

    def _register(self, node: str, gpus: Sequence[dict[str, object]], now: float) -> None:
        model = str(gpus[0].get("model", "")) if gpus else ""
        self.inventory.add_node(Node(name=node, gpu_model=model, gpu_count=len(gpus)))
        for gpu in gpus:
            index = gpu.get("index", 0)
            self.inventory.upsert_gpu(Gpu(node=node, index=int(str(index)),
                                          uuid=str(gpu.get("uuid", "")),
                                          model=str(gpu.get("model", ""))))
        self.audit.record(AuditRecord(now, "agent", "node.register", f"node/{node}",
                                      {"gpus": len(gpus)}))
        log.info("registered node %s with %d GPUs on first report", node, len(gpus))
