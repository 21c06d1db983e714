"""What the 3-D view draws around the surface: the axes box, tick labels and markers.

pyqtgraph's stock line and scatter items are used with two fixes: one shader program per
GL context (pyqtgraph 0.14 keeps one per process), and depth tests that let axis lines and
marker rims win over what lies at the same depth.
"""

from __future__ import annotations

import contextlib
import gc
import math

import numpy as np
import pyqtgraph as pg
from OpenGL import GL
from pyqtgraph.opengl import (
    GLGraphicsItem,
    GLLinePlotItem,
    GLScatterPlotItem,
)
from PySide6 import QtCore, QtGui

from .surface_item import context_key

DISPLAY_HALF_EXTENTS = (1.0, 1.0, 0.6)   # the display box every data box is fitted into
_Z_MARGIN = 0.97                         # surface z spans 97 % of the box: no z-fighting with the floor
DEFAULT_CAMERA = {"elevation": 28.0, "azimuth": -60.0, "fov": 35.0}
DEFAULT_PIXELS_PER_CELL = 3.0            # finer meshes cost triangles and show nothing more

@contextlib.contextmanager
def gc_paused():
    """No automatic cyclic garbage collection inside (explicit ``gc.collect`` still works)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _PerContextStockItem:
    """Mixin for pyqtgraph's line and scatter items: one shader program per GL context.

    pyqtgraph 0.14 keeps those programs in a class attribute, i.e. one per process, and a
    second GLViewWidget in another top-level window then fails in ``glUseProgram``
    ("Error while drawing item", pyqtgraph issues 1822, 2618, 3455; fixed upstream only
    when ``AA_ShareOpenGLContexts`` is set before the QApplication exists). This mixin
    compiles the stock program once per context and re-uploads the item's buffers when
    the widget moves to a new context.
    """

    _stock_class = None
    _data_flags = ()  # (flag name, attribute holding that flag's array)

    def getShaderProgram(self):
        key = context_key(QtGui.QOpenGLContext.currentContext())
        cached = getattr(self, "_program_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        stock = self._stock_class
        saved = stock._shaderProgram
        stock._shaderProgram = None
        try:
            program = stock.getShaderProgram()
        finally:
            stock._shaderProgram = saved
        self._program_cache = (key, program)
        return program

    def paint(self):
        key = context_key(QtGui.QOpenGLContext.currentContext())
        last = getattr(self, "_paint_context", None)
        if last is not None and last != key:
            flags = type(self.dirty_bits)
            for flag_name, attribute in self._data_flags:
                if isinstance(getattr(self, attribute), np.ndarray):
                    self.dirty_bits |= flags[flag_name]
        self._paint_context = key
        super().paint()


class _LineItem(_PerContextStockItem, GLLinePlotItem):
    _stock_class = GLLinePlotItem
    _data_flags = (("POSITION", "pos"), ("COLOR", "color"))


class _DepthLessEqual:
    """Mixin: draw with GL_LEQUAL, so a primitive wins against one drawn earlier at the same
    depth (axis lines over the grid lines they lie on, marker fills over their rims)."""

    def paint(self):
        depth_func = int(GL.glGetIntegerv(GL.GL_DEPTH_FUNC))
        GL.glDepthFunc(GL.GL_LEQUAL)
        try:
            super().paint()
        finally:
            GL.glDepthFunc(depth_func)


class _AxisLineItem(_DepthLessEqual, _LineItem):
    pass


class _MarkerItem(_DepthLessEqual, _PerContextStockItem, GLScatterPlotItem):
    """Round markers with a dark rim: rims first, fills second (see _DepthLessEqual)."""

    _stock_class = GLScatterPlotItem
    _data_flags = (("POSITION", "pos"), ("COLOR", "color"), ("SIZE", "size"))


class _LabelsItem(GLGraphicsItem.GLGraphicsItem):
    """All tick labels and titles in one QPainter pass (GLTextItem opens one per label)."""

    def __init__(self):
        super().__init__()
        self._labels = []   # (display xyz, text, QFont, QColor, Qt.AlignmentFlag)

    def setLabels(self, labels):
        self._labels = list(labels)
        self.update()

    def labels(self):
        return list(self._labels)

    def paint(self):
        view = self.view()
        if not self._labels or view is None:
            return
        mvp = self.mvpMatrix()
        width, height = view.width(), view.height()
        painter = QtGui.QPainter(view)
        try:
            painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing
                                   | QtGui.QPainter.RenderHint.TextAntialiasing)
            placed = []
            for pos, text, font, color, align in self._labels:
                clip = mvp.map(QtGui.QVector4D(float(pos[0]), float(pos[1]), float(pos[2]), 1.0))
                if clip.w() <= 0.0:
                    continue   # behind the camera
                px = (clip.x() / clip.w() + 1.0) * 0.5 * width
                py = (1.0 - clip.y() / clip.w()) * 0.5 * height
                metrics = QtGui.QFontMetricsF(font)
                w, h = metrics.horizontalAdvance(text) + 2.0, metrics.height()
                x0 = px - (w if align & QtCore.Qt.AlignmentFlag.AlignRight
                           else 0.0 if align & QtCore.Qt.AlignmentFlag.AlignLeft else w / 2)
                y0 = py - (h if align & QtCore.Qt.AlignmentFlag.AlignBottom
                           else 0.0 if align & QtCore.Qt.AlignmentFlag.AlignTop else h / 2)
                rect = QtCore.QRectF(x0, y0, w, h)
                if any(rect.intersects(other) for other in placed):
                    continue   # earlier labels win: titles, then z, x and y ticks
                placed.append(rect)
                painter.setFont(font)
                painter.setPen(color)
                painter.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, text)
        finally:
            painter.end()


def nice_ticks(lo: float, hi: float, target: int = 6) -> tuple[np.ndarray, int]:
    """Round tick values inside [lo, hi] (steps of 1, 2 or 5 times a power of ten)
    and the number of decimals that prints them exactly."""
    span = hi - lo
    if not (np.isfinite(span) and span > 0):
        return np.array([lo]), 0
    power = 10.0 ** math.floor(math.log10(span / target))

    def count(step):
        return math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1
    # the step whose tick count is nearest the target; the larger step on a tie
    step = min((m * p for p in (power, 10.0 * power) for m in (1.0, 2.0, 5.0)),
               key=lambda st: (abs(count(st) - target), -st))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = first + step * np.arange(count(step))
    decimals = max(0, -int(math.floor(math.log10(step) + 1e-9)))
    return ticks, decimals


def _format_tick(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if float(text) == 0.0:
        text = f"{0.0:.{decimals}f}"
    return text.replace("-", "\u2212")   # a real minus sign reads better on a slide


def _luminance(rgba) -> float:
    return 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]


class _BoxAxes:
    """Matplotlib-style frame: floor and two back walls with light grid lines at the ticks,
    three dark axis lines with tick marks, tick labels in data units and axis titles.
    The walls and tick sides follow the camera's azimuth quadrant."""

    def __init__(self, view, dark_background: bool):
        self.view = view
        ink = 0.88 if dark_background else 0.18
        grid = 0.32 if dark_background else 0.84
        self.text_color = QtGui.QColor.fromRgbF(ink, ink, ink, 1.0)
        self.grid = _LineItem(mode="lines", color=(grid, grid, grid + 0.02, 1.0), width=1.0,
                              glOptions="opaque")
        self.axes = _AxisLineItem(mode="lines", color=(ink, ink, ink, 1.0), width=1.5,
                              antialias=True, glOptions="translucent")
        self.labels = _LabelsItem()
        self.labels.setGLOptions("translucent")
        self.grid.setDepthValue(-2)
        self.axes.setDepthValue(-1)
        self.labels.setDepthValue(100)   # QPainter last: it disturbs GL state
        app_font = QtGui.QGuiApplication.font()
        self.tick_font = QtGui.QFont(app_font)
        self.tick_font.setPointSizeF(9.0)
        self.title_font = QtGui.QFont(app_font)
        self.title_font.setPointSizeF(12.0)
        self.title_font.setItalic(True)
        self.titles = ("x", "y", "f(x, y)")
        self._state = None
        for item in (self.grid, self.axes, self.labels):
            view.addItem(item)

    def items(self):
        return (self.grid, self.axes, self.labels)

    def setVisible(self, visible):
        for item in self.items():
            item.setVisible(visible)

    def setTitles(self, x, y, z):
        self.titles = (x, y, z)
        self._state = None

    def follow(self, box, fit, azimuth):
        """Rebuild the lines and labels when the data box or the azimuth quadrant changed."""
        a = math.radians(azimuth)
        quadrant = (math.cos(a) >= 0.0, math.sin(a) >= 0.0)
        state = (box, quadrant, self.titles)
        if state == self._state:
            return
        self._state = state
        self._build(box, fit, quadrant)

    def _build(self, box, fit, quadrant):
        X, Y, Z = DISPLAY_HALF_EXTENTS
        xf = X if quadrant[0] else -X          # the x wall nearest the camera
        yf = Y if quadrant[1] else -Y
        xb, yb, zf = -xf, -yf, -Z
        sx, sy = math.copysign(1.0, xf), math.copysign(1.0, yf)
        # z axis on the left-most silhouette corner, as seen from the camera
        azimuth = math.radians(self.view.opts["azimuth"])
        right = (-math.sin(azimuth), math.cos(azimuth))
        corners = [(cx, cy) for cx in (-X, X) for cy in (-Y, Y)]
        zx, zy = min(corners, key=lambda c: c[0] * right[0] + c[1] * right[1])

        ticks = []
        for axis in range(3):
            values, decimals = nice_ticks(*box[axis])
            shown = fit(np.column_stack([values if i == axis else np.full(len(values), box[i][0])
                                         for i in range(3)]))[:, axis]
            keep = np.abs(shown) <= DISPLAY_HALF_EXTENTS[axis] * 1.0001
            ticks.append([(float(d), _format_tick(v, decimals))
                          for v, d, k in zip(values, shown, keep) if k])
        (xt, yt, zt) = ticks

        # light lines: the two back walls' edges (the floor's back edges are their bottoms;
        # its front edges are the axes) and grid lines at the ticks, none under an axis line
        grid = []
        for wx, wy in ((xb, -Y), (xb, Y), (-X, yb), (X, yb)):
            if (wx, wy) != (zx, zy):
                grid += [(wx, wy, zf), (wx, wy, Z)]
        grid += [(xb, -Y, zf), (xb, Y, zf), (xb, -Y, Z), (xb, Y, Z),
                 (-X, yb, zf), (X, yb, zf), (-X, yb, Z), (X, yb, Z)]
        def on_axis(x, y):   # a vertical line through the z axis, or one ending on it
            return abs(x - zx) < 1e-6 and abs(y - zy) < 1e-6
        for d, _ in xt:
            if abs(d - xf) > 1e-6:                      # not on top of the y axis
                grid += [(d, -Y, zf), (d, Y, zf)]
            if not on_axis(d, yb):
                grid += [(d, yb, zf), (d, yb, Z)]
        for d, _ in yt:
            if abs(d - yf) > 1e-6:                      # not on top of the x axis
                grid += [(-X, d, zf), (X, d, zf)]
            if not on_axis(xb, d):
                grid += [(xb, d, zf), (xb, d, Z)]
        for d, _ in zt:
            grid += [(xb, -Y, d), (xb, Y, d), (-X, yb, d), (X, yb, d)]
        self.grid.setData(pos=np.array(grid, dtype=np.float32))

        tick = 0.045
        axes = [(-X, yf, zf), (X, yf, zf), (xf, -Y, zf), (xf, Y, zf), (zx, zy, zf), (zx, zy, Z)]
        out = np.array([zx, zy]) / math.hypot(zx, zy)
        labels = [((0.0, yf + sy * 0.36, zf), self.titles[0], self.title_font,
                   QtCore.Qt.AlignmentFlag.AlignCenter),
                  ((xf + sx * 0.36, 0.0, zf), self.titles[1], self.title_font,
                   QtCore.Qt.AlignmentFlag.AlignCenter),
                  ((zx, zy, Z + 0.1), self.titles[2], self.title_font,
                   QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignBottom)]
        for d, text in zt:
            axes += [(zx, zy, d), (zx + out[0] * tick, zy + out[1] * tick, d)]
            labels.append(((zx + out[0] * 0.1, zy + out[1] * 0.1, d), text, self.tick_font,
                           QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter))
        for d, text in xt:
            axes += [(d, yf, zf), (d, yf + sy * tick, zf)]
            labels.append(((d, yf + sy * 0.15, zf), text, self.tick_font,
                           QtCore.Qt.AlignmentFlag.AlignCenter))
        for d, text in yt:
            axes += [(xf, d, zf), (xf + sx * tick, d, zf)]
            labels.append(((xf + sx * 0.15, d, zf), text, self.tick_font,
                           QtCore.Qt.AlignmentFlag.AlignCenter))
        self.axes.setData(pos=np.array(axes, dtype=np.float32))
        self.labels.setLabels([(np.asarray(p, dtype=np.float32), text, font, self.text_color, align)
                               for p, text, font, align in labels])


