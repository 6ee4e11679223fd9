"""Stripe API stand-in (read side), served from the world's StripeStore (sandbox/stripe_render.py).

Mounted at <base>/stripe; point a client at it with `stripe.api_base = <base>/stripe` or
`StripeClient(key, base_addresses={"api": <base>/stripe})`. See /work/shared/reference/billing-and-registry-apis.md §1.

Served (GET only): /v1/customers (+ /{id}, /{id}/tax_ids), /v1/invoices (+ /{id}, /{id}/lines),
/v1/subscriptions (+ /{id}; the list hides canceled ones unless `status=all|ended|canceled`), /v1/credit_notes
(+ /{id}), /v1/events (+ /{id}; the last 30 days of world time, `type` with `*` wildcard or `types[]`).
Lists: newest first, `limit` 1-100 (default 10), `starting_after` / `ending_before`, `has_more`, `created[gt|gte|lt|lte]`
and the usual per-resource filters. `expand[]=tax_ids` (retrieve) / `data.tax_ids` (list) on customers.
API versions: the `Stripe-Version` header picks the layout (before 2025-03-31 invoices carry `subscription`, after
it `parent.subscription_details`); without it the account's default (an older version) is used, and events are
always rendered in the version they were created with, as at Stripe.
Auth: `Authorization: Bearer sk_test_...` (or Basic with the key as user name); anything else is a 401, a live key
included. Errors: `{"error": {"type", "code", "message", ...}}`. Rate limit: 25 requests per rolling second (test
mode), then 429 `rate_limit` (no Retry-After, like Stripe). Faults from sandbox/faults.py: 429 storm, 5xx burst,
delay; malformed_record ("bad_date" / "bad_id") on the middle record of malformed_object_type when that is one of
customers, invoices, subscriptions, credit_notes.
"""
from __future__ import annotations

import base64
import collections
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from sandbox.faults import Faults
from sandbox.servers import Request, Response, VendorApp
from sandbox.stripe_render import (
    ACCOUNT_API_VERSION, EVENT_RETENTION_DAYS, get_store, to_version,
)
from sandbox.stripe_store import OBJECT_TYPES, StripeStore

PREFIX = {"customers": "cus", "invoices": "in", "subscriptions": "sub", "credit_notes": "cn"}
SINGULAR = {"customers": "customer", "invoices": "invoice", "subscriptions": "subscription",
            "credit_notes": "credit_note"}
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


@dataclass
class StripeConfig:
    secret_key: str | None = None  # default: "sk_test_sandbox<seed>"
    rate_limit_per_second: int = 25  # test mode; live mode is 100
    max_limit: int = 100
    default_limit: int = 10
    embedded_lines: int = 10  # lines shown inside an invoice; the rest through /v1/invoices/{id}/lines
    account_api_version: str = ACCOUNT_API_VERSION
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)


