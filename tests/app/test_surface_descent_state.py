"""Session state of the loss-surface and gradient-descent panels: an exact round trip
through a session file's JSON, and bad states refused with nothing changed."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from app import session
from app.panels.descent import DescentPanel
from app.panels.surface import LandscapeSettings, SurfacePanel, SurfaceSettings


def through_file(state: dict) -> dict:
    """The state as a session file would bring it back (strict JSON, non-finite floats)."""
    document = {"format": session.FORMAT, "format_version": session.FORMAT_VERSION,
                "panels": {"surface": state}}
    return session.decode(session.encode(document))["panels"]["surface"]


@pytest.fixture
def pair(qtbot):
    surface = SurfacePanel(settings=SurfaceSettings(resolution=32, critical_points=False))
    descent = DescentPanel(surface)
    for w in (surface, descent):
        qtbot.addWidget(w)
    surface.resize(1000, 700)
    surface.show()
    qtbot.waitUntil(lambda: surface.result is not None, timeout=20000)
    yield surface, descent
    descent.shutdown()
    surface.shutdown()


def test_surface_state_round_trips_exactly(pair, qtbot):
    surface, _ = pair
    with qtbot.waitSignal(surface.surfaceDrawn, timeout=20000):
        surface.set_expression("a*x**2 + b*sin(y)")
    with qtbot.waitSignal(surface.surfaceDrawn, timeout=20000):
        surface.set_parameter("a", 2.5)
    surface.levels_slider.setValue(22)
    surface.fill_check.setChecked(False)
    surface.wire_check.setChecked(False)
    surface._on_click(0.25, -0.5)
    state = surface.session_state()
    assert state["text"] == "a*x**2 + b*sin(y)" and state["params"]["a"] == 2.5
    assert state["n_levels"] == 22 and not state["filled"] and state["pinned"] == [0.25, -0.5]

    other = SurfacePanel(settings=SurfaceSettings(resolution=32, critical_points=False))
    qtbot.addWidget(other)
    try:
        qtbot.waitUntil(lambda: other.result is not None, timeout=20000)
        with qtbot.waitSignal(other.surfaceDrawn, timeout=20000):
            other.restore_session_state(through_file(state))
        assert other.session_state() == state
        assert other.expr.text() == "a*x**2 + b*sin(y)" and other.levels_slider.value() == 22
        assert other._param_sliders["a"].value() == pytest.approx(2.5)
        np.testing.assert_array_equal(other.result.grid.z, surface.result.grid.z)
    finally:
        other.shutdown()


def test_a_landscape_source_round_trips(pair, qtbot):
    surface, _ = pair
    state = surface.session_state()
    state["source"] = "landscape"
    state["landscape"] = {"directions": "pca", "bias": "zero", "grid": 21, "span": None,
                          "metric": "accuracy", "seed": 3}
    with qtbot.waitSignal(surface.landscapeDrawn, timeout=60000):
        surface.restore_session_state(through_file(state))
    assert surface.settings.landscape == LandscapeSettings("pca", "zero", 21, None, "accuracy", 3)
    back = surface.session_state()
    assert back["source"] == "landscape" and back["landscape"] == state["landscape"]
    assert surface.landscape.metric == "accuracy"


@pytest.mark.parametrize("key, value, message", [
    ("text", "__import__('os').system('touch hacked')", "not a function"),
    ("text", "x +* y", "not a function"),
    ("text", 42, "expected text"),
    ("x_range", [2, 1], "from < to"),
    ("x_range", [0, float("inf")], "finite"),
    ("resolution", 33, "expected one of"),
    ("n_levels", 1000, "from 3 to 60"),
    ("preset", "nope", "expected one of"),
    ("params", {"zz": 1.0}, "no parameter"),
    ("landscape", {"grid": 22}, "odd"),
    ("landscape", {"directions": "evil"}, "expected one of"),
])
def test_bad_surface_states_are_refused_and_nothing_changes(pair, key, value, message, tmp_path):
    surface, _ = pair
    before = surface.session_state()
    state = copy.deepcopy(before)
    state[key] = value
    with pytest.raises(session.SessionError, match=message) as error:
        surface.restore_session_state(state)
    assert error.value.path.split(".")[0].startswith(key)
    assert surface.session_state() == before
    assert not (tmp_path / "hacked").exists()


def test_descent_state_round_trips_exactly(pair, qtbot):
    surface, descent = pair
    for method, check in descent.method_checks.items():
        check.setChecked(method in ("nesterov", "rmsprop", "adamw"))
    descent.steps_spin.setValue(123)
    descent.constant_spins[("adam", "beta1")].setValue(0.8)
    descent.clip_check.setChecked(True)
    descent.clip_spin.setValue(2.5)
    descent.l2_spin.setValue(0.01)
    descent.noise_spin.setValue(0.3)
    descent.schedule_box.setCurrentIndex(descent.schedule_box.findText("cosine"))
    descent._on_extras()
    descent.arrows_check.setChecked(False)
    descent.basin_size.setCurrentIndex(descent.basin_size.findData(256))
    with qtbot.waitSignal(descent.raceComputed, timeout=20000):
        descent.set_start(0.7, -0.4)
    descent.pause()
    descent.show_frame(40)
    state = descent.session_state()
    assert state["methods"] == ["nesterov", "rmsprop", "adamw"] and state["clip"] == 2.5
    assert state["constants"]["adam.beta1"] == 0.8 and "frame" not in state

    other = DescentPanel(surface)
    qtbot.addWidget(other)
    try:
        with qtbot.waitSignal(other.raceComputed, timeout=20000):
            other.restore_session_state(through_file(state))
        assert other.session_state() == state
        for mine, theirs in zip(descent.trajectories, other.trajectories):
            np.testing.assert_array_equal(mine.points, theirs.points)  # noise seeded: the same race
        assert other.schedule_box.currentText() == "cosine" and not other.arrows_check.isChecked()
    finally:
        other.shutdown()


@pytest.mark.parametrize("key, value, message", [
    ("methods", ["sgd", "rm -rf"], "expected one of"),
    ("lr", -1.0, "from"),
    ("lr", float("nan"), "finite"),
    ("start", [0.0], r"\[x, y\]"),
    ("steps", 10**9, "from"),
    ("constants", {"adam.beta1": 1.5}, "from"),
    ("basin_size", 100, "expected one of"),
    ("schedule", "sometimes", "expected one of"),
])
def test_bad_descent_states_are_refused_and_nothing_changes(pair, key, value, message):
    _, descent = pair
    before = descent.session_state()
    state = copy.deepcopy(before)
    state[key] = value
    with pytest.raises(session.SessionError, match=message):
        descent.restore_session_state(state)
    assert descent.session_state() == before


def test_a_start_where_f_is_undefined_draws_without_warnings(pair, qtbot, recwarn):
    surface, descent = pair
    with qtbot.waitSignal(surface.surfaceDrawn, timeout=20000):
        surface.set_expression("log(x) + y**2")
    with qtbot.waitSignal(descent.raceComputed, timeout=20000) as race:
        descent.set_start(-1.0, 0.5)  # log of a negative: undefined at the start
    assert all(t.status == "undefined" for t in race.args[0])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
