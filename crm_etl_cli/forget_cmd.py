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
@click.option("--drop-pending", is_flag=True,
              help="If dlt load packages not loaded yet name the person, abort those pipelines' pending packages "
                   "(their records are read again from the CRM at the next sync) instead of refusing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(emails: tuple[str, ...], contacts: tuple[str, ...], dry_run: bool, drop_pending: bool, yes: bool) -> None:
    """Erase a person from the warehouse: their contact records in every CRM (and the same person's records the
    identity resolution links), Koban leads with their email, and every row holding them; and from dlt's files on
    disk (DLT_DATA_DIR): the loaded packages' files naming them."""
    from transforms import erasure
    from warehouse import Warehouse
    from warehouse.locks import SyncBusy

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
    pending = preview.dlt_files.pending
    if dry_run:
        click.echo("\nDry run: nothing was changed.")
        return
    if pending and not drop_pending:
        _refuse_pending(pending)
    if not yes:
        click.confirm("\nErase these rows" + (" and files" if preview.dlt_files.to_delete() else "")
                      + (", after aborting the pending dlt load packages" if pending else "")
                      + "? This cannot be undone", abort=True)
    try:
        result = erasure.erase(wh, emails, refs, person=person, drop_pending=drop_pending)
    except erasure.PendingPackages as exc:  # a sync left a package since the preview
        _refuse_pending(exc.pending)
    except SyncBusy as busy:  # --drop-pending while that sync runs: its packages are not ours to abort
        click.echo(f"\nRefused, nothing was changed: {busy}, and its load packages name this person. Rerun forget "
                   "once it has ended.", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"\nErased: {sum(result.deleted.values())} rows deleted, {sum(result.unlinked.values())} unlinked, "
               "in one transaction; recorded in quality.erasures (hashed subject, no personal data).")
    if result.aborted:
        click.echo(f"Aborted the pending dlt load packages of {', '.join(result.aborted)}: the next sync reads their "
                   "records again from the CRMs.")
    if result.files_deleted:
        click.echo(f"Deleted {sum(result.files_deleted.values())} dlt file(s) naming them (loaded load packages, run "
                   f"traces) under {result.dlt_files.root}: "
                   + ", ".join(f"{n} in {name}" for name, n in sorted(result.files_deleted.items())) + ".")
    else:
        click.echo(f"No dlt file under {result.dlt_files.root} names them (load packages, run traces).")
    for f in result.dlt_files.kept:
        click.echo(f"WARNING: {f} still names them (kept: dlt needs it to run; dropping the pipeline's working folder "
                   "makes the next sync start from the warehouse's state).")
    if result.compacted:
        click.echo(f"Freed storage rewritten so the deleted bytes are gone too: {result.compacted}.")
    if result.state_files:
        click.echo("Deleted the contacts identity state (it held their data): the next identity run rebuilds it in "
                   "full.")
    click.echo("WARNING: delete the person in the CRMs (HubSpot, Koban) too, or a sync brings them back: any change to "
               "their record there is synced again, and so is the deletion itself (HubSpot lists archived contacts, "
               "Koban sends Obsolete ones). Best order: delete in the CRMs, let one sync run, then forget (again).")


def _refuse_pending(pending: dict[str, list[str]]) -> None:
    names = ", ".join(f"{name} ({len(ids)} package(s))" for name, ids in sorted(pending.items()))
    groups = " or ".join(f"group:raw_{name.removeprefix('crm_etl_')}" for name in sorted(pending))
    click.echo(f"\nRefused, nothing was changed: dlt load packages not loaded yet name this person ({names}); erased "
               "now, they would come back with that load. Either let the load finish (run that sync again: dlt loads "
               f"pending packages first: `crm-etl run --select '{groups}'`), then forget; or rerun forget with "
               "--drop-pending to abort those pipelines' pending packages (the next sync reads their records again "
               "from the CRMs: delete the person there first).", err=True)
    raise click.exceptions.Exit(1)


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
    d = r.dlt_files
    if d.to_delete() or d.pending or d.kept:
        click.echo(f"dlt's files naming them (under {d.root}):")
        for name, n in sorted(d.to_delete().items()):
            click.echo(f"  {name:<55} {n:>7} file(s) of loaded packages / run trace, to delete")
        for name, ids in sorted(d.pending.items()):
            click.echo(f"  {name:<55} {len(ids):>7} package(s) NOT LOADED YET (see below)")
        for f in d.kept:
            click.echo(f"  {str(f.relative_to(d.root)):<55} kept: dlt needs it to run")
    if r.state_files:
        click.echo(f"Identity state to delete (holds their data; the next identity run rebuilds it in full): "
                   f"{len(r.state_files)} file(s)")
    click.echo("Kept (not erased):")
    for why in KEPT:
        click.echo(f"  {why}")
    for name, n in sorted(r.kept.items()):
        click.echo(f"  {name:<55} {n:>7} billing row(s) naming the email, kept")
