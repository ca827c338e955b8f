"""`dcops backup ...` end to end through the command line: a repository made, backed up
twice, listed, diffed, restored byte for byte, checked, a damaged pack found and named,
snapshots forgotten and pruned, keys added and removed; and clear errors for a wrong
password, a missing path and a missing repository, with `dcops` dispatching `backup`
before the rest of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli.backup import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pw").write_text("correct horse\n")
    monkeypatch.setenv("DCOPS_BACKUP_REPOSITORY", str(tmp_path / "repo"))
    monkeypatch.setenv("DCOPS_BACKUP_PASSWORD_FILE", str(tmp_path / "pw"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "weights.bin").write_bytes(os.urandom(3_000_000))
    (src / "config.json").write_text('{"layers": 80}')
    return tmp_path


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def snapshots() -> list[dict[str, object]]:
    found: list[dict[str, object]] = json.loads(ok("snapshots", "--json"))
    return found


def test_backup_restore_check_forget_prune(env: Path) -> None:
    src = env / "src"
    assert "created repository" in ok("init")
    first = json.loads(ok("run", str(src), "--tag", "nightly", "--json"))
    assert first["summary"]["files_new"] == 2 and first["tags"] == ["nightly"]
    (src / "config.json").write_text('{"layers": 81}')
    second = json.loads(ok("run", str(src), "--json"))
    assert second["summary"]["files_unchanged"] == 1
    assert second["summary"]["files_changed"] == 1
    assert [s["id"] for s in snapshots()] == [first["id"], second["id"]]
    assert str(src / "config.json") in ok("ls", "latest")
    changes = json.loads(ok("diff", str(first["id"])[:8], "latest", "--json"))
    assert changes["modified"] == [str(src / "config.json")]

    target = env / "out"
    ok("restore", "latest", "--target", str(target))
    restored = target / str(src).lstrip("/")
    assert (restored / "sub" / "weights.bin").read_bytes() == (
        src / "sub" / "weights.bin").read_bytes()
    assert (restored / "config.json").read_text() == '{"layers": 81}'
    report = json.loads(ok("check", "--read-data", "--json"))
    assert report["ok"] is True and report["problems"] == []
    (target / ".dcops-restore.json").write_text(json.dumps({"snapshot": second["id"]}))
    again = ok("restore", "latest", "--target", str(target))  # as if the last was killed
    assert f"(of snapshot {str(second['id'])[:8]}) was cut off" in " ".join(again.split())
    assert "2 already in place, verified" in again

    assert "removed 1" in ok("forget", "--keep-last", "1", "--prune")
    assert [s["id"] for s in snapshots()] == [second["id"]]
    assert json.loads(ok("check", "--read-data", "--json"))["ok"] is True


def test_damaged_pack_is_named_and_restore_says_which_file(env: Path) -> None:
    ok("init")
    ok("run", str(env / "src"))
    packs = sorted(p for p in (env / "repo" / "data").rglob("*") if p.is_file())
    biggest = max(packs, key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 3] ^= 0x40
    biggest.write_bytes(bytes(data))
    result = runner.invoke(app, ["check", "--read-data", "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    assert {p["file"] for p in problems} == {f"data/{biggest.name}"}
    assert any(str(env / "src" / "sub" / "weights.bin") in p["paths"] for p in problems)
    result = runner.invoke(app, ["restore", "latest", "--target", str(env / "out")])
    assert result.exit_code == 1
    assert "not restored" in result.output and "weights.bin" in result.output
    restored = env / "out" / str(env / "src").lstrip("/")
    assert not (restored / "sub" / "weights.bin").exists()
    assert (restored / "config.json").read_text() == '{"layers": 80}'


def test_keys(env: Path) -> None:
    ok("init")
    (env / "pw2").write_text("second password\n")
    ok("key", "add", "--new-password-file", str(env / "pw2"))
    keys = json.loads(ok("key", "list", "--json"))
    assert len(keys) == 2
    other = next(k["id"] for k in keys if not k["current"])
    ok("snapshots", "--password-file", str(env / "pw2"))
    result = runner.invoke(app, ["key", "remove", next(k["id"] for k in keys if k["current"])])
    assert result.exit_code == 1 and "in use" in result.output
    ok("key", "remove", other[:8])
    assert len(json.loads(ok("key", "list", "--json"))) == 1


def test_clear_errors(env: Path) -> None:
    ok("init")
    (env / "wrong").write_text("nope\n")
    result = runner.invoke(app, ["snapshots", "--password-file", str(env / "wrong")])
    assert result.exit_code == 1 and "wrong password" in result.output
    result = runner.invoke(app, ["run", str(env / "no-such-dir")])
    assert result.exit_code == 1 and "not found" in result.output
    result = runner.invoke(app, ["snapshots", "--repo", str(env / "empty")])
    assert result.exit_code == 1 and "not initialised" in " ".join(result.output.split())
    result = runner.invoke(app, ["restore", "nope", "--target", str(env / "x")])
    assert result.exit_code == 1 and "not found" in result.output
    result = runner.invoke(app, ["forget"])
    assert result.exit_code == 1 and "keeps nothing" in result.output
    assert "Traceback" not in result.output


def test_the_dcops_command_dispatches_backup(env: Path) -> None:
    reply = subprocess.run([sys.executable, "-m", "dcops", "backup", "init"],
                           capture_output=True, text=True, env=os.environ, timeout=60)
    assert reply.returncode == 0, reply.stderr
    assert "created repository" in reply.stdout
