"""Koban CRM API v1 twin (mounted at <base>/koban; the real one is https://app-koban.com/api/v1).

Paths (relative to the mount): /api/v1/<controller>/<method>. Auth: headers `X-ncApi` (API key) and `X-ncUser`
(user key) on every call. Implemented:
  GET <ctrl>/GetUpdated?updated=<unix s>&s=<start>&l=<length>   ctrl in ncThird, ncContact, ncLead, ncDeal,
      ncAction, ncInvoice: records with LastUpdateDate >= updated, oldest change first (then Guid), offset-paged;
      answers `{"Length": <matching total>, "List": [...]}` as the official SDK reads it (no envelope).
      Obsolete (deleted) records are returned too, with "Obsolete": true. A record purged from the store
      (KobanStore.purge: a hard delete) is no longer returned at all.
  GET <ctrl>/GetOne?id=<Guid>       -> {"Success", "Message", "Errors", "Result": record}
  GET ncUser/GetAll, ncDealProcess/GetAll -> envelope with the list in Result (method names assumed: Koban's
      public docs show the deal-process structure and users embedded in records, not these list methods).
Errors use the `{Success: false, Message, Errors, Result: null}` envelope. Koban publishes no rate limit, so none
is enforced; 429 / 5xx only come from fault injection (429 carries Retry-After; 502/503 are IIS HTML pages).
Data faults: malformed_record ("bad_date": CreationDate "/Date(not-a-date)/"; "bad_id": Guid null) on the
middle record of malformed_object_type (neutral names accepted: contacts, companies, deals, actions...);
update_during_paging touches the first record of the K-th GetUpdated page.
The store catches up with world.advance lazily (sandbox/koban_render.apply_koban_steps) on each request.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from sandbox.faults import Faults
from sandbox.koban_render import apply_koban_steps, dotnet_date, epoch_ms, render_koban
from sandbox.koban_store import CONTROLLERS, OBJECT_ALIASES, KobanStore
from sandbox.servers import Request, Response, VendorApp

PREFIX = "/api/v1/"


@dataclass
class KobanConfig:
    api_key: str | None = None  # default "sandbox-koban-api-<seed>"
    user_key: str | None = None  # default "sandbox-koban-user-<seed>"
    default_length: int = 20  # `l` when absent (the docs' example pages by 20)
    max_length: int = 500
    retry_after_seconds: int = 1


def make_app(world: Any, faults: Faults, **options: Any) -> "KobanApp | None":
    if isinstance(world, KobanStore):
        store, source = world, None
    elif hasattr(world, "company_records") and hasattr(world, "migration_date"):
        store, source = render_koban(world), world
    else:
        return None
    known = {f.name for f in fields(KobanConfig)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown koban option(s) {sorted(unknown)}; known: {sorted(known)}")
    config = KobanConfig(**options)
    seed = getattr(world, "seed", 0)
    config.api_key = config.api_key or f"sandbox-koban-api-{seed}"
    config.user_key = config.user_key or f"sandbox-koban-user-{seed}"
    return KobanApp(store, faults, config, source)


def _envelope(result: Any = None, success: bool = True, message: str | None = None,
              errors: list[str] | None = None, status: int = 200) -> Response:
    return Response(status, {"Success": success, "Message": message, "Errors": errors or [], "Result": result})


def _fail(status: int, message: str) -> Response:
    return _envelope(None, False, message, [message], status)


class KobanApp(VendorApp):
    name = "koban"

    def __init__(self, store: KobanStore, faults: Faults, config: KobanConfig, world: Any = None) -> None:
        self.store, self.faults, self.config, self.world = store, faults, config, world

    def connection_info(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__KOBAN__BASE_URL": f"{base_url}/api/v1", "SOURCES__KOBAN__API_KEY": self.config.api_key,
                "SOURCES__KOBAN__USER_KEY": self.config.user_key}

    def fault_response(self, kind: str, status: int) -> Response:
        if kind == "rate_limit":
            resp = _fail(429, "Too many requests")
            resp.headers["Retry-After"] = str(self.config.retry_after_seconds)
            return resp
        if status == 500:
            return _fail(500, "Une erreur est survenue")
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Server Error")
        html = f"<html><head><title>{status} - {reason}</title></head><body><h2>{status} - {reason}</h2></body></html>"
        return Response(status, html, content_type="text/html; charset=utf-8")

    def handle(self, req: Request) -> Response:
        if req.headers.get("x-ncapi") != self.config.api_key or req.headers.get("x-ncuser") != self.config.user_key:
            return _fail(401, "Authorization has been denied for this request.")
        if not req.path.startswith(PREFIX):
            return _fail(404, f"No HTTP resource was found that matches the request URI '{req.path}'.")
        ctrl, _, method = req.path[len(PREFIX):].strip("/").partition("/")
        if req.method != "GET":
            return _fail(405, f"The requested resource does not support http method '{req.method}'.")
        if self.world is not None:
            apply_koban_steps(self.world, self.store)
        try:
            if method == "GetUpdated" and ctrl in CONTROLLERS:
                return self.get_updated(req, ctrl)
            if method == "GetOne" and ctrl in CONTROLLERS:
                return self.get_one(req, ctrl)
            if ctrl == "ncUser" and method == "GetAll":
                with self.store.lock:
                    return _envelope([dict(u) for u in self.store.users])
            if ctrl == "ncDealProcess" and method == "GetAll":
                with self.store.lock:
                    return _envelope([dict(p) for p in self.store.processes])
        except ValueError as exc:
            return _fail(400, str(exc))
        return _fail(404, f"No action was found on the controller '{ctrl}' that matches the request '{method}'.")

    # -- data faults ---------------------------------------------------------------------------
    def _malformed(self, ctrl: str) -> tuple[str | None, str | None]:
        s = self.faults.settings
        if s.malformed_record is None or OBJECT_ALIASES.get(s.malformed_object_type, s.malformed_object_type) != ctrl:
            return None, None
        ordered = self._ordered(ctrl, 0)
        if not ordered:
            return None, None
        return ordered[len(ordered) // 2], s.malformed_record

    def _render(self, ctrl: str, rec: dict[str, Any], malformed: tuple[str | None, str | None]) -> dict[str, Any]:
        out = dict(rec)
        target, kind = malformed
        if target is not None and rec["Guid"] == target:
            if kind == "bad_date":
                out["CreationDate"] = "/Date(not-a-date)/"
            else:
                out["Guid"] = None
        return out

    def _ordered(self, ctrl: str, since_ms: int) -> list[str]:
        stamps = self.store.updated_ms[ctrl]
        return [g for g, _ in sorted(((g, t) for g, t in stamps.items() if t >= since_ms),
                                     key=lambda x: (x[1], x[0]))]

    # -- methods -------------------------------------------------------------------------------
    def get_updated(self, req: Request, ctrl: str) -> Response:
        try:
            updated = int(req.arg("updated", "0") or 0)
            start = int(req.arg("s", "0") or 0)
            length = int(req.arg("l", str(self.config.default_length)) or self.config.default_length)
        except ValueError:
            raise ValueError("updated, s and l must be integers (updated in unix seconds)") from None
        if start < 0 or length < 1:
            raise ValueError("s must be >= 0 and l >= 1")
        length = min(length, self.config.max_length)
        with self.store.lock:
            ordered = self._ordered(ctrl, updated * 1000)
            page_ids = ordered[start:start + length]
            malformed = self._malformed(ctrl)
            page = [self._render(ctrl, self.store.objects[ctrl][g], malformed) for g in page_ids]
            body = {"Length": len(ordered), "List": page}
        watched = self.faults.settings.update_object_type
        if page_ids and OBJECT_ALIASES.get(watched, watched) == ctrl and self.faults.count_list_page(watched):
            self._touch(ctrl, page_ids[0])
        return Response(200, body)

    def get_one(self, req: Request, ctrl: str) -> Response:
        guid_arg = req.arg("id") or req.arg("guid")
        if not guid_arg:
            raise ValueError("id is required")
        with self.store.lock:
            rec = self.store.objects[ctrl].get(guid_arg)
            if rec is None:
                return _fail(404, f"{ctrl} {guid_arg} not found")
            return _envelope(self._render(ctrl, rec, self._malformed(ctrl)))

    def _touch(self, ctrl: str, record_guid: str) -> None:
        """update-during-paging: a record a running sync has already read is modified now."""
        with self.store.lock:
            latest = max(self.store.updated_ms[ctrl].values())
            now = max(epoch_ms(datetime.now(timezone.utc)), latest + 1)
            rec = self.store.objects[ctrl][record_guid]
            rec["LastUpdateDate"] = dotnet_date(datetime.fromtimestamp(now / 1000, tz=timezone.utc))
            rec["DUpdated"] = now // 1000
            rec["Comments"] = f"modifié pendant la synchro ({now})"
            self.store.updated_ms[ctrl][record_guid] = now
        self.faults.record({"fault": "update_during_paging", "object_type": ctrl, "id": record_guid,
                            "LastUpdateDate": rec["LastUpdateDate"]})

