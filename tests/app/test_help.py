"""Per-panel help: every panel has equations and a guide, every citation is one the code
implementing it makes too, the markup is well formed, and the window opens once and is
reused."""

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QTextBrowser, QWidget

from app import help as helpmod
from app.panels.attention import AttentionPanel
from app.panels.backprop import BackpropPanel
from app.panels.descent import DescentPanel
from app.panels.lsh import LSHPanel
from app.panels.playground import PlaygroundPanel
from app.panels.surface import SurfacePanel

TAB_ORDER = (SurfacePanel, DescentPanel, BackpropPanel, PlaygroundPanel, AttentionPanel, LSHPanel)
VOID_TAGS = {"br", "hr", "img", "meta"}
# "eq. 6", "eq. (26)", "eqs. 17-20", "eqs. 38-39 and 41-42", "eqs. 16, 23, 26": the list after
# "eq."/"eqs." runs over numbers, dashes, commas, "and" and brackets.
CITED = re.compile(r"\beqs?\.\s*((?:\(?\d+\)?|\s*[-–,]\s*|\s+and\s+)+)")


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"module {module} not found"
    return Path(spec.origin).read_text(encoding="utf-8")


def cited_numbers(text: str) -> set[int]:
    """Every equation number a text cites, ranges expanded."""
    found: set[int] = set()
    for match in CITED.finditer(text):
        chunk = match.group(1).replace("(", " ").replace(")", " ")
        for lo, hi in re.findall(r"(\d+)(?:\s*[-–]\s*(\d+))?", chunk):
            found.update(range(int(lo), int(hi or lo) + 1))
    return found


def test_cited_numbers_reads_lists_and_ranges():
    text = "eq. (6) of seed 003; eqs. 38-39 and 41-42; eqs. 16, 23, 26; see eq. 9 (after)"
    assert cited_numbers(text) == {6, 38, 39, 41, 42, 16, 23, 26, 9}
    assert cited_numbers("requires 3 equations") == set()


def test_keys_follow_the_tabs_and_their_titles():
    assert helpmod.HELP_KEYS == ("surface", "descent", "backprop", "playground", "attention", "lsh")
    assert tuple(helpmod.HELP_TITLES[k] for k in helpmod.HELP_KEYS) == tuple(c.title for c in TAB_ORDER)
    for key, cls in zip(helpmod.HELP_KEYS, TAB_ORDER):
        assert helpmod.key_for_panel(SimpleNamespace(title=cls.title)) == key
    with pytest.raises(ValueError, match="no help for a panel titled"):
        helpmod.key_for_panel(object())


@pytest.mark.parametrize("key", helpmod.HELP_KEYS)
def test_every_panel_has_equations_and_a_guide(key):
    page = helpmod.PANELS[key]
    assert page.equations and page.steps and page.controls and page.look_for
    html = helpmod.help_html(key)
    for heading in ("Equations", "What to do", "Mouse and keys", "What to look for", "Sources"):
        assert f"<h3>{heading}</h3>" in html
    for eq in page.equations:
        assert eq.formula in html and eq.meaning in html and eq.sources and eq.modules


@pytest.mark.parametrize("key", helpmod.HELP_KEYS)
def test_every_citation_is_made_by_the_implementing_code(key):
    for eq in helpmod.PANELS[key].equations:
        text = "\n".join(_source(m) for m in eq.modules)
        for src in eq.sources:
            if src.paper:
                assert src.paper in helpmod.PAPERS
                assert src.paper in text, f"{eq.modules} never cite {src.paper} ({eq.formula})"
                continue
            assert src.seed in helpmod.SEEDS
            if src.numbers:
                # Only seed 003 numbers its equations; the engine's "eq." always means its.
                assert max(src.numbers) <= helpmod.SEED_EQUATION_COUNTS[src.seed]
                missing = set(src.numbers) - cited_numbers(text)
                assert not missing, f"{eq.modules} never cite eq. {sorted(missing)} ({eq.formula})"
            else:
                assert src.section, "a seed without equation numbers is cited by its heading"
                assert f"seed {src.seed}" in text.lower(), f"{eq.modules} never cite seed {src.seed}"


def test_the_equations_of_seed_003_the_backprop_engine_walks_are_all_in_the_backprop_help():
    from engine import backprop

    record = backprop.three_unit_pass(1.0, 2.0, 3.0, dict.fromkeys(backprop.WEIGHT_NAMES, 0.5))
    walked = {int(step.equation.split()[-1]) for step in backprop.steps(record)}
    helped = {n for eq in helpmod.PANELS["backprop"].equations for s in eq.sources for n in s.numbers}
    assert walked <= helped


