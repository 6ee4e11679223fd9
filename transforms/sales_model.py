"""The sales model file (sales_model.yaml): what sales ops own, validated with line-precise errors.

`load_sales_model(path=None)` reads the file (default: $CRM_ETL_SALES_MODEL, else ./sales_model.yaml, else the
sample shipped at the project root) and returns a `SalesModel`. Every problem is reported at once, each as
`file:line:column: dotted.key: message`, so sales ops can fix the file without reading Python.

`SalesModel.config_frames()` turns the file into the staging.cfg_* tables (notes/config_tables.md contract), so
that SQL reads configuration as tables.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PATH = PROJECT_ROOT / "sales_model.yaml"

#: Objects mandatory-field rules apply to, and the staging table + id column each reads.
OBJECT_TABLES: dict[str, tuple[str, str]] = {
    "company": ("companies", "company_id"),
    "contact": ("contacts", "contact_id"),
    "deal": ("deals", "deal_id"),
    "activity": ("activities", "activity_id"),
}
#: Fields that are not staging columns but are computed for a rule (see transforms/quality/rules.py).
VIRTUAL_FIELDS: dict[str, set[str]] = {"deal": {"segment"}}

Severity = Literal["error", "warn"]


class SalesModelError(ValueError):
    """The file is invalid; `.problems` lists every problem as `file:line:col: key: message`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid sales model:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    # A misspelt key is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(_Strict):
    home_currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    default_region: str = Field("FR", pattern=r"^[A-Z]{2}$")
    effort_flag_threshold: float = Field(0.10, ge=0, le=1)
    cohort_window_days: int = Field(180, ge=1)
    stale_factor: float = Field(2.0, gt=0)
    first_year_window_months: int = Field(12, ge=1)
    # untagged marketing spend is split between segments by the channel's new customers of the months fewer than
    # this many before or after the spend's month (mart_cac; 1 = the spend's month alone)
    spend_allocation_window_months: int = Field(12, ge=1)
    default_hourly_cost: float = Field(50.0, ge=0)
    # days of marts.mart_pipeline_daily an unpartitioned run (a sync, rebuild_marts) recomputes, ending at the
    # as-of; older days keep what was snapshotted then (a backfill of a partition range recomputes them)
    pipeline_snapshot_refresh_days: int = Field(2, ge=1)


class Segment(_Strict):
    planned_share: float = Field(ge=0, le=1)
    min_headcount: int | None = Field(None, ge=0)
    max_headcount: int | None = Field(None, ge=0)
    # a company tagged with the tier's name belongs to it whatever its headcount (a tag wins over every headcount
    # range, core/company_tier.sql); false: such a tag is ignored and the headcount decides
    tagged: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _range(self) -> "Segment":
        if self.min_headcount is not None and self.max_headcount is not None and self.max_headcount < self.min_headcount:
            raise ValueError("max_headcount must be >= min_headcount")
        return self


