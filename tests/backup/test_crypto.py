"""Sealing: AES-256-GCM bound to what the bytes are, keyed chunk names, signatures."""

from __future__ import annotations

import pytest

from dcops.backup.crypto import OVERHEAD, MasterKey, Unsealed, content_name, open_with, seal_with


def test_seal_round_trip_and_overhead() -> None:
    master = MasterKey.generate()
    sealed = master.seal(b"weights", b"blob")
    assert len(sealed) == len(b"weights") + OVERHEAD
    assert master.open(sealed, b"blob") == b"weights"
    assert master.seal(b"weights", b"blob") != sealed  # a fresh nonce each time


def test_open_refuses_other_aad_other_key_and_changed_bytes() -> None:
    master = MasterKey.generate()
    sealed = master.seal(b"weights", b"blob")
    with pytest.raises(Unsealed):
        master.open(sealed, b"index")
    with pytest.raises(Unsealed):
        MasterKey.generate().open(sealed, b"blob")
    flipped = bytearray(sealed)
    flipped[OVERHEAD // 2] ^= 1
    with pytest.raises(Unsealed):
        master.open(bytes(flipped), b"blob")
    with pytest.raises(Unsealed, match="too short"):
        master.open(b"x" * (OVERHEAD - 1), b"blob")


def test_seal_with_a_raw_key() -> None:
    key = bytes(range(32))
    sealed = seal_with(key, b"secret", b"key")
    assert open_with(key, sealed, b"key") == b"secret"
    with pytest.raises(Unsealed):
        open_with(bytes(32), sealed, b"key")


def test_chunk_ids_are_keyed_and_content_names_are_not() -> None:
    a, b = MasterKey.generate(), MasterKey(b"\x01" * 32)
    assert a.chunk_id(b"data") == a.chunk_id(memoryview(b"data"))
    assert a.chunk_id(b"data") != b.chunk_id(b"data")
    assert len(a.chunk_id(b"data")) == 32
    assert content_name(b"data") == content_name(memoryview(b"data"))
    assert len(content_name(b"data")) == 64


def test_signatures_and_repr() -> None:
    master = MasterKey(b"\x02" * 32)
    signature = master.sign(b"manifest")
    assert master.verify(b"manifest", signature)
    assert not master.verify(b"manifest!", signature)
    assert not MasterKey.generate().verify(b"manifest", signature)
    assert "\\x02" not in repr(master) and "****" in repr(master)
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"short")