def _marker_colors(colors, n):
    """(n, 4) float32 RGBA from None, one colour, n colours or an (n, 3|4) array.

    A colour is anything ``pg.mkColor`` takes, or 3 or 4 numbers: floats in [0, 1] when
    none exceeds 1, else 0..255.
    """
    if colors is None:
        colors = (0.90, 0.16, 0.10, 1.0)
    if _is_single_color(colors):
        rgba = np.tile(_color_f(colors), (n, 1))
    else:
        rgba = np.array([_color_f(c) for c in colors], dtype=np.float32).reshape(-1, 4)
    if rgba.shape != (n, 4):
        raise ValueError(f"expected colours for {n} markers, got {len(rgba)}")
    return np.ascontiguousarray(rgba, dtype=np.float32)


def _is_single_color(spec):
    if isinstance(spec, (str, QtGui.QColor)):
        return True
    values = np.asarray(spec, dtype=object)
    return values.ndim == 1 and len(values) in (3, 4) and all(
        isinstance(v, (int, float, np.number)) for v in values)


def _color_f(spec):
    if _is_single_color(spec) and not isinstance(spec, (str, QtGui.QColor)):
        rgba = np.asarray(spec, dtype=np.float64)
        if rgba.max() > 1.0:
            rgba = rgba / 255.0
        if len(rgba) == 3:
            rgba = np.r_[rgba, 1.0]
        return rgba.astype(np.float32)
    return np.array(pg.mkColor(spec).getRgbF(), dtype=np.float32)
