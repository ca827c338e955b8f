"""`dcops backup ...`: deduplicated, encrypted backups, with the verbs restic users know.
These work on the repository directly; no server needed.

    dcops backup init --repo /backups/ckpt          (or DCOPS_BACKUP_REPOSITORY)
    dcops backup run /ckpt/run-42 [--tag nightly] [--exclude '*.tmp']
    dcops backup snapshots [--json]
    dcops backup ls latest
    dcops backup restore latest --target /restore [--include '/ckpt/run-42/step-100*']
    dcops backup diff SNAP1 SNAP2
    dcops backup check [--read-data]
    dcops backup key list|add|remove

The password comes from --password-file, DCOPS_BACKUP_PASSWORD_FILE, DCOPS_BACKUP_PASSWORD
or a prompt; --key-file (DCOPS_BACKUP_KEY_FILE) opens with a key file instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as Bar

from dcops.backup import locks
from dcops.backup.keys import Credential, add_key, list_keys, new_key_file_bytes, remove_key
from dcops.backup.progress import Progress
from dcops.backup.repository import Repository
from dcops.backup.storage import Storage
from dcops.cli.common import err, friendly, out, table
from dcops.core.errors import Invalid
from dcops.core.secret import Secret

app = typer.Typer(help="Backups of checkpoints, datasets and the control plane's state.",
                  no_args_is_help=True)
key_app = typer.Typer(help="Keys that open the repository.", no_args_is_help=True)
app.add_typer(key_app, name="key")

RepoOpt = typer.Option(None, "--repo", "-r", envvar="DCOPS_BACKUP_REPOSITORY",
                       help="repository: a directory, or s3:http://host:port/bucket/prefix")
PasswordFileOpt = typer.Option(None, "--password-file", envvar="DCOPS_BACKUP_PASSWORD_FILE",
                               help="file holding the repository password")
KeyFileOpt = typer.Option(None, "--key-file", envvar="DCOPS_BACKUP_KEY_FILE",
                          help="key file to open the repository with instead of a password")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _storage(repo: str | None) -> Storage:
    if not repo:
        raise Invalid("no repository given", hint="pass --repo or set DCOPS_BACKUP_REPOSITORY")
    from dcops.backends.backup_location import backup_storage  # not wiring: see there

    return backup_storage(repo)


def _credential(password_file: Path | None, key_file: Path | None,
                confirm: bool = False) -> Credential:
    if key_file is not None:
        try:
            return Credential(key_file=key_file.read_bytes())
        except OSError as exc:
            raise Invalid(f"cannot read key file: {exc.strerror}", where=str(key_file)) from None
    if password_file is not None:
        try:
            text = password_file.read_text().rstrip("\n")
        except OSError as exc:
            raise Invalid(f"cannot read password file: {exc.strerror}",
                          where=str(password_file)) from None
        if not text:
            raise Invalid("the password file is empty", where=str(password_file))
        return Credential(password=Secret(text))
    env = os.environ.get("DCOPS_BACKUP_PASSWORD")
    if env:
        return Credential(password=Secret(env))
    if not sys.stdin.isatty():
        raise Invalid("no password given", hint="pass --password-file, set "
                      "DCOPS_BACKUP_PASSWORD_FILE or DCOPS_BACKUP_PASSWORD, or run in a terminal")
    text = typer.prompt("repository password", hide_input=True,
                        confirmation_prompt=confirm)
    return Credential(password=Secret(text))


def _open(repo: str | None, password_file: Path | None, key_file: Path | None,
          load_index: bool = True) -> Repository:
    return Repository.open(_storage(repo), _credential(password_file, key_file),
                           load_index=load_index)


def _create_key_file(path: Path) -> bytes:
    """Write a new key file (mode 0600, never over an existing file); its contents."""
    data = new_key_file_bytes()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise Invalid("the key file exists; not overwritten", where=str(path)) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return data


@contextmanager
def _bar(what: str, json_out: bool) -> Iterator[Any]:
    """A progress bar on stderr (bytes, files, rate, ETA); a callback for the operation."""
    bar = Bar(TextColumn(f"[bold]{what}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
              MofNCompleteColumn(), TextColumn("files"), TimeRemainingColumn(),
              console=err, transient=True, disable=json_out or not err.is_terminal)
    task = bar.add_task(what, total=None)

    def show(p: Progress) -> None:
        bar.update(task, completed=p.bytes_done, total=p.bytes_total or None)

    with bar:
        yield show


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


@app.command("init")
@friendly
def init(repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
         key_file: Path | None = KeyFileOpt,
         new_key_file: Path | None = typer.Option(
             None, "--new-key-file", help="create a key file here and use it as the key")
         ) -> None:
    """Create a new repository."""
    storage = _storage(repo)
    create = getattr(storage, "create_bucket_if_missing", None)
    if create is not None:
        create()
    if new_key_file is not None:
        _create_key_file(new_key_file)
        key_file = new_key_file
    created = Repository.init(storage, _credential(password_file, key_file, confirm=True))
    out.print(f"created repository {created.config.id[:10]} at {storage.location}")
    out.print("[yellow]keep the password (or key file) safe: without it the data cannot be "
              "read back[/yellow]")


@app.command("run")
@friendly
def run(paths: list[Path] = typer.Argument(..., help="files and directories to back up"),
        tag: list[str] = typer.Option([], "--tag", help="tag the snapshot (repeatable)"),
        exclude: list[str] = typer.Option([], "--exclude", help="skip paths matching a glob"),
        parent: str | None = typer.Option(None, "--parent", help="snapshot to compare with"),
        force: bool = typer.Option(False, "--force", help="read every file, even unchanged"),
        host: str | None = typer.Option(None, "--host", help="host name to record"),
        repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
        key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """Back up PATHS into a new snapshot."""
    from dcops.backup.archiver import backup

    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        raise Invalid(f"not found: {', '.join(missing)}", where="backup run")
    repository = _open(repo, password_file, key_file)
    with _bar("backup", json_out) as show:
        snap = backup(repository, paths, tags=tag, excludes=exclude, parent=parent,
                      force=force, host=host, progress=show)
    s = snap.summary
    if json_out:
        out.print_json(json.dumps(snap.describe()))
    else:
        out.print(f"files: {s.files_new} new, {s.files_changed} changed, "
                  f"{s.files_unchanged} unchanged; {s.dirs} directories")
        out.print(f"added {_size(s.bytes_added)} ({_size(s.bytes_stored)} stored) of "
                  f"{_size(s.bytes)}, read {_size(s.bytes_read)} in {s.seconds:.1f} s")
        out.print(f"snapshot [bold]{snap.short_id}[/bold] saved")
    for problem in s.errors:
        err.print(f"[yellow]not backed up:[/yellow] {problem}", highlight=False,
                  soft_wrap=True)
    if s.errors:
        raise typer.Exit(3)  # as restic: a snapshot was made, but some files are missing


@app.command("snapshots")
@friendly
def snapshots(tag: list[str] = typer.Option([], "--tag", help="only snapshots with this tag"),
              host: str | None = typer.Option(None, "--host"),
              repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
              key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """List snapshots, oldest first."""
    found = _open(repo, password_file, key_file, load_index=False).snapshots()
    found = [s for s in found if (not tag or set(tag) <= set(s.tags))
             and (host is None or s.host == host)]
    if json_out:
        out.print_json(json.dumps([s.describe() for s in found]))
        return
    table([{"id": s.short_id, "time": s.time.strftime("%Y-%m-%d %H:%M:%S"), "host": s.host,
            "tags": ",".join(s.tags), "paths": "\n".join(s.paths),
            "size": _size(s.summary.bytes)} for s in found],
          ["id", "time", "host", "tags", "paths", "size"])
    out.print(f"{len(found)} snapshots")


@app.command("ls")
@friendly
def ls(snapshot: str = typer.Argument(..., help="snapshot id, prefix or `latest`"),
       repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
       key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """List the files of a snapshot."""
    repository = _open(repo, password_file, key_file)
    entries = list(repository.load_tree(repository.find_snapshot(snapshot)))
    if json_out:
        out.print_json(json.dumps([e.to_json() | {"chunks": len(e.chunks)} for e in entries]))
        return
    for e in entries:
        out.print(f"{e.type.value:7s} {oct(e.mode)[2:]:>4s} {e.size:>14d}  {e.path}",
                  highlight=False)


@app.command("restore")
@friendly
def restore(snapshot: str = typer.Argument(..., help="snapshot id, prefix or `latest`"),
            target: Path = typer.Option(..., "--target", help="directory to restore into"),
            include: list[str] = typer.Option([], "--include",
                                              help="restore only paths matching a glob"),
            repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
            key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """Restore a snapshot under TARGET (files keep their full paths beneath it)."""
    from dcops.backup.restorer import restore as run_restore

    repository = _open(repo, password_file, key_file)
    snap = repository.find_snapshot(snapshot)
    with _bar("restore", json_out) as show:
        result = run_restore(repository, snap, target, include=include, progress=show)
    if json_out:
        out.print_json(json.dumps(result.to_json()))
    else:
        cut = result.interrupted
        if cut is not None:
            left = cut.get("partial") or []
            assert isinstance(left, list)
            err.print(f"[yellow]an earlier restore into {target} (of snapshot "
                      f"{str(cut.get('snapshot') or 'unknown')[:8]}) was cut off[/yellow]; "
                      f"{len(left)} partial files it left were removed"
                      f"{': ' + ', '.join(left[:5]) if left else ''}"
                      f"{' ...' if len(left) > 5 else ''}", highlight=False, soft_wrap=True)
        kept = f" ({result.kept} already in place, verified)" if result.kept else ""
        out.print(f"restored {result.files} files{kept}, {_size(result.bytes)} from snapshot "
                  f"{snap.short_id} to {target} in {result.seconds:.1f} s")
    for path, why in sorted(result.failed.items()):
        err.print(f"[red]not restored:[/red] {path}: {why}", highlight=False,
                  soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)


@app.command("diff")
@friendly
def diff(first: str = typer.Argument(...), second: str = typer.Argument(...),
         repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
         key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """What changed from snapshot FIRST to snapshot SECOND."""
    from dcops.backup.diff import diff as compare

    repository = _open(repo, password_file, key_file)
    a, b = repository.find_snapshot(first), repository.find_snapshot(second)

    def size(blob_id: bytes) -> int:
        where = repository.index.get(blob_id)
        return where.raw_length if where else 0

    result = compare(repository.load_tree(a), repository.load_tree(b), size)
    if json_out:
        out.print_json(json.dumps(result.to_json()))
        return
    for line in result.lines():
        out.print(line, highlight=False)
    out.print(f"{len(result.added)} added, {len(result.removed)} removed, "
              f"{len(result.modified)} modified; +{_size(result.bytes_added)} "
              f"-{_size(result.bytes_removed)}")


@app.command("check")
@friendly
def check(read_data: bool = typer.Option(False, "--read-data",
                                         help="read and authenticate every blob"),
          repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
          key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """Check the repository; with --read-data, every byte of it. Exit 1 on errors."""
    from dcops.backup.checker import Problem
    from dcops.backup.checker import check as run_check
    from dcops.backup.errors import BadRepository, Corrupt

    try:
        repository = _open(repo, password_file, key_file)
    except (Corrupt, BadRepository) as exc:  # a damaged config or key: say so and fail
        if not json_out:
            raise
        problem = Problem("unreadable", exc.where or "config", exc.message)
        out.print_json(json.dumps({"ok": False, "problems": [problem.to_json()]}))
        raise typer.Exit(1) from None
    with _bar("check", json_out) as show:
        result = run_check(repository, read_data=read_data, progress=show)
    if json_out:
        out.print_json(json.dumps(result.to_json()))
    else:
        for p in result.problems:
            colour = "red" if p.severity == "error" else "yellow"
            out.print(f"[{colour}]{p.severity}:[/{colour}] {p.file}: {p.message}",
                      highlight=False, soft_wrap=True)
            if p.paths:
                out.print(f"  affects {len(p.snapshots)} snapshots, {len(p.paths)} paths: "
                          f"{', '.join(p.paths[:5])}{' ...' if len(p.paths) > 5 else ''}",
                          highlight=False)
        read = f", read {_size(result.bytes_read)}" if read_data else ""
        verdict = "no errors were found" if result.ok else "[red]errors were found[/red]"
        out.print(f"checked {result.snapshots} snapshots, {result.packs} packs, "
                  f"{result.blobs} blobs{read}: {verdict}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("forget")
@friendly
def forget(keep_last: int = typer.Option(0, "--keep-last", help="the N newest snapshots"),
           keep_hourly: int = typer.Option(0, "--keep-hourly", help="the newest of N hours"),
           keep_daily: int = typer.Option(0, "--keep-daily", help="the newest of N days"),
           keep_weekly: int = typer.Option(0, "--keep-weekly", help="... of N ISO weeks"),
           keep_monthly: int = typer.Option(0, "--keep-monthly", help="... of N months"),
           keep_yearly: int = typer.Option(0, "--keep-yearly", help="... of N years"),
           keep_within: str | None = typer.Option(
               None, "--keep-within", help="all within this of the newest, e.g. 7d, 1y2m"),
           keep_tag: list[str] = typer.Option([], "--keep-tag",
                                              help="all with these tags (a,b: both)"),
           group_by: str = typer.Option("host,paths", "--group-by",
                                        help="decide per host, paths, tags, or '' for all"),
           prune_after: bool = typer.Option(False, "--prune", help="prune afterwards"),
           dry_run: bool = typer.Option(False, "--dry-run", help="say what would go"),
           unsafe_allow_remove_all: bool = typer.Option(
               False, "--unsafe-allow-remove-all", help="allow a policy that keeps nothing"),
           repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
           key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """Remove snapshots a retention policy does not keep (restic's rules)."""
    from dcops.backup.prune import forget as run_forget
    from dcops.backup.retention import RetentionPolicy, parse_duration

    policy = RetentionPolicy(keep_last=keep_last, keep_hourly=keep_hourly,
                             keep_daily=keep_daily, keep_weekly=keep_weekly,
                             keep_monthly=keep_monthly, keep_yearly=keep_yearly,
                             keep_within=parse_duration(keep_within) if keep_within else None,
                             keep_tags=tuple(keep_tag),
                             allow_remove_all=unsafe_allow_remove_all)
    repository = _open(repo, password_file, key_file, load_index=prune_after)
    result = run_forget(repository, policy, group_by=group_by, dry_run=dry_run)
    if json_out and not prune_after:
        out.print_json(json.dumps({"dry_run": dry_run, "decisions": [
            s.describe() | {"keep": keep, "reasons": reasons}
            for s, keep, reasons in result.decisions]}))
        return
    verb = "would remove" if dry_run else "removed"
    for s in result.removed:
        out.print(f"{verb} {s.short_id}  {s.time:%Y-%m-%d %H:%M:%S}  {', '.join(s.paths)}",
                  highlight=False)
    out.print(f"kept {len(result.kept)} snapshots, {verb} {len(result.removed)}")
    if prune_after:
        _prune(repository, dry_run, 0.05, False, json_out)


def _prune(repository: Repository, dry_run: bool, max_unused: float, unindexed: bool,
           json_out: bool) -> None:
    from dataclasses import asdict

    from dcops.backup.prune import prune as run_prune

    with _bar("prune", json_out) as show:
        result = run_prune(repository, dry_run=dry_run, max_unused_fraction=max_unused,
                           unindexed=unindexed, progress=show)
    if json_out:
        out.print_json(json.dumps(asdict(result) | {"bytes_freed": result.bytes_freed}))
        return
    verb = "would free" if dry_run else "freed"
    out.print(f"{result.packs_deleted} packs deleted, {result.packs_repacked} repacked; "
              f"{verb} {_size(result.bytes_freed)} ({result.blobs_kept} blobs in use by "
              f"{result.snapshots} snapshots)")
    if result.packs_unindexed:
        err.print(f"[yellow]{result.packs_unindexed} packs are in no index[/yellow] (an "
                  "interrupted backup's): left alone; --unindexed prunes them too")


@app.command("prune")
@friendly
def prune(dry_run: bool = typer.Option(False, "--dry-run", help="say what would be freed"),
          max_unused: float = typer.Option(0.05, "--max-unused", min=0.0, max=1.0,
                                           help="fraction of the repository left unused"),
          unindexed: bool = typer.Option(False, "--unindexed",
                                         help="also prune packs that no index lists"),
          repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
          key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """Free the data that no snapshot needs."""
    _prune(_open(repo, password_file, key_file), dry_run, max_unused, unindexed, json_out)


@app.command("unlock")
@friendly
def unlock(remove_all: bool = typer.Option(False, "--remove-all",
                                           help="remove every lock, not only stale ones"),
           repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
           key_file: Path | None = KeyFileOpt) -> None:
    """Remove locks left by processes that are gone."""
    repository = _open(repo, password_file, key_file, load_index=False)
    n = locks.remove_stale(repository.storage, repository.master, all_locks=remove_all)
    out.print(f"removed {n} locks")


@key_app.command("list")
@friendly
def key_list(repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
             key_file: Path | None = KeyFileOpt, json_out: bool = JsonOpt) -> None:
    """The keys that open the repository."""
    repository = _open(repo, password_file, key_file, load_index=False)
    rows = list_keys(repository.storage, repository.key_name)
    if json_out:
        out.print_json(json.dumps(rows))
        return
    table([r | {"id": r["id"][:8], "current": "*" if r["current"] else ""} for r in rows],
          ["current", "id", "kind", "user", "host", "created"])


@key_app.command("add")
@friendly
def key_add(new_password_file: Path | None = typer.Option(
                None, "--new-password-file", help="file holding the new key's password"),
            new_key_file: Path | None = typer.Option(
                None, "--new-key-file", help="create a key file here for the new key"),
            repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
            key_file: Path | None = KeyFileOpt) -> None:
    """Add a key (a password, or a new key file) that opens the repository."""
    repository = _open(repo, password_file, key_file, load_index=False)
    if new_key_file is not None:
        credential = Credential(key_file=_create_key_file(new_key_file))
    else:
        credential = _credential(new_password_file, None, confirm=True)
    name = add_key(repository.storage, repository.master, credential)
    out.print(f"added key {name[:8]}")


@key_app.command("remove")
@friendly
def key_remove(key_id: str = typer.Argument(..., help="key id or unique prefix"),
               repo: str | None = RepoOpt, password_file: Path | None = PasswordFileOpt,
               key_file: Path | None = KeyFileOpt) -> None:
    """Remove a key (not the one in use, and never the last)."""
    repository = _open(repo, password_file, key_file, load_index=False)
    name = remove_key(repository.storage, repository.master, repository.key_name, key_id)
    out.print(f"removed key {name[:8]}")
