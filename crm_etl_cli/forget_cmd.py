"""`crm-etl forget --email ADDRESS | --contact SOURCE:ID [--dry-run] [--yes]`: erase a person (GDPR erasure request).

Thin: the logic is transforms.erasure. Prints counts per table, never the personal values.
"""
from __future__ import annotations

import click

from . import main


@main.command("forget")
@click.option("--email", "emails", multiple=True, metavar="ADDRESS", help="The person's email (repeatable).")
@click.option("--contact", "contacts", multiple=True, metavar="SOURCE:ID",
              help="A contact record, e.g. hubspot:10001806 or koban:<guid> (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be erased (counts per table), change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(emails: tuple[str, ...], contacts: tuple[str, ...], dry_run: bool, yes: bool) -> None:
    """Erase a person from the warehouse: their contact records in every CRM (and the same person's records the
    identity resolution links), Koban leads with their email, and every row holding them."""
    from transforms import erasure
    from warehouse import Warehouse

    if not emails and not contacts:
        raise click.UsageError("name the person: --email ADDRESS and/or --contact SOURCE:ID")
    try:
        refs = [erasure.parse_contact(c) for c in contacts]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--contact") from None
    if any(not e.strip() or "@" not in e for e in emails):
        raise click.BadParameter("an email address", param_hint="--email")

    wh = Warehouse()
    person = erasure.find(wh, emails, refs)
    if not (person.seen or person.leads):
        click.echo("No contact or lead found for this request in the warehouse.")
    preview = erasure.erase(wh, emails, refs, dry_run=True, person=person)
    _print(preview)
    if dry_run:
        click.echo("\nDry run: nothing was changed.")
        return
    if not yes:
        click.confirm("\nErase these rows? This cannot be undone", abort=True)
    result = erasure.erase(wh, emails, refs, person=person)
    click.echo(f"\nErased: {sum(result.deleted.values())} rows deleted, {sum(result.unlinked.values())} unlinked, "
               "in one transaction; recorded in quality.erasures (hashed subject, no personal data).")
    if result.compacted:
        click.echo(f"Freed storage rewritten so the deleted bytes are gone too: {result.compacted}.")
    if result.state_files:
        click.echo("Deleted the contacts identity state (it held their data): the next identity run rebuilds it in "
                   "full.")
    click.echo("WARNING: delete the person in the CRMs (HubSpot, Koban) too, or a sync brings them back: any change to "
               "their record there is synced again, and so is the deletion itself (HubSpot lists archived contacts, "
               "Koban sends Obsolete ones). Best order: delete in the CRMs, let one sync run, then forget (again).")
    click.echo("Also outside the warehouse: dlt keeps the load packages of past loads (DLT_DATA_DIR/pipelines/*/load/"
               "loaded); delete them if they must not hold the person either.")


def _print(r) -> None:
    from transforms.erasure import KEPT

    p = r.person
    found = {}
    for source, _ in p.seen:
        found[source] = found.get(source, 0) + 1
    click.echo("Records found: " + (", ".join(f"{n} {s} contact(s)" for s, n in sorted(found.items())) or "no contact")
               + f", {len(p.leads)} Koban lead(s)" + (f", {len(p.entity_keys)} resolved person(s)" if p.entity_keys else "")
               + (f" (+ {len(p.records - p.seen)} named but in no contact table: their quality rows are looked for)"
                  if p.records - p.seen else ""))
    for title, counts in (("Rows to delete", r.deleted), ("Rows kept, link to the person removed (set NULL)", r.unlinked)):
        if counts:
            click.echo(f"{title}:")
            for name, n in sorted(counts.items()):
                click.echo(f"  {name:<55} {n:>7}")
    if r.state_files:
        click.echo(f"Identity state to delete (holds their data; the next identity run rebuilds it in full): "
                   f"{len(r.state_files)} file(s)")
    click.echo("Kept (not erased):")
    for why in KEPT:
        click.echo(f"  {why}")
    for name, n in sorted(r.kept.items()):
        click.echo(f"  {name:<55} {n:>7} billing row(s) naming the email, kept")
