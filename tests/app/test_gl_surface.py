"""Pixel tests of the 3-D surface view (real OpenGL: Xvfb + Mesa, started by pytest-xvfb).

pyqtgraph's GLViewWidget swallows exceptions raised while painting, so these tests look
at the framebuffer and at the captured output instead of trusting that no error raised.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import shiboken6
from OpenGL import GL
from OpenGL.GL import shaders as gl_shaders
from pyqtgraph.opengl import GLGraphicsItem
from PySide6 import QtGui, QtWidgets

from app.gl import surface_item
from app.gl.surface_view import (NoOpenGLNotice, SurfaceView, SurfaceViewContainer, SurfaceWindow,
                                  create_surface_view, nice_ticks,
                                 opengl_available)

ROOT = Path(__file__).resolve().parents[2]
BACKGROUND = np.array([255, 255, 255])


@pytest.fixture
def gl_required(qapp):
    """Skip only on Qt's offscreen platform (chosen on purpose); anywhere else a missing
    OpenGL context is a broken test environment and fails loudly."""
    if QtGui.QGuiApplication.platformName() == "offscreen":
        pytest.skip("QT_QPA_PLATFORM=offscreen has no OpenGL")
    ok, reason = opengl_available()
    assert ok, f"no OpenGL context under Xvfb: {reason}"


@pytest.fixture
def no_draw_errors(capfd):
    yield
    out, err = capfd.readouterr()
    assert "Error while drawing item" not in out + err, out + err


@pytest.fixture
def make_view(qtbot, gl_required, no_draw_errors):
    def make(width=400, height=300, **kwargs):
        view = SurfaceView(**kwargs)
        qtbot.addWidget(view)
        view.resize(width, height)
        view.show()
        qtbot.waitExposed(view)
        qtbot.waitUntil(view.isValid)
        return view
    return make


def grid(n=64, lo=-1.0, hi=1.0):
    x = np.linspace(lo, hi, n)
    return x, x.copy()


def saddle(x, y):
    return x[None, :] ** 2 - y[:, None] ** 2


def frame(view, qtbot) -> np.ndarray:
    """(h, w, 3) uint8 pixels of a freshly rendered frame."""
    qtbot.wait(50)
    image = view.grab_image().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    assert not image.isNull()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3].copy()


def foreground(pixels) -> np.ndarray:
    return np.abs(pixels.astype(int) - BACKGROUND).max(axis=-1) > 12


def near_color(pixels, color, tol=14) -> np.ndarray:
    return np.abs(pixels.astype(int) - np.asarray(color, int)[:3]).max(axis=-1) <= tol


def nearest_lut_distance(pixels, lut) -> np.ndarray:
    flat = pixels.reshape(-1, 1, 3).astype(np.int16)
    return np.abs(flat - lut[None, :, :3].astype(np.int16)).max(axis=-1).min(axis=-1)


def pixel_at(pixels, xy):
    x, y = (int(round(v)) for v in xy)
    return pixels[y, x]


def patch(pixels, xy, r=3):
    x, y = (int(round(v)) for v in xy)
    return pixels[y - r: y + r + 1, x - r: x + r + 1]


def test_saddle_shows_the_whole_colormap(make_view, qtbot):
    view = make_view()
    view.setAxesVisible(False)
    view.surfaceItem().setLighting(False)           # exact LUT colours on screen
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    pixels = frame(view, qtbot)
    lut = view.surfaceItem().colorLookupTable()
    surface = foreground(pixels)
    assert surface.mean() > 0.15
    distance = nearest_lut_distance(pixels[surface], lut)
    assert (distance <= 10).mean() > 0.98           # every surface pixel is a colormap colour
    assert near_color(pixels, lut[0]).sum() > 50    # bottom end (saddle's y = +-1 edges)
    assert near_color(pixels, lut[-1]).sum() > 50   # top end (x = +-1 edges)


def test_lit_saddle_with_axes_has_both_ends_of_viridis(make_view, qtbot):
    view = make_view()
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    pixels = frame(view, qtbot).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    colourful = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 40   # axes and grid are grey
    assert colourful.mean() > 0.12
    purple = colourful & (b > g + 30) & (r > g + 15)                # viridis bottom, shaded
    yellow = colourful & (r > 150) & (g > 130) & (b < 100)          # viridis top, shaded
    assert purple.sum() > 50 and yellow.sum() > 50
    dark = pixels.max(axis=-1) < 110
    assert (dark & ~colourful).sum() > 100                          # axis lines and labels


def test_new_heights_change_pixels_without_rebuilding_the_grid(make_view, qtbot, monkeypatch):
    view = make_view()
    x, y = grid()
    view.setSurface(x, y, saddle(x, y), levels=(-1, 1), z_range=(-1, 1))
    before = frame(view, qtbot)

    calls = {"strip": 0, "glBufferData": 0, "glBufferSubData": 0}

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        return wrapper
    monkeypatch.setattr(surface_item, "_grid_strip",
                        counting("strip", surface_item._grid_strip))
    for name in ("glBufferData", "glBufferSubData"):
        monkeypatch.setattr(surface_item.GL, name, counting(name, getattr(GL, name)))

    bump = np.exp(-4 * (x[None, :] ** 2 + y[:, None] ** 2)) * 2 - 1
    view.setSurface(x, y, bump, levels=(-1, 1), z_range=(-1, 1))
    after = frame(view, qtbot)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 30
    assert changed.mean() > 0.05
    assert calls == {"strip": 0, "glBufferData": 0, "glBufferSubData": 1}


def test_nan_heights_are_holes(make_view, qtbot):
    view = make_view()
    view.setAxesVisible(False)
    view.setCameraPosition(elevation=90, azimuth=-90)   # straight down: nothing behind a hole
    x, y = grid()
    z = saddle(x, y)
    hole = (x[None, :] > 0.2) & (y[:, None] > 0.2)
    z[hole] = np.nan
    view.setSurface(x, y, z)
    view.setWireframe(True)
    pixels = frame(view, qtbot)
    inside_hole = view.project_to_widget([[0.6, 0.6, 0.0]])[0]
    solid = view.project_to_widget([[-0.6, -0.6, 0.0]])[0]
    assert not foreground(patch(pixels, inside_hole)).any()
    assert foreground(patch(pixels, solid)).all()
    assert foreground(pixels).mean() > 0.2


def test_all_nan_surface_draws_nothing_and_does_not_fail(make_view, qtbot):
    view = make_view()
    view.setAxesVisible(False)
    x, y = grid(8)
    view.setSurface(x, y, np.full((8, 8), np.nan))
    assert not foreground(frame(view, qtbot)).any()


def test_rows_run_along_y_on_a_non_square_grid(make_view, qtbot):
    view = make_view()
    view.setAxesVisible(False)
    view.surfaceItem().setLighting(False)
    view.setCameraPosition(elevation=90, azimuth=-90)
    x = np.linspace(0.0, 4.0, 40)
    y = np.linspace(-1.0, 1.0, 20)
    z = np.tile(x, (len(y), 1))                          # z[j, i] = x[i]
    view.setSurface(x, y, z)
    pixels = frame(view, qtbot)
    lut = view.surfaceItem().colorLookupTable()
    high, low = view.project_to_widget([[3.9, 0.0, 3.9], [0.1, 0.0, 0.1]])
    assert near_color(patch(pixels, high, 1), lut[-1], 20).all()
    assert near_color(patch(pixels, low, 1), lut[0], 20).all()


def test_rosenbrock_heights_in_the_thousands_fit_the_box(make_view, qtbot):
    view = make_view()
    x = np.linspace(-2, 2, 80)
    y = np.linspace(-1, 3, 80)
    z = (1 - x[None, :]) ** 2 + 100 * (y[:, None] - x[None, :] ** 2) ** 2
    view.setSurface(x, y, z)
    (x0, x1), (y0, y1), (z0, z1) = view.dataBox()
    assert z1 > 2500
    corners = np.array([[x0, y0, z0], [x1, y1, z1]])
    shown = view.mapDataToDisplay(corners)
    assert np.all(np.abs(shown) <= [1.0001, 1.0001, 0.6001])
    pixels = frame(view, qtbot)
    assert foreground(pixels).mean() > 0.15
    edge = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3),
                           pixels[:, :2].reshape(-1, 3), pixels[:, -2:].reshape(-1, 3)])
    assert not foreground(edge).any()                    # the camera frames the whole box


def test_markers_sit_at_their_data_points(make_view, qtbot):
    view = make_view()
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    view.setMarkers([[0.0, 0.0, 0.0]], colors=(1.0, 0.0, 0.0), size=14)
    pixels = frame(view, qtbot)
    centre = view.project_to_widget([[0.0, 0.0, 0.0]])[0]
    assert near_color(patch(pixels, centre, 2), (255, 0, 0), 30).all()
    view.clearMarkers()
    assert not near_color(frame(view, qtbot), (255, 0, 0), 30).any()


def test_second_window_still_draws_lines_and_markers(make_view, qtbot):
    """pyqtgraph 0.14 caches line/scatter programs per process; ours are per context."""
    x, y = grid()
    for _ in range(2):
        view = make_view()
        view.setSurface(x, y, saddle(x, y))
        view.setMarkers([[0.0, 0.0, 0.0]], colors="#ff0000")
        pixels = frame(view, qtbot)
        assert near_color(pixels, (255, 0, 0), 30).sum() > 20
        grey = (pixels.max(axis=-1) - pixels.min(axis=-1) < 10) & (pixels.max(axis=-1) < 90)
        assert grey.sum() > 100                          # dark axis lines and labels
        view.close()


def test_paint_leaves_gl_state_as_it_found_it(make_view, qtbot):
    view = make_view()
    view.setAxesVisible(False)
    probes = _StateProbes()
    view.addItem(probes.before)
    view.addItem(probes.after)
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    view.setWireframe(True)
    frame(view, qtbot)
    assert probes.before.states and probes.after.states
    assert probes.after.states[-1] == probes.before.states[-1]
    assert probes.before.states[-1]["program"] != 0     # the probe really set a state


class _StateProbes:
    """Two items around the surface (depth -0.5 and 0.5): the first sets unusual GL state
    and records it, the second records what the surface left, then cleans up."""

    def __init__(self):
        self.before = _Probe(self, dirty=True)
        self.before.setDepthValue(-0.5)
        self.after = _Probe(self, dirty=False)
        self.after.setDepthValue(0.5)
        self.objects = None


class _Probe(GLGraphicsItem.GLGraphicsItem):
    def __init__(self, owner, dirty):
        super().__init__()
        self.owner, self.dirty, self.states = owner, dirty, []

    def paint(self):
        if self.dirty:
            o = self.owner
            if o.objects is None:
                vertex = gl_shaders.compileShader(
                    "#version 120\nattribute vec4 a_position;\n"
                    "void main() { gl_Position = a_position; }", GL.GL_VERTEX_SHADER)
                fragment = gl_shaders.compileShader(
                    "#version 120\nvoid main() { gl_FragColor = vec4(1.0); }",
                    GL.GL_FRAGMENT_SHADER)
                o.objects = (gl_shaders.compileProgram(vertex, fragment),
                             *GL.glGenBuffers(2), GL.glGenTextures(1))
            program, array_buffer, element_buffer, texture = o.objects
            GL.glUseProgram(program)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, array_buffer)
            GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, element_buffer)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, texture)
            GL.glActiveTexture(GL.GL_TEXTURE3)
            GL.glEnableVertexAttribArray(1)
            GL.glEnable(GL.GL_POLYGON_OFFSET_FILL)
            GL.glPolygonOffset(2.0, 3.0)
        self.states.append(_gl_state())
        if not self.dirty:   # put back what the first probe changed
            GL.glUseProgram(0)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
            GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, 0)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
            GL.glDisableVertexAttribArray(1)
            GL.glDisable(GL.GL_POLYGON_OFFSET_FILL)
            GL.glPolygonOffset(0.0, 0.0)


def _gl_state():
    active = int(GL.glGetIntegerv(GL.GL_ACTIVE_TEXTURE))
    GL.glActiveTexture(GL.GL_TEXTURE0)
    texture0 = int(GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D))
    GL.glActiveTexture(active)
    return {
        "program": int(GL.glGetIntegerv(GL.GL_CURRENT_PROGRAM)),
        "array_buffer": int(GL.glGetIntegerv(GL.GL_ARRAY_BUFFER_BINDING)),
        "element_buffer": int(GL.glGetIntegerv(GL.GL_ELEMENT_ARRAY_BUFFER_BINDING)),
        "active_texture": active,
        "texture0": texture0,
        "attribs": [int(GL.glGetVertexAttribiv(i, GL.GL_VERTEX_ATTRIB_ARRAY_ENABLED)[0])
                    for i in range(4)],
        "polygon_offset_fill": bool(GL.glIsEnabled(GL.GL_POLYGON_OFFSET_FILL)),
        "polygon_offset": (float(GL.glGetFloatv(GL.GL_POLYGON_OFFSET_FACTOR)),
                           float(GL.glGetFloatv(GL.GL_POLYGON_OFFSET_UNITS))),
        "depth_func": int(GL.glGetIntegerv(GL.GL_DEPTH_FUNC)),
    }


def test_export_png_writes_the_frame(make_view, qtbot, tmp_path):
    view = make_view()
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    path = tmp_path / "surface.png"
    view.export_png(path)
    image = QtGui.QImage(str(path))
    assert (image.width(), image.height()) == (400, 300)


def test_create_surface_view_gives_a_real_view_when_opengl_works(qtbot, gl_required):
    ok, reason = opengl_available()
    assert ok and "OpenGL" in reason
    view = create_surface_view()
    qtbot.addWidget(view)
    assert isinstance(view, SurfaceViewContainer) and view.is_notice is False
    assert isinstance(view.window_view, SurfaceWindow)
    widget = create_surface_view(native_window=False)
    qtbot.addWidget(widget)
    assert isinstance(widget, SurfaceView)


def test_native_window_view_draws_the_surface(qtbot, gl_required):
    view = create_surface_view()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    qtbot.wait(100)
    image = view.grab_image().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    rgb = arr[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3].astype(int)
    not_white = (np.abs(rgb - 255).sum(axis=2) > 60).mean()
    assert not_white > 0.1


def test_notice_has_the_view_methods_as_no_ops(qtbot):
    notice = NoOpenGLNotice("testing")
    qtbot.addWidget(notice)
    x, y = grid(4)
    notice.setSurface(x, y, saddle(x, y), levels=(0, 1))
    notice.setMarkers([[0, 0, 0]], colors="r")
    notice.setWireframe(True)
    assert notice.is_notice is True
    assert "3-D view unavailable: no OpenGL context (testing)" in notice.message()
    assert "contour map below still works" in notice.message()


def test_offscreen_platform_gets_the_notice():
    """The Qt platform is chosen once per process, hence the subprocess."""
    script = textwrap.dedent("""
        import numpy as np
        from PySide6 import QtWidgets
        from app.gl import create_surface_view, opengl_available
        app = QtWidgets.QApplication([])
        view = create_surface_view()
        view.setSurface(np.arange(3.0), np.arange(3.0), np.zeros((3, 3)))
        view.setMarkers([[0.0, 0.0, 0.0]])
        view.setWireframe(True)
        print(type(view).__name__, view.is_notice)
        print(opengl_available()[1])
        print(view.message())
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "NoOpenGLNotice True"
    assert "offscreen" in lines[1]
    assert lines[2].startswith("3-D view unavailable: no OpenGL context (")
    assert "xvfb-run" in lines[2]


