"""Synthetic contacts and companies with known truth, for identity benchmarks and tests.

`generate_contacts(n_records, seed, variant)` and `generate_companies(n_records, seed, variant)`
return pandas frames in the identity input contract plus a truth column (`person_key` /
`company_key`). Deterministic for a seed. `variant="hard"` adds more typos, swapped first/last
names, more missing e-mails, and distinct people behind one shared family or role mailbox. A
duplicate record may carry another address of the same person (a private free-mail address or a
sub-address), as real CRMs do, and may show another job title (typed otherwise or changed since: 2 in 10
copies, 3 in 10 in the hard variant) or none (1 in 10, 2 in 10). A record hangs on its company's CRM record
(`company_source_id`) but for 1 in 10, and carries the company the pipeline resolved
that record to (`company_entity_key`, the same whichever CRM holds the contact) unless `company_entities=False`.
Names recur about as often as in France, or, with `names="skewed"`, as a stress test for homonyms (NAMES).

    python bench/scale_people.py contacts 100000 out.parquet [--hard] [--seed 1] [--names skewed]
"""
from __future__ import annotations

import argparse
import random
import string
from itertools import accumulate
from datetime import datetime, timedelta

import pandas as pd

FIRST = """Jean Marie Pierre Michel Philippe Alain Nicolas Christophe Patrick Daniel Bernard Eric Laurent
Frédéric Stéphane Olivier David Julien Sébastien Thomas Pascal Thierry François Vincent Antoine Romain Maxime
Alexandre Guillaume Mathieu Nathalie Isabelle Sylvie Catherine Françoise Valérie Sandrine Christine Sophie
Véronique Céline Stéphanie Caroline Julie Aurélie Émilie Camille Léa Chloé Manon Inès Zoé Hélène Agnès Anne
Claire Cécile Élodie Laëtitia Mélanie Sarah Lucie Pauline Marion Jérôme Cédric Fabrice Hervé Gilles Yves
Bruno Didier Arnaud Benoît Damien Xavier Lionel Emmanuel Jean-Pierre Jean-Luc Marie-Claude Anne-Sophie
Jean-François Marie-Hélène Pierre-Yves Paul Louis Hugo Lucas Théo Nathan Enzo Léo Gabriel Raphaël Arthur
Jules Adam Noah Louise Alice Jade Emma Rose Anna Mila Lina Juliette Margaux Océane Clémence Justine Laura
Mathilde Charlotte Élise Gaëlle Solène Morgane Anaïs Nadia Karim Mohamed Samir Yasmine Fatima Mehdi Rachid""".split()

LAST_REAL = """Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefebvre Leroy
Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau Vincent Muller Lefèvre Faure
André Mercier Blanc Guérin Boyer Garnier Chevalier François Legrand Gauthier Garcia Perrin Robin Clément Morin
Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier
Brun Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche Renard Schmitt Roy
Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix Olivier Philippe Bourgeois Pierre
Benoît Rey Leclerc Payet Rolland Leclercq Guillaume Lecomte Lopez Jean Dupuy Guillot Hubert Berger Carpentier
Sanchez Dupuis Moulin Louis Deschamps Huet Vasseur Perez Boucher Fleury Royer Klein Jacquet Adam Paris Poirier
Marty Aubry Guyot Carré Charles Renault Charpentier Ménard Maillard Baron Bertin Bailly Hervé Schneider Fernandez
Le_Gall Le_Goff Le_Roux De_la_Fontaine D'Artagnan Le_Bihan Du_Pont De_Villiers Le_Guen""".replace("_", " ").split("\n")
LAST_REAL = [w for line in LAST_REAL for w in line.split(" ") if w] + [
    "Le Gall", "Le Goff", "Le Roux", "de la Fontaine", "d'Artagnan", "Le Bihan", "du Pont", "de Villiers", "Le Guen"]
SYL = ["ker", "mar", "lan", "dou", "bel", "ver", "mor", "cha", "bou", "gre", "vil", "ro", "ne", "gal", "zin",
       "tel", "pi", "quet", "lot", "ard", "ec", "ou", "in", "eau", "aut", "ier", "on", "et", "y", "ac", "an", "ès"]
