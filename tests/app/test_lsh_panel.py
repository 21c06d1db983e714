"""The LSH panel: what it shows is what the engine's index holds. K and L re-bucket the points,
clicks add, select and (with Delete) remove them, a query shows the engine's probed buckets,
candidates and top-k with an honest recall, the MiniLM memory remembers and recalls tokens
across prompts, and exports and store files round-trip."""

import csv
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QImage

from app.export import ExportError
from app.panels import lsh as lsh_panel
from app.panels.lsh import MEMORY, POINTS, LSHPanel
from engine import attention, transformer
from engine import lsh as lsh_engine
from engine.lsh import LSHIndex

ROOT = Path(__file__).resolve().parents[2]


def shown_panel(qtbot) -> LSHPanel:
    """A new LSH panel, shown and exposed (as in a window's current tab)."""
    p = LSHPanel()
    qtbot.addWidget(p)
    p.resize(1500, 950)
    p.show()
    qtbot.waitExposed(p)
    return p


@pytest.fixture
def panel(qtbot):
    p = shown_panel(qtbot)
    yield p
    p.shutdown()


def test_a_hidden_panel_calls_no_engine_code_until_it_is_shown(qtbot, monkeypatch):
    """Built in a hidden tab (as at start-up), the panel leaves its drawing, which calls the
    engine's compiled code, until it is shown."""
    calls = []
    bucket_of = LSHIndex.bucket_of
    monkeypatch.setattr(LSHIndex, "bucket_of",
                        lambda self, item: calls.append(item) or bucket_of(self, item))
    p = LSHPanel()
    qtbot.addWidget(p)
    p.set_mode(POINTS)
    p.set_bits(3)
    assert calls == []
    p.resize(1500, 950)
    p.show()
    qtbot.waitExposed(p)
    assert calls  # the sectors of the 2-D view come from the engine
    assert len(p._sector_list) == 2 * 3
    p.shutdown()


def test_until_the_engine_code_is_loaded_the_shown_panel_says_so_and_then_draws(
        qtbot, held_lsh_warm_up):
    """The first start after an installation compiles the engine's code (about 30 s): the
    panel starts loading it on a worker and, shown before it is ready, says why its views
    are empty instead of freezing the window; it draws when the worker is done."""
    p = shown_panel(qtbot)
    assert p.warming_label.isVisible()
    assert "compiles" in p.warming_label.text()
    assert p._sector_list == []  # nothing drawn: drawing would wait for the compiler
    # nor can anything be asked of the store: the controls, the views and the keys are off
    assert not p.ready
    assert not p.bits_slider.isEnabled() and not p.histogram.isEnabled()
    assert not any(shortcut.isEnabled() for shortcut in p._shortcuts)
    with qtbot.waitSignal(p.engineReady, timeout=10_000):
        held_lsh_warm_up.set()
    assert not p.warming_label.isVisible()
    assert p.ready and p.bits_slider.isEnabled() and p.histogram.isEnabled()
    assert all(shortcut.isEnabled() for shortcut in p._shortcuts)
    assert len(p._sector_list) == 2 * p.store.index.n_bits
    p.shutdown()


def test_a_failed_warm_up_is_said_and_the_panel_draws_anyway(qtbot, monkeypatch):
    monkeypatch.setattr(lsh_engine, "is_warm", lambda: False)

    def failing_warm_up(_request):
        yield 0.5
        raise RuntimeError("no space left for the cache")

    monkeypatch.setattr(lsh_panel, "_warm_engine", failing_warm_up)
    p = shown_panel(qtbot)
    qtbot.waitUntil(lambda: "no space left" in p.warming_label.text(), timeout=10_000)
    assert p.warming_label.isVisible()
    assert len(p._sector_list) == 2 * p.store.index.n_bits
    assert p.ready and p.bits_slider.isEnabled()
    p.shutdown()


WARMED_PANEL_SCRIPT = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
from app import style
style.configure_pyqtgraph()
import numpy as np
from engine import lsh, _lsh_kernels
from numba.core.dispatcher import Dispatcher
from app.panels.lsh import LSHPanel

def census():
    return {n: len(f.overloads) for n, f in vars(_lsh_kernels).items() if isinstance(f, Dispatcher)}

