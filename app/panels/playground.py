"""Network playground: train a small network on 2-D points (or digits) and watch it learn.

The backpropagation lab's second room (seed 003, eqs. 28-45 and 53-67). Training runs on
the panel's worker in chunks: each chunk takes optimizer steps for about 15 ms, then
snapshots what the views need (decision map, hidden-unit maps, new loss history, accuracy)
as copies. The GUI thread only draws snapshots: while playing, a delivered chunk submits
the next one before it is drawn, so the worker trains while the GUI paints, and a slow
paint delays the next picture instead of queueing pictures.

The :class:`TrainingSession` (the engine's ``Trainer`` and its data) is built and touched on
the worker only; a new setting makes a new session, and snapshots of an older one are
dropped on arrival.

Training is deterministic: the settings (with their seed) and the number of steps taken fix
the network, its optimizer state and its loss history. A saved session therefore keeps the
step count, not the weights, and a restored panel replays the run on its worker.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import export as _export
from app import session as _session
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts, signals_blocked
from engine import datasets, mlp, optimizers, surfaces, training

DATASETS = {"xor": "XOR", "circles": "circles", "moons": "two moons", "spirals": "spirals",
            "blobs": "blobs (3 classes)", "digits": "digits (8×8 images, 10 classes)"}
ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "tanh": "tanh", "sigmoid": "sigmoid"}
#: Losses offered, as (engine loss, output activation, label); the squared loss's output
#: activation is the user's choice (linear as in least squares, or sigmoid).
LOSSES = {"cross_entropy": ("cross_entropy", None, "cross-entropy (softmax output)"),
          "squared_linear": ("squared", "identity", "squared error, linear output"),
          "squared_sigmoid": ("squared", "sigmoid", "squared error, sigmoid output")}
METHOD_LABELS = {"sgd": "plain gradient descent (sgd)", "momentum": "momentum",
                 "nesterov": "Nesterov", "adagrad": "AdaGrad", "rmsprop": "RMSProp",
                 "adam": "Adam", "adamw": "AdamW"}
SPEEDS = {0: "as fast as possible", 1: "1 step per frame", 10: "10 steps per frame",
          100: "100 steps per frame"}

LR_RANGE = (-4.0, 2.0)  # log10 of the learning-rate slider's ends: 1e-4 .. 100
#: The spin boxes' (low, high, step, decimals), also the bounds a saved session must keep.
NOISE, VALIDATION, L2, DROPOUT = ((0.0, 1.0, 0.01, 3), (0.0, 0.9, 0.05, 2),
                                  (0.0, 1.0, 0.0005, 5), (0.0, mlp.MAX_DROPOUT, 0.05, 2))
POINTS, BATCH, PATIENCE, MAX_STEPS, SEED = ((20, 5000, 50), (0, 5000, 8), (0, 1000, 5),
                                            (10, 1_000_000, 1000), (0, 999_999, 1))
CHUNK_SECONDS = 0.015  # optimizer steps per chunk: as many as fit in this time
MAX_CHUNK_STEPS = 5000
REPLAY_SECONDS = 0.1  # chunks replaying a saved run: fewer snapshots, the same steps
SLOW_FRAME_MS = 33  # a fixed-steps speed shows at most 30 frames a second
SIDE_VIEWS_MS = 100  # loss curves, unit maps, confusion matrix and status: 10 times a second
MAP_SIZE = 100  # decision map grid, n x n
UNIT_MAP_SIZE = 32
UNITS_SHOWN = 8  # hidden units drawn per layer
UNIT_COLUMNS = 4
EVAL_EVERY = 10  # steps between validation evaluations (seed 003's stopping rule)
DIGIT_SAMPLES = 16
LOSS_FLOOR = 1e-12  # the log-scale loss plot shows max(loss, this)

#: Class colours (colour-blind-safe), the map's light tints of them, and the loss colours.
CLASS_COLORS = ("#1f78b4", "#e66101", "#1b9e77")
TINT = 0.45  # share of a class colour in the decision map's tint (the rest is white)
TRAIN_COLOR, VALIDATION_COLOR = "#333333", "#c2185b"

EXPLAIN_TOY = ("Colours: blue is class 0, orange class 1 (green class 2). The map shows what the "
               "network predicts at every point of the plane; the hidden-unit maps show what each "
               "unit computes there.")
EXPLAIN_DIGITS = ("Each digit is 64 pixel inputs, so there is no plane to draw. The confusion matrix "
                  "counts held-out digits by true digit (row) and the network's guess (column): the "
                  "diagonal is right. Each first-layer unit's 64 weights are drawn as an 8×8 image.")


def _slider_to_lr(value: int) -> float:
    lo, hi = LR_RANGE
    return 10 ** (lo + (hi - lo) * value / 1000.0)


def _lr_to_slider(lr: float) -> int:
    lo, hi = LR_RANGE
    return round((math.log10(max(lr, 1e-12)) - lo) / (hi - lo) * 1000.0)


MAX_WIDTHS_TEXT = 100  # characters: far more than the longest valid list of widths


def parse_widths(text: str) -> tuple[int, ...]:
    """Hidden-layer widths from text such as "8, 8"; ValueError with a message a student reads."""
    parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    if not parts:
        raise ValueError("type the hidden layer widths, e.g. 8, 8")
    if len(text) > MAX_WIDTHS_TEXT:
        raise ValueError(f"that is too long for a list of layer widths (at most "
                         f"{MAX_WIDTHS_TEXT} characters)")
    widths = []
    for p in parts:
        if not (p.isascii() and p.isdigit()):
            raise ValueError(f"“{p}” is not a whole number: type widths such as 8, 8")
        widths.append(int(p))
    lo, hi = mlp.MIN_HIDDEN_LAYERS, mlp.MAX_HIDDEN_LAYERS
    if not lo <= len(widths) <= hi:
        raise ValueError(f"a network has {lo} to {hi} hidden layers; you typed {len(widths)}")
    for w in widths:
        if not 1 <= w <= mlp.MAX_WIDTH:
            raise ValueError(f"each hidden layer has 1 to {mlp.MAX_WIDTH} units; {w} is out of range")
    return tuple(widths)


@dataclass(frozen=True)
class PlaygroundSettings:
    """Everything the user set (plain data); a new value means a new network."""

    dataset: str = "xor"
    noise: float = 0.05
    points: int = 400
    hidden: tuple[int, ...] = (8, 8)
    activation: str = "tanh"
    loss: str = "cross_entropy"
    output: str | None = None  # output activation of the squared loss
    method: str = "sgd"
    lr: float = 0.3
    l2: float = 0.0
    batch_size: int = 0  # 0: the whole training set (full-batch descent)
    dropout: float = 0.0
    validation: float = 0.2  # held-out fraction; 0: no validation set, no early stopping
    patience: int = 20  # evaluations without improvement before stopping; 0: never
    max_steps: int = 10_000
    seed: int = 0


# -- the worker side ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class UnitImage:
    """One hidden unit's picture: its activation over the plane, or (digits) its 8x8 weights,
    scaled to [-1, 1] by its largest magnitude (``scale``)."""

    layer: int
    unit: int
    image: np.ndarray
    scale: float


@dataclass(frozen=True, eq=False)
class Snapshot:
    """What one training chunk hands to the GUI: copies only, never live engine state.

    ``train_steps``/``train_losses`` are the history entries from index ``train_from`` on
    (and likewise for validation), so a snapshot costs the same at step 10 and step 10 000.
    """

    session: int
    settings: PlaygroundSettings
    train: datasets.Dataset
    validation: datasets.Dataset | None
    x_range: tuple[float, float] | None
    y_range: tuple[float, float] | None
    step: int
    epoch: int
    status: str
    done: bool
    steps_taken: int
    seconds: float
    train_from: int
    train_steps: np.ndarray
    train_losses: np.ndarray
    val_from: int
    val_steps: np.ndarray
    val_losses: np.ndarray
    best_step: int | None
    best_loss: float | None
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    decision: np.ndarray | None  # float32 P(class 1), or uint8 RGBA for several classes
    boundary: tuple[np.ndarray, np.ndarray] | None  # the P = 0.5 curve, NaN between pieces
    units: tuple[UnitImage, ...]
    units_total: tuple[int, ...]  # units per hidden layer (the images cover the first few)
    confusion: np.ndarray | None  # digits: (10, 10) counts on the held-out (or training) set
    predictions: np.ndarray | None  # digits: predicted labels of the sample images
    note: str = ""


class TrainingSession:
    """A network, its data and its trainer for one set of settings.

    Built lazily by the first chunk, on the worker; afterwards touched by worker jobs only
    (one at a time: the runner has one thread). The GUI keeps the object only to name it in
    requests, and reads nothing from it but ``id`` and ``settings``.
    """

    _ids = itertools.count(1)

    def __init__(self, settings: PlaygroundSettings) -> None:
        self.id = next(self._ids)
        self.settings = settings
        self.trainer: training.Trainer | None = None
        self.note = ""
        self._train_steps: list[int] = []
        self._train_losses: list[float] = []
        self._val_steps: list[int] = []
        self._val_losses: list[float] = []

    def build(self) -> None:
        s = self.settings
        if s.dataset == "digits":
            data = datasets.load_digits()
        else:
            data = datasets.make_dataset(s.dataset, s.points, s.noise, s.seed)
        if s.validation > 0:
            self.train_set, self.validation_set = datasets.split(data, s.validation, s.seed)
        else:
            self.train_set, self.validation_set = data, None
        outputs = 1 if data.classes == 2 else data.classes
        net = mlp.MLP((data.features, *s.hidden, outputs), s.activation, s.loss, l2=s.l2,
                      dropout=s.dropout, seed=s.seed, output=s.output)
        n = len(self.train_set)
        batch = None if s.batch_size <= 0 or s.batch_size >= n else s.batch_size
        if s.batch_size > n:
            self.note = f"batch size {s.batch_size} > {n} training points: full batch used"
        patience = s.patience if (s.patience > 0 and self.validation_set is not None) else None
        self.trainer = training.Trainer(net, self.train_set, self.validation_set, method=s.method, lr=s.lr,
                                   batch_size=batch, max_steps=s.max_steps, patience=patience,
                                   eval_every=EVAL_EVERY, seed=s.seed)
        if data.features == 2:
            (x0, x1), (y0, y1) = data.bounds(0.3)
            lo, hi = min(x0, y0), max(x1, y1)  # a square window: the map keeps its aspect
            self.window = (lo, hi)
        else:
            self.window = None

    def train(self, steps: int, budget: float | None) -> int:
        """Up to ``steps`` optimizer steps, stopping after ``budget`` seconds (if given)."""
        trainer = self.trainer
        start = time.perf_counter()
        taken = 0
        while taken < steps:
            record = trainer.step()
            if record is None:
                break
            taken += 1
            self._train_steps.append(record.step)
            self._train_losses.append(record.loss)
            if record.validation_loss is not None:
                self._val_steps.append(record.step)
                self._val_losses.append(record.validation_loss)
            if budget is not None and time.perf_counter() - start >= budget:
                break
        return taken

    def snapshot(self, request: ChunkRequest, taken: int, seconds: float) -> Snapshot:
        trainer, net = self.trainer, self.trainer.network
        train, validation = self.train_set, self.validation_set
        held = validation if validation is not None else train
        train_eval = trainer.evaluate(train.X, train.y)
        val_eval = trainer.evaluate(validation.X, validation.y) if validation is not None else None
        decision = boundary = confusion = predictions = None
        x_range = y_range = None
        units: list[UnitImage] = []
        hidden = net.widths[1:-1]
        if self.window is not None:
            x_range = y_range = self.window
            decision, boundary = _decision_picture(net, x_range, y_range, request.map_size)
            maps = net.hidden_activation_maps(x_range, y_range, request.unit_size)
            for l, layer in enumerate(maps, start=1):
                for i in range(min(UNITS_SHOWN, layer.shape[0])):
                    units.append(_unit_image(l, i + 1, layer[i]))
        else:
            W1 = net.weights[1]  # a read-only view of the live weights: copied below
            side = math.isqrt(net.widths[0])
            for i in range(min(UNITS_SHOWN, W1.shape[0])):
                units.append(_unit_image(1, i + 1, W1[i, 1:].reshape(side, side)))
            hidden = hidden[:1]
            confusion = trainer.confusion_matrix(held.X, held.y)
            predictions = trainer.predict(held.X[:DIGIT_SAMPLES])
        best = trainer.best_step
        return Snapshot(
            session=self.id, settings=self.settings, train=train, validation=validation,
            x_range=x_range, y_range=y_range, step=trainer.steps, epoch=trainer.epoch,
            status=trainer.status, done=trainer.done, steps_taken=taken, seconds=seconds,
            train_from=request.train_from,
            train_steps=np.array(self._train_steps[request.train_from:], dtype=np.int64),
            train_losses=np.array(self._train_losses[request.train_from:], dtype=np.float64),
            val_from=request.val_from,
            val_steps=np.array(self._val_steps[request.val_from:], dtype=np.int64),
            val_losses=np.array(self._val_losses[request.val_from:], dtype=np.float64),
            best_step=best, best_loss=trainer.best_loss if best is not None else None,
            train_loss=train_eval.loss, train_accuracy=train_eval.accuracy,
            val_loss=val_eval.loss if val_eval else None,
            val_accuracy=val_eval.accuracy if val_eval else None,
            decision=decision, boundary=boundary, units=tuple(units), units_total=tuple(hidden),
            confusion=confusion, predictions=predictions, note=self.note)


def _unit_image(layer: int, unit: int, values: np.ndarray) -> UnitImage:
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    scaled = values / scale if scale > 0 and math.isfinite(scale) else np.zeros_like(values)
    return UnitImage(layer, unit, np.ascontiguousarray(scaled, dtype=np.float32), scale)


def _decision_picture(net: mlp.MLP, x_range, y_range, n: int):
    """P(class 1) as float32 (two classes) with its 0.5 curve, or an RGBA image whose colour
    mixes the class tints by their probabilities (several classes)."""
    proba = net.decision_map(x_range, y_range, n, class_index=None)  # (n, n, classes)
    if net.classes == 2:
        p1 = np.ascontiguousarray(proba[:, :, 1])
        xs, ys = np.linspace(*x_range, n), np.linspace(*y_range, n)
        curves = surfaces.level_curves(surfaces.Grid(x=xs, y=ys, z=p1), [0.5])
        lines = curves[0][1] if curves else []
        if lines:
            parts = []
            for line in lines:
                parts += [line, np.full((1, 2), np.nan)]
            xy = np.concatenate(parts[:-1])
            boundary = (xy[:, 0].copy(), xy[:, 1].copy())
        else:
            boundary = (np.empty(0), np.empty(0))
        return p1.astype(np.float32), boundary
    tints = _tints(net.classes)
    rgb = np.tensordot(proba, tints, axes=([2], [0]))
    rgba = np.empty((n, n, 4), np.uint8)
    rgba[:, :, :3] = np.clip(rgb, 0, 255)
    rgba[:, :, 3] = 255
    return rgba, None


def _rgb(color: str) -> np.ndarray:
    """"#rrggbb" as three floats 0 .. 255 (no Qt: the worker mixes colours too)."""
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], float)


def _tints(classes: int) -> np.ndarray:
    """(classes, 3) light versions of the class colours, as on the map."""
    return np.array([TINT * _rgb(c) + (1 - TINT) * 255.0 for c in CLASS_COLORS[:classes]])


@dataclass(frozen=True, eq=False)
class ChunkRequest:
    """Train ``session`` for up to ``steps`` steps (``budget`` seconds at most), then
    snapshot it; history entries before ``train_from``/``val_from`` the GUI already has."""

    session: TrainingSession
    steps: int
    budget: float | None
    train_from: int
    val_from: int
    map_size: int = MAP_SIZE
    unit_size: int = UNIT_MAP_SIZE


_blas = None


def _one_blas_thread():
    """A context in which BLAS uses one thread.

    The playground's matrices are small (at most a few thousand rows by a few hundred
    columns), and on a two-core machine OpenBLAS's second thread competes with the GUI
    thread's painting: a full-batch digits step measured 55 ms with two BLAS threads while
    the GUI painted, 0.8 ms with one. threadpoolctl comes with scikit-learn.
    """
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn brings it
            _blas = False
        else:
            _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas") if _blas else contextlib.nullcontext()


def train_chunk(request: ChunkRequest) -> Snapshot:
    """The worker's job: build the session if new, train a chunk, return a snapshot."""
    session = request.session
    with _one_blas_thread():
        if session.trainer is None:
            session.build()
        start = time.perf_counter()
        taken = session.train(request.steps, request.budget) if request.steps > 0 else 0
        return session.snapshot(request, taken, time.perf_counter() - start)


