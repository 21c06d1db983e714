"""The one 3-D surface view every panel embeds, and its fallback when there is no OpenGL.

``SurfaceView`` fits any data box into a fixed display box (x, y -> [-1, 1], z -> about
[-0.6, 0.6]), so a bowl with heights in [0, 2] and Rosenbrock with heights in the
thousands both fill the same frame; axes, ticks and markers are drawn in data units.
``create_surface_view`` returns a ``NoOpenGLNotice`` with the same methods (as no-ops)
when no OpenGL context can be made, so panels never branch beyond ``is_notice``.
"""

from __future__ import annotations

import contextlib
import gc
import math

import numpy as np
import pyqtgraph as pg
from OpenGL import GL
from pyqtgraph.opengl import GLGraphicsItem, GLLinePlotItem, GLScatterPlotItem, GLViewWidget
from pyqtgraph.opengl.GLViewWidget import GLViewMixin
from PySide6 import QtCore, QtGui, QtOpenGL, QtWidgets

from .surface_item import SurfaceItem, context_key

__all__ = ["SurfaceView", "SurfaceWindow", "SurfaceViewContainer", "NoOpenGLNotice", "create_surface_view",
           "opengl_available"]

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


class _SurfaceViewMixin:
    """A 3-D view of one surface z = f(x, y), with axes in data units and point markers.

    Shared by :class:`SurfaceView` (a QOpenGLWidget) and :class:`SurfaceWindow` (a
    QOpenGLWindow that panels embed through :class:`SurfaceViewContainer`).

    Parameters
    ----------
    parent
        Parent widget.
    cmap
        Colormap for the surface (see ``SurfaceItem.setColorMap``); viridis by default.
    background
        Any ``pg.mkColor`` spec; axes and labels switch to light ink on dark backgrounds.
    samples
        Multisample anti-aliasing (e.g. 4) for smooth edges; costs frame time on llvmpipe.
    """

    is_notice = False

    def __init__(self, parent=None, *, cmap="viridis", background="w", samples=0):
        super().__init__(parent)
        if samples:
            fmt = self.format()
            fmt.setSamples(int(samples))
            self.setFormat(fmt)
        self.setBackgroundColor(background)
        dark = _luminance(self.opts["bgcolor"]) < 0.5
        self.setMinimumSize(QtCore.QSize(160, 120))
        self._surface = SurfaceItem(cmap=cmap)
        self.addItem(self._surface)
        self._axes = _BoxAxes(self, dark)
        # markers hidden behind the surface still show, faintly: a ghost pass without depth test
        self._ghost_markers = _MarkerItem(pxMode=True, glOptions={
            GL.GL_DEPTH_TEST: False, GL.GL_BLEND: True, GL.GL_CULL_FACE: False,
            "glBlendFuncSeparate": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA,
                                    GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)})
        self._ghost_markers.setDepthValue(1)
        self._markers = _MarkerItem(pxMode=True, glOptions="translucent")
        self._markers.setDepthValue(2)
        for item in (self._ghost_markers, self._markers):
            self.addItem(item)
        self._marker_data = np.zeros((0, 3))
        self._marker_colors = np.zeros((0, 4), np.float32)
        self._marker_size = 12.0
        self._marker_camera = None
        self._box = ((-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0))
        self._scale = np.ones(3)
        self._offset = np.zeros(3)
        self._auto_distance = True
        self._full_surface = None
        self._pixels_per_cell = DEFAULT_PIXELS_PER_CELL
        self._mesh_shape = (0, 0)
        self._apply_box(self._box)
        self.resetCamera()

    # ------------------------------------------------------------------ data
    def setSurface(self, x, y, z, levels=None, z_range=None):
        """Show z[j, i] = f(x[i], y[j]) (shapes (nx,), (ny,), (ny, nx)); NaN heights are holes.

        ``levels=(lo, hi)`` fixes the colormap ends (default: finite range of z).
        ``z_range=(lo, hi)`` fixes the fitted height box (default: finite range of z);
        an animation should fix both, so the frame and colours stay put between frames.
        """
        self._full_surface = (x, y, z, levels, z_range)
        dx, dy, dz = self._display_mesh(x, y, z)
        self._surface.setData(x=dx, y=dy, z=dz, levels=levels)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if z_range is None:
            z_range = self._surface.heightRange() or (0.0, 1.0)
        box = (_span(x.min(), x.max()), _span(y.min(), y.max()), _span(*z_range))
        if box != self._box:
            self._apply_box(box)

    def setPixelsPerCell(self, pixels: float | None) -> None:
        """Draw at most one mesh cell per ``pixels`` screen pixels (None: every grid cell).

        A CPU rasteriser pays for every triangle; cells smaller than a few pixels add cost
        and no visible detail. The mesh keeps every k-th grid node (values stay exact at
        the nodes drawn, the first and last rows and columns are always kept); the contour
        map always shows the full grid.
        """
        self._pixels_per_cell = pixels
        if self._full_surface is not None:
            self.setSurface(*self._full_surface)

    def _surface_shape(self):
        z = getattr(self._surface, "_z", None)
        return None if z is None else np.shape(z)

    def meshShape(self) -> tuple[int, int]:
        """(ny, nx) of the mesh actually drawn (see :meth:`setPixelsPerCell`)."""
        return self._mesh_shape

    def _display_mesh(self, x, y, z):
        z = np.asarray(z)
        ny, nx = z.shape
        if not self._pixels_per_cell:
            self._mesh_shape = (ny, nx)
            return x, y, z
        budget = max(32, int(min(self.width(), self.height()) / float(self._pixels_per_cell)))

        def nodes(n):
            step = max(1, -(-(n - 1) // budget))  # ceil((n - 1) / budget)
            keep = np.arange(0, n, step)
            return keep if keep[-1] == n - 1 else np.append(keep, n - 1)

        iy, ix = nodes(ny), nodes(nx)
        self._mesh_shape = (len(iy), len(ix))
        if len(iy) == ny and len(ix) == nx:
            return x, y, z
        return np.asarray(x)[ix], np.asarray(y)[iy], np.ascontiguousarray(z[np.ix_(iy, ix)])

    def surfaceItem(self) -> SurfaceItem:
        """The SurfaceItem, for looks this view does not wrap (lighting, opacity, ...)."""
        return self._surface

    def dataBox(self):
        """((x0, x1), (y0, y1), (z0, z1)) of the data fitted into the display box."""
        return self._box

    def setColorMap(self, cmap):
        self._surface.setColorMap(cmap)

    def setWireframe(self, enabled=True, every=None):
        """Grid lines on the surface along every ``every``-th grid line (None: about 25)."""
        self._surface.setWireframe(enabled, every=every)

    def setAxisLabels(self, x="x", y="y", z="f(x, y)"):
        self._axes.setTitles(x, y, z)
        self._axes.follow(self._box, self.mapDataToDisplay, self.opts["azimuth"])

    def setAxesVisible(self, visible=True):
        self._axes.setVisible(visible)

    def setMarkers(self, points_xyz, colors=None, size=12.0):
        """Markers at (N, 3) points in data coordinates, e.g. critical points.

        ``colors``: one colour for all, one per point, or an (N, 3|4) array.
        """
        points = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
        self._marker_data = points
        self._marker_colors = _marker_colors(colors, len(points))
        self._marker_size = float(size)
        self._update_markers()

    def clearMarkers(self):
        self.setMarkers(np.zeros((0, 3)))

    def mapDataToDisplay(self, points):
        """(..., 3) data points -> display-box coordinates."""
        return np.asarray(points, dtype=np.float64) * self._scale + self._offset

    def project_to_widget(self, points_xyz):
        """(N, 3) data points -> (N, 2) widget pixel coordinates (x right, y down)."""
        shown = self.mapDataToDisplay(np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3))
        w, h = self.width(), self.height()
        mvp = self.projectionMatrix((0, 0, w, h), (0, 0, w, h)) * self.viewMatrix()
        m = np.array(mvp.data(), dtype=np.float64).reshape(4, 4).T
        clip = np.column_stack([shown, np.ones(len(shown))]) @ m.T
        ndc = clip[:, :2] / clip[:, 3:4]
        return np.column_stack([(ndc[:, 0] + 1.0) * 0.5 * w, (1.0 - ndc[:, 1]) * 0.5 * h])

    # ------------------------------------------------------------------ camera
    def resetCamera(self):
        """Elevation 28, azimuth -60 (matplotlib's view) and a distance that frames the box."""
        self.opts["center"] = QtGui.QVector3D(0.0, 0.0, 0.0)
        self.opts["fov"] = DEFAULT_CAMERA["fov"]
        self.setCameraPosition(elevation=DEFAULT_CAMERA["elevation"],
                               azimuth=DEFAULT_CAMERA["azimuth"])
        self._auto_distance = True
        self._frame_box()

    def _frame_box(self):
        """Camera centre and smallest distance that keep the box and its labels on screen."""
        w, h = max(self.width(), 1), max(self.height(), 1)
        X, Y, Z = DISPLAY_HALF_EXTENTS
        corners = [(sx * X, sy * Y, sz * Z) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
        anchors = [tuple(label[0]) for label in self._axes.labels.labels()]
        points = np.array(corners + anchors, dtype=np.float64)
        homogeneous = np.column_stack([points, np.ones(len(points))])
        # labels reach past their anchors: keep ~45 px left/right and ~22 px top/bottom free
        limit = np.array([1.0 - 90.0 / w, 1.0 - 44.0 / h])

        def project(distance):
            self.opts["distance"] = distance
            mvp = self.projectionMatrix((0, 0, w, h), (0, 0, w, h)) * self.viewMatrix()
            clip = homogeneous @ np.array(mvp.data(), dtype=np.float64).reshape(4, 4)
            if np.any(clip[:, 3] <= 0):
                return None
            return clip[:, :2] / clip[:, 3:4]

        def fits(distance):
            ndc = project(distance)
            return ndc is not None and bool(np.all(np.abs(ndc) <= limit))

        for _ in range(2):   # fit the distance, centre the picture, fit again
            near, far = 0.5, 200.0
            for _ in range(40):
                middle = 0.5 * (near + far)
                near, far = (near, middle) if fits(middle) else (middle, far)
            ndc = project(far)
            shift = 0.5 * (ndc.min(axis=0) + ndc.max(axis=0))
            view = np.array(self.viewMatrix().data(), dtype=np.float64).reshape(4, 4).T
            right, up = view[0, :3], view[1, :3]
            half_width = far * math.tan(math.radians(self.opts["fov"]) / 2.0)
            offset = shift[0] * half_width * right + shift[1] * half_width * h / w * up
            center = self.opts["center"]
            self.opts["center"] = QtGui.QVector3D(center.x() + offset[0], center.y() + offset[1],
                                                  center.z() + offset[2])
        self.opts["distance"] = far
        self.update()

    # Qt calls the three *GL methods with this widget's context current. pyqtgraph's items
    # and their view reference each other, so a dropped GLViewWidget is freed by Python's
    # cyclic collector, which may run on any allocation, e.g. just as Qt calls into one
    # of these. The dying widget's destructor makes its own context current and then
    # releases it, leaving this one without a current context: a segfault in Qt's
    # framebuffer readback. So: collection off while inside, and our context made current
    # again if a collection on the way in took it away. (App-wide, collecting from a
    # timer in the event loop, as pyqtgraph's GarbageCollector does, removes the hazard
    # for every GL widget.)
    def _own_context_current(self):
        if QtGui.QOpenGLContext.currentContext() is not self.context():
            self.makeCurrent()

    def initializeGL(self):
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._own_context_current()
            super().initializeGL()
        finally:
            if enabled:
                gc.enable()

    def resizeGL(self, w, h):
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._own_context_current()
            super().resizeGL(w, h)
            if self._auto_distance:
                self._frame_box()
            if self._full_surface is not None and self._pixels_per_cell:
                x, y, z = self._full_surface[:3]
                if self._display_mesh(x, y, z)[2].shape != self._surface_shape():
                    self.setSurface(*self._full_surface)
        finally:
            if enabled:
                gc.enable()

    def wheelEvent(self, ev):
        self._auto_distance = False
        super().wheelEvent(ev)

    def paintGL(self):
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._own_context_current()
            self._axes.follow(self._box, self.mapDataToDisplay, self.opts["azimuth"])
            self._follow_camera_with_markers()
            super().paintGL()
        finally:
            if enabled:
                gc.enable()

    # ------------------------------------------------------------------ export
    def grab_image(self) -> QtGui.QImage:
        """The rendered frame (rendered again now) as a QImage."""
        return self.grabFramebuffer()

    def export_png(self, path) -> None:
        """Write the rendered frame to ``path`` as PNG; raises OSError when Qt cannot."""
        image = self.grab_image()
        if image.isNull() or not image.save(str(path), "PNG"):
            raise OSError(f"could not write the 3-D view to {path}")

    # ------------------------------------------------------------------ internals
    def _apply_box(self, box):
        self._box = box
        half = np.array(DISPLAY_HALF_EXTENTS) * np.array([1.0, 1.0, _Z_MARGIN])
        center = np.array([0.5 * (lo + hi) for lo, hi in box])
        self._scale = half / np.array([hi - lo for lo, hi in box]) * 2.0
        self._offset = -center * self._scale
        self._surface.setDisplayTransform(self._scale, self._offset)
        self._axes.follow(self._box, self.mapDataToDisplay, self.opts["azimuth"])
        self._update_markers()

    def _update_markers(self):
        n = len(self._marker_data)
        for item in (self._ghost_markers, self._markers):
            item.setVisible(n > 0)
        self._marker_camera = None      # positions are placed per camera in paintGL
        self.update()

    def _follow_camera_with_markers(self):
        """Slide each marker along its line of sight towards the camera, by twice its
        radius: the same place on screen, but in front of the surface around the point
        it marks (a disc at a saddle point would otherwise be half buried)."""
        n = len(self._marker_data)
        camera = self.cameraPosition()
        key = (camera.x(), camera.y(), camera.z(), self.width(), self.opts["fov"])
        if n == 0 or key == self._marker_camera:
            return
        self._marker_camera = key
        shown = self.mapDataToDisplay(self._marker_data)
        towards = np.array([camera.x(), camera.y(), camera.z()]) - shown
        distance = np.linalg.norm(towards, axis=1, keepdims=True)
        radius = 0.5 * (self._marker_size + 4.0) * self.pixelSize(shown)[:, None]
        shown = shown + towards / np.maximum(distance, 1e-9) * np.minimum(2.0 * radius,
                                                                            0.5 * distance)
        rim = np.tile(np.array([[0.08, 0.08, 0.08, 1.0]], np.float32), (n, 1))
        colors = np.vstack([rim, self._marker_colors])
        ghost = colors.copy()
        ghost[:, 3] *= 0.35
        pos = np.ascontiguousarray(np.vstack([shown, shown]), dtype=np.float32)
        size = np.r_[np.full(n, self._marker_size + 4.0), np.full(n, self._marker_size)]
        for item, rgba in ((self._ghost_markers, ghost), (self._markers, colors)):
            item.setData(pos=pos, color=np.ascontiguousarray(rgba, dtype=np.float32),
                         size=size.astype(np.float32))


class SurfaceView(_SurfaceViewMixin, GLViewWidget):
    """The surface view as a QOpenGLWidget (composited with the rest of the window)."""


class SurfaceWindow(_SurfaceViewMixin, GLViewMixin, QtOpenGL.QOpenGLWindow):
    """The surface view as a native QOpenGLWindow.

    A QOpenGLWidget makes Qt compose the whole top-level window with OpenGL on every
    repaint of *any* widget in it, which on a software rasteriser costs 10-20 ms per
    slider movement. A native GL window draws and swaps only itself, and the rest of the
    window stays on the cheap raster path. Panels embed it with
    :class:`SurfaceViewContainer`.
    """

    def devicePixelRatioF(self):
        return self.devicePixelRatio()


class SurfaceViewContainer(QtWidgets.QWidget):
    """A widget holding a :class:`SurfaceWindow`; the view's methods are forwarded to it."""

    is_notice = False

    def __init__(self, parent=None, **kwargs):
        super().__init__(parent)
        self.window_view = SurfaceWindow(**kwargs)
        self._container = QtWidgets.QWidget.createWindowContainer(self.window_view, self)
        self._container.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._container)
        self.setMinimumSize(160, 120)

    @property
    def frameSwapped(self):
        return self.window_view.frameSwapped

    def __getattr__(self, name):
        # Only reached for names QWidget does not have: the view API (setSurface, ...).
        if name in ("window_view", "_container"):
            raise AttributeError(name)
        return getattr(self.window_view, name)


def _span(lo, hi):
    """A (lo, hi) pair as floats, widened when it is empty."""
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        pad = 0.5 * abs(lo) if lo != 0.0 else 0.5
        lo, hi = lo - pad, hi + pad
    return (lo, hi)


# ---------------------------------------------------------------------- no-OpenGL fallback
_availability = None


def opengl_available(refresh=False) -> tuple[bool, str]:
    """Whether a usable OpenGL context (desktop >= 2.1 or ES >= 2.0) can be made here.

    Never crashes: the ``offscreen`` and ``minimal`` Qt platforms are refused by name,
    otherwise a QOpenGLContext is made current on a QOffscreenSurface and its version
    read. Returns ``(ok, reason)``; the reason names the renderer when ok. Cached per
    process (the platform cannot change) unless ``refresh``.
    """
    global _availability
    if _availability is not None and not refresh:
        return _availability
    app = QtGui.QGuiApplication.instance()
    if app is None:
        return False, "no QApplication has been created yet"
    platform = QtGui.QGuiApplication.platformName()
    if platform in ("offscreen", "minimal"):
        _availability = (False, f"the Qt platform '{platform}' has no OpenGL")
        return _availability
    with gc_paused():
        _availability = _probe_context()
    return _availability


def _probe_context():
    previous = QtGui.QOpenGLContext.currentContext()
    previous_surface = previous.surface() if previous is not None else None
    context = QtGui.QOpenGLContext()
    if not context.create():
        return False, "Qt could not create an OpenGL context"
    surface = QtGui.QOffscreenSurface()
    surface.setFormat(context.format())
    surface.create()
    try:
        if not surface.isValid():
            return False, "Qt could not create an offscreen surface"
        if not context.makeCurrent(surface):
            return False, "the OpenGL context could not be made current"
        try:
            fmt = context.format()
            version = fmt.version()
            functions = context.functions()
            renderer = functions.glGetString(GL.GL_RENDERER) or "unknown renderer"
            full_version = functions.glGetString(GL.GL_VERSION) or f"{version[0]}.{version[1]}"
        finally:
            context.doneCurrent()
    finally:
        surface.destroy()
        if previous is not None and previous_surface is not None:
            previous.makeCurrent(previous_surface)
    minimum = (2, 0) if context.isOpenGLES() else (2, 1)
    if version < minimum:
        return False, (f"OpenGL {version[0]}.{version[1]} found, pyqtgraph needs "
                       f"{minimum[0]}.{minimum[1]} ({renderer})")
    return True, f"OpenGL {full_version}, {renderer}"


class NoOpenGLNotice(QtWidgets.QFrame):
    """Stands where the 3-D view would be when there is no OpenGL; every view method is a no-op."""

    is_notice = True

    def __init__(self, reason: str, parent=None):
        super().__init__(parent)
        self.reason = reason
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setMinimumSize(160, 120)
        self.label = QtWidgets.QLabel(
            f"3-D view unavailable: no OpenGL context ({reason}). The contour map below still "
            "works. Run under a desktop session or xvfb-run with Mesa.", self)
        self.label.setWordWrap(True)
        self.label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.label)

    def message(self) -> str:
        return self.label.text()

    def setSurface(self, x, y, z, levels=None, z_range=None):
        pass

    def setMarkers(self, points_xyz, colors=None, size=12.0):
        pass

    def clearMarkers(self):
        pass

    def setWireframe(self, enabled=True, every=None):
        pass

    def setColorMap(self, cmap):
        pass

    def setAxisLabels(self, x="x", y="y", z="f(x, y)"):
        pass

    def setAxesVisible(self, visible=True):
        pass

    def resetCamera(self):
        pass

    def grab_image(self) -> QtGui.QImage:
        return self.grab().toImage()

    def export_png(self, path) -> None:
        if not self.grab_image().save(str(path), "PNG"):
            raise OSError(f"could not write the notice to {path}")


def create_surface_view(parent=None, native_window=True, **kwargs):
    """The 3-D view a panel embeds, or a NoOpenGLNotice with the same methods without OpenGL.

    By default the view is a native GL window in a container (see :class:`SurfaceWindow`);
    ``native_window=False`` gives the QOpenGLWidget variant.
    """
    ok, reason = opengl_available()
    if not ok:
        return NoOpenGLNotice(reason, parent)
    if native_window:
        return SurfaceViewContainer(parent, **kwargs)
    return SurfaceView(parent, **kwargs)
