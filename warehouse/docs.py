"""Render the data dictionary (warehouse/dictionary/*.yaml) as docs/data-dictionary.md.

`python -m warehouse.docs` rewrites the file; a test fails when it is out of date, so the published dictionary
always says what the YAML (and so the Dagster column metadata) says.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .dictionary import load_dictionary

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"
ORDER = ("marts", "quality", "core", "staging")
INTRO = {
    "marts": "What BI tools read. Point your BI tool at this schema (and `quality`).",
    "quality": "Data-quality results: violations per record and rule, quarantined records.",
    "core": "Resolved entities (one row per real company / person) and facts joined to them.",
    "staging": "Vendor-neutral, typed copies of every source (not deduplicated). Internal.",
}


def render() -> str:
    d = load_dictionary()
    out = [
        "# Data dictionary",
        "",
        "Generated from `warehouse/dictionary/*.yaml` by `python -m warehouse.docs`; do not edit by hand.",
        "Money is in the home currency unless a column says otherwise; probabilities are 0-1; periods are explicit",
        "columns, never relative to the run time.",
        "",
    ]
    for schema in [s for s in ORDER if s in d] + sorted(set(d) - set(ORDER)):
        out += [f"## Schema `{schema}`", "", INTRO.get(schema, ""), ""]
        for table, doc in d[schema].items():
            out += [f"### `{schema}.{table}`", "", doc.get("description", "").strip(), ""]
            if doc.get("grain"):
                out += [f"**Grain:** {doc['grain']}.  "]
            if doc.get("primary_key"):
                out += [f"**Key:** {', '.join(doc['primary_key'])}", ""]
            out += ["| column | type | description |", "|---|---|---|"]
            for name, spec in doc.get("columns", {}).items():
                desc = str(spec.get("description", "")).replace("|", "\\|")
                out.append(f"| `{name}` | {spec.get('type', '')} | {desc} |")
            out.append("")
            if doc.get("example_query"):
                out += ["Example:", "", "```sql", doc["example_query"].strip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
