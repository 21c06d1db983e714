"""The one 3-D surface view every panel embeds, and its fallback when there is no OpenGL.

``SurfaceView`` fits any data box into a fixed display box (x, y -> [-1, 1], z -> about
[-0.6, 0.6]), so a bowl with heights in [0, 2] and Rosenbrock with heights in the
thousands both fill the same frame; axes, ticks and markers are drawn in data units.
``create_surface_view`` returns a ``NoOpenGLNotice`` with the same methods (as no-ops)
when no OpenGL context can be made, so panels never branch beyond ``is_notice``.
"""

from __future__ import annotations

import gc
import math

import numpy as np
from OpenGL import GL
from pyqtgraph.opengl import GLViewWidget
from pyqtgraph.opengl.GLViewWidget import GLViewMixin
from PySide6 import QtCore, QtGui, QtOpenGL, QtWidgets

from ._decorations import (
    _Z_MARGIN,
    DEFAULT_CAMERA,
    DEFAULT_PIXELS_PER_CELL,
    DISPLAY_HALF_EXTENTS,
    _BoxAxes,
    _color_f,
    _LineItem,
    _luminance,
    _marker_colors,
    _MarkerItem,
    nice_ticks,
)
from .fallback import NoOpenGLNotice, opengl_available
from .surface_item import SurfaceItem

