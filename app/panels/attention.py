"""Attention lab: a real transformer's attention, and seed 000's token selection on it.

The text goes to a worker, where ``engine.transformer`` runs all-MiniLM-L6-v2 in NumPy (or,
when the model package is missing, a clearly labelled random transformer) and returns every
layer's and head's attention. The selection of ``engine.attention`` (head sum, the mask
A = 1 - I, column sums, top-k) is a few array sums and runs where the settings change.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import session, style
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts, signals_blocked
from engine import attention, transformer

DEFAULT_TEXT = ("The cat sat on the mat because it was warm. "
                "Attention lets every token look at every other token.")
MASK_LABELS = {
    "elementwise": "A ∘ S (element-wise)",
    "product": "A · S (product, as printed)",
    "none": "none (keep the diagonal)",
}
MASK_HELP = ("The seed multiplies the head sum S by A = 1 − I to ignore each token's attention "
             "to itself. Element-wise (A ∘ S) does that: B is S with a zero diagonal, as in the "
             "seed's worked example. The matrix product A · S, as the formula is printed, "
             "instead adds up the other rows: B_ij = Σ_{k≠i} S_kj, which keeps the diagonal.")
MAX_TEXT = 1_000_000  # characters of text a session may hold (the model reads 512 tokens)
MAX_INDEX = 63  # largest 0-based layer or head a session may name (MiniLM has 6 and 12)
MAX_K = 20
SIDE_VIEWS = ("heads", "sum", "masked")  # the tabs beside the map, as a session names them
TOP_COLOR = "#d95f02"
BAR_COLOR = "#9ecae1"
SELECT_COLOR = (255, 80, 0)


@dataclass(frozen=True)
class AttentionRequest:
    text: str


@dataclass(frozen=True, eq=False)
class AttentionResult:
    output: transformer.TransformerOutput
    notice: str  # "" for the real model, else why a random transformer stands in


def compute_attention(request: AttentionRequest):
    """Encode ``request.text`` with MiniLM, or with the random transformer when MiniLM is
    not installed (the notice says so and how to install it). A progress generator that
    yields after each encoder layer (a newer text or closing the window stops it there)
    and returns an :class:`AttentionResult`."""
    try:
        model = transformer.load_minilm()
        notice = ""
    except transformer.ModelUnavailable as error:
        model = transformer.random_transformer(0)
        notice = f"{error} Meanwhile: {model.name}."
    output = yield from model.encode_steps(request.text)
    return AttentionResult(output, notice)


@dataclass
class AttentionSettings:
    text: str = DEFAULT_TEXT
    layer: int = 0  # 0-based; the panel shows 1-based numbers
    head: int = 0
    sum_over: str = "layer"  # the selection sums the heads of "layer" or of "all" layers
    mask: str = "elementwise"
    exclude_special: bool = True
    merge_words: bool = False
    k: int = 3


# -- views ---------------------------------------------------------------------------------------

class AttentionMap(pg.PlotWidget):
    """A T x T matrix with the tokens on both axes; rows are queries, columns keys.

    ``hovered`` carries a read-out of the value under the mouse; ``clicked`` the token index
    of the row or column clicked.
    """

    hovered = Signal(str)
    clicked = Signal(int)

    def __init__(self, title: str = "", parent=None):
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        self.plot.setTitle(title, color="k")
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setAspectLocked(True)
        self.plot.setLabel("bottom", "key: attended to (column)")
        self.plot.setLabel("left", "query: attending (row)")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("k")
            self.plot.getAxis(axis).setPen("k")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(style.colormap().getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=style.colormap(), interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        pen = pg.mkPen(SELECT_COLOR, width=2.5)
        self.row_box = pg.QtWidgets.QGraphicsRectItem()
        self.col_box = pg.QtWidgets.QGraphicsRectItem()
        for box in (self.row_box, self.col_box):
            box.setPen(pen)
            box.setZValue(10)
            box.setVisible(False)
            self.plot.addItem(box)
        self.matrix = np.zeros((1, 1))
        self.tokens: list[str] = []
        self.scene().sigMouseMoved.connect(self._on_move)
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_matrix(self, matrix: np.ndarray, tokens: list[str], title: str | None = None,
                   levels: tuple[float, float] | None = None) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float64)
        self.tokens = list(tokens)
        T = self.matrix.shape[0]
        hi = float(np.max(self.matrix)) if self.matrix.size else 1.0
        lo = float(np.min(self.matrix)) if self.matrix.size else 0.0
        levels = levels or (min(lo, 0.0), hi if hi > min(lo, 0.0) else min(lo, 0.0) + 1.0)
        self.image.setImage(self.matrix.astype(np.float32), levels=levels, autoLevels=False)
        self.image.setRect(-0.5, -0.5, T, T)
        self.colorbar.setLevels(levels)
        self._set_ticks()
        self.plot.setRange(xRange=(-0.5, T - 0.5), yRange=(-0.5, T - 0.5), padding=0.01)
        if title is not None:
            self.plot.setTitle(title, color="k")

    def _set_ticks(self) -> None:
        """Token labels on both axes, thinned so that none overlaps: the rows have a line of
        text each, the columns share the width between labels of up to 7 characters."""
        tokens = self.__dict__.get("tokens") or []  # resizes come before the first matrix
        T = len(tokens)
        if not T:
            return
        height = max(self.plot.vb.height(), 100.0)
        width = max(self.plot.vb.width(), 100.0)
        rows = max(1, int(np.ceil(T * 14.0 / height)))
        cols = max(1, int(np.ceil(T * 52.0 / width)))
        self.plot.getAxis("left").setTicks(
            [[(i, _short(t)) for i, t in enumerate(self.tokens) if i % rows == 0]])
        self.plot.getAxis("bottom").setTicks(
            [[(i, _short(t, 7)) for i, t in enumerate(self.tokens) if i % cols == 0]])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._set_ticks()

    def highlight(self, index: int | None) -> None:
        """Frame row ``index`` (where it looks) and column ``index`` (who looks at it)."""
        T = self.matrix.shape[0]
        if index is None or not 0 <= index < T:
            self.row_box.setVisible(False)
            self.col_box.setVisible(False)
            return
        self.row_box.setRect(-0.5, index - 0.5, T, 1.0)
        self.col_box.setRect(index - 0.5, -0.5, 1.0, T)
        self.row_box.setVisible(True)
        self.col_box.setVisible(True)

    def _cell(self, scene_pos):
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        i, j = int(round(p.y())), int(round(p.x()))
        T = self.matrix.shape[0]
        return (i, j) if 0 <= i < T and 0 <= j < T else None

    def _on_move(self, scene_pos) -> None:
        cell = self._cell(scene_pos)
        if cell is None or not self.tokens:
            self.hovered.emit("")
            return
        i, j = cell
        self.hovered.emit(f"row {i} '{self.tokens[i]}' → column {j} '{self.tokens[j]}': "
                          f"{self.matrix[i, j]:.6g}")

    def _on_click(self, event) -> None:
        cell = self._cell(event.scenePos())
        if cell is not None:
            self.clicked.emit(cell[0])


def _short(token: str, n: int = 10) -> str:
    return token if len(token) <= n else token[: n - 1] + "…"


class TokenStrip(pg.PlotWidget):
    """The tokens in reading order, wrapped into lines; each token's box is shaded by a
    weight (the selected token's attention), the top-k are outlined. Click selects."""

    clicked = Signal(int)
    WIDTH = 90.0  # characters per line

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(False, False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.boxes = pg.BarGraphItem(x0=[], y0=[], width=[], height=[])
        self.plot.addItem(self.boxes)
        self.texts: list[pg.TextItem] = []
        self.rects: list[tuple[float, float, float]] = []  # x0, line, width per token
        self.tokens: list[str] = []
        self.scene().sigMouseClicked.connect(self._on_click)
        self.font = QFont()
        self.font.setPointSize(10)

    def set_tokens(self, tokens: list[str]) -> None:
        for item in self.texts:
            self.plot.removeItem(item)
        self.texts = []
        self.tokens = list(tokens)
        self.rects = []
        x = line = 0.0
        for token in self.tokens:
            width = max(len(token), 1) + 1.5
            if x > 0 and x + width > self.WIDTH:
                x, line = 0.0, line + 1
            self.rects.append((x, line, width))
            text = pg.TextItem(token, color="k", anchor=(0.5, 0.5))
            text.setFont(self.font)
            text.setPos(x + width / 2 - 0.25, line + 0.45)
            text.setZValue(5)
            self.plot.addItem(text)
            self.texts.append(text)
            x += width
        lines = (self.rects[-1][1] + 1) if self.rects else 1
        self.plot.setRange(xRange=(0, self.WIDTH), yRange=(0, max(lines, 2)), padding=0.02)
        self.shade(np.zeros(len(self.tokens)), set(), None)

    def shade(self, weights: np.ndarray, top: set, selected: int | None) -> None:
        """Shade each token by ``weights`` (0..max), outline ``top``, mark ``selected``."""
        if not self.rects:
            self.boxes.setOpts(x0=[], y0=[], width=[], height=[])
            return
        w = np.asarray(weights, dtype=np.float64)
        peak = float(w.max()) if w.size and w.max() > 0 else 1.0
        cmap = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (255, 140, 60)])
        brushes = [pg.mkBrush(cmap.map(float(v) / peak, mode="qcolor")) for v in w]
        pens = []
        for i in range(len(self.rects)):
            if i == selected:
                pens.append(pg.mkPen(SELECT_COLOR, width=3))
            elif i in top:
                pens.append(pg.mkPen(TOP_COLOR, width=2.5))
            else:
                pens.append(pg.mkPen("#bbb", width=1))
        x0 = [r[0] for r in self.rects]
        y0 = [r[1] + 0.08 for r in self.rects]
        width = [r[2] - 0.5 for r in self.rects]
        self.boxes.setOpts(x0=x0, y0=y0, width=width, height=[0.8] * len(self.rects),
                           brushes=brushes, pens=pens)

    def _on_click(self, event) -> None:
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        for i, (x0, line, width) in enumerate(self.rects):
            if x0 <= p.x() <= x0 + width and line <= p.y() <= line + 1:
                self.clicked.emit(i)
                return