KEY_NAMES = {"Escape": "Esc", "Right": "→"}


@pytest.mark.parametrize("key,cls", list(zip(helpmod.HELP_KEYS, TAB_ORDER)))
def test_every_shortcut_of_the_panel_is_in_its_help(key, cls):
    source = _source(cls.__module__)
    call = re.search(r"panel_shortcuts\(self, \[(.*?)\]\)", source, re.DOTALL)
    assert call, f"{cls.__module__} binds no panel shortcuts"
    keys = [KEY_NAMES.get(k, k) for k in re.findall(r"Qt\.Key\.Key_(\w+)", call.group(1))]
    keys += re.findall(r"\(\"(\w)\",", call.group(1))
    assert keys
    documented = {t for what, _ in helpmod.PANELS[key].controls for t in re.split(r"[\s,/]+", what)}
    assert set(keys) <= documented, f"undocumented keys: {set(keys) - documented}"


class _Checker(HTMLParser):
    """Records markup errors: a closing tag that does not match the open one, or an open tag
    left at the end."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("key", helpmod.HELP_KEYS)
def test_the_markup_is_well_formed(key):
    html = helpmod.help_html(key)
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    # Every "<" starts a tag and every "&" an entity: text never holds a raw one.
    assert not re.search(r"<(?![a-zA-Z/])", html)
    assert not re.search(r"&(?!(?:[a-z]+|#\d+);)", html)
    text = "".join(checker.text)
    assert helpmod.HELP_TITLES[key] in text and "seed" in text


def test_unknown_panels_are_refused_with_the_known_ones(qtbot):
    with pytest.raises(ValueError, match="no help for panel 'nope'; panels: surface, descent"):
        helpmod.help_html("nope")
    with pytest.raises(ValueError, match="no help for panel"):
        helpmod.show_help(None, "nope")


@pytest.mark.qt_log_ignore("This plugin does not support")
def test_show_help_opens_a_non_modal_window_and_reuses_it(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    dialog = helpmod.show_help(parent, "backprop")
    assert isinstance(dialog, helpmod.HelpDialog)
    assert dialog.isVisible() and not dialog.isModal() and dialog.isSizeGripEnabled()
    assert dialog.width() >= 400 and dialog.height() >= 400
    browser = dialog.findChild(QTextBrowser)
    plain = browser.toPlainText()
    assert "Backpropagation" in plain and "seed 003 (Kautz), eqs. 17–20" in plain
    assert dialog.windowTitle() == "Help: Backpropagation"

    dialog.close()
    again = helpmod.show_help(parent, "lsh")
    assert again is dialog and again.isVisible()
    assert "Charikar (2002)" in browser.toPlainText()
    assert dialog.panel_box.currentData() == "lsh" and dialog.windowTitle() == "Help: LSH store"
    assert len(parent.findChildren(helpmod.HelpDialog)) == 1

    # The combo box switches panels inside the same window.
    dialog.panel_box.setCurrentIndex(helpmod.HELP_KEYS.index("attention"))
    dialog.panel_box.activated.emit(helpmod.HELP_KEYS.index("attention"))
    assert dialog.key == "attention" and "A = 1 − I" in browser.toPlainText()

    dialog.resize(900, 500)
    assert dialog.size().width() == 900


@pytest.mark.qt_log_ignore("This plugin does not support")
def test_a_window_without_parent_is_reused_too(qtbot):
    first = helpmod.show_help(None, "surface")
    qtbot.addWidget(first)
    assert helpmod.show_help(None, "descent") is first and first.key == "descent"
    first.close()


@pytest.mark.qt_log_ignore("This plugin does not support")
def test_f1_opens_the_current_tabs_help(qtbot, tmp_path):
    from app.main_window import MainWindow

    window = MainWindow(recovery_dir=tmp_path)
    qtbot.addWidget(window)
    action = next(a for a in window.menuBar().actions() if a.text() == "&Help").menu().actions()[0]
    assert action.shortcut().toString() == "F1"
    window.tabs.setCurrentWidget(window.descent)
    dialog = window.show_help()
    assert dialog.isVisible() and "Gradient descent" in dialog.windowTitle()
    window.tabs.setCurrentWidget(window.lsh)
    assert window.show_help() is dialog and "LSH" in dialog.windowTitle()
    dialog.close()
