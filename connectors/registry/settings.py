"""Registry constants: the public "Recherche d'entreprises" API (recherche-entreprises.api.gouv.fr), the Sirene
stock-file columns, built-in code labels.

Limits are the service's own (reference notes §2.1): no auth, 7 requests/s per IP (429 + Retry-After beyond),
`per_page` <= 25, `page` <= 1000 and `page * per_page` <= 10,000 results per query.
"""
from __future__ import annotations

from typing import Dict, Tuple

DEFAULT_BASE_URL = "https://recherche-entreprises.api.gouv.fr"
SEARCH_PATH = "/search"
# The service asks for a descriptive User-Agent (it may restrict anonymous heavy users first).
USER_AGENT = "crm-etl registry connector (+https://github.com/crm-etl/crm-etl)"

RATE_LIMIT_PER_SECOND = 7  # per IP; 30/s per ASN too, so shared cloud egress may need less (config)
# Our window is a little longer than the server's second: requests leave at the edge of the window and arrive
# a few ms apart, so an exact 7-in-1.0 s pace still draws the odd 429.
RATE_WINDOW_SECONDS = 1.15
MAX_PER_PAGE = 25
MAX_PAGE = 1000
RESULT_CAP = 10_000

DEFAULT_MAX_AGE_DAYS = 30  # cached look-ups older than this are fetched again
DEFAULT_MAX_CANDIDATES = 5  # name + postcode searches: candidates kept per query (one page)

# `minimal=true` trims the answer; `include` adds back what is kept (score only exists through include).
LOOKUP_INCLUDE = "siege,tva,score"
SEARCH_INCLUDE = "siege,tva,score,matching_etablissements"

# Sirene stock files (INSEE "dessin de fichier", format 3.11): the columns the connector reads.
STOCK_UNITE_LEGALE_COLUMNS: Tuple[str, ...] = (
    "siren", "statutDiffusionUniteLegale", "dateCreationUniteLegale", "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale", "categorieEntreprise", "dateDebut", "etatAdministratifUniteLegale",
    "denominationUniteLegale", "nomUniteLegale", "prenom1UniteLegale", "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale", "nomenclatureActivitePrincipaleUniteLegale", "nicSiegeUniteLegale",
)
STOCK_ETABLISSEMENT_COLUMNS: Tuple[str, ...] = (
    "siren", "nic", "siret", "etablissementSiege", "numeroVoieEtablissement", "indiceRepetitionEtablissement",
    "typeVoieEtablissement", "libelleVoieEtablissement", "complementAdresseEtablissement",
    "codePostalEtablissement", "libelleCommuneEtablissement",
)
# Columns without which a stock file cannot be used (the others read as null when absent).
STOCK_UNITE_LEGALE_REQUIRED = ("siren", "denominationUniteLegale", "etatAdministratifUniteLegale", "nicSiegeUniteLegale")
STOCK_ETABLISSEMENT_REQUIRED = ("siret", "etablissementSiege", "codePostalEtablissement")
STOCK_BATCH_ROWS = 100_000

# INSEE "tranche d'effectif salarié" codes (reference §2.5).
HEADCOUNT_BANDS: Dict[str, str] = {
    "NN": "Unité non employeuse", "00": "0 salarié", "01": "1 ou 2 salariés", "02": "3 à 5 salariés",
    "03": "6 à 9 salariés", "11": "10 à 19 salariés", "12": "20 à 49 salariés", "21": "50 à 99 salariés",
    "22": "100 à 199 salariés", "31": "200 à 249 salariés", "32": "250 à 499 salariés",
    "41": "500 à 999 salariés", "42": "1 000 à 1 999 salariés", "51": "2 000 à 4 999 salariés",
    "52": "5 000 à 9 999 salariés", "53": "10 000 salariés et plus",
}

# The most common INSEE "catégories juridiques" (the full list has ~260 codes: load INSEE's file with
# `legal_form_labels_file` for the rest; an unknown code keeps a null label, never a wrong one).
LEGAL_FORMS: Dict[str, str] = {
    "1000": "Entrepreneur individuel",
    "5202": "Société en nom collectif",
    "5498": "SARL unipersonnelle",
    "5499": "Société à responsabilité limitée (sans autre indication)",
    "5599": "SA à conseil d'administration (s.a.i.)",
    "5710": "SAS, société par actions simplifiée",
    "5720": "Société par actions simplifiée à associé unique",
    "6540": "Société civile immobilière",
    "9220": "Association déclarée",
}
