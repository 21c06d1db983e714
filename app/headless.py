"""Render a panel to a file without showing a window (``mlcalc export ...``)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QEventLoop, Qt, QTimer, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from app import jobs, lifecycle, style
from app.export import ExportError

TIMEOUT_MS = 60_000


def _wait(signals, timeout_ms: int) -> bool:
    """Run the event loop until any of ``signals`` fires or the time runs out."""
    loop = QEventLoop()
    fired = []
    for sig in signals:
        sig.connect(lambda *_: (fired.append(True), loop.quit()))
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    return bool(fired)


def _quiet_platform_chatter(mode, context, message) -> None:
    """Drop the offscreen platform's notes about window hints; pass everything else on."""
    if "propagateSizeHints" in message:
        return
    sys.stderr.write(message + "\n")


def _application() -> QApplication:
    """The QApplication for an off-screen render, set up as the window's is."""
    style.configure_pyqtgraph()
    qInstallMessageHandler(_quiet_platform_chatter)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    lifecycle.install_collector(app)
    return app


def render_surface(settings, out: Path, view: str, size: tuple[int, int]) -> int:
    """Build a surface panel off screen, wait for its results and export it."""
    from app.panels.surface import SurfacePanel

    app = _application()
    panel = SurfacePanel(settings=settings)
    errors: list[str] = []
    panel.surface_runner.failed.connect(lambda failure: errors.append(failure.message))
    panel.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    panel.resize(*size)
    panel.show()
    try:
        if not _wait([panel.surfaceDrawn, panel.surface_runner.failed], TIMEOUT_MS):
            print("mlcalc: timed out computing the surface", file=sys.stderr)
            return 1
        if errors:
            print(f"mlcalc: {errors[0]}", file=sys.stderr)
            return 2
        if settings.critical_points and out.suffix.lower() != ".csv":
            _wait([panel.criticalPointsDrawn, panel.critical_runner.failed], TIMEOUT_MS)
        for _ in range(5):  # let both views paint their final state
            app.processEvents()
        try:
            written = panel.export(out, view=view)
        except ExportError as error:
            print(f"mlcalc: {error}", file=sys.stderr)
            return 2
        print(f"wrote {written}")
        return 0
    finally:
        panel.shutdown()
        jobs.shutdown_all()
        lifecycle.dispose(panel)


def render_descent(surface_settings, race_settings, out: Path, view: str, size: tuple[int, int],
                   fps: int = 15) -> int:
    """Build the surface and descent panels off screen, run the race and export it."""
    from app import export
    from app.panels.descent import DescentPanel
    from app.panels.surface import SurfacePanel

    app = _application()
    surface = SurfacePanel(settings=surface_settings)
    panel = DescentPanel(surface, settings=race_settings)
    errors: list[str] = []
    for runner in (surface.surface_runner, panel.runner):
        runner.failed.connect(lambda failure: errors.append(failure.message))
    panel.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    panel.resize(*size)
    panel.show()
    try:
        if not _wait([surface.surfaceDrawn, surface.surface_runner.failed], TIMEOUT_MS) or errors:
            print(f"mlcalc: {errors[0] if errors else 'timed out computing the surface'}", file=sys.stderr)
            return 2 if errors else 1
        panel.run()
        if not _wait([panel.raceComputed, panel.runner.failed], TIMEOUT_MS) or errors:
            print(f"mlcalc: {errors[0] if errors else 'timed out computing the race'}", file=sys.stderr)
            return 2 if errors else 1
        panel.pause()
        panel.show_frame(panel._last_frame())
        for _ in range(5):
            app.processEvents()
        try:
            if out.suffix.lower() in export.ANIMATION:
                written = export.export_animation(panel, out, view, fps=fps)
            else:
                written = panel.export(out, view=view)
        except ExportError as error:
            print(f"mlcalc: {error}", file=sys.stderr)
            return 2
        for t in panel.trajectories:
            print(f"{t.method}: {t.message}")
        print(f"wrote {written}")
        return 0
    finally:
        panel.shutdown()
        surface.shutdown()
        jobs.shutdown_all()
        lifecycle.dispose(panel)
        lifecycle.dispose(surface)


