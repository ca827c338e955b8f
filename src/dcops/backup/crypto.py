"""The repository's keys and how its bytes are sealed.

One random 32-byte master secret per repository; from it, by HKDF-SHA256, three keys: one
for AES-256-GCM (every blob, pack header, index, snapshot and the config), one for the
keyed BLAKE3 hash that names chunks (so the names of chunks say nothing about their
contents to someone without the key), and one that signs snapshot manifests. The master
secret itself is stored only wrapped, in key files (``keys.py``), each under a key
derived from a password (Argon2id) or a key file.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12
TAG = 16
OVERHEAD = NONCE + TAG  # bytes a sealed message adds to its plaintext


class Unsealed(Exception):
    """A sealed message that did not authenticate: wrong key, or changed bytes."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dcops-backup " + purpose).derive(secret)


def seal_with(key: bytes, plaintext: bytes | memoryview, aad: bytes) -> bytes:
    """``nonce || AES-256-GCM(plaintext) || tag`` under `key`, bound to `aad`."""
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_with(key: bytes, sealed: bytes | memoryview, aad: bytes) -> bytes:
    """The plaintext of `seal_with`'s output; `Unsealed` when it does not authenticate."""
    if len(sealed) < OVERHEAD:
        raise Unsealed("too short to be sealed")
    view = memoryview(sealed)
    try:
        return AESGCM(key).decrypt(bytes(view[:NONCE]), view[NONCE:], aad)
    except InvalidTag:
        raise Unsealed("authentication failed") from None


class MasterKey:
    """The keys of one repository, derived from its master secret."""

    __slots__ = ("_aead", "_id_key", "_sign_key", "secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError("a master secret is 32 bytes")
        self.secret = secret
        self._aead = AESGCM(_derive(secret, b"encrypt"))
        self._id_key = _derive(secret, b"chunk-id")
        self._sign_key = _derive(secret, b"sign")

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32))

    def __repr__(self) -> str:
        return "MasterKey(****)"

    def seal(self, plaintext: bytes | memoryview, aad: bytes) -> bytes:
        """``nonce || ciphertext || tag``, bound to `aad` (what the bytes are)."""
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes | memoryview, aad: bytes) -> bytes:
        """The plaintext of `seal`'s output; `Unsealed` when it does not authenticate."""
        if len(sealed) < OVERHEAD:
            raise Unsealed("too short to be sealed")
        view = memoryview(sealed)
        try:
            return self._aead.decrypt(bytes(view[:NONCE]), view[NONCE:], aad)
        except InvalidTag:
            raise Unsealed("authentication failed") from None

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        """The 32-byte keyed BLAKE3 hash that names a chunk."""
        return blake3.blake3(data, key=self._id_key).digest()

    def sign(self, message: bytes) -> str:
        return hmac.new(self._sign_key, message, hashlib.sha256).hexdigest()

    def verify(self, message: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


def content_name(data: bytes | memoryview) -> str:
    """The name of a pack or snapshot file: the unkeyed BLAKE3 hash of its bytes, so that
    anyone can check a file is whole without the key."""
    return blake3.blake3(data).hexdigest()
