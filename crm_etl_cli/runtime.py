"""Process-wide defaults for the CLI: keep Dagster and dlt state inside the project, telemetry off."""
from __future__ import annotations

import os
from pathlib import Path

LOCAL_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "dagster.local.yaml"


def prepare_environment(project_dir: Path | None = None) -> Path:
    """Set DAGSTER_HOME, DLT_DATA_DIR and telemetry switches unless the user already did; return DAGSTER_HOME."""
    root = (project_dir or Path.cwd()).resolve()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DLT_DATA_DIR", str(root / "data" / "dlt"))
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(root / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists() and LOCAL_DAGSTER_YAML.exists():
        cfg.write_text(LOCAL_DAGSTER_YAML.read_text())
    return home