@contextmanager
def _offscreen(panel, size: tuple[int, int], *runners):
    """Show ``panel`` off screen at ``size``; yields the list the runners' failures fill.
    On leaving, the panel's workers stop and the panel is deleted (never left to exit)."""
    errors: list[str] = []
    for runner in runners:
        runner.failed.connect(lambda failure: errors.append(failure.message))
    panel.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    panel.resize(*size)
    panel.show()
    try:
        yield errors
    finally:
        panel.shutdown()
        jobs.shutdown_all()
        lifecycle.dispose(panel)


def _awaited(signals, errors: list[str], what: str) -> int | None:
    """None once one of ``signals`` fired cleanly; else the exit status, said on stderr."""
    if not _wait(signals, TIMEOUT_MS) or errors:
        print(f"mlcalc: {errors[0] if errors else f'timed out {what}'}", file=sys.stderr)
        return 2 if errors else 1
    return None


def _exported(app, panel, out: Path, view: str) -> Path | None:
    """Let the views paint, then export; None (said on stderr) when the export is refused."""
    for _ in range(5):
        app.processEvents()
    try:
        return panel.export(out, view=view)
    except ExportError as error:
        print(f"mlcalc: {error}", file=sys.stderr)
        return None


def render_backprop(settings, out: Path, view: str, size: tuple[int, int], shown: str) -> int:
    """Build the backprop panel off screen, walk it to ``shown`` and export it.

    ``shown``: "none" (weights and inputs only), "forward" (the forward pass) or "all"
    (both passes, every gradient on its edge).
    """
    from app.panels.backprop import BackpropPanel

    app = _application()
    panel = BackpropPanel(settings=settings)
    with _offscreen(panel, size, panel.runner) as errors:
        if view in ("both", "surface", "contour"):
            status = _awaited([panel.lossSurfaceDrawn, panel.runner.failed], errors,
                              "computing the loss surface")
            if status is not None:
                return status
        if shown == "all":
            panel.show_all()
        elif shown == "forward":
            while panel.position < panel.forward_count:
                panel.forward()
        written = _exported(app, panel, out, view)
        if written is None:
            return 2
        r = panel.record
        print(f"loss {r.loss:.6g}; dead units: {', '.join(r.dead) or 'none'}")
        print(f"wrote {written}")
        return 0


def render_attention(settings, out: Path, view: str, size: tuple[int, int]) -> int:
    """Build the attention panel off screen, encode the text and export one view."""
    from app.panels.attention import AttentionPanel

    app = _application()
    panel = AttentionPanel(settings=settings)
    with _offscreen(panel, size, panel.runner) as errors:
        status = _awaited([panel.encoded, panel.runner.failed], errors, "running the model")
        if status is not None:
            return status
        result = panel.result.output
        L, H = result.attentions.shape[:2]
        if not (0 <= settings.layer < L and 0 <= settings.head < H):
            print(f"mlcalc: --layer must be 1..{L} and --head 1..{H}", file=sys.stderr)
            return 2
        panel.pick(settings.layer, settings.head)
        written = _exported(app, panel, out, view)
        if written is None:
            return 2
        if panel.result.notice:
            print(f"mlcalc: {panel.result.notice}", file=sys.stderr)
        labels = panel.selection["labels"]
        print(f"{result.model_name}: {result.num_tokens} tokens; top-{len(panel.top_tokens)}: "
              + ", ".join(labels[i] for i in panel.top_tokens))
        print(f"wrote {written}")
        return 0


def render_landscape(settings, out: Path, view: str, size: tuple[int, int]) -> int:
    """Build a surface panel on the real landscape off screen, wait for it and export it."""
    from app.panels.surface import SurfacePanel

    app = _application()
    panel = SurfacePanel(settings=settings)
    with _offscreen(panel, size, panel.landscape_runner) as errors:
        status = _awaited([panel.landscapeDrawn, panel.landscape_runner.failed], errors,
                          "computing the landscape")
        if status is not None:
            return status
        written = _exported(app, panel, out, view)
        if written is None:
            return 2
        r = panel.landscape.result
        print(f"trained weights: loss {r.centre_loss:.6g}, accuracy {100 * r.centre_accuracy:.2f}%; "
              f"{r.request.directions} plane, span {r.span:.3g}, {r.request.grid}x{r.request.grid} grid")
        print(f"wrote {written}")
        return 0
