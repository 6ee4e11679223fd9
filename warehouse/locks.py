"""Locks on a source's dlt pipeline: one process at a time works on it, on this machine (its dlt working folder) and,
with a PostgreSQL warehouse, on every machine that loads into that warehouse (its state there)."""
from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

from .connection import dlt_pipelines_dir, warehouse_url as resolve_warehouse_url


class SyncBusy(RuntimeError):
    """Another process works on the source's dlt pipeline now (a sync, a resync), on this machine or, with a
    PostgreSQL warehouse, on another one loading into it."""

    def __init__(self, source: str, holder: str):
        super().__init__(f"a sync or resync of {source} is running ({holder or 'another process'})")
        self.source, self.holder = source, holder


@contextlib.contextmanager
def sync_lock(source: str, *, wait: bool = True, log: Callable[[str], None] | None = None,
              pipelines_dir: str | Path | None = None, warehouse_url: str | None = None) -> Iterator[None]:
    """One process at a time works on `source`'s dlt pipeline on this machine: an advisory lock on
    `locks/crm_etl_<source>.lock` beside `pipelines_dir` (default dlt_pipelines_dir()), held by the sync asset
    (pipelines.ingest), a resync (pipelines.resync) and the abort of pending load packages (transforms.erasure).
    Two processes must not share a source's dlt working folder: two syncs would race on its state and load
    packages, a sync running through a resync would commit the read position the resync removed (the resync
    silently undone), an abort would delete the packages a sync is loading. A Dagster instance that limits the
    warehouse_writer pool to one never runs two syncs at once; this also covers the CLI (`crm-etl resync`,
    `crm-etl forget --drop-pending`), a second Dagster instance, and, with a PostgreSQL warehouse (`warehouse_url`,
    default the configured one), the other machines loading into it: their dlt folders are their own, but a sync on
    one would still commit the read position a resync on another removed, so a session advisory lock in the
    warehouse is held too (released by PostgreSQL if the process dies). A sync waits (logged); `wait=False` raises
    SyncBusy instead. Both locks name their holder (pid, host, since when)."""
    with _folder_lock(source, wait, log, pipelines_dir):
        url = resolve_warehouse_url(warehouse_url)
        if url.startswith("postgresql"):
            with _warehouse_lock(url, source, wait, log):
                yield
        else:  # DuckDB: one file, written from one machine; the folder lock is the lock
            yield


def _busy(source: str, holder: str, wait: bool, log: Callable[[str], None] | None) -> None:
    """Another process holds `source`: SyncBusy, or (waiting) the line that says whom the caller waits for."""
    if not wait:
        raise SyncBusy(source, holder) from None
    if log:
        log(f"a sync or resync of {source} is running ({holder or 'another process'}): waiting for it to end")


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"


@contextlib.contextmanager
def _folder_lock(source: str, wait: bool, log: Callable[[str], None] | None,
                 pipelines_dir: str | Path | None) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks on this platform: the pool alone
        yield
        return
    path = Path(pipelines_dir or dlt_pipelines_dir()).parent / "locks" / f"crm_etl_{source}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            _busy(source, f.read().strip(), wait, log)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(_holder())
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)  # closing the file then releases the lock


#: How often a waiting sync asks PostgreSQL for the lock again. A poll, not a blocking pg_advisory_lock: that
#: statement would hold a snapshot for the whole wait (VACUUM keeps every dead row meanwhile), ignore Ctrl-C and a
#: run's termination, and fail under a role's lock_timeout.
WAREHOUSE_LOCK_POLL_SECONDS = 2.0
#: The lock's connection sits idle through a whole sync: probed by TCP keepalives from both ends (libpq's on this
#: side; the session's on the server's, so that the lock of a host that stopped answering, not just of a killed
#: process, is freed in ~1 minute instead of the server's default 2 hours), and never closed for idling.
_LOCK_CONNECT_ARGS = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
_LOCK_SESSION = {"idle_session_timeout": "0", "statement_timeout": "0", "lock_timeout": "0",
                 "idle_in_transaction_session_timeout": "0", "tcp_keepalives_idle": "30",
                 "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}


@contextlib.contextmanager
def _warehouse_lock(url: str, source: str, wait: bool, log: Callable[[str], None] | None) -> Iterator[None]:
    """A PostgreSQL session advisory lock keyed on the source, on a connection of its own (autocommit: no
    transaction stays open through a sync), named after its holder once held (application_name, which a refused or
    waiting process reads from pg_stat_activity). Needs a session of its own: not through a PgBouncer in
    transaction pooling."""
    import hashlib

    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(f"crm-etl sync {source}".encode()).digest()[:8], "big", signed=True)
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                              connect_args={**_LOCK_CONNECT_ARGS, "application_name": f"crm-etl {source} lock"})

    def holder(conn) -> str | None:
        # pg_locks shows a bigint key as its high and low 32 bits (classid, objid), objsubid 1; advisory locks are
        # per database. None: nobody holds it (any more)
        name = conn.execute(sa.text(
            """select a.application_name from pg_locks l join pg_stat_activity a using (pid)
               where l.locktype = 'advisory' and l.granted and l.objsubid = 1
                 and l.database = (select oid from pg_database where datname = current_database())
                 and l.classid::bigint = :hi and l.objid::bigint = :lo"""),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}).scalar()
        return None if name is None else f"{name.removeprefix('crm-etl ')} (warehouse lock)"

    try:
        with engine.connect() as conn:
            for setting, value in _LOCK_SESSION.items():
                try:  # (idle_session_timeout: PostgreSQL 14 and later)
                    conn.execute(sa.text("select set_config(:s, :v, false)"), {"s": setting, "v": value})
                except sa.exc.DBAPIError:
                    pass
            take = sa.text("select pg_try_advisory_lock(:k)")
            held = conn.execute(take, {"k": key}).scalar()
            busy = None if held else holder(conn)
            if not held and busy is None:  # released between the two statements
                held = conn.execute(take, {"k": key}).scalar()
                busy = None if held else "another process (warehouse lock)"
            if not held:
                _busy(source, busy, wait, log)
                while not conn.execute(take, {"k": key}).scalar():
                    time.sleep(WAREHOUSE_LOCK_POLL_SECONDS)
            # named once held: pid, host and since when it holds (PostgreSQL keeps 63 bytes of it)
            conn.execute(sa.text("select set_config('application_name', :n, false)"),
                         {"n": f"crm-etl {_holder()}"[:63]})
            try:
                yield
            finally:
                try:
                    conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": key})
                except sa.exc.DBAPIError:  # the connection dropped during the run: PostgreSQL freed the lock then
                    if log:
                        log(f"the warehouse lock of {source} was lost during this run (its connection to PostgreSQL "
                            f"dropped): another machine may have synced or resynced {source} meanwhile")
    finally:
        engine.dispose()
