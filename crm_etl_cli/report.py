"""Run summaries for the CLI: rows per table, checks passed/failed, the flash figures."""
from __future__ import annotations

from typing import Callable

SCHEMAS = ("staging", "core", "quality", "marts")


def print_summary(wh, result, echo: Callable[[str], None] = print) -> None:
    echo("")
    echo("Run " + ("succeeded" if result.success else "FAILED") + f" (run id {result.run_id})")
    failed_steps = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    for e in failed_steps:
        msg = e.event_specific_data.error.message.strip().splitlines()[0] if e.event_specific_data.error else ""
        echo(f"  step failed: {e.step_key}: {msg}")

    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    passed = [ev for ev in evaluations if ev.passed]
    failed = [ev for ev in evaluations if not ev.passed]
    echo(f"\nChecks: {len(passed)} passed, {len(failed)} failed")
    for ev in failed:
        echo(f"  FAILED {ev.asset_key.to_user_string()} / {ev.check_name} ({ev.severity.value})")

    echo("\nRows per table:")
    rows = wh.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('staging','core','quality','marts') and table_name not like '%__building' "
        "order by table_schema, table_name"
    )
    for r in rows:
        n = wh.row_count(r["table_schema"], r["table_name"])
        echo(f"  {r['table_schema'] + '.' + r['table_name']:<45} {n:>9,}")
    if wh.table_exists("marts", "mart_win_rate"):
        echo("\nWin rate by team (all months):")
        try:
            for r in wh.query(
                "select team_name, sum(deals_won) as won, sum(deals_lost) as lost from marts.mart_win_rate "
                "where rep_key = 'all' and tier = 'all' group by team_name order by team_name"
            ):
                total = (r["won"] or 0) + (r["lost"] or 0)
                rate = f"{(r['won'] or 0) / total:.1%}" if total else "n/a"
                echo(f"  {r['team_name']:<30} won {r['won']:>5}  lost {r['lost']:>5}  win rate {rate}")
        except Exception as exc:  # the summary must never hide the run's own outcome
            echo(f"  (could not read mart_win_rate: {exc})")
