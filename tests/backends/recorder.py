"""A small real HTTP receiver on loopback that records every POST body and header.

It answers 200 unless told otherwise: `statuses` is a queue of codes to answer first
(e.g. ``[503, 503]`` then healthy). It can be stopped and started again on the same
port, so a sender sees a refused connection in between.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fixtures.engines import free_port


@dataclass
class Request:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)
    received: list[Request] = field(default_factory=list)
    """Requests answered 2xx."""
    attempts: int = 0
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder._lock:
                    recorder.attempts += 1
                    status = recorder.statuses.pop(0) if recorder.statuses else 200
                    if status < 300:
                        recorder.received.append(Request(
                            self.path, {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw)))
                reply = b"ok" if status < 300 else b"try again" if status >= 500 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.received]
