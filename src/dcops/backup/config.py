"""A repository's settings, fixed when it is created: how files are cut into chunks and
how big pack files grow. Stored sealed in ``config``."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from dcops.backup.crypto import MasterKey, Unsealed
from dcops.backup.errors import BadRepository, Corrupt

FORMAT_VERSION = 1
CONFIG_AAD = b"config"
MiB = 1024 * 1024


@dataclass(frozen=True)
class RepoConfig:
    """Chunk sizes suit large tensors: FastCDC with a 1 MiB average (256 KiB to 8 MiB),
    its gear table seeded per repository so chunk boundaries say nothing across
    repositories; 16 MiB packs; zstd level 1 (at which compression keeps up with the disk
    on float weights)."""

    id: str = field(default_factory=lambda: secrets.token_hex(16))
    version: int = FORMAT_VERSION
    chunk_min: int = 256 * 1024
    chunk_avg: int = 1 * MiB
    chunk_max: int = 8 * MiB
    gear_seed: int = field(default_factory=lambda: secrets.randbits(62))
    pack_size: int = 16 * MiB
    zstd_level: int = 1

    def __post_init__(self) -> None:
        if not 64 <= self.chunk_min <= self.chunk_avg <= self.chunk_max <= 16 * MiB:
            raise ValueError("chunk sizes must satisfy 64 <= min <= avg <= max <= 16 MiB")
        if not MiB <= self.pack_size <= 1024 * MiB:
            raise ValueError("pack size must be between 1 MiB and 1 GiB")
        if not 0 <= self.zstd_level <= 22:
            raise ValueError("zstd level must be between 0 (off) and 22")

    def seal(self, master: MasterKey) -> bytes:
        return master.seal(json.dumps(asdict(self)).encode(), CONFIG_AAD)

    @classmethod
    def unseal(cls, master: MasterKey, data: bytes) -> RepoConfig:
        try:
            body: dict[str, Any] = json.loads(master.open(data, CONFIG_AAD))
        except Unsealed as exc:
            raise Corrupt(f"does not authenticate ({exc})", where="config") from None
        if body.get("version") != FORMAT_VERSION:
            raise BadRepository(f"repository format version {body.get('version')!r}; this "
                                f"dcops reads version {FORMAT_VERSION}", where="config")
        try:
            return cls(**{k: body[k] for k in cls.__dataclass_fields__ if k in body})
        except (TypeError, ValueError) as exc:
            raise Corrupt(f"does not parse ({exc})", where="config") from None
