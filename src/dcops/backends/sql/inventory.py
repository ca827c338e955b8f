"""SqlInventory: the datacenter inventory (sites, rooms, racks, nodes, GPUs) in SQL.

In SQLite or PostgreSQL, it behaves exactly like dcops.fleet.memory.MemoryInventory
(see that module for the rules); the contract tests in tests/fleet run over both.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from dcops.backends.sql.rows import upsert
from dcops.backends.sql.schema import gpus, nodes, racks, rooms, sites
from dcops.core.errors import Conflict, NotFound
from dcops.fleet.memory import check_gpu, check_name, check_node, parse_gpu_key, parse_kind
from dcops.fleet.model import Gpu, Kind, Lifecycle, Node, Rack, Room, Site

log = logging.getLogger(__name__)


class SqlInventory:
    """The Inventory Protocol over the `sites`, `rooms`, `racks`, `nodes` and `gpus` tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # add -----------------------------------------------------------------------------

    def add_site(self, site: Site) -> Site:
        check_name("site", site.name)
        self._insert(sites, _site_row(site), "site", site.name)
        return site

    def add_room(self, room: Room) -> Room:
        check_name("room", room.name)
        self._insert(rooms, _room_row(room), "room", room.name, (sites, "site", room.site))
        return room

    def add_rack(self, rack: Rack) -> Rack:
        check_name("rack", rack.name)
        self._insert(racks, _rack_row(rack), "rack", rack.name, (rooms, "room", rack.room))
        return rack

    def add_node(self, node: Node) -> Node:
        check_node(node)
        parent = (racks, "rack", node.rack) if node.rack is not None else None
        self._insert(nodes, _node_row(node), "node", node.name, parent)
        return node

    def add_gpu(self, gpu: Gpu) -> Gpu:
        check_gpu(gpu)
        self._insert(gpus, _gpu_row(gpu), "gpu", gpu.key, (nodes, "node", gpu.node))
        return gpu

    def _insert(self, table: Table, row: dict[str, Any], kind: str, name: str,
                parent: tuple[Table, str, str] | None = None) -> None:
        try:
            with self._engine.begin() as conn:
                if parent is not None:
                    _need(conn, *parent)
                conn.execute(table.insert(), row)
        except IntegrityError:
            raise Conflict(f"{kind} {name!r} already exists", where=name,
                           hint="use upsert to replace it") from None

    # upsert --------------------------------------------------------------------------

    def upsert_site(self, site: Site) -> Site:
        check_name("site", site.name)
        self._upsert(sites, _site_row(site), ["name"])
        return site

    def upsert_room(self, room: Room) -> Room:
        check_name("room", room.name)
        self._upsert(rooms, _room_row(room), ["name"], (sites, "site", room.site))
        return room

    def upsert_rack(self, rack: Rack) -> Rack:
        check_name("rack", rack.name)
        self._upsert(racks, _rack_row(rack), ["name"], (rooms, "room", rack.room))
        return rack

    def upsert_node(self, node: Node) -> Node:
        check_node(node)
        parent = (racks, "rack", node.rack) if node.rack is not None else None
        self._upsert(nodes, _node_row(node), ["name"], parent)
        return node

    def upsert_gpu(self, gpu: Gpu) -> Gpu:
        check_gpu(gpu)
        self._upsert(gpus, _gpu_row(gpu), ["node", "index"], (nodes, "node", gpu.node))
        return gpu

    def _upsert(self, table: Table, row: dict[str, Any], keys: list[str],
                parent: tuple[Table, str, str] | None = None) -> None:
        try:
            with self._engine.begin() as conn:
                if parent is not None:
                    _need(conn, *parent)
                upsert(conn, table, row, keys)
        except IntegrityError as exc:
            raise Conflict(f"cannot store {table.name} {row.get('name', row)!r}: "
                           f"{exc.orig}", where=table.name) from None

    # get -----------------------------------------------------------------------------

    def get_site(self, name: str) -> Site:
        return _to_site(self._one(sites, "site", name, sites.c.name == name))

    def get_room(self, name: str) -> Room:
        return _to_room(self._one(rooms, "room", name, rooms.c.name == name))

    def get_rack(self, name: str) -> Rack:
        return _to_rack(self._one(racks, "rack", name, racks.c.name == name))

    def get_node(self, name: str) -> Node:
        return _to_node(self._one(nodes, "node", name, nodes.c.name == name))

    def get_gpu(self, node: str, index: int) -> Gpu:
        where = (gpus.c.node == node) & (gpus.c.index == index)
        return _to_gpu(self._one(gpus, "gpu", f"{node}/{index}", where))

    def _one(self, table: Table, kind: str, name: str, where: Any) -> Row[Any]:
        with self._engine.connect() as conn:
            row = conn.execute(select(table).where(where)).first()
        if row is None:
            raise NotFound(kind, name)
        return row

    # list ----------------------------------------------------------------------------

    def list_sites(self) -> list[Site]:
        return [_to_site(r) for r in self._all(select(sites).order_by(sites.c.name))]

    def list_rooms(self, site: str | None = None) -> list[Room]:
        stmt = select(rooms).order_by(rooms.c.name)
        if site is not None:
            stmt = stmt.where(rooms.c.site == site)
        return [_to_room(r) for r in self._all(stmt)]

    def list_racks(self, room: str | None = None) -> list[Rack]:
        stmt = select(racks).order_by(racks.c.name)
        if room is not None:
            stmt = stmt.where(racks.c.room == room)
        return [_to_rack(r) for r in self._all(stmt)]

    def list_nodes(self, rack: str | None = None, state: Lifecycle | None = None) -> list[Node]:
        stmt = select(nodes).order_by(nodes.c.name)
        if rack is not None:
            stmt = stmt.where(nodes.c.rack == rack)
        if state is not None:
            stmt = stmt.where(nodes.c.state == Lifecycle(state).value)
        return [_to_node(r) for r in self._all(stmt)]

    def list_gpus(self, node: str | None = None) -> list[Gpu]:
        stmt = select(gpus).order_by(gpus.c.node, gpus.c.index)
        if node is not None:
            stmt = stmt.where(gpus.c.node == node)
        return [_to_gpu(r) for r in self._all(stmt)]

    def _all(self, stmt: Any) -> list[Row[Any]]:
        with self._engine.connect() as conn:
            return list(conn.execute(stmt).all())

    # change --------------------------------------------------------------------------

    def set_node_state(self, name: str, state: Lifecycle) -> Node:
        value = Lifecycle(state).value
        with self._engine.begin() as conn:
            row = conn.execute(update(nodes).where(nodes.c.name == name)
                               .values(state=value).returning(*nodes.c)).first()
        if row is None:
            raise NotFound("node", name)
        return _to_node(row)

    def set_gpu_state(self, node: str, index: int, state: Lifecycle) -> Gpu:
        value = Lifecycle(state).value
        where = (gpus.c.node == node) & (gpus.c.index == index)
        with self._engine.begin() as conn:
            row = conn.execute(update(gpus).where(where).values(state=value)
                               .returning(*gpus.c)).first()
        if row is None:
            raise NotFound("gpu", f"{node}/{index}")
        return _to_gpu(row)

    def touch_node(self, name: str, seen_at: float) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(update(nodes).where(nodes.c.name == name)
                                .values(last_seen=seen_at))
        if done.rowcount == 0:
            raise NotFound("node", name)

    def delete(self, kind: str, name: str) -> None:
        chosen = parse_kind(kind)
        with self._engine.begin() as conn:
            if chosen is Kind.GPU:
                node, index = parse_gpu_key(name)
                gone = conn.execute(delete(gpus).where((gpus.c.node == node)
                                                       & (gpus.c.index == index)))
            elif chosen is Kind.NODE:
                conn.execute(delete(gpus).where(gpus.c.node == name))
                gone = conn.execute(delete(nodes).where(nodes.c.name == name))
            elif chosen is Kind.RACK:
                _no_children(conn, "rack", name, "nodes", nodes.c.rack)
                gone = conn.execute(delete(racks).where(racks.c.name == name))
            elif chosen is Kind.ROOM:
                _no_children(conn, "room", name, "racks", racks.c.room)
                gone = conn.execute(delete(rooms).where(rooms.c.name == name))
            else:
                _no_children(conn, "site", name, "rooms", rooms.c.site)
                gone = conn.execute(delete(sites).where(sites.c.name == name))
            if gone.rowcount == 0:
                raise NotFound(chosen.value, name)
        log.info("deleted %s %s", chosen.value, name)


