"""Registry HTTP client and identifier checks.

Identifiers are checked with python-stdnum before anything is sent (SIREN/SIRET Luhn, La Poste's SIRET
exception, the French VAT key): the API answers a bad SIREN with a 400 anyway, and a typo must be reported to
whoever typed it, not spent against the 7 requests/s budget.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import requests
from dlt.sources.helpers.requests import Session
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret
from stdnum.fr import tva as stdnum_tva

from connectors.common.stats import RequestStats  # noqa: F401  (re-exported)
from connectors.common.retry import RetryPolicy, send_with_retry
from connectors.common.throttle import RateLimiter
from connectors.registry import settings

logger = logging.getLogger("connectors.registry")


class RegistryError(RuntimeError):
    """The registry API refused a request in a way retrying cannot fix (its `erreur` message is kept)."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------- identifiers

@dataclass(frozen=True)
class Identifier:
    """A wanted company's identifier after checking: the SIREN to look up, or why there is none."""

    siren: Optional[str]
    given: str  # what the caller gave, e.g. "siret=35600000049837"
    error: Optional[str] = None


def _digits(value: Any) -> str:
    return re.sub(r"[\s.\-]", "", str(value or ""))


def check_identifier(siren: Any = None, siret: Any = None, vat: Any = None) -> Optional[Identifier]:
    """The SIREN behind whichever identifier is given (SIREN first, then SIRET, then VAT), or the reason it is
    invalid. None when no identifier is given at all."""
    if siren not in (None, ""):
        value = _digits(siren)
        try:
            return Identifier(stdnum_siren.validate(value), f"siren={siren}")
        except ValidationError as exc:
            return Identifier(None, f"siren={siren}", f"invalid SIREN {siren!r}: {exc.message}")
    if siret not in (None, ""):
        value = _digits(siret)
        try:
            # stdnum handles La Poste's SIRETs (356000000...: digit sum multiple of 5 instead of Luhn)
            return Identifier(stdnum_siret.validate(value)[:9], f"siret={siret}")
        except ValidationError as exc:
            return Identifier(None, f"siret={siret}", f"invalid SIRET {siret!r}: {exc.message}")
    if vat not in (None, ""):
        value = re.sub(r"[\s.\-]", "", str(vat)).upper()
        try:
            compact = stdnum_tva.validate(value)  # key checked; returns the number without "FR"
        except ValidationError as exc:
            return Identifier(None, f"vat={vat}", f"invalid French VAT number {vat!r}: {exc.message}")
        body = compact[-9:]
        if body.startswith("000"):
            return Identifier(None, f"vat={vat}", f"VAT number {vat!r} is a Monaco number (no SIREN)")
        return Identifier(body, f"vat={vat}")
    return None


def fr_vat(siren: str) -> str:
    """The numeric-key French VAT number of a SIREN (FR + key + SIREN)."""
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"  # the classic key (stdnum.fr.tva's check)


def fold(text: Any) -> str:
    """Upper-case, accents off, punctuation to spaces, single spaces: the form search keys are built from."""
    s = unicodedata.normalize("NFKD", str(text or ""))
    s = "".join(c for c in s if not unicodedata.combining(c)).upper()
    return " ".join(re.sub(r"[^0-9A-Z]+", " ", s).split())


def search_key(name: Any, postcode: Any = None) -> str:
    """The cache key of a name + postcode search (stable across runs and callers)."""
    return f"name:{fold(name)}|{_digits(postcode)}"


# ------------------------------------------------------------------------------------------- client

class RegistryClient:
    """GET /search with pacing (7/s), Retry-After on 429, backoff on 5xx/timeouts, `{"erreur": ...}` errors."""

    def __init__(
        self,
        base_url: str = settings.DEFAULT_BASE_URL,
        *,
        rate_limit_per_second: float = settings.RATE_LIMIT_PER_SECOND,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        retry_policy: Optional[RetryPolicy] = None,
        user_agent: str = settings.USER_AGENT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self.limiter = RateLimiter(max(1, int(rate_limit_per_second)), settings.RATE_WINDOW_SECONDS, name="registry")
        self.stats = RequestStats()
        self.session = Session(timeout=self.timeout, raise_for_status=False)
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

    def search(self, params: Dict[str, Any], kind: str = "search") -> Dict[str, Any]:
        per_page = int(params.get("per_page", 10))
        page = int(params.get("page", 1))
        if per_page > settings.MAX_PER_PAGE or page * per_page > settings.RESULT_CAP or page > settings.MAX_PAGE:
            raise RegistryError(f"page {page} x per_page {per_page} is past the API's limits "
                                f"(per_page <= {settings.MAX_PER_PAGE}, page x per_page <= {settings.RESULT_CAP})")
        url = self.base_url + settings.SEARCH_PATH

        def send() -> requests.Response:
            self.limiter.acquire()
            self.stats.count(kind)
            return self.session.get(url, params=params, timeout=self.timeout)

        def on_backoff(response: Optional[requests.Response], exc: Optional[BaseException], delay: float) -> None:
            self.stats.retries += 1
            if response is not None and response.status_code == 429:
                self.limiter.pause_for(delay)  # the budget is per IP: hold every request back

        response = send_with_retry(send, self.retry_policy, on_backoff=on_backoff,
                                   description=f"registry GET {settings.SEARCH_PATH}")
        body = _json_or_empty(response)
        if response.status_code >= 400:
            message = body.get("erreur") if isinstance(body, dict) else None
            raise RegistryError(
                f"registry GET {settings.SEARCH_PATH} failed: HTTP {response.status_code} "
                f"{message or response.text[:300]}", response.status_code)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise RegistryError(f"registry answer is not a result page: {response.text[:300]}", response.status_code)
        return body

    def lookup(self, siren: str) -> List[Dict[str, Any]]:
        """The unité légale with this SIREN ([] when the registry has none: unknown or non-diffusible)."""
        page = self.search({"q": siren, "minimal": "true", "include": settings.LOOKUP_INCLUDE,
                            "per_page": 1, "page": 1}, kind="lookup")
        return list(page["results"])

    def search_name(self, name: str, postcode: Optional[str], max_candidates: int) -> Tuple[List[Dict[str, Any]], int]:
        """The best `max_candidates` units for a name (+ postcode filter), in the API's order; and its total."""
        params: Dict[str, Any] = {"q": name, "minimal": "true", "include": settings.SEARCH_INCLUDE,
                                  "per_page": min(settings.MAX_PER_PAGE, max(1, max_candidates)), "page": 1}
        if postcode:
            params["code_postal"] = postcode
        out: List[Dict[str, Any]] = []
        total = 0
        while len(out) < max_candidates:
            page = self.search(params, kind="search")
            total = int(page.get("total_results") or 0)
            out += page["results"]
            if params["page"] >= int(page.get("total_pages") or 0) or not page["results"]:
                break
            if (params["page"] + 1) * params["per_page"] > settings.RESULT_CAP:
                break
            params = {**params, "page": params["page"] + 1}
        return out[:max_candidates], total


def _json_or_empty(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}