# -- the GUI side ------------------------------------------------------------------------------

class _History:
    """A growing (steps, losses) pair kept on the GUI thread, extended from snapshots."""

    def __init__(self) -> None:
        self.steps = np.empty(0, np.int64)
        self.losses = np.empty(0)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self._n = 0

    def extend(self, start: int, steps: np.ndarray, losses: np.ndarray) -> None:
        start = min(start, self._n)
        end = start + len(steps)
        if end > len(self.steps):
            size = max(end, 2 * len(self.steps), 1024)
            grown_s, grown_l = np.empty(size, np.int64), np.empty(size)
            grown_s[:self._n], grown_l[:self._n] = self.steps[:self._n], self.losses[:self._n]
            self.steps, self.losses = grown_s, grown_l
        self.steps[start:end], self.losses[start:end] = steps, losses
        self._n = end

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.steps[:self._n], self.losses[:self._n]


def _loss_key(settings: PlaygroundSettings) -> str:
    for key, (loss, output, _label) in LOSSES.items():
        if (loss, output) == (settings.loss, settings.output):
            return key
    raise ValueError(f"no loss choice for {settings.loss!r} with output {settings.output!r}")


def _combo() -> QComboBox:
    """A combo box that fits the control column: long entries are elided, not widening it."""
    box = QComboBox()
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(12)
    return box


