"""The main window: one tab per panel, menus, status bar, orderly shutdown."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QProgressDialog, QTabWidget

from app import __version__, jobs
from app.export import ANIMATION, ExportError
from app.panels.attention import AttentionPanel
from app.panels.backprop import BackpropPanel
from app.panels.descent import DescentPanel
from app.panels.lsh import LSHPanel
from app.panels.playground import PlaygroundPanel
from app.panels.surface import SurfacePanel
from app.session_controller import SessionController

EXPORT_FILTERS = {
    "PNG image, 3-D view and contour map (*.png)": ("both", ".png"),
    "PNG image, 3-D view only (*.png)": ("surface", ".png"),
    "PNG image, contour map only (*.png)": ("contour", ".png"),
    "SVG drawing, contour map (*.svg)": ("contour", ".svg"),
    "CSV table (*.csv)": ("auto", ".csv"),
    "Animated GIF of the race (*.gif)": ("auto", ".gif"),
    "MP4 video of the race (*.mp4)": ("auto", ".mp4"),
}


class MainWindow(QMainWindow):
    """ML Calculus Explorer's window.

    With ``recovery_dir`` the window autosaves unsaved changes there and can restore them
    after a crash (see :meth:`offer_recovery`); without it, as in tests, it never writes there.
    """

    def __init__(self, parent=None, *, recovery_dir: Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("ML Calculus Explorer")
        self.resize(1440, 880)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.surface = SurfacePanel()
        self.descent = DescentPanel(self.surface)
        self.backprop = BackpropPanel()
        self.playground = PlaygroundPanel()
        self.attention = AttentionPanel()
        self.lsh = LSHPanel()
        self.attention.set_memory(self.lsh)  # seed 000's weak RAG: attention -> LSH store
        self.panels = [self.surface, self.descent, self.backprop, self.playground,
                       self.attention, self.lsh]
        self._last_status: dict = {}
        for panel in self.panels:
            self.tabs.addTab(panel, panel.title)
            panel.status.connect(functools.partial(self._panel_status, panel))
        self.tabs.currentChanged.connect(self._tab_changed)
        # The session file's key of each panel, in restoring order (the surface before the
        # descent lab that works on it).
        by_key = {"surface": self.surface, "descent": self.descent, "backprop": self.backprop,
                  "playground": self.playground, "attention": self.attention, "lsh": self.lsh}
        self.session = SessionController(self, by_key, recovery_dir)
        self._build_menus()
        self.statusBar().showMessage("Ready")

    def _panel_status(self, panel, text: str) -> None:
        # A panel working in a hidden tab does not talk over the one being looked at; its
        # last word is shown when its tab is.
        self._last_status[panel] = text
        if panel is self.tabs.currentWidget():
            self.statusBar().showMessage(text)

    def _tab_changed(self, index: int) -> None:
        self.statusBar().showMessage(self._last_status.get(self.tabs.widget(index), "Ready"))

    def current_panel(self):
        return self.tabs.currentWidget()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        export = QAction("&Export figure…", self, shortcut=QKeySequence("Ctrl+E"))
        export.setStatusTip("Save the current panel as PNG, SVG or CSV")
        export.triggered.connect(self.export_dialog)
        file_menu.addAction(export)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        panel = self.surface
        for text, check in (("Wireframe", panel.wire_check), ("Filled heatmap", panel.fill_check),
                            ("Gradient arrows", panel.arrows_check), ("Critical points", panel.critical_check)):
            action = QAction(text, self, checkable=True)
            action.setChecked(check.isChecked())
            action.toggled.connect(check.setChecked)
            check.toggled.connect(action.setChecked)
            view_menu.addAction(action)
        camera = QAction("Reset 3-D &camera", self, shortcut=QKeySequence("Ctrl+0"))
        camera.setStatusTip("Back to the default viewing angle and distance")
        camera.triggered.connect(lambda: self.surface.view3d.resetCamera())
        view_menu.addAction(camera)
        view_menu.addSeparator()
        refresh = QAction("&Recompute", self, shortcut=QKeySequence("F5"))
        refresh.triggered.connect(lambda: self.current_panel().refresh())
        view_menu.addAction(refresh)
        full = QAction("&Full screen", self, shortcut=QKeySequence("F11"), checkable=True)
        full.toggled.connect(lambda on: self.showFullScreen() if on else self.showNormal())
        view_menu.addAction(full)

        help_menu = self.menuBar().addMenu("&Help")
        guide = QAction("&Help for this tab", self, shortcut=QKeySequence(QKeySequence.StandardKey.HelpContents))
        guide.setStatusTip("The equations this tab implements (seed and number) and how to use it")
        guide.triggered.connect(self.show_help)
        help_menu.addAction(guide)
        about = QAction("&About ML Calculus Explorer", self)
        about.triggered.connect(self.about)
        help_menu.addAction(about)
        self.session.build_menus(file_menu, export, help_menu)

    def session_document(self) -> dict:
        """Every panel's parameters and the window layout, ready for :func:`app.session.save`."""
        return self.session.document()

    def open_session_document(self, document: dict) -> bool:
        """Show ``document`` if every part of it is valid; else change nothing and say why."""
        return self.session.open_document(document)

    def offer_recovery(self) -> None:
        """Offer to restore what the last run autosaved before it crashed or was killed."""
        self.session.offer_recovery()

    def export_dialog(self) -> None:
        panel = self.current_panel()
        filters = getattr(panel, "export_filters", EXPORT_FILTERS)
        path, chosen = QFileDialog.getSaveFileName(self, "Export figure", "figure.png", ";;".join(filters))
        if not path:
            return
        view, suffix = filters.get(chosen, ("auto", ""))
        if suffix and not path.lower().endswith(suffix):
            path += suffix
        options, dialog = {}, None
        if Path(path).suffix.lower() in ANIMATION:  # rendering and encoding take seconds
            dialog = QProgressDialog("Exporting the animation…", "Cancel", 0, 1000, self)
            dialog.setWindowTitle("Export figure")
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.setMinimumDuration(300)

            def progress(fraction: float) -> bool:
                dialog.setValue(round(1000 * fraction))
                return not dialog.wasCanceled()

            options["progress"] = progress
        try:
            written = panel.export(path, view=view, **options)
        except ExportError as error:
            if dialog is not None and dialog.wasCanceled():
                self.statusBar().showMessage("Export cancelled; nothing was written")
            else:
                QMessageBox.warning(self, "Export failed", str(error))
            return
        finally:
            if dialog is not None:
                dialog.close()
        self.statusBar().showMessage(f"Saved {written}")

    def show_help(self):
        """The current tab's help: its equations with their seed and number, and a guide."""
        from app.help import key_for_panel, show_help

        return show_help(self, key_for_panel(self.current_panel()))

    def about(self) -> None:
        QMessageBox.about(self, "About ML Calculus Explorer", about_text())

    def closeEvent(self, event) -> None:
        self.session.shutdown()
        for panel in self.panels:
            panel.shutdown()
        jobs.shutdown_all()
        super().closeEvent(event)


def about_text() -> str:
    """Versions of the app and everything it stands on."""
    import sympy

    gl = "not available"
    try:
        from app.gl.surface_view import opengl_available

        ok, reason = opengl_available()
        gl = reason if reason else ("available" if ok else "not available")
    except Exception as error:  # the About box must open whatever the GL state
        gl = f"unknown ({error})"
    return (
        f"<h3>ML Calculus Explorer {__version__}</h3>"
        "<p>See and play with the calculus and linear algebra inside machine learning.</p>"
        f"<p>Python {platform.python_version()}<br>Qt {qVersion()}, PySide6 {pyside_version}<br>"
        f"pyqtgraph {pg.__version__}<br>NumPy {np.__version__}, SymPy {sympy.__version__}<br>"
        f"OpenGL: {gl}</p>"
    )


