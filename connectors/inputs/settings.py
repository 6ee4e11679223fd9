"""Inputs constants: the two file kinds, their columns (with the French headers accepted too), file types.
The format is documented for users in docs/inputs-format.md; keep both in step."""
from __future__ import annotations

from typing import Dict, Tuple

KINDS: Tuple[str, ...] = ("marketing_spend", "rep_costs")
EXTENSIONS: Tuple[str, ...] = (".csv", ".xlsx", ".xlsm")

# canonical column -> accepted header spellings (compared lower-cased, accents and spaces folded to "_")
COLUMNS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "marketing_spend": {
        "month": ("month", "mois"),
        "channel": ("channel", "canal"),
        "campaign": ("campaign", "campagne"),
        "amount": ("amount", "amount_eur", "montant", "montant_eur"),
        "currency": ("currency", "devise"),
        "tier": ("tier", "segment"),
    },
    "rep_costs": {
        "rep_email": ("rep_email", "email", "email_commercial"),
        "hourly_cost": ("hourly_cost", "cout_horaire"),
        "monthly_cost": ("monthly_cost", "cout_mensuel"),
        "monthly_hours": ("monthly_hours", "heures_mensuelles"),
        "valid_from": ("valid_from", "debut", "date_debut"),
        "valid_to": ("valid_to", "fin", "date_fin"),
    },
}
REQUIRED: Dict[str, Tuple[str, ...]] = {
    "marketing_spend": ("month", "channel", "campaign", "amount"),
    "rep_costs": ("rep_email", "valid_from"),
}
DEFAULT_CURRENCY = "EUR"
MAX_ERRORS_SHOWN = 50
