"""Loss-surface panel: a 3-D surface linked to a contour map of any f(x, y) (seeds 001, 002).

The panel keeps its settings in a plain :class:`SurfaceSettings` object, turns them into a
frozen :class:`engine.surfaces.SurfaceRequest` and hands that to a :class:`JobRunner`.
Three pipelines run independently, each latest-wins: the surface itself, the critical
points (slower, started when the surface settles) and the point probe under the mouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
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
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from app import export
from app.contour_view import POINT_STYLES, ContourView
from app.gl.surface_view import create_surface_view
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts
from engine import surfaces
from engine.expressions import ExpressionError

RESOLUTIONS = (32, 64, 96, 128, 192, 256, 384, 512)
DEFAULT_RESOLUTION = 128
PREVIEW_RESOLUTION = 48
SETTLE_MS = 150  # full resolution this long after the last slider movement
CRITICAL_DELAY_MS = 250
BUSY_DELAY_MS = 200  # show the progress bar only for work that takes longer than this


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
        self.edit.setMaxLength(1_000_000)  # the engine refuses long input with a message
        self.edit.setPlaceholderText("f(x, y), e.g. a*x**2 + b*y**2")
        self.edit.setToolTip(
            "Type f(x, y) and press Enter.\nOperators: + - * / ** (powers), unary minus.\n"
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
    criticalPointsDrawn = Signal(object)

    def __init__(self, parent=None, settings: SurfaceSettings | None = None):
        super().__init__(parent)
        self.settings = settings or SurfaceSettings()
        self.result: surfaces.SurfaceResult | None = None
        self.critical: list = []
        self.expression = None
        self._param_sliders: dict[str, QLabeledDoubleSlider] = {}
        self._pinned: tuple[float, float] | None = None
        self._frame_key = None
        self.frame_levels: tuple[float, float] | None = None  # colour levels on screen
        self._frame_z: tuple[float, float] | None = None

        self.surface_runner = JobRunner(surfaces.compute_surface, "surface", self)
        self.critical_runner = JobRunner(surfaces.compute_critical_points, "critical", self)
        self.probe_runner = JobRunner(_probe, "probe", self)
        self.surface_runner.finished.connect(self._on_surface)
        self.surface_runner.failed.connect(self._on_surface_failed)
        self.surface_runner.busyChanged.connect(self._on_busy)
        self.critical_runner.finished.connect(self._on_critical)
        self.critical_runner.failed.connect(self._on_critical_failed)
        self.probe_runner.finished.connect(self._on_probe)

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

        self.param_box = QGroupBox("Parameters")
        self.param_form = QFormLayout(self.param_box)
        column.addWidget(self.param_box)

        rbox = QGroupBox("Range and resolution")
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
        column.addWidget(cbox)

        sbox = QGroupBox("3-D view")
        slay = QVBoxLayout(sbox)
        self.wire_check = QCheckBox("Wireframe (W)")
        self.wire_check.toggled.connect(self._on_wireframe)
        slay.addWidget(self.wire_check)
        column.addWidget(sbox)

        dbox = QGroupBox("Derivatives")
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

        kbox = QGroupBox("Critical points")
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
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addWidget(self.progress)
        rcol.addWidget(views, 1)

        controls_beside_views(self, controls, right, 340)
        panel_shortcuts(self, [(Qt.Key.Key_Escape, self.unpin_probe),
                               ("W", self.wire_check.toggle), ("H", self.fill_check.toggle),
                               ("G", self.arrows_check.toggle), ("C", self.critical_check.toggle)])

    def _apply_settings_to_widgets(self) -> None:
        s = self.settings
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
        self._update_note()

    def _update_note(self) -> None:
        if self.settings.preset:
            self.note.setText(surfaces.preset(self.settings.preset).note)
            self.note.show()
        else:
            self.note.hide()

    # -- public API (used by the menu, the command line and tests) ---------------------
    def set_expression(self, text: str) -> None:
        """Ask for a new function; the old plot stays until the new one is valid."""
        self.settings = replace(self.settings, text=text, preset=None)
        self.preset_box.setCurrentIndex(0)
        self.expr.setText(text)
        self._update_note()
        self.refresh()

    def set_preset(self, key: str) -> None:
        """Show a preset surface with its own ranges and parameters."""
        p = surfaces.preset(key)
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

    def refresh(self) -> None:
        """Submit the full-resolution request for the current settings."""
        self._settle.stop()
        self.surface_runner.submit(self.settings.request())

    def export(self, path: str | Path, view: str = "auto") -> Path:
        """Write the current figure: .png (3-D, contour or both), .svg (contour) or .csv (grid)."""
        return export.export_surface_panel(self, Path(path), view)

    def shutdown(self) -> None:
        """Stop this panel's workers (the window also stops every runner on quit)."""
        for runner in (self.surface_runner, self.critical_runner, self.probe_runner):
            runner.shutdown()

    # -- control handlers --------------------------------------------------------------
    def _on_preset(self, index: int) -> None:
        key = self.preset_box.itemData(index)
        if key is None:
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
        self.settings = replace(self.settings, level_spacing=self.spacing_box.itemData(index))
        self.refresh()

    def _on_fill(self, on: bool) -> None:
        self.settings = replace(self.settings, filled=on)
        self.contour.set_fill(on)
        if self.result is not None:
            self.contour.set_level_curves(self.result.curves, self.result.levels)

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

    def _on_surface(self, job: JobResult) -> None:
        result = job.value
        self.expr.clear_error()
        self.result = result
        self.expression = result.expression
        self._rebuild_parameters(result.expression.parameters, result.expression.defaults)
        grid = result.grid
        if not grid.finite:
            self.contour.clear_plot()
            self.view3d.setSurface(grid.x, grid.y, grid.z, result.levels)
            self.status.emit("f has no finite value in this range: nothing to draw.")
            self.surfaceDrawn.emit(result)
            return
        levels, z_range = self._steady_frame(job.request, result)
        knots = color_knots(result, levels) if job.request.level_spacing == "log" else None
        self.view3d.setColorKnots(knots)
        self.contour.set_field(grid.x, grid.y, grid.z, levels, knots)
        self.contour.set_level_curves(result.curves, levels)
        self.contour.set_arrows(result.field if job.request.arrows else None)
        self.view3d.setSurface(grid.x, grid.y, grid.z, levels, z_range)
        # Mark the map dirty now, so both views are painted and shown in the same frame.
        self.contour.viewport().update()
        self._show_formulas(result.expression)
        holes = int(np.count_nonzero(np.isnan(grid.z)))
        note = f", {holes} undefined points left as holes" if holes else ""
        self.status.emit(f"f(x, y) = {result.expression.text}: {grid.z.shape[1]}×{grid.z.shape[0]} grid "
                         f"in {job.seconds * 1000:.0f} ms{note}")
        if job.request.resolution == self.settings.resolution and self.settings.critical_points:
            self._critical_timer.start()
        self.surfaceDrawn.emit(result)

    def _steady_frame(self, request, result) -> tuple[tuple[float, float], tuple[float, float]]:
        """Colour levels and 3-D height box that only grow while one function is explored.

        Refitting both to every new grid would hide what a parameter does (a steeper bowl
        would look the same, only its tick labels would change); so while the text and the
        window stay the same they widen as needed and stay put otherwise. A new function,
        window or spacing, or a surface that shrank to under a tenth of the frame, refits.
        """
        key = (request.text, request.x_range, request.y_range, request.level_spacing)
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
        if self.settings.critical_points and self.result is not None:
            self.critical_runner.submit(self.settings.request())

    def _on_critical(self, job: JobResult) -> None:
        if job.request != self.settings.request():
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
        if self.result is None:
            return
        self.probe_runner.submit(ProbeRequest(self.settings.text, tuple(sorted(self.settings.params.items())),
                                              float(x), float(y)))

    def _on_probe(self, job: JobResult) -> None:
        info = job.value
        if job.request.text != self.settings.text:
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
