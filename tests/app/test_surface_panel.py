"""The surface panel: sliders redraw, bad input is refused in place, exports are valid files."""

import csv
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtTest import QTest

from app.panels.surface import SurfacePanel, SurfaceSettings
from engine.expressions import MAX_LENGTH

ROOT = Path(__file__).resolve().parents[2]

ADVERSARIAL = [
    "__import__('os').system('echo hi')",
    "().__class__.__bases__",
    "open('f')",
    "x.real",
    "sin(x=1)",
    "foo(x)",
    "lambda: 1",
    '"text"',
    "x[0]",
    "sin(x",
    "",
    "x+" * 50_000,
    "(" * 10_000 + "x" + ")" * 10_000,
    "9**9**9**9",
    "(1,)*10**9",
]


@pytest.fixture
def panel(qtbot):
    p = SurfacePanel(settings=SurfaceSettings(text="a*x**2 + b*y**2", preset=None, resolution=64,
                                              params={"a": 1.0, "b": 2.0}))
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    yield p
    p.shutdown()


def _expected(a, b, grid):
    X, Y = np.meshgrid(grid.x, grid.y)
    return a * X**2 + b * Y**2


def test_slider_change_redraws_with_new_values(panel, qtbot):
    assert set(panel._param_sliders) == {"a", "b"}
    slider = panel._param_sliders["a"]
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        slider.setValue(3.0)
    assert panel.settings.params["a"] == 3.0
    grid = panel.result.grid
    np.testing.assert_allclose(grid.z, _expected(3.0, 2.0, grid), rtol=1e-5, atol=1e-5)
    # The contour map shows the same numbers the engine computed.
    np.testing.assert_allclose(panel.contour.image.image, grid.z, rtol=1e-6)
    shown = panel.contour.colorbar.levels()
    assert shown == pytest.approx(panel.frame_levels)
    # While one function is explored the colour scale only widens, so a steeper bowl shows
    # brighter colours instead of being refitted to look the same.
    lo, hi = panel.result.levels
    assert shown[0] <= lo + 1e-9 and shown[1] >= hi - 1e-9


def test_colour_scale_stays_put_while_a_parameter_moves(panel, qtbot):
    slider = panel._param_sliders["a"]
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        slider.setValue(4.0)
    wide = panel.frame_levels
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        slider.setValue(2.0)
    assert panel.frame_levels == wide  # the flatter bowl is shown against the same scale
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        panel.set_expression("x + y")
    assert panel.frame_levels == pytest.approx(panel.result.levels)  # a new function refits


def test_parameters_follow_the_typed_expression(panel, qtbot):
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        panel.set_expression("c*sin(x) + y**2")
    assert list(panel._param_sliders) == ["c"]
    assert panel.param_box.isVisible()


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: t[:20] or "empty")
def test_bad_expression_shows_error_and_keeps_the_plot(panel, qtbot, text):
    before = panel.result
    image_before = panel.contour.image.image.copy()
    with qtbot.waitSignal(panel.surface_runner.failed, timeout=5000):
        panel.set_expression(text)
    assert panel.expr.error.isVisible()
    assert panel.expr.error.text().strip()
    assert panel.result is before
    np.testing.assert_array_equal(panel.contour.image.image, image_before)
    # Nothing the user typed is lost, up to twice the engine's limit (more is never valid)
    assert panel.expr.text() == text[:2 * MAX_LENGTH]


def test_a_huge_paste_is_cut_at_twice_the_limit_and_refused_in_place(panel, qtbot):
    """QLineEdit keeps an undo record of every character pasted, whose memory setText does
    not give back: the box takes at most 2 * MAX_LENGTH characters, so 400 000-character
    pastes cannot pin tens of MB."""
    before = panel.result
    QGuiApplication.clipboard().setText("+".join(["x"] * 200_000))
    panel.expr.edit.setFocus()
    panel.expr.edit.selectAll()
    with qtbot.waitSignal(panel.surface_runner.failed, timeout=5000):
        panel.expr.edit.paste()
        QTest.keyClick(panel.expr.edit, Qt.Key.Key_Return)
    assert panel.expr.text() == ("x+" * MAX_LENGTH)[:2 * MAX_LENGTH]
    assert f"too long ({2 * MAX_LENGTH} characters; the limit is {MAX_LENGTH})" in \
        panel.expr.error.text()
    assert panel.result is before


def test_holes_never_reach_the_plot(panel, qtbot):
    for text in ("x*y/(x**2+y**2)", "log(x)", "exp(1000*x)"):
        with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
            panel.set_expression(text)
        lo, hi = panel.result.levels
        assert np.isfinite(lo) and np.isfinite(hi) and lo < hi
        for item in panel.contour._level_items:
            xs, ys = item.getData()
            if xs is not None and len(xs):
                assert np.isfinite(xs).any()


