"""Backup benchmark: dcops beside restic and borg backing up, restoring and checking the same
corpus, one after the other, each with encryption and its default compression.

The corpus (``backup_corpus.py``, in the work dir, removed at the end) is three successive
checkpoints of a model in safetensors layout (~1 GB each at ``--scale 1``, each rewriting
~10% of the tensors of the one before) and 10,000 small JSON files. Per tool and run, on a
fresh repository, timed steps: ``init``; ``backup`` of ``ckpt-1`` and the JSON dir (the
JSON dir is in this first backup only); ``backup2`` of ``ckpt-2`` and ``backup3`` of
``ckpt-3`` (incremental: new paths, so only content deduplication helps); the repository's
size on disk (du) after these three; ``unchanged``: ``ckpt-3`` again (restic and dcops
take the parent snapshot's metadata to skip reading, borg its files cache); ``restore`` of
the last snapshot into a fresh dir, checked byte for byte against ``ckpt-3``; ``check``
reading all data (restic ``check --read-data``, borg ``check --verify-data``, dcops
``backup check --read-data``). The page cache is dropped before each step where root may
(else "cache": "warm"). Throughput is logical bytes (1 MB = 1e6 B) over the median seconds
of ``--runs`` runs: the paths backed up for backups, ``ckpt-3`` for restore, and the
three backups' bytes for check. restic: repository v2 (compression auto); borg:
``repokey-blake2`` (lz4).

Then corruption (dcops only): single-byte flips in K distinct files of the last dcops
repository (its config, a key, an index and a snapshot file when there are, the rest at
random, mostly packs), and ``dcops backup check --read-data --json``: how many of them it
names in ``problems[].file``.

Run from the repository root: ``python benchmarks/backup.py [--scale F] [--runs N]
[--tools dcops,restic,borg] [--workdir DIR]``. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import backup_corpus

TOOLS = ("dcops", "restic", "borg")
STEPS = ("init", "backup", "backup2", "backup3", "unchanged", "restore", "check")
SRC = Path(__file__).resolve().parents[1] / "src"
err = sys.stderr


class StepFailed(Exception):
    pass


class Tool:
    """One tool's commands on one repository; env is its whole environment."""

    name = ""

    def __init__(self, work: Path, password: str) -> None:
        self.repo = work / f"{self.name}-repo"
        self.home = work / f"{self.name}-home"  # caches and config, kept out of ~
        self.home.mkdir(parents=True)
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("RESTIC_", "BORG_", "DCOPS_BACKUP_"))}
        self.env = {**keep, "XDG_CACHE_HOME": str(self.home / "cache"),
                    "XDG_CONFIG_HOME": str(self.home / "config")}
        self.password_file = self.home / "password"
        self.password_file.write_text(password)

    def init(self) -> list[str]:
        raise NotImplementedError

    def backup(self, paths: list[str], tag: str) -> list[str]:
        raise NotImplementedError

    def restore(self, target: Path) -> tuple[list[str], Path]:
        """The command and the dir it runs in."""
        raise NotImplementedError

    def check(self) -> list[str]:
        raise NotImplementedError


class Restic(Tool):
    name = "restic"

    def __init__(self, work: Path, password: str) -> None:
        super().__init__(work, password)
        self.env |= {"RESTIC_REPOSITORY": str(self.repo), "RESTIC_PASSWORD": password,
                     "RESTIC_CACHE_DIR": str(self.home / "cache")}

    def init(self) -> list[str]:
        return ["restic", "init", "--repository-version", "2"]

    def backup(self, paths: list[str], tag: str) -> list[str]:
        return ["restic", "backup", "--tag", tag, *paths]

    def restore(self, target: Path) -> tuple[list[str], Path]:
        return ["restic", "restore", "latest", "--target", str(target)], target

    def check(self) -> list[str]:
        return ["restic", "check", "--read-data"]


class Borg(Tool):
    name = "borg"
    last = ""

    def __init__(self, work: Path, password: str) -> None:
        super().__init__(work, password)
        self.env |= {"BORG_REPO": str(self.repo), "BORG_PASSPHRASE": password,
                     "BORG_BASE_DIR": str(self.home)}

    def init(self) -> list[str]:
        return ["borg", "init", "--encryption=repokey-blake2"]

    def backup(self, paths: list[str], tag: str) -> list[str]:
        self.last = tag
        return ["borg", "create", f"::{tag}", *paths]

    def restore(self, target: Path) -> tuple[list[str], Path]:
        return ["borg", "extract", f"::{self.last}"], target

    def check(self) -> list[str]:
        return ["borg", "check", "--verify-data"]


