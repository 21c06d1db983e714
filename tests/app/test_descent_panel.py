"""The descent lab: clicking sets the start, play advances, pause holds, exports are valid."""

import csv

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.panels.descent import DescentPanel, DescentSettings, _lr_to_slider
from app.panels.surface import SurfacePanel, SurfaceSettings


@pytest.fixture
def panels(qtbot):
    surface = SurfacePanel(settings=SurfaceSettings(text="x**2 + 3*y**2", preset=None, resolution=64))
    descent = DescentPanel(surface, settings=DescentSettings(methods=("sgd", "momentum", "adam"),
                                                             lr=0.05, steps=200))
    for w in (surface, descent):
        qtbot.addWidget(w)
        w.resize(1200, 800)
    descent.show()
    qtbot.waitUntil(lambda: surface.result is not None, timeout=20000)
    qtbot.waitUntil(lambda: bool(descent.trajectories), timeout=20000)  # the first race is in
    qtbot.wait(50)
    yield surface, descent
    descent.shutdown()
    surface.shutdown()


def test_clicking_the_map_sets_the_start_point(panels, qtbot):
    _, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.contour.clicked.emit(1.0, -0.5)
    assert descent.settings.start == (1.0, -0.5)
    assert (descent.start_x.value(), descent.start_y.value()) == (1.0, -0.5)
    assert {t.method for t in descent.trajectories} == {"sgd", "momentum", "adam"}
    for t in descent.trajectories:
        np.testing.assert_allclose(t.points[0], (1.0, -0.5))
        assert np.all(np.isfinite(t.points))
    # SGD on x^2 + 3y^2 with eps = 0.05: the first step is (1, -0.5) - 0.05 * (2, -3).
    sgd = next(t for t in descent.trajectories if t.method == "sgd")
    np.testing.assert_allclose(sgd.points[1], (0.9, -0.35))


def test_a_setting_change_while_a_new_start_races_still_plays_it(panels, qtbot):
    """A new start races and plays; a setting changed before that race is back (the
    debounced rerun) replaces the race but keeps the wish to play it. On a busy machine
    the rerun used to come first and the race never played."""
    _, descent = panels
    descent.pause()
    descent.set_start(1.2, 0.7)
    assert descent.runner.busy
    descent.steps_spin.setValue(150)  # what the 120 ms rerun timer then does:
    descent.run()
    qtbot.waitUntil(lambda: not descent.runner.busy, timeout=20000)
    assert len(descent.trajectories[0].points) == 151
    assert descent.play_button.text() == "Pause"
    descent.pause()


def test_play_advances_and_pause_holds(panels, qtbot):
    _, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(1.5, 1.0)
    descent.reset()
    assert descent.frame == 0
    descent.play()
    qtbot.waitUntil(lambda: descent.frame > 5, timeout=5000)
    descent.pause()
    held = descent.frame
    qtbot.wait(200)
    assert descent.frame == held
    # The drawn ball of each optimizer sits on its trajectory at that step.
    for t in descent.trajectories:
        xs, ys = descent._ball_items[t.method].getData()
        k = min(held, len(t.points) - 1)
        np.testing.assert_allclose((xs[0], ys[0]), t.points[k])
    descent.step()
    assert descent.frame == held + 1


def test_huge_learning_rate_diverges_with_a_clear_status(panels, qtbot):
    _, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.lr_slider.setValue(1000)  # eps = 10**0.5
    sgd = next(t for t in descent.trajectories if t.method == "sgd")
    assert sgd.status == "diverged" and sgd.diverged_at is not None
    assert "diverged at step" in sgd.message
    row = [descent.table.item(r, 0).text() for r in range(descent.table.rowCount())].index("SGD")
    assert "diverged at step" in descent.table.item(row, 3).text()
    for t in descent.trajectories:
        assert np.all(np.isfinite(t.points)) and np.all(np.isfinite(t.values))


def test_export_png_svg_csv(panels, qtbot, tmp_path):
    _, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(1.0, 1.0)
    png = descent.export(tmp_path / "race.png")
    assert not QImage(str(png)).isNull()
    assert descent.export(tmp_path / "race.svg").read_text().lstrip().startswith("<?xml")
    rows = list(csv.DictReader(descent.export(tmp_path / "race.csv").read_text().splitlines()))
    assert {r["method"] for r in rows} == {"sgd", "momentum", "adam"}
    assert sum(1 for r in rows if r["method"] == "sgd") == len(
        next(t for t in descent.trajectories if t.method == "sgd").points)


def test_log_axes_label_the_values_without_a_power_of_ten_factor(panels, qtbot):
    surface, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        surface.set_expression("x**2 + 1e6 * y**2")  # f up to 4e6 on the map
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(1.5, 1.0)
    qtbot.wait(100)
    assert not descent.loss_is_linear
    for plot in (descent.loss_plot, descent.grad_plot):
        axis = plot.getAxis("left")
        assert axis.autoSIPrefixScale == 1.0 and "x1e" not in axis.labelString()