def make_app(world: Any, faults: Faults, **options: Any) -> "StripeApp | None":
    if getattr(world, "billing", None) is None:
        return None
    known = {f.name for f in fields(StripeConfig)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown stripe option(s) {sorted(unknown)}; known: {sorted(known)}")
    config = StripeConfig(**options)
    if config.secret_key is None:
        config.secret_key = f"sk_test_sandbox{getattr(world, 'seed', 0)}"
    if not config.secret_key.startswith("sk_test_"):
        raise ValueError("the sandbox only takes test-mode keys (sk_test_...)")
    get_store(world)  # render now, not on the first request
    return StripeApp(world, faults, config)


class _HttpError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _error(status: int, etype: str, message: str, code: str | None = None, param: str | None = None) -> Response:
    body: dict[str, Any] = {"type": etype, "message": message}
    if code:
        body["code"] = code
        body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        body["param"] = param
    body["request_log_url"] = "https://dashboard.stripe.com/test/logs/req_sandbox"
    return Response(status, {"error": body}, {"Request-Id": _request_id()})


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex[:14]


def _bad(message: str, param: str | None = None, code: str = "parameter_invalid") -> _HttpError:
    return _HttpError(_error(400, "invalid_request_error", message, code, param))


class StripeApp(VendorApp):
    name = "stripe"

    def __init__(self, world: Any, faults: Faults, config: StripeConfig) -> None:
        self.world, self.faults, self.config = world, faults, config
        self._hits: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    @property
    def store(self) -> StripeStore:
        return get_store(self.world)

    # -- VendorApp interface -------------------------------------------------------------------
    def connection_info(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__STRIPE__BASE_URL": base_url, "SOURCES__STRIPE__SECRET_KEY": self.config.secret_key}

    def reset_limits(self) -> None:
        with self._lock:
            self._hits.clear()

    def fault_response(self, kind: str, status: int) -> Response:
        if kind == "rate_limit":
            return self._rate_limited()
        return _error(status, "api_error", "An unknown error occurred while processing your request.")

    def handle(self, req: Request) -> Response:
        denied = self._authenticate(req)
        if denied is not None:
            return denied
        limited = self._take_rate_limit()
        if limited is not None:
            return limited
        version = req.headers.get("stripe-version") or self.config.account_api_version
        try:
            if not _VERSION_RE.match(version):
                raise _bad(f"Invalid Stripe API version: {version}", code="api_version_invalid")
            handler, params = self._route(req)
            with self.store.lock:
                response = handler(req, version, **params)
        except _HttpError as err:
            response = err.response
        response.headers.setdefault("Request-Id", _request_id())
        response.headers["Stripe-Version"] = version
        return response

    # -- auth and limits -----------------------------------------------------------------------
    def _authenticate(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = cred.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(cred.strip()).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            return _error(401, "invalid_request_error",
                          "You did not provide an API key. You need to provide your API key in the Authorization "
                          "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        if key != self.config.secret_key:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "****"
            return _error(401, "invalid_request_error", f"Invalid API Key provided: {shown}", "api_key_invalid")
        return None

    def _take_rate_limit(self) -> Response | None:
        now = self.config.clock()
        with self._lock:
            while self._hits and self._hits[0] <= now - 1.0:
                self._hits.popleft()
            if len(self._hits) >= self.config.rate_limit_per_second:
                return self._rate_limited()
            self._hits.append(now)
        return None

    @staticmethod
    def _rate_limited() -> Response:
        return _error(429, "invalid_request_error",
                      "Request rate limit exceeded. Learn more about rate limits here "
                      "https://stripe.com/docs/rate-limits.", "rate_limit")

    # -- routing -------------------------------------------------------------------------------
    def _route(self, req: Request) -> tuple[Callable[..., Response], dict[str, Any]]:
        segs = [s for s in req.path.split("/") if s]
        unknown = _HttpError(_error(404, "invalid_request_error",
                                    f"Unrecognized request URL ({req.method}: {req.path}). Please see "
                                    "https://stripe.com/docs or we can help at https://support.stripe.com/."))
        if req.method != "GET" or len(segs) < 2 or segs[0] != "v1":
            raise unknown
        resource, rest = segs[1], segs[2:]
        if resource == "events":
            if not rest:
                return self.list_events, {}
            if len(rest) == 1:
                return self.get_event, {"event_id": rest[0]}
            raise unknown
        if resource not in OBJECT_TYPES:
            raise unknown
        if not rest:
            return self.list_objects, {"otype": resource}
        if len(rest) == 1:
            return self.get_object, {"otype": resource, "oid": rest[0]}
        if len(rest) == 2 and resource == "invoices" and rest[1] == "lines":
            return self.invoice_lines, {"oid": rest[0]}
        if len(rest) == 2 and resource == "customers" and rest[1] == "tax_ids":
            return self.customer_tax_ids, {"oid": rest[0]}
        raise unknown

    # -- parameters ----------------------------------------------------------------------------
    @staticmethod
    def _array(req: Request, name: str) -> list[str]:
        """`name[]=a&name[]=b`, `name[0]=a&name[1]=b` (stripe-python's encoding) or `name=a`."""
        out: list[str] = []
        pattern = re.compile(rf"^{re.escape(name)}(\[\d*\])?$")
        for key in sorted(req.query, key=lambda k: (len(k), k)):
            if pattern.match(key):
                out.extend(req.query[key])
        return out

    def _limit(self, req: Request) -> int:
        raw = req.arg("limit")
        if raw is None:
            return self.config.default_limit
        try:
            limit = int(raw)
        except ValueError:
            raise _bad(f"Invalid integer: {raw}", "limit", "parameter_invalid_integer") from None
        if not 1 <= limit <= self.config.max_limit:
            raise _bad(f"This value must be less than or equal to {self.config.max_limit} (it currently is "
                       f"'{limit}').", "limit", "parameter_invalid_integer")
        return limit

    @staticmethod
    def _created_filter(req: Request) -> Callable[[int], bool]:
        bounds: list[tuple[str, int]] = []
        for op in ("gt", "gte", "lt", "lte"):
            raw = req.arg(f"created[{op}]")
            if raw is not None:
                try:
                    bounds.append((op, int(raw)))
                except ValueError:
                    raise _bad(f"Invalid integer: {raw}", f"created[{op}]", "parameter_invalid_integer") from None
        exact = req.arg("created")
        if exact is not None:
            try:
                bounds.append(("eq", int(exact)))
            except ValueError:
                raise _bad(f"Invalid integer: {exact}", "created", "parameter_invalid_integer") from None
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
               "lte": lambda a, b: a <= b, "eq": lambda a, b: a == b}
        return lambda created: all(ops[op](created, v) for op, v in bounds)

    def _expand(self, req: Request, allowed: set[str]) -> set[str]:
        wanted = set(self._array(req, "expand"))
        for name in wanted - allowed:
            raise _bad(f"This property cannot be expanded ({name}).", "expand")
        return wanted

    def _page(self, req: Request, ordered: list[tuple[tuple, Any]], key_of: Callable[[str], tuple | None],
              noun: str) -> tuple[list[Any], bool]:
        """`ordered`: (sort key, item) newest first. Applies starting_after / ending_before and limit."""
        limit = self._limit(req)
        after, before = req.arg("starting_after"), req.arg("ending_before")
        if after and before:
            raise _bad("You may only specify one of these parameters: ending_before, starting_after.")
        if after or before:
            cursor = key_of(after or before)
            if cursor is None:
                raise _HttpError(_error(400, "invalid_request_error", f"No such {noun}: '{after or before}'",
                                        "resource_missing", "starting_after" if after else "ending_before"))
            if after:
                rest = [(k, x) for k, x in ordered if k < cursor]
                return [x for _, x in rest[:limit]], len(rest) > limit
            newer = [(k, x) for k, x in ordered if k > cursor]
            return [x for _, x in newer[-limit:]], len(newer) > limit
        return [x for _, x in ordered[:limit]], len(ordered) > limit

    @staticmethod
    def _list_body(req: Request, data: list[Any], has_more: bool) -> dict[str, Any]:
        return {"object": "list", "data": data, "has_more": has_more, "url": f"/v1{req.path[3:]}"}

    # -- rendering -----------------------------------------------------------------------------
    def _malformed_target(self, otype: str) -> tuple[str | None, str | None]:
        s = self.faults.settings
        if s.malformed_record is None or s.malformed_object_type != otype:
            return None, None
        ids = self.store.created_order.get(otype) or []
        return (ids[len(ids) // 2], s.malformed_record) if ids else (None, None)

    def _show(self, otype: str, obj: dict[str, Any], version: str, expand: set[str],
              malformed: tuple[str | None, str | None] = (None, None)) -> dict[str, Any]:
        out = dict(to_version(obj, version))
        if otype == "customers" and not obj.get("deleted") and "tax_ids" not in expand:
            out.pop("tax_ids", None)  # includable only: Stripe shows tax ids when expanded
        if otype == "invoices" and not obj.get("deleted"):
            lines = dict(out["lines"])
            shown = lines["data"][: self.config.embedded_lines]
            lines["has_more"] = len(lines["data"]) > len(shown)
            lines["data"] = shown
            out["lines"] = lines
        target, kind = malformed
        if target is not None and obj["id"] == target:
            if kind == "bad_date":
                out["created"] = "not-a-date"
            elif kind == "bad_id":
                out["id"] = "bad id " + obj["id"].split("_", 1)[-1]
        return out

    def _lookup(self, otype: str, oid: str) -> dict[str, Any]:
        obj = self.store.objects[otype].get(oid)
        if obj is None:
            raise _HttpError(_error(404, "invalid_request_error", f"No such {SINGULAR[otype]}: '{oid}'",
                                    "resource_missing", "id"))
        return obj

    # -- handlers ------------------------------------------------------------------------------
    def list_objects(self, req: Request, version: str, otype: str) -> Response:
        store = self.store
        expand = self._expand(req, {"data.tax_ids"} if otype == "customers" else set())
        created_ok = self._created_filter(req)
        filters: list[Callable[[dict[str, Any]], bool]] = []
        for name in ("customer", "invoice", "collection_method", "email"):
            value = req.arg(name)
            if value is not None:
                filters.append(lambda o, n=name, v=value: o.get(n) == v)
        status = req.arg("status")
        if otype == "subscriptions":
            if status in (None, ""):
                filters.append(lambda o: o["status"] not in ("canceled", "incomplete_expired"))
            elif status == "ended":
                filters.append(lambda o: o["status"] in ("canceled", "incomplete_expired"))
            elif status != "all":
                filters.append(lambda o: o["status"] == status)
        elif otype == "invoices" and status:
            if status not in ("draft", "open", "paid", "uncollectible", "void"):
                raise _bad(f"Invalid status: must be one of draft, open, paid, uncollectible, or void", "status")
            filters.append(lambda o: o["status"] == status)
        subscription = req.arg("subscription")
        if otype == "invoices" and subscription:
            filters.append(lambda o: ((o.get("parent") or {}).get("subscription_details") or {})
                           .get("subscription") == subscription)
        objects = store.objects[otype]
        ordered = []
        for oid in store.created_order[otype]:
            obj = objects[oid]
            if created_ok(obj["created"]) and all(f(obj) for f in filters):
                ordered.append(((obj["created"], oid), obj))

        def key_of(oid: str) -> tuple | None:
            obj = objects.get(oid)
            return None if obj is None else (obj["created"], oid)

        page, has_more = self._page(req, ordered, key_of, SINGULAR[otype])
        malformed = self._malformed_target(otype)
        inner = {e[len("data."):] for e in expand}
        data = [self._show(otype, o, version, inner, malformed) for o in page]
        return Response(200, self._list_body(req, data, has_more))

    def get_object(self, req: Request, version: str, otype: str, oid: str) -> Response:
        expand = self._expand(req, {"tax_ids"} if otype == "customers" else set())
        obj = self._lookup(otype, oid)
        if obj.get("deleted"):
            return Response(200, {"id": oid, "object": SINGULAR[otype], "deleted": True})
        return Response(200, self._show(otype, obj, version, expand, self._malformed_target(otype)))

    def invoice_lines(self, req: Request, version: str, oid: str) -> Response:
        inv = self._lookup("invoices", oid)
        lines = [to_version(line, version) for line in inv["lines"]["data"]]
        # lines keep the invoice's order (oldest first); the cursor is the position
        ordered = [((-i,), line) for i, line in enumerate(lines)]
        index = {line["id"]: (-i,) for i, line in enumerate(lines)}
        page, has_more = self._page(req, ordered, index.get, "line item")
        return Response(200, self._list_body(req, page, has_more))

    def customer_tax_ids(self, req: Request, version: str, oid: str) -> Response:
        cust = self._lookup("customers", oid)
        items = (cust.get("tax_ids") or {}).get("data") or []
        ordered = [((t["created"], t["id"]), t) for t in sorted(items, key=lambda t: (t["created"], t["id"]),
                                                                reverse=True)]
        index = {t["id"]: (t["created"], t["id"]) for t in items}
        page, has_more = self._page(req, ordered, index.get, "tax id")
        return Response(200, self._list_body(req, page, has_more))

    def _live_events(self) -> list[tuple[tuple, dict[str, Any]]]:
        store = self.store
        since = store.now - EVENT_RETENTION_DAYS * 86400
        return [((e["created"], n), e) for n, e in enumerate(store.events) if e["created"] >= since]

    def _show_event(self, event: dict[str, Any]) -> dict[str, Any]:
        out = dict(event)
        data = dict(out["data"])
        obj = to_version(data["object"], event["api_version"])
        if obj.get("object") == "customer" and "tax_ids" in obj:
            obj = {k: v for k, v in obj.items() if k != "tax_ids"}  # includable only: never in events
        data["object"] = obj
        out["data"] = data
        return out

    def list_events(self, req: Request, version: str) -> Response:
        etype = req.arg("type")
        types = self._array(req, "types")
        if etype and types:
            raise _bad("You may only specify one of these parameters: type, types.")
        if len(types) > 20:
            raise _bad("You may pass at most 20 types.", "types")
        created_ok = self._created_filter(req)
        if etype:
            pattern = re.compile("^" + re.escape(etype).replace(r"\*", ".*") + "$")
            type_ok: Callable[[str], bool] = lambda t: bool(pattern.match(t))
        elif types:
            wanted = set(types)
            type_ok = lambda t: t in wanted
        else:
            type_ok = lambda t: True
        live = self._live_events()
        ordered = [(k, e) for k, e in reversed(live) if type_ok(e["type"]) and created_ok(e["created"])]
        index = {e["id"]: k for k, e in live}
        page, has_more = self._page(req, ordered, index.get, "event")
        return Response(200, self._list_body(req, [self._show_event(e) for e in page], has_more))

    def get_event(self, req: Request, version: str, event_id: str) -> Response:
        for _k, event in self._live_events():
            if event["id"] == event_id:
                return Response(200, self._show_event(event))
        raise _HttpError(_error(404, "invalid_request_error", f"No such event: '{event_id}'", "resource_missing",
                                "id"))