@pytest.mark.parametrize("lo, hi, expected, decimals", [
    (-5, 5, [-4, -2, 0, 2, 4], 0),
    (0, 0.9, [0, 0.2, 0.4, 0.6, 0.8], 1),
    (0, 2600, [0, 500, 1000, 1500, 2000, 2500], 0),
])
def test_nice_ticks(lo, hi, expected, decimals):
    ticks, d = nice_ticks(lo, hi)
    np.testing.assert_allclose(ticks, expected, atol=1e-9)
    assert d == decimals


def test_a_view_destroyed_as_another_paints_does_not_break_it(make_view, qtbot, monkeypatch):
    """A dropped view (its items and it reference each other) is freed by Python's cyclic
    collector, which can run just as Qt calls into another view's paintGL. The dying
    QOpenGLWidget makes its own context current and releases it, so the painting view
    had no current context: a segfault in Qt's readback, seen when a failed test left a
    view to the collector. Here the destruction is placed at that moment on purpose."""
    doomed = []
    paint = SurfaceView.paintGL

    def paint_right_after_a_destruction(view):
        if doomed and view is not doomed[0]:
            shiboken6.delete(doomed.pop())   # what the collector would do, at the worst time
        paint(view)
    monkeypatch.setattr(SurfaceView, "paintGL", paint_right_after_a_destruction)
    keep = make_view()
    victim = SurfaceView()                   # not given to qtbot, which would close it later
    victim.resize(200, 150)
    victim.show()
    qtbot.waitExposed(victim)
    x, y = grid(16)
    for view in (keep, victim):
        view.setSurface(x, y, saddle(x, y))
        frame(view, qtbot)
    doomed.append(victim)
    del victim
    assert foreground(frame(keep, qtbot)).mean() > 0.1
    assert not doomed


