"""Raw-layer assets: each connector (a plain dlt source) loaded by dagster-dlt into raw_<source>.

dagster-dlt needs a source object to draw the assets (one per dlt resource); the real source is built again at run
time with its config from the environment or dlt's secrets file. Building a fresh source per run also avoids
dagster-dlt 0.29.27's `KeyError: 'name'` on a second materialisation in one process (upstream #34052).
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from transforms.erasure import RAW_CONTACTS, reapply as reapply_erasures
from warehouse import Warehouse, dlt_pipelines_dir
from warehouse.locks import sync_lock

from .resources import WarehouseResource, warehouse_dialect


@dataclass(frozen=True)
class SourceSpec:
    """One source system: how to build its dlt source, when to sync it, how fresh it must be."""

    name: str  # hubspot, koban, stripe, registry, inputs
    make_source: Callable[..., Any]  # the connector's @dlt.source function
    definition_kwargs: dict = field(default_factory=dict)  # placeholders so the source can be drawn without secrets
    cron: str = "0 * * * *"
    fail_window: timedelta = timedelta(hours=3)
    description: str = ""
    # Tables a resource writes besides its own (dlt table variants and child tables): table -> resource names.
    # Staging assets that read such a table depend on the resources that write it, so lineage stays whole.
    table_resources: dict = field(default_factory=dict)
    # Arguments computed from the warehouse at run time (e.g. which companies the registry should look up).
    runtime_kwargs: Callable[[Warehouse], dict] | None = None
    # Warehouse tables those arguments read: the raw assets depend on them, so lineage shows the loop.
    upstream: tuple = ()

    def resources_writing(self, table: str) -> list[str]:
        if table in self.table_resources:
            return list(self.table_resources[table])
        return [table.split("__", 1)[0]]  # dlt child tables (owners__teams) belong to their parent resource

    @property
    def dataset(self) -> str:
        return f"raw_{self.name}"

    @property
    def pipeline_name(self) -> str:
        return f"crm_etl_{self.name}"


def make_pipeline(spec: SourceSpec, wh: Warehouse) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=spec.pipeline_name,
        destination=wh.dlt_destination(),
        dataset_name=spec.dataset,
        pipelines_dir=dlt_pipelines_dir(),
    )


#: Versions of a source's dlt state kept in the warehouse (Warehouse.prune_dlt_state, after each sync): dlt reads
#: only the newest; the others are history, a few for a look back after a bad sync.
DLT_STATE_VERSIONS_KEPT = 10


class RawTranslator(DagsterDltTranslator):
    def __init__(self, spec: SourceSpec, freshness: dg.FreshnessPolicy | None = None):
        super().__init__()
        self.spec = spec
        self.freshness = freshness or dg.FreshnessPolicy.time_window(fail_window=spec.fail_window)

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        base = super().get_asset_spec(data)
        return base.replace_attributes(
            key=dg.AssetKey([self.spec.dataset, data.resource.name]),
            deps=[dg.AssetKey(list(k)) for k in self.spec.upstream],
            group_name=self.spec.dataset,
            freshness_policy=self.freshness,
        )


def raw_assets(spec: SourceSpec, freshness: dg.FreshnessPolicy | None = None) -> dg.AssetsDefinition:
    """One asset per dlt resource of the source; freshness from the sales model file (else the spec's window)."""
    placeholder = spec.make_source(**spec.definition_kwargs)
    # Only drawn from (names, destination kind); the run builds its own pipeline against the warehouse.
    pipeline = dlt.pipeline(
        pipeline_name=spec.pipeline_name, destination=warehouse_dialect(), dataset_name=spec.dataset,
        pipelines_dir=dlt_pipelines_dir(),
    )
    translator = RawTranslator(spec, freshness)

    @dlt_assets(
        dlt_source=placeholder,
        dlt_pipeline=pipeline,
        name=f"{spec.name}_sync",
        dagster_dlt_translator=translator,
        pool="warehouse_writer",
    )
    def _sync(context: dg.AssetExecutionContext, dlt: DagsterDltResource, warehouse: WarehouseResource):
        wh = warehouse.get()
        with sync_lock(spec.name, log=context.log.warning, warehouse_url=wh.url):
            kwargs = spec.runtime_kwargs(wh) if spec.runtime_kwargs else {}
            yield from dlt.run(
                context=context,
                dlt_source=spec.make_source(**kwargs),
                dlt_pipeline=make_pipeline(spec, wh),
                dagster_dlt_translator=translator,
            )
            if spec.name in RAW_CONTACTS:  # a CRM keeps deleted contacts a while: a full read brings erased people back
                reapply_erasures(wh, log=context.log.warning)
            try:  # housekeeping: the data is loaded, a failure here must not fail the sync
                pruned = wh.prune_dlt_state(spec.dataset, spec.pipeline_name, DLT_STATE_VERSIONS_KEPT)
            except Exception as exc:  # noqa: BLE001 - logged, retried by the next sync
                context.log.warning(f"{spec.name}: old dlt state versions not deleted this time ({exc}); the next "
                                    "sync tries again")
                pruned = 0
            if pruned:
                context.log.info(f"{spec.name}: {pruned} older version{'s' if pruned > 1 else ''} of the dlt state "
                                 f"deleted from {spec.dataset}._dlt_pipeline_state (the newest "
                                 f"{DLT_STATE_VERSIONS_KEPT} kept)")

    return _sync


def sync_job_and_schedule(spec: SourceSpec, assets_def: dg.AssetsDefinition):
    job = dg.define_asset_job(
        f"sync_{spec.name}",
        selection=dg.AssetSelection.assets(assets_def).downstream().materializable(),
        description=f"Sync {spec.name} and rebuild everything downstream of it.",
    )
    schedule = dg.ScheduleDefinition(
        name=f"sync_{spec.name}_schedule", job=job, cron_schedule=spec.cron, execution_timezone="Europe/Paris",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    return job, schedule


class ResyncConfig(dg.Config):
    """Launchpad config of a resync_<source> job."""

    resources: list[str] = []  # dlt resource names (e.g. ["contacts"]); empty: every resource of the source
    dry_run: bool = False


def resync_job(spec: SourceSpec) -> dg.JobDefinition:
    """`crm-etl resync <source>` as a Dagster job, launched from the UI: the next sync of the source reads everything
    again (pipelines.resync). Its op is in the syncs' pool, so an instance that limits that pool never runs it beside
    a sync; sync_lock also refuses it while a sync runs (on this machine, and on any machine loading into a
    PostgreSQL warehouse)."""

    @dg.op(name=f"reset_{spec.name}_read_position", pool="warehouse_writer",
           description=f"Reset the read position of {spec.name}: its next sync reads everything again, merged.")
    def _resync(context: dg.OpExecutionContext, config: ResyncConfig, warehouse: WarehouseResource):
        from .resync import resync

        result = resync(spec.name, config.resources or None, wh=warehouse.get(), dry_run=config.dry_run)
        verb = "would reset" if result.dry_run else "reset"
        context.log.info(f"{spec.name}: {verb} {len(result.reset)} state entries: {', '.join(result.reset) or 'none'}"
                         + ("; never synced, nothing to reset" if result.never_synced else ""))
        for name, why in result.kept.items():
            context.log.info(f"{spec.name}: kept {name}: {why}")
        context.add_output_metadata({"reset": result.reset, "kept": list(result.kept), "dry_run": result.dry_run,
                                     "never_synced": result.never_synced})

    return dg.GraphDefinition(name=f"resync_{spec.name}", node_defs=[_resync]).to_job(
        description=f"Make the next sync of {spec.name} read everything again from the vendor, merged into the raw "
                    "tables (nothing is emptied). Then run sync_" + spec.name + ".")
