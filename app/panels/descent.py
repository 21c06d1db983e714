"""Gradient-descent lab: optimizers racing down the surface panel's function (seeds 001-003).

The race is computed whole on a worker (``engine.optimizers.compute_race_steps``), then
played back: a timer moves a frame index along the precomputed trajectories and each tick
draws the state at that index, so a slow paint skips frames instead of queueing them.

When the surface panel shows a real landscape, the same optimizers run restricted to its
plane: f(a, b) is the network's loss at theta* + a d1 + b d2 and its gradient the full one
projected onto d1 and d2 (``engine.landscape.PlaneField``), a backward pass per step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
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

from app import session
from app.contour_view import ContourView, vector_segments
from app.gl.surface_view import create_surface_view
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts, signals_blocked
from engine import optimizers, surfaces
from engine.landscape import PlaneField

#: One colour per method (colour-blind-safe set), used in every view and the legend.
COLORS = {
    "sgd": "#e41a1c",
    "momentum": "#ff7f00",
    "nesterov": "#a65628",
    "adagrad": "#984ea3",
    "rmsprop": "#4daf4a",
    "adam": "#377eb8",
    "adamw": "#f781bf",
}
LABELS = {"sgd": "SGD", "momentum": "Momentum", "nesterov": "Nesterov", "adagrad": "AdaGrad",
          "rmsprop": "RMSProp", "adam": "Adam", "adamw": "AdamW"}
FPS = 30
LOG_LOSS_LABEL = "f − min f + 1e-12 (log)"
BASINS_ON_LANDSCAPE = ("Basin maps need a typed function: on the network's plane every step of "
                      "every start is a backward pass over the data (a 128 × 128 map would take "
                      "hours). Race optimizers from clicked starts instead.")
LR_RANGE = (-4.0, 0.5)  # log10 of the learning-rate slider's ends


@dataclass
class DescentSettings:
    """Everything the user set in the descent panel (plain data)."""

    methods: tuple[str, ...] = ("sgd", "momentum", "adam")
    start: tuple[float, float] = (1.5, 0.01)  # on the saddle: slide in, linger, escape
    lr: float = 0.05
    steps: int = 300
    constants: dict[str, dict[str, float]] = field(default_factory=dict)
    clip: float | None = None
    l2: float = 0.0
    schedule: str = "constant"
    noise: float = 0.0
    seed: int = 0
    speed: int = 2  # steps advanced per animation frame


def _value_range(z: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) finite value of a drawn field, None if it has none."""
    finite = z[np.isfinite(z)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _slider_to_lr(value: int) -> float:
    lo, hi = LR_RANGE
    return 10 ** (lo + (hi - lo) * value / 1000.0)


def _lr_to_slider(lr: float) -> int:
    lo, hi = LR_RANGE
    return int(round((math.log10(max(lr, 1e-12)) - lo) / (hi - lo) * 1000.0))


@dataclass(frozen=True, eq=False)
class LossMap:
    """The loss over a landscape's plane, ready for the descent views (whatever metric the
    surface panel colours by, the optimizers minimise the loss)."""

    field: PlaneField
    grid: object  # engine.surfaces.Grid
    levels: tuple[float, float]
    curves: list
    description: str


def compute_loss_map(view) -> LossMap:
    """Job: the loss grid, its levels and level curves of a surface panel LandscapeView."""
    result, job = view.result, view.request
    if view.metric == "loss":
        grid, curves = view.grid, view.curves
    else:
        grid = result.to_grid("loss")
        curves = surfaces.level_curves(grid, surfaces.default_levels(grid, job.n_levels,
                                                                    job.level_spacing))
    request = result.request
    description = (f"f(a, b) = loss of the digits network at θ* + a·d1 + b·d2 "
                   f"({request.directions} directions, {result.plane.n} samples)\n"
                   f"Optimizers step along (⟨∇L, d1⟩, ⟨∇L, d2⟩), the gradient projected onto "
                   f"the plane: one backward pass per step. × marks the trained weights.")
    return LossMap(PlaneField(result.plane), grid, grid.levels(), curves, description)


@dataclass(frozen=True)
class RaceResult:
    """The race and, for every point of every path, the gradient of f (for the arrows)."""

    trajectories: list
    gradients: list  # (k + 1, 2) arrays, one per trajectory


def compute_race_with_gradients(request):
    """Generator job: run the race (progress fractions), then grad f along every path.

    On a plane the gradients the optimizers read are kept (a second backward pass per point
    would double the cost); they include the L2 term, which the arrows then show too.
    """
    trajectories = yield from optimizers.compute_race_steps(request)
    if request.field is not None:
        return RaceResult(list(trajectories), [t.gradients for t in trajectories])
    expression = surfaces.parse_cached(request.text)
    params = dict(request.params)
    gradients = []
    for t in trajectories:
        with np.errstate(all="ignore"):
            fx, fy = expression.gradient(t.points[:, 0], t.points[:, 1], **params)
        gradients.append(np.column_stack([fx, fy]))
    return RaceResult(list(trajectories), gradients)


class DescentPanel(QWidget):
    """Race optimizers from a clicked start point on the surface panel's function."""

    title = "Gradient descent"
    status = Signal(str)
    raceComputed = Signal(object)  # list of Trajectory
    frameShown = Signal(int)

    def __init__(self, surface_panel, parent=None, settings: DescentSettings | None = None):
        super().__init__(parent)
        self.surface_panel = surface_panel
        self.settings = settings or DescentSettings()
        self.trajectories: list = []
        self.frame = 0
        self._cursor_time = 0.0
        self.runner = JobRunner(compute_race_with_gradients, "descent", self)
        self.gradients: list = []
        self.runner.finished.connect(self._on_race)
        self.runner.failed.connect(self._on_race_failed)
        self.loss_map: LossMap | None = None  # the landscape's loss, while one is shown
        self.map_values: tuple[float, float] | None = None  # lowest and highest f on the map
        self.map_runner = JobRunner(compute_loss_map, "descent-map", self)
        self.map_runner.finished.connect(self._on_loss_map)
        self.map_runner.failed.connect(self._on_race_failed)
        self._timer = QTimer(self, interval=int(1000 / FPS))
        self._autoplay = False  # play the race being computed when it arrives
        self._timer.timeout.connect(self._tick)
        self._rerun = QTimer(self, singleShot=True, interval=120)
        self._rerun.timeout.connect(self.run)
        self._build()
        surface_panel.surfaceDrawn.connect(self._on_surface)
        surface_panel.landscapeDrawn.connect(self._on_landscape)
        if getattr(surface_panel, "landscape", None) is not None:
            self._on_landscape(surface_panel.landscape)
        elif surface_panel.result is not None:
            self._on_surface(surface_panel.result)

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        controls = self._controls = QWidget()
        column = QVBoxLayout(controls)

        self.function_label = QLabel()
        self.function_label.setWordWrap(True)
        self.function_label.setToolTip("The function and window come from the Loss surface tab")
        column.addWidget(self.function_label)

        obox = QGroupBox("Optimizers")
        olay = QGridLayout(obox)
        self.method_checks: dict[str, QCheckBox] = {}
        for i, method in enumerate(optimizers.METHODS):
            check = QCheckBox(LABELS[method])
            check.setChecked(method in self.settings.methods)
            check.setStyleSheet(f"QCheckBox {{ color: {COLORS[method]}; font-weight: bold; }}")
            check.toggled.connect(self._on_methods)
            olay.addWidget(check, i // 2, i % 2)
            self.method_checks[method] = check
        column.addWidget(obox)

        pbox = QGroupBox("Step size and start")
        play = QFormLayout(pbox)
        self.lr_slider = QSlider(Qt.Orientation.Horizontal)
        self.lr_slider.setRange(0, 1000)
        self.lr_slider.setValue(_lr_to_slider(self.settings.lr))
        self.lr_slider.setToolTip("Learning rate ε (log scale): x' = x − ε ∇f(x)  (seed 002)")
        self.lr_label = QLabel()
        self.lr_slider.valueChanged.connect(self._on_lr)
        lr_row = QHBoxLayout()
        lr_row.addWidget(self.lr_slider, 1)
        lr_row.addWidget(self.lr_label)
        play.addRow("ε =", lr_row)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10000)
        self.steps_spin.setValue(self.settings.steps)
        self.steps_spin.setKeyboardTracking(False)
        self.steps_spin.valueChanged.connect(self._on_steps)
        play.addRow("steps", self.steps_spin)
        self.start_x, self.start_y = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, value in ((self.start_x, self.settings.start[0]), (self.start_y, self.settings.start[1])):
            spin.setRange(-1e4, 1e4)
            spin.setDecimals(3)
            spin.setSingleStep(0.1)
            spin.setValue(value)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._on_start_typed)
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_x)
        start_row.addWidget(self.start_y)
        play.addRow("start (click the map)", start_row)
        column.addWidget(pbox)

        cbox = QGroupBox("Method constants")
        clay = QFormLayout(cbox)
        self.constant_spins: dict[tuple[str, str], QDoubleSpinBox] = {}
        for method in ("momentum", "rmsprop", "adam"):
            for name, default in optimizers.DEFAULTS[method].items():
                if name == "eps":
                    continue
                spin = QDoubleSpinBox()
                spin.setRange(0.0, 0.99999)
                spin.setDecimals(5)
                spin.setSingleStep(0.01)
                spin.setValue(default)
                spin.setKeyboardTracking(False)
                spin.valueChanged.connect(self._on_constants)
                clay.addRow(f"{LABELS[method]} {name}", spin)
                self.constant_spins[(method, name)] = spin
        column.addWidget(cbox)

        xbox = QGroupBox("Extras")
        xlay = QFormLayout(xbox)
        self.clip_check = QCheckBox("clip |∇f| at")
        self.clip_spin = QDoubleSpinBox()
        self.clip_spin.setDecimals(3)  # with Qt's 2, the minimum 0.001 rounds to 0: no clip
        self.clip_spin.setRange(1e-3, 1e6)
        self.clip_spin.setValue(1.0)
        self.clip_check.setToolTip("Gradient clipping by norm: tames steep slopes (seed 001)")
        for w in (self.clip_check, self.clip_spin):
            (w.toggled if w is self.clip_check else w.valueChanged).connect(self._on_extras)
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.clip_check)
        clip_row.addWidget(self.clip_spin)
        xlay.addRow(clip_row)
        self.l2_spin = QDoubleSpinBox()
        self.l2_spin.setRange(0.0, 100.0)
        self.l2_spin.setDecimals(4)
        self.l2_spin.setSingleStep(0.01)
        self.l2_spin.setToolTip("L2 regularizer λ Σθ² (seed 003 eq. 7); its gradient 2λθ (eq. 8)")
        self.l2_spin.valueChanged.connect(self._on_extras)
        xlay.addRow("L2 λ", self.l2_spin)
        self.schedule_box = QComboBox()
        for name in ("constant", "step", "exponential", "cosine"):
            self.schedule_box.addItem(name)
        self.schedule_box.setToolTip("Learning-rate schedule")
        self.schedule_box.activated.connect(self._on_extras)
        xlay.addRow("schedule", self.schedule_box)
        self.noise_spin = QDoubleSpinBox()
        self.noise_spin.setRange(0.0, 100.0)
        self.noise_spin.setDecimals(3)
        self.noise_spin.setSingleStep(0.1)
        self.noise_spin.setToolTip("Gaussian noise added to the gradient, like mini-batch SGD (fixed seed)")
        self.noise_spin.valueChanged.connect(self._on_extras)
        xlay.addRow("gradient noise σ", self.noise_spin)
        self.arrows_check = QCheckBox("Arrows at the balls (A)")
        self.arrows_check.setToolTip("Dashed: −ε∇f, the step plain gradient descent would take there. "
                                     "Solid: the step the optimizer actually takes (momentum bends it).")
        self.arrows_check.setChecked(True)
        self.arrows_check.toggled.connect(lambda _on: self.show_frame(self.frame))
        xlay.addRow(self.arrows_check)
        column.addWidget(xbox)

        bbox = QGroupBox("Basins of attraction")
        blay = QGridLayout(bbox)
        self.basin_method = QComboBox()
        for method in optimizers.METHODS:
            self.basin_method.addItem(LABELS[method], method)
        self.basin_method.setToolTip("Run this optimizer from every point of a grid and colour each start "
                                     "by the minimum it reaches (same ε, steps and extras)")
        self.basin_size = QComboBox()
        for n in (64, 128, 256):
            self.basin_size.addItem(f"{n} × {n}", n)
        self.basin_size.setCurrentIndex(1)
        self.basin_button = QPushButton("Compute basin map")
        self.basin_button.clicked.connect(self.toggle_basins)
        self.basin_show = QCheckBox("show (B)")
        self.basin_show.setChecked(True)
        self.basin_show.toggled.connect(lambda on: self.basin_image.setVisible(on and self.basins is not None))
        self.basin_progress = QProgressBar()
        self.basin_progress.setRange(0, 100)
        self.basin_progress.setVisible(False)
        self.basin_summary = QLabel()
        self.basin_summary.setWordWrap(True)
        blay.addWidget(self.basin_method, 0, 0)
        blay.addWidget(self.basin_size, 0, 1)
        blay.addWidget(self.basin_button, 1, 0)
        blay.addWidget(self.basin_show, 1, 1)
        blay.addWidget(self.basin_progress, 2, 0, 1, 2)
        blay.addWidget(self.basin_summary, 3, 0, 1, 2)
        column.addWidget(bbox)

        rbox = QGroupBox("Results")
        rlay = QVBoxLayout(rbox)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["optimizer", "final f", "steps", "status"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(170)
        rlay.addWidget(self.table)
        column.addWidget(rbox)
        column.addStretch(1)

        # Playback bar.
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("One step forward (→)")
        self.step_button.clicked.connect(self.step)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the start (Home)")
        self.reset_button.clicked.connect(self.reset)
        self.speed_slider = QSlider(Qt.Orientation.Horizontal)
        self.speed_slider.setRange(1, 100)
        self.speed_slider.setValue(self.settings.speed)
        self.speed_slider.setToolTip("Steps per frame")
        self.speed_slider.valueChanged.connect(lambda v: setattr(self.settings, "speed", int(v)))
        self.frame_label = QLabel("step 0")
        bar = QHBoxLayout()
        for w in (self.play_button, self.step_button, self.reset_button):
            bar.addWidget(w)
        bar.addWidget(QLabel("speed"))
        bar.addWidget(self.speed_slider, 1)
        bar.addWidget(self.frame_label)
        self.race_progress = QProgressBar()
        self.race_progress.setRange(0, 100)
        self.race_progress.setMaximumWidth(160)
        self.race_progress.setFormat("racing %p%")
        self.race_progress.setToolTip("On a network's plane each step is a backward pass")
        self.race_progress.setVisible(False)
        bar.addWidget(self.race_progress)

        self.view3d = create_surface_view()
        self.view3d.setMinimumSize(280, 240)
        self.contour = ContourView()
        self.contour.setMinimumSize(280, 240)
        self.contour.clicked.connect(self.set_start)
        self.view3d.setClickHandler(self.set_start)  # a click on the 3-D surface works too
        self._trail_items = {}
        self._ball_items = {}
        for method in optimizers.METHODS:
            trail = pg.PlotCurveItem(pen=pg.mkPen(COLORS[method], width=2.2))
            trail.setZValue(15)
            ball = pg.ScatterPlotItem(size=13, brush=pg.mkBrush(COLORS[method]), pen=pg.mkPen("k", width=1.3))
            ball.setZValue(16)
            self.contour.plot.addItem(trail)
            self.contour.plot.addItem(ball)
            self._trail_items[method] = trail
            self._ball_items[method] = ball
        self.basins = None
        self.basin_image = pg.ImageItem(axisOrder="row-major")
        self.basin_image.setZValue(-5)  # over the heatmap, under curves and trails
        self.basin_image.setVisible(False)
        self.contour.plot.addItem(self.basin_image)
        self.basin_runner = JobRunner(optimizers.compute_basins, "basins", self)
        self.basin_runner.finished.connect(self._on_basins)
        self.basin_runner.failed.connect(self._on_basins_failed)
        self.basin_runner.progress.connect(lambda _id, f: self.basin_progress.setValue(int(100 * f)))
        self.grad_arrows = pg.PlotCurveItem(pen=pg.mkPen("#222", width=1.6, style=Qt.PenStyle.DashLine),
                                            connect="pairs")
        self.step_arrows = pg.PlotCurveItem(pen=pg.mkPen("#000", width=2.2), connect="pairs")
        for item in (self.grad_arrows, self.step_arrows):
            item.setZValue(18)
            self.contour.plot.addItem(item)
        self.start_marker = pg.ScatterPlotItem(symbol="star", size=16, brush=pg.mkBrush("w"),
                                               pen=pg.mkPen("k", width=1.2))
        self.start_marker.setZValue(17)
        self.contour.plot.addItem(self.start_marker)
        self.trained_marker = pg.ScatterPlotItem(symbol="x", size=15, brush=pg.mkBrush("k"),
                                                 pen=pg.mkPen("w", width=1))
        self.trained_marker.setZValue(17)
        self.trained_marker.setToolTip("θ*, the trained weights (a = b = 0)")
        self.trained_marker.setVisible(False)
        self.contour.plot.addItem(self.trained_marker)
        self.runner.progress.connect(lambda _id, f: self.race_progress.setValue(int(100 * f)))
        self.runner.busyChanged.connect(
            lambda busy: self.race_progress.setVisible(busy and self.on_landscape))

        self.loss_plot = pg.PlotWidget(background="w")
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLabel("left", LOG_LOSS_LABEL)
        self.loss_is_linear = False  # f itself, when a run fell far below the map
        self.loss_plot.setTitle("loss", color="k")
        self.grad_plot = pg.PlotWidget(background="w")
        self.grad_plot.setLogMode(y=True)
        self.grad_plot.setLabel("bottom", "step")
        self.grad_plot.setLabel("left", "|∇f| (log)")
        self.grad_plot.setTitle("gradient norm", color="k")
        for plot in (self.loss_plot, self.grad_plot):  # tick labels are the values themselves:
            plot.getAxis("left").enableAutoSIPrefix(False)  # no "(x1e+12)" on a log axis
        legend = self.loss_plot.addLegend(offset=(-8, 8), labelTextColor="k")
        self._loss_curves, self._grad_curves = {}, {}
        for method in optimizers.METHODS:
            pen = pg.mkPen(COLORS[method], width=2)
            self._loss_curves[method] = self.loss_plot.plot(pen=pen, name=LABELS[method])
            self._grad_curves[method] = self.grad_plot.plot(pen=pen)
        self._legend = legend
        self._cursor_lines = [pg.InfiniteLine(angle=90, pen=pg.mkPen("#888", style=Qt.PenStyle.DashLine))
                              for _ in range(2)]
        self.loss_plot.addItem(self._cursor_lines[0], ignoreBounds=True)
        self.grad_plot.addItem(self._cursor_lines[1], ignoreBounds=True)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.view3d)
        top.addWidget(self.contour)
        top.setSizes([500, 500])
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.loss_plot)
        bottom.addWidget(self.grad_plot)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(top)
        right_split.addWidget(bottom)
        right_split.setSizes([600, 260])
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addLayout(bar)
        rcol.addWidget(right_split, 1)

        controls_beside_views(self, controls, right, 390)

        panel_shortcuts(self, [(Qt.Key.Key_Space, self.toggle_play), (Qt.Key.Key_Right, self.step),
                               (Qt.Key.Key_Home, self.reset), (Qt.Key.Key_B, self.basin_show.toggle),
                               (Qt.Key.Key_A, self.arrows_check.toggle)])
        self.lr_label.setText(f"{self.settings.lr:.3g}")  # the slider only approximates it
        self._show_start()

    # -- public API --------------------------------------------------------------------
    def set_start(self, x: float, y: float) -> None:
        """Start every optimizer at (x, y) and race again."""
        self._put_start(x, y)
        self.run(autoplay=True)

    def _put_start(self, x: float, y: float) -> None:
        self.settings = replace(self.settings, start=(float(x), float(y)))
        for spin, value in ((self.start_x, x), (self.start_y, y)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._show_start()

    @property
    def on_landscape(self) -> bool:
        """True while the surface panel shows a real landscape (the race runs on its plane)."""
        return getattr(self, "_landscape", False)

    def run(self, autoplay: bool = False) -> None:
        """Compute the race for the current settings on the worker."""
        if self.on_landscape and self.loss_map is None:
            return  # the loss map is on its way; it starts the race
        surface = self.surface_panel.settings
        s = self.settings
        methods = tuple(m for m in optimizers.METHODS if m in s.methods)
        if not methods:
            self._clear_race()
            return
        if self.on_landscape:
            text, params, field = "landscape", (), self.loss_map.field
        else:
            text, params, field = surface.text, tuple(sorted(surface.params.items())), None
        request = optimizers.RaceRequest(
            text=text, params=params, field=field, methods=methods,
            starts=(tuple(s.start),), steps=int(s.steps), lr=float(s.lr),
            constants=tuple((m, tuple(sorted(c.items()))) for m, c in sorted(s.constants.items())),
            clip=s.clip, l2=float(s.l2), schedule=s.schedule, noise=float(s.noise), seed=int(s.seed),
        )
        # A race asked to play and still on its way keeps that wish when a newer request
        # (a debounced setting change) replaces it.
        self._autoplay = (autoplay or self._timer.isActive()
                          or (self.runner.busy and self._autoplay))
        self.runner.submit(request)

    def toggle_basins(self) -> None:
        """Start the basin map, or cancel the one being computed."""
        if self.basin_runner.busy:
            self.basin_runner.cancel()
            self._basin_done("Basin map cancelled.")
            return
        if self.on_landscape:
            self.status.emit(BASINS_ON_LANDSCAPE)
            return
        surface = self.surface_panel.settings
        s = self.settings
        method = self.basin_method.currentData()
        request = optimizers.BasinRequest(
            text=surface.text, params=tuple(sorted(surface.params.items())), method=method,
            x_range=tuple(surface.x_range), y_range=tuple(surface.y_range),
            n=int(self.basin_size.currentData()), steps=int(s.steps), lr=float(s.lr),
            constants=tuple(sorted(s.constants.get(method, {}).items())), clip=s.clip, l2=float(s.l2),
            schedule=s.schedule, noise=float(s.noise), seed=int(s.seed))
        self.basin_button.setText("Cancel")
        self.basin_progress.setValue(0)
        self.basin_progress.setVisible(True)
        self.basin_summary.setText(f"Running {LABELS[method]} from {request.n}² starts…")
        self.basin_runner.submit(request)

    def _basin_done(self, text: str) -> None:
        self.basin_button.setText("Compute basin map")
        self.basin_progress.setVisible(False)
        self.basin_summary.setText(text)

    def _on_basins(self, job: JobResult) -> None:
        basins = job.value
        self.basins = basins
        k = len(basins.minima)
        colors = [pg.mkColor(c) for c in ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                          "#e6ab02", "#a6761d", "#1f78b4")]
        lut = np.zeros((k + 2, 4), np.uint8)
        lut[0] = (90, 90, 90, 150)     # diverged or undefined
        lut[1] = (255, 255, 255, 0)    # still moving after the last step: transparent
        for i in range(k):
            c = colors[i % len(colors)]
            lut[i + 2] = (c.red(), c.green(), c.blue(), 120)
        image = (basins.labels + 2).astype(np.uint8)
        x, y = basins.x, basins.y
        dx = (x[-1] - x[0]) / max(len(x) - 1, 1)
        dy = (y[-1] - y[0]) / max(len(y) - 1, 1)
        self.basin_image.setImage(image, levels=(0, k + 1), lut=lut, autoLevels=False)
        self.basin_image.setRect(x[0] - dx / 2, y[0] - dy / 2, x[-1] - x[0] + dx, y[-1] - y[0] + dy)
        self.basin_image.setVisible(self.basin_show.isChecked())
        counts = basins.counts
        total = basins.labels.size
        parts = [f"({m[0]:.3g}, {m[1]:.3g}): {100 * c / total:.0f}%"
                 for m, c in zip(basins.minima, counts)]
        diverged = int(np.count_nonzero(basins.labels == optimizers.LABEL_DIVERGED))
        moving = int(np.count_nonzero(basins.labels == optimizers.LABEL_NOT_CONVERGED))
        self._basin_done(f"{LABELS[basins.method]} reaches {k} point(s): " + "; ".join(parts)
                         + f". Diverged {100 * diverged / total:.0f}%, still moving {100 * moving / total:.0f}%."
                         + f" ({job.seconds:.2f} s)")

    def _on_basins_failed(self, failure: JobFailure) -> None:
        self._basin_done(f"Basin map failed: {failure.message}")

    def toggle_play(self) -> None:
        if self._timer.isActive():
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if not self.trajectories:
            return
        if self.frame >= self._last_frame():
            self.frame = 0
        self._timer.start()
        self.play_button.setText("Pause")

    def pause(self) -> None:
        self._timer.stop()
        self.play_button.setText("Play")

    def step(self) -> None:
        self.pause()
        self.show_frame(min(self.frame + 1, self._last_frame()))

    def reset(self) -> None:
        self.pause()
        self.show_frame(0)

    def refresh(self) -> None:
        self.run()

    def export(self, path, view: str = "auto", progress=None):
        """Write the race: .png (3-D, contour or both), .svg (contour), .csv (trajectories),
        .gif or .mp4 (animated; ``progress(fraction)`` is told how far it is, and returning
        False cancels)."""
        from app import export

        return export.export_descent_panel(self, path, view, progress)

    # -- session ------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The race's settings and the view choices (the race itself is recomputed from
        them: it is deterministic, noise included). The playback position is not kept: it
        moves while the race plays, which would count as an unsaved change."""
        s = self.settings
        return {
            "methods": list(s.methods), "start": list(s.start), "lr": s.lr, "steps": s.steps,
            "constants": {f"{m}.{n}": spin.value() for (m, n), spin in self.constant_spins.items()},
            "clip": s.clip, "l2": s.l2, "schedule": s.schedule, "noise": s.noise, "seed": s.seed,
            "speed": s.speed, "arrows": self.arrows_check.isChecked(),
            "basin_method": self.basin_method.currentData(),
            "basin_size": self.basin_size.currentData(),
        }

    def restore_session_state(self, state: dict) -> None:
        """Show a :meth:`session_state`: all of it is checked first (a bad value raises
        :class:`app.session.SessionError` naming its key and changes nothing), then the
        race is run again."""
        values = self._read_state(state)
        self._timer.stop()
        with signals_blocked(*self.method_checks.values()):
            for method, check in self.method_checks.items():
                check.setChecked(method in values["methods"])
        widgets = [(self.lr_slider, _lr_to_slider(values["lr"])), (self.steps_spin, values["steps"]),
                   (self.start_x, values["start"][0]), (self.start_y, values["start"][1]),
                   (self.clip_check, values["clip"] is not None), (self.l2_spin, values["l2"]),
                   (self.noise_spin, values["noise"]), (self.speed_slider, values["speed"]),
                   (self.arrows_check, values["arrows"])]
        if values["clip"] is not None:
            widgets.append((self.clip_spin, values["clip"]))
        widgets += [(self.constant_spins[key], v) for key, v in values["constants"].items()]
        with signals_blocked(*(widget for widget, _ in widgets)):
            for widget, value in widgets:
                (widget.setChecked if isinstance(widget, QCheckBox) else widget.setValue)(value)
        for box, data in ((self.schedule_box, values["schedule"]),
                          (self.basin_method, values["basin_method"]),
                          (self.basin_size, values["basin_size"])):
            box.setCurrentIndex(max(box.findData(data), box.findText(str(data)), 0))
        constants = {}
        for (method, name), spin in self.constant_spins.items():
            constants.setdefault(method, {})[name] = spin.value()
        constants["adamw"] = dict(constants.get("adam", {}))
        constants["nesterov"] = dict(constants.get("momentum", {}))
        self.settings = DescentSettings(
            methods=tuple(values["methods"]), start=tuple(values["start"]), lr=values["lr"],
            steps=values["steps"], constants=constants, clip=values["clip"], l2=values["l2"],
            schedule=values["schedule"], noise=values["noise"], seed=values["seed"],
            speed=values["speed"])
        self.lr_label.setText(f"{values['lr']:.3g}")
        self._show_start()
        self._rerun.stop()
        self.run()

    def _read_state(self, state) -> dict:
        if not isinstance(state, dict):
            raise session.SessionError("the gradient-descent state must be an object")
        d = DescentSettings()
        num, whole = session.expect_number, session.expect_int
        methods = session.expect_list(state, "methods", max_length=len(optimizers.METHODS),
                                      default=list(d.methods))
        for i, _ in enumerate(methods):
            session.expect_str(methods, i, "methods", choices=optimizers.METHODS)
        start = session.expect_list(state, "start", max_length=2, default=list(d.start))
        if len(start) != 2:
            raise session.SessionError("expected [x, y]", "start")
        lo, hi = 10 ** LR_RANGE[0], 10 ** LR_RANGE[1]
        clip = state.get("clip", d.clip)
        if clip is not None:
            clip = num(state, "clip", "", self.clip_spin.minimum(), self.clip_spin.maximum())
        given = session.expect_dict(state, "constants", default={})
        constants = {}
        for (method, name), spin in self.constant_spins.items():
            key = f"{method}.{name}"
            if key in given:
                constants[(method, name)] = num(given, key, "constants", spin.minimum(),
                                                spin.maximum())
        schedules = [self.schedule_box.itemText(i) for i in range(self.schedule_box.count())]
        sizes = [self.basin_size.itemData(i) for i in range(self.basin_size.count())]
        size = whole(state, "basin_size", "", default=128)
        if size not in sizes:
            raise session.SessionError(f"expected one of {', '.join(map(str, sizes))}, got {size}",
                                       "basin_size")
        return {
            "methods": [m for m in optimizers.METHODS if m in methods],
            "start": [num(start, i, "start", -1e4, 1e4) for i in range(2)],
            "lr": num(state, "lr", "", lo, hi, default=d.lr),
            "steps": whole(state, "steps", "", self.steps_spin.minimum(), self.steps_spin.maximum(),
                           default=d.steps),
            "constants": constants, "clip": clip,
            "l2": num(state, "l2", "", 0.0, self.l2_spin.maximum(), default=d.l2),
            "schedule": session.expect_str(state, "schedule", choices=schedules, default=d.schedule),
            "noise": num(state, "noise", "", 0.0, self.noise_spin.maximum(), default=d.noise),
            "seed": whole(state, "seed", "", 0, 2**31 - 1, default=d.seed),
            "speed": whole(state, "speed", "", 1, 100, default=d.speed),
            "arrows": session.expect_bool(state, "arrows", default=True),
            "basin_method": session.expect_str(state, "basin_method", choices=optimizers.METHODS,
                                               default=optimizers.METHODS[0]),
            "basin_size": size,
        }

    def shutdown(self) -> None:
        self._timer.stop()
        self.runner.shutdown()
        self.map_runner.shutdown()
        self.basin_runner.shutdown()

    # -- handlers ----------------------------------------------------------------------
    def _on_landscape(self, view) -> None:
        """The surface panel shows a real landscape: race on its plane once its loss map is in."""
        if self.loss_map is not None and view.result.plane is self.loss_map.field.plane \
                and view.metric == "loss":
            return  # the same plane (only the colouring changed): keep the race
        self._landscape = True
        self._rerun.stop()
        self.runner.cancel()
        if self.basin_runner.busy:
            self.basin_runner.cancel()
            self._basin_done("")
        self.basins = None
        self.basin_image.setVisible(False)
        self.basin_button.setEnabled(False)
        self.basin_button.setToolTip(BASINS_ON_LANDSCAPE)
        if self.loss_map is None or view.result.plane is not self.loss_map.field.plane:
            self._clear_race()
            self.loss_map = None
            self.function_label.setText("Real landscape of the digits network (loading its loss…)")
        self.map_runner.submit(view)
        self._surface_key = None  # the next function races again, even the same one

    def _on_loss_map(self, job: JobResult) -> None:
        if not self.on_landscape:
            return
        fresh = self.loss_map is None or job.value.field.plane is not self.loss_map.field.plane
        self.loss_map = loss_map = job.value
        grid = loss_map.grid
        self.function_label.setText(loss_map.description)
        self.contour.set_labels("a (along d1)", "b (along d2)", "loss")
        self.view3d.setAxisLabels("a", "b", "loss")
        self.contour.set_field(grid.x, grid.y, grid.z, loss_map.levels)
        self.map_values = _value_range(grid.z)
        self.contour.set_level_curves(loss_map.curves, loss_map.levels)
        self.view3d.setSurface(grid.x, grid.y, grid.z, loss_map.levels, loss_map.levels)
        self.view3d.setWireframe(False)
        self.trained_marker.setData([0.0], [0.0])
        self.trained_marker.setVisible(True)
        if not fresh:
            return
        span = float(grid.x[-1])
        x, y = self.settings.start
        if not (abs(x) <= span and abs(y) <= span):  # a start off the map would mislead
            self._put_start(-0.6 * span, 0.5 * span)
        if self.isVisible():
            self._rerun.start()
        else:
            self._stale = True  # race when the tab is shown: each step is a backward pass

    def _on_surface(self, result) -> None:
        if getattr(self, "_landscape", False):
            self._landscape = False
            self.loss_map = None
            self.map_runner.cancel()
            self.trained_marker.setVisible(False)
            self.basin_button.setEnabled(True)
            self.basin_button.setToolTip("")
            self.contour.set_labels("x", "y", "f(x, y)")
            self.view3d.setAxisLabels()
        grid = result.grid
        self.function_label.setText(f"f(x, y) = {result.expression.text}\n(change it in the Loss surface tab)")
        if not grid.finite:
            self.contour.clear_plot()
            self.map_values = None
            return
        levels = self.surface_panel.frame_levels or result.levels
        self.contour.set_field(grid.x, grid.y, grid.z, levels)
        self.map_values = _value_range(grid.z)
        self.contour.set_level_curves(result.curves, levels)
        self.contour.set_arrows(None)
        self.view3d.setSurface(grid.x, grid.y, grid.z, levels, levels)
        self.view3d.setWireframe(False)
        key = (result.request.text, result.request.params, result.request.x_range, result.request.y_range)
        if key != getattr(self, "_surface_key", None):
            first = not hasattr(self, "_surface_key")
            self._surface_key = key
            self.basins = None  # a map of another function would mislead
            self.basin_image.setVisible(False)
            self.basin_summary.clear()
            if self.isVisible() or first:  # the first race also loads the compiled loop
                self._rerun.start()
            else:
                self._stale = True  # race when the tab is shown, not in the background

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self._stale = False
            self._rerun.start()

    def _on_methods(self) -> None:
        methods = tuple(m for m, c in self.method_checks.items() if c.isChecked())
        self.settings = replace(self.settings, methods=methods)
        self._rerun.start()

    def _on_lr(self, value: int, run: bool = True) -> None:
        lr = _slider_to_lr(value)
        self.lr_label.setText(f"{lr:.3g}")
        self.settings = replace(self.settings, lr=lr)
        if run:
            self._rerun.start()

    def _on_steps(self, value: int) -> None:
        self.settings = replace(self.settings, steps=int(value))
        self._rerun.start()

    def _on_start_typed(self) -> None:
        self.set_start(self.start_x.value(), self.start_y.value())

    def _on_constants(self) -> None:
        constants: dict[str, dict[str, float]] = {}
        for (method, name), spin in self.constant_spins.items():
            constants.setdefault(method, {})[name] = spin.value()
        # AdamW shares Adam's moment constants.
        constants["adamw"] = {k: v for k, v in constants.get("adam", {}).items()}
        constants["nesterov"] = dict(constants.get("momentum", {}))
        self.settings = replace(self.settings, constants=constants)
        self._rerun.start()

    def _on_extras(self, *_args) -> None:
        self.settings = replace(
            self.settings, clip=self.clip_spin.value() if self.clip_check.isChecked() else None,
            l2=self.l2_spin.value(), schedule=self.schedule_box.currentText(), noise=self.noise_spin.value())
        self._rerun.start()

    # -- results -----------------------------------------------------------------------
    def _on_race(self, job: JobResult) -> None:
        self.trajectories = list(job.value.trajectories)
        self.gradients = list(job.value.gradients)
        self._fill_legend()
        self._fill_table()
        self._fill_plots()
        self.raceComputed.emit(self.trajectories)
        self.show_frame(0)
        messages = ", ".join(f"{LABELS[t.method]}: {t.message}" for t in self.trajectories)
        self.status.emit(messages)
        if self._autoplay:
            self.play()

    def _on_race_failed(self, failure: JobFailure) -> None:
        self.pause()
        self.status.emit(f"The race could not run: {failure.message}")

    def _clear_race(self) -> None:
        self.trajectories = []
        self.gradients = []
        self.pause()
        self._fill_legend()
        self._fill_table()
        self._fill_plots()
        self.show_frame(0)

    def animation_frames(self) -> range:
        """Every step of the race, from the start to the last optimizer's last step."""
        return range(0, self._last_frame() + 1)

    def _last_frame(self) -> int:
        return max((len(t.points) - 1 for t in self.trajectories), default=0)

    def _tick(self) -> None:
        # Each tick shows the state a fixed number of steps further on: if painting is slow,
        # frames are skipped, never queued.
        target = min(self.frame + max(1, self.settings.speed), self._last_frame())
        self.show_frame(target)
        if target >= self._last_frame():
            self.pause()

    def show_frame(self, frame: int) -> None:
        """Draw every optimizer at step ``frame`` (clamped to its own last step)."""
        self.frame = int(frame)
        balls3d, colors3d, paths3d = [], [], []
        drawn = set()
        for t in self.trajectories:
            k = min(self.frame, len(t.points) - 1)
            pts = t.points[: k + 1]
            self._trail_items[t.method].setData(pts[:, 0], pts[:, 1])
            self._ball_items[t.method].setData([pts[-1, 0]], [pts[-1, 1]])
            zs = t.values[: k + 1]
            paths3d.append((np.column_stack([pts, zs]), COLORS[t.method]))
            balls3d.append((pts[-1, 0], pts[-1, 1], zs[-1]))
            colors3d.append(COLORS[t.method])
            drawn.add(t.method)
        for method in optimizers.METHODS:
            if method not in drawn:
                self._trail_items[method].setData([], [])
                self._ball_items[method].setData([], [])
        self._show_arrows()
        self.view3d.setPaths(paths3d)
        self.view3d.setBalls(np.array(balls3d, dtype=float).reshape(-1, 3), colors3d)
        # The step cursor on the loss and |grad| plots repaints both plots; while playing it
        # moves about 8 times a second, which keeps the animation at the timer's rate.
        now = time.monotonic()
        if not self._timer.isActive() or now - self._cursor_time > 0.12 or self.frame >= self._last_frame():
            self._cursor_time = now
            for line in self._cursor_lines:
                line.setValue(self.frame)
        self.frame_label.setText(f"step {self.frame} / {self._last_frame()}")
        self.frameShown.emit(self.frame)

    def _show_arrows(self) -> None:
        """At each ball: −ε∇f (dashed) and the step actually taken next (solid)."""
        if not self.arrows_check.isChecked() or not self.trajectories:
            self.grad_arrows.setData([], [])
            self.step_arrows.setData([], [])
            return
        X, Y, GU, GV, SU, SV = ([] for _ in range(6))
        for t, g in zip(self.trajectories, self.gradients):
            k = min(self.frame, len(t.points) - 1)
            x, y = t.points[k]
            X.append(x)
            Y.append(y)
            GU.append(-t.lr * g[k, 0])
            GV.append(-t.lr * g[k, 1])
            if k + 1 < len(t.points):
                SU.append(t.points[k + 1, 0] - x)
                SV.append(t.points[k + 1, 1] - y)
            else:
                SU.append(np.nan)
                SV.append(np.nan)
        self.grad_arrows.setData(*vector_segments(X, Y, GU, GV))
        self.step_arrows.setData(*vector_segments(X, Y, SU, SV))

    def _show_start(self) -> None:
        self.start_marker.setData([self.settings.start[0]], [self.settings.start[1]])

    def _fill_legend(self) -> None:
        """One legend line per racing optimizer on the map (and so in every export)."""
        racing = {t.method for t in self.trajectories}
        for show in (False, True):  # all out, then in again: the lines keep METHODS order
            for method in optimizers.METHODS:
                self.contour.legend_entry(self._trail_items[method], LABELS[method],
                                          show and method in racing)
        if self.trajectories:
            self.contour.place_legend(np.concatenate([t.points for t in self.trajectories]))

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.trajectories))
        for row, t in enumerate(self.trajectories):
            final = t.values[-1] if len(t.values) else float("nan")
            items = [LABELS[t.method], f"{final:.6g}" if np.isfinite(final) else "undefined",
                     str(len(t.points) - 1), t.message]
            for col, text in enumerate(items):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setForeground(QColor(COLORS[t.method]))
                self.table.setItem(row, col, item)

    def _set_loss_scale(self, lowest: float, highest: float) -> None:
        plot = self.loss_plot
        if self.loss_is_linear:
            plot.setLogMode(y=False)
            plot.setLabel("left", "f (a run fell far below the map)")
            margin = 0.1 * max(highest - lowest, 1e-9)
            plot.setYRange(lowest - margin, highest + margin, padding=0)
        else:
            plot.setLogMode(y=True)
            plot.setLabel("left", LOG_LOSS_LABEL)
            plot.enableAutoRange(axis="y")

    def _fill_plots(self) -> None:
        # A path that starts where f is undefined has no value at all: it sets no floor.
        floor = min((float(np.nanmin(t.values)) for t in self.trajectories
                     if np.isfinite(t.values).any()), default=0.0)
        # A run that went downhill far beyond the map (f unbounded below, as on a saddle)
        # would make f - min f a flat line near its own depth: show f itself instead, on
        # the map's scale, and let that run fall out of the bottom of the plot.
        lowest, highest = self.map_values or (floor, floor)
        self.loss_is_linear = floor < lowest - (highest - lowest)
        self._set_loss_scale(lowest, highest)
        self._legend.clear()
        drawn = set()
        for t in self.trajectories:
            steps = np.arange(len(t.values))
            if self.loss_is_linear:
                loss = t.values
            else:
                loss = np.maximum(t.values - floor, 0.0) + 1e-12
            self._loss_curves[t.method].setData(steps, loss)
            self._grad_curves[t.method].setData(steps, np.maximum(t.grad_norms, 1e-16))
            self._loss_curves[t.method].show()
            self._grad_curves[t.method].show()
            self._legend.addItem(self._loss_curves[t.method], LABELS[t.method])
            drawn.add(t.method)
        for method in optimizers.METHODS:
            if method not in drawn:
                self._loss_curves[method].setData([], [])
                self._grad_curves[method].setData([], [])
                self._loss_curves[method].hide()
                self._grad_curves[method].hide()
