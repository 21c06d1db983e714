"""Backpropagation lab: seed 003's 3-unit ReLU network, one equation at a time.

Every number comes from ``engine.backprop``: the record of one forward and backward pass
(``three_unit_pass``) and its equations as steps with the numbers substituted
(``steps``). The panel only decides how much of the walk is shown: "Forward" applies the next
forward equation, "Backward" the next backward one, "Step" takes one gradient-descent step
(eq. 6) and starts a new walk. The record is a closed form in nine numbers (microseconds), so
it is computed on the GUI thread; the loss over two weights is a grid and goes to a worker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from app import session
from app.contour_view import ContourView
from app.gl.surface_view import create_surface_view
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts
from engine import backprop

#: A network where every unit is alive, so the first backward walk shows every gradient.
DEFAULT_WEIGHTS = {"w10_1": 0.1, "w11_1": 0.5, "w12_1": 0.3, "w20_1": -0.2, "w21_1": -0.4,
                   "w22_1": 0.4, "w10_2": 0.1, "w11_2": 0.8, "w12_2": -0.5}
WEIGHT_RANGE = (-3.0, 3.0)
INPUT_RANGE = (-3.0, 3.0)
LR_RANGE = (0.0001, 10.0)
MAX_PATH = 10_000  # points of the descent trail kept (and saved in a session)
POSITIVE, NEGATIVE = "#2166ac", "#b2182b"  # edge colours by the sign of the weight
HIGHLIGHT = "#ffb000"


def weight_label(name: str) -> str:
    """w11_2 -> w₁₁⁽²⁾, as the seed writes it."""
    sub = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    ij, layer = name[1:].split("_")
    return f"w{ij.translate(sub)}⁽{layer}⁾".replace("⁽1⁾", "⁽¹⁾").replace("⁽2⁾", "⁽²⁾")


def _fmt(value: float) -> str:
    return backprop.format_number(value).replace("-", "−")


@dataclass
class BackpropSettings:
    """The instance, the weights and the walk's options (plain data)."""

    x1: float = 1.0
    x2: float = 2.0
    y: float = 2.0
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    lr: float = 0.05
    pair: tuple[str, str] = ("w11_2", "w12_2")


# -- the network diagram ------------------------------------------------------------------------

# Node positions (data units): inputs, the hidden layer with its constant, the output, the loss.
_POS = {"x0": (0.0, 3.0), "x1": (0.0, 1.5), "x2": (0.0, 0.0), "b1": (4.0, 3.0),
        "1_1": (4.0, 1.5), "2_1": (4.0, 0.0), "1_2": (8.0, 0.75), "loss": (10.6, 0.75)}
_EDGES = {}  # weight name -> (source node, target node)
for _unit, _names in backprop.INCOMING.items():
    for _name in _names:
        _j, _layer = _name[2], _name[-1]
        _source = f"x{_j}" if _layer == "1" else {"0": "b1", "1": "1_1", "2": "2_1"}[_j]
        _EDGES[_name] = (_source, _unit)
# Where along each edge (0 at the source, 1 at the target) its label sits: chosen so that no
# two labels and no label and node overlap.
_LABEL_AT = {"w10_1": 0.6, "w11_1": 0.5, "w12_1": 0.6, "w20_1": 0.3, "w21_1": 0.3,
             "w22_1": 0.5, "w10_2": 0.5, "w11_2": 0.5, "w12_2": 0.5}
_NODE_NAMES = {"x0": "x₀", "x1": "x₁", "x2": "x₂", "b1": "a₀⁽¹⁾", "1_1": "unit 1⁽¹⁾",
               "2_1": "unit 2⁽¹⁾", "1_2": "output 1⁽²⁾", "loss": "loss ℓ"}
_CARD = "<div style='text-align:center; font-size:10pt'>{}</div>"


