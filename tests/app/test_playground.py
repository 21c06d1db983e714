"""The network playground: trains through the panel, pauses, resets, refuses bad widths with
a message, reports divergence, shows digits' confusion matrix, exports, and shuts down."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage

from app import jobs
from app.export import ExportError
from app.panels.playground import (
    DATASETS,
    LOSSES,
    MAX_WIDTHS_TEXT,
    PlaygroundPanel,
    PlaygroundSettings,
    _lr_to_slider,
    parse_widths,
)
from engine import mlp

ROOT = Path(__file__).resolve().parents[2]
# Qt's offscreen platform notes that it ignores window size hints; nothing to fix here.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
WAIT = 20_000  # ms; every wait ends far sooner on an idle machine


@pytest.fixture
def panel(qtbot):
    p = PlaygroundPanel()
    qtbot.addWidget(p)
    p.resize(1300, 820)
    p.show()
    qtbot.waitUntil(lambda: p.snapshot is not None, timeout=WAIT)  # the first network is drawn
    yield p
    p.shutdown()


def _select(box, key) -> None:
    box.setCurrentIndex(box.findData(key))


def _pause_and_settle(panel, qtbot) -> None:
    panel.pause()
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=WAIT)


def test_xor_trains_past_95_percent_within_bounded_steps(panel, qtbot):
    _select(panel.dataset_box, "xor")
    assert panel.settings.dataset == "xor" and panel.settings.method == "sgd"
    reached = []
    panel.trained.connect(lambda s: reached.append(s.step) if (s.val_accuracy or 0) > 0.95 else None)
    panel.play()
    assert panel.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: bool(reached), timeout=WAIT)
    _pause_and_settle(panel, qtbot)
    assert reached[0] <= 2000  # about 130 steps of plain gradient descent here
    snap = panel.snapshot
    assert snap.settings.dataset == "xor" and snap.train_accuracy > 0.9
    assert "accuracy" in panel.status_label.text() and "% (validation)" in panel.status_label.text()
    # The map was drawn from the snapshot: P(class 1) on a 2-D grid, finite, in [0, 1].
    image = panel.map_image.image
    assert image.ndim == 2 and np.all(np.isfinite(image)) and 0 <= image.min() <= image.max() <= 1
    assert len(panel.boundary.getData()[0]) > 0  # the P = 0.5 curve
    # XOR needs its hidden units: each layer's maps are drawn, labelled "layer l, unit i".
    assert (1, 8) in panel.unit_cells and (2, 1) in panel.unit_cells and len(panel.unit_cells) == 16
    assert [t.toPlainText() for t in panel._unit_labels][:2] == ["layer 1, unit 1", "layer 1, unit 2"]
    unit = next(u for u in snap.units if (u.layer, u.unit) == (2, 3))
    np.testing.assert_array_equal(panel.unit_image(2, 3), unit.image)


def test_pause_holds_and_step_takes_one_step(panel, qtbot):
    panel.set_settings(patience=0)
    panel.play()
    qtbot.waitUntil(lambda: panel.step_count > 20, timeout=WAIT)
    _pause_and_settle(panel, qtbot)
    held = panel.step_count
    qtbot.wait(300)
    assert panel.step_count == held and not panel.runner.busy and panel.play_button.text() == "Play"
    with qtbot.waitSignal(panel.trained, timeout=WAIT) as blocker:
        panel.step_button.click()
    assert blocker.args[0].step == held + 1
    steps, _ = panel.history["train"]
    assert steps[-1] == held + 1 and np.array_equal(steps, np.arange(1, held + 2))


def test_reset_restarts_at_step_zero(panel, qtbot):
    panel.play()
    qtbot.waitUntil(lambda: panel.step_count > 10, timeout=WAIT)
    with qtbot.waitSignal(panel.trained, timeout=WAIT, check_params_cb=lambda s: s.step == 0):
        panel.reset_button.click()
    assert not panel.is_playing and panel.step_count == 0
    assert len(panel.history["train"][0]) == 0
    assert panel.status_label.text().startswith("step 0")


def test_keyboard_shortcuts_step_play_pause_and_reset(panel, qtbot):
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow, timeout=WAIT)
    view = panel.map_view
    view.setFocus()
    with qtbot.waitSignal(panel.trained, timeout=WAIT, check_params_cb=lambda s: s.step == 1):
        qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert panel.is_playing
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert not panel.is_playing
    with qtbot.waitSignal(panel.trained, timeout=WAIT, check_params_cb=lambda s: s.step == 0):
        qtbot.keyClick(view, Qt.Key.Key_Home)
    for button, key in ((panel.play_button, "Space"), (panel.step_button, "→"), (panel.reset_button, "Home")):
        assert key in button.toolTip()


def test_changing_a_setting_while_playing_drops_the_old_network(panel, qtbot):
    panel.play()
    qtbot.waitUntil(lambda: panel.step_count > 10, timeout=WAIT)
    seen = []
    panel.trained.connect(seen.append)
    with qtbot.waitSignal(panel.networkReset, timeout=WAIT):
        _select(panel.dataset_box, "circles")
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=WAIT)
    panel.pause()
    assert all(s.settings.dataset == "circles" for s in seen)  # nothing of the XOR network
    steps, _ = panel.history["train"]
    assert steps[0] == 1 and np.array_equal(steps, np.arange(1, len(steps) + 1))


def test_a_huge_paste_of_widths_is_cut_and_refused_in_place(panel, qtbot):
    edit = panel.widths_edit
    QGuiApplication.clipboard().setText(", ".join(["8"] * 50_000))
    edit.setFocus()
    edit.selectAll()
    with qtbot.assertNotEmitted(panel.networkReset, wait=100):
        edit.paste()
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert len(edit.text()) == MAX_WIDTHS_TEXT + 1
    assert panel.widths_message.isVisible() and "too long" in panel.widths_message.text()
    assert panel.settings.hidden == (8, 8)


def test_bad_widths_show_a_message_and_keep_the_network(panel, qtbot):
    for _ in range(3):
        with qtbot.waitSignal(panel.trained, timeout=WAIT):
            panel.step()
    edit = panel.widths_edit
    for text, message in (("8, 0", f"1 to {mlp.MAX_WIDTH} units"),
                          (", ".join(["4"] * 9), f"{mlp.MIN_HIDDEN_LAYERS} to {mlp.MAX_HIDDEN_LAYERS} hidden layers"),
                          ("8, x", "not a whole number")):
        edit.selectAll()
        with qtbot.assertNotEmitted(panel.networkReset, wait=100):
            qtbot.keyClicks(edit, text)
            qtbot.keyClick(edit, Qt.Key.Key_Return)
        assert panel.widths_message.isVisible() and message in panel.widths_message.text()
        assert "keeps 8, 8" in panel.widths_message.text()
        assert panel.settings.hidden == (8, 8) and panel.step_count == 3
        assert edit.text() == text  # what was typed stays, to be corrected
    edit.selectAll()
    with qtbot.waitSignal(panel.trained, timeout=WAIT, check_params_cb=lambda s: s.settings.hidden == (5,)):
        qtbot.keyClicks(edit, "5")
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert not panel.widths_message.isVisible() and panel.step_count == 0
    assert sorted(panel.unit_cells) == [(1, i) for i in range(1, 6)]


def test_huge_learning_rate_diverges_and_plots_stay_finite(panel, qtbot):
    _select(panel.loss_box, "squared_linear")
    with qtbot.waitSignal(panel.networkReset, timeout=WAIT):
        panel.lr_slider.setValue(1000)  # eta = 100, applied when the slider rests
    assert panel.settings.lr == pytest.approx(100.0)
    panel.play()
    qtbot.waitUntil(lambda: panel.snapshot is not None and panel.snapshot.done, timeout=WAIT)
    assert panel.snapshot.status.startswith("diverged at step")
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=WAIT)
    assert not panel.is_playing and "diverged at step" in panel.status_label.text()
    xs, ys = panel.train_curve.getData()
    assert len(xs) > 0 and np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))
    assert np.all(np.isfinite(panel.map_image.image))
    for layer, unit in panel.unit_cells:
        assert np.all(np.isfinite(panel.unit_image(layer, unit)))
    panel.play()  # an ended run says how to go on instead of silently doing nothing
    assert not panel.is_playing and "Reset" in panel.status_label.text()


def test_digits_show_a_confusion_matrix_of_the_validation_set(panel, qtbot):
    with qtbot.waitSignal(panel.trained, timeout=WAIT, check_params_cb=lambda s: s.settings.dataset == "digits"):
        _select(panel.dataset_box, "digits")
    assert panel.map_stack.currentWidget() is panel.digits_view
    assert not panel.points_spin.isEnabled() and not panel.noise_spin.isEnabled()
    panel.play()
    qtbot.waitUntil(lambda: panel.step_count >= 30, timeout=WAIT)
    _pause_and_settle(panel, qtbot)
    snap = panel.snapshot
    counts = snap.confusion
    assert counts.shape == (10, 10) and counts.sum() == len(snap.validation) == round(0.2 * 1797)
    shown = sum(int(t.toPlainText() or 0) for row in panel.confusion_text for t in row)
    assert shown == len(snap.validation)
    assert f"{len(snap.validation)} validation digits" in panel.confusion_plot.titleLabel.text
    assert np.trace(counts) / counts.sum() == pytest.approx(snap.val_accuracy)
    assert all(label.text for label in panel.sample_labels)
    # The hidden-unit grid shows the first layer's weights as 8 x 8 images.
    assert sorted(panel.unit_cells) == [(1, i) for i in range(1, 9)]
    assert all(panel.unit_image(*cell).shape == (8, 8) for cell in panel.unit_cells)
    assert "first 8 of 8" not in panel.units_header.text


def test_an_idle_panel_does_not_repaint(panel, qtbot):
    # A self-sizing legend in the map's layout once made the layout oscillate at some window
    # sizes (1100 x 800 here), repainting the map ~100 times a second with nothing changed.
    with qtbot.waitSignal(panel.trained, timeout=WAIT):
        panel.step()
    image = panel.map_image
    paints = []
    paint = type(image).paint
    image.paint = lambda *args: (paints.append(1), paint(image, *args))[1]
    for width in (1100, 1300):
        for height in (760, 780, 800, 820, 840):
            panel.resize(width, height)
            qtbot.wait(100)
            paints.clear()
            qtbot.wait(150)
            assert len(paints) <= 1, (width, height)


def test_three_blobs_colour_the_map_by_class(panel, qtbot):
    with qtbot.waitSignal(panel.trained, timeout=WAIT, check_params_cb=lambda s: s.settings.dataset == "blobs"):
        _select(panel.dataset_box, "blobs")
    image = panel.map_image.image
    assert image.shape[2] == 4 and image.dtype == np.uint8
    assert not panel.colorbar.isVisible() and not panel.boundary.isVisible()
    assert len(panel.train_points[2].getData()[0]) > 0


def test_export_png_svg_csv(panel, qtbot, tmp_path):
    panel.play()
    qtbot.waitUntil(lambda: panel.step_count > 50, timeout=WAIT)
    _pause_and_settle(panel, qtbot)
    png = QImage(str(panel.export(tmp_path / "play.png")))
    single = QImage(str(panel.export(tmp_path / "map.png", view="map")))
    assert not png.isNull() and not single.isNull() and png.width() > single.width()
    assert panel.export(tmp_path / "play.svg").read_text().lstrip().startswith("<?xml")
    assert panel.export(tmp_path / "loss.svg", view="loss").read_text().lstrip().startswith("<?xml")
    rows = list(csv.DictReader(panel.export(tmp_path / "loss.csv").read_text().splitlines()))
    steps, losses = panel.history["train"]
    _, vlosses = panel.history["validation"]
    assert [int(r["step"]) for r in rows] == steps.tolist()
    np.testing.assert_array_equal([float(r["train_loss"]) for r in rows], losses)
    np.testing.assert_array_equal([float(r["validation_loss"]) for r in rows if r["validation_loss"]], vlosses)
    with pytest.raises(ExportError):
        panel.export(tmp_path / "play.txt")
    assert not list(tmp_path.glob(".*tmp"))


def test_closing_while_training_leaves_no_worker(panel, qtbot):
    panel.play()
    qtbot.waitUntil(lambda: panel.step_count > 0 and panel.runner.busy, timeout=WAIT)
    panel.close()
    assert not panel.is_playing
    assert not jobs.live_worker_threads()


CLOSE_SCRIPT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app import lifecycle, style
from app.panels.playground import PlaygroundPanel

style.configure_pyqtgraph()
app = QApplication(sys.argv[:1])
lifecycle.install_collector(app)
panel = PlaygroundPanel()
panel.show()
panel.trained.connect(lambda s: s.step > 0 and panel.runner.busy and QTimer.singleShot(0, panel.close))
panel.play()
QTimer.singleShot(15000, app.quit)  # a hang guard
app.setQuitOnLastWindowClosed(True)
status = app.exec()
lifecycle.dispose(panel)
print(f"exit {status}")
"""


def test_closing_the_window_while_training_exits_cleanly():
    out = subprocess.run([sys.executable, "-c", CLOSE_SCRIPT], check=False, capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "exit 0" in out.stdout
    for bad in ("QThread", "deleted", "Traceback", "Segmentation", "QObject", "Error"):
        assert bad not in out.stderr, out.stderr[-3000:]


def test_parse_widths_and_the_logarithmic_learning_rate():
    assert parse_widths("8, 8") == (8, 8) and parse_widths(" 16 4 ") == (16, 4)
    for text in ("", "0", "8,,x", "-3", "1.5", ", ".join(["2"] * (mlp.MAX_HIDDEN_LAYERS + 1)),
                 str(mlp.MAX_WIDTH + 1)):
        with pytest.raises(ValueError):
            parse_widths(text)
    assert _lr_to_slider(1e-4) == 0 and _lr_to_slider(100.0) == 1000
    assert set(DATASETS) == {"xor", "circles", "moons", "spirals", "blobs", "digits"}
    assert {loss for loss, _, _ in LOSSES.values()} == set(mlp.LOSSES)
    assert PlaygroundSettings().method == "sgd"
