"""A real HTTP server on 127.0.0.1 for download tests, with faults injected per request.

server.add(path, body, faults=[...]): each request to `path` takes the next fault, then plain 200/206:
  ("cut", n)      send the headers (full length) and n bytes, then close the connection
  ("status", c)   answer HTTP c (e.g. 503, 404) with a short body
  ("stall", s)    send the headers and 10 bytes, then sleep s seconds
Range requests are honoured (206 with Content-Range) unless an If-Range names another ETag (then 200). `served[path]` counts body bytes sent and
`requests[path]` the requests; nothing here listens on any address other than 127.0.0.1.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.faults: dict[str, list] = defaultdict(list)
        self.served: dict[str, int] = defaultdict(int)
        self.requests: dict[str, int] = defaultdict(int)
        self.ranges: list[str | None] = []
        self.extra_headers: dict[str, dict[str, str]] = {}   # path -> headers added to HEAD answers
        self.delay_s = 0.0            # per-chunk delay (concurrency tests keep a download in flight)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer._handle(self)

            def do_HEAD(self) -> None:  # noqa: N802 - headers only (what huggingface_hub asks first)
                body = outer.routes.get(self.path)
                if body is None:
                    return outer._status(self, 404)
                self.send_response(200)
                for k, v in {**outer.extra_headers.get(self.path, {}), "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, faults: list | None = None) -> str:
        self.routes[path] = body
        self.faults[path] = list(faults or [])
        return self.url(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        self.requests[path] += 1
        self.ranges.append(h.headers.get("Range"))
        if path not in self.routes:
            return self._status(h, 404)
        fault = self.faults[path].pop(0) if self.faults[path] else None
        if fault and fault[0] == "status":
            return self._status(h, fault[1])
        body = self.routes[path]
        start = 0
        rng = h.headers.get("Range")
        etag = f'"{hash(body) & 0xFFFFFFFF:08x}"'
        if_range = h.headers.get("If-Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-") and if_range in (None, etag):
            start = int(rng[6:-1])
        if start >= len(body) and start:
            return self._status(h, 416)
        data = body[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("ETag", etag)
        h.send_header("Connection", "close")
        h.end_headers()
        if fault and fault[0] == "cut":
            data = data[:fault[1]]
        elif fault and fault[0] == "stall":
            self._send(h, path, data[:10])
            time.sleep(fault[1])
            return
        self._send(h, path, data)
        if fault and fault[0] == "cut":
            h.close_connection = True

    def _send(self, h, path: str, data: bytes, chunk: int = 1 << 14) -> None:
        try:
            for i in range(0, len(data), chunk):
                # Counted before the write: a client can finish reading before write() returns here,
                # so counting afterwards raced with the test's assertions (flaky under load).
                self.served[path] += len(data[i:i + chunk])
                h.wfile.write(data[i:i + chunk])
                h.wfile.flush()
                if self.delay_s:
                    time.sleep(self.delay_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _status(self, h, code: int) -> None:
        body = f"status {code}".encode()
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
