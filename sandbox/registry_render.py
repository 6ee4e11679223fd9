"""The registry's view of the sandbox world, rendered the way the French registry publishes it: "Recherche
d'entreprises" API results and the Sirene stock files (StockUniteLegale / StockEtablissement, real column names).

Source: `world.registry` (sandbox/model.py RegistryEntity: every CRM company plus unrelated units as noise). A
world without it gets one derived from `world.companies` (same fields, nothing random). Extra, non-head-office
establishments exist only in this view: they are drawn deterministically from the world's seed here.

    from sandbox.registry_render import registry_view, write_stock_files
    view = registry_view(world)              # cached per world
    view.api_result(view.by_siren["..."])    # one /search result (unité légale)
    write_stock_files(world, folder, "csv")  # -> (StockUniteLegale path, StockEtablissement path)
"""
from __future__ import annotations

import csv
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sandbox.ids import siret_for
from sandbox.model import RegistryEntity

# NACE rév. 2 division -> section letter (NAF = NACE + a 5th character).
_SECTIONS = [(1, 3, "A"), (5, 9, "B"), (10, 33, "C"), (35, 35, "D"), (36, 39, "E"), (41, 43, "F"), (45, 47, "G"),
             (49, 53, "H"), (55, 56, "I"), (58, 63, "J"), (64, 66, "K"), (68, 68, "L"), (69, 75, "M"), (77, 82, "N"),
             (84, 84, "O"), (85, 85, "P"), (86, 88, "Q"), (90, 93, "R"), (94, 96, "S"), (97, 98, "T"), (99, 99, "U")]
_STREET_TYPE_CODES = {"RUE": "RUE", "AVENUE": "AV", "BOULEVARD": "BD", "PLACE": "PL", "ALLEE": "ALL",
                      "IMPASSE": "IMP", "QUAI": "QUAI", "CHEMIN": "CHE"}

STOCK_UNITE_LEGALE_HEADER = [
    "siren", "statutDiffusionUniteLegale", "unitePurgeeUniteLegale", "dateCreationUniteLegale", "sigleUniteLegale",
    "sexeUniteLegale", "prenom1UniteLegale", "prenom2UniteLegale", "prenom3UniteLegale", "prenom4UniteLegale",
    "prenomUsuelUniteLegale", "pseudonymeUniteLegale", "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale", "anneeEffectifsUniteLegale", "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale", "categorieEntreprise", "anneeCategorieEntreprise", "dateDebut",
    "etatAdministratifUniteLegale", "nomUniteLegale", "nomUsageUniteLegale", "denominationUniteLegale",
    "denominationUsuelle1UniteLegale", "denominationUsuelle2UniteLegale", "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale", "activitePrincipaleUniteLegale", "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale", "economieSocialeSolidaireUniteLegale", "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
]
STOCK_ETABLISSEMENT_HEADER = [
    "siren", "nic", "siret", "statutDiffusionEtablissement", "dateCreationEtablissement",
    "trancheEffectifsEtablissement", "anneeEffectifsEtablissement", "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement", "etablissementSiege", "nombrePeriodesEtablissement",
    "complementAdresseEtablissement", "numeroVoieEtablissement", "indiceRepetitionEtablissement",
    "typeVoieEtablissement", "libelleVoieEtablissement", "codePostalEtablissement", "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement", "distributionSpecialeEtablissement", "codeCommuneEtablissement",
    "codeCedexEtablissement", "libelleCedexEtablissement", "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement", "dateDebut", "etatAdministratifEtablissement", "enseigne1Etablissement",
    "denominationUsuelleEtablissement", "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement", "caractereEmployeurEtablissement",
]


def fold(text: Any) -> str:
    s = unicodedata.normalize("NFKD", str(text or ""))
    s = "".join(c for c in s if not unicodedata.combining(c)).upper()
    return " ".join(re.sub(r"[^0-9A-Z]+", " ", s).split())


def naf_section(naf_code: str) -> str | None:
    m = re.match(r"^(\d{2})", naf_code or "")
    if not m:
        return None
    div = int(m.group(1))
    return next((s for lo, hi, s in _SECTIONS if lo <= div <= hi), None)


