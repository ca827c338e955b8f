"""A small real HTTP server on loopback that takes agent pushes the way the dcops server does.

It answers 200 {"accepted": n} and 409 for a (agent_id, seq) it already has, and can be
switched to failing: answer a fixed status, accept a push but drop the reply, or be
stopped and started again on the same port (connection refused in between).
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fixtures.engines import free_port


@dataclass
class Received:
    """One push the server stored."""

    body: dict[str, Any]
    headers: dict[str, str]
    raw_size: int


@dataclass
class PushServer:
    """The stub server's state; `status` None means behave like a healthy dcops server."""

    port: int = field(default_factory=free_port)
    status: int | None = None
    drop_reply: bool = False
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    max_series: int | None = None
    _seen: set[tuple[str, int]] = field(default_factory=set)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seqs(self) -> list[int]:
        with self._lock:
            return [r.body["seq"] for r in self.received]

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.handle(self, data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def handle(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        with self._lock:
            self.attempts += 1
            if handler.path != "/api/v1/push":
                return self._reply(handler, 404, {"error": "not_found"})
            if self.status is not None:
                return self._reply(handler, self.status, {"error": "failing on purpose"})
            try:
                if handler.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                body = json.loads(data)
            except (OSError, ValueError):
                return self._reply(handler, 400, {"error": "invalid"})
            if self.max_series is not None and len(body["series"]) > self.max_series:
                return self._reply(handler, 413, {"error": "too_large"})
            key = (body["agent_id"], body["seq"])
            if key in self._seen:
                return self._reply(handler, 409, {"error": "conflict"})
            self._seen.add(key)
            self.received.append(Received(body, dict(handler.headers.items()), len(data)))
            if self.drop_reply:
                handler.close_connection = True
                return None
            samples = sum(len(s["samples"]) for s in body["series"])
            return self._reply(handler, 200, {"accepted": samples})

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
