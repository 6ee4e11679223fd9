"""Locks on the dlt working folders: one process at a time works on a source's dlt pipeline on this machine."""
from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

from .connection import dlt_pipelines_dir


class SyncBusy(RuntimeError):
    """Another process of this machine works on the source's dlt pipeline now (a sync, a resync)."""

    def __init__(self, source: str, holder: str):
        super().__init__(f"a sync or resync of {source} is running ({holder or 'another process'})")
        self.source, self.holder = source, holder


@contextlib.contextmanager
def sync_lock(source: str, *, wait: bool = True, log: Callable[[str], None] | None = None,
              pipelines_dir: str | Path | None = None) -> Iterator[None]:
    """One process at a time works on `source`'s dlt pipeline on this machine: an advisory lock on
    `locks/crm_etl_<source>.lock` beside `pipelines_dir` (default dlt_pipelines_dir()), held by the sync asset
    (pipelines.ingest), a resync (pipelines.resync) and the abort of pending load packages (transforms.erasure).
    Two processes must not share a source's dlt working folder: two syncs would race on its state and load
    packages, a sync running through a resync would commit the read position the resync removed (the resync
    silently undone), an abort would delete the packages a sync is loading. A Dagster instance that limits the
    warehouse_writer pool never runs two syncs at once; this also covers the CLI (`crm-etl resync`, `crm-etl
    forget --drop-pending`) and a second instance on the machine (not another machine: there, the pool). A sync
    waits (logged); `wait=False` raises SyncBusy instead. The file names the holder (pid, host, since when)."""
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
            holder = f.read().strip()
            if not wait:
                raise SyncBusy(source, holder) from None
            if log:
                log(f"a sync or resync of {source} is running ({holder or 'another process'}): waiting for it to end")
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)  # closing the file then releases the lock
