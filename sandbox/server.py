"""The sandbox HTTP server: every vendor app on ONE port, each under its own path prefix.

    from sandbox.server import SandboxServer
    with SandboxServer(world, port=0) as srv:          # background thread
        srv.base_url                                    # http://127.0.0.1:PORT
        srv.vendor_url("hubspot")                       # http://127.0.0.1:PORT/hubspot
        srv.faults.set(rate_limit_storm=3)              # or POST /_sandbox/faults
        srv.stats()                                     # request counts (also GET /_sandbox/stats)

Adding a vendor: write `sandbox/servers/<name>.py` with a `make_app(world, faults, **options)` returning
a `sandbox.servers.VendorApp` (see that package), then add one line to VENDORS below. Per-vendor
options are passed as `SandboxServer(world, <name>={...})`.

Admin endpoints (not counted in stats, no auth, no faults):
  GET  /_sandbox/stats            {"total", "by_path": {"GET /hubspot/crm/v3/objects/contacts": n}, ...}
  POST /_sandbox/stats/reset
  GET  /_sandbox/faults           current fault switches and what fired
  POST /_sandbox/faults           {"rate_limit_storm": 3, ...}; {"reset": true} turns everything off
  POST /_sandbox/advance          {"step": 1} -> world.advance(...) (time passes), returns the change set
  POST /_sandbox/reset-limits     forget rate-limit usage (daily quota included)
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.faults import Faults
from sandbox.servers import Request, Response, VendorApp

# vendor name (= path prefix) -> module exposing make_app(world, faults, **options)
VENDORS: dict[str, str] = {
    "hubspot": "sandbox.servers.hubspot",
    "stripe": "sandbox.servers.stripe",
    "koban": "sandbox.servers.koban",
    "registry": "sandbox.servers.registry",
}


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self._by_path[f"{method} {path}"] += 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self._by_status[status] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._by_path.values()),
                "by_path": dict(sorted(self._by_path.items())),
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
            }

    def reset(self) -> None:
        with self._lock:
            self._by_path.clear()
            self._by_status.clear()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


class SandboxServer:
    def __init__(
        self,
        world: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | dict[str, Any] | None = None,
        vendors: list[str] | None = None,
        verbose: bool = False,
        **vendor_options: dict[str, Any],
    ) -> None:
        self.world = world
        self.host = host
        self.requested_port = port
        self.verbose = verbose
        self.faults = faults if isinstance(faults, Faults) else Faults(**(faults or {}))
        unknown = set(vendor_options) - set(VENDORS)
        if unknown:
            raise TypeError(f"unknown vendor option group(s) {sorted(unknown)}; vendors: {sorted(VENDORS)}")
        self.apps: dict[str, VendorApp] = {}
        for name, module_name in VENDORS.items():
            if vendors is not None and name not in vendors:
                continue
            app = importlib.import_module(module_name).make_app(world, self.faults, **vendor_options.get(name, {}))
            if app is not None:
                self.apps[name] = app
        self._stats = RequestStats()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "SandboxServer":
        """Bind and serve on a background (daemon) thread."""
        self._bind()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind (if not yet) and serve on the calling thread until KeyboardInterrupt / stop()."""
        if self._httpd is None:
            self._bind()
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def wait(self) -> None:
        """Block until the background server stops (Ctrl-C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _bind(self) -> None:
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self.host, self.requested_port), handler)
        self._httpd.daemon_threads = True
        self._bound_port = self._httpd.server_address[1]

    # -- addresses -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        # kept after stop(): a request still in flight while the server stops may build a URL
        if getattr(self, "_bound_port", None) is None:
            raise RuntimeError("server not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def vendor_url(self, name: str) -> str:
        if name not in self.apps:
            raise KeyError(f"vendor {name!r} is not mounted; mounted: {sorted(self.apps)}")
        return f"{self.base_url}/{name}"

    def connection_info(self) -> dict[str, dict[str, str]]:
        """Per vendor: the env vars a client would export to talk to this sandbox."""
        return {name: app.connection_info(self.vendor_url(name)) for name, app in self.apps.items()}

    # -- stats ---------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    # -- dispatch ------------------------------------------------------------------------------
    def dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(raw_path)
        path = parts.path or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self._admin(method, path, body)
        segment, _, rest = path.lstrip("/").partition("/")
        app = self.apps.get(segment)
        if app is None:
            return Response(404, {"status": "error", "message": f"no vendor mounted at /{segment}",
                                  "mounted": sorted(self.apps)})
        self._stats.record(method, path.rstrip("/") or "/")
        fault = self.faults.next_request()
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault.kind is not None:
            response = app.fault_response(fault.kind, fault.status)
        else:
            req = Request(method=method, path="/" + rest, query=query, headers=headers, body=body,
                          base_url=f"{self.base_url}/{segment}")
            try:
                response = app.handle(req)
            except Exception as exc:  # a sandbox bug must show up as a 500, not a dropped connection
                traceback.print_exc(file=sys.stderr)
                response = Response(500, {"status": "error", "message": f"sandbox error: {exc!r}"})
        self._stats.record_status(response.status)
        return response

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        action = path[len("/_sandbox"):].strip("/")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return Response(400, {"error": "body is not JSON"})
        if action == "stats" and method == "GET":
            return Response(200, self.stats())
        if action == "stats/reset" and method == "POST":
            self.reset_stats()
            return Response(200, self.stats())
        if action == "faults" and method == "GET":
            return Response(200, self.faults.snapshot())
        if action == "faults" and method == "POST":
            try:
                if payload.pop("reset", False):
                    self.faults.reset()
                return Response(200, self.faults.set(**payload))
            except (ValueError, TypeError) as exc:
                return Response(400, {"error": str(exc)})
        if action == "advance" and method == "POST":
            if not hasattr(self.world, "advance"):
                return Response(400, {"error": "this world cannot advance"})
            changes = self.world.advance(**payload)
            return Response(200, {"changes": _jsonable(changes)})
        if action == "reset-limits" and method == "POST":
            for app in self.apps.values():
                app.reset_limits()
            return Response(200, {"ok": True})
        if action == "" and method == "GET":
            return Response(200, {"base_url": self.base_url, "vendors": {n: self.vendor_url(n) for n in self.apps}})
        return Response(404, {"error": f"unknown admin endpoint {method} {path}"})


class _Handler(BaseHTTPRequestHandler):
    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"  # keep-alive, as clients' sessions expect
    server_version = "crm-etl-sandbox"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.sandbox.dispatch(self.command, self.path, headers, body)
        payload = response.encode()
        try:
            # send_response() without its own Date: a vendor app may date the response on its clock
            self.log_request(response.status)
            self.send_response_only(response.status)
            self.send_header("Server", self.version_string())
            headers = dict(response.headers)
            self.send_header("Date", headers.pop("Date", None) or self.date_time_string())
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired during a slow-response fault)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.sandbox.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))
