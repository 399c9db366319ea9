"""A webhook receiver for tests: a real HTTP server in a thread that records every request,
verifies MLflow signatures the way MLflow documents it, and can be told to fail (with a
status and headers of choice, e.g. 429 with Retry-After), redirect, stall or answer a huge
body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def mlflow_verify(secret: str, delivery_id: str, timestamp: str, body: str, header: str) -> bool:
    """MLflow's documented receiver check (docs: ml/webhooks, "verify_mlflow_signature"):
    strip the `v1,` prefix, recompute HMAC-SHA256 over `{id}.{timestamp}.{body}`, compare."""
    if not header or not header.startswith("v1,"):
        return False
    expected = base64.b64encode(
        hmac.new(
            secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    return hmac.compare_digest(expected, header.removeprefix("v1,"))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("X-MLflow-Delivery-Id", "")

    @property
    def timestamp(self) -> str:
        return self.headers.get("X-MLflow-Timestamp", "")

    def signed_with(self, secret: str) -> bool:
        return mlflow_verify(
            secret,
            self.delivery_id,
            self.timestamp,
            self.body,
            self.headers.get("X-MLflow-Signature", ""),
        )


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    fail_first: int = 0  # answer fail_status to this many requests first
    fail_status: int = 500
    fail_headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "120"}
    status: int = 200
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location (307)
    stall_seconds: float = 0.0
    answer: bytes = b'{"ok": true}'
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, time.time())
                    )
                    failing = len(receiver.requests) <= receiver.fail_first
                if self.path in receiver.redirects:
                    self.send_response(307)
                    self.send_header("Location", receiver.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if receiver.stall_seconds:
                    time.sleep(receiver.stall_seconds)
                status = receiver.fail_status if failing else receiver.status
                payload = b'{"error": "try later"}' if failing else receiver.answer
                self.send_response(status)
                for name, value in (receiver.fail_headers if failing else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """Time travel for webhooks.services only (retries become due without sleeping)."""

    def __init__(self, monkeypatch):
        from django.utils import timezone

        import webhooks.services as services

        self._real = timezone
        self.offset = 0.0
        clock = self

        class _TZ:
            @staticmethod
            def now():
                from datetime import timedelta

                return clock._real.now() + timedelta(seconds=clock.offset)

        monkeypatch.setattr(services, "timezone", _TZ)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
