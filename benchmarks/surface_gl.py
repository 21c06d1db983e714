"""Frame time of a 3-D surface whose heights change every frame: stock pyqtgraph vs ours.

Run (Xvfb + Mesa llvmpipe, no GPU needed):

    xvfb-run -a -s "-screen 0 1280x1024x24 +extension GLX +render" \\
        .venv/bin/python benchmarks/surface_gl.py [--grid 256] [--frames 40]

A 256 x 256 grid on an 800 x 600 view; each frame sets new heights (a parameter of
z = sin(3 r - t) / (1 + r) + 0.3 cos(2 x + t) sweeps) and draws. Contenders:

* ``stock shaded + cmap``: ``GLSurfacePlotItem(shader="shaded", smooth=False)`` with
  per-vertex colours from ``ColorMap.map`` each frame: the fastest lit, colormapped
  stock set-up (the baseline of the headline ratio).
* ``stock shaded, defaults``: the same with the constructor's defaults (``smooth=True``,
  per-vertex normals): what one gets without tuning.
* ``stock heightColor``: the fastest stock option (``computeNormals=False``, colour from
  the ``heightColor`` shader): no lighting, no real colormap; shown for honesty.
* ``SurfaceItem (bare)``: our item alone in a plain ``GLViewWidget``, every cell drawn.
* ``SurfaceView, all cells``: our view (item, axes frame, labels) with every grid cell
  drawn (``setPixelsPerCell(None)``).
* ``SurfaceView (panel)``: what panels get: the same view with its default mesh budget of
  at most one cell per 3 screen pixels (here 129 x 129 nodes of the 256 x 256 grid, every
  other node, exact values at the nodes drawn). The script prints how much that changes
  the picture against every cell drawn (seen: 0.16/255 per channel on average, 0.01 % of
  pixels visibly different). The headline ratio is stock shaded + cmap over this one.

Two clocks, both started just before ``setData``/``setSurface``:

* ``render``: ``makeCurrent()``, ``paintGL()`` (exactly what Qt calls to draw the widget
  into its framebuffer object), ``glFinish()``, ``doneCurrent()``. On llvmpipe GL calls
  only queue work for the rasteriser threads, so without ``glFinish`` the clock would
  stop before the pixels exist. ``repaint()`` + ``glFinish`` was tried first and is not
  reliable here: with Qt 6.11 a QOpenGLWidget's ``repaint()`` returns without painting
  for several frames in a row (the window's flush is throttled), so it timed nothing.
  ``grabFramebuffer()`` would wait too, but it renders the frame a second time and reads
  it back, inflating the cost it measures.
* ``on screen``: ``update()``, then the event loop runs until the widget's
  ``frameSwapped`` signal: the frame composited into the window, as a user sees it.

The heights are computed before the clock starts (every path needs them); the stock
path's colour mapping is inside the clock, because the stock item needs it.

All views live in one window (a QStackedWidget, one page shown at a time), so they
share one GL context group. Render frames go round-robin (one frame per contender per
round), on-screen frames in blocks of 10 per shown page, so drift in machine load
touches all contenders alike. Medians and 95th percentiles are printed with the ratio
of each to ``SurfaceView (full)``, and the median of the per-round ratios.

Seen here (2 cores, llvmpipe, a noisy shared VM): SurfaceView (panel) 13 ms render and
21 ms on screen; stock shaded + cmap 51 / 72 ms (4.0x / 3.5x); stock defaults about 35x;
our view with every cell drawn 28 / 35 ms (about 2x: llvmpipe's per-triangle setup and
rasterisation of the 130k triangles, 15-25 ms, is paid by both; only the stock item's NumPy
rebuild of normals and colours is saved, and the mesh budget removes three quarters of the
triangles that the screen could not show anyway).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import pyqtgraph as pg  # noqa: E402
import pyqtgraph.opengl as gl  # noqa: E402
from OpenGL import GL  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from app.gl.surface_item import SurfaceItem  # noqa: E402
from app.gl.surface_view import SurfaceView, opengl_available  # noqa: E402

BLOCK = 10     # on-screen frames per contender before switching pages
WARMUP = 5


def heights(n: int, count: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Grid coordinates and ``count`` frames of heights, z[j, i] = f(x[i], y[j]; t)."""
    x = np.linspace(-3.0, 3.0, n, dtype=np.float32)
    r = np.hypot(x[None, :], x[:, None])
    frames = []
    for t in np.linspace(0.0, 2.0 * np.pi, count, endpoint=False):
        z = np.sin(3.0 * r - t) / (1.0 + r) + 0.3 * np.cos(2.0 * x[None, :] + t)
        frames.append(np.ascontiguousarray(z, dtype=np.float32))
    return x, frames


