"""The world's cost inputs as the files a sales-ops person would drop in the inputs folder (docs/inputs-format.md).

    from sandbox.inputs_render import write_input_files
    paths = write_input_files(world, folder)   # marketing_spend_<year>.csv (one per year) + rep_costs.xlsx

Source: `world.inputs` (sandbox/model.py: spend per month x channel x campaign in EUR, rep loaded cost spells; one
rep's cost changes mid-history). Variety a real folder has, drawn deterministically: the last year's spend file is
written the French-Excel way (`;` separator, decimal comma, French headers); every third rep's cost is given as a
monthly cost + monthly hours instead of an hourly cost (chosen so the hourly cost is exact).
"""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

MONTHLY_HOURS = Decimal("140")


def spend_rows(world: Any) -> list[dict[str, Any]]:
    return [{"month": s.month, "channel": s.channel, "campaign": s.campaign, "amount": s.amount_eur}
            for s in world.inputs.marketing_spend]


def write_marketing_spend(world: Any, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = spend_rows(world)
    years = sorted({r["month"].year for r in rows})
    out = []
    for year in years:
        path = folder / f"marketing_spend_{year}.csv"
        french = year == years[-1] and len(years) > 1
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=";" if french else ",")
            w.writerow(["mois", "canal", "campagne", "montant", "devise"] if french
                       else ["month", "channel", "campaign", "amount", "currency"])
            for r in rows:
                if r["month"].year != year:
                    continue
                amount = f"{r['amount']:.2f}"
                w.writerow([r["month"].strftime("%Y-%m"), r["channel"], r["campaign"],
                            amount.replace(".", ",") if french else amount, "EUR"])
        out.append(path)
    return out


def write_rep_costs(world: Any, path: str | Path) -> Path:
    from openpyxl import Workbook

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "rep_costs"
    ws.append(["rep_email", "hourly_cost", "monthly_cost", "monthly_hours", "valid_from", "valid_to"])
    emails = sorted({c.rep_email for c in world.inputs.rep_costs})
    for c in world.inputs.rep_costs:
        monthly = emails.index(c.rep_email) % 3 == 2
        ws.append([c.rep_email, None if monthly else float(c.hourly_cost),
                   float(c.hourly_cost * MONTHLY_HOURS) if monthly else None,
                   float(MONTHLY_HOURS) if monthly else None, c.valid_from, c.valid_to])
    for cell in list(ws["E"]) + list(ws["F"]):
        cell.number_format = "yyyy-mm-dd"
    wb.save(path)
    return path


def write_input_files(world: Any, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return write_marketing_spend(world, folder) + [write_rep_costs(world, folder / "rep_costs.xlsx")]
