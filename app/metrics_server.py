"""The worker's /metrics endpoint: ``lantern worker --metrics-port N`` serves its
container's registry over plain HTTP for Prometheus, behind the same bearer token as
the API's /metrics (``LANTERN_SERVER__METRICS_TOKEN``)."""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from app.errors import error_body
from app.metrics import Metrics


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (port 0: a free one, see ``port``) in a daemon
    thread, until ``close()``. Raises ``OSError`` when the address cannot be bound."""

    def __init__(self, metrics: Metrics, *, host: str, port: int, token: str | None) -> None:
        handler = type("Handler", (_Handler,), {"metrics": metrics, "token": token})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lantern-metrics", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    metrics: Metrics
    token: str | None

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._send(404, _error("not_found", "only /metrics is served here"))
            return
        if self.token is not None:
            scheme, _, sent = self.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                sent.strip().encode(), self.token.encode()
            ):
                self._send(401, _error("unauthorized", "/metrics needs the metrics bearer token"))
                return
        self._send(200, self.metrics.render(), CONTENT_TYPE_LATEST)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a scrape every few seconds is not worth a log line."""


def _error(code: str, message: str) -> bytes:
    return json.dumps(error_body(code, message)).encode()
