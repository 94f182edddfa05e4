"""A Qdrant REST endpoint for outage tests, served over real HTTP and stoppable at will.

No Qdrant server runs on these machines, and qdrant-client's local mode has no network to cut.
This serves the part of Qdrant's REST API that ``ClientUserSink`` calls (collection exists /
create / info, payload index, upsert, delete, retrieve, count) on a real port, and stores the
points in qdrant-client's own in-memory engine, which survives ``stop()``/``start()`` like a
server's storage survives a restart. So the worker's real client, HTTP transport, writer,
retries and backoff all run; only the server process is a stand-in. It checks the ``api-key``
header, so a test also sees that the configured key is passed through.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from qdrant_client import QdrantClient, models

_COLLECTION = re.compile(r"^/collections/([^/]+)(/.*)?$")
_OK = {"operation_id": 0, "status": "completed"}


class QdrantRest:
    """``start()`` listens on ``port`` (fixed, so the worker's URL stays valid across outages)."""

    def __init__(self, port: int, api_key: str | None = None) -> None:
        self.port = port
        self.api_key = api_key
        self.engine = QdrantClient(location=":memory:")
        self.calls: collections.Counter[str] = collections.Counter()
        self.refused = 0  # requests with a wrong or missing api-key
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> QdrantRest:
        handler = type("Handler", (_Handler,), {"rest": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port: from now on connections are refused (an outage)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def payload(self, user_point_id: str) -> dict[str, Any] | None:
        """The stored payload of a point (None if absent), read from the engine directly."""
        with self._lock:
            if not self.engine.collection_exists("users"):
                return None
            found = self.engine.retrieve("users", [user_point_id], with_payload=True)
        return dict(found[0].payload or {}) if found else None

    # -- request handling (one call at a time: the local engine is not thread-safe) -----------
    def handle(self, method: str, path: str, body: Any) -> Any:
        match = _COLLECTION.match(path)
        if path == "/":
            return {"title": "qdrant - vector search engine", "version": "1.16.0"}
        if match is None:
            raise KeyError(path)
        name, rest = match.group(1), match.group(2) or ""
        route: Callable[[str, Any], Any] = self._routes()[(method, rest)]
        self.calls[f"{method} {rest or '/'}"] += 1
        with self._lock:
            return route(name, body)

    def _routes(self) -> dict[tuple[str, str], Callable[[str, Any], Any]]:
        e = self.engine
        return {
            ("GET", "/exists"): lambda c, b: {"exists": e.collection_exists(c)},
            ("PUT", ""): lambda c, b: e.create_collection(
                c, vectors_config=models.VectorParams(**b["vectors"])
            ),
            ("GET", ""): lambda c, b: e.get_collection(c).model_dump(mode="json"),
            ("PUT", "/index"): lambda c, b: _OK,
            ("PUT", "/points"): lambda c, b: e.upsert(
                c, [models.PointStruct(**p) for p in b["points"]]
            ).model_dump(mode="json"),
            ("POST", "/points/delete"): lambda c, b: e.delete(
                c, models.PointIdsList(points=b["points"])
            ).model_dump(mode="json"),
            ("POST", "/points"): lambda c, b: [
                r.model_dump(mode="json") for r in e.retrieve(c, b["ids"], with_payload=True)
            ],
            ("POST", "/points/count"): lambda c, b: {"count": e.count(c, exact=True).count},
        }


class _Handler(BaseHTTPRequestHandler):
    rest: QdrantRest

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = orjson.loads(self.rfile.read(length)) if length else None
        if self.rest.api_key is not None and self.headers.get("api-key") != self.rest.api_key:
            self.rest.refused += 1
            self._reply(403, {"status": {"error": "forbidden: wrong api key"}})
            return
        try:
            result = self.rest.handle(method, self.path.split("?", 1)[0], body)
        except KeyError as exc:
            self._reply(404, {"status": {"error": f"not served here: {exc}"}})
            return
        self._reply(200, {"result": result, "status": "ok", "time": 0.0})

    def _reply(self, code: int, message: dict[str, Any]) -> None:
        data = orjson.dumps(message)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output stays readable."""