class NetworkDiagram(pg.PlotWidget):
    """The 3-unit network: each node a card with its z, a and delta; edges sized and coloured
    by their weight and labelled with w and, once the backward pass reached it, dl/dw."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        plot = self.getPlotItem()
        for axis in ("left", "bottom"):
            plot.hideAxis(axis)
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setXRange(-1.0, 11.8, padding=0)
        plot.setYRange(-0.75, 3.55, padding=0)
        self.edges: dict[str, pg.PlotCurveItem] = {}
        self.edge_glow: dict[str, pg.PlotCurveItem] = {}
        self.edge_text: dict[str, pg.TextItem] = {}
        small = QFont()
        small.setPointSize(9)
        for name, (a, b) in _EDGES.items():
            (x0, y0), (x1, y1) = _POS[a], _POS[b]
            glow = pg.PlotCurveItem([x0, x1], [y0, y1], pen=pg.mkPen(HIGHLIGHT, width=16))
            glow.setVisible(False)
            plot.addItem(glow)
            line = pg.PlotCurveItem([x0, x1], [y0, y1])
            plot.addItem(line)
            t = _LABEL_AT[name]
            text = pg.TextItem(anchor=(0.5, 0.5), color="k", fill=pg.mkBrush(255, 255, 255, 230))
            text.setFont(small)
            text.setPos(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
            text.setZValue(20)
            plot.addItem(text)
            self.edges[name], self.edge_glow[name], self.edge_text[name] = line, glow, text
        (ox, oy), (lx, ly) = _POS["1_2"], _POS["loss"]
        plot.addItem(pg.PlotCurveItem([ox, lx], [oy, ly],
                                      pen=pg.mkPen("#666", width=2, style=Qt.PenStyle.DashLine)))
        self.cards: dict[str, pg.TextItem] = {}
        for node, (x, y) in _POS.items():
            card = pg.TextItem(anchor=(0.5, 0.5), color="k")
            card.setPos(x, y)
            card.setZValue(30)
            plot.addItem(card)
            self.cards[node] = card

    def draw(self, record, shown: set, dead_known: set, current) -> None:
        """Draw ``record``, showing only the quantities in ``shown`` (a set of keys).

        Keys are record attribute names ("z1_1", "delta1_1", ...) and ("grad", weight).
        ``dead_known`` are the units whose z has been computed (and may be marked dead);
        ``current`` is the last applied :class:`engine.backprop.Step` or None.
        """
        weights = record.weights
        biggest = max(max(abs(w) for w in weights.values()), 1e-9)
        for name, line in self.edges.items():
            w = weights[name]
            color = POSITIVE if w >= 0 else NEGATIVE
            line.setPen(pg.mkPen(color, width=1.0 + 7.0 * abs(w) / biggest))
            lines = [f"{weight_label(name)} = {_fmt(w)}"]
            if ("grad", name) in shown:
                lines.append(f"∂ℓ/∂w = {_fmt(record.grad[name])}")
            self.edge_text[name].setText("\n".join(lines))
            self.edge_glow[name].setVisible(current is not None and current.edge == name)
        for node, card in self.cards.items():
            dead = node in dead_known and node in backprop.UNITS and record.is_dead(node)
            here = current is not None and current.node == node
            if here:
                fill = pg.mkBrush("#ffe7a3")
            elif dead:
                fill = QBrush(QColor("#b0b0b0"), Qt.BrushStyle.Dense6Pattern)
            elif node in ("x0", "x1", "x2", "b1"):
                fill = pg.mkBrush("#ececec")
            elif node == "loss":
                fill = pg.mkBrush("#fff6e0")
            else:
                fill = pg.mkBrush("w")
            card.fill = fill
            card.border = pg.mkPen(HIGHLIGHT if here else "#b2182b" if dead else "k",
                                   width=3 if here or dead else 1.2)
            card.setHtml(_CARD.format(self._node_html(node, record, shown, dead)))
            card.update()

    @staticmethod
    def _node_html(node: str, r, shown: set, dead: bool) -> str:
        rows = [f"<b>{_NODE_NAMES[node]}</b>"]
        if node == "x0" or node == "b1":
            rows.append("= 1 (constant)")
        elif node == "x1":
            rows.append(f"= {_fmt(r.x1)}")
        elif node == "x2":
            rows.append(f"= {_fmt(r.x2)}")
        elif node in backprop.UNITS:
            i, layer = node.split("_")
            sup = "⁽¹⁾" if layer == "1" else "⁽²⁾"
            sub = "₁" if i == "1" else "₂"
            if f"z{node}" in shown:
                rows.append(f"z{sub}{sup} = {_fmt(r.z(node))}")
            a_key = "y_hat" if node == "1_2" else f"a{node}"
            if a_key in shown:
                name = "ŷ = a₁⁽²⁾" if node == "1_2" else f"a{sub}{sup}"
                rows.append(f"{name} = {_fmt(getattr(r, a_key))}")
            if f"dL_da{node}" in shown:
                rows.append(f"∂ℓ/∂a{sub}{sup} = {_fmt(getattr(r, f'dL_da{node}'))}")
            if f"delta{node}" in shown:
                rows.append(f"<b>δ{sub}{sup} = {_fmt(getattr(r, f'delta{node}'))}</b>")
            if dead:
                rows.append("<span style='color:#b2182b'>dead: z ≤ 0, so σ′(z) = 0<br>"
                            "and its incoming ∂ℓ/∂w are 0</span>")
        elif node == "loss":
            rows.append(f"y = {_fmt(r.y)}")
            if "loss" in shown:
                rows.append(f"ℓ = (ŷ − y)² = {_fmt(r.loss)}")
            if "dL_dyhat" in shown:
                rows.append(f"∂ℓ/∂ŷ = {_fmt(r.dL_dyhat)}")
        return "<br>".join(rows)


# -- the panel --------------------------------------------------------------------------------

class BackpropPanel(QWidget):
    """The 3-unit network of seed 003 with its forward and backward pass, step by step."""

    title = "Backpropagation"
    export_filters = {
        "PNG image, network diagram (*.png)": ("auto", ".png"),
        "SVG drawing, network diagram (*.svg)": ("auto", ".svg"),
        "PNG image, loss over two weights in 3-D and as a contour map (*.png)": ("both", ".png"),
        "SVG drawing, loss over two weights as a contour map (*.svg)": ("contour", ".svg"),
        "CSV table of the weights and gradients (*.csv)": ("auto", ".csv"),
    }
    status = Signal(str)
    walked = Signal(int)  # position in the walk after a change
    lossSurfaceDrawn = Signal(object)

    def __init__(self, parent=None, settings: BackpropSettings | None = None):
        super().__init__(parent)
        self.settings = settings or BackpropSettings()
        self.position = 0  # steps of the walk applied (0 .. len(self.walk))
        self.path: list[tuple[float, float]] = []  # (w_a, w_b) after each Step
        self.surface = None
        self.runner = JobRunner(backprop.compute_loss_surface, "loss over two weights", self)
        self.runner.finished.connect(self._on_surface)
        self.runner.failed.connect(self._on_surface_failed)
        self._surface_timer = QTimer(self, singleShot=True, interval=60)
        self._surface_timer.timeout.connect(self._request_surface)
        self._build()
        self._recompute(surface=True)

    # -- construction ---------------------------------------------------------------------
    def _slider(self, lo: float, hi: float, value: float, tip: str) -> QLabeledDoubleSlider:
        slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        slider.setRange(min(lo, value), max(hi, value))
        slider.setDecimals(2)
        slider.setSingleStep(0.01)
        slider.setValue(value)
        slider.setToolTip(tip)
        return slider

    def _build(self) -> None:
        s = self.settings
        controls = QWidget()
        column = QVBoxLayout(controls)

        ibox = QGroupBox("Training instance ((x₁, x₂), y)")
        ilay = QFormLayout(ibox)
        self.input_sliders = {}
        for key, label, tip in (("x1", "x₁", "First input"), ("x2", "x₂", "Second input"),
                                ("y", "y", "Target: the loss is ℓ = (ŷ − y)² (eq. 20)")):
            slider = self._slider(*INPUT_RANGE, getattr(s, key), tip)
            slider.valueChanged.connect(self._on_inputs)
            ilay.addRow(label, slider)
            self.input_sliders[key] = slider
        column.addWidget(ibox)

        wbox = QGroupBox("Weights (wᵢⱼ⁽ˡ⁾: unit j of layer l−1 → unit i of layer l)")
        wlay = QFormLayout(wbox)
        self.weight_sliders: dict[str, QLabeledDoubleSlider] = {}
        for name in backprop.WEIGHT_NAMES:
            source, target = _EDGES[name]
            tip = (f"{weight_label(name)}: from {_NODE_NAMES[source]} to {_NODE_NAMES[target]}"
                   + (" (a bias: its input is the constant 1)" if name[2] == "0" else ""))
            slider = self._slider(*WEIGHT_RANGE, s.weights[name], tip)
            slider.valueChanged.connect(self._on_weights)
            wlay.addRow(weight_label(name), slider)
            self.weight_sliders[name] = slider
        column.addWidget(wbox)

        abox = QGroupBox("Walk through the passes")
        alay = QVBoxLayout(abox)
        row = QHBoxLayout()
        self.forward_button = QPushButton("Forward")
        self.forward_button.setToolTip("Apply the next equation of the forward pass (F)")
        self.forward_button.clicked.connect(self.forward)
        self.backward_button = QPushButton("Backward")
        self.backward_button.setToolTip("Apply the next equation of the backward pass (B)")
        self.backward_button.clicked.connect(self.backward)
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("One gradient-descent step, w ← w − η ∂ℓ/∂w (eq. 6) (S)")
        self.step_button.clicked.connect(self.step)
        for button in (self.forward_button, self.backward_button, self.step_button):
            row.addWidget(button)
        alay.addLayout(row)
        row = QHBoxLayout()
        self.all_button = QPushButton("Show both passes")
        self.all_button.setToolTip("Apply every remaining equation (End)")
        self.all_button.clicked.connect(self.show_all)
        self.restart_button = QPushButton("Restart walk")
        self.restart_button.setToolTip("Hide the computed values and start again (Home)")
        self.restart_button.clicked.connect(self.restart)
        row.addWidget(self.all_button)
        row.addWidget(self.restart_button)
        alay.addLayout(row)
        form = QFormLayout()
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(4)
        self.lr_spin.setRange(*LR_RANGE)
        self.lr_spin.setSingleStep(0.01)
        self.lr_spin.setValue(s.lr)
        self.lr_spin.setToolTip("Learning rate η of the Step button (eq. 6)")
        self.lr_spin.valueChanged.connect(self._on_lr)
        form.addRow("learning rate η", self.lr_spin)
        alay.addLayout(form)
        column.addWidget(abox)

        pbox = QGroupBox("Loss over two weights")
        play = QFormLayout(pbox)
        self.pair_boxes = []
        for k, label in enumerate(("horizontal axis", "vertical axis")):
            box = QComboBox()
            for name in backprop.WEIGHT_NAMES:
                box.addItem(weight_label(name), name)
            box.setCurrentIndex(backprop.WEIGHT_NAMES.index(s.pair[k]))
            box.setToolTip("The loss as a function of two weights, the other seven held fixed")
            box.currentIndexChanged.connect(self._on_pair)
            play.addRow(label, box)
            self.pair_boxes.append(box)
        self.pair_message = QLabel()
        self.pair_message.setStyleSheet("color: #b2182b")
        self.pair_message.setWordWrap(True)
        play.addRow(self.pair_message)
        column.addWidget(pbox)
        column.addStretch(1)

        # Views: the diagram and the equation on top; the gradient table and the loss below.
        self.diagram = NetworkDiagram()
        self.diagram.setMinimumSize(640, 330)
        self.equation = QLabel()
        self.equation.setWordWrap(True)
        self.equation.setTextFormat(Qt.TextFormat.RichText)
        self.equation.setMinimumHeight(90)
        self.equation.setStyleSheet("QLabel { background: #fbfbf4; border: 1px solid #ccc;"
                                    " padding: 6px; font-size: 13pt; }")
        self.table = QTableWidget(len(backprop.WEIGHT_NAMES), 5)
        self.table.setHorizontalHeaderLabels(["weight", "w", "backprop ∂ℓ/∂w",
                                              "finite diff.", "|diff.|"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("Each gradient from the backward pass beside a central-difference "
                              "estimate (h = 1e-6)")
        self.contour = ContourView()
        self.contour.setMinimumSize(260, 220)
        self.contour.set_arrows(None)
        self.marker = pg.ScatterPlotItem(size=16, symbol="star", brush=pg.mkBrush("w"),
                                         pen=pg.mkPen("k", width=1.2))
        self.marker.setZValue(20)
        self.trail = pg.PlotCurveItem(pen=pg.mkPen("w", width=2))
        self.trail.setZValue(19)
        self.contour.plot.addItem(self.trail)
        self.contour.plot.addItem(self.marker)
        self.view3d = create_surface_view()
        self.view3d.setMinimumSize(260, 220)
        self.view3d.setAxisLabels(z="loss ℓ")

        top = QWidget()
        tlay = QVBoxLayout(top)
        tlay.setContentsMargins(0, 0, 0, 0)
        tlay.addWidget(self.diagram, 1)
        tlay.addWidget(self.equation)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.table)
        bottom.addWidget(self.contour)
        bottom.addWidget(self.view3d)
        bottom.setSizes([420, 380, 380])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(bottom)
        right.setSizes([560, 330])
        controls_beside_views(self, controls, right, 380)
        panel_shortcuts(self, [(Qt.Key.Key_F, self.forward), (Qt.Key.Key_B, self.backward),
                               (Qt.Key.Key_S, self.step), (Qt.Key.Key_End, self.show_all),
                               (Qt.Key.Key_Home, self.restart)])

    # -- public API ------------------------------------------------------------------------
    @property
    def weights(self) -> dict[str, float]:
        return dict(self.settings.weights)

    def set_weights(self, weights: dict[str, float]) -> None:
        """Set weights (any subset of the nine) and redraw."""
        for name, value in weights.items():
            self._show_weight(name, value)
        self.settings.weights.update({k: float(v) for k, v in weights.items()})
        self._recompute(surface=True)

    def _show_weight(self, name: str, value: float) -> None:
        slider = self.weight_sliders[name]
        lo, hi = slider.minimum(), slider.maximum()
        if not lo <= value <= hi:  # a step may leave the slider's range: widen it
            slider.setRange(min(lo, value), max(hi, value))
        slider.blockSignals(True)
        slider.setValue(value)
        slider.blockSignals(False)

    def set_inputs(self, x1: float | None = None, x2: float | None = None,
                   y: float | None = None) -> None:
        for key, value in (("x1", x1), ("x2", x2), ("y", y)):
            if value is not None:
                self.input_sliders[key].setValue(value)

    def forward(self) -> None:
        """Apply the next forward equation."""
        if self.position < self.forward_count:
            self.position += 1
            self._draw()

    def backward(self) -> None:
        """Apply the next backward equation (the forward pass must be complete)."""
        if self.position < self.forward_count:
            self.status.emit("Run the forward pass first: the backward pass needs ŷ and every z.")
            return
        if self.position < len(self.walk):
            self.position += 1
            self._draw()

    def show_all(self) -> None:
        self.position = len(self.walk)
        self._draw()

    def restart(self) -> None:
        self.position = 0
        self._draw()

    def step(self) -> None:
        """One gradient-descent step with the panel's learning rate (seed 003 eq. 6)."""
        before = self.record.loss
        new = backprop.gradient_step(self.settings.weights, self.record.grad, self.settings.lr)
        a, b = self.settings.pair
        if not self.path:
            self.path.append((self.settings.weights[a], self.settings.weights[b]))
        self.set_weights(new)
        self.path.append((new[a], new[b]))
        del self.path[:-MAX_PATH]
        self.position = 0
        self._draw()
        self.status.emit(f"Gradient step with η = {self.settings.lr:g}: loss {_fmt(before)} → "
                         f"{_fmt(self.record.loss)}. Walk the passes again for the new weights.")

    @property
    def forward_count(self) -> int:
        return sum(1 for s in self.walk if s.phase == "forward")

    def applied_steps(self) -> list:
        return self.walk[: self.position]

    def refresh(self) -> None:
        self._recompute(surface=True)

    # -- session ---------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The instance, the weights, the walk's options and position, and the descent trail:
        everything on screen (the loss surface is recomputed from them)."""
        s = self.settings
        return {"x1": s.x1, "x2": s.x2, "y": s.y, "weights": dict(s.weights), "lr": s.lr,
                "pair": list(s.pair), "position": self.position,
                "path": [[a, b] for a, b in self.path]}

    def restore_session_state(self, state: dict) -> None:
        """Show a :meth:`session_state`; missing keys take their defaults, unknown keys are
        ignored. Everything is checked first: a bad value raises ``ValueError`` (a
        :class:`app.session.SessionError` naming its key) and changes nothing."""
        settings, position, path = self._read_state(state)
        for key, slider in self.input_sliders.items():
            slider.blockSignals(True)
            slider.setValue(getattr(settings, key))
            slider.blockSignals(False)
        for name, value in settings.weights.items():
            self._show_weight(name, value)
        self.lr_spin.blockSignals(True)
        self.lr_spin.setValue(settings.lr)
        self.lr_spin.blockSignals(False)
        settings.lr = float(self.lr_spin.value())  # the spin box's precision, as when typed
        for box, name in zip(self.pair_boxes, settings.pair):
            box.blockSignals(True)
            box.setCurrentIndex(backprop.WEIGHT_NAMES.index(name))
            box.blockSignals(False)
        self.pair_message.clear()
        self.settings = settings
        self.path = path
        self.position = position
        self._recompute(surface=True)

    @staticmethod
    def _read_state(state: dict) -> tuple[BackpropSettings, int, list[tuple[float, float]]]:
        """The settings, walk position and trail of ``state``, checked (the walk has the
        same number of equations for every network)."""
        if not isinstance(state, dict):
            raise session.SessionError("the backpropagation state must be an object")
        d = BackpropSettings()
        lo, hi = INPUT_RANGE
        inputs = {key: session.expect_number(state, key, low=lo, high=hi, default=getattr(d, key))
                  for key in ("x1", "x2", "y")}
        weights = dict(d.weights)
        given = session.expect_dict(state, "weights", default={})
        for name in backprop.WEIGHT_NAMES:  # any finite value: a step may leave the sliders' range
            weights[name] = session.expect_number(given, name, "weights", default=weights[name])
        lr = session.expect_number(state, "lr", low=LR_RANGE[0], high=LR_RANGE[1], default=d.lr)
        pair = session.expect_list(state, "pair", max_length=2, default=list(d.pair))
        if len(pair) != 2:
            raise session.SessionError("expected two weight names", "pair")
        pair = tuple(session.expect_str(pair, k, "pair", choices=backprop.WEIGHT_NAMES)
                     for k in range(2))
        if pair[0] == pair[1]:
            raise session.SessionError("expected two different weights", "pair")
        walk = len(backprop.steps(backprop.three_unit_pass(d.x1, d.x2, d.y, d.weights)))
        position = session.expect_int(state, "position", low=0, high=walk, default=0)
        points = session.expect_list(state, "path", max_length=MAX_PATH, default=[])
        path = []
        for i in range(len(points)):
            point = session.expect_list(points, i, "path", max_length=2)
            if len(point) != 2:
                raise session.SessionError("expected a pair of weights", f"path[{i}]")
            path.append((session.expect_number(point, 0, f"path[{i}]"),
                         session.expect_number(point, 1, f"path[{i}]")))
        return BackpropSettings(**inputs, weights=weights, lr=lr, pair=pair), position, path

    def export(self, path, view: str = "auto"):
        """.png/.svg of the diagram (or of the loss views with view="both"/"surface"/"contour"),
        .csv of the weights with both gradients."""
        from app import export

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            text = io.StringIO()
            text.write("weight,w,grad_backprop,grad_finite_difference\n")
            for name in backprop.WEIGHT_NAMES:
                text.write(f"{name},{self.record.weights[name]!r},{self.record.grad[name]!r},"
                           f"{self.finite_differences[name]!r}\n")
            export.write_bytes(path, text.getvalue().encode())
            return path
        if view in ("both", "surface", "contour"):
            return export._export_views(self, path, view)
        if suffix not in (".png", ".svg"):
            raise export.ExportError(f"the network is saved as .png, .svg or .csv, not '{suffix}'")
        return export.save_scene(self.diagram, path)

    def shutdown(self) -> None:
        self._surface_timer.stop()
        self.runner.shutdown()

    # -- computing -------------------------------------------------------------------------
    def _recompute(self, surface: bool = False) -> None:
        s = self.settings
        self.record = backprop.three_unit_pass(s.x1, s.x2, s.y, s.weights)
        self.walk = backprop.steps(self.record)
        self.finite_differences = backprop.finite_difference_gradient(s.x1, s.x2, s.y, s.weights)
        self._draw()
        self._fill_table()
        if surface:
            self._surface_timer.start()

    def _request_surface(self) -> None:
        s = self.settings
        a, b = s.pair
        ranges = []
        for name in (a, b):
            value = s.weights[name]
            old = None
            if self.surface is not None:
                req = self.surface.request
                old = req.range_a if name == req.name_a else req.range_b if name == req.name_b else None
            if old is not None and old[0] + 0.05 * (old[1] - old[0]) <= value <= old[1] - 0.05 * (old[1] - old[0]):
                ranges.append(old)  # keep the frame while the point stays well inside it
            else:
                ranges.append((round(value - 2.0, 2), round(value + 2.0, 2)))
        # The grid does not depend on the values of a and b: leave them out of the request,
        # so that a step that moves only the point reuses the surface.
        fixed = {**s.weights, a: 0.0, b: 0.0}
        request = backprop.LossSurfaceRequest(
            s.x1, s.x2, s.y, tuple(sorted(fixed.items())), a, b, ranges[0], ranges[1])
        if self.surface is not None and self.surface.request == request:
            self._draw_marker()
            return
        self.runner.submit(request)

    # -- drawing ---------------------------------------------------------------------------
    def _shown(self) -> tuple[set, set]:
        shown, dead_known = set(), set()
        for step in self.applied_steps():
            shown.add(("grad", step.key) if step.quantity == "grad" else step.quantity)
            if step.quantity.startswith("z"):
                dead_known.add(step.node)
        return shown, dead_known

    def _draw(self) -> None:
        shown, dead_known = self._shown()
        current = self.walk[self.position - 1] if self.position else None
        self.diagram.draw(self.record, shown, dead_known, current)
        n_forward = self.forward_count
        if current is None:
            text = ("<b>Forward (F)</b> applies the equations of the forward pass one at a time, "
                    "<b>Backward (B)</b> then those of the backward pass; <b>Step (S)</b> moves "
                    "every weight against its gradient. Drag the sliders to change the numbers.")
        else:
            where = (f"forward {self.position} / {n_forward}" if current.phase == "forward"
                     else f"backward {self.position - n_forward} / {len(self.walk) - n_forward}")
            text = (f"<span style='color:#666'>{where} · seed 003 {current.equation} · "
                    f"{current.title}</span><br><b>{current.symbolic}</b><br>"
                    f"{current.substituted.replace('-', '−')}")
        self.equation.setText(text)
        self.forward_button.setEnabled(self.position < n_forward)
        self.backward_button.setEnabled(n_forward <= self.position < len(self.walk))
        self.walked.emit(self.position)

    def _fill_table(self) -> None:
        r = self.record
        for row, name in enumerate(backprop.WEIGHT_NAMES):
            fd = self.finite_differences[name]
            cells = [weight_label(name), _fmt(r.weights[name]), _fmt(r.grad[name]), _fmt(fd),
                     f"{abs(r.grad[name] - fd):.1e}"]
            for col, text in enumerate(cells):
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.table.setItem(row, col, item)
                item.setText(text)
            dead = any(name in backprop.INCOMING[u] for u in r.dead)
            tip = ("Its unit is dead (z ≤ 0, σ′(z) = 0), so this gradient is exactly 0."
                   if dead else "")
            for col in range(5):
                self.table.item(row, col).setToolTip(tip)
                self.table.item(row, col).setForeground(QColor("#888" if dead else "#000"))

    def _on_surface(self, job: JobResult) -> None:
        result = job.value
        self.surface = result
        grid = result.grid
        self.contour.set_field(grid.x, grid.y, grid.z, result.color_range)
        self.contour.set_level_curves(result.curves, result.color_range)
        a, b = result.request.name_a, result.request.name_b
        self.contour.set_labels(weight_label(a), weight_label(b), "loss ℓ")
        self.view3d.setAxisLabels(x=weight_label(a), y=weight_label(b), z="loss ℓ")
        self.view3d.setSurface(grid.x, grid.y, grid.z, result.color_range, result.color_range)
        self._draw_marker()
        self.lossSurfaceDrawn.emit(result)

    def _on_surface_failed(self, failure: JobFailure) -> None:
        self.pair_message.setText(f"The loss surface could not be computed: {failure.message}")

    def _draw_marker(self) -> None:
        if self.surface is None:
            return
        a, b = self.settings.pair
        wa, wb = self.settings.weights[a], self.settings.weights[b]
        self.marker.setData([wa], [wb])
        if len(self.path) > 1:
            pts = np.array(self.path, dtype=float)
            self.trail.setData(pts[:, 0], pts[:, 1])
        else:
            self.trail.setData([], [])
        loss = float(self.record.loss)
        self.view3d.setBalls(np.array([[wa, wb, loss]]), ["#ffffff"])
        if len(self.path) > 1:
            pts = np.array(self.path, dtype=float)
            s = self.settings
            zs = [backprop.three_unit_pass(s.x1, s.x2, s.y, {**s.weights, a: p[0], b: p[1]}).loss
                  for p in pts]
            self.view3d.setPaths([(np.column_stack([pts, zs]), "#ffffff")])
        else:
            self.view3d.setPaths([])

    # -- handlers --------------------------------------------------------------------------
    def _on_inputs(self, *_args) -> None:
        for key, slider in self.input_sliders.items():
            setattr(self.settings, key, float(slider.value()))
        self.path.clear()
        self._recompute(surface=True)

    def _on_weights(self, *_args) -> None:
        self.settings.weights = {n: float(s.value()) for n, s in self.weight_sliders.items()}
        self.path.clear()
        self._recompute(surface=True)

    def _on_lr(self, value: float) -> None:
        self.settings.lr = float(value)

    def _on_pair(self, *_args) -> None:
        a, b = (box.currentData() for box in self.pair_boxes)
        if a == b:
            self.pair_message.setText("Pick two different weights.")
            return
        self.pair_message.clear()
        self.settings = replace(self.settings, pair=(a, b))
        self.path.clear()
        self._surface_timer.start()