def test_a_run_far_below_the_map_turns_the_loss_plot_to_f_on_the_maps_scale(panels, qtbot):
    """On the saddle f is unbounded below: every run ends near f = -1e12, where f - min f
    would draw flat lines. The loss plot then shows f itself, on the map's range of values,
    so the runs' slide onto the saddle, their stay there and their escape are seen."""
    surface, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        surface.set_expression("x**2 - y**2")
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(1.5, 0.01)
    assert min(float(np.nanmin(t.values)) for t in descent.trajectories) < -1e6
    assert descent.loss_is_linear and descent.map_values == pytest.approx((-4, 4), abs=0.01)
    lowest, highest = descent.map_values
    plot = descent.loss_plot
    assert not plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert "far below the map" in plot.getAxis("left").labelText
    low, high = plot.getViewBox().viewRange()[1]
    margin = 0.1 * (highest - lowest)
    assert low == pytest.approx(lowest - margin) and high == pytest.approx(highest + margin)
    sgd = next(t for t in descent.trajectories if t.method == "sgd")
    np.testing.assert_array_equal(descent._loss_curves["sgd"].yData, sgd.values)  # f, not f - min f
    # SGD lingers on the saddle (f near 0) before it escapes
    assert np.sum(np.abs(sgd.values) < 0.5) > 30
    # a function bounded below goes back to the log view of f - min f
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        surface.set_expression("x**2 + y**2")
    assert not descent.loss_is_linear
    assert plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert plot.getAxis("left").labelText.startswith("f − min f")


def test_typing_zero_as_the_clip_norm_gives_its_smallest_value(panels, qtbot):
    _, descent = panels
    descent.clip_check.setChecked(True)
    for text in ("0", "0.0001", "0.001"):
        descent.clip_spin.lineEdit().selectAll()
        qtbot.keyClicks(descent.clip_spin, text)
        qtbot.keyClick(descent.clip_spin, Qt.Key.Key_Enter)
        assert descent.clip_spin.value() >= 0.001
    descent.clip_spin.setValue(0.0)  # what a wheel or the Down key does at the bottom
    assert descent.clip_spin.value() == descent.clip_spin.minimum() == 0.001
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.run()
    assert descent.settings.clip == 0.001


def test_learning_rate_slider_is_logarithmic():
    assert _lr_to_slider(10 ** -4) == 0
    assert _lr_to_slider(10 ** 0.5) == 1000


def test_export_gif_and_mp4_of_the_race(panels, qtbot, tmp_path):
    import imageio.v3 as iio

    _, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.steps_spin.setValue(24)  # a short race keeps the test quick
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(1.2, -0.8)
    descent.pause()
    gif = descent.export(tmp_path / "race.gif")
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] > 1 and frames.ndim == 4
    assert not np.array_equal(frames[0], frames[-1])  # the balls moved
    mp4 = descent.export(tmp_path / "race.mp4")
    assert mp4.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    import imageio_ffmpeg

    n_frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert n_frames > 1 and seconds > 0
    assert not list(tmp_path.glob(".*partial*"))  # no half-written file left behind


def test_an_animation_is_encoded_while_the_event_loop_runs_and_can_be_cancelled(panels, qtbot,
                                                                                tmp_path):
    from PySide6.QtCore import QTimer

    from app.export import ExportError, export_animation

    _, descent = panels
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.steps_spin.setValue(40)
    descent.pause()
    ticks, reports = [], []
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()

    def progress(fraction):
        reports.append((fraction, len(ticks)))
        return True

    export_animation(descent, tmp_path / "race.gif", progress=progress)
    encoding = [n for fraction, n in reports if fraction > 0.5]
    assert encoding, reports
    assert len(ticks) > encoding[0]  # the timer ticked while the frames were encoded
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] <= 1.0
    for suffix in (".gif", ".mp4"):  # cancelled while encoding: no file, nothing partial
        with pytest.raises(ExportError, match="cancelled"):
            export_animation(descent, tmp_path / f"cancelled{suffix}",
                             progress=lambda fraction: fraction <= 0.5)
    timer.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.gif"]


def test_basin_map_colours_the_starts_by_the_minimum_reached(panels, qtbot):
    surface, descent = panels
    with qtbot.waitSignal(surface.surfaceDrawn, timeout=20000):
        surface.set_preset("himmelblau")
    descent.basin_size.setCurrentIndex(0)  # 64 x 64
    descent.lr_slider.setValue(_lr_to_slider(0.01))
    qtbot.wait(200)
    with qtbot.waitSignal(descent.basin_runner.finished, timeout=60000):
        descent.toggle_basins()
    basins = descent.basins
    assert basins.labels.shape == (64, 64)
    assert len(basins.minima) == 4
    assert descent.basin_image.isVisible()
    assert "reaches 4 point(s)" in descent.basin_summary.text()
    descent.basin_show.toggle()
    assert not descent.basin_image.isVisible()


def test_arrows_show_the_gradient_step_and_the_actual_step(panels, qtbot):
    _, descent = panels
    for method, check in descent.method_checks.items():
        check.setChecked(method in ("sgd", "momentum"))
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(1.0, 1.0)
    descent.pause()
    descent.show_frame(3)
    gx, gy = descent.grad_arrows.getData()
    sx, sy = descent.step_arrows.getData()
    # Shafts come first: (start, end) pairs per optimizer, in the order of the trajectories.
    order = [t.method for t in descent.trajectories]
    i = order.index("sgd")
    gd = (gx[2 * i + 1] - gx[2 * i], gy[2 * i + 1] - gy[2 * i])
    sd = (sx[2 * i + 1] - sx[2 * i], sy[2 * i + 1] - sy[2 * i])
    np.testing.assert_allclose(sd, gd, rtol=1e-9, atol=1e-12)  # SGD steps exactly along -eps*grad f
    j = order.index("momentum")
    gm = (gx[2 * j + 1] - gx[2 * j], gy[2 * j + 1] - gy[2 * j])
    sm = (sx[2 * j + 1] - sx[2 * j], sy[2 * j + 1] - sy[2 * j])
    assert not np.allclose(sm, gm)  # momentum's step carries its velocity
    descent.arrows_check.setChecked(False)
    assert descent.step_arrows.getData()[0] is None or len(descent.step_arrows.getData()[0]) == 0
