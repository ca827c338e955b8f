"""One contract for every TokenStore and AuditLog: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from dcops.access.model import AuditRecord, Role, hash_secret
from dcops.backends.sql.state import StateStore
from dcops.core.errors import NotFound

NOW = 1_700_000_000.0


def test_token_verifies_with_its_secret_only(state_store: StateStore) -> None:
    tokens = state_store.tokens
    token, secret = tokens.create("ops", Role.OPERATOR, NOW)
    assert secret.startswith(f"dcops_{token.id}_")
    assert token.secret_hash == hash_secret(secret) and secret not in repr(token)
    assert tokens.verify(secret, NOW + 1) == token
    assert tokens.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B"), NOW) is None
    assert tokens.verify(f"dcops_{token.id}_guess", NOW) is None
    assert tokens.verify("not-a-token", NOW) is None
    assert tokens.verify("dcops_ffffffffffff_x", NOW) is None


def test_expired_and_revoked_tokens_do_not_verify(state_store: StateStore) -> None:
    tokens = state_store.tokens
    short, short_secret = tokens.create("ci", Role.VIEWER, NOW, expires_at=NOW + 60)
    assert tokens.verify(short_secret, NOW + 59) == short
    assert tokens.verify(short_secret, NOW + 60) is None
    admin, admin_secret = tokens.create("root", Role.ADMIN, NOW + 1)
    revoked = tokens.revoke(admin.id)
    assert revoked.revoked and revoked.role is Role.ADMIN and revoked.id == admin.id
    assert tokens.verify(admin_secret, NOW + 2) is None
    assert [t.id for t in tokens.list()] == [short.id, admin.id]
    assert [t.revoked for t in tokens.list()] == [False, True]


def test_revoking_unknown_token_is_not_found(state_store: StateStore) -> None:
    try:
        state_store.tokens.revoke("nope")
    except NotFound as exc:
        assert (exc.kind, exc.id) == ("token", "nope")
    else:
        raise AssertionError("revoke of an unknown token must raise NotFound")


def test_audit_lists_newest_first_with_ids_and_filter(state_store: StateStore) -> None:
    audit = state_store.audit
    first = audit.record(AuditRecord(NOW, "alice", "node.drain", "node/n1", {"reason": "xid 79"}))
    audit.record(AuditRecord(NOW + 1, "bob", "token.create", "token/abc"))
    third = audit.record(AuditRecord(NOW + 2, "alice", "node.resume", "node/n1", {"n": 1}))
    assert first.id == 1 and third.id == 3
    assert first == AuditRecord(NOW, "alice", "node.drain", "node/n1", {"reason": "xid 79"}, 1)
    assert [e.id for e in audit.list()] == [3, 2, 1]
    assert [e.id for e in audit.list(limit=2)] == [3, 2]
    assert audit.list(target="node/n1") == [third, first]
    assert audit.list(target="nothing") == []


def test_meta_keeps_values_by_key(state_store: StateStore) -> None:
    meta = state_store.meta
    assert meta.get("admin_token_created") is None
    meta.set("admin_token_created", "1")
    meta.set("admin_token_created", "2")
    assert meta.get("admin_token_created") == "2"


def test_long_free_text_is_kept_whole(state_store: StateStore) -> None:
    long = "x" * 5000
    state_store.tokens.create(long, Role.VIEWER, NOW)
    assert state_store.tokens.list()[0].name == long
    entry = state_store.audit.record(AuditRecord(NOW, long, long, long[:900]))
    assert state_store.audit.list(target=long[:900]) == [entry]