CITIES = [("Paris", "75001"), ("Paris", "75008"), ("Paris", "75015"), ("Lyon", "69002"), ("Lyon", "69003"),
          ("Marseille", "13001"), ("Toulouse", "31000"), ("Nice", "06000"), ("Nantes", "44000"),
          ("Strasbourg", "67000"), ("Montpellier", "34000"), ("Bordeaux", "33000"), ("Lille", "59000"),
          ("Rennes", "35000"), ("Reims", "51100"), ("Saint-Étienne", "42000"), ("Le Havre", "76600"),
          ("Toulon", "83000"), ("Grenoble", "38000"), ("Dijon", "21000"), ("Angers", "49000"), ("Nîmes", "30000"),
          ("Brest", "29200"), ("Quimper", "29000"), ("Annecy", "74000"), ("Vannes", "56000"), ("Pau", "64000")]
ACTIVITY = ["Boulangerie", "Transports", "Menuiserie", "Conseil", "Informatique", "Plomberie", "Garage", "Imprimerie",
            "Pharmacie", "Cabinet", "Agence", "Atelier", "Bâtiment", "Électricité", "Logistique", "Immobilier",
            "Restaurant", "Optique", "Paysages", "Distribution", "Industries", "Solutions", "Services", "Négoce"]
FORMS = ["SAS", "SARL", "SA", "SASU", "EURL", "SCI", "SNC", ""]
FREE = ["gmail.com", "orange.fr", "free.fr", "hotmail.fr", "yahoo.fr", "laposte.net", "wanadoo.fr", "sfr.fr"]
TITLES = ["Gérant", "Directeur commercial", "Responsable achats", "Comptable", "DAF", "Assistante de direction",
          "Directeur général", "Chef de projet", "Responsable RH", "Technicien", None]
ROLE = ["contact", "info", "commercial", "accueil", "compta"]
T0 = datetime(2024, 11, 1)


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        s = body + d
        tot = 0
        for i, c in enumerate(reversed(s)):
            k = int(c) * (2 if i % 2 else 1)
            tot += k - 9 if k > 9 else k
        if tot % 10 == 0:
            return s
    raise AssertionError


def _ascii(s: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if c.isascii()).lower().replace(" ", "").replace("'", "")


def _typo(r: random.Random, s: str) -> str:
    if not s or len(s) < 4:
        return s
    i = r.randrange(1, len(s) - 1)
    op = r.randrange(4)
    if op == 0:
        return s[:i] + s[i + 1:]
    if op == 1:
        return s[:i] + r.choice(string.ascii_lowercase) + s[i + 1:]
    if op == 2:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s[:i] + s[i] + s[i:]


def _restyle(r: random.Random, s: str | None) -> str | None:
    """Same value, different spelling (case, accents, spaces) - what another CRM would hold."""
    if not s:
        return s
    k = r.random()
    if k < 0.3:
        return s.upper()
    if k < 0.45:
        return s.lower()
    if k < 0.6:
        return _ascii_keep_case(s)
    if k < 0.7:
        return "  " + s + " "
    return s


