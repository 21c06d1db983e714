"""Loss-surface panel: a 3-D surface linked to a contour map of any f(x, y) (seeds 001, 002).

The panel keeps its settings in a plain :class:`SurfaceSettings` object, turns them into a
frozen :class:`engine.surfaces.SurfaceRequest` and hands that to a :class:`JobRunner`.
Three pipelines run independently, each latest-wins: the surface itself, the critical
points (slower, started when the surface settles) and the point probe under the mouse.

A fourth source sits beside the presets and typed functions: the *real* loss landscape of
a digits network (:mod:`engine.landscape`, after Li et al. 2018), computed by a generator
job with a progress bar and a Cancel button and drawn through the same views, with the
trained weights and the projected training path marked on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from app import export, session
from app.contour_view import POINT_STYLES, ContourView
from app.gl.surface_view import create_surface_view
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts
from engine import landscape, surfaces
from engine.expressions import MAX_LENGTH, ExpressionError

RESOLUTIONS = (32, 64, 96, 128, 192, 256, 384, 512)
DEFAULT_RESOLUTION = 128
PREVIEW_RESOLUTION = 48
SETTLE_MS = 150  # full resolution this long after the last slider movement
CRITICAL_DELAY_MS = 250
BUSY_DELAY_MS = 200  # show the progress bar only for work that takes longer than this
LANDSCAPE_KEY = "landscape:digits"  # the preset box's entry for the real landscape
LANDSCAPE_GRIDS = (21, 101)  # odd node counts offered per side
PATH_COLOR = "#d62728"  # the projected training path, in both views
CENTRE_COLOR = "#ffffff"  # the trained weights theta*
DIRECTION_NAMES = {
    "filter": "random, filter-normalised",
    "layer": "random, layer-normalised",
    "weight": "random, weight-normalised",
    "none": "random, not normalised",
    "pca": "PCA of the training path",
}


@dataclass
class LandscapeSettings:
    """The real landscape's choices (plain data); see :class:`engine.landscape.LandscapeRequest`."""

    directions: str = "filter"
    bias: str = "zero"
    grid: int = 51
    span: float | None = None  # None: 1 for random directions, the path's reach for PCA
    metric: str = "loss"
    seed: int = 0

    def request(self) -> landscape.LandscapeRequest:
        return landscape.LandscapeRequest(directions=self.directions, bias=self.bias,
                                          grid=int(self.grid), span=self.span,
                                          metric=self.metric, seed=int(self.seed))


@dataclass
class SurfaceSettings:
    """Everything the user set in the panel; plain data, saved and restored as is."""

    text: str = "x**2 - y**2"
    preset: str | None = "saddle"
    params: dict[str, float] = field(default_factory=dict)
    x_range: tuple[float, float] = (-2.0, 2.0)
    y_range: tuple[float, float] = (-2.0, 2.0)
    resolution: int = DEFAULT_RESOLUTION
    n_levels: int = 15
    level_spacing: str = "linear"
    filled: bool = True
    arrows: bool = True
    arrow_density: int = 15
    wireframe: bool = True
    critical_points: bool = True
    source: str = "function"  # "function" (preset or typed) or "landscape"
    landscape: LandscapeSettings = field(default_factory=LandscapeSettings)

    def request(self, resolution: int | None = None) -> surfaces.SurfaceRequest:
        """A frozen snapshot for the worker thread."""
        return surfaces.SurfaceRequest(
            text=self.text,
            params=tuple(sorted(self.params.items())),
            x_range=tuple(map(float, self.x_range)),
            y_range=tuple(map(float, self.y_range)),
            resolution=int(resolution or self.resolution),
            n_levels=int(self.n_levels),
            level_spacing=self.level_spacing,
            arrows=int(self.arrow_density if self.arrows else 0),
            infer_parameters=True,
        )


@dataclass(frozen=True)
class ProbeRequest:
    """Where the mouse is, with the function it is over."""

    text: str
    params: tuple[tuple[str, float], ...]
    x: float
    y: float


@dataclass(frozen=True)
class LandscapeJob:
    """A landscape request with the contour settings; ``previous`` (not compared) is the
    last computed landscape, reused when only the metric or the levels changed."""

    landscape: landscape.LandscapeRequest
    n_levels: int
    level_spacing: str
    previous: object = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True, eq=False)
class LandscapeView:
    """A real landscape made ready for the views, shaped like a SurfaceResult where drawn."""

    request: LandscapeJob
    result: landscape.LandscapeResult
    grid: surfaces.Grid
    levels: tuple[float, float]
    contour_levels: np.ndarray
    curves: list
    path_values: np.ndarray  # the metric at the projected path's plane points
    field = None  # no gradient arrows: there is no expression to differentiate

    @property
    def metric(self) -> str:
        return self.request.landscape.metric


def compute_landscape_view(job: LandscapeJob):
    """Generator job: the landscape (progress fractions, then the result) plus its levels."""
    previous = job.previous
    if previous is not None and replace(previous.request, metric=job.landscape.metric) == job.landscape:
        result = previous
    else:
        result = yield from landscape.compute_landscape(job.landscape)
    metric = job.landscape.metric
    grid = result.to_grid(metric)
    contour_levels = surfaces.default_levels(grid, job.n_levels, job.level_spacing)
    curves = surfaces.level_curves(grid, contour_levels)
    loss, accuracy = result.plane.evaluate(result.path)
    path_values = loss if metric == "loss" else accuracy
    return LandscapeView(job, result, grid, grid.levels(), contour_levels, curves, path_values)


def _probe(request: ProbeRequest):
    expression = surfaces.parse_cached(request.text)
    return surfaces.probe(expression, request.x, request.y, dict(request.params))


def _grown(frame: tuple[float, float], new: tuple[float, float]) -> tuple[float, float]:
    """``frame`` widened to hold ``new``; ``new`` itself when it fills under a tenth of it."""
    lo, hi = min(frame[0], new[0]), max(frame[1], new[1])
    if (new[1] - new[0]) < 0.1 * (hi - lo):
        return new
    return lo, hi


def color_knots(result, levels: tuple[float, float]) -> np.ndarray | None:
    """Colour-band edges for log-spaced levels: the colour range's ends and the levels inside."""
    lo, hi = levels
    inside = [float(c) for c in result.contour_levels if lo < c < hi]
    knots = np.array([lo, *inside, hi])
    return knots if len(knots) > 2 else None


def marker_size(count: int, largest: float) -> float:
    """Markers shrink when there are many (Rastrigin has 441 critical points in view)."""
    return largest if count <= 40 else max(5.0, largest * (40.0 / count) ** 0.5)


def _fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "undefined"
    return f"{value:.4g}"