__all__ = ["SurfaceView", "SurfaceWindow", "SurfaceViewContainer", "NoOpenGLNotice", "create_surface_view",
           "opengl_available", "nice_ticks"]

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
        self._path_items: list = []
        self._paths: list = []                   # [(points (N, 3) in data units, rgba)]
        self._balls = _MarkerItem(pxMode=True, glOptions={
            GL.GL_DEPTH_TEST: False, GL.GL_BLEND: True, GL.GL_CULL_FACE: False,
            "glBlendFuncSeparate": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA,
                                    GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)})
        self._balls.setDepthValue(5)
        self.addItem(self._balls)
        self._ball_data = (np.zeros((0, 3)), np.zeros((0, 4), np.float32), 14.0)
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
        self._surface.setHeightClip(*box[2])

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

    def setColorKnots(self, knots):
        """Colour by band between increasing heights (see ``SurfaceItem.setColorKnots``)."""
        self._surface.setColorKnots(knots)

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
        finite = np.isfinite(points).all(axis=1)
        self._marker_data = points[finite]
        self._marker_colors = _marker_colors(colors, len(points))[finite]
        self._marker_size = float(size)
        self._update_markers()

    def setPaths(self, paths):
        """Polylines over the surface in data coordinates, e.g. optimizer trails.

        ``paths`` is a list of ``(points (N, 3), colour)``; heights are cut at the box like
        the surface, and each line is lifted a hair above it so it is not buried.
        """
        self._paths = [(np.asarray(p, dtype=np.float64).reshape(-1, 3), c) for p, c in paths]
        while len(self._path_items) < len(self._paths):
            item = _LineItem(mode="line_strip", width=2.5, antialias=True, glOptions="translucent")
            item.setDepthValue(4)
            self.addItem(item)
            self._path_items.append(item)
        self._update_paths()

    def setBalls(self, points_xyz, colors, size=14.0):
        """Round balls at (N, 3) data points drawn over everything (the optimizers' positions)."""
        points = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
        finite = np.isfinite(points).all(axis=1)
        self._ball_data = (points[finite], _marker_colors(colors, len(points))[finite], float(size))
        self._update_paths()

    def _lifted(self, points):
        (z0, z1) = self._box[2]
        data = points.copy()
        data[:, 2] = np.clip(data[:, 2], z0, z1)
        shown = self.mapDataToDisplay(data)
        shown[:, 2] += 0.012
        return np.ascontiguousarray(shown, dtype=np.float32)

    def _update_paths(self):
        for i, item in enumerate(self._path_items):
            if i < len(self._paths) and len(self._paths[i][0]) >= 2:
                points, color = self._paths[i]
                points = points[np.isfinite(points).all(axis=1)]
                item.setData(pos=self._lifted(points), color=tuple(float(c) for c in _color_f(color)))
                item.setVisible(len(points) >= 2)
            else:
                item.setVisible(False)
        points, colors, size = self._ball_data
        self._balls.setVisible(len(points) > 0)
        if len(points):
            n = len(points)
            rim = np.tile(np.array([[0.08, 0.08, 0.08, 1.0]], np.float32), (n, 1))
            shown = self._lifted(points)
            self._balls.setData(pos=np.vstack([shown, shown]),
                                color=np.ascontiguousarray(np.vstack([rim, colors]), dtype=np.float32),
                                size=np.r_[np.full(n, size + 4.0), np.full(n, size)].astype(np.float32))
        self.update()

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

    # -- picking a point on the surface with a click ---------------------------------
    def setClickHandler(self, handler):
        """Call ``handler(x, y)`` with the surface point under a click (a press and release
        that did not drag the camera); None stops it."""
        self._click_handler = handler

    def pick(self, px: float, py: float, radius: float = 8.0):
        """The grid point (x, y) of the drawn surface nearest the camera among those within
        ``radius`` pixels of widget position (px, py), or None."""
        full = getattr(self, "_full_surface", None)
        if full is None:
            return None
        x, y, z = self._display_mesh(*full[:3])
        X, Y = np.meshgrid(np.asarray(x, float), np.asarray(y, float))
        Z = np.asarray(z, float)
        (z0, z1) = self._box[2]
        ok = np.isfinite(Z)
        if not ok.any():
            return None
        points = np.column_stack([X[ok], Y[ok], np.clip(Z[ok], z0, z1)])
        screen = self.project_to_widget(points)
        near = np.hypot(screen[:, 0] - px, screen[:, 1] - py) <= radius
        if not near.any():
            return None
        camera = self.cameraPosition()
        eye = np.array([camera.x(), camera.y(), camera.z()])
        candidates = points[near]
        depth = np.linalg.norm(self.mapDataToDisplay(candidates) - eye, axis=1)
        offset = np.hypot(*(screen[near] - (px, py)).T)
        # The front layer (what the eye sees there), then the node closest to the click in it.
        front = depth <= depth.min() + 0.08
        best = candidates[front][int(np.argmin(offset[front]))]
        return float(best[0]), float(best[1])

    def mousePressEvent(self, ev):
        self._press_at = ev.position()
        super().mousePressEvent(ev)

    def mouseReleaseEvent(self, ev):
        super().mouseReleaseEvent(ev)
        start = getattr(self, "_press_at", None)
        handler = getattr(self, "_click_handler", None)
        if start is None or handler is None or ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        end = ev.position()
        if abs(end.x() - start.x()) + abs(end.y() - start.y()) > 4:
            return  # a drag turned the camera
        point = self.pick(end.x(), end.y())
        if point is not None:
            handler(*point)

    def paintGL(self):
        enabled = gc.isenabled()
        gc.disable()
        self._painting = True
        try:
            self._own_context_current()
            self._axes.follow(self._box, self.mapDataToDisplay, self.opts["azimuth"])
            self._follow_camera_with_markers()
            super().paintGL()
        finally:
            self._painting = False
            if enabled:
                gc.enable()

    def update(self):
        # Items placed for the camera inside paintGL (markers, axis labels) ask for a repaint;
        # this very paint draws them, so a second frame would only cost time.
        if not getattr(self, "_painting", False):
            super().update()

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
        if hasattr(self, "_path_items"):
            self._update_paths()
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
        # Markers stay inside the box, like the surface: heights beyond it sit on its lid.
        (z0, z1) = self._box[2]
        data = self._marker_data.copy()
        data[:, 2] = np.clip(data[:, 2], z0, z1)
        shown = self.mapDataToDisplay(data)
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
