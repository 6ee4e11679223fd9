"""Identity resolution: crosswalks from every source record to one company / one person (transforms.identity).

Incremental between runs: the resolution state is kept beside the warehouse (transforms.identity.state), so a
sync's new or changed records are the only ones compared with the known entities. A full rebuild on demand:
run config `{"ops": {"identity_resolution": {"config": {"full_rebuild": true}}}}` or CRM_ETL_IDENTITY_FULL_REBUILD=1.

Thresholds, survivorship and the model file come from the sales model file's `identity` section; each model and
setting a run used is kept in core.identity_models (a change of them rebuilds in full, so a raised threshold
splits the weaker merges again).

The warehouse's copies (core.company_crosswalk, company_golden, contact_crosswalk, contact_golden) carry the state's
version (core._table_versions): a run that changed nothing writes nothing, an incremental run replaces only the rows
it changed (one transaction), and a copy of any other version is rewritten whole (see publish_identity_table).
"""

import dagster as dg

from transforms.identity.splink_models import model_record
from transforms.identity.state import resolve_with_state
from transforms.sales_model import load_sales_model
from warehouse import Warehouse

from .resources import WarehouseResource

# Each source's records in the identity input contract; a part whose table is not loaded is left out.
COMPANY_INPUTS = {
    ("staging", "companies"): """
        select source_system, company_id as source_id, name, siren, siret, vat_number, domain, phone, address,
               postcode, city, updated_at
        from staging.companies where not is_deleted""",
    # Stripe customers: the CRM company id billing put in the metadata, the VAT (and the SIREN in it), the domain.
    ("staging", "billing_customer_details"): """
        select d.source_system, d.customer_id as source_id, c.name, d.siren, cast(null as text) as siret,
               d.vat_number, d.email_domain as domain, cast(null as text) as phone, d.address_line1 as address,
               d.postal_code as postcode, d.city, cast(null as timestamptz) as updated_at,
               d.crm_company_id as metadata_crm_company_id, c.email
        from staging.billing_customer_details d
        join staging.billing_customers c on c.source_system = d.source_system and c.customer_id = d.customer_id
        where not d.is_deleted""",
}


def _contacts_input(wh: Warehouse) -> str:
    """The contacts with company_entity_key: the company the company crosswalk resolved the contact's CRM company
    to, so that a HubSpot and a Koban record of one person compare as "same company" (a CRM's company ids mean
    nothing to the other). NULL (each CRM's own ids then) while the company crosswalk is not built."""
    resolved = wh.table_exists("core", "company_crosswalk")
    return f"""
        select c.source_system, c.contact_id as source_id, c.first_name, c.last_name, c.email, c.phone,
               c.mobile_phone, c.company_name, c.company_id as company_source_id, c.city, c.postcode, c.job_title,
               c.updated_at, {"x.entity_key" if resolved else "cast(null as text)"} as company_entity_key
        from staging.contacts c
        {"left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id"
         if resolved else ""}
        where not c.is_deleted"""


CONTACT_INPUTS = {("staging", "contacts"): _contacts_input}


def _gather(wh: Warehouse, inputs: dict, log) -> "pa.Table":  # noqa: F821
    import pyarrow as pa

    tables = []
    for (schema, table), sql in inputs.items():
        if wh.table_exists(schema, table):
            tables.append(wh.query_arrow(sql(wh) if callable(sql) else sql))
        else:
            log.warning(f"identity: {schema}.{table} not built yet, left out")
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


class IdentityConfig(dg.Config):
    full_rebuild: bool = False
    """Resolve every record again, ignoring the kept state (same result as the incremental path, slower)."""


#: The key of each identity table in the warehouse (what a delta deletes by).
_KEYS = {"crosswalk": ["source_system", "source_id"], "golden": ["entity_key"]}


def publish_identity_table(wh: Warehouse, run, table: str, which: str) -> dict:
    """Bring the warehouse's core.<table> to the identity state's version of it, as cheaply as its recorded version
    allows: nothing when it already holds it (a run with no new, changed or deleted record), the run's delta when it
    holds the version just before (delete + insert of the changed rows, one transaction), else the whole table.
    `which`: "crosswalk" or "golden". Returns the write's metadata."""
    res = run.resolution
    held = wh.table_version("core", table)
    source = res.crosswalk if which == "crosswalk" else res.golden
    # the copy must have (or end with) the state's row count, else it drifted: written whole
    expect = res.con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    if held is not None and held == run.version and wh.row_count("core", table) == expect:
        return {"warehouse_write": "none (already this version)", "rows_written": 0}
    if run.delta_from is not None and held == run.delta_from:
        rows, deleted = run.delta(which)
        written = wh.apply_delta("core", table, _KEYS[which], rows, deleted,
                                 expect_version=held, version=run.version, expect_rows=expect)
        if written is not None:
            return {"warehouse_write": "delta", "rows_written": written, "rows_removed_or_replaced": deleted.num_rows}
    written = wh.write_frame("core", table, res.table_arrow(source), version=run.version)
    return {"warehouse_write": "full", "rows_written": written}