def test_moving_the_view_to_another_window_rebuilds_its_gl_objects(make_view, qtbot):
    """A QOpenGLWidget gets a new GL context in a new top-level window (a floated dock)."""
    view = make_view()
    x, y = grid()
    view.setSurface(x, y, saddle(x, y))
    view.setMarkers([[0.0, 0.0, 0.0]], colors="#ff0000")
    first = frame(view, qtbot)
    window = QtWidgets.QWidget()
    qtbot.addWidget(window)
    QtWidgets.QVBoxLayout(window).addWidget(view)
    window.resize(420, 320)
    window.show()
    qtbot.waitExposed(window)
    second = frame(view, qtbot)
    for pixels in (first, second):
        colourful = (pixels.max(axis=-1).astype(int) - pixels.min(axis=-1)) > 40
        assert colourful.mean() > 0.12
        assert near_color(pixels, (255, 0, 0), 30).sum() > 20
        grid_lines = near_color(pixels, (214, 214, 219), 8)     # the light back-wall grid
        assert grid_lines.sum() > 800
    view.setParent(None)   # qtbot closes both; the window must not delete the view first


def test_mesh_budget_draws_every_other_node_of_a_fine_grid(make_view):
    view = make_view(800, 600)
    x, y = grid(256)
    z = saddle(x, y)
    view.setSurface(x, y, z)
    ny, nx = view.meshShape()
    assert (ny, nx) == (129, 129)  # min(800, 600) / 3 = 200 cells at most: every other node
    drawn = view.surfaceItem()._z
    keep = np.append(np.arange(0, 256, 2), 255)  # every other node, and the last one
    np.testing.assert_array_equal(drawn, z[np.ix_(keep, keep)].astype(drawn.dtype))
    view.setPixelsPerCell(None)
    assert view.meshShape() == (256, 256)
    coarse_x, coarse_y = grid(64)
    view.setPixelsPerCell(3.0)
    view.setSurface(coarse_x, coarse_y, saddle(coarse_x, coarse_y))
    assert view.meshShape() == (64, 64)  # coarse grids are drawn whole


