"""French registry stand-in: the public "Recherche d'entreprises" API (recherche-entreprises.api.gouv.fr).

Mounted at <base>/registry. Served: `GET /search` (also HEAD) with `q` (a 9-digit SIREN or 14-digit SIRET is a direct
look-up that ignores every other filter; else a name search), `code_postal` (comma list, on establishments),
`etat_administratif`, `categorie_entreprise`, `page` (<= 1000), `per_page` (<= 25), `page * per_page` <= 10,000,
`minimal` + `include` (siege, tva, score, matching_etablissements, ...), unknown parameters ignored (as the real one).
Errors are `{"erreur": "..."}` with the real messages; 7 requests/s per client IP with 429 + Retry-After. No auth.

What is not the real service: the name search is a token match (score = share of the query's words found in the
name, 0-100 scale), not Elasticsearch's BM25; `dirigeants`, `finances` and `complements` are near-empty; the
text search looks at the legal name only (not addresses, not people).
"""
from __future__ import annotations

import collections
import re
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from sandbox.faults import Faults
from sandbox.registry_render import Establishment, RegistryView, fold, registry_view
from sandbox.servers import Request, Response, VendorApp

FILTER_PARAMS = {"code_postal", "code_commune", "departement", "region", "epci", "activite_principale",
                 "section_activite_principale", "categorie_entreprise", "nature_juridique",
                 "tranche_effectif_salarie", "etat_administratif"}
INCLUDABLE = {"complements", "dirigeants", "finances", "matching_etablissements", "siege", "score", "tva"}
MINIMAL_FIELDS = {"siren", "nom_complet", "nom_raison_sociale", "sigle", "nombre_etablissements",
                  "nombre_etablissements_ouverts", "activite_principale", "section_activite_principale",
                  "categorie_entreprise", "annee_categorie_entreprise", "caractere_employeur", "date_creation",
                  "date_fermeture", "date_mise_a_jour", "etat_administratif", "nature_juridique",
                  "tranche_effectif_salarie", "annee_tranche_effectif_salarie", "statut_diffusion"}

ERR_NO_PARAM = "Veuillez indiquer au moins un paramètre de recherche."
ERR_SHORT = "3 caractères minimum pour les termes de la requête (ou utilisez au moins un filtre)"
ERR_SIREN = "Numéro Siren invalide."
ERR_CAP = ("Le nombre total de résultats est restreint à 10 000. Pour garantir cela, le produit du numéro de page "
           "(par défaut, page = 1) et du nombre de résultats par page (par défaut, per_page = 10), c'est-à-dire "
           "`page * per_page`, ne doit pas excéder 10 000.")
ERR_500 = "Une erreur inattendue s'est produite, veuillez réessayer plus tard."
ERR_429 = "Trop de requêtes : la limite est de 7 requêtes par seconde et par adresse IP."


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


@dataclass
class RegistryConfig:
    rate_limit_per_second: int = 7  # per client IP
    retry_after_seconds: int = 1
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)


