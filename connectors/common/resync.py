"""Re-sync: make the next sync of a source read everything again from the vendor, keeping what is loaded.

A connector says which parts of its dlt state hold its read position (`resync_state_paths` in its package: JSON
paths relative to the source's state, e.g. `resources.contacts`); `reset_read_state` removes them with dlt's own
`pipeline_drop(state_only=True)`. Nothing is dropped or truncated: the next sync reads in full and merges on the
primary keys, as every sync does.

Why not dlt's `pipeline.run(refresh=...)`: "drop_sources" / "drop_resources" drop the tables and "drop_data"
truncates them, at the start of the load that refills them: raw (and what staging and the marts read from it)
would be empty or partial while the read and load run, emptied for good if that read fails midway, and rows the
vendor no longer serves (hard-deleted records kept flagged, history, link tombstone effects) would be lost.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

from dlt.common import jsonpath


def paths_present(source_state: dict, paths: Sequence[str]) -> List[str]:
    """The paths that select something in this source state (a resource never synced has nothing to reset)."""
    return [p for p in paths if jsonpath.resolve_paths(p, source_state)]


def plan_by_resource(resources: Sequence[str],
                     rule: Callable[[str], Union[List[str], str]]) -> Tuple[List[str], Dict[str, str]]:
    """A connector's `resync_state_paths` from its per-resource rule: `rule(name)` gives the state paths to drop for
    that resource, or a str, why its state is kept. Returns (paths, {kept resource: why})."""
    paths: List[str] = []
    kept: Dict[str, str] = {}
    for name in resources:
        got = rule(name)
        if isinstance(got, str):
            kept[name] = got
        else:
            paths += got
    return paths, kept


def present_read_state(pipeline: Any, paths: Sequence[str]) -> List[str]:
    """`paths` that select something in the pipeline's state of its default source, after syncing that state with
    the destination (a newer state loaded by a sync on another machine counts, and is never rolled back)."""
    pipeline.sync_destination()
    if not pipeline.default_schema_name:
        return []
    return paths_present(pipeline.state.get("sources", {}).get(pipeline.default_schema_name, {}), paths)


def reset_read_state(pipeline: Any, paths: Sequence[str]) -> List[str]:
    """Remove `paths` from the pipeline's state of its default source, durably; returns the paths removed.

    dlt's `pipeline_drop` bumps the state version, saves it in the working folder and loads it into the
    destination's `_dlt_pipeline_state` in its own load package, so a sync on a machine without the working folder
    restores the reset state too. If that load fails, dlt puts the old state back (nothing reset; run it again).
    Repeating a reset is harmless: it only makes the next sync read everything again (merge: no duplicates).
    """
    from dlt.pipeline.helpers import pipeline_drop

    # pipeline_drop computes the new state from the local one before it syncs with the destination: sync first
    # (present_read_state), so that only `paths` may change
    present = present_read_state(pipeline, paths)
    if present:
        drop = pipeline_drop(pipeline, state_paths=present, state_only=True)
        drop()
    return present
