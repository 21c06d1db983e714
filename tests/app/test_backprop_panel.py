"""The backprop lab: sliders reach the engine's numbers, the walk follows the seed's
sequence, Step is eq. 6, dead units are marked, the loss surface is the engine's, and the
exports are valid."""

import csv

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.panels.backprop import BackpropPanel, BackpropSettings, _fmt
from engine import backprop


@pytest.fixture
def panel(qtbot):
    p = BackpropPanel(settings=BackpropSettings())
    qtbot.addWidget(p)
    p.resize(1400, 850)
    p.show()
    qtbot.waitUntil(lambda: p.surface is not None, timeout=20000)
    yield p
    p.shutdown()


def _card(panel, node) -> str:
    return panel.diagram.cards[node].textItem.toPlainText()


def test_moving_a_weight_slider_shows_the_engines_values(panel, qtbot):
    panel.weight_sliders["w11_1"].setValue(1.25)
    panel.weight_sliders["w12_2"].setValue(0.75)
    panel.show_all()
    s = panel.settings
    expected = backprop.three_unit_pass(s.x1, s.x2, s.y, {**backprop_weights(panel)})
    assert s.weights["w11_1"] == 1.25 and s.weights["w12_2"] == 0.75
    for name in ("z1_1", "a1_1", "z2_1", "a2_1", "z1_2", "y_hat", "loss", "delta1_2",
                 "delta1_1", "delta2_1"):
        assert getattr(panel.record, name) == getattr(expected, name)
    assert dict(panel.record.grad) == dict(expected.grad)
    unit = _card(panel, "1_1")
    for value in (expected.z1_1, expected.a1_1, expected.delta1_1, expected.dL_da1_1):
        assert _fmt(value) in unit
    out = _card(panel, "1_2")
    assert _fmt(expected.z1_2) in out and _fmt(expected.delta1_2) in out
    assert _fmt(expected.loss) in _card(panel, "loss")
    label = panel.diagram.edge_text["w12_2"].textItem.toPlainText()
    assert "0.75" in label and _fmt(expected.grad["w12_2"]) in label
    # The comparison column: backprop against central differences, row by row.
    for row, name in enumerate(backprop.WEIGHT_NAMES):
        assert panel.table.item(row, 2).text() == _fmt(expected.grad[name])
        fd = backprop.finite_difference_gradient(s.x1, s.x2, s.y, s.weights)[name]
        assert panel.table.item(row, 3).text() == _fmt(fd)


def backprop_weights(panel):
    return {n: float(sl.value()) for n, sl in panel.weight_sliders.items()}


def test_forward_backward_and_step_walk_the_documented_sequence(panel, qtbot):
    record = panel.record
    forward = backprop.forward_steps(record)
    backward = backprop.backward_steps(record)
    assert panel.position == 0
    assert "z₁⁽¹⁾" not in _card(panel, "1_1")  # nothing computed yet

    panel.backward()  # refused before the forward pass
    assert panel.position == 0

    seen = []
    for _ in range(len(forward) + 3):  # extra presses do nothing
        panel.forward()
        seen.append(panel.applied_steps()[-1])
    assert [(s.quantity, s.key) for s in panel.applied_steps()] == [
        (s.quantity, s.key) for s in forward]
    assert not panel.forward_button.isEnabled() and panel.backward_button.isEnabled()
    assert "eq. 20" in panel.equation.text()  # the loss was the last forward equation

    for k, step in enumerate(backward, start=1):
        panel.backward()
        assert panel.applied_steps()[-1] == step
        assert step.equation in panel.equation.text()
        assert f"backward {k} / {len(backward)}" in panel.equation.text()
    # eq. 26 with its numbers: the delta of hidden unit 1.
    delta = next(s for s in backward if s.quantity == "delta1_1")
    assert delta.equation == "eq. 26"
    assert delta.substituted.endswith(backprop.format_number(record.delta1_1))
    assert not panel.backward_button.isEnabled()

    lr = 0.05
    panel.lr_spin.setValue(lr)
    before = dict(panel.settings.weights)
    panel.step()
    for name in backprop.WEIGHT_NAMES:
        assert panel.settings.weights[name] == pytest.approx(
            before[name] - lr * record.grad[name], abs=1e-12)
        assert panel.weight_sliders[name].value() == pytest.approx(panel.settings.weights[name],
                                                                   abs=1e-9)
    assert panel.position == 0 and panel.record.loss < record.loss


def test_a_dead_unit_is_marked_with_the_reason(panel, qtbot):
    panel.set_weights({"w20_1": -1.0, "w21_1": -0.5, "w22_1": -0.25})  # z2_1 < 0
    assert panel.record.is_dead("2_1")
    assert "dead" not in _card(panel, "2_1")  # z not computed yet
    panel.show_all()
    assert "dead" in _card(panel, "2_1") and "σ′(z) = 0" in _card(panel, "2_1")
    for row, name in enumerate(backprop.WEIGHT_NAMES):
        if name in backprop.INCOMING["2_1"]:
            assert panel.record.grad[name] == 0.0
            assert "exactly 0" in panel.table.item(row, 2).toolTip()


def test_loss_over_two_weights_is_the_engines_and_the_marker_moves(panel, qtbot):
    s = panel.settings
    a, b = s.pair
    grid = panel.surface.grid
    req = panel.surface.request
    direct = backprop.loss_over_two_weights(s.x1, s.x2, s.y, s.weights, a, b, req.range_a,
                                            req.range_b, req.n)
    np.testing.assert_allclose(grid.z, direct.z)
    xs, ys = panel.marker.getData()
    assert (xs[0], ys[0]) == (s.weights[a], s.weights[b])
    panel.step()
    panel.step()
    def trail_length():
        xs = panel.trail.getData()[0]
        return 0 if xs is None else len(xs)

    qtbot.waitUntil(lambda: trail_length() == 3, timeout=5000)
    xs, ys = panel.marker.getData()
    assert (xs[0], ys[0]) == (panel.settings.weights[a], panel.settings.weights[b])
    # Choosing another pair redraws over those two weights.
    with qtbot.waitSignal(panel.lossSurfaceDrawn, timeout=10000):
        panel.pair_boxes[0].setCurrentIndex(backprop.WEIGHT_NAMES.index("w10_1"))
    assert panel.surface.request.name_a == "w10_1"
    panel.pair_boxes[1].setCurrentIndex(backprop.WEIGHT_NAMES.index("w10_1"))
    assert "different" in panel.pair_message.text()


def test_exports_are_valid(panel, tmp_path):
    panel.show_all()
    png = panel.export(tmp_path / "net.png")
    image = QImage(str(png))
    assert image.width() > 300 and image.height() > 150
    svg = panel.export(tmp_path / "net.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    both = QImage(str(panel.export(tmp_path / "loss.png", view="both")))
    assert both.width() > 400
    text = panel.export(tmp_path / "net.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["weight"] for r in rows] == list(backprop.WEIGHT_NAMES)
    for r in rows:
        assert float(r["grad_backprop"]) == pytest.approx(float(r["grad_finite_difference"]),
                                                          rel=1e-5, abs=1e-8)
