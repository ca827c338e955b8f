"""Key files: the master secret, wrapped under a password or a key file.

A key file is JSON (not encrypted, it holds nothing secret in the clear): how its wrapping
key is derived (Argon2id with its salt and costs, or HKDF from a key file's bytes), the
wrapped master secret, and who created it, when. Any key of a repository opens it; keys
are added and removed without touching the data.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dcops.backup import locks
from dcops.backup.crypto import MasterKey, Unsealed, content_name, open_with, seal_with
from dcops.backup.errors import BadRepository, WrongPassword
from dcops.backup.storage import Storage
from dcops.core.errors import Invalid
from dcops.core.secret import Secret

KEY_AAD = b"dcops-backup key"


@dataclass(frozen=True)
class KdfCost:
    """Argon2id's costs: passes, memory in KiB, lanes. The default takes about 0.1 s and
    64 MiB, as Argon2's RFC recommends for interactive use on a machine like a server."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 2


FAST = KdfCost(time_cost=1, memory_kib=8, parallelism=1)  # tests only: no protection


@dataclass(frozen=True)
class Credential:
    """What opens a repository: a password, or the bytes of a key file."""

    password: Secret | None = None
    key_file: bytes | None = None

    def __post_init__(self) -> None:
        if (self.password is None) == (self.key_file is None):
            raise ValueError("a credential is a password or a key file, not both")

    def __repr__(self) -> str:
        return "Credential(password=****)" if self.password else "Credential(key_file=****)"


def new_key_file_bytes() -> bytes:
    """Contents for a new key file: 32 random bytes, base64 (keep it like a password)."""
    return base64.b64encode(os.urandom(32)) + b"\n"


def _wrapping_key(credential: Credential, kdf: dict[str, Any]) -> bytes:
    salt = base64.b64decode(kdf["salt"])
    if kdf["name"] == "argon2id" and credential.password is not None:
        return hash_secret_raw(credential.password.reveal().encode(), salt,
                               time_cost=int(kdf["time_cost"]),
                               memory_cost=int(kdf["memory_kib"]),
                               parallelism=int(kdf["parallelism"]), hash_len=32, type=Type.ID)
    if credential.key_file is None:
        raise ValueError("this key opens with a password, not a key file")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=b"dcops-backup key file").derive(credential.key_file.strip())


def make_key(master: MasterKey, credential: Credential, cost: KdfCost = KdfCost()) -> bytes:
    """The bytes of a new key file wrapping `master` under `credential`."""
    salt = base64.b64encode(os.urandom(16)).decode()
    kdf: dict[str, Any]
    if credential.password is not None:
        kdf = {"name": "argon2id", "salt": salt, "time_cost": cost.time_cost,
               "memory_kib": cost.memory_kib, "parallelism": cost.parallelism}
    else:
        kdf = {"name": "hkdf-sha256", "salt": salt}
    wrapped = seal_with(_wrapping_key(credential, kdf), master.secret, KEY_AAD)
    body = {"version": 1, "kdf": kdf, "wrapped": base64.b64encode(wrapped).decode(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "user": getpass.getuser()}
    return json.dumps(body, indent=1).encode()


def add_key(storage: Storage, master: MasterKey, credential: Credential,
            cost: KdfCost = KdfCost()) -> str:
    """Store a new key for `master`; returns its name."""
    data = make_key(master, credential, cost)
    name = content_name(data)
    storage.save("keys", name, data)
    return name


def describe(data: bytes, name: str) -> dict[str, Any]:
    """What `backup key list` shows of a key file."""
    body = _parse(data, name)
    return {"id": name, "kind": "password" if body["kdf"]["name"] == "argon2id" else "key file",
            "created": body.get("created"), "host": body.get("host"), "user": body.get("user")}


def list_keys(storage: Storage, current: str) -> list[dict[str, Any]]:
    """Each key's `describe`, and whether it is `current` (the one in use)."""
    return [describe(storage.load("keys", name), name) | {"current": name == current}
            for name, _ in storage.list("keys")]


def remove_key(storage: Storage, master: MasterKey, current: str, key_id: str) -> str:
    """Remove the key whose name is or starts with `key_id`, under the exclusive lock;
    never `current` (the one in use, so never the last). Its full name."""
    matches = [n for n, _ in storage.list("keys") if n.startswith(key_id)]
    if len(matches) != 1:
        raise Invalid(f"key {key_id!r} matches {len(matches)} keys", where="key id",
                      hint="`dcops backup key list` shows their ids")
    if matches[0] == current:
        raise Invalid("that is the key in use; open with another key to remove it",
                      where="key id")
    with locks.hold(storage, master, exclusive=True, operation="key remove"):
        storage.remove("keys", matches[0])
    return matches[0]


def _parse(data: bytes, name: str) -> dict[str, Any]:
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("version") != 1:
            raise ValueError("not a version 1 key")
        if not all(isinstance(x, str) for x in (body["kdf"]["name"], body["kdf"]["salt"],
                                                body["wrapped"])):
            raise ValueError("kdf name, salt and wrapped key must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRepository(f"key file does not parse: {exc}", where=f"keys/{name}") from None
    return body


def open_key(data: bytes, name: str, credential: Credential) -> MasterKey | None:
    """The master key this key file wraps, or None when `credential` is not its key."""
    body = _parse(data, name)
    kdf = body["kdf"]
    wants_password = kdf["name"] == "argon2id"
    if wants_password != (credential.password is not None):
        return None
    try:
        secret = open_with(_wrapping_key(credential, kdf), base64.b64decode(body["wrapped"]),
                           KEY_AAD)
    except (Unsealed, ValueError):
        return None
    return MasterKey(secret)


def unlock(storage: Storage, credential: Credential) -> tuple[MasterKey, str]:
    """The master key and the name of the key that opened it; `WrongPassword` if none."""
    names = [name for name, _ in storage.list("keys")]
    if not names:
        raise BadRepository(f"no keys in {storage.location}: not a dcops backup repository, "
                            "or not initialised (run `dcops backup init`)")
    problems: list[str] = []
    for name in sorted(names):
        data = storage.load("keys", name)
        if content_name(data) != name:
            problems.append(f"keys/{name} is damaged (its contents do not hash to its name)")
            continue
        try:
            master = open_key(data, name, credential)
        except BadRepository as exc:
            problems.append(str(exc))
            continue
        if master is not None:
            return master, name
    what = "password" if credential.password is not None else "key file"
    extra = f"; unreadable keys: {'; '.join(problems)}" if problems else ""
    raise WrongPassword(f"wrong {what}: none of the {len(names)} keys of "
                        f"{storage.location} opens with it{extra}")