class Dcops(Tool):
    name = "dcops"
    cli: ClassVar[tuple[str, ...]] = (sys.executable, "-m", "dcops", "backup")

    def __init__(self, work: Path, password: str) -> None:
        super().__init__(work, password)
        path = os.pathsep.join(p for p in (str(SRC), self.env.get("PYTHONPATH", "")) if p)
        self.env |= {"DCOPS_BACKUP_REPOSITORY": str(self.repo),
                     "DCOPS_BACKUP_PASSWORD_FILE": str(self.password_file),
                     "PYTHONPATH": path}  # this checkout's dcops, as the benchmark imports

    def init(self) -> list[str]:
        return [*self.cli, "init"]

    def backup(self, paths: list[str], tag: str) -> list[str]:
        return [*self.cli, "run", *paths, "--tag", tag]

    def restore(self, target: Path) -> tuple[list[str], Path]:
        return [*self.cli, "restore", "latest", "--target", str(target)], target

    def check(self, as_json: bool = False) -> list[str]:
        return [*self.cli, "check", "--read-data", *(["--json"] if as_json else [])]


CLASSES: dict[str, type[Tool]] = {"dcops": Dcops, "restic": Restic, "borg": Borg}


def available(name: str) -> str | None:
    """Why `name` cannot run here, or None."""
    if name == "dcops":
        probe = subprocess.run([*Dcops.cli, "--help"], capture_output=True,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
        return None if probe.returncode == 0 else "`dcops backup` is not available"
    return None if shutil.which(name) else f"{name} is not on PATH"


def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def run(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> float:
    """Run to the end with output to `log`; seconds taken."""
    with log.open("wb") as out:
        start = time.perf_counter()
        rc = subprocess.run(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
        seconds = time.perf_counter() - start
    if rc != 0:
        tail = log.read_text(errors="replace")[-600:]
        raise StepFailed(f"{' '.join(argv[:4])}... exited {rc}: {tail}")
    return seconds


def disk_usage(root: Path) -> int:
    return sum(os.lstat(Path(d) / f).st_blocks * 512 for d, _, files in os.walk(root)
               for f in files)


def hashes(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with path.open("rb") as f:
            out[path.relative_to(root).as_posix()] = hashlib.file_digest(f, "sha256").hexdigest()
    return out


def find_dir(root: Path, name: str) -> Path | None:
    """The shallowest dir called `name` under `root` (tools restore paths differently)."""
    for d, dirs, _ in os.walk(root):
        if name in dirs:
            return Path(d) / name
    return None


def measure(tool: Tool, corpus: backup_corpus.Corpus, work: Path, cold: bool,
            expected: dict[str, str]) -> tuple[dict[str, float], int, bool]:
    """One run of every step on a fresh repository: seconds per step, repo bytes after the
    three backups, and whether the restore was identical."""
    seconds: dict[str, float] = {}

    def step(name: str, argv: list[str], cwd: Path) -> None:
        if cold:
            drop_caches()
        seconds[name] = run(argv, tool.env, cwd, work / f"{tool.name}-{name}.log")
        print(f"  {tool.name} {name}: {seconds[name]:.2f} s", file=err)

    step("init", tool.init(), work)
    step("backup", tool.backup([corpus.checkpoints[0], corpus.json_dir], "b1"), corpus.root)
    step("backup2", tool.backup([corpus.checkpoints[1]], "b2"), corpus.root)
    step("backup3", tool.backup([corpus.checkpoints[2]], "b3"), corpus.root)
    repo_bytes = disk_usage(tool.repo)
    step("unchanged", tool.backup([corpus.checkpoints[2]], "b4"), corpus.root)
    target = work / f"{tool.name}-restore"
    target.mkdir()
    step("restore", *tool.restore(target))
    restored = find_dir(target, corpus.checkpoints[2])
    identical = restored is not None and hashes(restored) == expected
    shutil.rmtree(target)
    step("check", tool.check(), work)
    return seconds, repo_bytes, identical


def choose(repo: Path, k: int, rng: random.Random) -> list[str]:
    """`k` distinct files of `repo` (the config, a key, an index and a snapshot file first,
    where there are, the rest at random: mostly packs), relative to `repo`."""
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")
                   if p.is_file() and p.stat().st_size > 0
                   and not p.relative_to(repo).as_posix().startswith("locks/"))
    chosen: list[str] = []
    for kind in ("config", "keys/", "index/", "snapshots/"):
        matching = [f for f in files if f == kind or f.startswith(kind)]
        if matching and len(chosen) < k:
            chosen.append(rng.choice(matching))
    rest = [f for f in files if f not in chosen]
    return chosen + rng.sample(rest, min(len(rest), k - len(chosen)))


def flip(repo: Path, names: list[str], rng: random.Random) -> None:
    """Change one byte at a random offset in each file."""
    for name in names:
        with (repo / name).open("r+b") as f:
            offset = rng.randrange((repo / name).stat().st_size)
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ rng.randint(1, 255)]))


