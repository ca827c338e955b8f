from __future__ import annotations

from dcops.fleet.memory import MemoryInventory
from dcops.fleet.model import Gpu, Lifecycle, Node, Rack, Room, Site
from dcops.fleet.sync import Equipment, upsert_all

OBJECTS: list[Equipment] = [Site("s"), Room("hall", "s"), Rack("r1", "hall"),
           Node("n1", "r1", gpu_model="H100", gpu_count=1), Gpu("n1", 0, "GPU-1", "H100")]


def test_upsert_all_creates_then_keeps_an_operators_state() -> None:
    inventory = MemoryInventory()
    upsert_all(inventory, OBJECTS)
    assert inventory.get_gpu("n1", 0).uuid == "GPU-1"
    inventory.set_node_state("n1", Lifecycle.DRAINED)
    inventory.touch_node("n1", 123.0)
    upsert_all(inventory, OBJECTS)
    node = inventory.get_node("n1")
    assert node.state is Lifecycle.DRAINED and node.last_seen == 123.0
    assert [n.name for n in inventory.list_nodes()] == ["n1"]
