"""Vendor apps for the sandbox HTTP server (sandbox/server.py mounts each under /<name>).

A vendor app is a plain object, no HTTP server of its own:

    class MyVendorApp(VendorApp):
        name = "koban"                        # mounted at <base>/koban
        def handle(self, req: Request) -> Response: ...
        def fault_response(self, kind: str, status: int) -> Response: ...   # "rate_limit" | "server_error"
        def connection_info(self, base_url: str) -> dict[str, str]: ...      # env vars a client would export

and a module-level `make_app(world, faults, **options) -> VendorApp | None` (None when the world has no
store for that vendor). Register the module in `sandbox.server.VENDORS` and it is served.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class Request:
    """One HTTP request, with the path relative to the vendor's mount point."""

    method: str
    path: str  # e.g. "/crm/v3/objects/contacts" (no vendor prefix, no query string)
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str  # the vendor's base URL, e.g. "http://127.0.0.1:8123/hubspot"

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def arg_list(self, name: str) -> list[str]:
        """A repeatable and/or comma-separated query parameter (`a=1,2&a=3` -> ["1", "2", "3"])."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v.strip() for v in value.split(",") if v.strip())
        return out

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def url_with(self, **params: str) -> str:
        """This request's URL with some query parameters replaced (for `paging.next.link`)."""
        query = {k: v for k, v in self.query.items() if k not in params}
        query.update({k: [v] for k, v in params.items()})
        return f"{self.base_url}{self.path}?{urlencode(query, doseq=True)}"


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes / str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class VendorApp:
    """Base class: subclasses set `name` and implement the three methods."""

    name: str = ""

    def handle(self, req: Request) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def fault_response(self, kind: str, status: int) -> Response:
        return Response(status, {"error": kind})

    def connection_info(self, base_url: str) -> dict[str, str]:
        return {}

    def reset_limits(self) -> None:
        """Forget rate-limit usage (admin endpoint); apps without limits ignore it."""
