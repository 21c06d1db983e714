"""The 2-D contour map every surface-like panel shares: heatmap, level curves, arrows, points.

It only draws what the engine computed (level curves, gradient field, critical points);
it holds no mathematics. Hover and click positions are reported in data coordinates.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont

from app import style

#: Marker symbol and colour per critical-point kind (legend text, symbol, brush).
POINT_STYLES = {
    "minimum": ("minimum", "o", "#2c7fb8"),
    "maximum": ("maximum", "t1", "#d7301f"),
    "saddle": ("saddle", "x", "#f28e2b"),
    "degenerate": ("degenerate", "d", "#7f7f7f"),
}


def _polylines(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (N, 2) polylines into x, y arrays with NaN breaks between them."""
    if not lines:
        return np.empty(0), np.empty(0)
    parts = []
    for line in lines:
        parts.append(np.asarray(line, dtype=np.float64))
        parts.append(np.full((1, 2), np.nan))
    xy = np.concatenate(parts[:-1])
    return xy[:, 0], xy[:, 1]


def arrow_segments(X, Y, U, V, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (pairs of points) drawing arrows of a gradient field.

    Arrow length grows with the square root of |grad f| relative to the largest one, so
    both gentle and steep regions stay readable; heads are two short barbs.
    """
    X, Y, U, V = (np.asarray(a, dtype=np.float64).ravel() for a in (X, Y, U, V))
    norm = np.hypot(U, V)
    keep = np.isfinite(norm) & (norm > 0)
    X, Y, U, V, norm = X[keep], Y[keep], U[keep], V[keep], norm[keep]
    if X.size == 0:
        return np.empty(0), np.empty(0)
    scale = length * np.sqrt(norm / norm.max()) / norm
    dx, dy = U * scale, V * scale
    return vector_segments(X - dx / 2, Y - dy / 2, dx, dy, head=0.35)


def vector_segments(X, Y, U, V, head: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Line segments drawing arrows from (X, Y) along (U, V) at their true length."""
    X, Y, U, V = (np.asarray(a, dtype=np.float64).ravel() for a in (X, Y, U, V))
    keep = np.isfinite(X) & np.isfinite(Y) & np.isfinite(U) & np.isfinite(V) & (np.hypot(U, V) > 0)
    X, Y, U, V = X[keep], Y[keep], U[keep], V[keep]
    if X.size == 0:
        return np.empty(0), np.empty(0)
    x1, y1 = X + U, Y + V
    size = head * np.hypot(U, V)
    angle = np.arctan2(V, U)
    xs, ys = [np.stack([X, x1], 1).ravel()], [np.stack([Y, y1], 1).ravel()]
    for turn in (2.6, -2.6):
        xs.append(np.stack([x1, x1 + size * np.cos(angle + turn)], 1).ravel())
        ys.append(np.stack([y1, y1 + size * np.sin(angle + turn)], 1).ravel())
    return np.concatenate(xs), np.concatenate(ys)


class ContourView(pg.GraphicsLayoutWidget):
    """Contour map of f(x, y) with an optional filled heatmap, gradient arrows and points."""

    hovered = Signal(float, float)
    clicked = Signal(float, float)
    left = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.plot = self.addPlot(row=0, col=0)
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=False, y=False)
        self.plot.setLabel("bottom", "x")
        self.plot.setLabel("left", "y")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("k")
            self.plot.getAxis(axis).setPen("k")
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextColor="k", brush=(255, 255, 255, 210),
                                          pen=pg.mkPen("#999"))

        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-10)
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=style.colormap(), interactive=False, width=14,
                                        label="f(x, y)")
        # The bar is a legend only: the heatmap gets its lookup table from set_field, so it
        # can be coloured by band (log-spaced levels) while the bar keeps an f(x, y) axis.
        self.image.setLookupTable(style.colormap().getLookupTable(nPts=256))
        self.addItem(self.colorbar, row=0, col=1)
        self.colorbar.getAxis("right").setTextPen("k")

        self._level_items: list[pg.PlotCurveItem] = []
        self.arrows = pg.PlotCurveItem(pen=pg.mkPen(QColor(20, 20, 20, 200), width=1.2), connect="pairs")
        self.arrows.setZValue(5)
        self.plot.addItem(self.arrows)
        self.legend.addItem(self.arrows, "∇f (steepest ascent)")

        self.points = {}
        for kind, (label, symbol, color) in POINT_STYLES.items():
            item = pg.ScatterPlotItem(symbol=symbol, size=13, brush=pg.mkBrush(color),
                                      pen=pg.mkPen("k", width=1.2))
            item.setZValue(10)
            self.plot.addItem(item)
            self.points[kind] = item

        self.cursor = pg.ScatterPlotItem(symbol="+", size=16, pen=pg.mkPen("#e00", width=2))
        self.cursor.setZValue(20)
        self.plot.addItem(self.cursor)
        self.caption = pg.TextItem(color="k", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 200))
        self.caption.setZValue(30)
        font = QFont()
        font.setPointSize(8)
        self.caption.setFont(font)

        self._show_fill = True
        self._knots: np.ndarray | None = None
        self._bounds: tuple[float, float, float, float] | None = None
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # -- drawing -----------------------------------------------------------------------
    def set_field(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, levels: tuple[float, float],
                  knots: np.ndarray | None = None) -> None:
        """Show the heatmap of z (rows along y) with fixed colour ``levels``.

        With ``knots`` (increasing values, e.g. lo, the log-spaced contour levels, hi) every
        band between two knots gets an equal share of the colormap, as in the 3-D view.
        """
        knots = None if knots is None or len(knots) < 2 else np.asarray(knots, dtype=np.float64)
        same = (knots is None and self._knots is None) or (
            knots is not None and self._knots is not None and np.array_equal(knots, self._knots))
        if not same:
            self._knots = knots
            self.colorbar.setColorMap(style.colormap() if knots is None else style.band_colormap(knots))
        if knots is not None:
            positions = np.linspace(0.0, 1.0, len(knots))
            shown = np.interp(z, knots, positions).astype(np.float32)  # NaN holes stay NaN
            image_levels = (0.0, 1.0)
        else:
            shown, image_levels = z, levels
        x0, x1, y0, y1 = float(x[0]), float(x[-1]), float(y[0]), float(y[-1])
        dx = (x1 - x0) / max(len(x) - 1, 1)
        dy = (y1 - y0) / max(len(y) - 1, 1)
        # Pixel centres sit on the grid nodes.
        self.image.setImage(np.ascontiguousarray(shown, dtype=np.float32), levels=image_levels, autoLevels=False)
        self.image.setRect(x0 - dx / 2, y0 - dy / 2, x1 - x0 + dx, y1 - y0 + dy)
        self.colorbar.setLevels(levels)
        self.image.setVisible(self._show_fill)
        bounds = (x0, x1, y0, y1)
        if bounds != self._bounds:
            self._bounds = bounds
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)

    def set_level_curves(self, curves: list[tuple[float, list[np.ndarray]]], levels: tuple[float, float]) -> None:
        """Draw each level's polylines in the colour the heatmap gives that level."""
        while len(self._level_items) < len(curves):
            item = pg.PlotCurveItem(connect="finite")
            item.setZValue(2)
            self.plot.addItem(item)
            self._level_items.append(item)
        lo, hi = levels
        cmap = style.colormap()
        for item, (value, lines) in zip(self._level_items, curves):
            if self._knots is not None:
                t = float(np.interp(value, self._knots, np.linspace(0.0, 1.0, len(self._knots))))
            else:
                t = 0.0 if hi <= lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
            color = cmap.map(t, mode="qcolor")
            if self._show_fill:
                color = QColor(30, 30, 30, 150)
            item.setPen(pg.mkPen(color, width=1.3 if not self._show_fill else 0.9))
            xs, ys = _polylines(lines)
            item.setData(xs, ys)
            item.setVisible(True)
        for item in self._level_items[len(curves):]:
            item.setData([], [])
            item.setVisible(False)

    def set_arrows(self, field: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        """Draw a gradient field (X, Y, U, V) or hide the arrows when None."""
        if field is None or self._bounds is None:
            self.arrows.setData([], [])
            self.arrows.setVisible(False)
            self.legend_entry(self.arrows, "∇f (steepest ascent)", False)
            return
        self.legend_entry(self.arrows, "∇f (steepest ascent)", True)
        X, Y, U, V = field
        side = max(int(round(np.sqrt(max(np.size(X), 1)))), 1)
        x0, x1, y0, y1 = self._bounds
        spacing = min(x1 - x0, y1 - y0) / side
        xs, ys = arrow_segments(X, Y, U, V, 0.85 * spacing)
        self.arrows.setData(xs, ys)
        self.arrows.setVisible(True)

    def set_points(self, points) -> None:
        """Mark critical points by kind; ``points`` are objects with x, y and kind."""
        grouped: dict[str, list] = {kind: [] for kind in POINT_STYLES}
        for p in points:
            grouped.setdefault(p.kind, []).append(p)
        total = sum(len(v) for v in grouped.values())
        size = 13.0 if total <= 40 else max(6.0, 13.0 * (40.0 / total) ** 0.5)
        for kind, item in self.points.items():
            pts = grouped.get(kind, [])
            item.setData([p.x for p in pts], [p.y for p in pts], size=size)
            self.legend_entry(item, POINT_STYLES[kind][0], bool(pts))

    def set_labels(self, x: str, y: str, value: str) -> None:
        """Name the axes and the colour bar (x, y and f(x, y) unless told otherwise)."""
        self.plot.setLabel("bottom", x)
        self.plot.setLabel("left", y)
        self.colorbar.getAxis("bottom" if self.colorbar.horizontal else "left").setLabel(value)

    def place_legend(self, points: np.ndarray) -> None:
        """Move the legend to the corner of the map that covers fewest of ``points`` (N, 2)."""
        if self._bounds is None:
            return
        x0, x1, y0, y1 = self._bounds
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        u = (pts[:, 0] - x0) / max(x1 - x0, 1e-300)
        v = (pts[:, 1] - y0) / max(y1 - y0, 1e-300)
        corners = {  # (right, top) -> points in that third-by-third corner of the map
            (right, top): int(np.count_nonzero(((u > 2 / 3) if right else (u < 1 / 3))
                                               & ((v > 2 / 3) if top else (v < 1 / 3))))
            for top in (True, False) for right in (False, True)}
        right, top = min(corners, key=corners.get)  # ties: top left first
        anchor = (1 if right else 0, 0 if top else 1)
        self.legend.anchor(itemPos=anchor, parentPos=anchor,
                           offset=(-8 if right else 8, 8 if top else -8))

    def legend_entry(self, item, label: str, show: bool) -> None:
        """Show or hide ``item``'s line in the map's legend (added once, in call order)."""
        present = any(sample.item is item for sample, _ in self.legend.items)
        if show and not present:
            self.legend.addItem(item, label)
        elif not show and present:
            self.legend.removeItem(item)
        self.legend.setVisible(bool(self.legend.items))  # no empty frame

    def set_fill(self, show: bool) -> None:
        """Show or hide the filled heatmap (level curves switch to colour when hidden)."""
        self._show_fill = show
        self.image.setVisible(show)
        self.colorbar.setVisible(True)

    def set_cursor(self, x: float | None, y: float | None, text: str = "") -> None:
        """Mark the probed point and show a short read-out beside it."""
        if x is None or y is None:
            self.cursor.setData([], [])
            if self.caption.scene() is not None:
                self.plot.removeItem(self.caption)
            return
        self.cursor.setData([x], [y])
        if self.caption.scene() is None:
            self.plot.addItem(self.caption)
        self.caption.setText(text)
        self.caption.setPos(x, y)

    def clear_plot(self) -> None:
        """Forget every drawn item (used when a new function has no finite value)."""
        self.image.clear()
        self.set_level_curves([], (0.0, 1.0))
        self.set_arrows(None)
        self.set_points([])

    # -- mouse -------------------------------------------------------------------------
    def _data_point(self, scene_pos: QPointF):
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        return p.x(), p.y()

    def _on_mouse_moved(self, scene_pos) -> None:
        point = self._data_point(scene_pos)
        if point is None:
            self.left.emit()
        else:
            self.hovered.emit(*point)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self._data_point(event.scenePos())
        if point is not None:
            self.clicked.emit(*point)
