"""Which asset checks share a Dagster step: decided here, by dependency depth, never by Dagster.

Many checks evaluated in one step cost far less than one step each (a step and a warehouse connection cost about
0.2 s in process, seconds in a step process). But when one multi-asset check covers tables that depend on each other,
Dagster splits it into steps itself, and numbers the parts (`core_primary_keys_2`, ...) in an order that follows
Python's string hashing, which differs between processes. Under the multiprocess executor (the PostgreSQL code
location) the run planned one numbering and each step process another, so a step evaluated other tables' checks,
some not built yet (found when the marts benchmark ran through the real executor: "relation core.fct_deals does
not exist"). So the checks are grouped here, one multi-asset check per group, such that Dagster never needs to split:
a group holds checks whose tables (and the tables they read) sit at the same depth of the asset graph, so none is
upstream of another; a blocking check that also reads deeper tables gets a step of its own.
"""

from collections.abc import Iterable, Mapping

import dagster as dg

#: Op tag of the quality steps: each rebuilds the same scorecard table, so pipelines.resources.run_executor runs one
#: such step at a time when steps run side by side.
QUALITY_STEP_TAG = "crm_etl/quality_step"


def asset_depths(assets: Iterable[dg.AssetsDefinition | dg.AssetSpec]) -> dict[dg.AssetKey, int]:
    """Depth of every asset: 0 without upstream assets, else 1 + the deepest upstream asset."""
    deps: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for a in assets:
        if isinstance(a, dg.AssetSpec):
            deps[a.key] = {d.asset_key for d in a.deps}
        else:
            for key in a.keys:
                deps[key] = set(a.asset_deps.get(key, ()))
    depths: dict[dg.AssetKey, int] = {}

    def depth(key: dg.AssetKey, seen: tuple = ()) -> int:
        if key not in depths:
            ups = [d for d in deps.get(key, ()) if d in deps and d not in seen]
            depths[key] = 1 + max(depth(d, seen + (key,)) for d in ups) if ups else 0
        return depths[key]

    for key in deps:
        depth(key)
    return depths


def group_by_depth(
    specs: Iterable[dg.AssetCheckSpec], depths: Mapping[dg.AssetKey, int]
) -> list[tuple[str, list[dg.AssetCheckSpec]]]:
    """[(suffix, specs)] in a stable order: checks at the same depth together (suffix `depth<N>`); a blocking check
    whose extra reads are deeper than its own table alone (suffix `depth<N>_<check name>`)."""
    groups: dict[str, list[dg.AssetCheckSpec]] = {}
    for spec in specs:
        own = depths.get(spec.asset_key, 0)
        reads = [depths.get(d.asset_key, 0) for d in spec.additional_deps]
        level = max([own, *reads])
        suffix = f"depth{level}" if not (spec.blocking and level > own) else f"depth{level}_{spec.name}"
        groups.setdefault(suffix, []).append(spec)
    return sorted(groups.items(), key=lambda g: (int(g[0][5:].split("_")[0]), g[0]))