def _font(points: float) -> QFont:
    font = QFont()
    font.setPointSizeF(points)
    return font


def _probability_lut() -> np.ndarray:
    """256 colours from the tint of class 0 (P = 0) through white (0.5) to class 1's (P = 1)."""
    lo, hi = _tints(2)
    t = np.linspace(0.0, 1.0, 256)[:, None]
    white = np.full(3, 255.0)
    lut = np.where(t < 0.5, lo + (white - lo) * (t / 0.5), white + (hi - white) * ((t - 0.5) / 0.5))
    return np.clip(lut, 0, 255).astype(np.uint8)


def _diverging_lut() -> np.ndarray:
    """256 colours for hidden-unit values in [-1, 1]: blue below zero, white at 0, orange above."""
    lo, hi = (_rgb(c) for c in CLASS_COLORS[:2])
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    white = np.full(3, 255.0)
    lut = np.where(t < 0, white + (lo - white) * (-t), white + (hi - white) * t)
    return np.clip(lut, 0, 255).astype(np.uint8)


class _LogAxis(pg.AxisItem):
    """A log-scale axis labelled at 1, 2 and 5 times powers of ten only: pyqtgraph labels
    every minor tick (0.02, 0.03, ... 0.09), whose labels overlap near each decade."""

    def logTickStrings(self, values, scale, spacing):
        strings = super().logTickStrings(values, scale, spacing)
        out = []
        for v, text in zip(values, strings):
            mantissa = 10 ** (v - math.floor(v + 1e-9))
            out.append(text if min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-6 else "")
        return out


