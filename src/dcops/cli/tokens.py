"""`dcops token ...`: API tokens (admin)."""

from __future__ import annotations

from pathlib import Path

import typer

from dcops.access.model import Role
from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, out, table

app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


@app.command("create")
@friendly
def create(name: str, role: Role = typer.Option(Role.VIEWER, help="viewer, operator or admin"),
           expires_in_s: float | None = None, server: str | None = ServerOpt,
           token_file: Path | None = TokenFileOpt) -> None:
    """Create a token and print its secret (shown once)."""
    made = client(server, token_file).post(
        "/api/v1/tokens", json={"name": name, "role": role.value, "expires_in_s": expires_in_s})
    out.print(f"token {made['id']} ({made['role']}) created; its secret, shown only now:")
    out.print(made["secret"], highlight=False)


@app.command("list")
@friendly
def list_(server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """List tokens (never their secrets)."""
    table(client(server, token_file).get("/api/v1/tokens"),
          ["id", "name", "role", "created_at", "expires_at", "revoked"], title="tokens")


@app.command("revoke")
@friendly
def revoke(token_id: str, server: str | None = ServerOpt,
           token_file: Path | None = TokenFileOpt) -> None:
    """Revoke a token by id."""
    client(server, token_file).delete(f"/api/v1/tokens/{token_id}")
    out.print(f"token {token_id} revoked")
