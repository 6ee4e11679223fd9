"""What the sandbox company keeps in files rather than behind an API: the Sirene stock, cost inputs.

`write_vendor_files(world, folder)` writes them and returns the environment a pipeline needs to read them, the file
twin of `SandboxServer.connection_info()`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.inputs_render import write_input_files
from sandbox.registry_render import write_naf_labels, write_stock_files


def write_vendor_files(world: Any, folder: str | Path) -> dict[str, str]:
    folder = Path(folder)
    inputs = folder / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    write_input_files(world, inputs)
    unites, etablissements = write_stock_files(world, folder / "sirene", fmt="parquet")
    naf = write_naf_labels(world, folder / "sirene" / "naf_labels.csv")
    return {
        "SOURCES__INPUTS__FOLDER": str(inputs),
        "SOURCES__REGISTRY__STOCK_UNITES": str(unites),
        "SOURCES__REGISTRY__STOCK_ETABLISSEMENTS": str(etablissements),
        "SOURCES__REGISTRY__NAF_LABELS_FILE": str(naf),
    }
