"""Writes from many requests applied in one transaction: :class:`BatchWriter`.

A request hands its write to the writer as a function of a session and waits for its
answer. A thread of the writer's own takes every write queued meanwhile and applies them
in order in one transaction, so a burst of small writes (heartbeats) costs one commit, not
one each. A request is answered only after the transaction holding its write committed.

The contract for a write: it may raise one of the writer's `refusals` (a request refused:
unknown member, replay) only before it changed the session; the batch then goes on without
it and the request gets that exception. Anything else it raises, or a failed commit,
rolls the batch back, and each write of it is applied again alone, in a transaction of its
own, so one bad write never costs the others theirs and each request gets its own answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 256


@dataclass
class _Write(Generic[T]):
    apply: Callable[[Session], T]
    key: Hashable
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if self.future.done():  # the request went away meanwhile
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # its event loop closed: nobody waits
            self.loop.call_soon_threadsafe(settle)


class BatchWriter:
    """Applies queued writes in one transaction per batch, on a thread of its own.

    Args:
        sessions: makes a session per transaction.
        writing: held around each transaction (the service's write slot).
        refusals: exceptions a write raises, before changing anything, to refuse itself.
        prepare: called first in each transaction with the writes' keys (to read or lock
            the rows they touch in one query instead of one per write).
        name: the thread's name.
        max_batch: the most writes one transaction holds.
        linger_s: how long a batch waits for more writes after its first (a little
            latency for fewer, larger transactions).
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        writing: Callable[[], AbstractContextManager[None]],
        refusals: tuple[type[BaseException], ...],
        prepare: Callable[[Session, list[Hashable]], None] | None = None,
        name: str = "batch-writer",
        max_batch: int = MAX_BATCH,
        linger_s: float = 0.0,
    ) -> None:
        self.sessions = sessions
        self.writing = writing
        self.refusals = refusals
        self.prepare = prepare
        self.name = name
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._queue: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # transactions committed, for benchmarks and logs

    async def submit(self, apply: Callable[[Session], T], *, key: Hashable = None) -> T:
        """Apply `apply` in the next batch; its result once that batch committed. `key`
        is handed to `prepare`."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        write: _Write[T] = _Write(apply, key, loop, loop.create_future())
        self._queue.put(write)
        return await write.future

    def stop(self, timeout: float | None = None) -> None:
        """Apply what is queued, then end the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Write[Any]] = [first]
            ending = False
            linger_until = time.monotonic() + self.linger_s
            while len(batch) < self.max_batch:
                wait = linger_until - time.monotonic()
                try:
                    more = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ending = True
                    break
                batch.append(more)
            try:
                self._apply(batch)
            except Exception:  # never let the thread die: every write gets an answer
                logger.exception("%s: a batch of %d writes failed", self.name, len(batch))
                for write in batch:
                    write.answer(error=RuntimeError("the write was not applied"))
            if ending:
                return

    def _apply(self, batch: list[_Write[Any]]) -> None:
        answers: list[tuple[_Write[Any], Any, BaseException | None]] = []
        try:
            with self.writing(), self.sessions() as session, session.begin():
                if self.prepare is not None:
                    self.prepare(session, [w.key for w in batch])
                for write in batch:
                    try:
                        answers.append((write, write.apply(session), None))
                    except self.refusals as exc:
                        answers.append((write, None, exc))
        except Exception as exc:
            if len(batch) == 1:
                batch[0].answer(error=exc)
                return
            logger.info(
                "%s: a batch of %d failed (%s); applying each alone", self.name, len(batch), exc
            )
            for write in batch:
                self._apply([write])
            return
        self.batches += 1
        for write, result, error in answers:
            write.answer(result, error)
