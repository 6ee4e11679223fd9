"""marts.data_quality_by_owner, the per-rep scorecard, as the quality steps rebuild it after each evaluation.

The scorecard counts a rep's records across CRMs through core.rep_crosswalk. A quality step guarding staging tables
can run before the crosswalk was ever built (the first run on a new warehouse): the crosswalk is then read as empty,
so each CRM user counts as its own rep until a later step (the deepest quality step runs after the core layer) or run
rebuilds the scorecard. Any build reads the whole history of quality.rule_results_by_owner, so past days follow the
current crosswalk too.
"""
from __future__ import annotations

import logging

from transforms.build import build_model
from transforms.catalog import discover
from warehouse.connection import Warehouse

SCORECARD = ("marts", "data_quality_by_owner")
#: Read as empty when not built yet: without them the scorecard only loses the merging of a rep's CRM users.
OPTIONAL_READS = (("core", "rep_crosswalk"),)


def build_scorecard(wh: Warehouse) -> int:
    """Rebuild marts.data_quality_by_owner atomically; returns its row count."""
    model = next(m for m in discover((SCORECARD[0],)) if m.key == SCORECARD)
    return build_model(wh, model, read_as_empty=OPTIONAL_READS)