def test_colour_knots_recolour_the_surface(make_view, qtbot):
    view = make_view()
    x, y = grid()
    z = np.exp(4 * saddle(x, y))  # most values small, a few very large
    view.setSurface(x, y, z, levels=(float(z.min()), float(z.max())))
    linear = frame(view, qtbot)
    knots = np.geomspace(float(z.min()), float(z.max()), 12)
    view.setColorKnots(knots)
    banded = frame(view, qtbot)
    assert np.abs(linear.astype(int) - banded.astype(int)).sum(axis=2).mean() > 5
    view.setColorKnots(None)
    np.testing.assert_array_equal(frame(view, qtbot), linear)


def test_native_window_view_rotates_zooms_and_resets(qtbot, gl_required):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtTest import QTest

    view = create_surface_view()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    window = view.window_view
    azimuth, elevation, distance = (window.opts[k] for k in ("azimuth", "elevation", "distance"))
    QTest.mousePress(window, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 200))
    for i in range(1, 8):
        QTest.mouseMove(window, QPoint(200 + 10 * i, 200 + 3 * i))
    QTest.mouseRelease(window, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(270, 221))
    assert window.opts["azimuth"] != azimuth and window.opts["elevation"] != elevation
    wheel = QtGui.QWheelEvent(QPointF(200, 200), QPointF(200, 200), QPoint(0, 0), QPoint(0, 120),
                              Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                              Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(window, wheel)
    assert window.opts["distance"] < distance
    view.resetCamera()
    assert (window.opts["azimuth"], window.opts["elevation"]) == (azimuth, elevation)


def test_heights_beyond_the_box_are_cut_and_bad_markers_dropped(make_view, qtbot):
    view = make_view()
    x, y = grid()
    z = saddle(x, y)
    z[:5, :5] = 1e30  # a few absurd values
    view.setSurface(x, y, z, levels=(-1.0, 1.0), z_range=(-1.0, 1.0))
    assert view.dataBox()[2] == (-1.0, 1.0)
    view.setMarkers([[0.0, 0.0, 0.0], [0.5, 0.5, np.nan], [0.2, 0.2, 1e30]], colors="r")
    assert len(view._marker_data) == 2
    pixels = frame(view, qtbot)  # drawn without overflow warnings (filterwarnings = error)
    assert pixels.size


def test_clicking_the_surface_picks_the_point_under_the_mouse(qtbot, gl_required):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    view = create_surface_view()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    x, y = grid(64, -2.0, 2.0)
    z = x[None, :] ** 2 + y[:, None] ** 2
    view.setSurface(x, y, z)
    picked = []
    view.setClickHandler(lambda px, py: picked.append((px, py)))
    target = (-1.0, 0.8)  # on the far wall of the bowl, which faces the camera (azimuth -60)
    sx, sy = view.window_view.project_to_widget([[target[0], target[1], sum(t * t for t in target)]])[0]
    QTest.mouseClick(view.window_view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(int(round(sx)), int(round(sy))))
    assert picked, "a click on the surface should pick a point"
    px, py = picked[-1]
    assert abs(px - target[0]) < 0.15 and abs(py - target[1]) < 0.15