class ExpressionEdit(QWidget):
    """A line edit for f(x, y) with an inline error message under the typed position."""

    submitted = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.edit = QLineEdit()
        # The engine refuses text over MAX_LENGTH with a message; the box keeps twice that.
        # QLineEdit records every character inserted or removed for undo (about 15 bytes
        # each) and setText empties that record without giving its memory back, so a box
        # that took 400 000-character pastes held tens of MB for good.
        self.edit.setMaxLength(2 * MAX_LENGTH)
        self.edit.setPlaceholderText("f(x, y), e.g. a*x**2 + b*y**2")
        self.edit.setToolTip(
            f"Type f(x, y), up to {MAX_LENGTH} characters, and press Enter.\n"
            "Operators: + - * / ** (powers), unary minus.\n"
            "Functions: sin cos tan exp log sqrt abs tanh sigmoid relu softplus min max.\n"
            "Constants: pi, e. Any other name becomes a parameter with its own slider."
        )
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.edit.setFont(mono)
        self.error = QLabel()
        self.error.setObjectName("expressionError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(self.error)
        self.edit.returnPressed.connect(lambda: self.submitted.emit(self.edit.text()))

    def text(self) -> str:
        return self.edit.text()

    def setText(self, text: str) -> None:
        self.edit.setText(text)
        self.clear_error()

    def show_error(self, message: str, position: int | None) -> None:
        """Show ``message`` below the box; put the cursor where the problem is."""
        text = self.edit.text()
        if position is not None and 0 <= position <= len(text):
            start = max(0, position - 20)
            snippet = text[start:position + 20]
            pointer = " " * (position - start) + "^"
            self.error.setText(f"{message}\n{snippet}\n{pointer}")
            self.error.setFont(self.edit.font())
            self.edit.setCursorPosition(position)
        else:
            self.error.setText(message)
        self.edit.setStyleSheet("QLineEdit { border: 2px solid #b00020; }")
        self.error.show()

    def clear_error(self) -> None:
        self.error.hide()
        self.error.clear()
        self.edit.setStyleSheet("")


class SurfacePanel(QWidget):
    """3-D surface + contour map + controls for one function of two variables."""

    title = "Loss surface"
    status = Signal(str)
    surfaceDrawn = Signal(object)  # SurfaceResult, after both views were updated
    landscapeDrawn = Signal(object)  # LandscapeView, after both views were updated
    criticalPointsDrawn = Signal(object)

    def __init__(self, parent=None, settings: SurfaceSettings | None = None):
        super().__init__(parent)
        self.settings = settings or SurfaceSettings()
        self.result: surfaces.SurfaceResult | None = None
        self.critical: list = []
        self.expression = None
        self._param_sliders: dict[str, QLabeledDoubleSlider] = {}
        self._pinned: tuple[float, float] | None = None
        self._pinned_source = "function"  # what the pinned read-out was read from
        self._frame_key = None
        self.frame_levels: tuple[float, float] | None = None  # colour levels on screen
        self._frame_z: tuple[float, float] | None = None
        self.landscape: LandscapeView | None = None  # the real landscape on screen, if any
        self._shown = None  # what the views show: a SurfaceResult or a LandscapeView
        self._function_settings: SurfaceSettings | None = None  # to return to on Cancel

        self.surface_runner = JobRunner(surfaces.compute_surface, "surface", self)
        self.critical_runner = JobRunner(surfaces.compute_critical_points, "critical", self)
        self.probe_runner = JobRunner(_probe, "probe", self)
        self.surface_runner.finished.connect(self._on_surface)
        self.surface_runner.failed.connect(self._on_surface_failed)
        self.surface_runner.busyChanged.connect(self._on_busy)
        self.critical_runner.finished.connect(self._on_critical)
        self.critical_runner.failed.connect(self._on_critical_failed)
        self.probe_runner.finished.connect(self._on_probe)
        self.landscape_runner = JobRunner(compute_landscape_view, "landscape", self)
        self.landscape_runner.finished.connect(self._on_landscape)
        self.landscape_runner.failed.connect(self._on_landscape_failed)
        self.landscape_runner.progress.connect(self._on_landscape_progress)

        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.refresh)
        self._critical_timer = QTimer(self, singleShot=True, interval=CRITICAL_DELAY_MS)
        self._critical_timer.timeout.connect(self._submit_critical)

        self._busy_timer = QTimer(self, singleShot=True, interval=BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(lambda: self.progress.setVisible(True))

        self._build()
        self._apply_settings_to_widgets()
        self.refresh()

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        controls = QWidget()
        column = QVBoxLayout(controls)

        fbox = QGroupBox("Function")
        flay = QVBoxLayout(fbox)
        self.preset_box = QComboBox()
        self.preset_box.addItem("(typed function)", None)
        for p in surfaces.PRESETS:
            self.preset_box.addItem(p.name, p.key)
            self.preset_box.setItemData(self.preset_box.count() - 1, p.note, Qt.ItemDataRole.ToolTipRole)
        self.preset_box.insertSeparator(self.preset_box.count())
        self.preset_box.addItem("Real landscape: digits network", LANDSCAPE_KEY)
        self.preset_box.setItemData(self.preset_box.count() - 1,
                                    "The loss of a trained 64-32-10 network on a plane through its "
                                    "weights (Li et al. 2018)", Qt.ItemDataRole.ToolTipRole)
        self.preset_box.setToolTip("Preset surfaces from the course and the optimisation literature")
        self.preset_box.activated.connect(self._on_preset)
        self.expr = ExpressionEdit()
        self.expr.submitted.connect(self.set_expression)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444;")
        flay.addWidget(self.preset_box)
        flay.addWidget(QLabel("f(x, y) ="))
        flay.addWidget(self.expr)
        flay.addWidget(self.note)
        column.addWidget(fbox)
        column.addWidget(self._build_landscape_box())

        self.param_box = QGroupBox("Parameters")
        self.param_form = QFormLayout(self.param_box)
        column.addWidget(self.param_box)

        rbox = self.range_box = QGroupBox("Range and resolution")
        rlay = QGridLayout(rbox)
        self.range_spins = []
        for row, axis in enumerate("xy"):
            lo, hi = QDoubleSpinBox(), QDoubleSpinBox()
            for spin in (lo, hi):
                spin.setRange(-1e6, 1e6)
                spin.setDecimals(3)
                spin.setKeyboardTracking(False)
                spin.setSingleStep(0.5)
                spin.valueChanged.connect(self._on_range)
            lo.setToolTip(f"Smallest {axis} shown")
            hi.setToolTip(f"Largest {axis} shown")
            rlay.addWidget(QLabel(f"{axis} from"), row, 0)
            rlay.addWidget(lo, row, 1)
            rlay.addWidget(QLabel("to"), row, 2)
            rlay.addWidget(hi, row, 3)
            self.range_spins.append((lo, hi))
        self.range_error = QLabel()
        self.range_error.setStyleSheet("color: #b00020;")
        self.range_error.hide()
        rlay.addWidget(self.range_error, 2, 0, 1, 4)
        self.resolution_box = QComboBox()
        for n in RESOLUTIONS:
            self.resolution_box.addItem(f"{n} × {n}", n)
        self.resolution_box.setToolTip("Grid points per side for the surface and the contour map")
        self.resolution_box.activated.connect(self._on_resolution)
        rlay.addWidget(QLabel("Grid"), 3, 0)
        rlay.addWidget(self.resolution_box, 3, 1, 1, 3)
        column.addWidget(rbox)

        cbox = QGroupBox("Contour map")
        clay = QGridLayout(cbox)
        self.levels_slider = QSlider(Qt.Orientation.Horizontal)
        self.levels_slider.setRange(3, 60)
        self.levels_slider.setToolTip("Number of level curves")
        self.levels_label = QLabel()
        self.levels_slider.valueChanged.connect(self._on_levels)
        self.spacing_box = QComboBox()
        self.spacing_box.addItem("linear spacing", "linear")
        self.spacing_box.addItem("log spacing", "log")
        self.spacing_box.setToolTip("Log spacing shows the floor of steep valleys (Rosenbrock)")
        self.spacing_box.activated.connect(self._on_spacing)
        self.fill_check = QCheckBox("Filled heatmap (H)")
        self.fill_check.toggled.connect(self._on_fill)
        self.arrows_check = QCheckBox("Gradient arrows (G)")
        self.arrows_check.setToolTip("∇f points uphill, perpendicular to the level curves (seed 001)")
        self.arrows_check.toggled.connect(self._on_arrows)
        self.critical_check = QCheckBox("Critical points (C)")
        self.critical_check.setToolTip("Points where ∇f = 0, classified by the Hessian's eigenvalues (seed 002)")
        self.critical_check.toggled.connect(self._on_critical_toggle)
        clay.addWidget(QLabel("Levels"), 0, 0)
        clay.addWidget(self.levels_slider, 0, 1)
        clay.addWidget(self.levels_label, 0, 2)
        clay.addWidget(self.spacing_box, 1, 0, 1, 3)
        clay.addWidget(self.fill_check, 2, 0, 1, 3)
        clay.addWidget(self.arrows_check, 3, 0, 1, 3)
        clay.addWidget(self.critical_check, 4, 0, 1, 3)
        self.expression_only_note = QLabel("Gradient arrows and critical points need a formula: "
                                           "off while a real landscape is shown.")
        self.expression_only_note.setWordWrap(True)
        self.expression_only_note.setStyleSheet("color: #666;")
        self.expression_only_note.setVisible(False)
        clay.addWidget(self.expression_only_note, 5, 0, 1, 3)
        column.addWidget(cbox)

        sbox = QGroupBox("3-D view")
        slay = QVBoxLayout(sbox)
        self.wire_check = QCheckBox("Wireframe (W)")
        self.wire_check.toggled.connect(self._on_wireframe)
        slay.addWidget(self.wire_check)
        column.addWidget(sbox)

        dbox = self.derivatives_box = QGroupBox("Derivatives")
        dlay = QVBoxLayout(dbox)
        self.formulas = QLabel()
        self.formulas.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formulas.setWordWrap(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.formulas.setFont(mono)
        dlay.addWidget(self.formulas)
        column.addWidget(dbox)

        pbox = QGroupBox("At the point (hover or click the map)")
        play = QVBoxLayout(pbox)
        self.readout = QLabel("Hover over the contour map.\nClick to pin, Esc to let go.")
        self.readout.setFont(mono)
        self.readout.setWordWrap(True)  # long numbers must not widen the control column
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        play.addWidget(self.readout)
        column.addWidget(pbox)

        kbox = self.critical_box = QGroupBox("Critical points")
        klay = QVBoxLayout(kbox)
        self.critical_table = QTableWidget(0, 5)
        self.critical_table.setHorizontalHeaderLabels(["kind", "x", "y", "f", "eigenvalues"])
        self.critical_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.critical_table.verticalHeader().hide()
        self.critical_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.critical_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.critical_table.setMinimumHeight(140)
        self.critical_table.cellClicked.connect(self._on_critical_row)
        klay.addWidget(self.critical_table)
        column.addWidget(kbox)
        column.addStretch(1)

        self.view3d = create_surface_view()
        self.view3d.setMinimumSize(300, 260)
        self.contour = ContourView()
        self.contour.setMinimumSize(300, 260)
        self.contour.hovered.connect(self._on_hover)
        self.contour.clicked.connect(self._on_click)
        self.contour.left.connect(self._on_leave)
        # The real landscape's marks: the projected training path and the trained weights.
        self.path_curve = pg.PlotCurveItem(pen=pg.mkPen(PATH_COLOR, width=2.2))
        self.path_points = pg.ScatterPlotItem(size=5, brush=pg.mkBrush(PATH_COLOR), pen=None)
        self.centre_marker = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush(CENTRE_COLOR),
                                                pen=pg.mkPen("k", width=1.3))
        for z, item in enumerate((self.path_curve, self.path_points, self.centre_marker)):
            item.setZValue(12 + z)
            self.contour.plot.addItem(item)

        views = QSplitter(Qt.Orientation.Horizontal)
        views.addWidget(self.view3d)
        views.addWidget(self.contour)
        views.setSizes([500, 500])

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumHeight(6)
        self.progress.setTextVisible(False)
        # Keep its space when hidden: a layout change would resize (and repaint) the 3-D view.
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)

        controls_beside_views(self, controls, views, 340, above=self.progress)
        panel_shortcuts(self, [(Qt.Key.Key_Escape, self.unpin_probe),
                               ("W", self.wire_check.toggle), ("H", self.fill_check.toggle),
                               ("G", self.arrows_check.toggle), ("C", self.critical_check.toggle)])

    def _build_landscape_box(self) -> QGroupBox:
        box = self.landscape_box = QGroupBox("Real landscape")
        form = QFormLayout(box)
        self.directions_box = QComboBox()
        for key in landscape.DIRECTIONS:
            self.directions_box.addItem(DIRECTION_NAMES.get(key, key), key)
        self.directions_box.setToolTip("The two directions d1, d2 of the plane theta* + a d1 + b d2 "
                                       "(Li et al. sections 4 and 7); PCA shows the training path best")
        self.bias_box = QComboBox()
        self.bias_box.addItem("biases fixed (zero in d1, d2)", "zero")
        self.bias_box.addItem("biases move with their neuron", "keep")
        self.bias_box.setToolTip("Whether the directions change the bias weights (the paper's "
                                 "code leaves them out)")
        self.grid_spin = QSpinBox()
        self.grid_spin.setRange(*LANDSCAPE_GRIDS)
        self.grid_spin.setSingleStep(2)
        self.grid_spin.setKeyboardTracking(False)
        self.grid_spin.setToolTip("Nodes per side (odd, so that the trained weights are a node)")
        self.span_spin = QDoubleSpinBox()
        self.span_spin.setRange(0.0, landscape.MAX_SPAN)
        self.span_spin.setDecimals(2)
        self.span_spin.setSingleStep(0.25)
        self.span_spin.setSpecialValueText("auto")
        self.span_spin.setKeyboardTracking(False)
        self.span_spin.setToolTip("a and b run over [-span, span]; auto: 1 for random directions, "
                                  "the reach of the training path for PCA")
        self.metric_box = QComboBox()
        self.metric_box.addItem("loss (cross-entropy)", "loss")
        self.metric_box.addItem("accuracy", "accuracy")
        self.landscape_log = QCheckBox("log-spaced levels")
        self.landscape_log.setToolTip("Shows the floor of the basin around the trained weights")
        for widget in (self.directions_box, self.bias_box, self.metric_box):
            widget.activated.connect(self._on_landscape_controls)
        for spin in (self.grid_spin, self.span_spin):
            spin.valueChanged.connect(self._on_landscape_controls)
        self.landscape_log.toggled.connect(
            lambda on: self._on_spacing(self.spacing_box.findData("log" if on else "linear")))
        form.addRow("directions", self.directions_box)
        form.addRow("bias", self.bias_box)
        form.addRow("grid", self.grid_spin)
        form.addRow("span", self.span_spin)
        form.addRow("show", self.metric_box)
        form.addRow(self.landscape_log)
        self.landscape_progress = QProgressBar()
        self.landscape_progress.setRange(0, 100)
        self.landscape_progress.setVisible(False)
        self.landscape_cancel = QPushButton("Cancel")
        self.landscape_cancel.setToolTip("Stop computing; the surface on screen stays")
        self.landscape_cancel.clicked.connect(self.cancel_landscape)
        self.landscape_cancel.setVisible(False)
        row = QWidget()
        rlay = QGridLayout(row)
        rlay.setContentsMargins(0, 0, 0, 0)
        rlay.addWidget(self.landscape_progress, 0, 0)
        rlay.addWidget(self.landscape_cancel, 0, 1)
        form.addRow(row)
        self.landscape_info = QLabel()
        self.landscape_info.setWordWrap(True)
        self.landscape_info.setStyleSheet("color: #444;")
        form.addRow(self.landscape_info)
        box.setVisible(False)
        return box

    def _apply_landscape_widgets(self) -> None:
        ls = self.settings.landscape
        for widget, value in ((self.directions_box, ls.directions), (self.bias_box, ls.bias),
                              (self.metric_box, ls.metric)):
            widget.setCurrentIndex(max(widget.findData(value), 0))
        for spin, value in ((self.grid_spin, ls.grid), (self.span_spin, ls.span or 0.0),
                            (self.landscape_log, self.settings.level_spacing == "log")):
            spin.blockSignals(True)
            (spin.setChecked if spin is self.landscape_log else spin.setValue)(value)
            spin.blockSignals(False)
        self.landscape_box.setVisible(self.settings.source == "landscape")

    def _apply_settings_to_widgets(self) -> None:
        s = self.settings
        if s.source == "landscape":
            index = self.preset_box.findData(LANDSCAPE_KEY)
        else:
            index = self.preset_box.findData(s.preset) if s.preset else 0
        self.preset_box.setCurrentIndex(max(index, 0))
        self.expr.setText(s.text)
        for (lo, hi), (a, b) in zip(self.range_spins, (s.x_range, s.y_range)):
            for spin, value in ((lo, a), (hi, b)):
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
        self.resolution_box.setCurrentIndex(max(self.resolution_box.findData(s.resolution), 0))
        for widget, value in ((self.levels_slider, s.n_levels),):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.levels_label.setText(str(s.n_levels))
        self.spacing_box.setCurrentIndex(max(self.spacing_box.findData(s.level_spacing), 0))
        for check, value in ((self.fill_check, s.filled), (self.arrows_check, s.arrows),
                             (self.wire_check, s.wireframe), (self.critical_check, s.critical_points)):
            check.blockSignals(True)
            check.setChecked(value)
            check.blockSignals(False)
        self.contour.set_fill(s.filled)
        self.view3d.setWireframe(s.wireframe)
        self._apply_landscape_widgets()
        self._update_note()

    def _update_note(self) -> None:
        if self.settings.source == "landscape":
            self.note.setText("The cross-entropy of a 64-32-10 ReLU network trained on the 1797 "
                              "digits, on a plane theta* + a d1 + b d2 through its trained weights "
                              "(Li et al. 2018). Type a function or pick a preset to go back.")
            self.note.show()
        elif self.settings.preset:
            self.note.setText(surfaces.preset(self.settings.preset).note)
            self.note.show()
        else:
            self.note.hide()

    # -- public API (used by the menu, the command line and tests) ---------------------
    def set_expression(self, text: str) -> None:
        """Ask for a new function; the old plot stays until the new one is valid."""
        self._leave_landscape()
        self.expr.setText(text)
        text = self.expr.text()  # what the box keeps: at most twice the engine's limit
        self.settings = replace(self.settings, text=text, preset=None)
        self.preset_box.setCurrentIndex(0)
        self._update_note()
        self.refresh()

    def set_preset(self, key: str) -> None:
        """Show a preset surface with its own ranges and parameters."""
        p = surfaces.preset(key)
        self._leave_landscape()
        self.settings = replace(self.settings, text=p.text, preset=p.key, params=dict(p.parameters),
                                x_range=tuple(p.x_range), y_range=tuple(p.y_range),
                                level_spacing=p.level_spacing)
        self._apply_settings_to_widgets()
        self.refresh()

    def set_parameter(self, name: str, value: float, dragging: bool = False) -> None:
        """Change one parameter: a coarse preview while dragging, full resolution after."""
        params = dict(self.settings.params)
        params[name] = float(value)
        self.settings = replace(self.settings, params=params)
        slider = self._param_sliders.get(name)
        if slider is not None and abs(slider.value() - value) > 1e-12:
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)
        if dragging:
            self.surface_runner.submit(self.settings.request(min(PREVIEW_RESOLUTION, self.settings.resolution)))
            self._settle.start()
        else:
            self.refresh()

    def set_landscape(self, settings: LandscapeSettings | None = None) -> None:
        """Show the real loss landscape of the digits network (computed with a progress bar).

        The function shown until now stays on screen until the landscape is ready, and
        comes back if the computation is cancelled.
        """
        if self.settings.source != "landscape":
            self._function_settings = self.settings
            # Loss maps are a deep basin in steep walls: log-spaced levels show both.
            self.settings = replace(self.settings, source="landscape", level_spacing="log")
        if settings is not None:
            self.settings = replace(self.settings, landscape=settings)
        self.surface_runner.cancel()
        self.critical_runner.cancel()
        self._apply_settings_to_widgets()
        self.refresh()

    def cancel_landscape(self) -> None:
        """Stop the landscape being computed; the views keep what they show."""
        if not self.landscape_runner.busy:
            return
        self.landscape_runner.cancel()
        self._landscape_busy(False)
        if self.landscape is None and self._function_settings is not None:
            self.settings = self._function_settings  # the function on screen is the source again
            self._function_settings = None
        elif self.landscape is not None:
            self.settings = replace(self.settings, source="landscape",
                                    landscape=self._landscape_settings(self.landscape))
        self._apply_settings_to_widgets()
        self.status.emit("Landscape cancelled; the surface on screen is kept.")

    def refresh(self) -> None:
        """Submit the full-resolution request for the current settings."""
        self._settle.stop()
        if self.settings.source == "landscape":
            self._submit_landscape()
            return
        self.surface_runner.submit(self.settings.request())

    def export(self, path: str | Path, view: str = "auto") -> Path:
        """Write the current figure: .png (3-D, contour or both), .svg (contour), .csv (grid);
        for a real landscape also .npz (x, y, loss, accuracy, path)."""
        if self.landscape is not None:
            return export.export_landscape(self, self.landscape, Path(path), view)
        return export.export_surface_panel(self, Path(path), view)

    @property
    def export_filters(self) -> dict[str, tuple[str, str]]:
        """File > Export's choices: the surface's, and ``.npz`` while a landscape is shown."""
        filters = {
            "PNG image, 3-D view and contour map (*.png)": ("both", ".png"),
            "PNG image, 3-D view only (*.png)": ("surface", ".png"),
            "PNG image, contour map only (*.png)": ("contour", ".png"),
            "SVG drawing, contour map (*.svg)": ("contour", ".svg"),
            "CSV table (*.csv)": ("auto", ".csv"),
        }
        if self.landscape is not None:
            filters["NumPy arrays: x, y, loss, accuracy, path (*.npz)"] = ("auto", ".npz")
        return filters

    # -- session ------------------------------------------------------------------------
    def session_state(self) -> dict:
        """Everything the user set: the function or the landscape's choices, the window,
        levels and view toggles, and a pinned read-out (the views are recomputed)."""
        s, ls = self.settings, self.settings.landscape
        return {
            "source": s.source, "text": s.text, "preset": s.preset, "params": dict(s.params),
            "x_range": list(s.x_range), "y_range": list(s.y_range), "resolution": s.resolution,
            "n_levels": s.n_levels, "level_spacing": s.level_spacing, "filled": s.filled,
            "arrows": s.arrows, "wireframe": s.wireframe, "critical_points": s.critical_points,
            "landscape": {"directions": ls.directions, "bias": ls.bias, "grid": ls.grid,
                          "span": ls.span, "metric": ls.metric, "seed": ls.seed},
            "pinned": list(self._pinned) if self._pinned is not None else None,
        }

    def restore_session_state(self, state: dict) -> None:
        """Show a :meth:`session_state`. Everything is checked first, the text by the same
        parser as typed text (never executed): a bad value raises
        :class:`app.session.SessionError` naming its key and changes nothing."""
        settings, pinned = self._read_state(state)
        self._leave_landscape()
        self.unpin_probe()
        if settings.source == "landscape":
            self.settings = replace(settings, source="function")
            self.set_landscape(settings.landscape)
            self.settings = replace(self.settings, level_spacing=settings.level_spacing)
            self._apply_settings_to_widgets()
            self.refresh()
        else:
            self.settings = settings
            self._apply_settings_to_widgets()
            for name, slider in self._param_sliders.items():  # sliders kept for the same names
                if name in settings.params:
                    value = settings.params[name]
                    span = max(5.0, 3.0 * abs(value), abs(slider.minimum()))
                    slider.blockSignals(True)
                    slider.setRange(-span, span)
                    slider.setValue(value)
                    slider.blockSignals(False)
            self.refresh()
        if pinned is not None:
            self._pinned, self._pinned_source = pinned, settings.source
            self._submit_probe(*pinned)

    def _read_state(self, state) -> tuple[SurfaceSettings, tuple[float, float] | None]:
        if not isinstance(state, dict):
            raise session.SessionError("the loss-surface state must be an object")
        d = SurfaceSettings()
        num, whole = session.expect_number, session.expect_int
        source = session.expect_str(state, "source", choices=("function", "landscape"),
                                    default=d.source)
        text = session.expect_str(state, "text", max_length=2000, default=d.text)
        try:
            expression = surfaces.parse_cached(text)  # the typed-text check; nothing is run
        except ExpressionError as error:
            raise session.SessionError(f"not a function: {error}", "text") from None
        preset = state.get("preset", d.preset)
        if preset is not None:
            preset = session.expect_str(state, "preset", choices=surfaces.preset_keys())
        given = session.expect_dict(state, "params", default={})
        if len(given) > 16:
            raise session.SessionError(f"{len(given)} parameters; at most 16", "params")
        params = {}
        for name in given:
            if name not in expression.parameters:
                raise session.SessionError(f"the function has no parameter {name!r}", "params")
            params[name] = num(given, name, "params", -1e6, 1e6)
        ranges = []
        for key, default in (("x_range", d.x_range), ("y_range", d.y_range)):
            pair = session.expect_list(state, key, max_length=2, default=list(default))
            lo, hi = (num(pair, i, key, -1e6, 1e6) for i in range(2)) if len(pair) == 2 else (0, 0)
            if len(pair) != 2 or not lo < hi:
                raise session.SessionError("expected [from, to] with from < to", key)
            ranges.append((lo, hi))
        resolution = whole(state, "resolution", default=d.resolution)
        if resolution not in RESOLUTIONS:
            raise session.SessionError(f"expected one of {', '.join(map(str, RESOLUTIONS))}, "
                                       f"got {resolution}", "resolution")
        flags = {key: session.expect_bool(state, key, default=getattr(d, key))
                 for key in ("filled", "arrows", "wireframe", "critical_points")}
        lg = session.expect_dict(state, "landscape", default={})
        dl = LandscapeSettings()
        span = lg.get("span", dl.span)
        if span is not None:
            span = num(lg, "span", "landscape", 0.0, landscape.MAX_SPAN)
            span = span or None  # 0 is the spin box's "automatic"
        grid = whole(lg, "grid", "landscape", *LANDSCAPE_GRIDS, default=dl.grid)
        if grid % 2 == 0:
            raise session.SessionError(f"expected an odd number, got {grid}", "landscape.grid")
        ls = LandscapeSettings(
            directions=session.expect_str(lg, "directions", "landscape",
                                          choices=landscape.DIRECTIONS, default=dl.directions),
            bias=session.expect_str(lg, "bias", "landscape", choices=landscape.BIASES,
                                    default=dl.bias),
            grid=grid, span=span,
            metric=session.expect_str(lg, "metric", "landscape", choices=landscape.METRICS,
                                      default=dl.metric),
            seed=whole(lg, "seed", "landscape", 0, 2**31 - 1, default=dl.seed))
        pinned = state.get("pinned")
        if pinned is not None:
            pair = session.expect_list(state, "pinned", max_length=2)
            if len(pair) != 2:
                raise session.SessionError("expected [x, y]", "pinned")
            pinned = (num(pair, 0, "pinned", -1e6, 1e6), num(pair, 1, "pinned", -1e6, 1e6))
        settings = SurfaceSettings(
            text=text, preset=preset, params=params, x_range=ranges[0], y_range=ranges[1],
            resolution=resolution, n_levels=whole(state, "n_levels", "", 3, 60, default=d.n_levels),
            level_spacing=session.expect_str(state, "level_spacing", choices=("linear", "log"),
                                             default=d.level_spacing),
            source=source, landscape=ls, **flags)
        return settings, pinned

    def shutdown(self) -> None:
        """Stop this panel's workers (the window also stops every runner on quit)."""
        for runner in (self.surface_runner, self.critical_runner, self.probe_runner,
                       self.landscape_runner):
            runner.shutdown()

    # -- the real landscape ------------------------------------------------------------
    def _leave_landscape(self) -> None:
        """Back to a function: stop a landscape job; the next surface clears its marks."""
        if self.landscape_runner.busy:
            self.landscape_runner.cancel()
            self._landscape_busy(False)
        self._function_settings = None
        if self.settings.source == "landscape":
            self.settings = replace(self.settings, source="function")
            self.landscape_box.setVisible(False)

    @staticmethod
    def _landscape_settings(view: LandscapeView) -> LandscapeSettings:
        r = view.request.landscape
        return LandscapeSettings(r.directions, r.bias, r.grid, r.span, r.metric, r.seed)

    def _submit_landscape(self) -> None:
        s = self.settings
        try:
            request = s.landscape.request()
        except ValueError as error:
            self.landscape_info.setText(f"Not computed: {error}")
            return
        previous = self.landscape.result if self.landscape is not None else None
        job = LandscapeJob(request, int(s.n_levels), s.level_spacing, previous)
        reuse = previous is not None and replace(previous.request, metric=request.metric) == request
        self.landscape_runner.submit(job)
        if not reuse:
            self._landscape_busy(True)
            self.landscape_info.setText(f"Training the network (cached after the first time) and "
                                        f"evaluating {request.grid}×{request.grid} weight vectors…")

    def _landscape_busy(self, busy: bool) -> None:
        self.landscape_progress.setValue(0)
        self.landscape_progress.setVisible(busy)
        self.landscape_cancel.setVisible(busy)

    def _on_landscape_progress(self, job_id: int, fraction: float) -> None:
        if job_id == self.landscape_runner.latest_id and self.landscape_cancel.isVisible():
            self.landscape_progress.setValue(round(100 * fraction))

    def _on_landscape_controls(self, *_args) -> None:
        grid = self.grid_spin.value()
        if grid % 2 == 0:  # a typed even number: the next odd one, so theta* stays a node
            grid = min(grid + 1, LANDSCAPE_GRIDS[1])
            self.grid_spin.blockSignals(True)
            self.grid_spin.setValue(grid)
            self.grid_spin.blockSignals(False)
        span = self.span_spin.value()
        ls = LandscapeSettings(self.directions_box.currentData(), self.bias_box.currentData(), grid,
                               span if span > 0 else None, self.metric_box.currentData(),
                               self.settings.landscape.seed)
        self.settings = replace(self.settings, landscape=ls)
        if self.settings.source == "landscape":
            self.refresh()

    def _on_landscape(self, job: JobResult) -> None:
        if self.settings.source != "landscape":
            return
        view = job.value
        r = view.result
        self._landscape_busy(False)
        self._function_settings = None
        self.landscape = view
        self._set_mode(landscape=True)
        key = ("landscape", replace(r.request, metric="loss"), view.metric,
               view.request.level_spacing)
        drawn = self._show_grid(view, key, view.request.level_spacing)
        metric = view.metric
        self.contour.set_labels("a (along d1)", "b (along d2)", metric)
        self.view3d.setAxisLabels("a", "b", metric)
        path = np.asarray(r.path, dtype=float)
        self.path_curve.setData(path[:, 0], path[:, 1])
        self.path_points.setData(path[:, 0], path[:, 1])
        centre = r.centre_loss if metric == "loss" else r.centre_accuracy
        self.centre_marker.setData([0.0], [0.0])
        self.contour.legend_entry(self.path_curve, "training path (projected)", True)
        self.contour.legend_entry(self.centre_marker, "trained weights θ*", True)
        self.contour.place_legend(path)
        if drawn:
            self.view3d.setPaths([(np.column_stack([path, view.path_values]), PATH_COLOR)])
            self.view3d.setBalls(np.array([[0.0, 0.0, centre]]), [CENTRE_COLOR], size=11.0)
        d = r.directions
        explained = ""
        if d.explained_variance is not None:
            explained = (f"; d1 and d2 explain {100 * float(sum(d.explained_variance)):.0f}% "
                         f"of its variance")
        self.landscape_info.setText(
            f"θ*: loss {r.centre_loss:.4g}, accuracy {100 * r.centre_accuracy:.1f}% on "
            f"{len(r.plane.y)} digits. Plane {DIRECTION_NAMES.get(r.request.directions)}, "
            f"span ±{r.span:.3g}; the plane holds {100 * r.path_captured:.0f}% of the path's "
            f"distance to θ*{explained}.")
        if self._pinned is not None and self._pinned_source != "landscape":
            self.unpin_probe()  # a read-out pinned on a typed function means nothing here
        self.status.emit(f"Real landscape: {metric} on a {view.grid.z.shape[1]}×{view.grid.z.shape[0]} "
                         f"grid in {job.seconds:.2f} s")
        self.landscapeDrawn.emit(view)

    def _on_landscape_failed(self, failure: JobFailure) -> None:
        self._landscape_busy(False)
        self.landscape_info.setText(f"Not computed: {failure.message}")
        self.status.emit(f"Could not compute the landscape: {failure.message}")

    def _set_mode(self, landscape: bool) -> None:
        """Hide or disable what only a typed expression has, with a short note why."""
        if not landscape:
            self.landscape = None
            for item in (self.path_curve, self.path_points, self.centre_marker):
                item.setData([], [])
            self.contour.legend_entry(self.path_curve, "", False)
            self.contour.legend_entry(self.centre_marker, "", False)
            self.contour.set_labels("x", "y", "f(x, y)")
            self.view3d.setAxisLabels()
            self.view3d.setPaths([])
            self.view3d.setBalls(np.zeros((0, 3)), [])
        else:
            self._show_critical([])
            self.param_box.setVisible(False)
        note = "Not for a real landscape: it has no formula to differentiate." if landscape else ""
        for check, tip in ((self.arrows_check, "∇f points uphill, perpendicular to the level curves (seed 001)"),
                           (self.critical_check, "Points where ∇f = 0, classified by the Hessian's eigenvalues (seed 002)")):
            check.setEnabled(not landscape)
            check.setToolTip(note or tip)
        self.expression_only_note.setVisible(landscape)
        self.range_box.setVisible(not landscape)
        self.critical_box.setVisible(not landscape)
        self.landscape_box.setVisible(landscape or self.settings.source == "landscape")
        if landscape:
            self.formulas.setText("Derivative formulas belong to typed expressions; a real "
                                  "landscape is sampled from a network, point by point.")

    # -- control handlers --------------------------------------------------------------
    def _on_preset(self, index: int) -> None:
        key = self.preset_box.itemData(index)
        if key == LANDSCAPE_KEY:
            self.set_landscape()
            return
        if key is None:
            if self.settings.source == "landscape":
                self.set_expression(self.expr.text())  # the typed function, drawn again
                return
            self.settings = replace(self.settings, preset=None)
            self._update_note()
            return
        self.set_preset(key)

    def _on_range(self) -> None:
        (xl, xh), (yl, yh) = ((lo.value(), hi.value()) for lo, hi in self.range_spins)
        if not (xl < xh and yl < yh):
            self.range_error.setText("Each range needs 'from' smaller than 'to'.")
            self.range_error.show()
            return
        self.range_error.hide()
        self.settings = replace(self.settings, x_range=(xl, xh), y_range=(yl, yh))
        self.refresh()

    def _on_resolution(self, index: int) -> None:
        self.settings = replace(self.settings, resolution=int(self.resolution_box.itemData(index)))
        self.refresh()

    def _on_levels(self, value: int) -> None:
        self.levels_label.setText(str(value))
        self.settings = replace(self.settings, n_levels=int(value))
        self.refresh()

    def _on_spacing(self, index: int) -> None:
        spacing = self.spacing_box.itemData(index)
        self.settings = replace(self.settings, level_spacing=spacing)
        for box, value in ((self.spacing_box, index), (self.landscape_log, spacing == "log")):
            box.blockSignals(True)
            (box.setCurrentIndex if box is self.spacing_box else box.setChecked)(value)
            box.blockSignals(False)
        self.refresh()

    def _on_fill(self, on: bool) -> None:
        self.settings = replace(self.settings, filled=on)
        self.contour.set_fill(on)
        if self._shown is not None:
            self.contour.set_level_curves(self._shown.curves, self.frame_levels or self._shown.levels)

    def _on_arrows(self, on: bool) -> None:
        self.settings = replace(self.settings, arrows=on)
        self.refresh()

    def _on_wireframe(self, on: bool) -> None:
        self.settings = replace(self.settings, wireframe=on)
        self.view3d.setWireframe(on)

    def _on_critical_toggle(self, on: bool) -> None:
        self.settings = replace(self.settings, critical_points=on)
        if on:
            self._submit_critical()
        else:
            self.critical_runner.cancel()
            self._show_critical([])

    def _rebuild_parameters(self, names: tuple[str, ...], defaults: dict[str, float]) -> None:
        self.param_box.setVisible(bool(names))
        if tuple(self._param_sliders) == names:
            return
        while self.param_form.rowCount():
            self.param_form.removeRow(0)
        self._param_sliders.clear()
        params = {}
        for name in names:
            value = float(self.settings.params.get(name, defaults.get(name, 1.0)))
            params[name] = value
            span = max(5.0, 3.0 * abs(value))
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setRange(-span, span)
            slider.setDecimals(3)
            slider.setValue(value)
            slider.setToolTip(f"Parameter {name}: drag for a live preview, release for full resolution")
            slider.valueChanged.connect(lambda v, n=name, s=slider: self.set_parameter(n, v, s._slider.isSliderDown()))
            slider.sliderReleased.connect(self.refresh)
            self.param_form.addRow(f"{name} =", slider)
            self._param_sliders[name] = slider
        self.settings = replace(self.settings, params=params)
        self.param_box.setVisible(bool(names))

    # -- results -----------------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        # Only work that takes a noticeable time shows the bar; quick jobs would just flicker.
        if busy:
            self._busy_timer.start()
        else:
            self._busy_timer.stop()
            self.progress.setVisible(False)

    def _show_grid(self, result, frame_key, spacing: str) -> bool:
        """Put ``result.grid`` into both views: the one drawing path of every source.

        ``result`` has ``grid``, ``levels``, ``contour_levels``, ``curves`` and ``field``
        (a SurfaceResult or a LandscapeView). False when nothing in it is finite.
        """
        self._shown = result
        grid = result.grid
        if not grid.finite:
            self.contour.clear_plot()
            self.view3d.setSurface(grid.x, grid.y, grid.z, result.levels)
            return False
        levels, z_range = self._steady_frame(frame_key, result)
        knots = color_knots(result, levels) if spacing == "log" else None
        self.view3d.setColorKnots(knots)
        self.contour.set_field(grid.x, grid.y, grid.z, levels, knots)
        self.contour.set_level_curves(result.curves, levels)
        self.contour.set_arrows(result.field)
        self.view3d.setSurface(grid.x, grid.y, grid.z, levels, z_range)
        # Mark the map dirty now, so both views are painted and shown in the same frame.
        self.contour.viewport().update()
        return True

    def _on_surface(self, job: JobResult) -> None:
        if self.settings.source == "landscape":
            return  # a function that was superseded by the real landscape
        result = job.value
        self.expr.clear_error()
        self.result = result
        self.expression = result.expression
        self._set_mode(landscape=False)
        self._rebuild_parameters(result.expression.parameters, result.expression.defaults)
        request = job.request
        key = (request.text, request.x_range, request.y_range, request.level_spacing)
        if not self._show_grid(result, key, request.level_spacing):
            self.status.emit("f has no finite value in this range: nothing to draw.")
            self.surfaceDrawn.emit(result)
            return
        self._show_formulas(result.expression)
        grid = result.grid
        holes = int(np.count_nonzero(np.isnan(grid.z)))
        note = f", {holes} undefined points left as holes" if holes else ""
        self.status.emit(f"f(x, y) = {result.expression.text}: {grid.z.shape[1]}×{grid.z.shape[0]} grid "
                         f"in {job.seconds * 1000:.0f} ms{note}")
        if job.request.resolution == self.settings.resolution and self.settings.critical_points:
            self._critical_timer.start()
        self.surfaceDrawn.emit(result)

    def _steady_frame(self, key, result) -> tuple[tuple[float, float], tuple[float, float]]:
        """Colour levels and 3-D height box that only grow while one function is explored.

        Refitting both to every new grid would hide what a parameter does (a steeper bowl
        would look the same, only its tick labels would change); so while the text and the
        window stay the same they widen as needed and stay put otherwise. A new function,
        window or spacing, or a surface that shrank to under a tenth of the frame, refits.
        """
        levels = tuple(result.levels)
        # The robust colour levels also bound the 3-D box: a few huge values (exp(1000 x))
        # are cut at its lid instead of squashing everything else flat.
        z_range = levels
        if key == self._frame_key and self.frame_levels is not None:
            levels = _grown(self.frame_levels, levels)
            z_range = _grown(self._frame_z, z_range)
        self._frame_key, self.frame_levels, self._frame_z = key, levels, z_range
        return levels, z_range

    def _on_surface_failed(self, failure: JobFailure) -> None:
        error = failure.error
        if isinstance(error, ExpressionError):
            self.expr.show_error(str(error.args[0]) if error.args else failure.message, error.position)
            self.status.emit(f"Not drawn: {failure.message}. The previous plot is kept.")
        else:
            self.status.emit(f"Could not compute the surface: {failure.message}")

    def _submit_critical(self) -> None:
        if self.settings.critical_points and self.result is not None and self.landscape is None \
                and self.settings.source == "function":
            self.critical_runner.submit(self.settings.request())

    def _on_critical(self, job: JobResult) -> None:
        if job.request != self.settings.request() or self.landscape is not None:
            return  # settings moved on since the search started
        self._show_critical(job.value)
        self.criticalPointsDrawn.emit(job.value)

    def _on_critical_failed(self, failure: JobFailure) -> None:
        self.status.emit(f"Critical points not found: {failure.message}")
        self._show_critical([])

    def _show_critical(self, points) -> None:
        self.critical = list(points)
        self.contour.set_points(self.critical)
        xyz = np.array([[p.x, p.y, p.value] for p in self.critical], dtype=float).reshape(-1, 3)
        colors = [POINT_STYLES[p.kind][2] for p in self.critical]
        self.view3d.setMarkers(xyz, colors, size=marker_size(len(self.critical), 12.0))
        table = self.critical_table
        table.setRowCount(len(self.critical))
        for row, p in enumerate(self.critical):
            values = [p.kind, f"{p.x:.4f}", f"{p.y:.4f}", _fmt(p.value),
                      ", ".join(f"{v:.3g}" for v in p.eigenvalues)]
            for col, text in enumerate(values):
                table.setItem(row, col, QTableWidgetItem(text))

    def _show_formulas(self, expression) -> None:
        f = expression.formulas
        exact = "exact (symbolic)" if expression.symbolic else "numerical (central differences)"
        self.formulas.setText(
            f"∂f/∂x = {f.get('fx', '?')}\n∂f/∂y = {f.get('fy', '?')}\n"
            f"Hessian = [[{f.get('fxx', '?')}, {f.get('fxy', '?')}],\n"
            f"           [{f.get('fxy', '?')}, {f.get('fyy', '?')}]]\n({exact})"
        )

    # -- probe -------------------------------------------------------------------------
    def _on_hover(self, x: float, y: float) -> None:
        if self._pinned is None:
            self._submit_probe(x, y)

    def _on_click(self, x: float, y: float) -> None:
        self._pinned = (x, y)
        self._pinned_source = "landscape" if self.landscape is not None else "function"
        self._submit_probe(x, y)

    def unpin_probe(self) -> None:
        """Let the read-out follow the mouse again after a click pinned it (Esc)."""
        self._pinned = None
        self.contour.set_cursor(None, None)
        self.readout.setText("Hover over the contour map.\nClick to pin, Esc to let go.")

    def _on_leave(self) -> None:
        if self._pinned is None:
            self.contour.set_cursor(None, None)

    def _on_critical_row(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.critical):
            p = self.critical[row]
            self._on_click(p.x, p.y)

    def _submit_probe(self, x: float, y: float) -> None:
        if self.landscape is not None:
            self._probe_landscape(x, y)
            return
        if self.result is None:
            return
        self.probe_runner.submit(ProbeRequest(self.settings.text, tuple(sorted(self.settings.params.items())),
                                              float(x), float(y)))

    def _probe_landscape(self, x: float, y: float) -> None:
        """Read the nearest node of the landscape's grid (the map's own numbers)."""
        r = self.landscape.result
        i = int(np.abs(r.x - x).argmin())
        j = int(np.abs(r.y - y).argmin())
        loss, accuracy = float(r.loss[j, i]), float(r.accuracy[j, i])
        self.readout.setText(
            f"(a, b)   = ({r.x[i]:.4f}, {r.y[j]:.4f})  nearest node\n"
            f"loss     = {_fmt(loss)}\n"
            f"accuracy = {_fmt(100 * accuracy)}%")
        self.contour.set_cursor(float(r.x[i]), float(r.y[j]),
                                f"loss = {_fmt(loss)}\naccuracy = {_fmt(100 * accuracy)}%")

    def _on_probe(self, job: JobResult) -> None:
        info = job.value
        if job.request.text != self.settings.text or self.landscape is not None:
            return
        fx, fy = info.gradient
        h = np.asarray(info.hessian, dtype=float)
        ev = ", ".join(_fmt(v) for v in info.eigenvalues)
        shape = getattr(info, "curvature", info.kind)
        if info.kind in POINT_STYLES:
            shape = f"{shape}; critical point: {info.kind}"
        self.readout.setText(
            f"(x, y)  = ({info.x:.4f}, {info.y:.4f})\n"
            f"f       = {_fmt(info.value)}\n"
            f"∇f      = ({_fmt(fx)}, {_fmt(fy)})\n"
            f"|∇f|    = {_fmt(info.grad_norm)}\n"
            f"Hessian = [[{_fmt(h[0, 0])}, {_fmt(h[0, 1])}], [{_fmt(h[1, 0])}, {_fmt(h[1, 1])}]]\n"
            f"λ       = {ev}   ({shape})"
        )
        self.contour.set_cursor(info.x, info.y, f"f = {_fmt(info.value)}\n|∇f| = {_fmt(info.grad_norm)}")