def file_key(path: str, repo: Path) -> tuple[str, str]:
    """A repository file as (kind, name): its first and last path parts relative to the repo,
    so that "data/ab/abcd..." and "data/abcd..." (absolute or not) name the same pack."""
    p = Path(path)
    if p.is_absolute() and p.is_relative_to(repo):
        p = p.relative_to(repo)
    parts = [part for part in p.parts if part not in (".", "/")]
    return (parts[0], parts[-1]) if parts else ("", "")


def last_json(text: str) -> Any:
    """The JSON object that ends `text` (one line or indented, after any other lines)."""
    lines = text.strip().splitlines()
    for i in range(len(lines)):
        if lines[i].startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    raise ValueError("no JSON object at the end of the output")


def named(tool: Dcops, files: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Run ``check --read-data --json``: which of `files` it names, in its problems or, where
    the repository does not open (no JSON), in its error message; and what it said."""
    out = subprocess.run(tool.check(as_json=True), env=tool.env, cwd=tool.repo.parent,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    said: dict[str, Any] = {"rc": out.returncode}
    try:
        report = last_json(out.stdout)
        keys = {file_key(str(p.get("file", "")), tool.repo) for p in report["problems"]}
        said |= {"ok": report.get("ok"), "problems": len(report["problems"])}
        return [f for f in files if file_key(f, tool.repo) in keys], said
    except (KeyError, ValueError, AttributeError, TypeError) as exc:
        text = out.stdout + out.stderr
        said["error"] = f"no JSON ({exc!r}): {' '.join(text.split())[-300:]}"
        return [f for f in files if f in text or (f != "config" and Path(f).name in text)], said


def corruption(tool: Dcops, k: int, rng: random.Random) -> dict[str, Any]:
    """Flip a byte in `k` distinct repository files and count those check names. A damaged
    config or key stops the repository from opening, hiding the rest, so this goes in three
    rounds, each checked: packs, index and snapshot files; then the config; then the key."""
    chosen = choose(tool.repo, k, rng)
    rounds = [[f for f in chosen if not f.startswith(("config", "keys/"))],
              [f for f in chosen if f == "config"], [f for f in chosen if f.startswith("keys/")]]
    found: list[str] = []
    checks = []
    for files in rounds:
        if files:
            flip(tool.repo, files, rng)
            hits, said = named(tool, files)
            found += hits
            checks.append({"files": len(files), "named": len(hits), **said})
    by_kind: dict[str, list[int]] = {}
    for f in chosen:
        counts = by_kind.setdefault(f.split("/")[0], [0, 0])
        counts[0] += 1
        counts[1] += f in found
    return {"corruptions_injected": len(chosen), "corruptions_detected": len(found),
            "corruptions_by_kind": by_kind, "corruption_checks": checks,
            "corruptions_missed": [f for f in chosen if f not in found]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="checkpoint size x ~1 GB")
    parser.add_argument("--runs", type=int, default=1, help="runs per tool (median taken)")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--workdir", type=Path, help="default: a temp dir under /tmp")
    parser.add_argument("--corruptions", type=int, default=20)
    args = parser.parse_args()
    names = [t for t in args.tools.split(",") if t]
    if unknown := set(names) - set(TOOLS):
        raise SystemExit(f"unknown tools: {', '.join(sorted(unknown))}")
    figures: dict[str, Any] = {"bench": "backup", "scale": args.scale, "runs": args.runs}
    skipped = {n: why for n in names if (why := available(n))}
    for n, why in skipped.items():
        print(f"skipping {n}: {why}", file=err)
    names = [n for n in names if n not in skipped]
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dcops-backup-bench-", dir=args.workdir))
    try:
        cold = drop_caches()
        figures["cache"] = "cold" if cold else "warm"
        start = time.perf_counter()
        corpus = backup_corpus.build(work / "corpus", args.scale)
        c1, c2, c3 = corpus.checkpoints
        logical = {"backup": corpus.logical_bytes(c1, corpus.json_dir),
                   "backup2": corpus.logical_bytes(c2), "backup3": corpus.logical_bytes(c3),
                   "unchanged": corpus.logical_bytes(c3), "restore": corpus.logical_bytes(c3)}
        logical["check"] = logical["backup"] + logical["backup2"] + logical["backup3"]
        expected = hashes(corpus.root / c3)
        print(f"corpus: {logical['check'] / 1e6:.0f} MB in "
              f"{time.perf_counter() - start:.0f} s; rewritten per checkpoint "
              f"(tensors, bytes) of {corpus.tensors}: {corpus.changed}", file=err)
        figures.update(logical_bytes=logical["check"], checkpoint_bytes=logical["backup3"],
                       json_bytes=corpus.logical_bytes(corpus.json_dir),
                       tensors=corpus.tensors, rewritten=corpus.changed)
        secs: dict[str, dict[str, list[float]]] = {n: {s: [] for s in STEPS} for n in names}
        repo_bytes: dict[str, int] = {}
        identical: dict[str, bool] = {}
        errors: dict[str, str] = {}
        last_dcops: Dcops | None = None
        for r in range(args.runs):
            for name in names[r % len(names):] + names[:r % len(names)] if names else []:
                if name in errors:
                    continue
                print(f"run {r + 1}/{args.runs}: {name}", file=err)
                tool = CLASSES[name](work / f"run{r}", "bench-" + os.urandom(8).hex())
                try:
                    seconds, repo_bytes[name], same = measure(tool, corpus, tool.home.parent,
                                                              cold, expected)
                except StepFailed as exc:
                    errors[name] = str(exc)
                    print(f"  {name} failed: {exc}", file=err)
                    continue
                finally:
                    if name != "dcops" or r < args.runs - 1:
                        shutil.rmtree(tool.home.parent / f"{name}-repo", ignore_errors=True)
                identical[name] = identical.get(name, True) and same
                for s in STEPS:
                    secs[name][s].append(seconds[s])
                if isinstance(tool, Dcops):
                    last_dcops = tool
        steps = {n: {s: round(statistics.median(v), 3) for s, v in secs[n].items() if v}
                 for n in names if n not in errors}
        figures["steps"] = steps

        def mb_s(tool: str, *keys: str) -> float | None:
            if tool not in steps:
                return None
            return round(sum(logical[k] for k in keys) / sum(steps[tool][k] for k in keys)
                         / 1e6, 1)

        for t in TOOLS:
            prefix = "" if t == "dcops" else f"{t}_"
            figures[prefix + "backup_mb_s"] = mb_s(t, "backup")
            figures[prefix + "incremental_mb_s"] = mb_s(t, "backup2", "backup3")
            figures[prefix + "unchanged_mb_s"] = mb_s(t, "unchanged")
            figures[prefix + "restore_mb_s"] = mb_s(t, "restore")
            figures[prefix + "check_mb_s"] = mb_s(t, "check")
            measured = t in steps
            figures[prefix + "init_s"] = steps[t]["init"] if measured else None
            figures[prefix + "repo_bytes"] = repo_bytes.get(t) if measured else None
        for peer in ("restic", "borg"):
            for key in ("backup", "incremental", "unchanged", "restore", "check", "repo"):
                unit = "bytes" if key == "repo" else "mb_s"
                ours, theirs = figures[f"{key}_{unit}"], figures[f"{peer}_{key}_{unit}"]
                figures[f"ratio_{key}_vs_{peer}"] = (round(ours / theirs, 2)
                                                     if ours and theirs else None)
        figures["restore_identical"] = identical
        figures["note"] = ("MB/s: logical MB (1e6 B) over median seconds; backup: ckpt-1 + json, "
                           "incremental: ckpt-2 and ckpt-3 as new paths, unchanged: ckpt-3 again, "
                           "restore: latest (ckpt-3), check: all data read, over the three "
                           "backups' bytes; repo_bytes: du after three backups; ratios: dcops "
                           "over peer (repo: bytes, lower is better)")
        figures["tools"] = names
        if skipped or errors:
            figures["not_measured"] = {**skipped, **errors}
        figures["corruptions_injected"] = 0
        figures["corruptions_detected"] = None
        if last_dcops is not None and args.corruptions > 0:
            figures.update(corruption(last_dcops, args.corruptions, random.Random(7)))
            print(f"corruption: {figures['corruptions_detected']}/"
                  f"{figures['corruptions_injected']} named", file=err)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
