"""The one export path: PNG and SVG of 2-D views, PNG of 3-D views, CSV of grids.

The panel menus and the ``mlcalc export`` command both end here, so a figure made from a
script is the figure the window shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers the exporters)
from PySide6.QtCore import QBuffer, QCoreApplication, QEventLoop, QIODevice, QRect, QRectF, QTimer
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator

from app.jobs import JobResult, JobRunner
from engine import surfaces
from engine._atomic import atomic_write

#: Suffixes each kind of view can be written as.
RASTER = {".png"}
VECTOR = {".svg"}
TABLE = {".csv"}
ANIMATION = {".gif", ".mp4"}


class ExportError(ValueError):
    """A figure could not be written (unsupported suffix, no OpenGL, unwritable folder)."""


def scene_image(view: pg.GraphicsView, width: int | None = None) -> QImage:
    """Render a pyqtgraph view's scene to an image (no window needs to be shown)."""
    exporter = pg.exporters.ImageExporter(view.scene())
    if width:
        exporter.parameters()["width"] = int(width)
    image = exporter.export(toBytes=True)
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def scene_svg(view: pg.GraphicsView) -> bytes:
    """Render a view to SVG with Qt's own generator (vector lines and text, heatmap embedded).

    pyqtgraph's SVGExporter rewrites Qt's path data itself and fails on some of it (curved
    marker outlines); painting the view into a QSvgGenerator keeps Qt's output intact.
    """
    size = view.viewport().size()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle("ML Calculus Explorer figure")
    # Same dots per inch as the screen, or text and cosmetic pens drift off the plot.
    generator.setResolution(view.logicalDpiX())
    painter = QPainter(generator)
    try:
        view.render(painter, QRectF(0, 0, size.width(), size.height()), view.viewport().rect())
    finally:
        painter.end()
    return bytes(buffer.data())


def save_scene(view: pg.GraphicsView, path: Path, width: int | None = None) -> Path:
    """Write a 2-D pyqtgraph view as PNG or SVG, chosen by the suffix."""
    suffix = path.suffix.lower()
    if suffix in VECTOR:
        write_bytes(path, scene_svg(view))
    elif suffix in RASTER:
        _save_image(scene_image(view, width), path)
    else:
        raise ExportError(f"a 2-D view is saved as .png or .svg, not '{suffix}'")
    return path


def gl_image(view) -> QImage:
    """The 3-D view's framebuffer as an image; raises when there is no OpenGL."""
    if getattr(view, "is_notice", False):
        raise ExportError("the 3-D view needs OpenGL, which is not available here "
                          "(run under a desktop session or xvfb-run)")
    return view.grab_image().convertToFormat(QImage.Format.Format_ARGB32)


def window_image(widget) -> QImage:
    """A picture of ``widget`` as it looks on screen, 3-D views included.

    ``QWidget.grab`` cannot see native GL windows (the 3-D views), so each one's
    framebuffer is painted over its place in the grabbed image.
    """
    from app.gl.surface_view import SurfaceViewContainer

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        for view in widget.findChildren(SurfaceViewContainer):
            if not view.isVisible():
                continue
            top_left = view.mapTo(widget, view.rect().topLeft())
            frame = view.grab_image()
            if not frame.isNull():
                painter.drawImage(QRectF(top_left.x(), top_left.y(), view.width(), view.height()), frame)
    finally:
        painter.end()
    return image


def side_by_side(images: list[QImage], gap: int = 8) -> QImage:
    """Place images left to right on white, vertically centred."""
    height = max(im.height() for im in images)
    width = sum(im.width() for im in images) + gap * (len(images) - 1)
    out = QImage(width, height, QImage.Format.Format_ARGB32)
    out.fill(QColor("white"))
    painter = QPainter(out)
    x = 0
    for im in images:
        painter.drawImage(x, (height - im.height()) // 2, im)
        x += im.width() + gap
    painter.end()
    return out


def _save_image(image: QImage, path: Path) -> None:
    if image.isNull():
        raise ExportError("the view rendered an empty image")
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, path.suffix.lstrip(".").upper() or "PNG"):
        raise ExportError(f"could not encode {path.name}")
    write_bytes(path, bytes(buffer.data()))


def write_bytes(path, data: bytes) -> None:
    """Write a file atomically (:func:`engine._atomic.atomic_write`): a failure leaves the
    previous file whole and no partial file; raises :class:`ExportError`."""
    try:
        atomic_write(path, data)
    except OSError as error:
        raise ExportError(str(error)) from error


def save_grid_csv(grid, path: Path) -> Path:
    """Write a grid as CSV (columns x, y, z; holes as nan)."""
    text = io.StringIO()
    surfaces.write_grid_csv(text, grid)
    write_bytes(path, text.getvalue().encode())
    return path