lsh.warm_up()
before = census()
p = LSHPanel()
p.resize(1200, 800)
p.show()
app.processEvents()
added = [p.add_point(*xy) for xy in ((1.0, 0.2), (-0.5, 0.8), (0.3, -1.0), (2.0, 2.0))]
p.set_bits(5)
p.set_tables(3)
p.set_probes(2)
p.query_point(0.7, 0.1)
p.query_entry(added[1])
p.select(added[0])
p.delete_selected()
p.remove([added[2]])
rng = np.random.default_rng(0)
ids = p.remember([(v, {"token": str(i)}) for i, v in enumerate(rng.standard_normal((40, 384)))])
p.recall(rng.standard_normal((3, 384)))
p.recall(rng.standard_normal(384).astype(np.float32))
p.set_mode("minilm")
app.processEvents()
p.remove(ids[:3])
p.set_mode("points")
app.processEvents()
after = census()
print("NEW", {n: after[n] - before.get(n, 0) for n in after if after[n] != before.get(n, 0)})
p.shutdown()
"""


def test_after_the_warm_up_the_panels_actions_compile_nothing(tmp_path):
    """warm_up() (the start-up worker's job) loads every specialisation the panel's own
    calls need: in a fresh interpreter, clicks, K/L/probe changes, queries, deletes and the
    token memory then compile no new kernel on the GUI thread."""
    script = tmp_path / "warmed.py"
    script.write_text(WARMED_PANEL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "NEW {}" in out.stdout, out.stdout


def _scene_pos(view, x, y):
    return view.mapFromScene(view.plot.vb.mapViewToScene(QPointF(x, y)))


def click(qtbot, view, x, y, shift=False):
    """A real left click on a plot at data coordinates (x, y)."""
    modifier = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier,
                     _scene_pos(view, x, y))


def exact_recall(index, query, k, found):
    """recall@k of ``found`` against brute-force cosine search over every stored vector."""
    ids = np.sort(index.ids())
    vectors = np.array([index.vector(int(i)) for i in ids])
    cos = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    best = ids[np.lexsort((ids, -cos))[:k]]
    return len(set(best.tolist()) & set(np.asarray(found).tolist())), min(k, ids.size)


def test_changing_k_and_l_rebuckets_the_points(panel):
    panel.add_random_points(50)
    for n_bits, n_tables, table in ((3, 2, 1), (6, 5, 4), (1, 1, 0), (4, 3, 2)):
        panel.set_bits(n_bits)
        panel.set_tables(n_tables)
        panel.set_table(table)
        index = panel.store.index
        assert (index.n_bits, index.n_tables, len(index)) == (n_bits, n_tables, 50)
        view = panel.plane
        expected = [int(index.bucket_of(int(i))[table]) for i in view.ids]
        assert sorted(view.ids.tolist()) == sorted(index.ids().tolist())
        assert view.keys.tolist() == expected
        shown = [brush.color().name() for brush in view.points.data["brush"]]
        assert shown == [QColor(panel.bucket_colors[key]).name() for key in expected]
        # Each point sits in the sector of its bucket: K lines, 2K sectors (K = 1: two halves).
        assert len(view.lines.xData) == 2 * n_bits
        sectors = panel._sector_list
        assert len(sectors) == 2 * n_bits
        for (x, y), key in zip(view.xy, expected):
            angle = math.atan2(y, x) % (2 * math.pi)
            inside = [k for start, end, k in sectors
                      if start <= angle < end or start <= angle + 2 * math.pi < end]
            assert inside == [key]
        # The bucket list and the histogram are the engine's.
        rows = [(int(panel.buckets.item(r, 0).text()), int(panel.buckets.item(r, 2).text()))
                for r in range(panel.buckets.rowCount())]
        assert all(index.members(table, key).size == size for key, size in rows)
        assert sum(size for _, size in rows) == 50
        histogram = index.stats().tables[table].histogram
        assert dict(zip(panel.histogram.sizes.tolist(), panel.histogram.counts.tolist())) == {
            s: int(histogram[s]) for s in range(1, histogram.size) if histogram[s]}
        assert f"K = {n_bits}" == panel.bits_label.text()


def test_clicks_add_and_select_points_and_delete_removes_them(panel, qtbot):
    view = panel.plane
    click(qtbot, view, 0.6, 0.4)
    click(qtbot, view, 0.5, 0.55)
    click(qtbot, view, -0.5, -0.3)
    store = panel.store
    assert store.index.ids().tolist() == [0, 1, 2]
    np.testing.assert_allclose(store.index.vector(0), [0.6, 0.4], atol=0.02)
    np.testing.assert_allclose(store.index.vector(2), [-0.5, -0.3], atol=0.02)
    panel.add_random_points(20)

    click(qtbot, view, *store.index.vector(0))  # on a point: selects, adds nothing
    assert panel.selected_id == 0 and len(store) == 23
    assert view.marked(view.selected) == {0}
    qtbot.mouseMove(view.viewport(), _scene_pos(view, *store.index.vector(0)))
    qtbot.waitUntil(lambda: view.tip.isVisible())
    assert view.tip.toPlainText().startswith("id 0 ")

    # Its bucket, clicked in the list, lists it; a query there finds it.
    key = int(store.index.bucket_of(0)[0])
    row = next(r for r in range(panel.buckets.rowCount())
               if int(panel.buckets.item(r, 0).text()) == key)
    cell = panel.buckets.visualItemRect(panel.buckets.item(row, 1)).center()
    qtbot.mouseClick(panel.buckets.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert panel.selected_bucket == key
    members = [panel.members.item(i).data(Qt.ItemDataRole.UserRole)
               for i in range(panel.members.count())]
    assert 0 in members and members == store.index.members(0, key).tolist()
    click(qtbot, view, 0.61, 0.41, shift=True)
    assert panel.result is not None and 0 in panel.result.ids[0].tolist()
    assert len(store) == 23  # Shift+click queries, it adds nothing

    panel.select(0)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow, timeout=5000)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert 0 not in store.index and len(store) == 22
    members = [panel.members.item(i).data(Qt.ItemDataRole.UserRole)
               for i in range(panel.members.count())]
    assert 0 not in members and members == store.index.members(0, key).tolist()
    assert 0 not in panel.result.ids[0].tolist()
    assert 0 not in panel.result.candidates[0].tolist()
    assert 0 not in view.ids.tolist() and panel.selected_id is None
    # Backspace deletes too; with nothing selected it only says so.
    panel.select(1)
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert 1 not in store.index
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert len(store) == 21
    # Esc clears the query.
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert panel.result is None and not view.marked(view.stars)


def test_a_2d_query_shows_the_engines_candidates_top_k_and_recall(panel, qtbot):
    panel.add_random_points(60)
    panel.set_probes(1)
    panel.set_k(5)
    with qtbot.waitSignal(panel.queried, timeout=1000):
        panel.query_point(0.3, -0.7)
    index = panel.store.index
    q = np.array([0.3, -0.7])
    ids, scores = index.query(q, 5, 1)
    view = panel.plane
    np.testing.assert_array_equal(panel.result.ids[0], ids)
    np.testing.assert_allclose(panel.result.scores[0], scores)
    assert view.marked(view.stars) == set(ids.tolist())
    probed = index.probe_buckets(q, 1)
    candidates = set()
    for t in range(index.n_tables):
        for key in probed[t]:
            candidates |= set(index.members(t, int(key)).tolist())
    assert view.marked(view.rings) == candidates
    assert len(candidates) == index.candidate_counts(q[None], 1)[0]
    hits, wanted = exact_recall(index, q, 5, ids)
    assert (panel.result.hits, panel.result.wanted) == (hits, wanted)
    assert f"recall@5 = {hits}/{wanted}" in panel.query_label.text()
    # The query's sector and its probe are shaded darker than the rest.
    dark = {key for item, key in view.sectors if item.brush().color().alpha() > 100}
    assert dark == {int(k) for k in probed[0] if k >= 0} & set(view.sector_keys())

    # A query whose bucket is empty: the engine's reason, in red, under the query.
    panel.clear_store()
    panel.set_bits(16)
    panel.set_tables(1)
    panel.set_probes(0)
    panel.add_point(1.0, 0.0)
    panel.query_point(-1.0, 0.05)
    reason = panel.store.index.explain_empty(np.array([-1.0, 0.05]), 0)
    assert reason and reason.startswith("K = 16:")
    assert reason in panel.diagnostic_label.text()
    assert "b2182b" in panel.diagnostic_label.styleSheet()
    assert panel.result.ids[0].size == 0


def _top_tokens(model, text, k):
    out = model.encode(text)
    specials = [i for i, w in enumerate(out.word_ids) if w is None]
    chosen, _, _ = attention.select_important_tokens(out.attentions, k, "elementwise", specials)
    return [(out.hidden_states[-1][i], {"token": out.tokens[i], "sentence": text})
            for i in chosen]


def test_remember_then_recall_finds_the_related_tokens_across_prompts(panel):
    try:
        model = transformer.load_minilm()
    except transformer.ModelUnavailable:
        pytest.skip("needs all-MiniLM-L6-v2: " + transformer.INSTALL_COMMAND)
    first = "The astronaut repaired the satellite during a long spacewalk."
    other = "Grandmother baked an apple pie for the family dinner."
    paraphrase = "A spacewalking astronaut fixed a broken satellite in orbit."
    ids = panel.remember(_top_tokens(model, first, 4) + _top_tokens(model, other, 4))
    assert len(ids) == 8 and len(panel.memory) == 8
    assert len(panel.stores[POINTS]) == 0 and panel.mode == POINTS  # the 2-D store is apart
    query = _top_tokens(model, paraphrase, 4)
    hits = panel.recall(np.array([v for v, _ in query]), k=4)
    assert len(hits) == 4
    assert all(payload["sentence"] == first for payload, _ in hits)
    assert {"astronaut", "satellite"} <= {payload["token"] for payload, _ in hits}
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.8
    # "fixed" alone recalls "repaired", its meaning in the other prompt.
    fixed = next(v for v, p in query if p["token"] == "fixed")
    assert panel.recall(fixed, k=1)[0][0] == {"token": "repaired", "sentence": first}
    # A wrong entry is refused whole and stores nothing.
    with pytest.raises(ValueError):
        panel.remember([(np.ones(384), {"token": "ok"}), (np.ones(10), {"token": "bad"})])
    assert len(panel.memory) == 8
    panel.memory.clear()
    assert panel.recall(fixed, k=3) == []


def test_exports_are_valid_and_the_store_file_loads_back(panel, tmp_path):
    panel.add_random_points(30)
    panel.set_tables(3)
    panel.query_point(0.2, 0.9)
    for name, view in (("main.png", "main"), ("hist.png", "histogram"),
                       ("collision.png", "collision")):
        image = QImage(str(panel.export(tmp_path / name, view=view)))
        assert image.width() > 200 and image.height() > 100
    for name, view in (("main.svg", "main"), ("hist.svg", "histogram"),
                       ("collision.svg", "collision")):
        assert "<svg" in panel.export(tmp_path / name, view=view).read_text()
    index = panel.store.index
    rows = list(csv.DictReader(panel.export(tmp_path / "b.csv", view="buckets").read_text()
                               .splitlines()))
    assert set(rows[0]) == {"table", "bucket", "size"}
    for t in range(index.n_tables):
        mine = [r for r in rows if int(r["table"]) == t + 1]
        assert sum(int(r["size"]) for r in mine) == 30
        assert all(index.members(t, int(r["bucket"])).size == int(r["size"]) for r in mine)
    loaded = LSHIndex.load(panel.export(tmp_path / "store.npz", view="store"))
    assert sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())
    assert (loaded.n_bits, loaded.n_tables) == (index.n_bits, index.n_tables)
    np.testing.assert_array_equal(loaded.hyperplanes, index.hyperplanes)
    with pytest.raises(ExportError):
        panel.export(tmp_path / "x.gif")


def test_opening_a_bad_store_file_says_why_and_keeps_the_store(panel, tmp_path):
    panel.add_random_points(25)
    good = panel.save_store(tmp_path / "good.npz")
    before, ids = panel.store.index, sorted(panel.store.index.ids().tolist())
    corrupted = tmp_path / "corrupted.npz"
    data = bytearray(good.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    corrupted.write_bytes(bytes(data))
    (tmp_path / "text.npz").write_text("not a store")
    other = LSHIndex(384, 2, 4)
    other.add([0], np.ones((1, 384)))
    other.save(tmp_path / "wide.npz")
    for name, said in (("corrupted.npz", ""), ("text.npz", ""), ("wide.npz", "dimension"),
                       ("missing.npz", "cannot read")):
        assert not panel.open_store(tmp_path / name)
        message = panel.file_message.text()
        assert message.startswith("Not opened:") and "unchanged" in message and said in message
        assert panel.store.index is before
        assert sorted(panel.store.index.ids().tolist()) == ids
    panel.clear_store()
    panel.set_bits(5)
    assert panel.open_store(good)
    assert sorted(panel.store.index.ids().tolist()) == ids
    assert panel.bits_slider.value() == before.n_bits and len(panel.plane.ids) == 25
    assert panel.add_point(0.3, 0.3) == max(ids) + 1  # ids keep increasing after a load


def test_the_open_dialogs_file_is_read_on_a_worker_and_then_shown(panel, qtbot, tmp_path,
                                                                    monkeypatch):
    """File > Open store… reads, checks and re-adds the file on a worker (seconds for a large
    store), and the window stays live; a refused file is said as a direct open says it."""
    panel.add_random_points(30)
    good = panel.save_store(tmp_path / "good.npz")
    ids = sorted(panel.store.index.ids().tolist())
    (tmp_path / "text.npz").write_text("not a store")
    panel.clear_store()
    readers = []
    load = lsh_engine.LSHIndex.load.__func__

    def spy(cls, path, dim=None):
        readers.append(threading.current_thread())
        return load(cls, path, dim)

    monkeypatch.setattr(lsh_engine.LSHIndex, "load", classmethod(spy))
    with qtbot.waitSignal(panel.open_runner.finished, timeout=20_000):
        panel.open_store_in_background(good)
        assert not panel.open_button.isEnabled() and "Opening good.npz" in panel.file_message.text()
    assert readers and readers[0] is not threading.main_thread()
    assert panel.open_button.isEnabled() and panel.file_message.text().startswith("Opened good.npz")
    assert sorted(panel.store.index.ids().tolist()) == ids and len(panel.plane.ids) == 30
    assert panel.add_point(0.3, 0.3) == max(ids) + 1  # ids keep increasing after a load
    before = panel.store
    with qtbot.waitSignal(panel.open_runner.failed, timeout=20_000):
        panel.open_store_in_background(tmp_path / "text.npz")
    message = panel.file_message.text()
    assert message.startswith("Not opened:") and "unchanged" in message
    assert panel.store is before and len(panel.store) == 31 and panel.open_button.isEnabled()


def test_minilm_memory_corpus_query_and_deleting_an_entry(panel, qtbot):
    with qtbot.waitSignal(panel.corpusLoaded, timeout=60000) as loaded:
        panel.set_mode(MEMORY)
    memory = panel.memory
    assert loaded.args[0] == len(memory) > 100
    payloads = [memory.payload(int(i)) for i in memory.index.ids()]
    assert all(set(p) == {"token", "sentence"} for p in payloads)
    assert {p["sentence"] for p in payloads} == set(lsh_panel.SAMPLE_CORPUS)
    assert not {"[CLS]", "[SEP]", "."} & {p["token"] for p in payloads}
    view = panel.pca
    assert len(view.ids) == len(memory)
    assert view.keys.tolist() == [int(memory.index.bucket_of(int(i))[0]) for i in view.ids]

    with qtbot.waitSignal(panel.queried, timeout=30000):
        panel.query_text("A kitten napped on the carpet near the fireplace.")
    result = panel.result
    assert len(result.spec.labels) == 3  # the three most important tokens
    assert panel.results.rowCount() == sum(ids.size for ids in result.ids) > 0
    assert view.marked(view.stars) == set().union(*(set(i.tolist()) for i in result.ids))
    assert len(view.query_labels) == 3
    top = int(result.ids[0][0])
    assert panel.results.item(0, 2).text() == memory.payload(top)["token"]
    hits = sum(exact_recall(memory.index, v, result.k, ids)[0]
               for v, ids in zip(result.spec.vectors, result.ids))
    assert hits == result.hits and f"recall@{result.k} = {hits}/" in panel.query_label.text()

    panel.results.selectRow(0)
    assert panel.selected_id == top
    # Backspace while typing a query edits the text; it deletes nothing.
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow, timeout=5000)
    panel.query_edit.setFocus()
    text = panel.query_edit.text()
    qtbot.keyClick(panel.query_edit, Qt.Key.Key_Backspace)
    assert panel.query_edit.text() == text[:-1] and top in memory.index
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert top not in memory.index
    assert top not in panel.result.ids[0].tolist() and top not in view.ids.tolist()


def test_reloading_the_corpus_drops_a_selected_corpus_token(panel, qtbot):
    with qtbot.waitSignal(panel.corpusLoaded, timeout=60000):
        panel.set_mode(MEMORY)
    chosen = int(panel.memory.index.ids()[0])
    panel.select(chosen)
    assert panel.selected_id == chosen and panel.delete_button.isEnabled()
    with qtbot.waitSignal(panel.corpusLoaded, timeout=60000):  # new ids for every token
        qtbot.mouseClick(panel.corpus_button, Qt.MouseButton.LeftButton)
    assert chosen not in panel.memory.index
    assert panel.selected_id is None and not panel.delete_button.isEnabled()
    assert panel.selection_label.text().startswith("Nothing selected")


def test_without_the_model_a_labelled_random_transformer_stands_in(qtbot, monkeypatch):
    def missing(path=None):
        raise transformer.ModelUnavailable("all-MiniLM-L6-v2 is not installed.")

    monkeypatch.setattr(transformer, "load_minilm", missing)
    p = LSHPanel(mode=MEMORY)
    qtbot.addWidget(p)
    qtbot.waitUntil(lambda: len(p.memory) > 0, timeout=30000)
    text = p.model_label.text()
    assert transformer.INSTALL_COMMAND in text and "random transformer" in text
    assert p.memory.dim == 384 and p.model_name == transformer.RANDOM_NAME
    p.shutdown()


def test_collision_plot_is_the_theory_with_the_engines_measurements(panel, qtbot):
    with qtbot.waitSignal(panel.collisionsMeasured, timeout=20000) as measured:
        panel.set_bits(4)
        panel.set_tables(3)
    theta_deg, rates = measured.args[0]
    index = panel.store.index
    np.testing.assert_allclose(
        rates, index.empirical_collision_rate(np.radians(theta_deg),
                                              lsh_panel.PAIRS[POINTS]))
    _, y = panel.collision.measured.getData()
    np.testing.assert_allclose(y, rates)
    cx, cy = panel.collision.index.getData()
    np.testing.assert_allclose(cy, (1 - (1 - (1 - np.radians(cx) / np.pi) ** 4) ** 3))
    tx, ty = panel.collision.table.getData()
    np.testing.assert_allclose(ty, (1 - np.radians(tx) / np.pi) ** 4)


def test_pca_of_many_vectors_gives_the_svds_directions_and_shares():
    """More vectors than dimensions: eigenvectors of the scatter matrix, not an SVD of the
    vectors (1.3 s for 30 000 MiniLM tokens); the same picture."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((600, 12)) * np.linspace(3.0, 0.5, 12)
    coords, components, mean, explained = lsh_panel.pca_2d(vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(unit - unit.mean(axis=0), full_matrices=False)
    for got, want in zip(components, vt[:2]):
        assert abs(abs(got @ want) - 1.0) < 1e-9
        assert got[np.argmax(np.abs(got))] > 0  # the sign rule
    np.testing.assert_allclose(explained, s[:2] ** 2 / np.sum(s**2), rtol=1e-9)
    np.testing.assert_allclose(coords, (unit - mean) @ components.T)
    few = lsh_panel.pca_2d(vectors[:8])  # fewer than dimensions: the SVD itself
    assert few[0].shape == (8, 2) and np.all(few[3] > 0)


def test_a_stores_pca_coordinates_follow_its_contents():
    """The coordinates are kept between redraws and recomputed after every change."""
    store = lsh_panel.LSHStore(8, lsh_panel.ModeSettings(n_bits=4, n_tables=2))
    rng = np.random.default_rng(8)
    ids = store.add(rng.standard_normal((40, 8)))
    first = store.pca()[0]
    assert store.pca()[0] is first and not first.flags.writeable  # kept, and read-only
    store.rebuild(5, 3, 1)  # other hyperplanes, the same vectors: the same picture
    assert store.pca()[0] is first
    store.remove(ids[:5])
    after, components, mean, _ = store.pca()
    _, vectors = store.contents()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert after.shape == (35, 2)
    np.testing.assert_allclose(after, (unit - mean) @ components.T)


def test_a_large_store_rebuilds_on_a_worker_when_the_slider_is_let_go(panel, qtbot,
                                                                      monkeypatch):
    """Up to LIVE_REBUILD vectors, dragging K rebuilds at every step, at once; beyond, the
    label follows the drag and the index is rebuilt once, when the slider is let go, on a
    worker thread with a progress bar, while the views keep the old index."""
    monkeypatch.setattr(lsh_panel, "LIVE_REBUILD", 100)
    monkeypatch.setattr(lsh_panel, "REBUILD_CHUNK", 16)
    builders = []
    add = LSHIndex.add
    monkeypatch.setattr(LSHIndex, "add", lambda self, *a, **kw: (
        builders.append(threading.current_thread()), add(self, *a, **kw))[1])
    panel.add_random_points(60)
    assert panel.bits_slider.hasTracking() and panel.tables_slider.hasTracking()
    panel.set_bits(4)  # small: rebuilt at once, here
    assert panel.store.index.n_bits == 4 and builders[-1] is threading.main_thread()
    panel.add_random_points(60)  # 120 > 100
    assert not panel.bits_slider.hasTracking() and not panel.tables_slider.hasTracking()
    before = panel.store.index
    slider = panel.bits_slider
    slider.setSliderDown(True)
    for value in (5, 6, 7):
        slider.setSliderPosition(value)  # what a drag does
        assert panel.bits_label.text() == f"K = {value}"
    assert panel.store.index is before and before.n_bits == 4  # not rebuilt during the drag
    builders.clear()
    slider.setSliderDown(False)  # let go
    assert panel.store.index is before  # the views keep the old index meanwhile
    assert panel.bits_label.text() == "K = 7" and panel.index_progress.isVisibleTo(panel)
    qtbot.waitUntil(lambda: panel.store.index is not before, timeout=10_000)
    assert panel.store.index.n_bits == 7 and panel.settings[POINTS].n_bits == 7
    assert builders and all(t is not threading.main_thread() for t in builders)
    assert len(builders) > 1  # added in chunks: a newer request can stop it between them
    qtbot.waitUntil(lambda: not panel.index_progress.isVisibleTo(panel))
    _, vectors = panel.store.contents()
    expected = [int(panel.store.index.bucket_of(v)[0]) for v in vectors]
    assert panel.store.keys()[:, 0].tolist() == expected
    panel.clear_store()
    assert panel.bits_slider.hasTracking()  # small again: live


def test_a_store_changed_during_its_rebuild_is_rebuilt_again_with_the_change(panel, qtbot,
                                                                           monkeypatch):
    """A point added and another deleted while the worker rebuilds: the index built from
    the contents as they were is not adopted; the rebuild runs again, and the index adopted
    holds the store as it is now."""
    monkeypatch.setattr(lsh_panel, "LIVE_REBUILD", 50)
    release = threading.Event()
    build = lsh_panel.build_index

    def held(request):
        release.wait(10)
        return (yield from build(request))

    for runner in panel.rebuild_runners.values():
        runner._function = held
    panel.add_random_points(80)
    try:
        panel.set_tables(3)
        assert panel.rebuild_runners[POINTS].busy
        new_id = panel.add_point(0.3, -0.7)
        doomed = int(panel.store.contents()[0][0])
        panel.remove([doomed])
        assert panel.store.index.n_tables == 2  # the old index still serves the views
    finally:
        release.set()
    qtbot.waitUntil(lambda: panel.store.index.n_tables == 3, timeout=10_000)
    index = panel.store.index
    assert new_id in index and doomed not in index and len(index) == 80
    ids, _ = panel.store.contents()
    assert sorted(index.ids().tolist()) == ids.tolist()
    assert not panel.rebuild_runners[POINTS].busy


def test_the_pca_view_draws_the_largest_buckets_in_colour_over_the_grey_rest(panel):
    """With more buckets than colours, the dots of the coloured buckets are drawn (each in
    its bucket's colour) above one grey layer holding every other dot."""
    panel.set_mode(MEMORY)
    x = np.random.default_rng(3).standard_normal((400, lsh_panel.MEMORY_DIM))
    panel.store.add(x, [{"token": f"t{i}", "sentence": "s"} for i in range(400)])
    panel.refresh()
    view = panel.pca
    table = panel.settings[MEMORY].table
    keys = dict(zip(view.ids.tolist(), view.keys.tolist()))
    coloured = view.points.data["data"].tolist()
    grey = view.others.data["data"].tolist()
    assert sorted(coloured + grey) == sorted(panel.store.index.ids().tolist())
    assert 0 < len(coloured) < 400 and len(panel.bucket_colors) < len(set(keys.values()))
    for ident, brush in zip(coloured, view.points.data["brush"]):
        assert brush.color().name() == QColor(panel.bucket_colors[keys[ident]]).name()
    assert not any(keys[ident] in panel.bucket_colors for ident in grey)
    assert view.points.zValue() > view.others.zValue()
    assert all(keys[i] == int(panel.store.index.bucket_of(i)[table]) for i in coloured[:20])
