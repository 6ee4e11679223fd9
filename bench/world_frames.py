"""Identity input frames (and truth) from a sandbox world, in the transforms.identity input contract.

    from sandbox.generator import generate_world
    from world_frames import world_contacts, world_companies
    contacts, truth = world_contacts(generate_world(42, "demo"))

Contacts: every CRM contact record (HubSpot and Koban), truth = person key.
Companies: every CRM company record (HubSpot, Koban), every Stripe customer (metadata crm id, e-mail,
VAT number) and every registry entity (SIREN, SIRET, legal name, address); truth = company key, and a
record the world ties to no CRM company (a registry neighbour, a Stripe-only customer) is its own entity.
"""
from __future__ import annotations

import pandas as pd


def world_contacts(world) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        dict(source_system=r.vendor, source_id=r.record_id, first_name=r.first_name, last_name=r.last_name,
             email=r.email, phone=r.phone, mobile_phone=r.mobile, company_name=r.company_name,
             company_source_id=r.company_record_id, job_title=r.job_title, updated_at=r.updated_at)
        for r in world.contact_records
    ]
    df = pd.DataFrame(rows)
    truth = pd.DataFrame(
        [dict(source_system=v, source_id=i, person_key=k) for (v, i), k in world.truth.contact_person.items()]
    )
    return df, truth


def world_companies(world) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for r in world.company_records:
        rows.append(dict(source_system=r.vendor, source_id=r.record_id, name=r.name, siren=r.siren, siret=None,
                         vat_number=None, domain=r.domain, phone=r.phone, address=r.address, postcode=r.postcode,
                         city=r.city, updated_at=r.updated_at, metadata_crm_company_id=None, email=None))
    for c in world.billing.customers:
        rows.append(dict(source_system="stripe", source_id=c.id, name=c.name, siren=None, siret=None,
                         vat_number=c.vat, domain=None, phone=None, address=c.address, postcode=c.postcode,
                         city=c.city, updated_at=c.created_at, metadata_crm_company_id=c.crm_company_id,
                         email=c.email))
    for e in world.registry:
        rows.append(dict(source_system="registry", source_id=e.siren, name=e.legal_name, siren=e.siren,
                         siret=e.siret, vat_number=None, domain=None, phone=None, address=e.address,
                         postcode=e.postcode, city=e.city, updated_at=e.updated_at, metadata_crm_company_id=None,
                         email=None))
    df = pd.DataFrame(rows)
    truth = pd.DataFrame(
        [dict(source_system=v, source_id=i, company_key=k if k is not None else f"none:{v}:{i}")
         for (v, i), k in world.truth.company_entity.items()]
    )
    return df, truth