class Contender:
    """One way of drawing the surface: a view on a stack page and a per-frame update."""

    def __init__(self, name, view, update, item):
        self.name, self.view, self.update, self.item = name, view, update, item
        self.times = []
        self.screen_times = []
        self.paints = 0
        self.errors = []
        paint = item.paint

        def counted_paint():   # pyqtgraph swallows paint errors: count and keep them
            self.paints += 1
            try:
                paint()
            except Exception as error:
                self.errors.append(repr(error))
                raise
        item.paint = counted_paint

    def frame(self, z_index):
        """Milliseconds from new heights to the frame rendered and finished."""
        start = time.perf_counter()
        self.update(z_index)
        self.view.makeCurrent()
        self.view.paintGL()
        GL.glFinish()
        self.view.doneCurrent()
        return (time.perf_counter() - start) * 1000.0

    def frame_on_screen(self, z_index, app):
        """Milliseconds from new heights to the frame composited into the window."""
        swapped = []
        self.view.frameSwapped.connect(lambda: swapped.append(1))
        start = time.perf_counter()
        self.update(z_index)
        self.view.update()
        deadline = start + 10.0
        while not swapped and time.perf_counter() < deadline:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 5)
        elapsed = (time.perf_counter() - start) * 1000.0
        self.view.frameSwapped.disconnect()
        if not swapped:
            sys.exit(f"{self.name}: no frameSwapped within 10 s")
        return elapsed


def make_contenders(x, frames, levels):
    lo, hi = levels
    cmap = pg.colormap.get("viridis")
    transposed = [np.ascontiguousarray(z.T) for z in frames]   # stock wants z[i_x, j_y]
    contenders = []

    def stock_view():
        view = gl.GLViewWidget()
        view.setBackgroundColor("w")
        view.setCameraPosition(distance=9.0, elevation=28, azimuth=-60)
        return view

    view = stock_view()
    shaded = gl.GLSurfacePlotItem(x=x, y=x, z=transposed[0], shader="shaded", smooth=False)
    view.addItem(shaded)

    def update_shaded(i):
        colors = cmap.map((transposed[i] - lo) / (hi - lo), mode="float")
        shaded.setData(z=transposed[i], colors=colors.reshape(-1, 4))
    contenders.append(Contender("stock shaded + cmap", view, update_shaded, shaded))


    view = stock_view()
    default = gl.GLSurfacePlotItem(x=x, y=x, z=transposed[0], shader="shaded")

    def update_default(i):
        colors = cmap.map((transposed[i] - lo) / (hi - lo), mode="float")
        default.setData(z=transposed[i], colors=colors.reshape(-1, 4))
    view.addItem(default)
    contenders.append(Contender("stock shaded, defaults", view, update_default, default))

    view = stock_view()
    height = gl.GLSurfacePlotItem(x=x, y=x, z=transposed[0], shader="heightColor",
                                  computeNormals=False, smooth=False)
    view.addItem(height)
    contenders.append(Contender("stock heightColor", view,
                                lambda i: height.setData(z=transposed[i]), height))

    view = stock_view()
    bare = SurfaceItem(x, x, frames[0], levels=levels)
    bare.setDisplayTransform((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    view.addItem(bare)
    contenders.append(Contender("SurfaceItem (bare)", view,
                                lambda i: bare.setData(z=frames[i], levels=levels), bare))

    every = SurfaceView()
    every.setPixelsPerCell(None)
    every.setSurface(x, x, frames[0], levels=levels, z_range=levels)
    contenders.append(Contender("SurfaceView, all cells", every,
                                lambda i: every.setSurface(x, x, frames[i], levels=levels,
                                                           z_range=levels),
                                every.surfaceItem()))

    full = SurfaceView()
    full.setSurface(x, x, frames[0], levels=levels, z_range=levels)
    contenders.append(Contender("SurfaceView (panel)", full,
                                lambda i: full.setSurface(x, x, frames[i], levels=levels,
                                                          z_range=levels),
                                full.surfaceItem()))
    return contenders


def rgb(view) -> np.ndarray:
    image = view.grabFramebuffer().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine())[:, : image.width() * 4].reshape(
        image.height(), image.width(), 4)
    return pixels[..., :3].astype(np.int16)


def drawn_fraction(view) -> float:
    """Share of pixels that are not the white background: proof something was drawn."""
    image = view.grabFramebuffer().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine())[:, : image.width() * 4].reshape(
        image.height(), image.width(), 4)
    return float((pixels[..., :3].min(axis=-1) < 235).mean())