def split_address(address: str) -> tuple[str | None, str | None, str]:
    """'12 RUE DE LA PAIX' -> ('12', 'RUE', 'DE LA PAIX') (number, street type code, street name)."""
    parts = address.split(" ", 2)
    if len(parts) == 3 and parts[0].isdigit():
        code = _STREET_TYPE_CODES.get(fold(parts[1]))
        if code:
            return parts[0], code, parts[2]
    return None, None, address


@dataclass
class Establishment:
    siren: str
    nic: str
    siret: str
    head_office: bool
    open: bool
    created: date
    closed: date | None
    address: str
    postcode: str
    city: str


@dataclass
class RegistryView:
    entities: list[RegistryEntity]
    establishments: dict[str, list[Establishment]]  # siren -> establishments (head office first)
    naf_labels: dict[str, str]
    by_siren: dict[str, RegistryEntity] = field(default_factory=dict)
    by_siret: dict[str, Establishment] = field(default_factory=dict)
    folded_names: dict[str, list[str]] = field(default_factory=dict)  # siren -> folded name tokens
    data_year: int = 2025

    def __post_init__(self) -> None:
        self.by_siren = {e.siren: e for e in self.entities}
        self.by_siret = {est.siret: est for ests in self.establishments.values() for est in ests}
        self.folded_names = {e.siren: fold(e.legal_name).split() for e in self.entities}

    def api_result(self, e: RegistryEntity, matching: list[Establishment] | None = None) -> dict[str, Any]:
        """One unité légale as /search returns it (full form; the server trims it for `minimal`)."""
        ests = self.establishments.get(e.siren, [])
        head = next((x for x in ests if x.head_office), None)
        number, street_type, street = split_address(e.address)
        active = e.etat == "A"
        siege = {
            "siret": e.siret, "est_siege": True, "etat_administratif": "A" if active else "F",
            "numero_voie": number, "indice_repetition": None, "type_voie": street_type, "libelle_voie": street,
            "complement_adresse": None, "code_postal": e.postcode, "libelle_commune": e.city,
            "adresse": f"{e.address} {e.postcode} {e.city}", "activite_principale": e.naf_code,
            "tranche_effectif_salarie": e.headcount_band, "annee_tranche_effectif_salarie": str(self.data_year - 1),
            "date_creation": e.creation_date.isoformat(), "date_debut_activite": e.creation_date.isoformat(),
            "date_fermeture": e.closure_date.isoformat() if e.closure_date else None,
            "statut_diffusion_etablissement": "O",
            "date_mise_a_jour": e.updated_at.isoformat().replace("+00:00", "Z"),
        }
        if head is not None:
            siege["date_creation"] = head.created.isoformat()
        return {
            "siren": e.siren,
            "nom_complet": e.legal_name.lower(),
            "nom_raison_sociale": e.legal_name,
            "sigle": None,
            "nombre_etablissements": max(1, len(ests)),
            "nombre_etablissements_ouverts": sum(1 for x in ests if x.open) if active else 0,
            "siege": siege,
            "activite_principale": e.naf_code,
            "section_activite_principale": naf_section(e.naf_code),
            "categorie_entreprise": e.category,
            "annee_categorie_entreprise": str(self.data_year - 2),
            "caractere_employeur": "N" if e.headcount_band in ("NN", "00") else "O",
            "date_creation": e.creation_date.isoformat(),
            "date_fermeture": e.closure_date.isoformat() if e.closure_date else None,
            "date_mise_a_jour": e.updated_at.isoformat().replace("+00:00", "Z"),
            "etat_administratif": e.etat,
            "nature_juridique": e.legal_form_code,
            "tranche_effectif_salarie": e.headcount_band,
            "annee_tranche_effectif_salarie": str(self.data_year - 1),
            "statut_diffusion": "O",
            "dirigeants": [],
            "matching_etablissements": [self._matching(x) for x in (matching or [])],
            "finances": {},
            "complements": {"est_entrepreneur_individuel": e.legal_form_code == "1000"},
            "tva": [e.vat] if active else [],  # DGFiP lists active numbers only
        }

    @staticmethod
    def _matching(x: Establishment) -> dict[str, Any]:
        number, street_type, street = split_address(x.address)
        return {"siret": x.siret, "est_siege": x.head_office, "etat_administratif": "A" if x.open else "F",
                "code_postal": x.postcode, "libelle_commune": x.city,
                "adresse": f"{x.address} {x.postcode} {x.city}", "date_creation": x.created.isoformat(),
                "date_fermeture": x.closed.isoformat() if x.closed else None}


