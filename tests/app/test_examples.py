"""The example sessions of Help > Examples: each opens whole, shows its story's panel, and
every panel then holds exactly the state the file describes."""

from __future__ import annotations

import pytest

from app import session
from app.main_window import MainWindow
from app.session_controller import EXAMPLES_DIR, examples

FILES = sorted(EXAMPLES_DIR.glob("*.json"))


def test_there_is_an_example_for_each_seeds_story():
    titles = {title for title, _, error in examples() if not error}
    assert len(titles) == len(FILES) >= 5
    for words in ("Saddle", "Dead ReLU", "Attention sink", "Real landscape", "LSH"):
        assert any(words in t for t in titles), words


@pytest.mark.qt_log_ignore("This plugin does not support")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_example_opens_exactly(path, qtbot, tmp_path):
    document = session.load(path)
    assert document["title"] and document["description"]
    window = MainWindow(recovery_dir=tmp_path)
    qtbot.addWidget(window)
    assert window.session.open_example(path), window.session.last_error
    key = document["window"]["tab"]
    assert window.tabs.currentWidget() is window.session.panels[key]
    for name, state in document["panels"].items():
        assert window.session.panels[name].session_state() == state, name
    assert window.session.path is None  # untitled: saving never overwrites the example
    assert document["title"] in window.windowTitle()
    assert document["description"] in window.statusBar().currentMessage()
