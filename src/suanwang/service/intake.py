"""Group commit for single-job submissions: requests that arrive together share one transaction.

Each request is answered only after the transaction holding its job has committed, so the durability promise
(committed before the 201) is unchanged; what changes is that one commit (one WAL fsync) and one INSERT serve
every request that arrived while the previous commit was in flight. There is no added delay: a lone request is
written at once. If a shared transaction fails, its requests are retried one by one, so one bad request cannot
fail the others; a fault of the database itself (unreachable, full, read-only) fails the whole batch at once (each
request is answered 503) and the next batch opens a fresh connection.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

import sqlalchemy as sa

from suanwang.service.db import WriteHealth, fault_reason
from suanwang.service.errors import DB_FAULTS
from suanwang.service.jobs import NewJob, store

log = logging.getLogger("suanwang.service")
_STOP = object()


class Intake:
    """A writer thread that stores queued submissions in batches of at most `max_batch` jobs per transaction."""

    def __init__(self, engine: sa.Engine, max_batch: int = 256, health: WriteHealth | None = None):
        self.engine = engine
        self.max_batch = max_batch
        self.health = health or WriteHealth()  # told of every commit and every database fault
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: sa.Connection | None = None

    def put(self, job: NewJob) -> Future:
        """Queue one job; the future resolves to (job, created) once it is committed, or to the error."""
        self._ensure_started()
        fut: Future = Future()
        self._queue.put((job, fut))
        return fut

    async def submit(self, job: NewJob) -> tuple[Any, bool]:
        """Store one job (awaitable from the event loop): (job, created) after its transaction commits."""
        return await asyncio.wrap_future(self.put(job))

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="suanwang-intake", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)  # finish this batch, then stop
                    break
                batch.append(item)
            # a request whose client went away before its job was written is dropped (its retry is safe);
            # from here on a future cannot be cancelled, so every one below gets its answer
            batch = [(job, fut) for job, fut in batch if fut.set_running_or_notify_cancel()]
            try:
                self._write(batch)
            except BaseException as e:  # never leave a request waiting for an answer
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                if not isinstance(e, Exception):
                    raise

    def _write(self, batch: list[tuple[NewJob, Future]]) -> None:
        if not batch:
            return
        try:
            if self._conn is None or self._conn.invalidated or self._conn.closed:
                self._conn = self.engine.connect()  # held across batches: no pool checkout or ping per batch
            with self._conn.begin():
                results = store(self._conn, [job for job, _ in batch])
        except Exception as e:
            if self._conn is not None and (self._conn.invalidated or isinstance(e, DB_FAULTS)):
                self._conn.close()  # a fault may leave the held connection unusable: the next batch opens one
                self._conn = None
            if isinstance(e, DB_FAULTS):  # the database's fault, not one request's: every request gets it (503)
                self.health.failed(fault_reason(e))
                for _, fut in batch:
                    fut.set_exception(e)
                return
            if len(batch) > 1:  # isolate the request that failed
                for one in batch:
                    self._write([one])
                return
            log.warning("storing a submitted job failed: %s", e)
            batch[0][1].set_exception(e)
            return
        self.health.succeeded()
        for (_, fut), result in zip(batch, results, strict=True):
            fut.set_result(result)

    def stop(self) -> None:
        """Write what is queued, then end the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=30)
