"""The real loss landscape in the surface panel: progress and Cancel, both views, the path,
the way back to a preset, the descent tab's notice, and `mlcalc export landscape`."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.panels.descent import DescentPanel
from app.panels.surface import (
    LANDSCAPE_KEY,
    LandscapeSettings,
    SurfacePanel,
    SurfaceSettings,
)
from engine import landscape

ROOT = Path(__file__).resolve().parents[2]
SMALL = LandscapeSettings(directions="pca", grid=21)


@pytest.fixture
def panel(qtbot):
    p = SurfacePanel(settings=SurfaceSettings(text="x**2 + 2*y**2", preset=None, resolution=32,
                                              critical_points=False))
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    yield p
    p.shutdown()


def _show_small(panel, qtbot):
    with qtbot.waitSignal(panel.landscapeDrawn, timeout=60000):
        panel.set_landscape(SMALL)
    return panel.landscape


def test_progress_advances_and_cancel_keeps_the_previous_surface(panel, qtbot):
    image_before = panel.contour.image.image.copy()
    result_before = panel.result
    fractions = []
    panel.landscape_runner.progress.connect(lambda _id, f: fractions.append(f))
    # A large grid takes over a second, long enough to watch the bar and press Cancel.
    panel.set_landscape(LandscapeSettings(directions="filter", grid=151))
    assert panel.landscape_progress.isVisible() and panel.landscape_cancel.isVisible()
    qtbot.waitUntil(lambda: panel.landscape_progress.value() >= 35, timeout=30000)
    assert len(fractions) >= 2 and fractions == sorted(fractions) and 0 < fractions[-1] < 1
    with qtbot.assertNotEmitted(panel.landscapeDrawn, wait=500):
        qtbot.mouseClick(panel.landscape_cancel, Qt.MouseButton.LeftButton)
        # The runner's job ends at its next chunk; the bar resets and hides.
        qtbot.waitUntil(lambda: panel.landscape_runner._pending.done(), timeout=5000)
    assert not panel.landscape_runner.busy
    assert panel.landscape_progress.value() == 0 and not panel.landscape_progress.isVisible()
    assert not panel.landscape_cancel.isVisible()
    # The function on screen stays, and is the panel's source again.
    assert panel.landscape is None and panel.result is result_before
    np.testing.assert_array_equal(panel.contour.image.image, image_before)
    assert panel.settings.source == "function"
    assert panel.preset_box.currentData() is None  # "(typed function)"
    assert not panel.landscape_box.isVisible()


def test_landscape_appears_in_both_views_with_the_path(panel, qtbot):
    view = _show_small(panel, qtbot)
    r = view.result
    assert panel.preset_box.currentData() == LANDSCAPE_KEY
    # The same numbers the engine computes on its own, in the contour map and in 3-D.
    expected = landscape.landscape(landscape.LandscapeRequest(directions="pca", grid=21))
    np.testing.assert_allclose(r.loss, expected.loss, rtol=1e-12, atol=1e-12)
    with qtbot.waitSignal(panel.landscapeDrawn, timeout=20000):
        panel.landscape_log.setChecked(False)  # linear levels: the heatmap holds raw values
    grid = panel.landscape.result.to_grid("loss")
    np.testing.assert_array_equal(panel.contour.image.image, grid.z)
    np.testing.assert_array_equal(np.asarray(panel.view3d.surfaceItem()._z), grid.z)
    assert panel.landscape.result is r  # levels changed, the landscape was not recomputed
    # The projected training path and the trained weights, on both views.
    xs, ys = panel.path_curve.getData()
    np.testing.assert_array_equal(np.column_stack([xs, ys]), r.path)
    assert tuple(panel.centre_marker.getData()[0]) == (0.0,)
    path3d = panel.view3d._paths[0][0]
    np.testing.assert_array_equal(path3d[:, :2], r.path)
    assert np.isfinite(path3d[:, 2]).all()
    balls = panel.view3d._ball_data[0]
    assert balls[0] == pytest.approx([0.0, 0.0, r.centre_loss])
    # What applies to typed expressions only is switched off, with a note.
    assert not panel.arrows_check.isEnabled() and not panel.critical_check.isEnabled()
    assert not panel.critical_box.isVisible() and not panel.range_box.isVisible()
    assert "real landscape" in panel.formulas.text()
    assert panel.critical == []
    panel._on_click(0.0, 0.0)  # the probe reads the grid, with no expression behind it
    assert f"loss     = {r.centre_loss:.4g}" in panel.readout.text()
    # Accuracy instead of loss.
    with qtbot.waitSignal(panel.landscapeDrawn, timeout=20000):
        panel.metric_box.setCurrentIndex(panel.metric_box.findData("accuracy"))
        panel._on_landscape_controls()
    np.testing.assert_array_equal(panel.contour.image.image, r.to_grid("accuracy").z)


def test_back_to_a_preset_and_exports(panel, qtbot, tmp_path):
    assert not any(suffix == ".npz" for _, suffix in panel.export_filters.values())
    view = _show_small(panel, qtbot)
    assert any(suffix == ".npz" for _, suffix in panel.export_filters.values())
    npz = panel.export(tmp_path / "land.npz")
    with np.load(npz, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["loss"], view.result.loss)
        np.testing.assert_array_equal(data["accuracy"], view.result.accuracy)
        np.testing.assert_array_equal(data["path"], view.result.path)
        assert data["x"].shape == (21,) and data["y"].shape == (21,)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed, not left
    rows = panel.export(tmp_path / "land.csv").read_text().splitlines()
    assert len(rows) == 2 + 21 * 21
    assert ET.parse(panel.export(tmp_path / "land.svg")).getroot().tag.endswith("svg")
    assert not QImage(str(panel.export(tmp_path / "land.png", view="contour"))).isNull()

    with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
        panel.preset_box.setCurrentIndex(panel.preset_box.findData("saddle"))
        panel._on_preset(panel.preset_box.currentIndex())
    assert panel.landscape is None and panel.settings.source == "function"
    assert panel.path_curve.getData()[0] is None or len(panel.path_curve.getData()[0]) == 0
    assert panel.view3d._paths == [] and len(panel.view3d._ball_data[0]) == 0
    assert panel.arrows_check.isEnabled() and panel.critical_check.isEnabled()
    np.testing.assert_array_equal(panel.contour.image.image, panel.result.grid.z)
    assert "∂f/∂x" in panel.formulas.text()


def test_descent_tab_races_optimizers_restricted_to_the_landscapes_plane(panel, qtbot):
    descent = DescentPanel(panel)
    qtbot.addWidget(descent)
    descent.resize(1200, 800)
    descent.show()
    try:
        for method, check in descent.method_checks.items():
            check.setChecked(method in ("sgd", "adam"))
        descent.steps_spin.setValue(40)
        view = _show_small(panel, qtbot)
        assert descent.on_landscape
        qtbot.waitUntil(lambda: descent.loss_map is not None, timeout=20000)
        span = float(view.result.x[-1])
        x0, y0 = descent.settings.start
        assert abs(x0) <= span and abs(y0) <= span  # the start was moved onto the map
        assert "projected" in descent.function_label.text()
        np.testing.assert_array_equal(descent.contour.image.image, view.result.to_grid("loss").z)
        progress = []
        descent.runner.progress.connect(lambda _id, f: progress.append(f))
        with qtbot.waitSignal(descent.raceComputed, timeout=60000) as race:
            descent.set_start(0.4 * span, -0.3 * span)
        sgd, adam = race.args[0]
        assert (sgd.method, adam.method) == ("sgd", "adam")
        assert progress and all(0 < f <= 1 for f in progress)
        # The engine's path: SGD on f(a, b) with the gradient projected on d1 and d2.
        plane = view.result.plane
        p = np.array([0.4 * span, -0.3 * span])
        for k in range(3):
            g = plane.loss_and_gradient(p[None, :])[1][0]
            p = p - descent.settings.lr * g
            np.testing.assert_allclose(sgd.points[k + 1], p, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sgd.values, plane.evaluate(sgd.points)[0], rtol=1e-12)
        assert sgd.values[-1] < sgd.values[0]
        assert descent.table.rowCount() == 2 and descent.table.item(0, 0).text() == "SGD"
        assert not descent.basin_button.isEnabled()
        with qtbot.waitSignal(descent.status) as said:
            descent.toggle_basins()
        assert "typed function" in said.args[0]
        with qtbot.waitSignal(panel.surfaceDrawn, timeout=20000):
            panel.set_preset("saddle")
        assert not descent.on_landscape and descent.loss_map is None
        assert descent.basin_button.isEnabled()
        with qtbot.waitSignal(descent.raceComputed, timeout=20000) as race:
            descent.set_start(1.0, 0.5)
        assert race.args[0][0].gradients.shape[1] == 2
    finally:
        descent.shutdown()


def _run(*args):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ), timeout=180, check=False)


def test_cli_writes_png_and_npz(tmp_path):
    png = tmp_path / "land.png"
    result = _run("export", "landscape", "--grid", "21", "--directions", "pca", "--out", str(png))
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert not image.isNull() and image.width() > 1.5 * image.height()  # 3-D and contour
    npz = tmp_path / "land.npz"
    result = _run("export", "landscape", "--grid", "21", "--metric", "accuracy", "--out", str(npz))
    assert result.returncode == 0, result.stderr
    with np.load(npz, allow_pickle=False) as data:
        assert set(data.files) >= {"x", "y", "loss", "accuracy", "path"}
        assert data["loss"].shape == data["accuracy"].shape == (21, 21)
        assert data["loss"][10, 10] == pytest.approx(landscape.train_model().evaluation.loss)
    bad = _run("export", "landscape", "--grid", "20", "--out", str(tmp_path / "x.npz"))
    assert bad.returncode == 2 and "odd" in bad.stderr