def _derived_registry(world: Any) -> list[RegistryEntity]:
    """The registry view of the CRM companies when the world has none (no noise units: nothing to draw from)."""
    return sorted((RegistryEntity(
        siren=c.siren, siret=c.siret, legal_name=c.legal_name.upper(), naf_code=c.naf_code, naf_label=c.naf_label,
        headcount_band=c.headcount_band, legal_form_code=c.legal_form_code, category=c.category,
        creation_date=c.creation_date, etat="A" if c.active else "C", closure_date=c.closure_date,
        address=c.address.upper(), postcode=c.postcode, city=c.city.upper(), vat=c.vat, company_key=c.key,
        updated_at=c.created_at) for c in world.companies), key=lambda e: e.siren)


def registry_view(world: Any) -> RegistryView:
    cache = getattr(world, "_cache", None)
    if isinstance(cache, dict) and "registry_view" in cache and cache["registry_view"][0] == id(world.registry):
        return cache["registry_view"][1]
    entities = list(getattr(world, "registry", None) or _derived_registry(world))
    rng = random.Random(f"registry-establishments-{getattr(world, 'seed', 0)}")
    cities = sorted({(e.city, e.postcode) for e in entities})
    establishments: dict[str, list[Establishment]] = {}
    for e in entities:
        head_nic = e.siret[9:]
        ests = [Establishment(e.siren, head_nic, e.siret, True, e.etat == "A", e.creation_date, e.closure_date,
                              e.address, e.postcode, e.city)]
        head_n = int(head_nic[:4])
        for k in range(rng.choice([0, 0, 0, 1, 2])):  # some units have secondary establishments
            n = head_n + 1 + k
            city, postcode = rng.choice(cities)
            closed = e.closure_date if e.etat == "C" else (
                date(rng.randint(2019, 2025), rng.randint(1, 12), 1) if rng.random() < 0.3 else None)
            ests.append(Establishment(e.siren, siret_for(e.siren, n)[9:], siret_for(e.siren, n), False,
                                      closed is None, e.creation_date, closed,
                                      f"{rng.randint(1, 99)} RUE DU COMMERCE", postcode, city))
        establishments[e.siren] = ests
    labels = {e.naf_code: e.naf_label for e in entities}
    year = getattr(getattr(world, "as_of", None), "year", 2026)
    view = RegistryView(entities, establishments, labels, data_year=year)
    if isinstance(cache, dict):
        cache["registry_view"] = (id(world.registry) if hasattr(world, "registry") else None, view)
    return view


# ------------------------------------------------------------------------------------------- stock files

