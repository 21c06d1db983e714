"""Saved panel states: each of the backprop, playground, attention and LSH panels gives back
exactly the state it saved, through a session file's JSON, and shows the same numbers; a bad
state raises ValueError naming its key and leaves the panel as it was; texts are data."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import session
from app.panels import lsh as lsh_panel
from app.panels import playground
from app.panels.attention import AttentionPanel, AttentionSettings
from app.panels.backprop import BackpropPanel
from app.panels.lsh import MEMORY, POINTS, LSHPanel
from app.panels.playground import PlaygroundPanel
from engine import backprop, lsh

# Qt's offscreen platform notes that it ignores window size hints; nothing to fix here.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
WAIT = 60_000  # ms; every wait ends far sooner on an idle machine
EVIL = "__import__('os').system('touch pwned')"


def through_file(key: str, state: dict) -> dict:
    """``state`` as a session file holds it and gives it back (non-finite floats included)."""
    document = {"format": session.FORMAT, "format_version": session.FORMAT_VERSION,
                "panels": {key: state}}
    return session.decode(session.encode(document))["panels"][key]


def refused(panel, state: dict, key: str) -> None:
    """Restoring ``state`` raises a ValueError naming ``key`` and changes nothing."""
    before = panel.session_state()
    with pytest.raises(ValueError, match=f"^{key}"):
        panel.restore_session_state(state)
    assert panel.session_state() == before


def _made(qtbot, cls, **kwargs):
    panel = cls(**kwargs)
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    return panel


# -- backpropagation ---------------------------------------------------------------------------

@pytest.fixture
def backprop_pair(qtbot):
    a, b = _made(qtbot, BackpropPanel), _made(qtbot, BackpropPanel)
    for p in (a, b):
        qtbot.waitUntil(lambda p=p: p.surface is not None, timeout=WAIT)
    yield a, b
    a.shutdown()
    b.shutdown()


def _diagram_text(panel) -> list[str]:
    cards = [c.textItem.toPlainText() for c in panel.diagram.cards.values()]
    return cards + [t.textItem.toPlainText() for t in panel.diagram.edge_text.values()]


def test_backprop_state_round_trips_and_shows_the_same_network(backprop_pair, qtbot):
    a, b = backprop_pair
    a.set_inputs(x1=0.75, x2=-1.25, y=1.5)
    a.weight_sliders["w21_1"].setValue(0.6)
    a.lr_spin.setValue(0.1234)
    a.pair_boxes[0].setCurrentIndex(backprop.WEIGHT_NAMES.index("w10_2"))
    for _ in range(3):
        a.step()
    for _ in range(9):
        a.forward()
    a.backward()
    state = a.session_state()
    assert len(state["path"]) == 4 and state["position"] == 8 and state["lr"] == 0.1234
    with qtbot.waitSignal(b.lossSurfaceDrawn, timeout=WAIT):
        b.restore_session_state(through_file("backprop", state))
    assert b.session_state() == state
    assert b.record.loss == a.record.loss and dict(b.record.grad) == dict(a.record.grad)
    assert _diagram_text(b) == _diagram_text(a) and b.equation.text() == a.equation.text()
    assert [b.table.item(r, c).text() for r in range(9) for c in range(5)] == [
        a.table.item(r, c).text() for r in range(9) for c in range(5)]
    for name, slider in a.weight_sliders.items():
        assert b.weight_sliders[name].value() == slider.value()
    assert b.lr_spin.value() == 0.1234 and b.pair_boxes[0].currentData() == "w10_2"
    qtbot.waitUntil(lambda: a.surface.request == b.surface.request, timeout=WAIT)
    np.testing.assert_array_equal(b.surface.grid.z, a.surface.grid.z)
    for item in ("trail", "marker"):
        for x, y in zip(getattr(a, item).getData(), getattr(b, item).getData()):
            np.testing.assert_array_equal(x, y)


def test_backprop_missing_keys_take_defaults_and_unknown_keys_are_ignored(backprop_pair):
    a, b = backprop_pair
    default = b.session_state()
    a.set_inputs(x1=2.0)
    a.step()
    a.restore_session_state({"weights": {"w11_2": 1.5, "w99_9": 3.0}, "colour": "blue"})
    assert a.session_state() == {**default, "weights": {**default["weights"], "w11_2": 1.5}}


@pytest.mark.parametrize("change, key", [
    ({"x1": 3.5}, "x1"), ({"y": "2"}, "y"), ({"x2": math.nan}, "x2"),
    ({"weights": {"w11_1": math.inf}}, r"weights\.w11_1"), ({"weights": [1.0]}, "weights"),
    ({"lr": 0.0}, "lr"), ({"lr": 11.0}, "lr"), ({"pair": ["w11_1", "w11_1"]}, "pair"),
    ({"pair": ["w11_1", EVIL]}, r"pair\[1\]"), ({"pair": ["w11_1"]}, "pair"),
    ({"position": 23}, "position"), ({"position": -1}, "position"), ({"position": True}, "position"),
    ({"path": [[0.0, 1.0]] * 10_001}, "path"), ({"path": [[0.0, 1.0, 2.0]]}, r"path\[0\]"),
    ({"path": [[0.0, EVIL]]}, r"path\[0\]\[1\]"),
])
def test_a_bad_backprop_state_is_refused_whole(backprop_pair, change, key):
    a, _ = backprop_pair
    a.step()
    state = {**a.session_state(), "x1": -0.5, **change}
    refused(a, state, key)


def test_random_backprop_states_round_trip(backprop_pair):
    panel, _ = backprop_pair
    number = st.floats(-1e6, 1e6, allow_nan=False)
    states = st.fixed_dictionaries({
        "x1": st.floats(-3.0, 3.0), "x2": st.floats(-3.0, 3.0), "y": st.floats(-3.0, 3.0),
        "weights": st.fixed_dictionaries({name: number for name in backprop.WEIGHT_NAMES}),
        "lr": st.integers(1, 100_000).map(lambda k: round(k * 1e-4, 4)),
        "pair": st.lists(st.sampled_from(backprop.WEIGHT_NAMES), min_size=2, max_size=2,
                         unique=True),
        "position": st.integers(0, 22),
        "path": st.lists(st.lists(number, min_size=2, max_size=2), max_size=30),
    })

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(states)
    def check(state):
        panel.restore_session_state(through_file("backprop", state))
        assert panel.session_state() == state
        assert panel.position == state["position"]

    check()


def test_backprop_refuses_text_wherever_a_number_or_name_belongs(backprop_pair):
    panel, _ = backprop_pair
    keys = ("x1", "x2", "y", "lr", "position", "path", "pair", "weights")

    @settings(max_examples=40, deadline=None)
    @given(st.sampled_from(keys), st.text(max_size=60))
    def check(key, text):
        refused(panel, {key: text}, key)

    check()


# -- network playground ------------------------------------------------------------------------

@pytest.fixture
def playground_pair(qtbot):
    a, b = _made(qtbot, PlaygroundPanel), _made(qtbot, PlaygroundPanel)
    for p in (a, b):
        qtbot.waitUntil(lambda p=p: p.snapshot is not None, timeout=WAIT)
    yield a, b
    a.shutdown()
    b.shutdown()


def _restored(qtbot, panel, state):
    panel.restore_session_state(through_file("playground", state))
    qtbot.waitUntil(lambda: not panel.is_replaying and not panel.runner.busy, timeout=WAIT)


def _same_run(a, b):
    sa, sb = a.snapshot, b.snapshot
    assert (sb.step, sb.epoch, sb.status, sb.done) == (sa.step, sa.epoch, sa.status, sa.done)
    assert (sb.train_loss, sb.val_loss, sb.best_step) == (sa.train_loss, sa.val_loss, sa.best_step)
    for key, (steps, losses) in a.history.items():
        np.testing.assert_array_equal(b.history[key][0], steps)
        np.testing.assert_array_equal(b.history[key][1], losses)
    assert b.status_label.text() == a.status_label.text()


def test_playground_state_replays_the_same_training_run(playground_pair, qtbot):
    a, b = playground_pair
    a.set_settings(dataset="moons", hidden=(6, 5), method="adam", lr=0.01, batch_size=32,
                   dropout=0.1, l2=0.001, seed=7, patience=0, noise=0.1)
    a.speed_box.setCurrentIndex(a.speed_box.findData(10))
    a.play()
    qtbot.waitUntil(lambda: a.step_count > 300, timeout=WAIT)
    a.pause()
    qtbot.waitUntil(lambda: not a.runner.busy, timeout=WAIT)
    state = a.session_state()
    assert state["hidden"] == "6, 5" and state["speed"] == 10 and not state["ended"]
    _restored(qtbot, b, state)
    assert b.session_state() == state
    _same_run(a, b)
    np.testing.assert_array_equal(b.snapshot.decision, a.snapshot.decision)
    np.testing.assert_array_equal(b.map_image.image, a.map_image.image)
    for cell in a.unit_cells:
        np.testing.assert_array_equal(b.unit_image(*cell), a.unit_image(*cell))
    assert b.widths_edit.text() == "6, 5" and b.lr_label.text() == a.lr_label.text()
    assert b.dataset_box.currentData() == "moons" and b.seed_spin.value() == 7
    # The restored network goes on as the saved one would have.
    for p in (a, b):
        with qtbot.waitSignal(p.trained, timeout=WAIT):
            p.step()
    _same_run(a, b)


@pytest.mark.parametrize("changes, chunk_seconds", [
    # Diverges (its last step is not counted), replayed one step per chunk.
    ({"loss": "squared", "output": "identity", "lr": 100.0}, 0.0),
    ({"patience": 1, "lr": 3.0}, playground.REPLAY_SECONDS),  # stops early
])
def test_an_ended_playground_run_ends_the_same_way(playground_pair, qtbot, monkeypatch, changes,
                                                   chunk_seconds):
    a, b = playground_pair
    monkeypatch.setattr(playground, "REPLAY_SECONDS", chunk_seconds)
    a.set_settings(**changes)
    a.play()
    qtbot.waitUntil(lambda: a.snapshot.done, timeout=WAIT)
    qtbot.waitUntil(lambda: not a.runner.busy and not a.is_playing, timeout=WAIT)
    state = a.session_state()
    assert state["ended"]
    _restored(qtbot, b, state)
    assert b.session_state() == state
    _same_run(a, b)


def test_playground_waits_for_a_replay_before_playing(playground_pair, qtbot):
    _, b = playground_pair
    b.restore_session_state({"step": 5000, "patience": 0})
    assert b.is_replaying and b.session_state()["step"] == 5000
    b.play()
    b.step()
    assert not b.is_playing and "Replaying the saved run" in b.status_label.text()
    with qtbot.waitSignal(b.trained, timeout=WAIT, check_params_cb=lambda s: s.step == 0):
        b.reset()  # abandons the replay
    assert not b.is_replaying and b.session_state()["step"] == 0


@pytest.mark.parametrize("change, key", [
    ({"hidden": "8, x"}, "hidden"), ({"hidden": EVIL}, "hidden"), ({"hidden": 8}, "hidden"),
    ({"dataset": EVIL}, "dataset"), ({"activation": "exp"}, "activation"), ({"loss": None}, "loss"),
    ({"lr": 0.0}, "lr"), ({"lr": 1000.0}, "lr"), ({"noise": -0.1}, "noise"),
    ({"points": 19}, "points"), ({"points": 50.5}, "points"), ({"dropout": 0.95}, "dropout"),
    ({"speed": 7}, "speed"), ({"max_steps": 100, "step": 101}, "step"), ({"ended": "yes"}, "ended"),
    ({"method": ["adam"]}, "method"),
])
def test_a_bad_playground_state_is_refused_whole(playground_pair, qtbot, change, key):
    a, _ = playground_pair
    with qtbot.assertNotEmitted(a.networkReset, wait=50):
        refused(a, {**a.session_state(), **change}, key)


def test_playground_missing_keys_take_defaults(playground_pair, qtbot):
    a, b = playground_pair
    a.set_settings(dataset="spirals", seed=3)
    _restored(qtbot, a, {"dataset": "circles", "unknown": [1, 2]})
    assert a.session_state() == {**b.session_state(), "dataset": "circles"}


# -- attention ---------------------------------------------------------------------------------

@pytest.fixture
def attention_pair(qtbot):
    a = _made(qtbot, AttentionPanel, settings=AttentionSettings(text="The cat sat on the mat."))
    b = _made(qtbot, AttentionPanel, settings=AttentionSettings(text="Another text."))
    for p in (a, b):
        qtbot.waitUntil(lambda p=p: p.result is not None, timeout=WAIT)
    yield a, b
    a.shutdown()
    b.shutdown()


def test_attention_state_round_trips_and_shows_the_same_maps(attention_pair, qtbot):
    a, b = attention_pair
    with qtbot.waitSignal(a.encoded, timeout=WAIT):
        a.set_text("Attention lets every token\r\nlook at every other token.")
    a.pick(2, 5)
    a.set_k(4)
    a.sum_combo.setCurrentIndex(a.sum_combo.findData("all"))
    a.mask_combo.setCurrentIndex(a.mask_combo.findData("product"))
    a.special_check.setChecked(False)
    a.words_check.setChecked(True)
    a.select_token(4)
    a.side_tabs.setCurrentIndex(2)
    state = a.session_state()
    assert state["view"] == "masked" and state["selected"] == 4 and "\n" in state["text"]
    with qtbot.waitSignal(b.encoded, timeout=WAIT):
        b.restore_session_state(through_file("attention", state))
        assert b.session_state() == state  # at once, before the text is encoded
    assert b.session_state() == state
    assert b.result.output.tokens == a.result.output.tokens
    np.testing.assert_array_equal(b.map.matrix, a.map.matrix)
    np.testing.assert_array_equal(b.selection["B"], a.selection["B"])
    assert b.top_tokens == a.top_tokens and b.selection_label.text() == a.selection_label.text()
    assert b.readout.text() == a.readout.text() and b.map.row_box.isVisible()
    assert (b.layer_spin.value(), b.head_spin.value(), b.k_slider.value()) == (3, 6, 4)


def test_attention_text_from_a_file_is_only_tokenized(attention_pair, qtbot, tmp_path, monkeypatch):
    a, _ = attention_pair
    monkeypatch.chdir(tmp_path)
    with qtbot.waitSignal(a.encoded, timeout=WAIT):
        a.restore_session_state({"text": EVIL})
    assert not (tmp_path / "pwned").exists()
    assert a.result.output.text == EVIL and "import" in "".join(a.result.output.tokens)
    # Too long for the model: refused under the text box when encoded, as a typed one is.
    before = a.result
    a.restore_session_state({"text": "word " * 600})
    qtbot.waitUntil(lambda: bool(a.text_message.text()), timeout=WAIT)
    assert "512" in a.text_message.text() and a.result is before


@pytest.mark.parametrize("change, key", [
    ({"text": 12}, "text"), ({"text": "x" * 1_000_001}, "text"), ({"layer": -1}, "layer"),
    ({"head": 64}, "head"), ({"k": 0}, "k"), ({"k": 21}, "k"), ({"mask": EVIL}, "mask"),
    ({"sum_over": "heads"}, "sum_over"), ({"exclude_special": 1}, "exclude_special"),
    ({"selected": "3"}, "selected"), ({"selected": 512}, "selected"), ({"view": "3d"}, "view"),
])
def test_a_bad_attention_state_is_refused_whole(attention_pair, qtbot, change, key):
    a, _ = attention_pair
    with qtbot.assertNotEmitted(a.encoded, wait=100):
        refused(a, {**a.session_state(), **change}, key)


# -- LSH store ---------------------------------------------------------------------------------

@pytest.fixture
def lsh_pair(qtbot):
    a, b = _made(qtbot, LSHPanel), _made(qtbot, LSHPanel)
    yield a, b
    a.shutdown()
    b.shutdown()


def _same_stores(a, b) -> None:
    for mode in (POINTS, MEMORY):
        sa, sb = a.stores[mode], b.stores[mode]
        for x, y in zip(sa.contents(), sb.contents()):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(sa.keys(), sb.keys())
        np.testing.assert_array_equal(sa.index.hyperplanes, sb.index.hyperplanes)
        assert [sa.index.payload(int(i)) for i in sa.contents()[0]] == [
            sb.index.payload(int(i)) for i in sb.contents()[0]]


def _same_result(a, b) -> None:
    ra, rb = a.result, b.result
    for field in ("probed", "candidates", "ids", "scores", "exact", "exact_scores"):
        for x, y in zip(getattr(ra, field), getattr(rb, field)):
            np.testing.assert_array_equal(x, y)
    assert (rb.hits, rb.wanted, rb.spec.labels) == (ra.hits, ra.wanted, ra.spec.labels)


def test_lsh_points_state_round_trips_exactly(lsh_pair):
    a, b = lsh_pair
    a.add_random_points(50)
    a.add_point(0.123456789, -0.987654321)
    a.seed_spin.setValue(11)
    a.set_bits(5)
    a.set_tables(4)
    a.set_table(2)
    a.set_probes(3)
    a.set_k(7)
    a.remove([3, 17])
    a.add_random_points(10)
    a.query_point(0.4, -0.6)
    a.select_bucket(int(a.store.index.bucket_of(5)[2]))
    a.select(5)
    a.query_mode.setChecked(True)
    state = a.session_state()
    assert "hyperplanes" not in state[POINTS]  # the seed draws them again
    b.restore_session_state(through_file("lsh", state))
    assert b.session_state() == state
    _same_stores(a, b)
    _same_result(a, b)
    assert (b.selected_id, b.selected_bucket) == (5, a.selected_bucket)
    assert b.query_label.text() == a.query_label.text()
    assert b.plane.marked(b.plane.members) == a.plane.marked(a.plane.members)
    assert b.plane.sector_keys() == a.plane.sector_keys() and b.query_mode.isChecked()
    assert b.table_spin.value() == 3 and b.bits_label.text() == "K = 5"
    # The stores go on alike: the same next ids, the same random points, the same rebuild.
    for p in (a, b):
        p.add_random_points(5)
        p.set_bits(7)
    assert b.session_state() == a.session_state()
    _same_stores(a, b)


def test_lsh_memory_brings_back_remembered_tokens_and_the_corpus_by_name(lsh_pair, qtbot):
    a, b = lsh_pair
    with qtbot.waitSignal(a.corpusLoaded, timeout=WAIT):
        a.set_mode(MEMORY)
    rng = np.random.default_rng(5)
    remembered = a.remember([(rng.normal(size=384), {"token": f"t{i}", "sentence": "s"})
                             for i in range(3)])
    corpus = sorted(a._corpus_ids)
    a.remove(corpus[:4] + [remembered[1]])
    a.set_bits(10)
    a.query_entry(corpus[10])
    a.select(corpus[12])
    state = a.session_state()
    memory = state[MEMORY]
    assert memory["ids"] == [remembered[0], remembered[2]]  # the corpus's tokens are not written
    assert memory["corpus"]["ids"] == corpus[4:] and memory["corpus"]["first_id"] == corpus[0]
    with qtbot.waitSignal(b.corpusLoaded, timeout=WAIT):
        b.restore_session_state(through_file("lsh", state))
        assert b.session_state() == state  # also while the corpus is being encoded
    assert b.session_state() == state
    _same_stores(a, b)
    _same_result(a, b)
    assert b.selected_id == corpus[12] and b.pca.marked(b.pca.selected) == {corpus[12]}
    assert b.results.rowCount() == a.results.rowCount() > 0
    assert b.remember([(rng.normal(size=384), None)]) == a.remember([(rng.normal(size=384), None)])


def test_lsh_corpus_of_another_model_is_said_not_restored(lsh_pair, qtbot):
    a, b = lsh_pair
    with qtbot.waitSignal(a.corpusLoaded, timeout=WAIT):
        a.set_mode(MEMORY)
    state = a.session_state()
    state[MEMORY]["corpus"]["model"] = "some other model"
    with qtbot.waitSignal(b.corpusLoaded, timeout=WAIT):
        b.restore_session_state(state)
    assert len(b.memory) == 0 and b.session_state()[MEMORY]["corpus"] is None
    assert "not restored" in b.query_message.text() and "some other model" in b.query_message.text()


def test_an_opened_store_and_a_files_hyperplanes_come_back_exactly(lsh_pair, tmp_path):
    a, b = lsh_pair
    rng = np.random.default_rng(2)
    planes = rng.normal(size=(3, 4, 2))
    planes /= np.linalg.norm(planes, axis=2, keepdims=True)
    foreign = lsh.LSHIndex.from_hyperplanes(planes, seed=9)
    foreign.add(np.arange(40), rng.normal(size=(40, 2)), [{"n": i} for i in range(40)])
    foreign.save(tmp_path / "foreign.npz")
    assert a.open_store(tmp_path / "foreign.npz")
    a.query_point(0.3, 0.8)
    state = a.session_state()
    assert len(state[POINTS]["hyperplanes"]) == 12
    b.restore_session_state(through_file("lsh", state))
    assert b.session_state() == state
    _same_stores(a, b)
    _same_result(a, b)
    np.testing.assert_array_equal(b.store.index.hyperplanes, planes)


def _bad_lsh_states(good: dict):
    p = good[POINTS]
    zero = [v if i != 2 else [0.0, 0.0] for i, v in enumerate(p["vectors"])]
    yield {POINTS: {**p, "ids": p["ids"][:-1] + p["ids"][:1]}}, r"points\.ids"
    yield {POINTS: {**p, "ids": p["ids"] + [999]}}, r"points\.vectors"
    yield {POINTS: {**p, "vectors": zero}}, r"points\.vectors"
    yield {POINTS: {**p, "vectors": [[math.nan, 1.0]] + p["vectors"][1:]}}, r"points\.vectors"
    yield {POINTS: {**p, "vectors": [[1.0]] + p["vectors"][1:]}}, r"points\.vectors\[0\]"
    yield {POINTS: {**p, "vectors": [[1.0, EVIL]] + p["vectors"][1:]}}, r"points\.vectors\[0\]"
    yield {POINTS: {**p, "payloads": [EVIL] * len(p["ids"])}}, r"points\.payloads\[0\]"
    yield {POINTS: {**p, "payloads": [{"x": math.inf}] * len(p["ids"])}}, r"points\.payloads\[0\]"
    yield {POINTS: {**p, "hyperplanes": [[2.0, 0.0]] * 6}}, r"points\.hyperplanes"
    yield {POINTS: {**p, "hyperplanes": [[1.0, 0.0]] * 5}}, r"points\.hyperplanes"
    yield {POINTS: {**p, "n_bits": 0}}, r"points\.n_bits"
    yield {POINTS: {**p, "table": p["n_tables"]}}, r"points\.table"
    yield {POINTS: {**p, "next_id": 3}}, r"points\.next_id"
    yield {POINTS: {**p, "query": {"vectors": [[0.0, 0.0]], "labels": ["q"],
                                   "source": "point"}}}, r"points\.query\.vectors"
    yield {POINTS: {**p, "query": {"vectors": [[1.0, 0.0]], "labels": ["q"],
                                   "source": EVIL}}}, r"points\.query\.source"
    yield {MEMORY: {"corpus": {"model": "m", "first_id": 0, "count": 5, "ids": [7]},
                    "next_id": 9}}, r"minilm\.corpus\.ids\[0\]"
    yield {"mode": EVIL}, "mode"
    yield {"selected_id": 12345}, "selected_id"
    yield {"selected_bucket": 2 ** p["n_bits"]}, "selected_bucket"
    yield {"important_top": 21}, "important_top"
    yield {"query_text": ["text"]}, "query_text"


def test_a_bad_lsh_state_is_refused_whole(lsh_pair, monkeypatch):
    a, _ = lsh_pair
    a.add_random_points(20)
    a.set_bits(3)
    a.set_tables(2)
    a.query_point(0.5, 0.5)
    good = a.session_state()
    stores = dict(a.stores)
    for change, key in _bad_lsh_states(good):
        refused(a, {**good, **change}, key)
        assert a.stores == stores  # the very same store objects
    monkeypatch.setattr(lsh_panel, "MAX_ENTRIES", 10)
    refused(a, good, r"points\.ids")


def test_lsh_query_text_and_payloads_from_a_file_are_data(lsh_pair):
    a, _ = lsh_pair
    a.restore_session_state({"query_text": EVIL, POINTS: {
        "ids": [0], "vectors": [[1.0, 0.5]], "payloads": [{"token": EVIL, "code": EVIL}]}})
    assert a.query_edit.text() == EVIL and a.store.index.payload(0)["code"] == EVIL
    a.query_entry(0)
    assert a.result.spec.labels == (EVIL,) and EVIL.replace("'", "&#x27;") in a.query_label.text()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(-5, 5, width=32), st.floats(-5, 5, width=32))
                .filter(lambda v: v != (0.0, 0.0)),
                max_size=40, unique=True),
       st.integers(1, 8), st.integers(1, 6))
def test_random_point_stores_round_trip(lsh_pair, points, n_bits, n_tables):
    a, b = lsh_pair
    state = {POINTS: {"n_bits": n_bits, "n_tables": n_tables, "ids": list(range(len(points))),
                      "vectors": [list(v) for v in points]}}
    a.restore_session_state(state)
    saved = a.session_state()
    b.restore_session_state(through_file("lsh", saved))
    assert b.session_state() == saved
    _same_stores(a, b)
