"""`dcops inventory ...`: list, add, change state and import, through the API."""

from __future__ import annotations

from pathlib import Path

import typer

from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, out, table
from dcops.core.errors import Invalid
from dcops.fleet.model import Lifecycle

app = typer.Typer(help="Sites, rooms, racks, nodes and GPUs.", no_args_is_help=True)

COLUMNS = {
    "sites": ["name", "description"],
    "rooms": ["name", "site", "description"],
    "racks": ["name", "room", "power_capacity_watts"],
    "nodes": ["name", "rack", "state", "gpu_model", "gpu_count", "last_seen"],
    "gpus": ["node", "index", "uuid", "model", "state"],
}


@app.command("list")
@friendly
def list_(kind: str = typer.Argument(..., help="sites, rooms, racks, nodes or gpus"),
          server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """List inventory objects of one kind."""
    if kind not in COLUMNS:
        raise Invalid(f"unknown kind {kind!r}", where="KIND",
                      hint="one of " + ", ".join(COLUMNS))
    table(client(server, token_file).get(f"/api/v1/{kind}"), COLUMNS[kind], title=kind)


@app.command("add-site")
@friendly
def add_site(name: str, description: str = "", server: str | None = ServerOpt,
             token_file: Path | None = TokenFileOpt) -> None:
    """Add a site."""
    client(server, token_file).post("/api/v1/sites",
                                    json={"name": name, "description": description})
    out.print(f"site {name} added")


@app.command("add-room")
@friendly
def add_room(name: str, site: str = typer.Option(..., help="site the room is in"),
             server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Add a room (data hall) to a site."""
    client(server, token_file).post("/api/v1/rooms", json={"name": name, "site": site})
    out.print(f"room {name} added")


@app.command("add-rack")
@friendly
def add_rack(name: str, room: str = typer.Option(..., help="room the rack is in"),
             power_capacity_watts: float | None = None, server: str | None = ServerOpt,
             token_file: Path | None = TokenFileOpt) -> None:
    """Add a rack to a room."""
    client(server, token_file).post("/api/v1/racks", json={
        "name": name, "room": room, "power_capacity_watts": power_capacity_watts})
    out.print(f"rack {name} added")


@app.command("add-node")
@friendly
def add_node(name: str, rack: str | None = None, gpu_model: str = "", gpu_count: int = 0,
             state: Lifecycle = Lifecycle.ACTIVE, server: str | None = ServerOpt,
             token_file: Path | None = TokenFileOpt) -> None:
    """Add a node (server) to a rack."""
    client(server, token_file).post("/api/v1/nodes", json={
        "name": name, "rack": rack, "gpu_model": gpu_model, "gpu_count": gpu_count,
        "state": state.value})
    out.print(f"node {name} added")


@app.command("set-state")
@friendly
def set_state(node: str, state: Lifecycle, reason: str = "",
              gpu: int | None = typer.Option(None, help="change one GPU of the node"),
              server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Move a node (or one of its GPUs) to a lifecycle state."""
    path = f"/api/v1/nodes/{node}/state" if gpu is None else f"/api/v1/gpus/{node}/{gpu}/state"
    client(server, token_file).put(path, json={"state": state.value, "reason": reason})
    out.print(f"{node}{'' if gpu is None else f'/{gpu}'} is now {state.value}")


@app.command("import")
@friendly
def import_(path: Path, server: str | None = ServerOpt,
            token_file: Path | None = TokenFileOpt) -> None:
    """Import a YAML or CSV inventory file (format chosen by extension)."""
    fmt = "csv" if path.suffix.lower() == ".csv" else "yaml"
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read: {exc.strerror}", where=str(path)) from None
    result = client(server, token_file).post("/api/v1/inventory/import", content=content,
                                             params={"format": fmt, "name": path.name})
    out.print(result)