class ColumnSums(pg.PlotWidget):
    """The column sums b_j as bars, the top-k in another colour and named."""

    clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("left", "b_j = Σ_i B_ij")
        self.plot.setTitle("Attention each token receives (column sums of B); top-k in orange",
                           color="k")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("k")
            self.plot.getAxis(axis).setPen("k")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.plot.addItem(self.bars)
        self.scene().sigMouseClicked.connect(self._on_click)
        self.n = 0

    def set_scores(self, labels: list[str], scores: np.ndarray, top: list[int]) -> None:
        n = len(labels)
        self.n = n
        top_set = set(top)
        brushes = [pg.mkBrush(TOP_COLOR if i in top_set else BAR_COLOR) for i in range(n)]
        self.bars.setOpts(x=np.arange(n), height=np.asarray(scores, dtype=float), width=0.8,
                          brushes=brushes, pens=[pg.mkPen("#555", width=0.6)] * n)
        step = max(1, int(np.ceil(n / 60)))
        ticks = [(i, _short(t, 8)) for i, t in enumerate(labels) if i % step == 0 or i in top_set]
        self.plot.getAxis("bottom").setTicks([ticks])
        top_val = float(np.max(scores)) if n else 1.0
        self.plot.setRange(xRange=(-0.7, max(n, 1) - 0.3), yRange=(0, max(top_val, 1e-9) * 1.08),
                           padding=0)

    def _on_click(self, event) -> None:
        vb = self.plot.vb
        if vb.sceneBoundingRect().contains(event.scenePos()):
            i = int(round(vb.mapSceneToView(event.scenePos()).x()))
            if 0 <= i < self.n:
                self.clicked.emit(i)


