"""Bringing the inventory in line with a list of objects from elsewhere (a simulator, a file)."""

from __future__ import annotations

from collections.abc import Iterable

from dcops.core.errors import NotFound
from dcops.fleet.inventory import Inventory
from dcops.fleet.model import Gpu, Node, Rack, Room, Site

Equipment = Site | Room | Rack | Node | Gpu


def upsert_all(inventory: Inventory, objects: Iterable[Equipment]) -> None:
    """Create or replace each object, parents first as given.

    A node that already exists keeps the lifecycle state and last-seen time it has, so
    that restarting a source never undoes an operator's drain.
    """
    for obj in objects:
        if isinstance(obj, Site):
            inventory.upsert_site(obj)
        elif isinstance(obj, Room):
            inventory.upsert_room(obj)
        elif isinstance(obj, Rack):
            inventory.upsert_rack(obj)
        elif isinstance(obj, Node):
            try:
                existing = inventory.get_node(obj.name)
            except NotFound:
                inventory.upsert_node(obj)
            else:
                inventory.upsert_node(Node(obj.name, obj.rack, existing.state, obj.gpu_model,
                                           obj.gpu_count, obj.labels, existing.last_seen))
        else:
            inventory.upsert_gpu(obj)