def summarize(times):
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--frames", type=int, default=40, help="timed frames per contender and clock")
    parser.add_argument("--size", default="800x600")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    app = pg.mkQApp("surface_gl benchmark")
    ok, reason = opengl_available()
    if not ok:
        sys.exit(f"no OpenGL: {reason}")
    x, frames = heights(args.grid, 16)
    levels = (float(min(z.min() for z in frames)), float(max(z.max() for z in frames)))

    window = QtWidgets.QStackedWidget()
    window.resize(width, height)
    contenders = make_contenders(x, frames, levels)
    for c in contenders:
        window.addWidget(c.view)
    window.show()
    app.processEvents()

    for c in contenders:                       # warm up: compile shaders, allocate buffers
        window.setCurrentWidget(c.view)
        app.processEvents()
        for i in range(WARMUP):
            c.frame(i % len(frames))
    # render clock: one frame of each contender per round, so a burst of load on this
    # shared machine hits all of them alike; the paired ratios give a robust median
    paired = []
    for frame_index in range(args.frames):
        for c in contenders:
            c.times.append(c.frame(frame_index % len(frames)))
        paired.append(contenders[0].times[-1] / contenders[-1].times[-1])
    # on-screen clock: needs the page shown, so blocks of BLOCK frames per contender
    frame_index = 0
    while min(len(c.screen_times) for c in contenders) < args.frames:
        for c in contenders:
            window.setCurrentWidget(c.view)
            app.processEvents()
            for _ in range(BLOCK):
                c.screen_times.append(c.frame_on_screen(frame_index % len(frames), app))
                frame_index += 1

    print(f"surface: new heights every frame, {args.grid}x{args.grid} grid, {width}x{height} "
          f"view, {len(contenders[0].times)} frames per contender and clock")
    print(f"renderer: {reason}")
    print("render: setData -> paintGL -> glFinish;  on screen: setData -> update -> frameSwapped")
    print()
    ours = [summarize(contenders[-1].times), summarize(contenders[-1].screen_times)]
    header = (f"{'contender':<22} {'render median':>13} {'p95':>7} {'on screen median':>17} "
              f"{'p95':>7} {'x ours':>7} {'drawn':>6}")
    print(header)
    print("-" * len(header))
    for c in contenders:
        window.setCurrentWidget(c.view)
        app.processEvents()
        if c.errors:
            sys.exit(f"{c.name}: {len(c.errors)} paint errors, first: {c.errors[0]}")
        expected = len(c.times) + len(c.screen_times) + WARMUP
        if c.paints < expected:
            sys.exit(f"{c.name}: painted {c.paints} times for {expected} frames")
        render, screen = summarize(c.times), summarize(c.screen_times)
        print(f"{c.name:<22} {render[0]:>10.1f} ms {render[1]:>7.1f} {screen[0]:>14.1f} ms "
              f"{screen[1]:>7.1f} {render[0] / ours[0][0]:>7.2f} {drawn_fraction(c.view):>6.0%}")
    print()
    for c in (contenders[0], contenders[1]):
        stock = [summarize(c.times), summarize(c.screen_times)]
        for label, k in (("render", 0), ("on screen", 1)):
            ratio = stock[k][0] / ours[k][0]
            verdict = "meets" if ratio >= 3.0 else "misses"
            print(f"{c.name} / SurfaceView (panel) ({label}): median {ratio:.1f}x, "
                  f"p95 {stock[k][1] / ours[k][1]:.1f}x  ({verdict} the 3x target)")
    print(f"median of per-round ratios, stock shaded + cmap / SurfaceView (render): "
          f"{statistics.median(paired):.1f}x")
    # What the panel's mesh budget costs in picture: the same frame with every cell drawn.
    every, panel = contenders[-2].view, contenders[-1].view
    for view in (every, panel):
        window.setCurrentWidget(view)
        app.processEvents()
        view.setSurface(x, x, frames[3], levels=levels, z_range=levels)
    window.setCurrentWidget(every)
    app.processEvents()
    a = rgb(every)
    window.setCurrentWidget(panel)
    app.processEvents()
    b = rgb(panel)
    differ = (np.abs(a - b).sum(axis=2) > 30).mean()
    print(f"panel mesh: {panel.meshShape()[1]}x{panel.meshShape()[0]} of the {args.grid}x{args.grid} grid "
          f"(one cell per {panel._pixels_per_cell:g} px at most); picture vs every cell drawn: mean "
          f"difference {np.abs(a - b).mean():.2f}/255 per channel, {differ:.2%} of pixels visibly different")
    window.close()
    return statistics.median(paired)


if __name__ == "__main__":
    main()