def test_export_writes_valid_png_svg_csv(panel, qtbot, tmp_path):
    png = panel.export(tmp_path / "contour.png", view="contour")
    image = QImage(str(png))
    assert not image.isNull() and image.width() > 200
    svg = panel.export(tmp_path / "contour.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = panel.export(tmp_path / "grid.csv").read_text()
    rows = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
    header, body = rows[0], rows[1:]
    assert [h.strip() for h in header] == ["x", "y", "z"]
    assert len(body) == 64 * 64
    x, y, z = (float(v) for v in body[70])
    a, b = panel.settings.params["a"], panel.settings.params["b"]
    assert z == pytest.approx(a * x * x + b * y * y, rel=1e-4, abs=1e-4)


def test_critical_points_are_listed(panel, qtbot):
    with qtbot.waitSignal(panel.criticalPointsDrawn, timeout=20000):
        panel.set_preset("saddle")
    kinds = [p.kind for p in panel.critical]
    assert "saddle" in kinds
    assert panel.critical_table.rowCount() == len(panel.critical)


def test_probe_reads_out_value_gradient_and_eigenvalues(panel, qtbot):
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        panel.set_expression("x**2 + y**2")
    with qtbot.waitSignal(panel.probe_runner.finished, timeout=5000):
        panel._on_click(1.0, 1.0)
    text = panel.readout.text()
    assert "f       = 2" in text
    assert "(2, 2)" in text
    assert "bowl" in text  # both eigenvalues positive, but (1, 1) is not a critical point
    assert "critical point" not in text
    with qtbot.waitSignal(panel.probe_runner.finished, timeout=5000):
        panel._on_click(0.0, 0.0)
    assert "critical point: minimum" in panel.readout.text()


def test_3d_view_shows_the_surface_pixels(panel, qtbot):
    if getattr(panel.view3d, "is_notice", False):
        pytest.fail("OpenGL should be available under Xvfb + Mesa")
    qtbot.wait(200)
    image = panel.view3d.grab_image()
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    arr = arr[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3].astype(int)
    background = arr[0, 0]
    differs = np.abs(arr - background).sum(axis=2) > 60
    assert differs.mean() > 0.05


def test_offscreen_shows_the_no_opengl_notice(tmp_path):
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from app import style; style.configure_pyqtgraph()\n"
        "app = QApplication(sys.argv)\n"
        "from app.main_window import MainWindow\n"
        "w = MainWindow(); w.show()\n"
        "from PySide6.QtCore import QEventLoop, QTimer\n"
        "loop = QEventLoop(); w.surface.surfaceDrawn.connect(loop.quit); QTimer.singleShot(20000, loop.quit); loop.exec()\n"
        "v = w.surface.view3d\n"
        "print('NOTICE' if getattr(v, 'is_notice', False) and v.isVisible() else 'NO-NOTICE')\n"
        "print('DRAWN' if w.surface.result is not None else 'NOT-DRAWN')\n"
        "w.close()\n"
        "from app import lifecycle; lifecycle.dispose(w)  # as the mlcalc entry point does\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "NOTICE" in out.stdout.split() and "DRAWN" in out.stdout.split(), out.stdout + out.stderr
    assert "Error while drawing" not in out.stderr


def test_dragging_previews_coarse_then_settles_at_full_resolution(panel, qtbot):
    from app.panels.surface import PREVIEW_RESOLUTION

    slider = panel._param_sliders["b"]
    drawn = []
    panel.surfaceDrawn.connect(lambda result: drawn.append(result.grid.z.shape))
    slider._slider.setSliderDown(True)
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        slider.setValue(0.5)
    assert drawn[-1] == (PREVIEW_RESOLUTION, PREVIEW_RESOLUTION)
    slider._slider.setSliderDown(False)
    qtbot.waitUntil(lambda: drawn[-1] == (64, 64), timeout=20000)
    np.testing.assert_allclose(panel.result.grid.z, _expected(1.0, 0.5, panel.result.grid), rtol=1e-5, atol=1e-5)


def test_log_levels_colour_by_band(panel, qtbot):
    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        panel.set_preset("rosenbrock")
    assert panel.settings.level_spacing == "log"
    z = panel.result.grid.z.ravel()
    shown = panel.contour.image.image.ravel()
    finite = np.isfinite(z)
    assert np.all((shown[finite] >= 0) & (shown[finite] <= 1))
    order = np.argsort(z[finite])
    assert np.all(np.diff(shown[finite][order]) >= -1e-6)  # same order as f: a colour scale
    # The valley floor (lowest tenth of values) spans far more colours than a linear scale gives.
    low = z[finite] <= np.quantile(z[finite], 0.1)
    lo, hi = panel.result.levels
    assert np.ptp(shown[finite][low]) > 5 * np.ptp((z[finite][low] - lo) / (hi - lo))


def test_click_pins_the_probe_and_escape_lets_go(panel, qtbot):
    with qtbot.waitSignal(panel.probe_runner.finished, timeout=5000):
        panel._on_click(0.5, 0.5)
    pinned = panel.readout.text()
    panel._on_hover(-1.0, -1.0)  # ignored while pinned
    qtbot.wait(100)
    assert panel.readout.text() == pinned
    panel.unpin_probe()
    with qtbot.waitSignal(panel.probe_runner.finished, timeout=5000):
        panel._on_hover(-1.0, -1.0)
    assert "(-1.0000, -1.0000)" in panel.readout.text()


def test_keyboard_shortcuts_toggle_the_views(panel, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    panel.activateWindow()
    qtbot.waitUntil(lambda: panel.isActiveWindow(), timeout=5000)  # shortcuts need an active window
    panel.levels_slider.setFocus()
    before = panel.wire_check.isChecked()
    QTest.keyClick(panel.levels_slider, Qt.Key.Key_W)
    assert panel.wire_check.isChecked() != before
    with qtbot.waitSignal(panel.probe_runner.finished, timeout=5000):
        panel._on_click(0.5, 0.5)
    QTest.keyClick(panel.levels_slider, Qt.Key.Key_Escape)
    assert panel._pinned is None
