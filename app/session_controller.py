"""The window's session life: New/Open/Save/Save As, recent files, examples, the "*" in the
title, the minute-by-minute autosave and the offer to restore it after a crash.

The file format and its checks live in :mod:`app.session` (no Qt); this module holds what
needs Qt: menus, timers, dialogs, ``QSettings`` and the window layout. Each panel takes part
through two methods, and a panel without them is left out:

    panel.session_state() -> dict            # plain JSON-able values
    panel.restore_session_state(state) -> None  # raises ValueError before changing anything

Opening a session is all or nothing: the panels are restored one by one and, if one refuses
its state, those already restored get their previous state back.
"""

from __future__ import annotations

import base64
import copy
import os
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QSplitter

from app import session
from app.session import SessionError

MAX_RECENT = 8
AUTOSAVE_SECONDS = 60.0
MODIFIED_CHECK_MS = 1000  # how often the "*" in the title is brought up to date
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "resources" / "examples"
FILE_FILTER = f"ML Calculus Explorer sessions (*{session.SUFFIX} *.json);;All files (*)"
APP_NAME = "ML Calculus Explorer"


def data_dir() -> Path:
    """The folder for the recovery file and preferences: ``MLCALC_DATA_DIR`` if set (tests,
    portable installs), else Qt's per-user application data folder."""
    override = os.environ.get("MLCALC_DATA_DIR")
    if override:
        return Path(override)
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location) if location else Path.home() / ".mlcalc-explorer"


