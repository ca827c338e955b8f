"""Inventory endpoints: sites, rooms, racks, nodes and GPUs, with lifecycle changes audited."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dcops.access.model import AuditRecord, Role, Token
from dcops.api.auth import require
from dcops.api.body import read_body
from dcops.core.errors import Invalid
from dcops.fleet.model import Gpu, Lifecycle, Node, Rack, Room, Site
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["inventory"])
viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteIn(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class RoomIn(_In):
    name: str = Field(min_length=1, max_length=200)
    site: str = Field(min_length=1)
    description: str = ""


class RackIn(_In):
    name: str = Field(min_length=1, max_length=200)
    room: str = Field(min_length=1)
    power_capacity_watts: float | None = Field(None, gt=0)
    description: str = ""


class NodeIn(_In):
    name: str = Field(min_length=1, max_length=253)
    rack: str | None = None
    state: Lifecycle = Lifecycle.ACTIVE
    gpu_model: str = ""
    gpu_count: int = Field(0, ge=0, le=64)
    labels: dict[str, str] = Field(default_factory=dict)


class GpuIn(_In):
    node: str = Field(min_length=1)
    index: int = Field(ge=0, le=63)
    uuid: str = ""
    model: str = ""
    state: Lifecycle = Lifecycle.ACTIVE


class StateIn(_In):
    state: Lifecycle
    reason: str = ""


def _svc(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _out(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _audit(request: Request, action: str, target: str, **details: Any) -> None:
    token: Token = request.state.token
    services = _svc(request)
    services.audit.record(AuditRecord(services.clock.now(), f"token:{token.name}", action,
                                      target, details))


@router.get("/sites", dependencies=[viewer])
def list_sites(request: Request) -> list[dict[str, Any]]:
    return [_out(s) for s in _svc(request).inventory.list_sites()]


@router.post("/sites", dependencies=[operator], status_code=201)
def add_site(request: Request, body: SiteIn) -> dict[str, Any]:
    site = _svc(request).inventory.add_site(Site(**body.model_dump()))
    _audit(request, "site.create", f"site/{site.name}")
    return _out(site)


@router.get("/rooms", dependencies=[viewer])
def list_rooms(request: Request, site: str | None = None) -> list[dict[str, Any]]:
    return [_out(r) for r in _svc(request).inventory.list_rooms(site)]


@router.post("/rooms", dependencies=[operator], status_code=201)
def add_room(request: Request, body: RoomIn) -> dict[str, Any]:
    room = _svc(request).inventory.add_room(Room(**body.model_dump()))
    _audit(request, "room.create", f"room/{room.name}")
    return _out(room)


@router.get("/racks", dependencies=[viewer])
def list_racks(request: Request, room: str | None = None) -> list[dict[str, Any]]:
    return [_out(r) for r in _svc(request).inventory.list_racks(room)]


@router.post("/racks", dependencies=[operator], status_code=201)
def add_rack(request: Request, body: RackIn) -> dict[str, Any]:
    rack = _svc(request).inventory.add_rack(Rack(**body.model_dump()))
    _audit(request, "rack.create", f"rack/{rack.name}")
    return _out(rack)


@router.get("/nodes", dependencies=[viewer])
def list_nodes(request: Request, rack: str | None = None,
               state: Lifecycle | None = None) -> list[dict[str, Any]]:
    return [_out(n) for n in _svc(request).inventory.list_nodes(rack, state)]


@router.post("/nodes", dependencies=[operator], status_code=201)
def add_node(request: Request, body: NodeIn) -> dict[str, Any]:
    node = _svc(request).inventory.add_node(Node(**body.model_dump()))
    _audit(request, "node.create", f"node/{node.name}", state=node.state.value)
    return _out(node)


@router.get("/nodes/{name}", dependencies=[viewer])
def get_node(request: Request, name: str) -> dict[str, Any]:
    services = _svc(request)
    node = services.inventory.get_node(name)
    return _out(node) | {"gpus": [_out(g) for g in services.inventory.list_gpus(name)]}


@router.put("/nodes/{name}/state", dependencies=[operator])
def set_node_state(request: Request, name: str, body: StateIn) -> dict[str, Any]:
    services = _svc(request)
    before = services.inventory.get_node(name).state
    node = services.inventory.set_node_state(name, body.state)
    _audit(request, "node.state", f"node/{name}", before=before.value, after=body.state.value,
           reason=body.reason)
    return _out(node)


@router.get("/gpus", dependencies=[viewer])
def list_gpus(request: Request, node: str | None = None) -> list[dict[str, Any]]:
    return [_out(g) for g in _svc(request).inventory.list_gpus(node)]


@router.post("/gpus", dependencies=[operator], status_code=201)
def add_gpu(request: Request, body: GpuIn) -> dict[str, Any]:
    gpu = _svc(request).inventory.add_gpu(Gpu(**body.model_dump()))
    _audit(request, "gpu.create", f"gpu/{gpu.key}")
    return _out(gpu)


@router.put("/gpus/{node}/{index}/state", dependencies=[operator])
def set_gpu_state(request: Request, node: str, index: int, body: StateIn) -> dict[str, Any]:
    services = _svc(request)
    before = services.inventory.get_gpu(node, index).state
    gpu = services.inventory.set_gpu_state(node, index, body.state)
    _audit(request, "gpu.state", f"gpu/{node}/{index}", before=before.value,
           after=body.state.value, reason=body.reason)
    return _out(gpu)


def _delete_route(plural: str, singular: str) -> None:
    def delete(request: Request, name: str) -> None:
        _svc(request).inventory.delete(singular, name)
        _audit(request, f"{singular}.delete", f"{singular}/{name}")

    delete.__name__ = f"delete_{singular}"
    router.delete(f"/{plural}/{{name}}", dependencies=[operator], status_code=204)(delete)


for _plural, _singular in (("sites", "site"), ("rooms", "room"), ("racks", "rack"),
                           ("nodes", "node")):
    _delete_route(_plural, _singular)


@router.post("/inventory/import", dependencies=[operator])
async def import_inventory(request: Request,
                           format: str = Query("yaml", pattern="^(yaml|csv)$"),
                           ) -> dict[str, Any]:
    """Import a YAML or CSV inventory file sent as the request body."""
    from dcops.fleet.importer import apply_inventory, parse_inventory_text

    raw = await read_body(request)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise Invalid("inventory file is not UTF-8 text", where="body") from None
    doc = parse_inventory_text(text, format, source=request.query_params.get("name", "body"))
    services = _svc(request)
    result = await run_in_threadpool(apply_inventory, doc, services.inventory)
    summary = dataclasses.asdict(result)
    _audit(request, "inventory.import", "inventory", **summary)
    return summary


@router.get("/audit", dependencies=[Depends(require(Role.ADMIN))], tags=["access"])
def audit(request: Request, limit: int = Query(100, ge=1, le=10_000),
          target: str | None = None) -> list[dict[str, Any]]:
    return [_out(e) for e in _svc(request).audit.list(limit, target)]
