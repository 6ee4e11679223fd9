"""Inputs no API holds (marketing spend, sales reps' loaded cost) as a dlt source: CSV or Excel files in a folder,
validated in full, loaded incrementally by file. Runnable alone with `python -m connectors.inputs`.

The file format is in docs/inputs-format.md. Tables (dataset `raw_inputs`):
- `marketing_spend`: month, channel, campaign, tier, amount, currency + source_file, sheet, line, file_hash.
- `rep_costs`: rep_email, hourly_cost (monthly cost / hours when given that way), valid_from, valid_to
  + source_file, sheet, line, file_hash.
- `input_files`: one row per (kind, file) loaded: its content hash, rows, when loaded, is_deleted once the file
  has left the folder. Staging keeps only rows of present files with the file's current hash.

Each run reads every file of the folder and validates all of them before yielding anything: a malformed file
(missing column, bad date, negative amount, unknown rep, overlapping cost periods...) fails its resource with
every `file:line: reason`, and nothing of that run is loaded. A file whose content hash was already loaded is
skipped; a changed file replaces its rows (merge key = the file name).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.sources import DltResource

from connectors.inputs import settings
from connectors.inputs.helpers import (
    InputFileError, Sheet, discover, overlaps, read_sheets, validate_marketing, validate_rep_costs,
)

__all__ = ["inputs_source", "InputFileError"]

logger = logging.getLogger("connectors.inputs")


def _file_hints() -> Any:
    return dlt.mark.make_hints(
        table_name="input_files", write_disposition="merge", primary_key=["kind", "source_file"],
        columns={
            "kind": {"data_type": "text", "nullable": False},
            "source_file": {"data_type": "text", "nullable": False},
            "file_hash": {"data_type": "text"},
            "rows": {"data_type": "bigint"},
            "loaded_at": {"data_type": "timestamp"},
            "is_deleted": {"data_type": "bool"},
        },
    )


def _row_columns(kind: str) -> Dict[str, Dict[str, Any]]:
    common = {
        "source_file": {"data_type": "text", "nullable": False},
        "sheet": {"data_type": "text", "nullable": False},
        "line": {"data_type": "bigint", "nullable": False},
        "file_hash": {"data_type": "text", "nullable": False},
    }
    if kind == "marketing_spend":
        return {"month": {"data_type": "date"}, "channel": {"data_type": "text"}, "campaign": {"data_type": "text"},
                "tier": {"data_type": "text"}, "amount": {"data_type": "decimal", "precision": 18, "scale": 2},
                "currency": {"data_type": "text"}, **common}
    return {"rep_email": {"data_type": "text"}, "hourly_cost": {"data_type": "decimal", "precision": 18, "scale": 2},
            "valid_from": {"data_type": "date"}, "valid_to": {"data_type": "date"}, **common}


class _Folder:
    """The folder's files read once per source instance (lazily: creating the source reads nothing)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._sheets: Optional[List[Sheet]] = None

    def sheets(self, kind: str) -> List[Sheet]:
        if self._sheets is None:
            found: List[Sheet] = []
            for path in discover(self.folder):
                sheets = read_sheets(path)
                if not sheets:
                    logger.warning("inputs: %s is neither a marketing_spend nor a rep_costs file, ignored", path.name)
                found += sheets
            self._sheets = found
        return [s for s in self._sheets if s.kind == kind]


def _resource(folder: _Folder, kind: str, known_reps: Optional[Sequence[str]], default_currency: str) -> DltResource:
    @dlt.resource(name=kind, table_name=kind, write_disposition={"disposition": "merge", "strategy": "delete-insert"},
                  primary_key=["source_file", "sheet", "line"], merge_key="source_file")
    def load() -> Iterator[Any]:
        sheets = folder.sheets(kind)
        problems: List[str] = []
        validated: List[tuple[Sheet, List[Dict[str, Any]]]] = []
        for sheet in sheets:
            if kind == "marketing_spend":
                rows, bad = validate_marketing(sheet, default_currency)
            else:
                rows, bad = validate_rep_costs(sheet, known_reps)
            problems += bad
            validated.append((sheet, rows))
        if kind == "rep_costs" and not problems:
            problems += overlaps([r for _, rows in validated for r in rows])
        if problems:
            raise InputFileError(problems)  # before the first yield: nothing of this run is loaded

        state = dlt.current.resource_state()
        loaded: Dict[str, str] = state.setdefault("file_hashes", {})
        now = datetime.now(timezone.utc)
        by_file: Dict[str, List[tuple[Sheet, List[Dict[str, Any]]]]] = {}
        for sheet, rows in validated:
            by_file.setdefault(sheet.source_file, []).append((sheet, rows))
        for name, parts in by_file.items():
            digest = parts[0][0].file_hash
            if loaded.get(name) == digest:
                continue  # same content already loaded
            count = 0
            for sheet, rows in parts:
                for row in rows:
                    row.pop("_where", None)
                    yield {**row, "source_file": name, "sheet": sheet.sheet, "file_hash": digest}
                    count += 1
            yield dlt.mark.with_hints({"kind": kind, "source_file": name, "file_hash": digest, "rows": count,
                                       "loaded_at": now, "is_deleted": False}, _file_hints(),
                                      create_table_variant=True)
            logger.info("inputs: %s: %d %s rows (%s)", name, count, kind, "changed" if name in loaded else "new")
            loaded[name] = digest
        for name in sorted(set(loaded) - set(by_file)):
            # the file left the folder: its rows stop counting (staging filters on present files)
            yield dlt.mark.with_hints({"kind": kind, "source_file": name, "file_hash": loaded[name], "rows": 0,
                                       "loaded_at": now, "is_deleted": True}, _file_hints(),
                                      create_table_variant=True)
            logger.info("inputs: %s is gone from the folder, marked deleted", name)
            del loaded[name]

    hints = _file_hints()
    load.apply_hints(table_name=hints["table_name"], write_disposition=hints["write_disposition"],
                     columns=hints["columns"], primary_key=hints["primary_key"], merge_key="",
                     create_table_variant=True)
    load.apply_hints(columns=_row_columns(kind))
    return load


@dlt.source(name="inputs", max_table_nesting=0)
def inputs_source(
    folder: str = dlt.config.value,
    known_reps: Optional[List[str]] = None,
    default_currency: str = settings.DEFAULT_CURRENCY,
) -> List[DltResource]:
    """Marketing spend and rep cost files from `folder` (`SOURCES__INPUTS__FOLDER`).

    Args:
        folder: the folder holding the files (not recursive).
        known_reps: rep emails the CRM knows (e.g. staging.owners.email); a cost row for another email fails its
            file. None skips that check.
        default_currency: currency of spend rows without one (ISO 4217).
    """
    files = _Folder(str(Path(folder).expanduser()))
    return [_resource(files, "marketing_spend", known_reps, default_currency),
            _resource(files, "rep_costs", known_reps, default_currency)]
