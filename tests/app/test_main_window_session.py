"""The window's sessions: menus, the title's name and "*", open/save round trips, all or
nothing opening, recent files, examples, autosave and the offer to recover."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtWidgets import QMessageBox, QSplitter

from app import session, session_controller
from app.main_window import EXPORT_FILTERS, MainWindow
from app.session_controller import recent_files

# The offscreen platform warns that it cannot pass size hints when a window or box is shown.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

TITLE = "ML Calculus Explorer"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Preferences and recovery files in a folder of the test's own."""
    folder = tmp_path / "data"
    monkeypatch.setenv("MLCALC_DATA_DIR", str(folder))
    for name in ("MLCALC_RECOVERY", "MLCALC_AUTOSAVE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return folder


def _window(qtbot, data_dir) -> MainWindow:
    window = MainWindow(recovery_dir=data_dir)
    qtbot.addWidget(window)
    return window


@pytest.fixture
def window(qtbot, data_dir):
    return _window(qtbot, data_dir)


def _weight(window) -> float:
    return window.backprop.session_state()["weights"]["w11_2"]


def _recovery(data_dir):
    return data_dir / session.RecoveryStore.FILE_NAME


def test_the_file_menu_has_the_session_actions_with_their_shortcuts(window):
    file_menu = window.menuBar().actions()[0].menu()
    shortcuts = {a.text(): a.shortcut().toString() for a in file_menu.actions()}
    assert shortcuts["&Open session…"] == "Ctrl+O"
    assert shortcuts["&Save session"] == "Ctrl+S"
    assert shortcuts["Save session &as…"] == "Ctrl+Shift+S"
    assert "Open &recent" in shortcuts and "&Export figure…" in shortcuts
    help_menu = window.menuBar().actions()[-1].menu()
    assert "&Examples" in [a.text() for a in help_menu.actions()]


def test_the_title_names_the_file_and_stars_unsaved_changes(window, qtbot, tmp_path):
    assert window.windowTitle() == f"Untitled[*] — {TITLE}" and not window.isWindowModified()
    window.backprop.set_weights({"w11_2": 1.5})
    qtbot.waitUntil(window.isWindowModified, timeout=5000)  # found by the periodic check
    path = tmp_path / "net.mlcalc.json"
    assert window.session.save_to(path)
    assert window.windowTitle() == f"net.mlcalc.json[*] — {TITLE}" and not window.isWindowModified()
    assert recent_files() == [str(path.resolve())]
    window.backprop.set_weights({"w11_2": 1.0})
    assert window.session.refresh_modified() and window.isWindowModified()
    window.backprop.set_weights({"w11_2": 1.5})  # back to what the file holds
    assert not window.session.refresh_modified()


def test_a_saved_session_opens_as_it_was_saved(window, tmp_path):
    window.backprop.set_weights({"w11_2": 1.5, "w10_1": -0.25})
    window.tabs.setCurrentWidget(window.backprop)
    path = tmp_path / "net.mlcalc.json"
    assert window.session.save_to(path)
    saved = session.load(path)
    assert saved["window"]["tab"] == "backprop"
    assert set(saved["panels"]) >= {"backprop"}
    window.backprop.set_weights({"w11_2": -2.0})
    window.tabs.setCurrentWidget(window.surface)
    assert window.session.open_file(path)
    assert _weight(window) == 1.5 and window.backprop.session_state()["weights"]["w10_1"] == -0.25
    assert window.tabs.currentWidget() is window.backprop
    assert not window.isWindowModified() and window.session.path == path


@pytest.mark.parametrize("content, fragment", [
    (b'{"format": "mlcalc-session", "format_version": 2, "panels": {', "ends too early"),
    (b"[" * 10_000, "levels deep"),
    (b'{"format": "mlcalc-session", "format_version": 9, "panels": {}}', "made by a newer version"),
    (b'{"format": "mlcalc-session", "format_version": 2, "panels": {"backprop": {"lr": "fast"}}}',
     "panels.backprop.lr: expected a number, got 'fast'"),
])
def test_a_bad_file_changes_nothing_and_says_why(window, tmp_path, content, fragment):
    window.backprop.set_weights({"w11_2": 1.5})
    window.session.refresh_modified()
    before = window.session.panel_states()["backprop"]
    path = tmp_path / "bad.mlcalc.json"
    path.write_bytes(content)
    assert not window.session.open_file(path)
    assert window.session.last_error.startswith("bad.mlcalc.json: ") and fragment in window.session.last_error
    assert window.session.panel_states()["backprop"] == before
    assert window.windowTitle() == f"Untitled[*] — {TITLE}" and window.isWindowModified()
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and fragment in boxes[-1].text()


def test_a_panel_refusing_its_state_rolls_back_those_restored_before_it(window):
    document = window.session_document()
    if "attention" not in document["panels"]:
        pytest.skip("the attention panel does not take part in sessions")
    before = window.session.panel_states()["backprop"]
    document["panels"]["backprop"]["weights"]["w11_2"] = 2.5  # restored first, and valid
    document["panels"]["attention"]["k"] = -5
    assert not window.open_session_document(document)
    assert "panels.attention.k: expected a whole number" in window.session.last_error
    assert window.session.panel_states()["backprop"] == before


def test_a_malicious_expression_in_a_file_is_refused_and_never_run(window, tmp_path):
    if not hasattr(window.surface, "session_state"):
        pytest.skip("the surface panel does not take part in sessions yet")
    marker = tmp_path / "pwned"
    document = window.session_document()
    state = document["panels"]["surface"]
    keys = [k for k, v in state.items() if v == window.surface.settings.text]
    assert keys, "the surface state holds its expression as text"
    state[keys[0]] = f"__import__('os').system('touch {marker}')"
    before = window.session.panel_states()["surface"]
    path = tmp_path / "attack.mlcalc.json"
    session.save(path, document)
    assert not window.session.open_file(path)
    assert "panels.surface" in window.session.last_error
    assert not marker.exists() and window.session.panel_states()["surface"] == before


def test_open_session_document_checks_what_a_file_would_get(window):
    assert not window.open_session_document({"format": session.FORMAT, "format_version": 9, "panels": {}})
    assert "newer version" in window.session.last_error
    assert not window.open_session_document({"format": session.FORMAT, "format_version": 2,
                                             "panels": {"backprop": {"x1": math.nan}}})
    assert "panels.backprop.x1: expected a finite number" in window.session.last_error


def test_new_session_brings_the_defaults_back(window):
    default = _weight(window)
    window.backprop.set_weights({"w11_2": default + 1})
    assert window.session.new_session()
    assert _weight(window) == default and window.windowTitle() == f"Untitled[*] — {TITLE}"


def test_a_failed_save_keeps_the_session_as_it_was(window, tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    window.backprop.set_weights({"w11_2": 1.5})
    window.session.refresh_modified()
    assert not window.session.save_to(tmp_path / "plain" / "s.mlcalc.json")
    assert "a part of the folder's path is a file, not a folder" in window.session.last_error
    assert window.session.path is None and window.isWindowModified()


def test_recent_files_keep_the_newest_eight_that_still_exist(window, tmp_path):
    paths = [tmp_path / f"s{i}.mlcalc.json" for i in range(10)]
    for path in paths:
        assert window.session.save_to(path)
    assert recent_files() == [str(p.resolve()) for p in reversed(paths[2:])]
    paths[9].unlink()
    assert recent_files()[0] == str(paths[8].resolve())
    window.session._fill_recent_menu()
    names = [a.text() for a in window.session.recent_menu.actions() if a.text()]
    assert names[:7] == [p.name for p in reversed(paths[2:9])] and names[-1] == "Clear list"
    window.session.recent_menu.actions()[-1].trigger()
    assert recent_files() == []


def test_the_examples_menu_lists_titles_and_opens_them_untitled(window, tmp_path, monkeypatch):
    folder = tmp_path / "examples"
    monkeypatch.setattr(session_controller, "EXAMPLES_DIR", folder)
    window.session._fill_examples_menu()
    assert [a.text() for a in window.session.examples_menu.actions()] == ["(no examples installed)"]
    folder.mkdir()
    example = folder / "saddle.json"
    session.save(example, {"format": session.FORMAT, "format_version": 2, "title": "A saddle tour",
                           "panels": {"backprop": {"weights": {"w11_2": 0.25}}}})
    (folder / "broken.json").write_bytes(b"{")
    original = example.read_bytes()
    window.session._fill_examples_menu()
    actions = {a.text(): a for a in window.session.examples_menu.actions()}
    assert actions["A saddle tour"].isEnabled() and not actions["broken"].isEnabled()
    assert "ends too early" in actions["broken"].statusTip()
    actions["A saddle tour"].trigger()
    assert _weight(window) == 0.25
    assert window.windowTitle() == f"A saddle tour[*] — {TITLE}" and window.session.path is None
    assert window.session_document()["title"] == "A saddle tour"
    window.backprop.set_weights({"w11_2": 0.5})
    assert window.session.save_to(tmp_path / "mine.mlcalc.json")
    assert example.read_bytes() == original


def test_the_window_layout_comes_back(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    splitter = window.backprop.findChildren(QSplitter)[0]
    splitter.setSizes([100, 500])
    window.tabs.setCurrentWidget(window.lsh)
    document = window.session_document()
    assert document["window"]["tab"] == "lsh"
    sizes = splitter.sizes()
    splitter.setSizes([500, 100])
    window.tabs.setCurrentWidget(window.surface)
    assert window.open_session_document(document)
    assert window.tabs.currentWidget() is window.lsh and splitter.sizes() == sizes


def test_autosave_writes_only_changes_it_does_not_hold_and_a_save_removes_it(window, data_dir, tmp_path):
    assert not window.session.autosave() and not _recovery(data_dir).exists()
    window.backprop.set_weights({"w11_2": 1.5})
    assert window.session.autosave()
    assert session.load(_recovery(data_dir))["panels"]["backprop"]["weights"]["w11_2"] == 1.5
    assert not window.session.autosave()  # nothing new
    window.backprop.set_weights({"w11_2": _weight(window) + 0.5})
    assert window.session.autosave()
    assert window.session.save_to(tmp_path / "s.mlcalc.json")
    assert not _recovery(data_dir).exists()


def test_autosave_runs_on_its_timer(qtbot, data_dir, monkeypatch):
    monkeypatch.setenv("MLCALC_AUTOSAVE_SECONDS", "0.2")
    window = _window(qtbot, data_dir)
    window.backprop.set_weights({"w11_2": 1.5})
    qtbot.waitUntil(_recovery(data_dir).exists, timeout=5000)


def test_closing_with_unsaved_changes_keeps_them_for_the_next_start(window, qtbot, data_dir,
                                                                     monkeypatch):
    window.backprop.set_weights({"w11_2": 1.5})
    window.close()  # no question: closing never waits
    assert _recovery(data_dir).exists()
    monkeypatch.setenv("MLCALC_RECOVERY", "restore")
    again = _window(qtbot, data_dir)
    again.offer_recovery()
    assert again.backprop.settings.weights["w11_2"] == 1.5 and again.isWindowModified()


def test_closing_cleanly_removes_the_recovery_file(window, data_dir):
    window.backprop.set_weights({"w11_2": 1.5})
    assert window.session.autosave()
    window.backprop.set_weights({"w11_2": 0.8})  # the default again: nothing unsaved
    window.close()
    assert not _recovery(data_dir).exists()


def test_a_second_window_leaves_the_first_ones_recovery_alone(window, qtbot, data_dir):
    second = _window(qtbot, data_dir)
    assert window.session.recovery is not None and second.session.recovery is None
    second.backprop.set_weights({"w11_2": 1.5})
    assert not second.session.autosave() and not _recovery(data_dir).exists()


def _crashed_run(data_dir, weight: float) -> None:
    """What a killed run leaves behind: a recovery file holding an edit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    session.save(_recovery(data_dir), {"format": session.FORMAT, "format_version": 2,
                                       "panels": {"backprop": {"weights": {"w11_2": weight}}},
                                       "window": {"tab": "backprop"}})


def test_recovery_restore_shows_the_edits_as_unsaved(qtbot, data_dir, monkeypatch):
    _crashed_run(data_dir, 2.75)
    monkeypatch.setenv("MLCALC_RECOVERY", "restore")
    window = _window(qtbot, data_dir)
    window.offer_recovery()
    assert _weight(window) == 2.75 and window.tabs.currentWidget() is window.backprop
    assert window.windowTitle() == f"Recovered session[*] — {TITLE}" and window.isWindowModified()
    assert _recovery(data_dir).exists()  # kept until the changes are saved or the app exits


def test_recovery_discard_removes_the_file(qtbot, data_dir, monkeypatch):
    _crashed_run(data_dir, 2.75)
    monkeypatch.setenv("MLCALC_RECOVERY", "discard")
    window = _window(qtbot, data_dir)
    default = _weight(window)
    window.offer_recovery()
    assert _weight(window) == default and not _recovery(data_dir).exists()


def test_recovery_asks_and_autosave_waits_for_the_answer(qtbot, data_dir):
    _crashed_run(data_dir, 2.75)
    window = _window(qtbot, data_dir)
    window.offer_recovery()
    box = window.session.recovery_box
    assert box.isVisible() and "did not close normally" in box.text()
    window.backprop.set_weights({"w11_2": -1.0})
    assert not window.session.autosave()  # the file still holds the crashed run's edits
    next(b for b in box.buttons() if b.text() == "Restore").click()
    assert _weight(window) == 2.75


def test_an_unreadable_recovery_file_is_reported_and_removed(qtbot, data_dir, monkeypatch):
    data_dir.mkdir(parents=True)
    _recovery(data_dir).write_bytes(b'{"format": "mlcalc-session"')
    monkeypatch.setenv("MLCALC_RECOVERY", "restore")
    window = _window(qtbot, data_dir)
    window.offer_recovery()
    assert "The automatic save is unreadable: the file ends too early" in window.session.last_error
    assert not _recovery(data_dir).exists()


_values = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=12) \
    | st.lists(st.floats(), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(["backprop", "attention"]), st.text(max_size=10)
                                  | st.sampled_from(["x1", "lr", "weights", "pair", "path", "k", "layer",
                                                     "text", "mask", "selected", "view"]), _values),
                        min_size=1, max_size=4))
def test_fuzzed_panel_states_open_whole_or_not_at_all(window, changes):
    reference = window.session_document()
    document = json.loads(json.dumps(reference))
    for key, name, value in changes:
        if key in document["panels"]:
            document["panels"][key][name] = value
    before = window.session.panel_states()["backprop"]
    if window.open_session_document(document):
        session.decode(session.encode(window.session_document()))  # and it saves as a valid file
    else:
        assert window.session.last_error.startswith("Untitled: panels.")
        assert window.session.panel_states()["backprop"] == before
    assert window.open_session_document(reference)


def test_file_export_of_an_animation_shows_progress_and_can_be_cancelled(window, qtbot, tmp_path,
                                                                         monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QProgressDialog

    descent = window.descent
    window.tabs.setCurrentWidget(descent)
    qtbot.waitUntil(lambda: bool(descent.trajectories) and not descent.runner.busy, timeout=30000)
    descent.pause()
    gif_filter = next(f for f, (_view, suffix) in EXPORT_FILTERS.items() if suffix == ".gif")
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(tmp_path / "race"), gif_filter))
    values = []
    monkeypatch.setattr(QProgressDialog, "setValue", lambda dialog, value: values.append(value))
    window.export_dialog()
    assert (tmp_path / "race.gif").stat().st_size > 0
    assert values == sorted(values) and 0 < values[0] <= 500 < values[-1] <= 1000
    assert window.statusBar().currentMessage().startswith("Saved")
    monkeypatch.setattr(QProgressDialog, "wasCanceled", lambda dialog: len(values) > 3)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(tmp_path / "other.gif"), gif_filter))
    window.export_dialog()
    assert window.statusBar().currentMessage() == "Export cancelled; nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["race.gif"]
