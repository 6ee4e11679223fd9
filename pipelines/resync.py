"""Re-sync a source: its next sync reads everything again from the vendor and merges into the raw tables it has.

What a Fivetran "Re-sync" or an Airbyte "refresh and retain" does. The connector names the state that holds its
read position (`resync_state_paths`); `connectors.common.resync.reset_read_state` removes it with dlt's
`pipeline_drop(state_only=True)` on the same pipeline the syncs use (name, working folder, warehouse). No table is
dropped or emptied; the next sync (`crm-etl run`, a schedule) lists everything and merges on the primary keys.

The reset is durable and harmless to repeat (the state is loaded into the warehouse at once): if the full read
then fails midway, dlt commits no new state, so the next sync reads everything again; a load that failed after a
complete read is loaded by the next sync first (dlt's pending packages), with the state that read produced.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from warehouse import Warehouse

from .sources import ALL_SOURCES


#: The sources whose connector names a read position to reset (`resync_state_paths`); registry and inputs have none.
RESYNC_SOURCES = tuple(s for s in ALL_SOURCES
                       if hasattr(importlib.import_module(f"connectors.{s}"), "resync_state_paths"))


class ResyncError(ValueError):
    """A re-sync that cannot be done as asked (unknown source or resource, pending load); nothing was changed."""


@dataclass
class ResyncResult:
    source: str
    resources: List[str]
    reset: List[str] = field(default_factory=list)  # state paths removed (relative to the source's state)
    kept: dict = field(default_factory=dict)  # what keeps its state, and why
    never_synced: bool = False  # no state anywhere: the next sync is a full read anyway
    dry_run: bool = False


def resource_names(source: str) -> List[str]:
    """The dlt resources of a source, as the Dagster assets draw them (no network I/O)."""
    spec = ALL_SOURCES[source]
    return list(spec.make_source(**spec.definition_kwargs).resources.keys())


def resync(source: str, resources: Optional[Sequence[str]] = None, wh: Optional[Warehouse] = None,
           dry_run: bool = False) -> ResyncResult:
    """Reset the read position of `source` (or of some of its resources) so that the next sync reads it in full."""
    from dlt.pipeline.exceptions import PipelineHasPendingDataException

    from connectors.common.resync import present_read_state, reset_read_state
    from warehouse.locks import SyncBusy, sync_lock

    from .ingest import make_pipeline

    if source not in ALL_SOURCES:
        raise ResyncError(f"unknown source {source!r}; known: {', '.join(sorted(ALL_SOURCES))}")
    connector = importlib.import_module(f"connectors.{source}")
    plan_paths = getattr(connector, "resync_state_paths", None)
    if plan_paths is None:
        raise ResyncError(f"{source} keeps no read position to reset: "
                          + {"registry": "look-ups are refreshed after SOURCES__REGISTRY__MAX_AGE_DAYS (set it to 0 "
                                         "for one sync to refresh them all)",
                             "inputs": "its files are loaded again when they change (save a file again to reload "
                                       "it)"}.get(source, "nothing to do"))
    known = resource_names(source)
    chosen = list(dict.fromkeys(resources)) if resources else known
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise ResyncError(f"{source} has no resource {', '.join(unknown)}; its resources: {', '.join(known)}")
    try:
        paths, kept = plan_paths(chosen)
    except ValueError as exc:
        raise ResyncError(str(exc)) from None

    wh = wh or Warehouse()
    pipeline = make_pipeline(ALL_SOURCES[source], wh)
    result = ResyncResult(source, chosen, kept=kept, dry_run=dry_run)
    # a sync running now would commit the read position a reset removes, and reading the state may write dlt's
    # working folder (restored from the warehouse): refuse rather than wait (a schedule may keep starting syncs)
    try:
        with sync_lock(source, wait=False, warehouse_url=wh.url):
            if dry_run:
                result.reset = present_read_state(pipeline, paths)
            elif pipeline.has_pending_data:
                raise ResyncError(
                    f"a sync of {source} left a load package not loaded yet; let it load first (run the sync again: "
                    f"`crm-etl run --select 'group:raw_{source}'`), then resync. Nothing was changed.")
            else:
                try:
                    result.reset = reset_read_state(pipeline, paths)
                except PipelineHasPendingDataException:  # pending after restoring from the warehouse
                    raise ResyncError(f"a sync of {source} left a load package not loaded yet; run that sync again, "
                                      "then resync. Nothing was changed.") from None
    except SyncBusy as busy:
        raise ResyncError(f"{busy}; resync once it has ended. Nothing was changed.") from None
    result.never_synced = not pipeline.default_schema_name
    return result