def _export_views(panel, path: Path, view: str) -> Path:
    """PNG of a panel's 3-D view, contour map or both; SVG of its contour map."""
    suffix = path.suffix.lower()
    if suffix in VECTOR:
        if view in ("surface", "3d"):
            raise ExportError("the 3-D view is exported as .png only; .svg is for the contour map")
        return save_scene(panel.contour, path)
    if suffix not in RASTER:
        raise ExportError(f"unsupported file type '{suffix}': use .png, .svg or .csv")
    has_gl = not getattr(panel.view3d, "is_notice", False)
    if view == "auto":
        view = "both" if has_gl else "contour"
    if view == "contour":
        _save_image(scene_image(panel.contour), path)
    elif view in ("surface", "3d"):
        _save_image(gl_image(panel.view3d), path)
    elif view == "both":
        _save_image(side_by_side([gl_image(panel.view3d), scene_image(panel.contour)]), path)
    else:
        raise ExportError(f"unknown view '{view}': use auto, surface, contour or both")
    return path


def image_array(image: QImage) -> np.ndarray:
    """(h, w, 3) uint8 RGB pixels of a QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    data = np.frombuffer(rgb.constBits(), np.uint8).reshape(h, rgb.bytesPerLine())
    return data[:, : w * 3].reshape(h, w, 3).copy()


@dataclass(frozen=True, eq=False)
class _Encoding:
    """Frames to encode into ``tmp`` (the temporary file beside the export)."""

    tmp: Path
    frames: list  # (H, W, 3) uint8 arrays of one shape, emptied as they are encoded
    suffix: str
    fps: int


def _encode(job: _Encoding):
    """Generator job: encode the frames one by one (yielding the fraction done after each,
    so closing the window stops it between two frames) and write the file at ``job.tmp``.
    Each RGB frame is dropped from ``job.frames`` once encoded (they are the export's
    largest arrays)."""
    frames = job.frames
    n = len(frames)
    if job.suffix == ".gif":
        from PIL import Image

        # Each frame gets its own adaptive palette, as Pillow's GIF writer would give it;
        # converting them here, one per step, keeps the final write short.
        pictures = []
        for i in range(n):
            frame, frames[i] = frames[i], None
            pictures.append(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE))
            del frame
            yield 0.95 * (i + 1) / n
        pictures[0].save(job.tmp, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=int(1000 / job.fps), loop=0)
    else:
        import imageio.v2 as iio

        writer = iio.get_writer(job.tmp, format="FFMPEG", mode="I", fps=job.fps,
                                codec="libx264", macro_block_size=16, quality=7)
        try:
            for i in range(n):
                frame, frames[i] = frames[i], None
                writer.append_data(frame)
                del frame
                yield (i + 1) / n
        finally:
            writer.close()
    return job.tmp


def export_animation(panel, path: Path, view: str = "auto", max_frames: int = 120, fps: int = 15,
                     progress=None) -> Path:
    """An animated GIF or an MP4 of a panel's animation, one picture per shown frame.

    ``panel`` offers ``animation_frames()`` (the frame numbers worth showing) and
    ``show_frame(k)``. Frames are rendered on the GUI thread, as every picture is, with the
    event loop running between them; they are encoded on a worker thread while the event
    loop keeps running. ``progress(fraction)`` returning False cancels, as does closing the
    panel's window (the app is quitting): no file is written then.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION:
        raise ExportError(f"an animation is saved as .gif or .mp4, not '{suffix}'")
    frames_wanted = list(panel.animation_frames())
    if len(frames_wanted) > max_frames:
        pick = np.unique(np.linspace(0, len(frames_wanted) - 1, max_frames).round().astype(int))
        frames_wanted = [frames_wanted[i] for i in pick]
    has_gl = not getattr(panel.view3d, "is_notice", False)
    if view == "auto":
        view = "both" if has_gl else "contour"
    saved = panel.frame
    window = panel.window()
    shown = window.isVisible()

    def closed() -> bool:
        return shown and not window.isVisible()

    def report(fraction: float) -> None:
        if progress is not None and progress(fraction) is False:
            raise ExportError("export cancelled")

    pictures = []
    try:
        for i, k in enumerate(frames_wanted):
            panel.show_frame(int(k))
            QCoreApplication.processEvents()
            if closed():
                raise ExportError("export cancelled: the window was closed")
            if view == "contour":
                image = scene_image(panel.contour)
            elif view in ("surface", "3d"):
                image = gl_image(panel.view3d)
            else:
                image = side_by_side([gl_image(panel.view3d), scene_image(panel.contour)])
            pictures.append(image_array(image))
            report(0.5 * (i + 1) / len(frames_wanted))
    finally:
        panel.show_frame(saved)
    # Video codecs want sizes in multiples of 16: pad with white rather than let ffmpeg
    # scale. One frame at a time, so that at most one extra frame is held (a race of 120
    # frames of a wide window is some 400 MB).
    H = -(-max(p.shape[0] for p in pictures) // 16) * 16
    W = -(-max(p.shape[1] for p in pictures) // 16) * 16
    for i, picture in enumerate(pictures):
        if picture.shape[:2] != (H, W):
            frame = np.full((H, W, 3), 255, np.uint8)
            frame[: picture.shape[0], : picture.shape[1]] = picture
            pictures[i] = frame
    tmp = path.with_name(f".{path.stem}.partial{suffix}")
    outcome = _run_on_worker(_encode, _Encoding(tmp, pictures, suffix, fps), closed, report)
    del pictures
    if not isinstance(outcome, JobResult):
        tmp.unlink(missing_ok=True)
        if outcome is None:
            raise ExportError("export cancelled: the window was closed")
        if isinstance(outcome, ExportError):
            raise outcome
        error = outcome.error
        raise ExportError(f"could not write {path}: {getattr(error, 'strerror', None) or error}") from error
    try:
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"could not write {path}: {error.strerror or error}") from error
    return path


def _run_on_worker(function, request, closed, report):
    """Run a job on its own worker while the event loop runs; return its JobResult or
    JobFailure, the ExportError ``report`` raised (cancelled), or None if ``closed()``
    turned true. The worker has stopped when this returns."""
    runner = JobRunner(function, "export")
    outcome = []
    loop = QEventLoop()

    def finish(value) -> None:
        outcome.append(value)
        loop.quit()

    def on_progress(_job, fraction: float) -> None:
        try:
            report(0.5 + 0.5 * fraction)
        except ExportError as error:
            finish(error)

    def watch() -> None:
        if closed():
            finish(None)

    runner.finished.connect(finish)
    runner.failed.connect(finish)
    runner.progress.connect(on_progress)
    timer = QTimer(interval=50)
    timer.timeout.connect(watch)
    timer.start()
    runner.submit(request)
    try:
        loop.exec()
    finally:
        timer.stop()
        runner.shutdown(timeout=30.0)  # a cancelled job stops at its next frame
        runner.deleteLater()
    return outcome[0] if outcome else None  # the app quitting ends every event loop


def export_descent_panel(panel, path: Path, view: str = "auto", progress=None) -> Path:
    """Export the race: .csv of the trajectories, .gif/.mp4 of the race (with ``progress``,
    see :func:`export_animation`), or .png/.svg."""
    path = Path(path)
    if not panel.trajectories:
        raise ExportError("nothing to export yet: no race has been run")
    if path.suffix.lower() in ANIMATION:
        return export_animation(panel, path, view, progress=progress)
    if path.suffix.lower() in TABLE:
        text = io.StringIO()
        text.write("method,step,x,y,f,grad_norm,status\n")
        for t in panel.trajectories:
            for k, ((x, y), f, g) in enumerate(zip(t.points, t.values, t.grad_norms)):
                text.write(f"{t.method},{k},{float(x)!r},{float(y)!r},{float(f)!r},{float(g)!r},{t.status}\n")
        write_bytes(path, text.getvalue().encode())
        return path
    return _export_views(panel, path, view)


def export_surface_panel(panel, path: Path, view: str = "auto") -> Path:
    """Export the surface panel: .csv grid, .svg contour map, .png of 3-D/contour/both."""
    path = Path(path)
    suffix = path.suffix.lower()
    if panel.result is None:
        raise ExportError("nothing to export yet: the surface has not been computed")
    if suffix in TABLE:
        return save_grid_csv(panel.result.grid, path)
    return _export_views(panel, path, view)


def save_landscape_npz(result, path: Path) -> Path:
    """Write a real landscape as ``.npz``: x, y (the plane's a and b axes), loss, accuracy
    ((len(y), len(x)), rows along y), path (the projected training path, (k, 2)) and
    path_steps. Plain arrays only, so ``np.load(allow_pickle=False)`` reads it."""
    import os
    import tempfile

    path = Path(path)
    arrays = {"x": np.asarray(result.x, dtype=np.float64), "y": np.asarray(result.y, dtype=np.float64),
              "loss": np.asarray(result.loss, dtype=np.float64),
              "accuracy": np.asarray(result.accuracy, dtype=np.float64),
              "path": np.asarray(result.path, dtype=np.float64),
              "path_steps": np.asarray(result.model.trajectory_steps, dtype=np.int64)}
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise ExportError(f"could not write {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise ExportError(f"could not write {path}: {error.strerror or error}") from error
    return path


def export_landscape(panel, view_result, path: Path, view: str = "auto") -> Path:
    """Export the surface panel's real landscape: .npz (all arrays), .csv (the grid shown),
    .svg (contour map) or .png (3-D, contour or both)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return save_landscape_npz(view_result.result, path)
    if suffix in TABLE:
        return save_grid_csv(view_result.grid, path)
    return _export_views(panel, path, view)


__all__ = ["ExportError", "write_bytes", "export_surface_panel", "export_landscape", "save_landscape_npz", "save_scene", "save_grid_csv", "side_by_side",
           "gl_image", "scene_image"]