def make_app(world: Any, faults: Faults, **options: Any) -> "RegistryApp | None":
    if not (getattr(world, "registry", None) or getattr(world, "companies", None)):
        return None
    known = {f.name for f in fields(RegistryConfig)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown registry option(s) {sorted(unknown)}; known: {sorted(known)}")
    return RegistryApp(world, faults, RegistryConfig(**options))


class RegistryApp(VendorApp):
    name = "registry"

    def __init__(self, world: Any, faults: Faults, config: RegistryConfig) -> None:
        self.world = world
        self.faults = faults
        self.config = config
        self._lock = threading.Lock()
        self._calls: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        # The fault switch `malformed_record` with malformed_object_type="registry" spoils this unit's answer.
        companies = getattr(world, "companies", None) or []
        self.malformed_siren = companies[0].siren if companies else None

    @property
    def view(self) -> RegistryView:
        return registry_view(self.world)

    # -- VendorApp ---------------------------------------------------------------------------------------
    def connection_info(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__REGISTRY__BASE_URL": base_url}

    def fault_response(self, kind: str, status: int) -> Response:
        if kind == "rate_limit":
            return Response(429, {"erreur": ERR_429}, {"Retry-After": str(self.config.retry_after_seconds)})
        return Response(status, {"erreur": ERR_500})

    def reset_limits(self) -> None:
        with self._lock:
            self._calls.clear()

    def _rate_limited(self, req: Request) -> Response | None:
        ip = req.headers.get("x-forwarded-for", "127.0.0.1").split(",")[0].strip()
        now = self.config.clock()
        with self._lock:
            window = self._calls[ip]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.config.rate_limit_per_second:
                wait = max(1, int(window[0] + 1.0 - now + 0.999))
                return Response(429, {"erreur": ERR_429}, {"Retry-After": str(wait)})
            window.append(now)
        return None

    def handle(self, req: Request) -> Response:
        limited = self._rate_limited(req)
        if limited is not None:
            return limited
        path = req.path.rstrip("/")
        if path == "/search" and req.method in ("GET", "HEAD"):
            return self.search(req)
        if path == "/near_point":
            return Response(400, {"erreur": "near_point is not served by the sandbox"})
        return Response(404, {"erreur": "Ressource non trouvée."})

    # -- /search -----------------------------------------------------------------------------------------
    def search(self, req: Request) -> Response:
        q = (req.arg("q") or "").strip()
        filters = {k: req.arg_list(k) for k in FILTER_PARAMS if req.arg_list(k)}
        if not q and not filters:
            return Response(400, {"erreur": ERR_NO_PARAM})
        try:
            page = int(req.arg("page", "1"))
            per_page = int(req.arg("per_page", "10"))
        except ValueError:
            return Response(400, {"erreur": "Veuillez indiquer un entier pour `page` et `per_page`."})
        if not 1 <= per_page <= 25:
            return Response(400, {"erreur": "Veuillez indiquer un `per_page` entre 1 et 25."})
        if not 1 <= page <= 1000:
            return Response(400, {"erreur": "Veuillez indiquer un numéro de page entre 1 et 1000."})
        if page * per_page > 10_000:
            return Response(400, {"erreur": ERR_CAP})
        minimal = (req.arg("minimal") or "").lower() == "true"
        include = set(req.arg_list("include"))
        if include - INCLUDABLE:
            return Response(400, {"erreur": f"Veuillez indiquer des valeurs valides pour `include` : "
                                            f"{', '.join(sorted(INCLUDABLE))}."})
        if include and not minimal:
            return Response(400, {"erreur": "Le paramètre `include` nécessite `minimal=True`."})
        view = self.view
        compact = re.sub(r"\s", "", q)
        hits: list[tuple[float, Any, list[Establishment]]]
        if re.fullmatch(r"\d{9}", compact):  # direct SIREN look-up: every other filter ignored
            if not _luhn_ok(compact):
                return Response(400, {"erreur": ERR_SIREN})
            e = view.by_siren.get(compact)
            hits = [(100.0, e, [])] if e else []
        elif re.fullmatch(r"\d{14}", compact):  # direct SIRET look-up
            est = view.by_siret.get(compact)
            hits = [(100.0, view.by_siren[est.siren], [est])] if est else []
        else:
            if len(q) < 3 and not filters:
                return Response(400, {"erreur": ERR_SHORT})
            hits = self._text_search(view, q, filters)
        total = len(hits)
        start = (page - 1) * per_page
        results = [self._render(view, e, matching, score, minimal, include)
                   for score, e, matching in hits[start:start + per_page]]
        body = {"results": results, "total_results": total, "page": page, "per_page": per_page,
                "total_pages": (total + per_page - 1) // per_page}
        return Response(200, body if req.method == "GET" else None)

    @staticmethod
    def _text_search(view: RegistryView, q: str, filters: dict[str, list[str]]):
        words = fold(q).split()
        postcodes = set(filters.get("code_postal", []))
        hits = []
        for e in view.entities:
            if "etat_administratif" in filters and e.etat not in filters["etat_administratif"]:
                continue
            if "categorie_entreprise" in filters and e.category not in filters["categorie_entreprise"]:
                continue
            if "activite_principale" in filters and e.naf_code not in filters["activite_principale"]:
                continue
            if "nature_juridique" in filters and e.legal_form_code not in filters["nature_juridique"]:
                continue
            matching = view.establishments.get(e.siren, [])
            if postcodes:
                matching = [x for x in matching if x.postcode in postcodes]
                if not matching:
                    continue
            if words:
                tokens = view.folded_names[e.siren]
                found = sum(1 for w in words if any(t.startswith(w) for t in tokens))
                if found * 2 < len(words) or found == 0:  # most of the query's words must be in the name
                    continue
                # share of query words found, minus a little per name word the query lacks
                score = round(100.0 * found / len(words) - 2.0 * max(0, len(tokens) - found), 3)
            else:
                score = 1.0
            hits.append((score, e, matching))
        hits.sort(key=lambda h: (-h[0], h[1].siren))
        return hits

    def _render(self, view: RegistryView, e: Any, matching: list[Establishment], score: float, minimal: bool,
                include: set[str]) -> dict[str, Any]:
        full = view.api_result(e, matching)
        full["score"] = score
        if minimal:
            out = {k: v for k, v in full.items() if k in MINIMAL_FIELDS or k in include}
        else:
            out = {k: v for k, v in full.items() if k != "score"}
        s = self.faults.settings
        if s.malformed_record and s.malformed_object_type == "registry" and e.siren == self.malformed_siren:
            if s.malformed_record == "bad_date":
                out["date_creation"] = "not-a-date"
            else:
                out["siren"] = "12345678X"
            self.faults.record({"fault": "malformed_record", "object_type": "registry", "id": e.siren,
                                "kind": s.malformed_record})
        return out
