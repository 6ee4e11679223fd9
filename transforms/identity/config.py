"""Identity configuration (thresholds, survivorship, model files), validated by pydantic."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

MODELS_DIR = Path(__file__).parent / "models"


class SurvivorshipConfig(BaseModel):
    """How a golden record picks each field among a cluster's records.

    strategy "most_recent": the most recently updated non-null value wins, source priority breaks ties;
    "source_priority": the first source in `source_priority` holding a non-null value wins, recency
    breaks ties. Among records still tied (no dates or equal ones, one source), the value most of the entity's
    records hold wins, then the highest uid. `field_strategy` overrides the strategy per field."""

    strategy: Literal["most_recent", "source_priority"] = "most_recent"
    source_priority: list[str] = Field(default_factory=lambda: ["registry", "hubspot", "koban", "stripe"])
    field_strategy: dict[str, Literal["most_recent", "source_priority"]] = Field(default_factory=dict)


class MatchConfig(BaseModel):
    region: str = "FR"  # default phone region
    # Splink pairs at or above this probability are linked (deterministic rules always link).
    # 0.9 measured best on synthetic + sandbox truth with the label-trained models (bench/results_identity.md)
    match_threshold: float = Field(0.9, gt=0, lt=1)
    # An e-mail shared by more records than this is treated as a shared mailbox, never a proof.
    max_shared_email_group: int = 20
    model_path: Path | None = None  # None: the shipped default model
    model_version: str | None = None  # None: taken from the model file
    survivorship: SurvivorshipConfig = Field(default_factory=SurvivorshipConfig)
    golden_fields: list[str] | None = None  # None: the entity's default fields + passthrough columns


class ContactsConfig(MatchConfig):
    golden_fields: list[str] | None = None


class CompaniesConfig(MatchConfig):
    # 0.95: a name + postcode alone scores 0.949, and registry homonyms (same name, same town) are common; measured
    # on 5 seeds x 2 variants: precision 0.9978-0.9998 -> 0.9992-1.0, recall -0.0007 at most (bench/results_identity.md)
    match_threshold: float = Field(0.95, gt=0, lt=1)
