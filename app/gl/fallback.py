"""Whether OpenGL works here, and what stands in for the 3-D view when it does not."""

from __future__ import annotations

from OpenGL import GL
from PySide6 import QtCore, QtGui, QtWidgets

from ._decorations import gc_paused

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

    def setColorKnots(self, knots):
        pass

    def setPaths(self, paths):
        pass

    def setClickHandler(self, handler):
        pass

    def setBalls(self, points_xyz, colors, size=14.0):
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
