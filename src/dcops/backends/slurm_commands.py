"""Running Slurm's client commands: where they are, the ``SLURM_CONF`` they read, a timeout,
and what their failures mean.

Shared by the scheduler's `SlurmExecutor` and the remediation `SlurmActuator`. A command
that cannot be run (not installed), does not answer in time, or says it cannot reach
slurmctld raises `SlurmUnavailable` (retry later); one that Slurm refuses raises
`SlurmCommandFailed` with Slurm's words.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dcops.core.errors import DcopsError, Unavailable

log = logging.getLogger(__name__)

HINT = "is slurmctld up (`scontrol ping`), and does SLURM_CONF point at it?"

UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "connect failure",
    "communication connection failure",
    "zero bytes were transmitted or received",
    "backup controller in standby mode",
    "slurmctld is not responding",
)
"""Words (lower case) in a Slurm command's stderr that mean slurmctld did not answer."""


class SlurmCommandFailed(DcopsError):
    """A Slurm command ran and exited non-zero."""

    status = 502
    code = "slurm_command_failed"

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, *,
                 problem: str | None = None, hint: str = HINT) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        problem = problem or (f"exited with {returncode}: "
                              f"{self.stderr or '(nothing on stderr)'}")
        super().__init__(f"`{shlex.join(argv)}` {problem}", where="slurm", hint=hint)


class SlurmUnavailable(Unavailable):
    """A Slurm command could not be run (not installed there), did not answer in time, or
    could not reach slurmctld."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs one command: `subprocess_runner` in production, recorded answers in tests."""

    def __call__(self, argv: Sequence[str], *, env: Mapping[str, str],
                 timeout_s: float) -> CommandResult:
        """May raise OSError (no such binary) or subprocess.TimeoutExpired."""
        ...


def subprocess_runner(argv: Sequence[str], *, env: Mapping[str, str],
                      timeout_s: float) -> CommandResult:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                          env=dict(env), stdin=subprocess.DEVNULL, check=False)
    return CommandResult(done.returncode, done.stdout, done.stderr)


def unreachable(stderr: str) -> bool:
    """Whether a failed command's stderr says slurmctld could not be reached."""
    text = stderr.lower()
    return any(words in text for words in UNREACHABLE)


def tail(text: str, lines: int = 5) -> str:
    """The last lines of a command's output, for an error message."""
    return "\n".join(text.strip().splitlines()[-lines:])


class SlurmCommands:
    """One Slurm cluster's client commands.

    `slurm_conf` is set as ``SLURM_CONF`` for every command (None: Slurm's default,
    /etc/slurm/slurm.conf); `bin_dir` is where the commands are (None: PATH); each
    command gets `timeout_s` seconds."""

    def __init__(self, *, slurm_conf: str | Path | None = None,
                 bin_dir: str | Path | None = None, env: Mapping[str, str] | None = None,
                 timeout_s: float = 30.0, runner: Runner | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        if slurm_conf is not None:
            self.env["SLURM_CONF"] = str(slurm_conf)
        self.bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.timeout_s = timeout_s
        self.runner: Runner = runner or subprocess_runner

    def argv(self, command: str, *args: str) -> list[str]:
        """The full command line: the binary from `bin_dir` when one is set."""
        return [str(self.bin_dir / command) if self.bin_dir else command, *args]

    def run(self, command: str, *args: str) -> str:
        """Run a Slurm command; its stdout."""
        return self.run_argv(self.argv(command, *args))

    def run_argv(self, argv: Sequence[str], *, hint: str = HINT,
                 reach: str = "slurmctld") -> str:
        """Run any command line with this cluster's environment and timeout; its stdout.
        `reach` names what an unreachable answer could not reach, `hint` what to check."""
        try:
            done = self.runner(argv, env=self.env, timeout_s=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SlurmUnavailable(f"`{shlex.join(argv)}` did not answer within "
                                   f"{self.timeout_s:g}s", where="slurm", hint=hint) from exc
        except OSError as exc:
            raise SlurmUnavailable(f"cannot run {argv[0]}: {exc.strerror or exc}",
                                   where="slurm",
                                   hint="install Slurm's client commands (slurm-client) "
                                        "or set the executor's bin_dir") from exc
        if done.returncode != 0:
            if unreachable(done.stderr):
                log.warning("%s unreachable: `%s`: %s", reach, shlex.join(argv),
                            tail(done.stderr, 1))
                raise SlurmUnavailable(f"`{shlex.join(argv)}` could not reach {reach}: "
                                       f"{tail(done.stderr)}", where="slurm", hint=hint)
            raise SlurmCommandFailed(argv, done.returncode, done.stderr, hint=hint)
        return done.stdout
