"""The layout every panel shares: a scrolling control column beside its views, keyboard
shortcuts that work anywhere inside the panel, and widgets set from code without their
change signals firing."""

from __future__ import annotations

from contextlib import contextmanager

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QSplitter, QVBoxLayout, QWidget


def controls_beside_views(panel: QWidget, controls: QWidget, views: QWidget, controls_width: int,
                          above: QWidget | None = None) -> None:
    """Lay ``panel`` out as a scrolling control column on the left and ``views`` filling the rest,
    under ``above`` (a progress bar or a notice, say) when given."""
    if above is not None:
        column = QWidget()
        lay = QVBoxLayout(column)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(above)
        lay.addWidget(views, 1)
        views = column
    scroll = QScrollArea()
    scroll.setWidget(controls)
    scroll.setWidgetResizable(True)
    scroll.setMinimumWidth(controls_width)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(scroll)
    split.addWidget(views)
    split.setStretchFactor(1, 1)
    split.setSizes([controls_width + 10, 1000])
    layout = QHBoxLayout(panel)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(split)


def panel_shortcuts(panel: QWidget, bindings) -> list[QShortcut]:
    """Keys (a QKeySequence spec or a Qt.Key) that call their slot while the panel has focus;
    returns the shortcuts (to disable them while the panel cannot act, say)."""
    shortcuts = []
    for key, slot in bindings:
        shortcut = QShortcut(QKeySequence(key), panel)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)
        shortcuts.append(shortcut)
    return shortcuts


@contextmanager
def signals_blocked(*widgets):
    """Set ``widgets`` from code (a restore, a sync) without their change signals firing."""
    blockers = [QSignalBlocker(w) for w in widgets]
    try:
        yield
    finally:
        for blocker in blockers:
            blocker.unblock()