def record_identity_model(wh: Warehouse, kind: str, cfg, model: dict) -> str:
    """Keep in core.identity_models the model and settings this run resolved `kind` with (a new row the first time
    they are used, else its last_used_at moved), one row upserted (concurrent runs of the other kind keep theirs);
    returns the row's key (config_sha256)."""
    import pandas as pd

    row, now = model_record(kind, cfg, model), pd.Timestamp.now(tz="UTC")
    first = None
    if wh.table_exists("core", "identity_models"):
        first = wh.scalar("select min(first_used_at) from core.identity_models where kind = :k and config_sha256 = :h",
                          {"k": kind, "h": row["config_sha256"]})
    frame = pd.DataFrame([{**row, "first_used_at": pd.Timestamp(first or now), "last_used_at": now}])
    for col in ("first_used_at", "last_used_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    wh.upsert_frame("core", "identity_models", ["kind", "config_sha256"], frame)
    return row["config_sha256"]


def _write(context, wh: Warehouse, kind: str, run, table: str, model_key: str) -> dg.MaterializeResult:
    res = run.resolution
    write = publish_identity_table(wh, run, table, "crosswalk")
    # the figures are counted in the identity state (a pass over the crosswalk), not in a frame
    rules = dict(res.con.execute(f"SELECT rule, count(*) FROM {res.crosswalk} GROUP BY rule").fetchall())
    rows, entities, model_version = res.con.execute(
        f"SELECT count(*), count(DISTINCT entity_key), coalesce(min(model_version), '') FROM {res.crosswalk}").fetchone()
    return dg.MaterializeResult(
        asset_key=dg.AssetKey(["core", table]),
        metadata={
            "dagster/row_count": rows,
            "entities": entities,
            "records_per_entity": round(rows / entities, 4) if entities else 0.0,
            # identity health: the share of source records that were duplicates of another one
            "duplicate_rate_before": round(1 - entities / rows, 4) if rows else 0.0,
            "links_by_rule": dg.MetadataValue.json({k: int(v) for k, v in rules.items()}),
            "model_version": str(model_version),
            "identity_model": model_key,  # core.identity_models.config_sha256
            **run.metadata(),  # full / incremental / unchanged, new/changed/deleted records, seconds
            **write,  # none / delta / full, rows written
        },
    )


_COMPANY_DEPS = [dg.AssetKey(list(k)) for k in COMPANY_INPUTS] + [dg.AssetKey(["staging", "billing_customers"])]
# the contacts read the company crosswalk (company_entity_key): the companies are resolved first
_CONTACT_DEPS = [dg.AssetKey(list(k)) for k in CONTACT_INPUTS] + [dg.AssetKey(["core", "company_crosswalk"])]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(dg.AssetKey(["core", "company_crosswalk"]), group_name="core", deps=_COMPANY_DEPS,
                     kinds={"splink", "duckdb"},
                     description="Which real company every source record belongs to, and why (rule, probability)."),
        dg.AssetSpec(dg.AssetKey(["core", "company_golden"]), group_name="core", deps=_COMPANY_DEPS,
                     kinds={"splink", "duckdb"},
                     description="Golden company fields of the CRM and billing records, chosen by survivorship, each "
                                 "with the source it came from."),
        dg.AssetSpec(dg.AssetKey(["core", "contact_crosswalk"]), group_name="core", deps=_CONTACT_DEPS,
                     kinds={"splink", "duckdb"},
                     description="Which real person every CRM contact record belongs to, and why."),
        dg.AssetSpec(dg.AssetKey(["core", "contact_golden"]), group_name="core", deps=_CONTACT_DEPS,
                     kinds={"splink", "duckdb"},
                     description="Golden contact fields chosen by survivorship, each with the source it came from."),
    ],
    can_subset=True,
    name="identity_resolution",
)
def identity_resolution(context: dg.AssetExecutionContext, config: IdentityConfig, warehouse: WarehouseResource):
    wh = warehouse.get()
    selected = {k.path[-1] for k in context.selected_asset_keys}
    # the sales model file's identity section: thresholds, survivorship, model file (a change rebuilds in full)
    sales_model = load_sales_model()
    cfgs = {kind: sales_model.identity_config(kind) for kind in ("companies", "contacts")}
    state = dict(warehouse_url=wh.url, full_rebuild=config.full_rebuild, log=context.log.info)

    def resolve(kind: str, inputs: dict):
        # the input is read under the state's lock (a function, not a table): see resolve_with_state
        return resolve_with_state(kind, lambda: _gather(wh, inputs, context.log), config=cfgs[kind], **state)

    # per kind: its input, its crosswalk and golden tables
    kinds = (("companies", COMPANY_INPUTS, "company_crosswalk", "company_golden"),
             ("contacts", CONTACT_INPUTS, "contact_crosswalk", "contact_golden"))
    for kind, inputs, crosswalk, golden in kinds:
        if not selected & {crosswalk, golden}:
            continue
        if kind == "contacts" and not wh.table_exists("core", "company_crosswalk"):
            context.log.warning("identity: core.company_crosswalk not built yet: contacts of two CRMs compare their "
                                "companies by name only this run (materialize core/company_crosswalk first)")
        with resolve(kind, inputs) as run:
            model_key = record_identity_model(wh, kind, cfgs[kind], run.resolution.model)
            if crosswalk in selected:
                yield _write(context, wh, kind, run, crosswalk, model_key)
            if golden in selected:
                res = run.resolution
                write = publish_identity_table(wh, run, golden, "golden")
                rows = res.con.execute(f"SELECT count(*) FROM {res.golden}").fetchone()[0]
                yield dg.MaterializeResult(asset_key=dg.AssetKey(["core", golden]),
                                           metadata={"dagster/row_count": rows, **run.metadata(), **write,
                                                     "identity_model": model_key})
