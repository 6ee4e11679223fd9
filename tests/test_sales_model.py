"""The sales model file: the shipped sample loads, errors point at the file line, config tables follow the contract."""
from __future__ import annotations

import pytest

from transforms.sales_model import SAMPLE_PATH, SalesModelError, load_sales_model, parse_sales_model

SAMPLE = SAMPLE_PATH.read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _problems(text: str) -> list[str]:
    with pytest.raises(SalesModelError) as exc:
        parse_sales_model(text)
    return exc.value.problems


def test_sample_loads_with_hubspot_pipeline_and_tiers():
    m = load_sales_model(SAMPLE_PATH)
    stages = [s.id for s in m.pipelines[0].stages]
    assert stages == ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                      "contractsent", "closedwon", "closedlost"]
    assert [s.id for s in m.pipelines[0].stages if s.proposal] == ["presentationscheduled"]
    assert list(m.segments) == ["Or", "Argent", "Bronze"]
    assert abs(sum(s.planned_share for s in m.segments.values()) - 1) < 1e-9


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    other = tmp_path / "model.yaml"
    other.write_text(SAMPLE.replace("handoff_threshold: 60", "handoff_threshold: 75"), encoding="utf-8")
    monkeypatch.setenv("CRM_ETL_SALES_MODEL", str(other))
    assert load_sales_model().lead_scoring.handoff_threshold == 75


def test_out_of_range_share_names_line_and_key():
    bad = SAMPLE.replace("planned_share: 0.45", "planned_share: 1.45")
    problems = _problems(bad)
    line = _line_of(bad, "planned_share: 1.45")
    assert problems == [f"sales_model.yaml:{line}:5: segments.Or.planned_share: must be <= 1.0 (got 1.45)"]


def test_misspelt_key_unknown_field_and_stage_are_reported_with_lines():
    bad = SAMPLE.replace("expected_days: 14}", "expected_dayz: 14}", 1)
    (p,) = _problems(bad)
    assert p.startswith(f"sales_model.yaml:{_line_of(bad, 'expected_dayz')}:")
    assert "pipelines[0].stages[0].expected_dayz: unknown key" in p

    bad = SAMPLE.replace("{rule: deal_owner, fields: [owner_id]", "{rule: deal_owner, fields: [ownr_id]")
    (p,) = _problems(bad)
    assert f"sales_model.yaml:{_line_of(bad, 'ownr_id')}:" in p and "unknown field 'ownr_id' for deal" in p

    bad = SAMPLE.replace("when: {stage_past: [presentationscheduled, PRESENTATION]}", "when: {stage_past: proposal}")
    (p,) = _problems(bad)
    assert f":{_line_of(bad, 'stage_past: proposal')}:" in p and "unknown stage 'proposal'" in p

    bad = SAMPLE.replace("[presentationscheduled, PRESENTATION]", "[presentationscheduled, contractsent]")
    (p,) = _problems(bad)
    assert "'presentationscheduled', 'contractsent' are both in pipeline 'default'" in p


def test_semantic_rules_shares_home_rate_severity():
    shares = _problems(SAMPLE.replace("planned_share: 0.20", "planned_share: 0.30"))
    assert any("segments: planned_share values must sum to 1" in p for p in shares)
    rate = _problems(SAMPLE.replace("  EUR: 1.0\n", "  EUR: 1.1\n"))
    assert any("fx_rates: the home currency EUR must have rate 1.0" in p for p in rate)
    sev = _problems(SAMPLE.replace("{rule: contact_owner, fields: [owner_id], severity: warn}",
                                   "{rule: contact_owner, fields: [owner_id], severity: fatal}"))
    assert any("quality.mandatory_fields.contact[2].severity" in p and "'error' or 'warn'" in p for p in sev)


