"""Run a real `dcops` server process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.fixtures.engines import free_port, wait_for


class DcopsProcess:
    """`python -m dcops serve` (or `up`) on a free loopback port with its own data dir."""

    def __init__(self, data_dir: Path, command: str = "serve",
                 args: Sequence[str] = (), port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = command
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-{command}.log"

    def start(self, timeout_s: float = 60.0) -> DcopsProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("a")
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcops", self.command, "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.args],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        wait_for(self._healthy, timeout_s, f"dcops {self.command} on {self.url}")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"dcops exited with {self.proc.returncode}:\n{self.output()}")
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def interrupt(self, timeout_s: float = 30.0) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
