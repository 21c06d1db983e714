"""The one job runner every panel uses: snapshot in, result out, latest wins.

A panel builds a frozen request on the GUI thread and calls :meth:`JobRunner.submit`. The
request is computed on the runner's single worker thread; a pending request that has not
started yet is cancelled by a newer one, and a result whose job id is not the newest is
dropped on arrival, because a running computation cannot be interrupted. Long computations
are written as generators: they ``yield`` progress fractions between chunks, and the runner
stops iterating as soon as a newer job arrives or the runner shuts down.

Results reach widgets on the GUI thread only, through queued Qt signals.
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
import traceback
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

_RUNNERS: "weakref.WeakSet[JobRunner]" = weakref.WeakSet()


class JobCancelled(Exception):
    """Raised inside a generator job when the runner abandons it."""


@dataclass(frozen=True)
class JobResult:
    """What a finished job hands back to the GUI thread."""

    job_id: int
    request: Any
    value: Any
    seconds: float


@dataclass(frozen=True)
class JobFailure:
    """A job that raised: the exception, its message and the formatted traceback."""

    job_id: int
    request: Any
    error: BaseException
    message: str
    details: str


class JobRunner(QObject):
    """Run ``function(request)`` on one worker thread; only the newest result is delivered.

    Parameters
    ----------
    function
        Called on the worker thread with the request. It may return the result directly
        or be a generator function that yields progress fractions in [0, 1] and returns
        the result; generator jobs stop between yields when superseded.
    name
        Used for the worker thread's name (seen in debuggers and thread dumps).
    """

    finished = Signal(object)  # JobResult, newest job only
    failed = Signal(object)  # JobFailure, newest job only
    progress = Signal(int, float)  # job id, fraction done
    busyChanged = Signal(bool)

    def __init__(self, function: Callable[[Any], Any], name: str = "job", parent=None):
        super().__init__(parent)
        self._function = function
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mlcalc-{name}")
        self._ids = itertools.count(1)
        self._latest = 0
        self._pending: Future | None = None
        self._abort = threading.Event()
        self._closed = False
        self._busy = False
        # Signals emitted from the worker reach this object's slots through the event loop.
        self._deliver.connect(self._on_deliver)
        _RUNNERS.add(self)

    _deliver = Signal(object)

    @property
    def name(self) -> str:
        """What the runner computes (its worker thread is named ``mlcalc-<name>``)."""
        return self._name

    @property
    def latest_id(self) -> int:
        """Id of the most recently submitted job (0 before the first)."""
        return self._latest

    @property
    def busy(self) -> bool:
        """True while the newest submitted job has not delivered."""
        return self._busy

    def submit(self, request: Any) -> int:
        """Queue ``request``, superseding anything not yet delivered; return its job id."""
        if self._closed:
            return 0
        job_id = next(self._ids)
        self._latest = job_id
        self._abort.set()  # tell a running generator job to stop at its next yield
        if self._pending is not None:
            self._pending.cancel()  # only succeeds if it has not started
        abort = threading.Event()
        self._abort = abort
        self._pending = self._executor.submit(self._run, job_id, request, abort)
        self._set_busy(True)
        return job_id

    def cancel(self) -> None:
        """Abandon the current job: nothing more is delivered until the next submit."""
        self._latest = next(self._ids)
        self._abort.set()
        if self._pending is not None:
            self._pending.cancel()
        self._set_busy(False)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop accepting work, abandon the running job and wait for the worker to exit."""
        if not self._closed:  # a second call waits again for a worker still finishing
            self._closed = True
            self.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for thread in list(getattr(self._executor, "_threads", ())):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in getattr(self._executor, "_threads", ()))

    # -- worker side -------------------------------------------------------------------
    def _run(self, job_id: int, request: Any, abort: threading.Event) -> None:
        if abort.is_set():
            return
        start = time.perf_counter()
        try:
            value = self._function(request)
            if inspect.isgenerator(value):
                value = self._drain(job_id, value, abort)
        except JobCancelled:
            return
        except Exception as error:  # delivered to the GUI as a failure, never swallowed
            failure = JobFailure(job_id, request, error, str(error) or type(error).__name__,
                                 traceback.format_exc())
            self._emit(failure)
            return
        if abort.is_set():
            return
        self._emit(JobResult(job_id, request, value, time.perf_counter() - start))

    def _drain(self, job_id: int, generator, abort: threading.Event):
        last = 0.0
        try:
            while True:
                fraction = next(generator)
                if abort.is_set():
                    generator.close()
                    raise JobCancelled
                now = time.perf_counter()
                if now - last > 0.05:  # at most 20 progress signals a second
                    last = now
                    try:
                        self.progress.emit(job_id, float(fraction))
                    except RuntimeError:  # the QObject is gone during shutdown
                        raise JobCancelled from None
        except StopIteration as stop:
            return stop.value

    def _emit(self, outcome) -> None:
        try:
            self._deliver.emit(outcome)
        except RuntimeError:  # the runner's QObject was deleted while we computed
            pass

    # -- GUI side ----------------------------------------------------------------------
    def _on_deliver(self, outcome) -> None:
        if self._closed or outcome.job_id != self._latest:
            return  # stale: a newer request exists
        self._set_busy(False)
        if isinstance(outcome, JobFailure):
            self.failed.emit(outcome)
        else:
            self.finished.emit(outcome)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)


def shutdown_all(timeout: float = 2.0) -> bool:
    """Stop every live runner and wait for its worker (connected to ``aboutToQuit``)."""
    ok = True
    for runner in list(_RUNNERS):
        ok = runner.shutdown(timeout) and ok
    return ok


def live_runners() -> list[JobRunner]:
    """Every runner not yet garbage-collected (the soak test watches their failures)."""
    return list(_RUNNERS)


def live_worker_threads() -> list[threading.Thread]:
    """Worker threads of runners that are still alive (tests fail if any remain)."""
    return [t for t in threading.enumerate() if t.name.startswith("mlcalc-") and t.is_alive()]
