"""Sensors: the cost-inputs folder is synced when a file in it changes (files have no API to poll)."""
import hashlib
import os
from pathlib import Path

import dagster as dg

INPUT_SUFFIXES = {".csv", ".xlsx", ".xls"}


def folder_fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the input files: changes when a file is added, edited or removed."""
    h = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in INPUT_SUFFIXES and p.is_file()):
            st = path.stat()
            h.update(f"{path.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def inputs_folder_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(name="inputs_folder_changed", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description="Runs the inputs sync when a spend or rep-cost file in SOURCES__INPUTS__FOLDER changes.")
    def _sensor(context: dg.SensorEvaluationContext):
        folder = os.environ.get("SOURCES__INPUTS__FOLDER")
        if not folder:
            return dg.SkipReason("SOURCES__INPUTS__FOLDER is not set")
        fingerprint = folder_fingerprint(Path(folder))
        if fingerprint == context.cursor:
            return dg.SkipReason("no input file changed")
        context.update_cursor(fingerprint)
        return dg.RunRequest(run_key=fingerprint)

    return _sensor
