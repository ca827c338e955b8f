"""Keys: a password or a key file opens the repository; the wrong one, or a damaged key
file, is reported as what it is."""

from __future__ import annotations

import json

import pytest

from dcops.backup.crypto import content_name
from dcops.backup.errors import BadRepository, Corrupt, WrongPassword
from dcops.backup.keys import FAST, Credential, add_key, describe, new_key_file_bytes, unlock
from dcops.backup.repository import Repository
from dcops.backup.storage import MemoryStorage
from dcops.core.secret import Secret
from tests.backup.conftest import PASSWORD, make_repo

OTHER = Credential(password=Secret("another password"))


def key_names(storage: MemoryStorage) -> list[str]:
    return sorted(name for name, _ in storage.list("keys"))


def test_password_opens_and_wrong_password_is_refused() -> None:
    storage = MemoryStorage()
    made = make_repo(storage)
    opened = Repository.open(storage, PASSWORD)
    assert opened.master.secret == made.master.secret
    assert opened.key_name == made.key_name
    with pytest.raises(WrongPassword, match="wrong password: none of the 1 keys"):
        Repository.open(storage, OTHER)


def test_key_file_opens_and_a_password_does_not_open_it() -> None:
    storage = MemoryStorage()
    key_file = Credential(key_file=new_key_file_bytes())
    made = make_repo(storage, key_file)
    assert Repository.open(storage, key_file).master.secret == made.master.secret
    # trailing whitespace (an editor's newline) does not matter
    assert key_file.key_file is not None
    padded = Credential(key_file=key_file.key_file.strip() + b"\r\n\n")
    assert Repository.open(storage, padded).key_name == made.key_name
    with pytest.raises(WrongPassword, match="wrong key file"):
        Repository.open(storage, Credential(key_file=new_key_file_bytes()))
    with pytest.raises(WrongPassword, match="wrong password"):
        Repository.open(storage, PASSWORD)


def test_a_second_key_and_either_opens() -> None:
    storage = MemoryStorage()
    made = make_repo(storage)
    key_file = Credential(key_file=new_key_file_bytes())
    second = add_key(storage, made.master, key_file, FAST)
    third = add_key(storage, made.master, OTHER, FAST)
    assert key_names(storage) == sorted([made.key_name, second, third])
    for credential, name in ((PASSWORD, made.key_name), (key_file, second), (OTHER, third)):
        opened = Repository.open(storage, credential)
        assert opened.key_name == name
        assert opened.master.secret == made.master.secret
        assert opened.config == made.config
    kinds = {describe(storage.load("keys", n), n)["kind"] for n in key_names(storage)}
    assert kinds == {"password", "key file"}


def test_damaged_key_is_reported_as_damaged_while_another_key_opens() -> None:
    storage = MemoryStorage()
    made = make_repo(storage)
    second = add_key(storage, made.master, OTHER, FAST)
    data = bytearray(storage.load("keys", made.key_name))
    data[len(data) // 2] ^= 0x20
    storage.files["keys", made.key_name] = bytes(data)
    assert Repository.open(storage, OTHER).key_name == second  # the other key still opens
    with pytest.raises(WrongPassword) as caught:
        Repository.open(storage, PASSWORD)
    assert f"keys/{made.key_name} is damaged" in str(caught.value)


def test_key_that_does_not_parse_is_named() -> None:
    storage = MemoryStorage()
    make_repo(storage)
    junk = b'{"version": 1}'
    storage.save("keys", content_name(junk), junk)
    with pytest.raises(WrongPassword) as caught:
        Repository.open(storage, OTHER)
    assert f"keys/{content_name(junk)}" in str(caught.value)
    assert "does not parse" in str(caught.value)


def test_no_keys_is_not_a_repository() -> None:
    with pytest.raises(BadRepository, match="no keys"):
        Repository.open(MemoryStorage(), PASSWORD)


def test_init_refuses_an_existing_repository() -> None:
    storage = MemoryStorage()
    make_repo(storage)
    with pytest.raises(BadRepository, match="already holds a repository"):
        make_repo(storage)


def test_key_file_holds_no_secret_in_the_clear() -> None:
    storage = MemoryStorage()
    made = make_repo(storage)
    body = json.loads(storage.load("keys", made.key_name))
    assert body["kdf"]["name"] == "argon2id"
    assert body["kdf"]["memory_kib"] == FAST.memory_kib
    assert made.master.secret.hex() not in json.dumps(body)
    assert "correct horse" not in json.dumps(body)
    assert "correct horse" not in repr(PASSWORD)


def test_credential_is_one_or_the_other() -> None:
    with pytest.raises(ValueError, match="not both"):
        Credential()
    with pytest.raises(ValueError, match="not both"):
        Credential(password=Secret("p"), key_file=b"k")


def test_damaged_config_raises_corrupt_naming_config() -> None:
    storage = MemoryStorage()
    make_repo(storage)
    data = bytearray(storage.load("config", "config"))
    data[-1] ^= 1
    storage.files["config", "config"] = bytes(data)
    with pytest.raises(Corrupt) as caught:
        Repository.open(storage, PASSWORD)
    assert caught.value.where == "config"


def test_unlock_returns_the_key_that_opened() -> None:
    storage = MemoryStorage()
    made = make_repo(storage)
    master, name = unlock(storage, PASSWORD)
    assert (master.secret, name) == (made.master.secret, made.key_name)