def preferences() -> QSettings:
    """The user's preferences; kept in ``MLCALC_DATA_DIR`` when that is set."""
    override = os.environ.get("MLCALC_DATA_DIR")
    if override:
        return QSettings(str(Path(override) / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings("mlcalc-explorer", APP_NAME)


def autosave_interval() -> float:
    """Seconds between autosaves: ``MLCALC_AUTOSAVE_SECONDS`` if it is a positive number."""
    text = os.environ.get("MLCALC_AUTOSAVE_SECONDS", "")
    try:
        seconds = float(text)
    except ValueError:
        if text:
            print(f"mlcalc: MLCALC_AUTOSAVE_SECONDS={text!r} is not a number; "
                  f"autosaving every {AUTOSAVE_SECONDS:g} s", file=sys.stderr)
        return AUTOSAVE_SECONDS
    return seconds if 0.1 <= seconds <= 86400 else AUTOSAVE_SECONDS


def recent_files() -> list[str]:
    """The recently opened or saved sessions, newest first, those still on disk only."""
    value = preferences().value("session/recent", [])
    if isinstance(value, str):  # QSettings gives a one-item list back as a string
        value = [value]
    paths = [p for p in (value or []) if isinstance(p, str) and Path(p).is_file()]
    return paths[:MAX_RECENT]


def remember_recent(path) -> None:
    settings = preferences()
    path = str(Path(path).resolve())
    settings.setValue("session/recent", [path] + [p for p in recent_files() if p != path][:MAX_RECENT - 1])
    settings.setValue("session/folder", str(Path(path).parent))


def examples() -> list[tuple[str, Path, str]]:
    """``(title, path, error)`` of each example session; ``error`` is "" for a readable one."""
    found = []
    for path in sorted(EXAMPLES_DIR.glob("*.json")) if EXAMPLES_DIR.is_dir() else []:
        try:
            found.append((session.read_title(path), path, ""))
        except SessionError as error:
            found.append((path.stem, path, str(error)))
    return found


class SessionController(QObject):
    """Sessions of one main window. ``panels`` maps each session key to its panel."""

    def __init__(self, window, panels: dict, recovery_dir: Path | None = None):
        super().__init__(window)
        self.window = window
        self.panels = panels
        self.path: Path | None = None
        self.name = "Untitled"
        self.title: str | None = None  # an example's or a loaded file's own title, kept on save
        self.last_error = ""  # the last message shown to the user (tests read it)
        self._defaults = self.panel_states()
        self._clean = self._encode_panels(self._defaults)
        self._modified = False
        self._autosaved: bytes | None = None
        self._asking = False  # the recovery question is open: no autosave may overwrite the file
        self.recovery: session.RecoveryStore | None = None
        if recovery_dir is not None:
            store = session.RecoveryStore(recovery_dir)
            try:
                held = store.acquire()
            except OSError as error:
                held = False
                self.last_error = f"No autosave: cannot use {recovery_dir}: {error.strerror or error}"
            if held:
                self.recovery = store
        self._check_timer = QTimer(self)
        self._check_timer.setInterval(MODIFIED_CHECK_MS)
        self._check_timer.timeout.connect(self.refresh_modified)
        self._check_timer.start()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(round(autosave_interval() * 1000))
        self._autosave_timer.timeout.connect(self.autosave)
        if self.recovery is not None:
            self._autosave_timer.start()
        self._update_title()

    # ------------------------------------------------------------------ menus

    def build_menus(self, file_menu: QMenu, before: QAction, help_menu: QMenu) -> None:
        """Add the session actions to ``file_menu`` above ``before``, and Examples to ``help_menu``."""
        w = self.window
        for text, keys, slot, tip in (
                ("&New session", QKeySequence.StandardKey.New, self.new_session, "Every panel back to its defaults"),
                ("&Open session…", QKeySequence("Ctrl+O"), self.open_dialog, "Open a saved session"),
                ("&Save session", QKeySequence("Ctrl+S"), self.save, "Save the session to its file"),
                ("Save session &as…", QKeySequence("Ctrl+Shift+S"), self.save_as_dialog,
                 "Save the session to a new file")):
            action = QAction(text, w, shortcut=QKeySequence(keys))
            action.setStatusTip(tip)
            action.triggered.connect(slot)
            file_menu.insertAction(before, action)
            if text.startswith("&Open"):
                self.recent_menu = QMenu("Open &recent", w)
                self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
                file_menu.insertMenu(before, self.recent_menu)
        file_menu.insertSeparator(before)
        self.examples_menu = help_menu.addMenu("&Examples")
        self.examples_menu.aboutToShow.connect(self._fill_examples_menu)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = recent_files()
        for path in paths:
            action = self.recent_menu.addAction(Path(path).name)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)
            return
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list").triggered.connect(
            lambda: preferences().setValue("session/recent", []))

    def _fill_examples_menu(self) -> None:
        self.examples_menu.clear()
        found = examples()
        for title, path, error in found:
            action = self.examples_menu.addAction(title)
            if error:
                action.setEnabled(False)
                action.setStatusTip(f"{path.name}: {error}")
            else:
                action.triggered.connect(lambda _=False, p=path: self.open_example(p))
        if not found:
            self.examples_menu.addAction("(no examples installed)").setEnabled(False)

    # ------------------------------------------------------------------ documents

    def panel_states(self) -> dict:
        """Each taking-part panel's current state, by session key."""
        return {key: panel.session_state() for key, panel in self._taking_part()}

    def document(self) -> dict:
        """The whole session as a current-format document: panels and window layout."""
        document = {"format": session.FORMAT, "format_version": session.FORMAT_VERSION}
        if self.title:
            document["title"] = self.title
        document["panels"] = self.panel_states()
        document["window"] = self._layout()
        return document

    def open_document(self, document: dict, *, name: str = "Untitled", path: Path | None = None) -> bool:
        """Check ``document`` whole, then show it; on any error nothing changes and the
        message is shown (and kept in :attr:`last_error`). Returns whether it was opened."""
        try:
            document = session.decode(session.encode(document))  # the checks a file gets
            self._restore_panels(document["panels"])
        except SessionError as error:
            self._report("Cannot open the session", f"{name}: {error}")
            return False
        self._restore_layout(document.get("window", {}))
        self.path = path
        self.name = name
        self.title = document.get("title")
        self._mark_clean()
        self.window.statusBar().showMessage(f"Opened {name}")
        return True

    def _restore_panels(self, states: dict) -> None:
        restored = []
        try:
            for key, panel in self._taking_part():
                state = states.get(key, self._defaults.get(key))
                before = panel.session_state()
                try:
                    panel.restore_session_state(copy.deepcopy(state))
                except SessionError as error:
                    raise error.within(f"panels.{key}") from None
                except ValueError as error:
                    raise SessionError(str(error), f"panels.{key}") from None
                except Exception as error:  # noqa: BLE001 - a panel's bug must not half-open a file
                    raise SessionError(f"could not be restored ({type(error).__name__}: {error})",
                                       f"panels.{key}") from None
                restored.append((panel, before))
        except SessionError:
            for panel, before in reversed(restored):
                panel.restore_session_state(before)
            raise

    def _taking_part(self):
        return [(key, panel) for key, panel in self.panels.items()
                if hasattr(panel, "session_state") and hasattr(panel, "restore_session_state")]

    def _layout(self) -> dict:
        current = self.window.tabs.currentWidget()
        layout = {"geometry": _b64(self.window.saveGeometry()), "splitters": {}}
        for key, panel in self.panels.items():
            if panel is current:
                layout["tab"] = key
            states = [_b64(s.saveState()) for s in panel.findChildren(QSplitter)]
            if states:
                layout["splitters"][key] = states
        return layout

    def _restore_layout(self, layout: dict) -> None:
        """Geometry, tab and splitters; a part that does not fit this build is skipped."""
        if "geometry" in layout:
            self.window.restoreGeometry(QByteArray(base64.b64decode(layout["geometry"])))
        if layout.get("tab") in self.panels:
            self.window.tabs.setCurrentWidget(self.panels[layout["tab"]])
        for key, states in layout.get("splitters", {}).items():
            splitters = self.panels[key].findChildren(QSplitter)
            if len(splitters) == len(states):
                for splitter, state in zip(splitters, states):
                    splitter.restoreState(QByteArray(base64.b64decode(state)))

    # ------------------------------------------------------------------ actions

    def new_session(self) -> bool:
        return self.open_document({"format": session.FORMAT, "format_version": session.FORMAT_VERSION,
                                   "panels": self._defaults})

    def open_file(self, path) -> bool:
        path = Path(path)
        try:
            document = session.load(path)
        except SessionError as error:
            self._report("Cannot open the session", f"{path.name}: {error}")
            return False
        if not self.open_document(document, name=path.name, path=path):
            return False
        remember_recent(path)
        return True

    def open_example(self, path) -> bool:
        """Open an example like a file, but untitled: saving never overwrites the example."""
        path = Path(path)
        try:
            title = session.read_title(path)
            document = session.load(path)
        except SessionError as error:
            self._report("Cannot open the example", f"{path.name}: {error}")
            return False
        if not self.open_document(document, name=title):
            return False
        description = document.get("description")
        if description:  # what to look for: shown beside the window, never in the way
            self.window.statusBar().showMessage(f"{title}: {description}")
            box = QMessageBox(QMessageBox.Icon.Information, title, description,
                              QMessageBox.StandardButton.Ok, self.window)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.setModal(False)
            self.example_box = box
            box.show()
        return True

    def save(self) -> bool:
        """Save to the session's file, or ask for one when it has none."""
        return self.save_to(self.path) if self.path is not None else self.save_as_dialog()

    def save_to(self, path) -> bool:
        """Write the session to ``path`` atomically; the previous file survives any failure."""
        path = Path(path)
        try:
            session.save(path, self.document())
        except (SessionError, OSError) as error:
            self._report("Cannot save the session", str(error))
            return False
        self.path = path
        self.name = path.name
        self._mark_clean()
        remember_recent(path)
        self.window.statusBar().showMessage(f"Saved {path}")
        return True

    def open_dialog(self) -> bool:
        folder = preferences().value("session/folder", "") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", str(folder), FILE_FILTER)
        return self.open_file(path) if path else False

    def save_as_dialog(self) -> bool:
        folder = Path(preferences().value("session/folder", "") or Path.home())
        suggested = self.path or folder / f"session{session.SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session as", str(suggested), FILE_FILTER)
        if not path:
            return False
        if not path.lower().endswith(".json"):
            path += session.SUFFIX
        return self.save_to(path)

    # ------------------------------------------------------------------ modified state

    def is_modified(self) -> bool:
        return self._modified

    def refresh_modified(self) -> bool:
        """Compare the panels with the last opened or saved state; update the title."""
        modified = self._encode_panels(self.panel_states()) != self._clean
        if modified != self._modified:
            self._modified = modified
            self._update_title()
        return modified

    def _mark_clean(self) -> None:
        self._clean = self._encode_panels(self.panel_states())
        self._modified = False
        self._autosaved = None
        if self.recovery is not None and not self._asking:
            self.recovery.discard()
        self._update_title()

    def _update_title(self) -> None:
        self.window.setWindowTitle(f"{self.name}[*] — {APP_NAME}")
        self.window.setWindowModified(self._modified)

    @staticmethod
    def _encode_panels(states: dict) -> bytes:
        return session.encode({"panels": states}, compact=True)

    # ------------------------------------------------------------------ autosave and recovery

    def autosave(self) -> bool:
        """Write the recovery file if there are changes it does not hold yet; True if written."""
        if self.recovery is None or self._asking:
            return False
        panels = self.panel_states()
        encoded = self._encode_panels(panels)
        if encoded == self._clean:
            if self._autosaved is not None:  # the changes were undone by hand
                self.recovery.discard()
                self._autosaved = None
            return False
        if encoded == self._autosaved:
            return False
        try:
            self.recovery.write(self.document())
        except (SessionError, OSError) as error:
            self.last_error = f"Autosave failed: {error}"
            self.window.statusBar().showMessage(self.last_error)
            return False
        self._autosaved = encoded
        return True

    def offer_recovery(self) -> None:
        """If the last run left a recovery file, offer to restore it.

        ``MLCALC_RECOVERY=restore`` or ``discard`` answers without asking (scripts, tests).
        """
        if self.recovery is None or not self.recovery.pending():
            return
        answer = os.environ.get("MLCALC_RECOVERY", "").strip().lower()
        if answer == "restore":
            self.restore_recovery()
            return
        if answer == "discard":
            self.discard_recovery()
            return
        self._asking = True
        box = QMessageBox(QMessageBox.Icon.Question, "Restore unsaved work?",
                          f"{APP_NAME} kept changes that were never saved to a file (the last "
                          "session was closed without saving, or did not close normally). "
                          "Restore them?", parent=self.window)
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(restore)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: self.restore_recovery() if box.clickedButton() is restore
                             else self.discard_recovery())
        self.recovery_box = box
        box.open()

    def restore_recovery(self) -> bool:
        """Show the recovered session, as unsaved changes (it belongs to no file)."""
        self._asking = False
        try:
            document = self.recovery.read()
        except SessionError as error:
            self.recovery.discard()
            self._report("Cannot restore the session", f"The automatic save is unreadable: {error}")
            return False
        self._asking = True  # opening must not delete the file before the changes are saved
        opened = self.open_document(document, name="Recovered session")
        self._asking = False
        if not opened:
            return False
        self._clean = b""  # held by no file: unsaved until saved
        self._autosaved = self._encode_panels(self.panel_states())
        self.refresh_modified()
        return True

    def discard_recovery(self) -> None:
        self._asking = False
        self.recovery.discard()

    def shutdown(self) -> None:
        """Exit: stop the timers; unsaved changes go to the recovery file, offered at the
        next start (closing never waits on a question), else the file is removed."""
        self._check_timer.stop()
        self._autosave_timer.stop()
        if self.recovery is not None:
            if not self._asking:
                if self.refresh_modified():
                    self.autosave()
                else:
                    self.recovery.discard()
            self.recovery.release()
            self.recovery = None

    def _report(self, title: str, text: str) -> None:
        """Show ``text`` without blocking (a window-modal box) and keep it in :attr:`last_error`."""
        self.last_error = text
        self.window.statusBar().showMessage(text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()


def _b64(data: QByteArray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")