def test_identity_section_gives_the_matching_config_and_names_its_mistakes(tmp_path, monkeypatch):
    cfg = load_sales_model(SAMPLE_PATH).identity_config("contacts")
    assert (cfg.match_threshold, cfg.region, cfg.survivorship.source_priority) == (0.9, "FR", ["hubspot", "koban"])
    # a kind's section without a threshold keeps that kind's default
    no_threshold = SAMPLE.replace("    match_threshold: 0.95\n", "")
    assert "0.95" not in no_threshold.split("identity:")[1].split("rep_costs")[0]
    assert parse_sales_model(no_threshold).identity_config("companies").match_threshold == 0.95
    # a model file named relative to the sales model file, read from wherever the pipeline runs
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "contacts.json"
    model.write_text("{}")
    (tmp_path / "sales_model.yaml").write_text(SAMPLE.replace(
        "  contacts:\n    match_threshold: 0.9\n",
        "  contacts:\n    match_threshold: 0.97\n    survivorship: source_priority\n"
        "    field_strategy: {email: most_recent}\n    model_file: models/contacts.json\n"), encoding="utf-8")
    monkeypatch.chdir(SAMPLE_PATH.parent)
    custom = load_sales_model(tmp_path / "sales_model.yaml").identity_config("contacts")
    assert custom.match_threshold == 0.97 and custom.model_path == model
    assert (custom.survivorship.strategy, custom.survivorship.field_strategy) == ("source_priority", {"email": "most_recent"})

    bad = SAMPLE.replace("    match_threshold: 0.95", "    match_threshold: 1.2")
    (p,) = _problems(bad)
    line = _line_of(bad, "match_threshold: 1.2")
    assert p == f"sales_model.yaml:{line}:5: identity.companies.match_threshold: must be < 1.0 (got 1.2)"
    bad = SAMPLE.replace("  contacts:\n    match_threshold: 0.9\n",
                         "  contacts:\n    match_threshold: 0.9\n    field_strategy: {emial: most_recent}\n"
                         "    model_file: nowhere/contacts.json\n")
    problems = _problems(bad)
    assert any(p.startswith(f"sales_model.yaml:{_line_of(bad, 'nowhere/contacts.json')}:")
               and "no file nowhere/contacts.json" in p for p in problems), problems
    assert any("identity.contacts.field_strategy.emial: no golden field 'emial'" in p for p in problems), problems


def test_yaml_syntax_error_has_a_position():
    (p,) = _problems("segments:\n  Or: [\n")
    assert p.startswith("sales_model.yaml:") and "YAML syntax" in p


def test_config_frames_follow_the_contract():
    frames = load_sales_model(SAMPLE_PATH).config_frames()
    assert set(frames) == {"cfg_settings", "cfg_segments", "cfg_activity_types", "cfg_stages", "cfg_fx_rates",
                           "cfg_channels", "cfg_rep_costs"}
    settings = dict(zip(frames["cfg_settings"]["key"], frames["cfg_settings"]["value"]))
    for key in ("home_currency", "effort_flag_threshold", "cohort_window_days", "stale_factor",
                "default_hourly_cost", "default_region", "first_year_window_months", "spend_allocation_window_months"):
        assert key in settings
    assert settings["home_currency"] == "EUR"
    seg = frames["cfg_segments"]
    assert list(seg["tier"]) == ["Or", "Argent", "Bronze", "unknown"]
    assert abs(seg["planned_share"].iloc[:3].sum() - 1) < 1e-9
    st = frames["cfg_stages"]
    assert {"pipeline_id", "stage_id", "stage_label", "stage_order", "expected_probability", "expected_days",
            "is_proposal"} <= set(st.columns)
    won = st[st.stage_id == "closedwon"].iloc[0]
    assert won.expected_probability == 1.0 and won.stage_order == 5
    assert set(frames["cfg_activity_types"]["activity_type"]) == {
        "call", "meeting_in_person", "meeting_phone", "meeting_video", "demo", "email", "note", "task"}
    fx = dict(zip(frames["cfg_fx_rates"]["currency"], frames["cfg_fx_rates"]["rate_to_home"]))
    assert fx["EUR"] == 1.0 and "CHF" in fx
    assert set(frames["cfg_channels"]["channel_group"]) <= {"marketing", "sales", "unknown"}
    assert list(frames["cfg_rep_costs"].columns) == ["rep_email", "hourly_cost", "valid_from", "valid_to"]


def test_segment_rule_words_say_a_tag_wins_over_headcount():
    """cfg_segments carries the rule core.company_tier applies (a tag wins, else the first headcount range) and
    says it the same way; a tier with `tagged: false` takes no tag."""
    m = load_sales_model(SAMPLE_PATH)
    seg = m.config_frames()["cfg_segments"].set_index("tier")
    assert list(seg["tagged"]) == [True, True, True, False]
    for tier in ("Or", "Argent", "Bronze"):
        assert f"tagged {tier}, or untagged with headcount" in seg.loc[tier, "assignment_rule"]
    text = SAMPLE_PATH.read_text(encoding="utf-8").replace("    min_headcount: 250\n", "    min_headcount: 250\n    tagged: false\n")
    model = parse_sales_model(text)
    assert not model.segments["Or"].tagged
    from transforms.sales_model import _describe_segment

    assert _describe_segment("Or", model.segments["Or"]) == "untagged with headcount >= 250"
    assert _describe_segment("Argent", model.segments["Argent"]) == "tagged Argent, or untagged with headcount 50-249"

