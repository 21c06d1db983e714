"""Start-up and shut-down rules every entry point follows.

* Python's cyclic garbage collector runs only on the GUI thread, from a timer. Left
  automatic, it can run on an engine worker thread or in the middle of an OpenGL paint and
  free a Qt object there (pyqtgraph's items and views reference each other, so dropped
  views are freed by that collector), which crashes Qt.
* Windows are deleted while the QApplication still exists, never at interpreter exit.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer


class GuiThreadCollector(QObject):
    """Disable automatic garbage collection and collect on a GUI-thread timer instead."""

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None):
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect)
        self._timer.start(interval_ms)

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
        gc.enable()


def install_collector(app: QCoreApplication, interval_ms: int = 1000) -> GuiThreadCollector:
    """Install the GUI-thread collector for ``app`` (kept alive as the app's child)."""
    collector = GuiThreadCollector(interval_ms, app)
    app.aboutToQuit.connect(collector.stop)
    return collector


def dispose(widget) -> None:
    """Delete ``widget`` and its children now (3-D views included), then collect."""
    widget.hide()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    gc.collect()