_EXISTS = {t.name: select(t.c.name).where(t.c.name == bindparam("name"))
           for t in (sites, rooms, racks, nodes)}


def _need(conn: Connection, table: Table, kind: str, name: str) -> None:
    if conn.execute(_EXISTS[table.name], {"name": name}).first() is None:
        raise NotFound(kind, name)


def _no_children(conn: Connection, kind: str, name: str, children: str, column: Any) -> None:
    count = conn.execute(select(func.count()).where(column == name)).scalar_one()
    if count:
        raise Conflict(f"{kind} {name!r} still has {count} {children}", where=name,
                       hint=f"delete or move its {children} first")


def _site_row(site: Site) -> dict[str, Any]:
    return {"name": site.name, "description": site.description}


def _room_row(room: Room) -> dict[str, Any]:
    return {"name": room.name, "site": room.site, "description": room.description}


def _rack_row(rack: Rack) -> dict[str, Any]:
    return {"name": rack.name, "room": rack.room,
            "power_capacity_watts": rack.power_capacity_watts, "description": rack.description}


def _node_row(node: Node) -> dict[str, Any]:
    return {"name": node.name, "rack": node.rack, "state": Lifecycle(node.state).value,
            "gpu_model": node.gpu_model, "gpu_count": node.gpu_count,
            "labels": dict(node.labels), "last_seen": node.last_seen}


def _gpu_row(gpu: Gpu) -> dict[str, Any]:
    return {"node": gpu.node, "index": gpu.index, "uuid": gpu.uuid, "model": gpu.model,
            "state": Lifecycle(gpu.state).value}


def _to_site(row: Row[Any]) -> Site:
    return Site(row.name, row.description)


def _to_room(row: Row[Any]) -> Room:
    return Room(row.name, row.site, row.description)


def _to_rack(row: Row[Any]) -> Rack:
    return Rack(row.name, row.room, row.power_capacity_watts, row.description)


def _to_node(row: Row[Any]) -> Node:
    labels = {str(k): str(v) for k, v in (row.labels or {}).items()}
    return Node(row.name, row.rack, Lifecycle(row.state), row.gpu_model, row.gpu_count,
                labels, row.last_seen)


def _to_gpu(row: Row[Any]) -> Gpu:
    return Gpu(row.node, row._mapping["index"], row.uuid, row.model, Lifecycle(row.state))