class PlaygroundPanel(QWidget):
    """Train a small network on toy 2-D data or digits and watch every part of it learn."""

    title = "Network playground"
    export_filters = {
        "PNG image, decision map, loss curves and hidden units (*.png)": ("all", ".png"),
        "PNG image, decision map only (*.png)": ("map", ".png"),
        "SVG drawing, decision map (*.svg)": ("map", ".svg"),
        "SVG drawing, loss curves (*.svg)": ("loss", ".svg"),
        "CSV table of the loss histories (*.csv)": ("auto", ".csv"),
    }
    status = Signal(str)
    trained = Signal(object)  # Snapshot, after each delivered chunk is drawn
    networkReset = Signal(object)  # PlaygroundSettings of the new network

    def __init__(self, parent=None, settings: PlaygroundSettings | None = None):
        super().__init__(parent)
        self.settings = settings or PlaygroundSettings()
        self.snapshot: Snapshot | None = None
        self._playing = False
        self._closed = False
        self._session = TrainingSession(self.settings)
        self._train_history, self._val_history = _History(), _History()
        self._side_time = 0.0
        self._side_turn = 0
        self._error_shown = False
        self._frame_time = 0.0
        self._points_session = 0
        self._replay: tuple[int, bool] | None = None  # (step, ended) a restored run is trained to
        self.runner = JobRunner(train_chunk, "playground", self)
        self.runner.finished.connect(self._on_chunk)
        self.runner.failed.connect(self._on_failed)
        self._next = QTimer(self, singleShot=True)
        self._next.timeout.connect(self._submit_chunk)
        self._lr_apply = QTimer(self, singleShot=True, interval=150)
        self._lr_apply.timeout.connect(self._on_settings)
        self._build()
        self._submit(0, None)  # build the first network on the worker and show it

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        s = self.settings
        controls = QWidget()
        column = QVBoxLayout(controls)

        dbox = QGroupBox("Data")
        dlay = QFormLayout(dbox)
        self.dataset_box = _combo()
        for key, label in DATASETS.items():
            self.dataset_box.addItem(label, key)
        self.dataset_box.setCurrentIndex(list(DATASETS).index(s.dataset))
        self.dataset_box.setToolTip("Toy 2-D sets (two classes, blobs three) or scikit-learn's real "
                                    "8×8 handwritten digits (64 inputs, 10 classes)")
        self.dataset_box.currentIndexChanged.connect(self._on_settings)
        dlay.addRow("data set", self.dataset_box)
        self.noise_spin = self._double_spin(*NOISE, s.noise,
                                            "Standard deviation of the Gaussian jitter added to each point")
        dlay.addRow("noise σ", self.noise_spin)
        self.points_spin = self._int_spin(*POINTS, s.points, "Number of points (training + validation)")
        dlay.addRow("points", self.points_spin)
        self.validation_spin = self._double_spin(*VALIDATION, s.validation,
                                                 "Share of the points held out for validation: never used "
                                                 "for gradients (seed 003's stopping rule). 0 = none")
        self.validation_spin.setSpecialValueText("none")
        dlay.addRow("validation share", self.validation_spin)
        self.seed_spin = self._int_spin(*SEED, s.seed, "Seed of the points, the split, the initial "
                                                              "weights, the batches and dropout")
        dlay.addRow("seed", self.seed_spin)
        column.addWidget(dbox)

        nbox = QGroupBox("Network")
        nlay = QFormLayout(nbox)
        self.widths_edit = QLineEdit(", ".join(str(w) for w in s.hidden))
        # One character past the longest text read: a longer paste is cut there and refused
        # as too long, and Qt's undo record of it (never given back) stays small.
        self.widths_edit.setMaxLength(MAX_WIDTHS_TEXT + 1)
        self.widths_edit.setToolTip(f"Units of each hidden layer, separated by commas: {mlp.MIN_HIDDEN_LAYERS} "
                                    f"to {mlp.MAX_HIDDEN_LAYERS} layers of 1 to {mlp.MAX_WIDTH} units. "
                                    "Press Enter to apply.")
        self.widths_edit.textEdited.connect(self._check_widths)
        self.widths_edit.editingFinished.connect(self._apply_widths)
        nlay.addRow("hidden widths", self.widths_edit)
        self.widths_message = QLabel()
        self.widths_message.setWordWrap(True)
        self.widths_message.setStyleSheet("color: #b00020;")
        self.widths_message.setVisible(False)
        nlay.addRow(self.widths_message)
        self.activation_box = _combo()
        for key, label in ACTIVATIONS.items():
            self.activation_box.addItem(label, key)
        self.activation_box.setCurrentIndex(list(ACTIVATIONS).index(s.activation))
        self.activation_box.setToolTip("σ of the hidden layers; ReLU is eq. 15 of seed 003, leaky ReLU "
                                       f"has slope {mlp.LEAKY_SLOPE} below zero")
        self.activation_box.currentIndexChanged.connect(self._on_settings)
        nlay.addRow("activation", self.activation_box)
        self.loss_box = _combo()
        for key, (_loss, _output, label) in LOSSES.items():
            self.loss_box.addItem(label, key)
        self.loss_box.setCurrentIndex(self.loss_box.findData(_loss_key(s)))
        self.loss_box.setToolTip("Cross-entropy with a softmax output (seed 003 eqs. 55, 67), or the "
                                 "squared error ||a(L) − y||² of eq. 35 on a linear or sigmoid output")
        self.loss_box.currentIndexChanged.connect(self._on_settings)
        nlay.addRow("loss", self.loss_box)
        self.dropout_spin = self._double_spin(*DROPOUT, s.dropout,
                                              "Probability of dropping each hidden unit at each training step")
        nlay.addRow("dropout", self.dropout_spin)
        column.addWidget(nbox)

        tbox = QGroupBox("Training")
        tlay = QFormLayout(tbox)
        self.method_box = _combo()
        for key in optimizers.METHODS:
            self.method_box.addItem(METHOD_LABELS.get(key, key), key)
        self.method_box.setCurrentIndex(list(optimizers.METHODS).index(s.method))
        self.method_box.setToolTip("Plain gradient descent is eq. 6 of seed 003: Θ ← Θ − η ∇L(Θ)")
        self.method_box.currentIndexChanged.connect(self._on_settings)
        tlay.addRow("optimizer", self.method_box)
        self.lr_slider = QSlider(Qt.Orientation.Horizontal)
        self.lr_slider.setRange(0, 1000)
        self.lr_slider.setValue(_lr_to_slider(s.lr))
        self.lr_slider.setToolTip("Learning rate η (log scale, 0.0001 to 100): Θ ← Θ − η ∇L (eq. 6)")
        self.lr_slider.valueChanged.connect(self._on_lr_moved)
        self.lr_slider.sliderReleased.connect(self._on_settings)
        self.lr_label = QLabel(f"{s.lr:.3g}")
        self.lr_label.setMinimumWidth(44)
        lr_row = QHBoxLayout()
        lr_row.addWidget(self.lr_slider, 1)
        lr_row.addWidget(self.lr_label)
        tlay.addRow("learning rate η", lr_row)
        self.l2_spin = self._double_spin(*L2, s.l2,
                                         "λ of the L2 regularizer λ Σ w² (eqs. 7 and 40; bias weights excluded)")
        tlay.addRow("L2 λ", self.l2_spin)
        self.batch_spin = self._int_spin(*BATCH, s.batch_size,
                                         "Examples per step; full batch = every training point at every step")
        self.batch_spin.setSpecialValueText("full batch")
        tlay.addRow("batch size", self.batch_spin)
        self.patience_spin = self._int_spin(*PATIENCE, s.patience,
                                            f"Stop when the validation loss (checked every {EVAL_EVERY} steps) "
                                            "has not improved this many times, and restore the best weights "
                                            "(seed 003's stopping rule). 0 = never stop early")
        self.patience_spin.setSpecialValueText("off")
        tlay.addRow("patience", self.patience_spin)
        self.max_steps_spin = self._int_spin(*MAX_STEPS, s.max_steps, "Training stops after this many steps")
        tlay.addRow("stop after (steps)", self.max_steps_spin)
        column.addWidget(tbox)

        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.explain.setStyleSheet("color: #555;")
        column.addWidget(self.explain)
        column.addStretch(1)

        # Playback bar.
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Train / pause (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("One optimizer step (→)")
        self.step_button.clicked.connect(self.step)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("A fresh network with the same settings, at step 0 (Home)")
        self.reset_button.clicked.connect(self.reset)
        self.speed_box = _combo()
        for key, label in SPEEDS.items():
            self.speed_box.addItem(label, key)
        self.speed_box.setToolTip("Steps per frame while playing")
        self.status_label = QLabel("building the network…\n")
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Always two lines (figures, then the trainer's state) and never wrapped: a status
        # whose height changed from frame to frame would re-lay-out every view below it.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        bar = QHBoxLayout()
        for w in (self.play_button, self.step_button, self.reset_button):
            bar.addWidget(w)
        bar.addWidget(QLabel("speed"))
        bar.addWidget(self.speed_box)
        bar.addStretch(1)

        self._build_map_view()
        self._build_digits_view()
        self.map_stack = QStackedWidget()
        self.map_stack.addWidget(self.map_view)
        self.map_stack.addWidget(self.digits_view)
        self._build_loss_view()
        self._build_units_view()

        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.loss_view)
        right_split.addWidget(self.units_scroll)
        right_split.setSizes([300, 500])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.map_stack)
        split.addWidget(right_split)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 460])
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addLayout(bar)
        rcol.addWidget(self.status_label)
        rcol.addWidget(split, 1)
        controls_beside_views(self, controls, right, 350)
        panel_shortcuts(self, [(Qt.Key.Key_Space, self.toggle_play), (Qt.Key.Key_Right, self.step),
                               (Qt.Key.Key_Home, self.reset)])
        self._enable_data_controls()

    def _double_spin(self, lo, hi, step, decimals, value, tip) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setDecimals(decimals)
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        spin.valueChanged.connect(self._on_settings)
        return spin

    def _int_spin(self, lo, hi, step, value, tip) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        spin.valueChanged.connect(self._on_settings)
        return spin

    def _build_map_view(self) -> None:
        view = self.map_view = pg.GraphicsLayoutWidget()
        view.setBackground("w")
        view.setMinimumSize(320, 300)
        plot = self.map_plot = view.addPlot(row=0, col=0)
        plot.setAspectLocked(True)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setLabel("bottom", "x1")
        plot.setLabel("left", "x2")
        plot.setTitle("Decision map: P(class 1 | x1, x2)", color="k")
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("k")
            plot.getAxis(axis).setPen("k")
        self.map_image = pg.ImageItem(axisOrder="row-major")
        self.map_image.setZValue(-10)
        self._probability_lut = _probability_lut()
        self.map_image.setLookupTable(self._probability_lut)
        plot.addItem(self.map_image)
        self.boundary = pg.PlotCurveItem(pen=pg.mkPen("k", width=2), connect="finite")
        self.boundary.setZValue(5)
        plot.addItem(self.boundary)
        self.train_points, self.val_points = [], []
        for k, color in enumerate(CLASS_COLORS):
            train = pg.ScatterPlotItem(size=7, symbol="o", brush=pg.mkBrush(color), pen=pg.mkPen("w", width=0.8))
            val = pg.ScatterPlotItem(size=8, symbol="s", brush=pg.mkBrush(255, 255, 255, 230),
                                     pen=pg.mkPen(color, width=2))
            for item, z in ((train, 10), (val, 11)):
                item.setZValue(z)
                plot.addItem(item)
            self.train_points.append(train)
            self.val_points.append(val)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.ColorMap(
            np.linspace(0.0, 1.0, 256), self._probability_lut), interactive=False, width=14, label="P(class 1)")
        self.colorbar.getAxis("right").setTextPen("k")
        view.addItem(self.colorbar, row=0, col=1)
        # The legend is a line of text under the map, inside the scene (so exports carry it).
        # pyqtgraph's LegendItem in a layout cell made the layout oscillate at some window
        # sizes, repainting the map about 100 times a second with nothing changed.
        self.map_legend = pg.LabelItem("", color="k", size="9pt")
        view.addItem(self.map_legend, row=1, col=0, colspan=2)
        self._map_bounds = None

    def _fill_map_legend(self, classes: int, validation: bool, boundary: bool) -> None:
        parts = [f"<span style='color:{CLASS_COLORS[k]}; font-size:13pt'>●</span>&nbsp;class {k}"
                 for k in range(classes)]
        if validation:
            parts.append("<span style='color:#444; font-size:12pt'>□</span>&nbsp;validation point (hollow)")
        if boundary:
            parts.append("<b>━━</b>&nbsp;P = 0.5 boundary")
        self.map_legend.setText("&nbsp;&nbsp;&nbsp;&nbsp;".join(parts))

    def _build_digits_view(self) -> None:
        view = self.digits_view = pg.GraphicsLayoutWidget()
        view.setBackground("w")
        plot = self.confusion_plot = view.addPlot(row=0, col=0)
        plot.setAspectLocked(True)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(False, False)
        plot.invertY(True)
        plot.setLabel("bottom", "predicted digit")
        plot.setLabel("left", "true digit")
        ticks = [[(i, str(i)) for i in range(10)]]
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTicks(ticks)
            plot.getAxis(axis).setTextPen("k")
            plot.getAxis(axis).setPen("k")
        self.confusion_image = pg.ImageItem(axisOrder="row-major")
        t = np.linspace(0.0, 1.0, 256)[:, None]  # white to blue by the share of the true digit
        self.confusion_image.setLookupTable(np.clip(255 - t * np.array([220, 160, 80]), 0, 255).astype(np.uint8))
        plot.addItem(self.confusion_image)
        plot.setRange(xRange=(-0.5, 9.5), yRange=(-0.5, 9.5), padding=0)
        self.confusion_text = []
        for r in range(10):
            row = []
            for c in range(10):
                item = pg.TextItem("", color="k", anchor=(0.5, 0.5))
                item.setFont(_font(8))
                item.setPos(c, r)
                plot.addItem(item)
                row.append(item)
            self.confusion_text.append(row)
        samples = view.addLayout(row=1, col=0)
        columns = DIGIT_SAMPLES // 2
        samples.addLabel("The first held-out digits and the network's guess (✗: wrong)", row=0, col=0,
                         colspan=columns, color="k", size="9pt")
        self.sample_images, self.sample_labels = [], []
        grey = np.linspace(255, 0, 256).astype(np.uint8)[:, None].repeat(3, 1)
        for i in range(DIGIT_SAMPLES):
            r, c = divmod(i, columns)
            box = samples.addViewBox(row=1 + 2 * r, col=c, lockAspect=True, enableMouse=False, invertY=True)
            box.setMenuEnabled(False)
            label = samples.addLabel("", row=2 + 2 * r, col=c, size="8pt", color="k")
            label.setMaximumHeight(18)
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(grey)
            box.addItem(image)
            self.sample_images.append(image)
            self.sample_labels.append(label)
        view.ci.layout.setRowStretchFactor(0, 4)
        view.ci.layout.setRowStretchFactor(1, 1)

    def _build_loss_view(self) -> None:
        view = self.loss_view = pg.PlotWidget(background="w", axisItems={"left": _LogAxis("left")})
        view.setMinimumHeight(180)
        plot = self.loss_plot = view.getPlotItem()
        plot.setLogMode(y=True)
        plot.setLabel("bottom", "step")
        plot.setLabel("left", "loss (log scale)")
        plot.setTitle("Loss", color="k")
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("k")
            plot.getAxis(axis).setPen("k")
        legend = plot.addLegend(offset=(-8, 8), labelTextColor="k", brush=(255, 255, 255, 210))
        # Thousands of steps: drawn downsampled to the plot's width, without antialiasing
        # (a long antialiased path cost about 7 ms a paint).
        self.train_curve = plot.plot(pen=pg.mkPen(TRAIN_COLOR, width=1), name="training (mini-batch)",
                                     antialias=False)
        self.val_curve = plot.plot(pen=pg.mkPen(VALIDATION_COLOR, width=2), name="validation")
        for curve in (self.train_curve, self.val_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self.best_marker = pg.ScatterPlotItem(symbol="star", size=15, brush=pg.mkBrush(VALIDATION_COLOR),
                                              pen=pg.mkPen("k", width=1))
        self.best_marker.setZValue(10)
        plot.addItem(self.best_marker)
        legend.addItem(self.best_marker, "best validation")
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(VALIDATION_COLOR, width=1,
                                                                   style=Qt.PenStyle.DashLine))
        self.best_line.setVisible(False)
        plot.addItem(self.best_line, ignoreBounds=True)

    def _build_units_view(self) -> None:
        # All unit maps are drawn as one mosaic image (NaN between cells is transparent) with
        # a text label above each cell: one ImageItem to repaint instead of one per unit,
        # which made this view about three times cheaper to repaint.
        view = self.units_view = pg.GraphicsLayoutWidget()
        view.setBackground("w")
        self.units_header = view.ci.addLabel("", row=0, col=0, color="k", size="8pt")
        self.units_header.setMaximumHeight(36)
        self.units_box = view.ci.addViewBox(row=1, col=0, lockAspect=True, enableMouse=False)
        self.units_box.setMenuEnabled(False)
        self.units_image = pg.ImageItem(axisOrder="row-major")
        self.units_image.setLookupTable(_diverging_lut())
        self.units_box.addItem(self.units_image)
        self.unit_cells: dict[tuple[int, int], tuple[int, int, int]] = {}  # (layer, unit) -> (y, x, side)
        self._unit_labels: list[pg.TextItem] = []
        self._mosaic = np.full((1, 1), np.nan, np.float32)
        self._units_key = None
        self.units_scroll = QScrollArea()
        self.units_scroll.setWidgetResizable(True)
        self.units_scroll.setWidget(view)
        self.units_scroll.setMinimumHeight(160)

    def _layout_units(self, snap: Snapshot) -> None:
        """Place the cells of the unit mosaic when the network's shape changed."""
        digits = snap.x_range is None
        key = (digits, tuple((u.layer, u.unit, u.image.shape) for u in snap.units), snap.units_total)
        if key == self._units_key:
            return
        self._units_key = key
        if digits:
            head = "Weights into the first hidden layer, as 8×8 images<br>(blue negative, orange positive)"
        else:
            head = "Hidden units: activation over the (x1, x2) plane<br>(blue negative, white 0, orange positive)"
        capped = [f"layer {l}: first {UNITS_SHOWN} of {m}" for l, m in enumerate(snap.units_total, 1)
                  if m > UNITS_SHOWN]
        if capped:
            head += "<br>shown: " + "; ".join(capped) + " units"
        self.units_header.setText(head)
        places, row, col, layer = [], 0, 0, None
        for u in snap.units:
            if layer is not None and (u.layer != layer or col == UNIT_COLUMNS):
                row, col = row + 1, 0  # each layer starts a new row
            layer = u.layer
            places.append((u, row, col))
            col += 1
        rows = row + 1 if places else 0
        side = snap.units[0].image.shape[0] if snap.units else 1
        pitch = side + max(2, round(0.4 * side))  # a cell and the gap above it for its label
        self._mosaic = np.full((max(rows, 1) * pitch, UNIT_COLUMNS * pitch), np.nan, np.float32)
        for label in self._unit_labels:
            self.units_box.removeItem(label)
        self._unit_labels = []
        self.unit_cells = {}
        for u, r, c in places:
            y, x = (rows - 1 - r) * pitch, c * pitch  # image rows run up the y axis: row 0 at the bottom
            self.unit_cells[(u.layer, u.unit)] = (y, x, side)
            label = pg.TextItem(f"layer {u.layer}, unit {u.unit}", color="k", anchor=(0.5, 1.0))
            label.setFont(_font(7.5))
            label.setPos(x + side / 2, y + side + 0.05 * side)
            self.units_box.addItem(label)
            self._unit_labels.append(label)
        self.units_box.setRange(xRange=(0, UNIT_COLUMNS * pitch), yRange=(0, max(rows, 1) * pitch), padding=0.02)
        self.units_view.setMinimumHeight(50 + 110 * rows)

    def unit_image(self, layer: int, unit: int) -> np.ndarray:
        """The picture drawn for hidden unit ``unit`` of ``layer`` (scaled to [-1, 1])."""
        y, x, side = self.unit_cells[(layer, unit)]
        return self._mosaic[y:y + side, x:x + side].copy()

    # -- public API --------------------------------------------------------------------
    @property
    def is_playing(self) -> bool:
        return self._playing

    @property
    def step_count(self) -> int:
        """The step of the last snapshot drawn (0 for a fresh network)."""
        return self.snapshot.step if self.snapshot is not None else 0

    @property
    def is_replaying(self) -> bool:
        """True while a restored session's run is being trained again up to its step."""
        return self._replay is not None

    @property
    def history(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Copies of the loss histories drawn so far: {"train": (steps, losses), "validation": ...}."""
        return {"train": tuple(a.copy() for a in self._train_history.data()),
                "validation": tuple(a.copy() for a in self._val_history.data())}

    def set_settings(self, **changes) -> None:
        """Apply new settings (fields of PlaygroundSettings): the widgets follow, the network resets."""
        self.settings = replace(self.settings, **changes)
        self._show_settings()
        self._new_network()

    def toggle_play(self) -> None:
        if self._playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        """Train continuously; each delivered chunk is drawn and asks for the next."""
        if self._closed or self._playing or self._refuse_while_replaying():
            return
        if self.snapshot is not None and self.snapshot.done and self.snapshot.session == self._session.id:
            self._say(f"Training has ended ({self.snapshot.status}). Reset (Home) starts a new network.")
            return
        self._set_playing(True)
        if not self.runner.busy:
            self._submit_chunk()

    def pause(self) -> None:
        """Stop at once: nothing new is submitted (a chunk already running is still drawn)."""
        was_playing = self._playing
        self._next.stop()
        self._set_playing(False)
        snap = self.snapshot
        if was_playing and not self.runner.busy and snap is not None and snap.session == self._session.id:
            self._draw(snap, animating=False)  # bring the slower views up to date

    def step(self) -> None:
        """Pause and take exactly one optimizer step."""
        if self._refuse_while_replaying():
            return
        self.pause()
        self._submit(1, None)

    def reset(self) -> None:
        """Pause and start again from a fresh network (same settings, step 0)."""
        self.pause()
        self._new_network()

    def refresh(self) -> None:
        """Draw the current network again (a snapshot without training)."""
        if not self._playing:
            self._submit(0, None)

    def chunk_request(self, steps: int = MAX_CHUNK_STEPS, budget: float | None = CHUNK_SECONDS) -> ChunkRequest:
        """The request the panel submits next: the current network, the history it lacks."""
        return ChunkRequest(self._session, int(steps), budget, len(self._train_history),
                            len(self._val_history))

    def draw(self, snap: Snapshot, animating: bool = False) -> None:
        """Draw one snapshot, as every delivered chunk is drawn; while ``animating`` the
        loss curves, unit maps and status follow at 10 frames a second."""
        if snap.session != self._session.id:
            return
        self._absorb(snap)
        self._draw(snap, animating)

    def export(self, path, view: str = "auto"):
        """Write .png (views side by side, or one), .svg (one view) or .csv (loss histories)."""
        return export_playground(self, path, view)

    # -- session -----------------------------------------------------------------------
    def session_state(self) -> dict:
        """Every setting, the playback speed, the step the network has reached and whether
        training had ended there: the run is deterministic, so these bring back its
        weights, curves, maps and status."""
        s = self.settings
        current = self.snapshot is not None and self.snapshot.session == self._session.id
        step, ended = self._replay or ((self.snapshot.step, self.snapshot.done) if current
                                       else (0, False))
        return {"dataset": s.dataset, "noise": s.noise, "points": s.points,
                "hidden": ", ".join(str(w) for w in s.hidden), "activation": s.activation,
                "loss": _loss_key(s), "method": s.method, "lr": s.lr, "l2": s.l2,
                "batch_size": s.batch_size, "dropout": s.dropout, "validation": s.validation,
                "patience": s.patience, "max_steps": s.max_steps, "seed": s.seed,
                "speed": self.speed_box.currentData(),
                "step": step, "ended": ended}

    def restore_session_state(self, state: dict) -> None:
        """Show a :meth:`session_state`: a new network with its settings, trained again on
        the worker up to the saved step. Missing keys take their defaults, unknown keys are
        ignored; a bad value raises ``ValueError`` (a :class:`app.session.SessionError`
        naming its key) before anything changes. The hidden widths are text, checked as
        typed ones are."""
        settings, speed, step, ended = self._read_state(state)
        self._next.stop()
        self._lr_apply.stop()
        self._set_playing(False)
        self.settings = settings
        self._show_settings()
        self.speed_box.setCurrentIndex(self.speed_box.findData(speed))
        self._new_network(replay_to=step, ended=ended)

    @staticmethod
    def _read_state(state: dict) -> tuple[PlaygroundSettings, int, int, bool]:
        """(settings, speed, step, ended) of ``state``, each value checked as its widget
        would check it."""
        if not isinstance(state, dict):
            raise _session.SessionError("the playground state must be an object")
        d = PlaygroundSettings()
        number, whole, text = _session.expect_number, _session.expect_int, _session.expect_str

        def spin(key, bounds, read=number):
            return read(state, key, low=bounds[0], high=bounds[1], default=getattr(d, key))

        widths = text(state, "hidden", max_length=MAX_WIDTHS_TEXT,
                      default=", ".join(map(str, d.hidden)))
        try:
            hidden = parse_widths(widths)
        except ValueError as error:
            raise _session.SessionError(str(error), "hidden") from None
        loss, output, _label = LOSSES[text(state, "loss", choices=tuple(LOSSES), default=_loss_key(d))]
        lo, hi = (10.0 ** e for e in LR_RANGE)
        settings = PlaygroundSettings(
            dataset=text(state, "dataset", choices=tuple(DATASETS), default=d.dataset),
            noise=spin("noise", NOISE), points=spin("points", POINTS, whole), hidden=hidden,
            activation=text(state, "activation", choices=tuple(ACTIVATIONS), default=d.activation),
            loss=loss, output=output,
            method=text(state, "method", choices=tuple(optimizers.METHODS), default=d.method),
            lr=number(state, "lr", low=lo, high=hi, default=d.lr), l2=spin("l2", L2),
            batch_size=spin("batch_size", BATCH, whole), dropout=spin("dropout", DROPOUT),
            validation=spin("validation", VALIDATION), patience=spin("patience", PATIENCE, whole),
            max_steps=spin("max_steps", MAX_STEPS, whole), seed=spin("seed", SEED, whole))
        speed = whole(state, "speed", default=next(iter(SPEEDS)))
        if speed not in SPEEDS:
            raise _session.SessionError(f"expected one of {', '.join(map(str, SPEEDS))}, got {speed}",
                                        "speed")
        step = whole(state, "step", low=0, high=settings.max_steps, default=0)
        return settings, speed, step, _session.expect_bool(state, "ended", default=False)

    def shutdown(self) -> None:
        """Stop training and the worker (called when the window closes)."""
        self._closed = True
        self._next.stop()
        self._lr_apply.stop()
        self._set_playing(False)
        self.runner.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- settings ----------------------------------------------------------------------
    def _read_settings(self) -> PlaygroundSettings:
        loss, output, _label = LOSSES[self.loss_box.currentData()]
        return replace(
            self.settings, dataset=self.dataset_box.currentData(), noise=self.noise_spin.value(),
            points=self.points_spin.value(), activation=self.activation_box.currentData(),
            loss=loss, output=output, method=self.method_box.currentData(),
            lr=_slider_to_lr(self.lr_slider.value()) if self._lr_touched() else self.settings.lr,
            l2=self.l2_spin.value(), batch_size=self.batch_spin.value(), dropout=self.dropout_spin.value(),
            validation=self.validation_spin.value(), patience=self.patience_spin.value(),
            max_steps=self.max_steps_spin.value(), seed=self.seed_spin.value())

    def _lr_touched(self) -> bool:
        return self.lr_slider.value() != _lr_to_slider(self.settings.lr)

    def _show_settings(self) -> None:
        s = self.settings
        with signals_blocked(self.dataset_box, self.noise_spin, self.points_spin, self.activation_box,
                             self.loss_box, self.method_box, self.lr_slider, self.l2_spin,
                             self.batch_spin, self.dropout_spin, self.validation_spin,
                             self.patience_spin, self.max_steps_spin, self.seed_spin):
            self.dataset_box.setCurrentIndex(list(DATASETS).index(s.dataset))
            self.noise_spin.setValue(s.noise)
            self.points_spin.setValue(s.points)
            self.activation_box.setCurrentIndex(list(ACTIVATIONS).index(s.activation))
            self.loss_box.setCurrentIndex(self.loss_box.findData(_loss_key(s)))
            self.method_box.setCurrentIndex(list(optimizers.METHODS).index(s.method))
            self.lr_slider.setValue(_lr_to_slider(s.lr))
            self.l2_spin.setValue(s.l2)
            self.batch_spin.setValue(s.batch_size)
            self.dropout_spin.setValue(s.dropout)
            self.validation_spin.setValue(s.validation)
            self.patience_spin.setValue(s.patience)
            self.max_steps_spin.setValue(s.max_steps)
            self.seed_spin.setValue(s.seed)
        self.lr_label.setText(f"{s.lr:.3g}")
        self.widths_edit.setText(", ".join(str(w) for w in s.hidden))
        self.widths_message.setVisible(False)
        self._enable_data_controls()

    def _enable_data_controls(self) -> None:
        toy = self.settings.dataset != "digits"
        self.noise_spin.setEnabled(toy)
        self.points_spin.setEnabled(toy)
        self.map_stack.setCurrentWidget(self.map_view if toy else self.digits_view)
        self.explain.setText(EXPLAIN_TOY if toy else EXPLAIN_DIGITS)

    def _on_lr_moved(self, value: int) -> None:
        self.lr_label.setText(f"{_slider_to_lr(value):.3g}")
        if not self.lr_slider.isSliderDown():
            self._lr_apply.start()  # keys and wheel: apply when they pause

    def _on_settings(self, *_args) -> None:
        self._lr_apply.stop()
        settings = self._read_settings()
        if settings != self.settings:
            self.settings = settings
            self._enable_data_controls()
            self._new_network()

    def _check_widths(self, text: str) -> tuple[int, ...] | None:
        try:
            widths = parse_widths(text)
        except ValueError as error:
            kept = ", ".join(str(w) for w in self.settings.hidden)
            self.widths_message.setText(f"{error}. The network keeps {kept}.")
            self.widths_message.setVisible(True)
            self.widths_edit.setStyleSheet("QLineEdit { border: 1px solid #b00020; }")
            return None
        self.widths_message.setVisible(False)
        self.widths_edit.setStyleSheet("")
        return widths

    def _apply_widths(self) -> None:
        widths = self._check_widths(self.widths_edit.text())
        if widths is not None and widths != self.settings.hidden:
            self.settings = replace(self.settings, hidden=widths)
            self._new_network()

    def _new_network(self, replay_to: int = 0, ended: bool = False) -> None:
        """A new session for the current settings; results of older ones are dropped. With
        ``replay_to`` (or ``ended``), the new network is trained, paused, up to that step
        (and until training ends)."""
        self._next.stop()
        self._session = TrainingSession(self.settings)
        self._replay = (replay_to, ended) if replay_to or ended else None
        self._train_history.clear()
        self._val_history.clear()
        self.networkReset.emit(self.settings)
        if replay_to or ended:
            self._submit(replay_to + int(ended), REPLAY_SECONDS)
        elif self._playing:
            self._submit_chunk()
        else:
            self._submit(0, None)

    def _refuse_while_replaying(self) -> bool:
        if self._replay is not None:
            self._say(f"Replaying the saved run up to step {self._replay[0]}: Play and Step "
                      "work once it is there (Reset abandons it).")
        return self._replay is not None

    # -- jobs --------------------------------------------------------------------------
    def _submit(self, steps: int, budget: float | None) -> None:
        if self._closed:
            return
        self._frame_time = time.monotonic()
        self.runner.submit(self.chunk_request(steps, budget))

    def _submit_chunk(self) -> None:
        """The next chunk while playing, at the chosen speed."""
        if not self._playing:
            return
        speed = self.speed_box.currentData()
        if speed:
            self._submit(int(speed), None)
        else:
            self._submit(MAX_CHUNK_STEPS, CHUNK_SECONDS)

    def _on_chunk(self, job: JobResult) -> None:
        snap: Snapshot = job.value
        if snap.session != self._session.id:
            return  # a network that has been replaced
        self._absorb(snap)
        if self._replay is not None:
            self._on_replayed(snap)
            return
        animating = self._playing
        if self._playing:
            if snap.done:
                self._set_playing(False)
            elif self.speed_box.currentData():
                wait = SLOW_FRAME_MS - 1000 * (time.monotonic() - self._frame_time)
                self._next.start(max(0, int(wait)))
            else:
                self._submit_chunk()  # the worker trains while this one is drawn
        self._draw(snap, animating and not snap.done)
        self.trained.emit(snap)

    def _on_replayed(self, snap: Snapshot) -> None:
        """A chunk of a replayed run: ask for the rest, or end the replay. A run that had
        ended takes one step more, which ends it again (a diverging step is not counted)."""
        target, ended = self._replay
        missing = target - snap.step
        going = not snap.done and (missing > 0 or (ended and missing == 0))
        if going:
            self._submit(missing + int(ended), REPLAY_SECONDS)
        else:
            self._replay = None
        self._draw(snap, animating=going)
        self.trained.emit(snap)
        if going:
            self._say(f"step {snap.step} of {target}\nreplaying the saved run…")
        elif missing or snap.done != ended:
            self._say(f"step {snap.step} · this run went differently when replayed here: the saved "
                      f"one was at step {target}{' and had ended' if ended else ''}\n{snap.status}",
                      error=True)

    def _on_failed(self, failure: JobFailure) -> None:
        self._replay = None
        self.pause()
        self._say(f"The network could not be trained: {failure.message}", error=True)

    def _set_playing(self, playing: bool) -> None:
        self._playing = playing
        self.play_button.setText("Pause" if playing else "Play")

    # -- drawing -----------------------------------------------------------------------
    def _absorb(self, snap: Snapshot) -> None:
        self._train_history.extend(snap.train_from, snap.train_steps, snap.train_losses)
        self._val_history.extend(snap.val_from, snap.val_steps, snap.val_losses)

    def _draw(self, snap: Snapshot, animating: bool) -> None:
        first = self.snapshot is None or self.snapshot.session != snap.session
        self.snapshot = snap
        if snap.x_range is not None:
            if self._points_session != snap.session:
                self._draw_points(snap)
            self._draw_map(snap)
        if first or not animating:
            for draw in self._side_views:
                draw(snap)
            return
        # While playing, the slower views take turns, one per frame, each redrawn about 10
        # times a second: no frame paints them all (that frame would stall the GUI).
        now = time.monotonic()
        if now - self._side_time >= SIDE_VIEWS_MS / 1000 / len(self._side_views):
            self._side_time = now
            self._side_turn = (self._side_turn + 1) % len(self._side_views)
            self._side_views[self._side_turn](snap)

    @property
    def _side_views(self):
        return (self._draw_loss, self._draw_units, self._draw_digits, self._show_status)

    def _draw_points(self, snap: Snapshot) -> None:
        self._points_session = snap.session
        classes = snap.train.classes
        for k in range(len(CLASS_COLORS)):
            for item, data in ((self.train_points[k], snap.train), (self.val_points[k], snap.validation)):
                if data is None or k >= classes:
                    item.setData([], [])
                    continue
                pts = data.X[data.y == k]
                item.setData(pts[:, 0], pts[:, 1])
        binary = classes == 2
        self.colorbar.setVisible(binary)
        self.map_plot.setTitle("Decision map: P(class 1 | x1, x2)" if binary else
                               "Decision map: colour mixes the class probabilities", color="k")
        self._fill_map_legend(classes, snap.validation is not None, binary)
        lo, hi = snap.x_range
        if self._map_bounds != (lo, hi):
            self._map_bounds = (lo, hi)
            # A little padding: a map flush with the axes would repaint them with every frame.
            self.map_plot.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0.02)

    def _draw_map(self, snap: Snapshot) -> None:
        (x0, x1), (y0, y1) = snap.x_range, snap.y_range
        image = snap.decision
        n = image.shape[0]
        dx, dy = (x1 - x0) / (n - 1), (y1 - y0) / (n - 1)
        if image.ndim == 2:
            self.map_image.setLookupTable(self._probability_lut)  # same object: no work
            self.map_image.setImage(image, levels=(0.0, 1.0), autoLevels=False)
        else:
            self.map_image.setLookupTable(None)
            self.map_image.setImage(image, autoLevels=False, levels=(0, 255))
        self.map_image.setRect(x0 - dx / 2, y0 - dy / 2, x1 - x0 + dx, y1 - y0 + dy)
        if snap.boundary is not None:
            self.boundary.setData(*snap.boundary)
            self.boundary.setVisible(True)
        else:
            self.boundary.setData([], [])
            self.boundary.setVisible(False)

    def _draw_loss(self, snap: Snapshot) -> None:
        steps, losses = self._train_history.data()
        self.train_curve.setData(steps, np.maximum(losses, LOSS_FLOOR))
        vsteps, vlosses = self._val_history.data()
        self.val_curve.setData(vsteps, np.maximum(vlosses, LOSS_FLOOR))
        self.val_curve.setVisible(snap.validation is not None)
        if snap.best_step is not None and snap.best_loss is not None and math.isfinite(snap.best_loss):
            # The plot is in log mode: items added by hand take log10 of the value.
            self.best_marker.setData([snap.best_step], [math.log10(max(snap.best_loss, LOSS_FLOOR))])
            self.best_line.setValue(snap.best_step)
            self.best_line.setVisible(True)
        else:
            self.best_marker.setData([], [])
            self.best_line.setVisible(False)

    def _draw_units(self, snap: Snapshot) -> None:
        self._layout_units(snap)
        digits = snap.x_range is None
        for u in snap.units:
            y, x, side = self.unit_cells[(u.layer, u.unit)]
            # A weight image's row 0 is the digit's top row; the mosaic's y axis points up.
            self._mosaic[y:y + side, x:x + side] = u.image[::-1] if digits else u.image
        self.units_image.setImage(self._mosaic, levels=(-1.0, 1.0), autoLevels=False)

    def _draw_digits(self, snap: Snapshot) -> None:
        if snap.confusion is None:
            return
        counts = snap.confusion
        per_row = np.maximum(counts.sum(axis=1, keepdims=True), 1)
        share = (counts / per_row).astype(np.float32)
        self.confusion_image.setImage(share, levels=(0.0, 1.0), autoLevels=False)
        self.confusion_image.setRect(-0.5, -0.5, 10, 10)  # after setImage: cell (r, c) centred on (c, r)
        for r in range(10):
            for c in range(10):
                item = self.confusion_text[r][c]
                item.setText(str(int(counts[r, c])) if counts[r, c] else "")
                item.setColor("w" if share[r, c] > 0.55 else "k")
        held = snap.validation if snap.validation is not None else snap.train
        which = "validation" if snap.validation is not None else "training"
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        self.confusion_plot.setTitle(f"Confusion matrix, {int(counts.sum())} {which} digits: "
                                     f"accuracy {100 * accuracy:.1f}%", color="k")
        if self._points_session != snap.session:
            self._points_session = snap.session
            for i, image in enumerate(self.sample_images):
                image.setImage(held.X[i].reshape(8, 8).astype(np.float32), levels=(0.0, 1.0), autoLevels=False)
        for i, label in enumerate(self.sample_labels):
            guess, truth = int(snap.predictions[i]), int(held.y[i])
            if guess == truth:
                label.setText(f"guess {guess}", color="#1b7837")
            else:
                label.setText(f"guess {guess} ✗", color="#b00020")

    def _show_status(self, snap: Snapshot) -> None:
        parts = [f"step {snap.step}", f"epoch {snap.epoch}", f"training loss {snap.train_loss:.4g}"]
        if snap.val_loss is not None:
            parts.append(f"validation loss {snap.val_loss:.4g}")
        if snap.val_accuracy is not None:
            parts.append(f"accuracy {100 * snap.val_accuracy:.1f}% (validation), "
                         f"{100 * snap.train_accuracy:.1f}% (training)")
        elif snap.train_accuracy is not None:
            parts.append(f"accuracy {100 * snap.train_accuracy:.1f}% (training)")
        state = snap.status
        if state == "ready":
            state = "ready: press Play (Space)"
        elif state == "training" and not self._playing:
            state = "paused"
        if snap.note:
            state += f" ({snap.note})"
        self._say(" · ".join(parts) + "\n" + state, error=state.startswith("diverged"))

    def _say(self, text: str, error: bool = False) -> None:
        """Show ``text`` (two lines at most) under the buttons and send it, on one line, to
        the window's status bar."""
        if "\n" not in text:
            text += "\n"
        self.status_label.setText(text)
        self.status_label.setToolTip(text)
        if error != self._error_shown:
            self._error_shown = error
            self.status_label.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")
        self.status.emit(" · ".join(line for line in text.splitlines() if line))


# -- export ------------------------------------------------------------------------------------

VIEWS = ("map", "loss", "units")


def _views(panel: PlaygroundPanel) -> dict[str, pg.GraphicsView]:
    return {"map": panel.map_stack.currentWidget(), "loss": panel.loss_view, "units": panel.units_view}


def export_playground(panel: PlaygroundPanel, path, view: str = "auto") -> Path:
    """Export the playground: .csv of the loss histories, .svg of one view (the map unless
    ``view`` names "loss" or "units"), .png of one view or of all three side by side."""
    path = Path(path)
    suffix = path.suffix.lower()
    if panel.snapshot is None:
        raise _export.ExportError("nothing to export yet: the network has not been built")
    if view not in ("auto", "all") + VIEWS:
        raise _export.ExportError(f"unknown view '{view}': use auto, all, {', '.join(VIEWS)}")
    if suffix in _export.TABLE:
        _export.write_bytes(path, loss_csv(panel).encode())
        return path
    views = _views(panel)
    if suffix in _export.VECTOR:
        return _export.save_scene(views["map" if view in ("auto", "all") else view], path)
    if suffix not in _export.RASTER:
        raise _export.ExportError(f"unsupported file type '{suffix}': use .png, .svg or .csv")
    if view in VIEWS:
        return _export.save_scene(views[view], path)
    images = [_export.scene_image(views[name]) for name in VIEWS]
    _export._save_image(_export.side_by_side(images), path)
    return path


def loss_csv(panel: PlaygroundPanel) -> str:
    """The loss histories as CSV: step, training (mini-batch) loss, validation loss (blank
    where it was not evaluated)."""
    steps, losses = panel._train_history.data()
    vsteps, vlosses = panel._val_history.data()
    validation = dict(zip(vsteps.tolist(), vlosses.tolist()))
    out = io.StringIO()
    out.write("step,train_loss,validation_loss\n")
    for k, loss in zip(steps.tolist(), losses.tolist()):
        v = validation.get(k)
        out.write(f"{k},{loss!r},{'' if v is None else repr(v)}\n")
    return out.getvalue()


__all__ = ["ChunkRequest", "PlaygroundPanel", "PlaygroundSettings", "Snapshot", "TrainingSession",
           "export_playground", "loss_csv", "parse_widths", "train_chunk"]