def stock_unite_legale_rows(view: RegistryView) -> list[dict[str, str | None]]:
    rows = []
    for e in view.entities:
        rows.append({
            "siren": e.siren, "statutDiffusionUniteLegale": "O", "unitePurgeeUniteLegale": None,
            "dateCreationUniteLegale": e.creation_date.isoformat(), "sigleUniteLegale": None, "sexeUniteLegale": None,
            "prenom1UniteLegale": None, "prenom2UniteLegale": None, "prenom3UniteLegale": None,
            "prenom4UniteLegale": None, "prenomUsuelUniteLegale": None, "pseudonymeUniteLegale": None,
            "identifiantAssociationUniteLegale": None, "trancheEffectifsUniteLegale": e.headcount_band,
            "anneeEffectifsUniteLegale": str(view.data_year - 1),
            "dateDernierTraitementUniteLegale": e.updated_at.strftime("%Y-%m-%dT%H:%M:%S"),
            "nombrePeriodesUniteLegale": "2" if e.etat == "C" else "1", "categorieEntreprise": e.category,
            "anneeCategorieEntreprise": str(view.data_year - 2),
            "dateDebut": (e.closure_date or e.creation_date).isoformat(),
            "etatAdministratifUniteLegale": e.etat, "nomUniteLegale": None, "nomUsageUniteLegale": None,
            "denominationUniteLegale": e.legal_name, "denominationUsuelle1UniteLegale": None,
            "denominationUsuelle2UniteLegale": None, "denominationUsuelle3UniteLegale": None,
            "categorieJuridiqueUniteLegale": e.legal_form_code, "activitePrincipaleUniteLegale": e.naf_code,
            "nomenclatureActivitePrincipaleUniteLegale": "NAFRev2", "nicSiegeUniteLegale": e.siret[9:],
            "economieSocialeSolidaireUniteLegale": "N", "societeMissionUniteLegale": None,
            "caractereEmployeurUniteLegale": "N" if e.headcount_band in ("NN", "00") else "O",
        })
    return rows


def stock_etablissement_rows(view: RegistryView) -> list[dict[str, str | None]]:
    rows = []
    for e in view.entities:
        for x in view.establishments[e.siren]:
            number, street_type, street = split_address(x.address)
            rows.append({
                "siren": x.siren, "nic": x.nic, "siret": x.siret, "statutDiffusionEtablissement": "O",
                "dateCreationEtablissement": x.created.isoformat(),
                "trancheEffectifsEtablissement": e.headcount_band if x.head_office else "NN",
                "anneeEffectifsEtablissement": str(view.data_year - 1),
                "activitePrincipaleRegistreMetiersEtablissement": None,
                "dateDernierTraitementEtablissement": e.updated_at.strftime("%Y-%m-%dT%H:%M:%S"),
                "etablissementSiege": "true" if x.head_office else "false",
                "nombrePeriodesEtablissement": "1" if x.open else "2", "complementAdresseEtablissement": None,
                "numeroVoieEtablissement": number, "indiceRepetitionEtablissement": None,
                "typeVoieEtablissement": street_type, "libelleVoieEtablissement": street,
                "codePostalEtablissement": x.postcode, "libelleCommuneEtablissement": x.city,
                "libelleCommuneEtrangerEtablissement": None, "distributionSpecialeEtablissement": None,
                "codeCommuneEtablissement": None, "codeCedexEtablissement": None, "libelleCedexEtablissement": None,
                "codePaysEtrangerEtablissement": None, "libellePaysEtrangerEtablissement": None,
                "dateDebut": (x.closed or x.created).isoformat(), "etatAdministratifEtablissement": "A" if x.open else "F",
                "enseigne1Etablissement": None, "denominationUsuelleEtablissement": None,
                "activitePrincipaleEtablissement": e.naf_code,
                "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
                "caractereEmployeurEtablissement": "O" if x.open else "N",
            })
    return rows


def write_stock_files(world: Any, folder: str | Path, fmt: str = "csv") -> tuple[Path, Path]:
    """Write StockUniteLegale and StockEtablissement (`fmt` = "csv" | "parquet"); returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    view = registry_view(world)
    out = []
    for name, header, rows in (("StockUniteLegale", STOCK_UNITE_LEGALE_HEADER, stock_unite_legale_rows(view)),
                               ("StockEtablissement", STOCK_ETABLISSEMENT_HEADER, stock_etablissement_rows(view))):
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            path = folder / f"{name}_utf8.parquet"
            table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in header})
            pq.write_table(table, path)
        elif fmt == "csv":
            path = folder / f"{name}_utf8.csv"
            with open(path, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=header)
                w.writeheader()
                w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        else:
            raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
        out.append(path)
    return out[0], out[1]


def write_naf_labels(world: Any, path: str | Path) -> Path:
    """A code,label CSV of the NAF codes the world uses (INSEE publishes the full nomenclature)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["code", "label"])
        for code, label in sorted(registry_view(world).naf_labels.items()):
            w.writerow([code, label])
    return path