class ActivityType(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    default_minutes: float = Field(ge=0)
    is_meeting: bool = False


class Stage(_Strict):
    id: str = Field(min_length=1)
    label: str
    probability: float = Field(ge=0, le=1)
    expected_days: int | None = Field(None, ge=0)
    proposal: bool = False
    outcome: Literal["open", "won", "lost"] = "open"


class Pipeline(_Strict):
    id: str = Field(min_length=1)
    label: str = ""
    stages: list[Stage] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _unique(cls, stages: list[Stage]) -> list[Stage]:
        seen = [s.id for s in stages]
        dup = sorted({s for s in seen if seen.count(s) > 1})
        if dup:
            raise ValueError(f"stage ids must be unique, repeated: {', '.join(dup)}")
        return stages


class Channel(_Strict):
    source_channel: str
    lead_source: str = "*"
    channel_group: Literal["marketing", "sales", "unknown"]


class LeadScoring(_Strict):
    points: dict[str, float] = Field(default_factory=dict)
    handoff_threshold: float = Field(ge=0)

    @field_validator("points")
    @classmethod
    def _signals(cls, points: dict[str, float]) -> dict[str, float]:
        known = {"page_view", "email_open", "email_click", "form_submission"}
        unknown = sorted(set(points) - known)
        if unknown:
            raise ValueError(f"unknown signal(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return points


class Enrichment(_Strict):
    """Registry enrichment and requalification knobs (core.company_registry_match, core.tier_suggestions)."""

    # A name + postcode candidate is accepted only at or above this score (0-1: name token overlap, legal forms
    # left out, x0.9 when the head office is not in the CRM postcode). Below it: listed for review, never guessed.
    name_match_min_score: float = Field(0.8, gt=0, le=1)
    # A tier's medians are compared only when at least this many of its companies have the figure.
    tier_min_peers: int = Field(3, ge=1)


def _identity_default(config: str, field: str) -> Any:
    """A default of transforms.identity.config, defined there once (imported when first needed: the identity package
    is heavy to import)."""
    from transforms.identity import config as identity_config

    return getattr(getattr(identity_config, config)(), field)


class IdentityMatching(_Strict):
    """How one kind (contacts, companies) is resolved (transforms.identity.MatchConfig). A change here makes the
    next identity run rebuild in full with it: raise the threshold and a merge that was wrong splits again."""

    # Splink pairs at or above this match probability are linked (deterministic rules always link); the defaults
    # are transforms.identity.config's
    match_threshold: float = Field(default_factory=lambda: _identity_default("ContactsConfig", "match_threshold"),
                                   gt=0, lt=1)
    # golden records: "most_recent" non-null value wins (source priority breaks ties) or "source_priority" first
    # (records still tied: the value most of the entity's records hold)
    survivorship: Literal["most_recent", "source_priority"] = "most_recent"
    source_priority: list[str] = Field(
        default_factory=lambda: _identity_default("SurvivorshipConfig", "source_priority"), min_length=1)
    # per golden field, the other strategy (e.g. {email: source_priority})
    field_strategy: dict[str, Literal["most_recent", "source_priority"]] = Field(default_factory=dict)
    # a trained Splink model (JSON, e.g. from `crm-etl resolve --save-model`), its path relative to this file;
    # empty: the shipped model
    model_file: str | None = None

    @field_validator("source_priority")
    @classmethod
    def _distinct(cls, sources: list[str]) -> list[str]:
        if len(set(sources)) != len(sources):
            raise ValueError("a source is listed twice")
        return sources


class CompanyMatching(IdentityMatching):
    # see CompaniesConfig: a name + postcode alone (0.949 with the shipped model) does not link two companies
    match_threshold: float = Field(default_factory=lambda: _identity_default("CompaniesConfig", "match_threshold"),
                                   gt=0, lt=1)


class Identity(_Strict):
    contacts: IdentityMatching = Field(default_factory=IdentityMatching)
    companies: CompanyMatching = Field(default_factory=CompanyMatching)


class RepCost(_Strict):
    rep_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    hourly_cost: float = Field(ge=0)
    valid_from: dt.date = dt.date(2000, 1, 1)
    valid_to: dt.date | None = None


class Freshness(_Strict):
    warn_after_hours: float = Field(gt=0)
    fail_after_hours: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> "Freshness":
        if self.fail_after_hours < self.warn_after_hours:
            raise ValueError("fail_after_hours must be >= warn_after_hours")
        return self


class Condition(_Strict):
    """One `when` condition; exactly one form is used."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # A stage id, or a list of them: one per pipeline the condition covers (stage ids belong to one pipeline, so
    # a single id only covers deals of its pipeline, e.g. not the Koban process next to HubSpot's).
    stage_past: str | list[str] | None = None
    stage_at_or_past: str | list[str] | None = None
    field: str | None = None
    equals: str | int | float | bool | None = None
    in_: list[str | int | float | bool] | None = Field(None, alias="in")
    present: bool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "Condition":
        stage_forms = [x for x in (self.stage_past, self.stage_at_or_past) if x is not None]
        tests = [x for x in (self.equals, self.in_, self.present) if x is not None]
        if stage_forms:
            if len(stage_forms) > 1 or self.field is not None or tests:
                raise ValueError("use one of stage_past / stage_at_or_past alone")
        elif self.field is None or len(tests) != 1:
            raise ValueError("give stage_past, stage_at_or_past, or field with exactly one of equals / in / present")
        if stage_forms and not self.stages:
            raise ValueError("name at least one stage")
        return self

    @property
    def stages(self) -> list[str]:
        """The stage ids of a stage condition (stage_past / stage_at_or_past), as a list; [] for other forms."""
        value = self.stage_past if self.stage_past is not None else self.stage_at_or_past
        return [] if value is None else [value] if isinstance(value, str) else list(value)


class MandatoryRule(_Strict):
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    fields: list[str] = Field(min_length=1)
    require: Literal["all", "any"] = "all"
    severity: Severity = "warn"
    when: Condition | list[Condition] | None = None
    description: str = ""

    @property
    def conditions(self) -> list[Condition]:
        if self.when is None:
            return []
        return self.when if isinstance(self.when, list) else [self.when]


class Quality(_Strict):
    earliest_date: dt.date = dt.date(2000, 1, 1)
    max_years_ahead: int = Field(5, ge=0)
    builtin: dict[str, Literal["error", "warn", "off"]] = Field(default_factory=dict)
    mandatory_fields: dict[Literal["company", "contact", "deal", "activity"], list[MandatoryRule]] = Field(
        default_factory=dict
    )


class SalesModel(_Strict):
    #: the folder relative paths in the file (identity model files) are read from: the file's own folder
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    version: Literal[1] = 1
    settings: Settings = Settings()
    segments: dict[str, Segment] = Field(min_length=1)
    activity_types: list[ActivityType] = Field(min_length=1)
    pipelines: list[Pipeline] = Field(min_length=1)
    fx_rates: dict[str, float] = Field(default_factory=lambda: {"EUR": 1.0})
    channels: list[Channel] = Field(default_factory=list)
    lead_scoring: LeadScoring = LeadScoring(handoff_threshold=50)
    enrichment: Enrichment = Enrichment()
    identity: Identity = Field(default_factory=Identity)
    rep_costs: list[RepCost] = Field(default_factory=list)
    freshness: dict[str, Freshness] = Field(default_factory=dict)
    quality: Quality = Quality()

    @field_validator("fx_rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for cur, rate in rates.items():
            if len(cur) != 3 or not cur.isupper():
                raise ValueError(f"{cur!r} is not an ISO 4217 code (3 capital letters)")
            if rate <= 0:
                raise ValueError(f"rate for {cur} must be > 0")
        return rates

    # -- derived views ------------------------------------------------------------------------------------
    def identity_config(self, kind: str):
        """The transforms.identity config of `kind` ("contacts" or "companies"): this file's identity section,
        phones parsed in settings.default_region."""
        from transforms.identity.config import CompaniesConfig, ContactsConfig, SurvivorshipConfig

        m: IdentityMatching = getattr(self.identity, kind)
        cls = ContactsConfig if kind == "contacts" else CompaniesConfig
        return cls(region=self.settings.default_region, match_threshold=m.match_threshold,
                   model_path=self._base_dir / m.model_file if m.model_file else None,
                   survivorship=SurvivorshipConfig(strategy=m.survivorship, source_priority=list(m.source_priority),
                                                   field_strategy=dict(m.field_strategy)))

    def stage_order(self) -> dict[tuple[str, str], int]:
        return {(p.id, s.id): i for p in self.pipelines for i, s in enumerate(p.stages)}

    def mandatory_rules(self) -> list[tuple[str, MandatoryRule]]:
        return [(obj, r) for obj, rules in self.quality.mandatory_fields.items() for r in rules]

    def config_frames(self) -> dict[str, Any]:
        """The staging.cfg_* tables (notes/config_tables.md), as pandas DataFrames keyed by table name."""
        import pandas as pd

        s = self.settings
        settings = {
            "home_currency": s.home_currency,
            "default_region": s.default_region,
            "effort_flag_threshold": s.effort_flag_threshold,
            "cohort_window_days": s.cohort_window_days,
            "stale_factor": s.stale_factor,
            "default_hourly_cost": s.default_hourly_cost,
            "first_year_window_months": s.first_year_window_months,
            "spend_allocation_window_months": s.spend_allocation_window_months,
            "pipeline_snapshot_refresh_days": s.pipeline_snapshot_refresh_days,
            "lead_score_handoff_threshold": self.lead_scoring.handoff_threshold,
            **{f"lead_points_{k}": v for k, v in self.lead_scoring.points.items()},
            "enrichment_name_match_min_score": self.enrichment.name_match_min_score,
            "tier_suggestion_min_peers": self.enrichment.tier_min_peers,
        }
        segments = [
            {
                "tier": name,
                "planned_share": seg.planned_share,
                "sort_order": i,
                "assignment_rule": seg.description or _describe_segment(name, seg),
                "min_headcount": seg.min_headcount,
                "max_headcount": seg.max_headcount,
                "tagged": seg.tagged,
            }
            for i, (name, seg) in enumerate(self.segments.items())
        ]
        segments.append({"tier": "unknown", "planned_share": None, "sort_order": len(segments),
                         "assignment_rule": "no tag and no headcount", "min_headcount": None, "max_headcount": None,
                         "tagged": False})
        stages = [
            {
                "pipeline_id": p.id,
                "stage_id": st.id,
                "stage_label": st.label,
                "stage_order": i,
                "expected_probability": st.probability,
                "expected_days": st.expected_days,
                "is_proposal": st.proposal,
                "outcome": st.outcome,
            }
            for p in self.pipelines
            for i, st in enumerate(p.stages)
        ]
        frames = {
            "cfg_settings": pd.DataFrame([{"key": k, "value": str(v)} for k, v in settings.items()],
                                         columns=["key", "value"]),
            "cfg_segments": pd.DataFrame(segments).astype(
                {"planned_share": "float64", "sort_order": "int64", "min_headcount": "Int64", "max_headcount": "Int64",
                 "tagged": "bool"}
            ),
            "cfg_activity_types": pd.DataFrame(
                [{"activity_type": a.id, "label": a.label, "default_minutes": float(a.default_minutes),
                  "is_meeting": a.is_meeting} for a in self.activity_types],
                columns=["activity_type", "label", "default_minutes", "is_meeting"],
            ),
            "cfg_stages": pd.DataFrame(stages).astype({"stage_order": "int64", "expected_probability": "float64",
                                                       "expected_days": "Int64", "is_proposal": "bool"}),
            "cfg_fx_rates": pd.DataFrame([{"currency": c, "rate_to_home": float(r)} for c, r in self.fx_rates.items()],
                                         columns=["currency", "rate_to_home"]),
            "cfg_channels": pd.DataFrame([c.model_dump() for c in self.channels],
                                         columns=["source_channel", "lead_source", "channel_group"]),
            "cfg_rep_costs": pd.DataFrame(
                [{"rep_email": r.rep_email.lower(), "hourly_cost": r.hourly_cost, "valid_from": r.valid_from,
                  "valid_to": r.valid_to} for r in self.rep_costs],
                columns=["rep_email", "hourly_cost", "valid_from", "valid_to"],
            ).astype({"valid_from": "datetime64[s]", "valid_to": "datetime64[s]", "hourly_cost": "float64"}),
        }
        return frames


def _describe_segment(name: str, seg: Segment) -> str:
    """The tier's rule in words, as core/company_tier.sql applies it: a tag wins over any headcount."""
    parts = [f"tagged {name}"] if seg.tagged else []
    if seg.min_headcount is not None or seg.max_headcount is not None:
        lo = seg.min_headcount if seg.min_headcount is not None else 0
        rng = f"headcount {lo}-{seg.max_headcount}" if seg.max_headcount is not None else f"headcount >= {lo}"
        parts.append(f"untagged with {rng}")
    return ", or ".join(parts)


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# -- semantic checks (cross-references the schema alone cannot express) ----------------------------------------
def _semantic_problems(model: SalesModel) -> list[tuple[tuple, str]]:
    from transforms.identity.core import golden_field_names
    from warehouse.dictionary import table_doc

    problems: list[tuple[tuple, str]] = []
    for kind in ("contacts", "companies"):
        m = getattr(model.identity, kind)
        if m.model_file and not (model._base_dir / m.model_file).is_file():
            problems.append((("identity", kind, "model_file"),
                             f"no file {m.model_file} (a path relative to this file's folder, {model._base_dir})"))
        for name in sorted(set(m.field_strategy) - set(golden_field_names(kind))):
            problems.append((("identity", kind, "field_strategy", name),
                             f"no golden field {name!r}; {kind} have {', '.join(golden_field_names(kind))}"))
    total = sum(s.planned_share for s in model.segments.values())
    if abs(total - 1.0) > 0.001:
        problems.append((("segments",), f"planned_share values must sum to 1 (they sum to {total:g})"))
    if "unknown" in model.segments:
        problems.append((("segments", "unknown"), "'unknown' is reserved for companies no rule places"))
    home = model.settings.home_currency
    if model.fx_rates.get(home) != 1.0:
        problems.append((("fx_rates",), f"the home currency {home} must have rate 1.0"))
    ids = [a.id for a in model.activity_types]
    for i, a in enumerate(model.activity_types):
        if ids.count(a.id) > 1:
            problems.append((("activity_types", i, "id"), f"activity type {a.id!r} is listed twice"))
    if not any(s.proposal for p in model.pipelines for s in p.stages):
        problems.append((("pipelines",), "mark the proposal stage with `proposal: true` (at least one)"))
    for i, p in enumerate(model.pipelines):
        if not any(s.outcome == "won" for s in p.stages):
            problems.append((("pipelines", i, "stages"), f"pipeline {p.id!r} needs a stage with `outcome: won`"))
    all_stages = {s.id for p in model.pipelines for s in p.stages}
    rule_ids: dict[str, tuple] = {}
    for obj, rules in model.quality.mandatory_fields.items():
        table, _ = OBJECT_TABLES[obj]
        doc = table_doc("staging", table) or {}
        columns = set(doc.get("columns", {})) | VIRTUAL_FIELDS.get(obj, set())
        for i, rule in enumerate(rules):
            where = ("quality", "mandatory_fields", obj, i)
            if rule.rule in rule_ids:
                problems.append((where + ("rule",), f"rule name {rule.rule!r} is used twice"))
            rule_ids[rule.rule] = where
            for j, f in enumerate(rule.fields):
                if columns and f not in columns:
                    problems.append((where + ("fields", j), f"unknown field {f!r} for {obj} (see staging.{table})"))
            conds = rule.conditions
            for k, c in enumerate(conds):
                cwhere = where + (("when", k) if isinstance(rule.when, list) else ("when",))
                if c.stages:
                    if obj != "deal":
                        problems.append((cwhere, "stage conditions apply to deals only"))
                    for stage in c.stages:
                        if obj == "deal" and stage not in all_stages:
                            problems.append((cwhere, f"unknown stage {stage!r}; stages: "
                                                     f"{', '.join(sorted(all_stages))}"))
                    for p in model.pipelines:
                        named = [x for x in c.stages if x in {st.id for st in p.stages}]
                        if len(named) > 1:
                            problems.append((cwhere, f"stages {', '.join(map(repr, named))} are both in pipeline "
                                                     f"{p.id!r}: name one stage per pipeline"))
                elif columns and c.field not in columns:
                    problems.append((cwhere + ("field",), f"unknown field {c.field!r} for {obj} (see staging.{table})"))
    from transforms.quality.rules import BUILTIN_RULES  # local import: rules imports this module

    for name in model.quality.builtin:
        if name not in BUILTIN_RULES:
            problems.append((("quality", "builtin", name), f"unknown built-in rule; known: {', '.join(BUILTIN_RULES)}"))
        elif name in rule_ids:
            problems.append((("quality", "builtin", name), "a mandatory-field rule has the same name"))
    return problems


# -- loading with positions ---------------------------------------------------------------------------------
def default_path() -> Path:
    env = os.environ.get("CRM_ETL_SALES_MODEL")
    if env:
        return Path(env)
    local = Path("sales_model.yaml")
    return local if local.exists() else SAMPLE_PATH


def load_sales_model(path: str | os.PathLike | None = None) -> SalesModel:
    """Read and validate the sales model file; raise SalesModelError listing every problem with its line."""
    path = Path(path) if path is not None else default_path()
    text = path.read_text(encoding="utf-8")
    return parse_sales_model(text, name=path.name if path.parent == Path(".") else str(path),
                             base_dir=path.resolve().parent)


def parse_sales_model(text: str, name: str = "sales_model.yaml", base_dir: Path | None = None) -> SalesModel:
    """`base_dir`: where relative paths in the file are read from (load_sales_model: the file's folder; default:
    the working directory)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")  # round-trip loader: keeps line/column of every key and item
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise SalesModelError([f"{where}: YAML syntax: {exc.problem or exc}"]) from None
    if doc is None:
        raise SalesModelError([f"{name}:1:1: the file is empty"])
    try:
        model = SalesModel.model_validate(_plain(doc))
    except ValidationError as exc:
        problems = [_format(name, doc, err["loc"], _message(err)) for err in exc.errors()]
        raise SalesModelError(problems) from None
    if base_dir is not None:
        model._base_dir = Path(base_dir)
    semantic = _semantic_problems(model)
    if semantic:
        raise SalesModelError([_format(name, doc, loc, msg) for loc, msg in semantic])
    return model


def _plain(node: Any) -> Any:
    """ruamel's commented containers as plain dicts/lists (pydantic then sees ordinary data)."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _message(err: dict) -> str:
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (misspelt?)"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        ops = {"less_than_equal": "<=", "greater_than_equal": ">=", "less_than": "<", "greater_than": ">"}
        limit = next(iter(ctx.values()), None)
        return f"must be {ops[kind]} {limit} (got {err.get('input')!r})"
    msg = err.get("msg", "invalid")
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg[:1].lower() + msg[1:]


def _format(name: str, doc: Any, loc: tuple, msg: str) -> str:
    # pydantic adds union-member names (e.g. 'list[Condition]') to locations; drop what is not in the file.
    clean: list = []
    node = doc
    line, col = 0, 0
    for part in loc:
        key = "in" if part == "in_" else part
        child = None
        if isinstance(node, dict) and key in node:
            line, col = node.lc.key(key)  # the key's position: where a reader looks first
            child = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            line, col = node.lc.item(key)
            child = node[key]
        elif isinstance(key, str) and (key.startswith(("list[", "dict[", "function-")) or key[:1].isupper()):
            continue  # a pydantic union tag, not a key of the file
        else:
            clean.append(key)
            node = None
            continue
        clean.append(key)
        node = child
    if not clean or node is doc:
        if hasattr(doc, "lc"):
            line, col = (doc.lc.line, doc.lc.col)
    dotted = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in clean).replace(".[", "[")
    return f"{name}:{line + 1}:{col + 1}: {dotted or '(top)'}: {msg}"
