"""Start-up and shut-down rules every entry point follows.

* Python's cyclic garbage collector runs only on the GUI thread, from a timer. Left
  automatic, it can run on an engine worker thread or in the middle of an OpenGL paint and
  free a Qt object there (pyqtgraph's items and views reference each other, so dropped
  views are freed by that collector), which crashes Qt.
* Windows are deleted while the QApplication still exists, never at interpreter exit.
* Ctrl+C closes the window from the event loop, never from inside the signal handler:
  Python runs a handler between two bytecodes of the main thread wherever that is, and a
  window closed there destroyed OpenGL contexts in the middle of a paint (a segmentation
  fault) or deadlocked on the lock of a worker pool the interrupted code held.
* glibc gives a thread that allocates while the others hold their arenas a malloc arena
  of its own, up to eight per core, and an arena keeps the memory it once held for its
  next allocations. Workers making large arrays, and a thread per animation export, spread
  that over up to 16 arenas: a GIF export grew the process by 8 MB every time, and a
  15-minute soak by 300 MB. The process keeps to two arenas (``limit_malloc_arenas``),
  and every 30 s while no job runs the collector hands their free memory back to the
  system (``trim_free_memory``).
* At exit the objects still alive are frozen (``gc.freeze``) so that the interpreter's
  final collections skip them: everything that needs an orderly end (windows, workers,
  files) has had it by then, and traversing SymPy's, Numba's and pyqtgraph's objects once
  more cost 0.5-1 s of the 2 s a closing app may take.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import gc
import signal
import socket

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSocketNotifier, QTimer


_M_ARENA_MAX = -8  # glibc's malloc.h


@functools.cache
def _glibc():
    """The C library when it is glibc (it has mallopt and malloc_trim), else None; looked
    up once, as the trim runs every 30 s."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(count: int = 2) -> bool:
    """At most ``count`` glibc malloc arenas for the threads started from now on (see the
    module notes); False where the C library is not glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, int(count)))


def trim_free_memory() -> bool:
    """Hand the free memory of every malloc arena back to the system (glibc's
    ``malloc_trim``); False where the C library is not glibc. The arenas keep what large
    arrays of finished jobs left free for the next ones; a long session held 100-150 MB of
    it, which the system could not use."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


class GuiThreadCollector(QObject):
    """Disable automatic garbage collection and collect on a GUI-thread timer instead; and
    every ``trim_ms``, while no job runs, give the allocator's free memory back to the
    system (see :func:`trim_free_memory`)."""

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None,
                 trim_ms: int = 30_000):
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect)
        self._timer.start(interval_ms)
        self._trim_timer = QTimer(self)
        self._trim_timer.timeout.connect(self.trim)
        self._trim_timer.start(trim_ms)
        self.trims = 0

    def trim(self) -> None:
        """Trim the allocator's free memory, unless a job is running (it may want it)."""
        from app import jobs

        if not any(runner.busy for runner in jobs.live_runners()) and trim_free_memory():
            self.trims += 1

    def collect(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Give collection back to Python."""
        self._timer.stop()
        self._trim_timer.stop()
        gc.enable()


def install_collector(app: QCoreApplication, interval_ms: int = 1000) -> GuiThreadCollector:
    """Install the GUI-thread collector for ``app`` (kept alive as the app's child), and
    freeze the objects left at interpreter exit."""
    collector = GuiThreadCollector(interval_ms, app)
    app.aboutToQuit.connect(collector.stop)
    atexit.unregister(gc.freeze)  # once, however many collectors were installed
    atexit.register(gc.freeze)
    return collector


class InterruptRelay(QObject):
    """Turns SIGINT into ``window.close()`` run by the event loop, at once.

    The C-level handler writes to a socket pair (``signal.set_wakeup_fd``) that a
    QSocketNotifier watches, so Qt's loop wakes up and runs Python code, where Python calls
    the handler; the handler only queues the close. Deleting the window puts back the
    previous handler.
    """

    def __init__(self, window):
        super().__init__(window)
        self._read, write = socket.socketpair()
        for end in (self._read, write):
            end.setblocking(False)

        def on_signal(_number, _frame):  # a plain function: signal.signal() shows its repr
            if shiboken6.isValid(window):
                QTimer.singleShot(0, window.close)

        previous_fd = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        previous_handler = signal.signal(signal.SIGINT, on_signal)
        notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        notifier.activated.connect(self._drain)
        read = self._read

        def restore(*_args):
            signal.signal(signal.SIGINT, previous_handler)
            signal.set_wakeup_fd(previous_fd)
            read.close()
            write.close()

        self.destroyed.connect(restore)

    def _drain(self) -> None:
        try:
            while self._read.recv(64):
                pass
        except BlockingIOError:
            pass


def close_on_interrupt(window) -> InterruptRelay:
    """Ctrl+C in the terminal closes ``window`` as File > Quit does (see the module notes)."""
    return InterruptRelay(window)


def dispose(widget) -> None:
    """Delete ``widget`` and its children now (3-D views included), then collect."""
    widget.hide()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    gc.collect()