def _ascii_keep_case(s: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _mobile(digits: str) -> str:
    """A French mobile number with the same random draws as before, moved out of 070-072 (which do not exist:
    phonenumbers calls them invalid) into 077-079. A few 06 blocks are unallocated too (0639, most of 069x): left,
    ~4% of the numbers, standing for the invalid numbers a real CRM holds."""
    if digits.startswith("07") and digits[2] in "012":
        digits = f"07{int(digits[2]) + 7}{digits[3:]}"
    return digits


def _phone_style(r: random.Random, digits: str | None) -> str | None:
    if not digits:
        return None
    k = r.randrange(4)
    if k == 0:
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    if k == 1:
        return "+33 " + digits[1] + " " + " ".join(digits[i:i + 2] for i in range(2, 10, 2))
    if k == 2:
        return ".".join(digits[i:i + 2] for i in range(0, 10, 2))
    return digits


def _make_last_names(r: random.Random, n: int) -> list[str]:
    names = list(LAST_REAL)
    seen = set(names)
    while len(names) < n:
        # 2-3 syllables give only ~34k distinct names: longer ones beyond that (300k+ records)
        w = "".join(r.choice(SYL) for _ in range(r.randint(2, 3 if len(names) < 20_000 else 4))).capitalize()
        if w not in seen:
            seen.add(w)
            names.append(w)
    return names


def _zipf_choice(r: random.Random, items: list, s: float = 1.0):
    # rank-frequency roughly 1/rank: a few names very common, a long tail
    u = r.random()
    n = len(items)
    idx = int((n + 1) ** u) - 1
    return items[min(idx, n - 1)]


#: How often a person's names recur (generate_contacts' `names`):
#:  - "france", the default: closer to France, still harder. 1 surname in 10 is one of LAST_REAL, France's commonest,
#:    weighted 1/sqrt(rank): Martin for 0.41% of people (in France, about 0.35%), the ten first for 2.1%. The others
#:    are the generated surnames, evenly (each under 0.05% at 8,000 records). First names weigh 1/rank**0.4 down
#:    FIRST: Jean for 3.4% of people, more than any first name among French adults (the commonest, 1-2% each).
#:    Two people share a full name with probability 5.4e-6 at 8,000 records; in France, by our estimate from those
#:    shares, nearer 5e-7: homonyms stay about ten times as common as they are.
#:  - "skewed": the Zipf law this generator drew both names with until Dec 2026 (1/rank down short lists: Jean for
#:    14% of people, Martin for 9%). Two people share a full name with probability 6.9e-4 at 8,000 records (128
#:    times "france"), and 14 pairs of colleagues of one company do on seed 11 (none with "france"): the homonym
#:    stress test, reported beside the default in bench/results_identity.md.
NAMES = ("france", "skewed")
_FIRST_CUM = list(accumulate(1 / (k + 1) ** 0.4 for k in range(len(FIRST))))
_LAST_REAL_CUM = list(accumulate(1 / (k + 1) ** 0.5 for k in range(len(LAST_REAL))))


def _french_names(r: random.Random, last_names: list[str]) -> tuple[str, str]:
    first = r.choices(FIRST, cum_weights=_FIRST_CUM)[0]
    if r.random() < 0.1 or len(last_names) <= len(LAST_REAL):
        return first, r.choices(LAST_REAL, cum_weights=_LAST_REAL_CUM)[0]
    return first, last_names[r.randrange(len(LAST_REAL), len(last_names))]


def _companies_world(r: random.Random, n: int, last_names: list[str]) -> list[dict]:
    out = []
    used_dom = set()
    for i in range(n):
        city, pc = r.choice(CITIES)
        act = r.choice(ACTIVITY)
        base = f"{act} {r.choice(last_names)}" if r.random() < 0.7 else f"{r.choice(last_names)} {act}"
        dom = _ascii(base).replace("-", "")[:30]
        if dom in used_dom:
            dom = f"{dom}{i}"
        used_dom.add(dom)
        siren = _luhn_complete(f"{r.randrange(10**7, 10**8):08d}")
        out.append({
            "key": f"C{i:07d}", "name": base, "form": r.choice(FORMS), "siren": siren,
            "siret": _luhn_complete(siren + f"{r.randrange(1, 99):04d}"),
            "domain": dom + r.choice([".fr", ".com", ".fr", ".eu"]), "city": city, "postcode": pc,
            "phone": "0" + r.choice("12345") + f"{r.randrange(10**8):08d}",
            "address": f"{r.randint(1, 200)} rue {r.choice(last_names)}",
        })
    return out


def generate_contacts(n_records: int = 10_000, seed: int = 1, variant: str = "default", dup_rate: float = 0.25,
                      company_entities: bool = True, names: str = "france") -> pd.DataFrame:
    """Contacts in the identity input contract + `person_key` (truth). `company_entities`: fill
    `company_entity_key` as the pipeline does (the company crosswalk's key); False: a CRM export as it comes.
    `names`: how often names recur, "france" or "skewed" (see NAMES)."""
    if names not in NAMES:
        raise ValueError(f"names must be one of {NAMES}, not {names!r}")
    hard = variant == "hard"
    r = random.Random(seed)
    r_names = random.Random(seed * 1_000_003 + 43)  # "france" names, drawn apart (see below)
    # titles of the other copies drawn apart, so that the rest of a seed's world stays as it was before titles changed
    r_title = random.Random(seed * 1_000_003 + 17)
    r_company = random.Random(seed * 1_000_003 + 29)  # which records hang on no company record
    last_names = _make_last_names(r, max(2000, n_records // 8))
    n_persons = int(n_records / (1 + dup_rate * 1.3))
    companies = _companies_world(r, max(10, n_persons // 6), last_names)
    rows: list[dict] = []
    pid = 0
    family: list[tuple[str, str, str, str]] = []  # (last, email, phone, first) of households already created
    used_emails: set[str] = set()
    while len(rows) < n_records:
        pid += 1
        pkey = f"P{pid:08d}"
        comp = r.choice(companies)
        first = _zipf_choice(r, FIRST)
        last = _zipf_choice(r, last_names)
        # the skewed draws above are still made, so "skewed" gives the worlds it always gave; "france" worlds start
        # alike but drift apart from them: some later draws depend on the names (a typo's position, a suffix for an
        # address already taken, a household's first name drawn again)
        if names == "france":
            first, last = _french_names(r_names, last_names)
        phone = _mobile(("06" if r.random() < 0.5 else "07") + f"{r.randrange(10**8):08d}") if r.random() < 0.6 else None
        k = r.random()
        if k < 0.75:
            email = f"{_ascii(first)}.{_ascii(last)}@{comp['domain']}"
        elif k < 0.88:
            email = f"{_ascii(first)}{_ascii(last)}{r.randint(1, 99)}@{r.choice(FREE)}"
        else:
            email = None
        # Shared mailboxes: distinct people behind one family or role address.
        if r.random() < (0.06 if hard else 0.02):
            if family and r.random() < 0.5:
                last, email, fam_phone, other = r.choice(family)  # spouse/child: same household
                phone = fam_phone or phone
                while first.startswith(other.split("-")[0]) or other.startswith(first.split("-")[0]):
                    first = r.choice(FIRST)  # a household does not reuse a first name
            else:
                email = f"{r.choice(ROLE)}@{comp['domain']}"
                phone = comp["phone"] if r.random() < 0.5 else phone
        elif email and email.split("@")[1] in FREE and r.random() < 0.3:
            family.append((last, f"famille.{_ascii(last)}{r.randint(1, 999)}@{r.choice(FREE)}", phone, first))
            email = family[-1][1]
        if email and not email.split("@")[0] in ROLE and email in used_emails and not email.startswith("famille."):
            email = email.replace("@", f"{r.randint(2, 9999)}@")  # a personal address belongs to one person
        if email:
            used_emails.add(email)
        title = r.choice(TITLES)
        upd = T0 + timedelta(days=r.randrange(700), seconds=r.randrange(86400))
        n_copies = 1
        if r.random() < dup_rate:
            n_copies += 1 + (r.random() < 0.3)
        for c in range(n_copies):
            if len(rows) >= n_records:
                break
            f, l_, e, p = first, last, email, phone
            src = "hubspot" if c == 0 else r.choice(["koban", "hubspot", "koban"])
            if c > 0:
                f, l_ = _restyle(r, f), _restyle(r, l_)
                if r.random() < (0.35 if hard else 0.12):
                    if r.random() < 0.5:
                        f = _typo(r, f)
                    else:
                        l_ = _typo(r, l_)
                if hard and r.random() < 0.15:
                    f, l_ = l_, f
                if e and r.random() < (0.4 if hard else 0.15):
                    e = None
                elif e and r.random() < (0.15 if hard else 0.08) and not email.split("@")[0] in ROLE:
                    # the same person under a private address (or a sub-address) in the other record
                    if r.random() < 0.7:
                        e = f"{_ascii(first)}.{_ascii(last)}{r.randint(1, 99)}@{r.choice(FREE)}"
                    else:
                        e = e.replace("@", "+crm@")
                elif e and r.random() < 0.3:
                    e = e.upper()
                if p and r.random() < 0.2:
                    p = None
                if hard and r.random() < 0.1 and f and "-" in f:
                    f = f.split("-")[0]
            t = title
            if c > 0 and t:
                # the other CRM's record: a title typed otherwise or changed since (a promotion), or none typed
                if r_title.random() < (0.3 if hard else 0.2):
                    t = r_title.choice([x for x in TITLES if x and x != title])
                elif r_title.random() < (0.2 if hard else 0.1):
                    t = None
            # a record not associated with its company in the CRM: no company record, so no resolved company
            linked = r_company.random() >= 0.1
            rows.append({
                "source_system": src,
                "source_id": f"{src[:2]}-{len(rows):08d}",
                "first_name": f, "last_name": l_,
                "email": e,
                "phone": _phone_style(r, p) if r.random() < 0.5 else None,
                "mobile_phone": _phone_style(r, p),
                "company_name": _restyle(r, f"{comp['name']} {comp['form']}".strip()) if r.random() < 0.9 else None,
                "company_source_id": comp["key"] if linked else None,
                # the company the pipeline's company crosswalk resolved the CRM record to (the same for both CRMs)
                "company_entity_key": comp["key"] if company_entities and linked else None,
                "city": comp["city"] if r.random() < 0.8 else None,
                "postcode": comp["postcode"] if r.random() < 0.7 else None,
                "job_title": t,
                "updated_at": upd + timedelta(days=c * r.randrange(1, 90)),
                "person_key": pkey,
            })
    return pd.DataFrame(rows)


def generate_companies(n_records: int = 10_000, seed: int = 1, variant: str = "default") -> pd.DataFrame:
    """Companies from hubspot, koban, stripe and the registry + `company_key` (truth)."""
    hard = variant == "hard"
    r = random.Random(seed)
    last_names = _make_last_names(r, max(2000, n_records // 4))
    n_companies = max(10, n_records // 3)
    world = _companies_world(r, n_companies, last_names)
    rows: list[dict] = []

    def add(src, sid, c, **kw):
        base = {
            "source_system": src, "source_id": sid, "name": None, "siren": None, "siret": None, "vat_number": None,
            "domain": None, "phone": None, "address": None, "postcode": None, "city": None,
            "updated_at": T0 + timedelta(days=r.randrange(700)), "metadata_crm_company_id": None, "email": None,
            "company_key": c["key"],
        }
        base.update(kw)
        rows.append(base)

    for i, c in enumerate(world):
        if len(rows) >= n_records:
            break
        full = f"{c['name']} {c['form']}".strip()
        hs_id = f"{1000000 + i}"
        # HubSpot: the CRM of record; SIREN often missing, domain usually there
        add("hubspot", hs_id, c, name=full, siren=c["siren"] if r.random() < 0.5 else None,
            domain=("https://www." + c["domain"]) if r.random() < 0.85 else None,
            phone=_phone_style(r, c["phone"]) if r.random() < 0.7 else None, address=c["address"],
            postcode=c["postcode"], city=c["city"])
        if r.random() < 0.3:  # Koban (migration year): other spelling, fewer identifiers
            name = _restyle(r, c["name"])
            if r.random() < (0.3 if hard else 0.1):
                name = _typo(r, name)
            add("koban", f"K{r.getrandbits(64):016x}", c, name=name,
                siret=c["siret"] if r.random() < 0.4 else None,
                domain=c["domain"] if r.random() < 0.5 else None,
                phone=_phone_style(r, c["phone"]) if r.random() < 0.6 else None,
                postcode=c["postcode"] if r.random() < 0.8 else None, city=_restyle(r, c["city"]))
        if r.random() < 0.4:  # Stripe customer
            k = r.random()
            kw = {"name": _restyle(r, full), "email": f"{r.choice(['compta', 'facturation', 'direction'])}@{c['domain']}"}
            if k < 0.6:
                kw["metadata_crm_company_id"] = hs_id
            elif k < 0.8:
                kw["vat_number"] = f"FR{(12 + 3 * (int(c['siren']) % 97)) % 97:02d}{c['siren']}"
            elif k < 0.95:
                pass  # only the e-mail domain (+ name)
            else:
                kw["email"] = f"{_ascii(c['name'])[:10]}@{r.choice(FREE)}"  # not findable by design
            add("stripe", f"cus_{r.getrandbits(48):012x}", c, **kw)
        if r.random() < 0.7:  # registry view of the company (legal name, SIREN)
            add("registry", c["siren"], c, name=full.upper(), siren=c["siren"], siret=c["siret"],
                postcode=c["postcode"], city=c["city"].upper(), address=c["address"].upper())
    # Registry noise: unrelated legal entities, some with names colliding with CRM companies
    j = 0
    while len(rows) < n_records:
        j += 1
        c = r.choice(world)
        city, pc = r.choice(CITIES)
        siren = _luhn_complete(f"{r.randrange(10**7, 10**8):08d}")
        add("registry", siren, {"key": f"N{j:07d}"}, name=c["name"].upper() if r.random() < 0.3 else f"{r.choice(ACTIVITY)} {r.choice(last_names)}".upper(),
            siren=siren, postcode=pc, city=city.upper())
    df = pd.DataFrame(rows)
    return df.drop_duplicates(["source_system", "source_id"]).reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=["contacts", "companies"])
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--hard", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--names", choices=NAMES, default="france", help="contacts: how often names recur (see NAMES)")
    a = ap.parse_args()
    variant = "hard" if a.hard else "default"
    df = (generate_contacts(a.n, seed=a.seed, variant=variant, names=a.names) if a.kind == "contacts"
          else generate_companies(a.n, seed=a.seed, variant=variant))
    df.to_parquet(a.out, index=False) if a.out.endswith(".parquet") else df.to_csv(a.out, index=False)
    print(f"{len(df)} {a.kind} -> {a.out}")


if __name__ == "__main__":
    main()