class HeadGrid(pg.PlotWidget):
    """Every layer's and head's attention map as a thumbnail (rows: layers, columns: heads);
    a click picks the one shown large."""

    picked = Signal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.setAspectLocked(True)
        self.plot.setLabel("bottom", "head")
        self.plot.setLabel("left", "layer")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("k")
            self.plot.getAxis(axis).setPen("k")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.frame = pg.QtWidgets.QGraphicsRectItem()
        self.frame.setPen(pg.mkPen(SELECT_COLOR, width=3))
        self.frame.setZValue(10)
        self.plot.addItem(self.frame)
        self.shape = (1, 1)
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_attentions(self, att: np.ndarray) -> None:
        """(L, H, T, T) maps tiled into one image, a one-pixel gap between tiles."""
        L, H, T, _ = att.shape
        self.shape = (L, H)
        gap = max(1, T // 12)
        cell = T + gap
        tiled = np.full((L * cell - gap, H * cell - gap), np.nan, dtype=np.float32)
        for layer in range(L):
            for head in range(H):
                m = att[layer, head]
                peak = float(m.max()) or 1.0
                tiled[layer * cell:layer * cell + T, head * cell:head * cell + T] = m / peak
        rgba = style.colormap().map(np.nan_to_num(tiled), mode="byte")
        rgba[np.isnan(tiled)] = 255  # white gaps between the tiles
        self.image.setImage(rgba, autoLevels=False)
        # In data units a tile and its gap are 1 x 1: tile (layer, head) sits at (head, layer).
        self.image.setRect(-0.5, -0.5, (H * cell - gap) / cell, (L * cell - gap) / cell)
        self.plot.getAxis("bottom").setTicks([[(h, str(h + 1)) for h in range(H)]])
        self.plot.getAxis("left").setTicks([[(layer, str(layer + 1)) for layer in range(L)]])
        self.plot.setRange(xRange=(-0.5, H - 0.5), yRange=(-0.5, L - 0.5), padding=0.02)

    def mark(self, layer: int, head: int) -> None:
        self.frame.setRect(head - 0.5, layer - 0.5, 1.0, 1.0)

    def _on_click(self, event) -> None:
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        layer, head = int(round(p.y())), int(round(p.x()))
        if 0 <= layer < self.shape[0] and 0 <= head < self.shape[1]:
            self.picked.emit(layer, head)


# -- the panel ----------------------------------------------------------------------------------

class AttentionPanel(QWidget):
    """Attention maps of every layer and head, and the tokens the sequence attends to most."""

    title = "Attention"
    status = Signal(str)
    encoded = Signal(object)  # AttentionResult, once drawn
    selectionChanged = Signal(object)  # list of selected token (or word) indices
    export_filters = {
        "PNG image, attention map (*.png)": ("map", ".png"),
        "SVG drawing, attention map (*.svg)": ("map", ".svg"),
        "PNG image, column sums with the top-k (*.png)": ("bars", ".png"),
        "SVG drawing, column sums with the top-k (*.svg)": ("bars", ".svg"),
        "CSV table, the attention map shown (*.csv)": ("map", ".csv"),
        "CSV table, the head sum S (*.csv)": ("sum", ".csv"),
        "CSV table, the masked matrix B (*.csv)": ("masked", ".csv"),
        "CSV table, the column sums b (*.csv)": ("bars", ".csv"),
    }

    def __init__(self, parent=None, settings: AttentionSettings | None = None):
        super().__init__(parent)
        self.settings = settings or AttentionSettings()
        self.result: AttentionResult | None = None
        self.selected: int | None = None
        self.selection = None  # (indices, scores, B) of the engine
        self.memory = None  # an object with remember(entries) and recall(vectors, k)
        self.runner = JobRunner(compute_attention, "attention", self)
        self.runner.finished.connect(self._on_result)
        self.runner.failed.connect(self._on_failed)
        self._typing = QTimer(self, singleShot=True, interval=350)
        self._typing.timeout.connect(self.run)
        self._build()
        self.run()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        s = self.settings
        controls = QWidget()
        column = QVBoxLayout(controls)

        tbox = QGroupBox("Text")
        tlay = QVBoxLayout(tbox)
        self.text_edit = QPlainTextEdit(s.text)
        self.text_edit.setToolTip("Type or paste text (up to 512 word pieces); it runs as you "
                                  "type")
        self.text_edit.setMaximumHeight(140)
        self.text_edit.textChanged.connect(self._on_text)
        tlay.addWidget(self.text_edit)
        self.text_message = QLabel()
        self.text_message.setWordWrap(True)
        self.text_message.setStyleSheet("color: #b2182b")
        tlay.addWidget(self.text_message)
        self.model_label = QLabel("Loading the model…")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tlay.addWidget(self.model_label)
        column.addWidget(tbox)

        hbox = QGroupBox("Attention map")
        hlay = QFormLayout(hbox)
        self.layer_spin = QSpinBox()
        self.layer_spin.setRange(1, 1)
        self.layer_spin.setToolTip("Layer of the map shown (1 = closest to the input)")
        self.layer_spin.valueChanged.connect(self._on_pick)
        self.head_spin = QSpinBox()
        self.head_spin.setRange(1, 1)
        self.head_spin.setToolTip("Head of the map shown; or click a thumbnail")
        self.head_spin.valueChanged.connect(self._on_pick)
        hlay.addRow("layer", self.layer_spin)
        hlay.addRow("head", self.head_spin)
        column.addWidget(hbox)

        sbox = QGroupBox("Selection (seed 000)")
        slay = QFormLayout(sbox)
        self.sum_combo = QComboBox()
        self.sum_combo.addItem("the heads of this layer", "layer")
        self.sum_combo.addItem("every head of every layer", "all")
        self.sum_combo.setCurrentIndex(0 if s.sum_over == "layer" else 1)
        self.sum_combo.setToolTip("S = the sum of these attention maps")
        self.sum_combo.currentIndexChanged.connect(self._on_selection_settings)
        slay.addRow("sum", self.sum_combo)
        self.mask_combo = QComboBox()
        for key, label in MASK_LABELS.items():
            self.mask_combo.addItem(label, key)
        self.mask_combo.setCurrentIndex(list(MASK_LABELS).index(s.mask))
        self.mask_combo.setToolTip(MASK_HELP)
        self.mask_combo.currentIndexChanged.connect(self._on_selection_settings)
        slay.addRow("mask", self.mask_combo)
        self.special_check = QCheckBox("leave out [CLS] and [SEP]")
        self.special_check.setChecked(s.exclude_special)
        self.special_check.setToolTip("BERT's special tokens soak up attention; leave them out "
                                      "of B and of the choice")
        self.special_check.toggled.connect(self._on_selection_settings)
        slay.addRow(self.special_check)
        self.words_check = QCheckBox("merge word pieces into words")
        self.words_check.setChecked(s.merge_words)
        self.words_check.setToolTip("Add up the scores of a word's pieces (play + ##ing)")
        self.words_check.toggled.connect(self._on_selection_settings)
        slay.addRow(self.words_check)
        self.k_slider = QSlider(Qt.Orientation.Horizontal)
        self.k_slider.setRange(1, MAX_K)
        self.k_slider.setValue(s.k)
        self.k_slider.setToolTip("How many tokens to select (K)")
        self.k_slider.valueChanged.connect(self._on_k)
        self.k_label = QLabel(str(s.k))
        slay.addRow("top-k", self.k_slider)
        slay.addRow("k =", self.k_label)
        help_label = QLabel(MASK_HELP)
        help_label.setWordWrap(True)
        help_label.setStyleSheet("color: #555")
        slay.addRow(help_label)
        self.selection_label = QLabel()
        self.selection_label.setWordWrap(True)
        slay.addRow(self.selection_label)
        column.addWidget(sbox)

        mbox = QGroupBox("Weak RAG memory (seed 000)")
        mlay = QVBoxLayout(mbox)
        self.remember_button = QPushButton("Remember the top-k tokens")
        self.remember_button.setToolTip(
            "Store the selected tokens' contextual embeddings (MiniLM's last layer) with their "
            "text in the LSH store; later prompts retrieve the closest ones")
        self.remember_button.setEnabled(False)
        self.remember_button.clicked.connect(self.remember)
        mlay.addWidget(self.remember_button)
        self.recalled = QListWidget()
        self.recalled.setToolTip("Stored tokens closest to this text's top-k tokens (cosine); "
                                 "forget entries in the LSH store tab")
        self.recalled.setMaximumHeight(130)
        mlay.addWidget(self.recalled)
        self.memory_label = QLabel("The memory is empty.")
        self.memory_label.setWordWrap(True)
        self.memory_label.setStyleSheet("color: #555")
        mlay.addWidget(self.memory_label)
        column.addWidget(mbox)
        column.addStretch(1)

        # Views.
        self.strip = TokenStrip()
        self.strip.setMinimumHeight(90)
        self.strip.clicked.connect(self.select_token)
        self.readout = QLabel(" ")
        self.readout.setStyleSheet("color: #333")
        self.map = AttentionMap("Attention")
        self.map.hovered.connect(self._on_hover)
        self.map.clicked.connect(self.select_token)
        self.grid = HeadGrid()
        self.grid.picked.connect(self.pick)
        self.sum_map = AttentionMap("Head sum S")
        self.masked_map = AttentionMap("Masked B")
        for view in (self.sum_map, self.masked_map):
            view.hovered.connect(self._on_hover)
            view.clicked.connect(self.select_token)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.grid, "Layers × heads")
        self.side_tabs.addTab(self.sum_map, "Head sum S")
        self.side_tabs.addTab(self.masked_map, "Masked B")
        self.bars = ColumnSums()
        self.bars.setMinimumHeight(170)
        self.bars.clicked.connect(self._on_bar)

        middle = QSplitter(Qt.Orientation.Horizontal)
        middle.addWidget(self.map)
        middle.addWidget(self.side_tabs)
        middle.setSizes([620, 480])
        right = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(0, 0, 0, 0)
        top_lay.addWidget(self.strip, 1)
        top_lay.addWidget(self.readout)
        right.addWidget(top)
        right.addWidget(middle)
        right.addWidget(self.bars)
        right.setSizes([130, 520, 220])
        controls_beside_views(self, controls, right, 360)
        panel_shortcuts(self, [(Qt.Key.Key_Escape, lambda: self.select_token(None))])

    # -- public API ------------------------------------------------------------------------
    def set_text(self, text: str) -> None:
        self.text_edit.setPlainText(text)

    def run(self) -> None:
        text = self.text_edit.toPlainText()
        self.settings = replace(self.settings, text=text)
        self.runner.submit(AttentionRequest(text))

    def pick(self, layer: int, head: int) -> None:
        """Show layer ``layer``, head ``head`` (0-based) large."""
        self.layer_spin.setValue(layer + 1)
        self.head_spin.setValue(head + 1)

    def select_token(self, index: int | None) -> None:
        """Select a token (an index into the token strip), or clear the selection."""
        if self.result is None:
            return
        T = self.result.output.num_tokens
        self.selected = index if index is not None and 0 <= index < T else None
        self._draw_selection()

    def set_memory(self, memory) -> None:
        """Connect the weak RAG memory: the LSH store tab, or any object with
        ``remember(entries)`` and ``recall(vectors, k)``, and optionally ``ready`` (False
        while its code loads) with an ``engineReady`` signal for when it is."""
        self.memory = memory
        ready = getattr(memory, "engineReady", None)
        if ready is not None:
            ready.connect(self._update_memory)
        self._update_memory()

    def _top_vectors(self):
        """(positions, vectors) of the selected tokens: MiniLM's last hidden states."""
        out = self.result.output
        positions = sorted(self.selection["token_top"])
        return positions, out.hidden_states[-1][positions].astype(np.float64)

    def remember(self) -> list[int]:
        """Store the selected tokens' contextual embeddings, with their text, in the memory."""
        if self.memory is None or self.result is None or self.selection is None:
            return []
        out = self.result.output
        positions, vectors = self._top_vectors()
        if self.result.notice or vectors.shape[1] != 384:
            self.memory_label.setText("Remembering needs the real MiniLM model (384-d).")
            return []
        sentence = out.text.strip()
        if len(sentence) > 200:
            sentence = sentence[:199] + "…"
        entries = [(v, {"token": out.tokens[i], "sentence": sentence})
                   for i, v in zip(positions, vectors)]
        ids = self.memory.remember(entries)
        self.status.emit(f"Remembered {', '.join(out.tokens[i] for i in positions)}")
        self._update_memory()
        return ids

    def _update_memory(self) -> None:
        """List the stored entries closest to the current text's selected tokens."""
        self.recalled.clear()
        loading = self.memory is not None and not getattr(self.memory, "ready", True)
        self.remember_button.setEnabled(self.memory is not None and self.result is not None
                                        and not loading)
        if self.memory is None or self.result is None or self.selection is None:
            return
        if loading:  # a store call now would wait on the GUI thread for the code
            self.memory_label.setText("The memory's code is loading (the first start after "
                                      "an installation compiles it): Remember works once "
                                      "it has.")
            return
        if self.result.notice:
            self.memory_label.setText("Remembering needs the real MiniLM model.")
            return
        _, vectors = self._top_vectors()
        found = self.memory.recall(vectors, 5) if len(vectors) else []
        for payload, score in found:
            self.recalled.addItem(f"'{payload.get('token', '?')}' from "
                                  f"“{payload.get('sentence', '')}” ({score:.2f})")
        self.memory_label.setText(
            f"{len(found)} stored token(s) close to this text's top-k." if found
            else "Nothing stored is close to this text's top-k yet: press Remember.")

    def set_k(self, k: int) -> None:
        self.k_slider.setValue(k)

    @property
    def top_tokens(self) -> list[int]:
        """The selected top-k (token positions, or word indices when merging)."""
        return [] if self.selection is None else [int(i) for i in self.selection["indices"]]

    def refresh(self) -> None:
        self.run()

    # -- session ---------------------------------------------------------------------------
    def session_state(self) -> dict:
        """The text as typed, the map shown, the selection's settings, the token followed
        and the side view: the maps themselves are recomputed from the text."""
        s = self.settings
        return {"text": self.text_edit.toPlainText(), "layer": s.layer, "head": s.head,
                "sum_over": s.sum_over, "mask": s.mask, "exclude_special": s.exclude_special,
                "merge_words": s.merge_words, "k": s.k, "selected": self.selected,
                "view": SIDE_VIEWS[self.side_tabs.currentIndex()]}

    def restore_session_state(self, state: dict) -> None:
        """Show a :meth:`session_state` and encode its text on the worker. Missing keys take
        their defaults, unknown keys are ignored; a bad value raises ``ValueError`` (a
        :class:`app.session.SessionError` naming its key) before anything changes.

        The text is only ever tokenized, never executed; as with typed text, one longer
        than the model reads is refused under the text box when it is encoded, and the
        layer, head and token are kept within what the model's result holds.
        """
        settings, selected, view = self._read_state(state)
        with signals_blocked(self.text_edit, self.sum_combo, self.mask_combo, self.special_check,
                             self.words_check, self.k_slider):
            self.text_edit.setPlainText(settings.text)
            self.sum_combo.setCurrentIndex(self.sum_combo.findData(settings.sum_over))
            self.mask_combo.setCurrentIndex(self.mask_combo.findData(settings.mask))
            self.special_check.setChecked(settings.exclude_special)
            self.words_check.setChecked(settings.merge_words)
            self.k_slider.setValue(settings.k)
        self.k_label.setText(str(settings.k))
        self.side_tabs.setCurrentIndex(SIDE_VIEWS.index(view))
        self._typing.stop()
        self.settings = settings
        self.selected = selected
        self.text_message.clear()
        self.run()  # the text as the box holds it (line breaks as typed ones), on the worker

    @staticmethod
    def _read_state(state: dict) -> tuple[AttentionSettings, int | None, str]:
        """(settings, selected token, side view) of ``state``, checked."""
        if not isinstance(state, dict):
            raise session.SessionError("the attention state must be an object")
        d = AttentionSettings()
        settings = AttentionSettings(
            text=session.expect_str(state, "text", max_length=MAX_TEXT, default=d.text),
            layer=session.expect_int(state, "layer", low=0, high=MAX_INDEX, default=d.layer),
            head=session.expect_int(state, "head", low=0, high=MAX_INDEX, default=d.head),
            sum_over=session.expect_str(state, "sum_over", choices=("layer", "all"),
                                        default=d.sum_over),
            mask=session.expect_str(state, "mask", choices=tuple(MASK_LABELS), default=d.mask),
            exclude_special=session.expect_bool(state, "exclude_special",
                                                default=d.exclude_special),
            merge_words=session.expect_bool(state, "merge_words", default=d.merge_words),
            k=session.expect_int(state, "k", low=1, high=MAX_K, default=d.k))
        selected = None
        if state.get("selected") is not None:
            selected = session.expect_int(state, "selected", low=0,
                                          high=transformer.MAX_TOKENS - 1)
        view = session.expect_str(state, "view", choices=SIDE_VIEWS, default=SIDE_VIEWS[0])
        return settings, selected, view

    def export(self, path, view: str = "map"):
        """.png/.svg of the attention map ("map") or of the column sums ("bars"); .csv of the
        map shown, the head sum ("sum"), B ("masked") or the column sums ("bars")."""
        from app import export

        if self.result is None or self.selection is None:
            raise export.ExportError("nothing to export yet: the text has not been encoded")
        path = Path(path)
        suffix = path.suffix.lower()
        view = "map" if view in ("auto", "both", "contour", "surface") else view
        if suffix == ".csv":
            if view == "bars":
                labels, scores = self.selection["labels"], self.selection["scores"]
                text = io.StringIO()
                text.write("index,token,column_sum,top_k_rank\n")
                ranks = {int(i): r + 1 for r, i in enumerate(self.selection["indices"])}
                for i, (label, score) in enumerate(zip(labels, scores)):
                    text.write(f"{i},{_csv(label)},{float(score)!r},{ranks.get(i, '')}\n")
                export.write_bytes(path, text.getvalue().encode())
                return path
            matrix = {"map": self.map.matrix, "sum": self.selection["S"],
                      "masked": self.selection["B"]}.get(view)
            if matrix is None:
                raise export.ExportError(f"unknown view '{view}': use map, sum, masked or bars")
            tokens = self.result.output.tokens
            text = io.StringIO()
            text.write("row\\column," + ",".join(_csv(t) for t in tokens) + "\n")
            for token, row in zip(tokens, matrix):
                text.write(_csv(token) + "," + ",".join(repr(float(v)) for v in row) + "\n")
            export.write_bytes(path, text.getvalue().encode())
            return path
        if suffix not in (".png", ".svg"):
            raise export.ExportError(f"unsupported file type '{suffix}': use .png, .svg or .csv")
        widget = self.bars if view == "bars" else self.map
        return export.save_scene(widget, path)

    def shutdown(self) -> None:
        self._typing.stop()
        self.runner.shutdown()

    # -- drawing ---------------------------------------------------------------------------
    def _on_result(self, job: JobResult) -> None:
        result: AttentionResult = job.value
        self.result = result
        out = result.output
        self.text_message.clear()
        L, H, T, _ = out.attentions.shape
        name = out.model_name
        if result.notice:
            self.model_label.setText(f"<span style='color:#b2182b'>{result.notice}</span>")
        else:
            self.model_label.setText(f"{name}: {L} layers × {H} heads, {T} tokens")
        for spin, n, value in ((self.layer_spin, L, self.settings.layer),
                               (self.head_spin, H, self.settings.head)):
            spin.blockSignals(True)
            spin.setRange(1, n)
            spin.setValue(min(value, n - 1) + 1)
            spin.blockSignals(False)
        if self.selected is not None and self.selected >= T:
            self.selected = None
        self.strip.set_tokens(out.tokens)
        self.grid.set_attentions(out.attentions)
        self._draw_map()
        self._compute_selection()
        self.encoded.emit(result)
        self.status.emit(f"{T} tokens through {name} ({job.seconds * 1000:.0f} ms)")

    def _on_failed(self, failure: JobFailure) -> None:
        # Too long a text and the like: said where it was typed; the last result stays.
        self.text_message.setText(failure.message)
        self.status.emit(f"Attention: {failure.message}")

    def _draw_map(self) -> None:
        if self.result is None:
            return
        out = self.result.output
        layer, head = self.layer_spin.value() - 1, self.head_spin.value() - 1
        self.settings = replace(self.settings, layer=layer, head=head)
        self.map.set_matrix(out.attentions[layer, head], out.tokens,
                            f"Layer {layer + 1}, head {head + 1}: row i = where token i looks",
                            levels=(0.0, float(out.attentions[layer, head].max()) or 1.0))
        self.grid.mark(layer, head)
        self.map.highlight(self.selected)

    def _compute_selection(self) -> None:
        """Seed 000's selection for the current settings, from ``engine.attention``."""
        if self.result is None:
            return
        out = self.result.output
        s = self.settings
        heads = out.attentions if s.sum_over == "all" else out.attentions[s.layer]
        exclude = [i for i, w in enumerate(out.word_ids) if w is None] if s.exclude_special else []
        T = out.num_tokens
        k = max(1, min(s.k, T))
        indices, scores, B = attention.select_important_tokens(heads, T, s.mask, exclude)
        S = attention.head_sum(heads)
        labels = list(out.tokens)
        allowed = np.ones(T, dtype=bool)
        allowed[exclude] = False
        if s.merge_words:
            _, word_scores, groups = attention.merge_word_pieces(out.tokens, scores,
                                                                 out.word_ids)
            words = [w for w, _ in out.words()]  # the words as written in the text
            allowed_words = np.array([bool(allowed[g].all()) for g in groups])
            indices = attention.top_k(word_scores, k, allowed_words)
            labels, scores = words, word_scores
            token_top = {i for w in indices for i in groups[int(w)]}
        else:
            indices = indices[:k]
            token_top = {int(i) for i in indices}
            groups = [[i] for i in range(T)]
        self.selection = {"indices": indices, "scores": scores, "labels": labels, "S": S,
                          "B": B, "groups": groups, "token_top": token_top}
        what = "all layers" if s.sum_over == "all" else f"layer {s.layer + 1}"
        self.sum_map.set_matrix(S, out.tokens, f"Head sum S ({what})")
        self.masked_map.set_matrix(B, out.tokens, f"B = {MASK_LABELS[s.mask].split(',')[0]}")
        self.bars.set_scores(labels, scores, [int(i) for i in indices])
        names = ", ".join(f"'{labels[int(i)]}' ({scores[int(i)]:.3g})" for i in indices)
        self.selection_label.setText(f"<b>Top-{len(indices)}:</b> {names}")
        self._draw_selection()
        self._update_memory()
        self.selectionChanged.emit(self.top_tokens)

    def _draw_selection(self) -> None:
        if self.result is None or self.selection is None:
            return
        out = self.result.output
        layer, head = self.settings.layer, self.settings.head
        if self.selected is not None:
            weights = out.attentions[layer, head][self.selected]
            self.readout.setText(
                f"'{out.tokens[self.selected]}' (token {self.selected}) looks at: "
                + ", ".join(f"'{out.tokens[j]}' {weights[j]:.2f}"
                            for j in np.argsort(-weights, kind="stable")[:5])
                + f"   (layer {layer + 1}, head {head + 1}; Esc clears)")
        else:
            weights = np.zeros(out.num_tokens)
            self.readout.setText("Click a token (in the strip or on a map) to follow it.")
        self.strip.shade(weights, self.selection["token_top"], self.selected)
        for view in (self.map, self.sum_map, self.masked_map):
            view.highlight(self.selected)

    # -- handlers --------------------------------------------------------------------------
    def _on_text(self) -> None:
        self._typing.start()

    def _on_pick(self, *_args) -> None:
        self._draw_map()
        if self.settings.sum_over == "layer":
            self._compute_selection()
        else:
            self._draw_selection()

    def _on_selection_settings(self, *_args) -> None:
        self.settings = replace(self.settings, sum_over=self.sum_combo.currentData(),
                                mask=self.mask_combo.currentData(),
                                exclude_special=self.special_check.isChecked(),
                                merge_words=self.words_check.isChecked())
        self._compute_selection()

    def _on_k(self, value: int) -> None:
        self.settings = replace(self.settings, k=int(value))
        self.k_label.setText(str(value))
        self._compute_selection()

    def _on_bar(self, index: int) -> None:
        if self.selection is None:
            return
        self.select_token(self.selection["groups"][index][0])

    def _on_hover(self, text: str) -> None:
        if text:
            self.readout.setText(text)


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


__all__ = ["AttentionPanel", "AttentionSettings", "AttentionRequest", "AttentionResult",
           "compute_attention"]
