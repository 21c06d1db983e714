"""What the soak test (``benchmarks/soak.py``) does to the window: real input events
(mouse drags and clicks, typing, pasting, arrow keys in combo boxes, shortcuts) and the
panels' public methods, chosen at random."""

from __future__ import annotations

import random
import time
from pathlib import Path

import shiboken6
from PySide6.QtCore import QEventLoop, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from app import jobs
from app.export import ExportError
from app.main_window import EXPORT_FILTERS
from app.panels.surface import LandscapeSettings
from engine import landscape, surfaces

EXPRESSIONS = (
    "x**2 - y**2", "a*x**2 + b*y**2", "sin(3*x)*cos(3*y)", "log(x) + y**2", "1/(x*y)",
    "sqrt(x) - sqrt(y)", "relu(x) - relu(y) + 0.1*x*y", "x*y*exp(-x**2 - y**2)",
    "c*sin(k*x) + y**2", "max(abs(x), abs(y))", "tanh(w*x - y) + softplus(y)", "0/0 + x",
    # refused where typed, the previous plot kept:
    "x**", "sin(", "__import__('os').getcwd()", "x y", "((((x", "lambda: 1", "x[0]", "",
    "1e400*x", "a.b + x", "x**y**x**y**x**y",
)
PASTES = ("-" * 100_000 + "x", "+".join(["x"] * 200_000), "(" * 5000 + "x" + ")" * 5000,
          "x*" * 3000 + "y", "\x00x\u202e")
PROMPTS = (
    "The cat sat on the mat because it was warm.", "A kitten napped near the fireplace.",
    "Gradient descent follows the negative gradient downhill.", "", "   ",
    "Ünïcödé wörds, emoji 🙂 and 漢字 tokens.", "a " * 700, "[CLS] [SEP] [MASK] [PAD]",
    "Attention is all you need; the rest is bookkeeping.",
)
WIDTHS = ("8, 8", "16", "4, 4, 4", "abc", "0", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10", "100000", "", "4;4",
          "-3", "2,,2")
SPIN_TEXTS = ("0.5", "1", "-1", "abc", "1e9", "-1e9", "0", "3.25", "", "12345678901234567890")
# Keys bound with panel_shortcuts, per panel.
SHORTCUTS = {
    "SurfacePanel": (Qt.Key.Key_W, Qt.Key.Key_H, Qt.Key.Key_G, Qt.Key.Key_C, Qt.Key.Key_Escape),
    "DescentPanel": (Qt.Key.Key_Space, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_B, Qt.Key.Key_A),
    "BackpropPanel": (Qt.Key.Key_F, Qt.Key.Key_B, Qt.Key.Key_S, Qt.Key.Key_End, Qt.Key.Key_Home),
    "PlaygroundPanel": (Qt.Key.Key_Space, Qt.Key.Key_Right, Qt.Key.Key_Home),
    "AttentionPanel": (Qt.Key.Key_Escape,),
    "LSHPanel": (Qt.Key.Key_Escape, Qt.Key.Key_Q, Qt.Key.Key_Delete),
}
NO_MODIFIER = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


# -- real input events ------------------------------------------------------------------
def click(widget, pos: QPoint | None = None, modifier=NO_MODIFIER) -> None:
    QTest.mouseClick(widget, LEFT, modifier, pos or widget.rect().center())


def click_check(check) -> None:
    """Click a check box on its box (a wide check box's centre may be past its label)."""
    click(check, QPoint(8, check.height() // 2))


def _slider_rects(slider):
    option = getattr(slider, "_styleOption", None)  # superqt's sliders build their own
    if option is None:
        option = QStyleOptionSlider()
        slider.initStyleOption(option)
    style = slider.style()
    handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                  QStyle.SubControl.SC_SliderHandle, slider)
    groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                  QStyle.SubControl.SC_SliderGroove, slider)
    return handle, groove


def drag_slider(slider, rng: random.Random, moves: int = 8) -> None:
    """Press the handle, move along the groove pausing as a hand does, release. A slider
    that disappears meanwhile (a parameter slider when a new function arrives) ends it."""
    handle, groove = _slider_rects(slider)
    x, y = handle.center().x(), handle.center().y()
    QTest.mousePress(slider, LEFT, NO_MODIFIER, QPoint(x, y))
    target = rng.randint(groove.left(), max(groove.left(), groove.right()))
    for k in range(1, moves + 1):
        QTest.mouseMove(slider, QPoint(round(x + (target - x) * k / moves), y))
        wait(rng.choice((8, 16, 33)))
        if not shiboken6.isValid(slider):
            return
    QTest.mouseRelease(slider, LEFT, NO_MODIFIER, QPoint(target, y))


def type_into(edit, text: str, enter: bool = True) -> None:
    """Select all, delete, type ``text`` key by key, press Enter."""
    edit.setFocus()
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(edit, Qt.Key.Key_Delete)
    for char in text:
        if char.isascii():
            QTest.keyClick(edit, char)
        else:  # QTest maps ASCII only (it aborts on anything else); a layout key sends the text
            QTest.sendKeyEvent(QTest.KeyAction.Click, edit, Qt.Key.Key_unknown, char, NO_MODIFIER)
    if enter:
        QTest.keyClick(edit, Qt.Key.Key_Return)


def paste_into(edit, text: str) -> None:
    """Select all and paste ``text`` from the clipboard with Ctrl+V, then press Enter."""
    QGuiApplication.clipboard().setText(text)
    edit.setFocus()
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(edit, Qt.Key.Key_Return)


def type_spin(spin, rng: random.Random) -> str:
    """Type a value (often a bad one) into a spin box and press Enter; returns the text."""
    text = rng.choice(SPIN_TEXTS + (f"{rng.uniform(spin.minimum(), spin.maximum()):.3f}",) * 3)
    type_into(spin.lineEdit(), text)
    return text


def combo_keys(combo, rng: random.Random) -> str:
    """Move a combo box with the arrow keys, as a user with the focus on it does."""
    combo.setFocus()
    key = rng.choice((Qt.Key.Key_Down, Qt.Key.Key_Up))
    for _ in range(rng.randint(1, 3)):
        QTest.keyClick(combo, key)
    return combo.currentText()


def view_point(view, rng: random.Random) -> QPoint:
    """A random point well inside a pyqtgraph view."""
    rect = view.viewport().rect()
    return QPoint(rng.randint(rect.width() // 6, rect.width() * 5 // 6),
                  rng.randint(rect.height() // 6, rect.height() * 5 // 6))


def wait(ms: int) -> None:
    """Run the event loop for ``ms`` milliseconds, as the app's own loop runs. Not
    QTest.qWait: in PySide6 it keeps the GIL while Qt sleeps, so the workers all but stop
    (a worker calling NumPy made 2 400 calls in a qWait of 2 s, and 1.7 million in a
    QEventLoop of 2 s), and a landscape that takes 2 s took 80 s in the soak's warm-up."""
    loop = QEventLoop()
    QTimer.singleShot(max(0, int(ms)), loop.quit)
    loop.exec()


def wait_until(predicate, seconds: float) -> bool:
    """Run the event loop until ``predicate()`` is true; False when ``seconds`` ran out."""
    deadline = time.perf_counter() + seconds
    while not predicate():
        if time.perf_counter() > deadline:
            return False
        wait(20)
    return True


class Actions:
    """The actions on one MainWindow. Each takes its own ``random.Random``; ``note`` adds
    what it chose to the action log."""

    def __init__(self, window, out: Path, note):
        self.window = window
        self.out = out
        self.note = note
        self.refusals: dict[str, int] = {}
        self._exports = 0
        w = window
        # (weight, panel the action needs on screen or None, action)
        self.catalogue = [
            (6, None, self.switch_tab), (4, None, self.export_figure), (3, None, self.shortcut),
            (1, None, self.resize_window),
            (3, w.surface, self.surface_type), (1, w.surface, self.surface_paste),
            (3, w.surface, self.surface_preset), (3, w.surface, self.surface_parameter),
            (2, w.surface, self.surface_contour_controls), (2, w.surface, self.surface_range),
            (1, w.surface, self.surface_resolution), (2, w.surface, self.surface_landscape),
            (1, w.surface, self.surface_landscape_controls), (2, w.surface, self.surface_hover),
            (1, w.surface, self.camera),
            (3, w.descent, self.descent_click), (3, w.descent, self.descent_playback),
            (2, w.descent, self.descent_sliders), (2, w.descent, self.descent_methods),
            (2, w.descent, self.descent_spins), (1, w.descent, self.descent_basins),
            (1, w.descent, self.camera), (0.3, w.descent, self.descent_animation),
            (3, w.backprop, self.backprop_sliders), (3, w.backprop, self.backprop_walk),
            (1, w.backprop, self.backprop_controls),
            (4, w.playground, self.playground_playback), (2, w.playground, self.playground_widths),
            (2, w.playground, self.playground_controls),
            (3, w.attention, self.attention_type), (2, w.attention, self.attention_controls),
            (1, w.attention, self.attention_remember),
            (1, w.lsh, self.lsh_mode), (3, w.lsh, self.lsh_points), (2, w.lsh, self.lsh_index),
            (2, w.lsh, self.lsh_query), (1, w.lsh, self.lsh_select_delete), (1, w.lsh, self.lsh_files),
        ]

    def perform(self, panel, action, rng: random.Random) -> None:
        """Bring ``panel`` on screen with a click on its tab, then act; a refused export
        (ExportError, shown to the user in a message box) is counted, not raised."""
        if panel is not None and self.window.current_panel() is not panel:
            self.show(panel)
        try:
            action(rng)
        except ExportError as error:
            self.refuse(f"export: {error}")

    def refuse(self, text: str) -> None:
        self.note(f"refused: {text}")
        key = text[:90]
        self.refusals[key] = self.refusals.get(key, 0) + 1

    def show(self, panel) -> None:
        bar = self.window.tabs.tabBar()
        click(bar, bar.tabRect(self.window.tabs.indexOf(panel)).center())

    def settle(self, seconds: float = 60.0) -> bool:
        """Stop the animations and wait until no worker has anything left to deliver."""
        w = self.window
        w.descent.pause()
        w.playground.pause()
        if w.descent.basin_runner.busy:
            w.descent.toggle_basins()
        return wait_until(lambda: not any(r.busy for r in jobs.live_runners()), seconds)

    # -- any panel ----------------------------------------------------------------------
    def switch_tab(self, rng) -> None:
        index = rng.randrange(self.window.tabs.count())
        self.note(self.window.tabs.tabText(index))
        self.show(self.window.tabs.widget(index))

    def export_figure(self, rng) -> None:
        """Export the panel shown, as File > Export would, to a few rotating file names."""
        panel = self.window.current_panel()
        filters = getattr(panel, "export_filters", EXPORT_FILTERS)
        view, suffix = rng.choice([c for c in filters.values() if c[1] not in (".gif", ".mp4")])
        self._exports += 1
        path = self.out / f"{type(panel).__name__}-{self._exports % 5}{suffix}"
        self.note(f"{view} -> {path.name}")
        panel.export(path, view=view)

    def shortcut(self, rng) -> None:
        panel = self.window.current_panel()
        key = rng.choice(SHORTCUTS[type(panel).__name__])
        self.note(key.name)
        panel.setFocus()
        QTest.keyClick(panel, key)

    def resize_window(self, rng) -> None:
        size = rng.choice(((1440, 880), (1100, 700), (1800, 1000), (900, 640)))
        self.note(f"{size}")
        self.window.resize(*size)

    def camera(self, rng) -> None:
        """Turn the 3-D view with a mouse drag, then zoom with the wheel."""
        view = getattr(getattr(self.window.current_panel(), "view3d", None), "window_view", None)
        if view is None or not view.isExposed():
            return
        w, h = view.width(), view.height()
        start, end = QPoint(w // 2, h // 2), QPoint(rng.randint(1, w - 2), rng.randint(1, h - 2))
        clicks = rng.randint(-3, 3)
        self.note(f"drag to {end.x()},{end.y()} of {w}x{h}, wheel {clicks}")
        QTest.mousePress(view, LEFT, NO_MODIFIER, start)
        for k in range(1, 7):
            QTest.mouseMove(view, start + (end - start) * (k / 6))
            wait(16)
        QTest.mouseRelease(view, LEFT, NO_MODIFIER, end)
        for _ in range(abs(clicks)):
            wheel = QWheelEvent(QPointF(end), QPointF(view.mapToGlobal(end)), QPoint(),
                                QPoint(0, 120 if clicks > 0 else -120), Qt.MouseButton.NoButton,
                                NO_MODIFIER, Qt.ScrollPhase.NoScrollPhase, False)
            QGuiApplication.sendEvent(view, wheel)
            wait(16)

    # -- loss surface -------------------------------------------------------------------
    def surface_type(self, rng) -> None:
        text = rng.choice(EXPRESSIONS)
        self.note(text)
        type_into(self.window.surface.expr.edit, text)

    def surface_paste(self, rng) -> None:
        text = rng.choice(PASTES)
        self.note(f"{len(text)} characters: {text[:20]!r}...")
        paste_into(self.window.surface.expr.edit, text)

    def surface_preset(self, rng) -> None:
        panel = self.window.surface
        if rng.random() < 0.6:
            self.note(f"keys -> {combo_keys(panel.preset_box, rng)}")
        else:
            key = rng.choice([p.key for p in surfaces.PRESETS])
            self.note(key)
            panel.set_preset(key)

    def surface_parameter(self, rng) -> None:
        sliders = list(self.window.surface._param_sliders.items())
        if not sliders:
            text = rng.choice(("a*x**2 + b*y**2", "c*sin(k*x) + y**2"))
            self.note(f"no parameters: {text}")
            type_into(self.window.surface.expr.edit, text)
            return
        name, slider = rng.choice(sliders)
        self.note(name)
        drag_slider(slider._slider, rng)

    def surface_contour_controls(self, rng) -> None:
        panel = self.window.surface
        what = rng.choice(("levels", "spacing", "fill", "arrows", "critical", "wire"))
        self.note(what)
        if what == "levels":
            drag_slider(panel.levels_slider, rng)
        elif what == "spacing":
            combo_keys(panel.spacing_box, rng)
        else:
            click_check({"fill": panel.fill_check, "arrows": panel.arrows_check,
                         "critical": panel.critical_check, "wire": panel.wire_check}[what])

    def surface_range(self, rng) -> None:
        spin = rng.choice([s for pair in self.window.surface.range_spins for s in pair])
        self.note(type_spin(spin, rng))

    def surface_resolution(self, rng) -> None:
        self.note(combo_keys(self.window.surface.resolution_box, rng))

    def surface_landscape(self, rng) -> None:
        panel = self.window.surface
        if panel.landscape_runner.busy and rng.random() < 0.5:
            self.note("cancel")
            click(panel.landscape_cancel)
            return
        settings = LandscapeSettings(directions=rng.choice(landscape.DIRECTIONS),
                                     bias=rng.choice(landscape.BIASES), grid=rng.choice((21, 31, 41, 51)),
                                     metric=rng.choice(landscape.METRICS), seed=rng.randrange(4))
        self.note(f"{settings}")
        panel.set_landscape(settings)

    def surface_landscape_controls(self, rng) -> None:
        panel = self.window.surface
        if not panel.landscape_box.isVisible():
            self.note("not on a landscape")
            return
        what = rng.choice(("directions", "bias", "metric", "grid", "span", "log"))
        if what in ("grid", "span"):
            self.note(f"{what} {type_spin(panel.grid_spin if what == 'grid' else panel.span_spin, rng)}")
        elif what == "log":
            self.note(what)
            click_check(panel.landscape_log)
        else:
            box = {"directions": panel.directions_box, "bias": panel.bias_box, "metric": panel.metric_box}[what]
            self.note(f"{what} {combo_keys(box, rng)}")

    def surface_hover(self, rng) -> None:
        """Move over the contour map; sometimes click to pin the read-out and Esc to let go."""
        panel = self.window.surface
        viewport = panel.contour.viewport()
        for _ in range(rng.randint(3, 10)):
            QTest.mouseMove(viewport, view_point(panel.contour, rng))
            wait(16)
        if rng.random() < 0.4:
            self.note("pin")
            click(viewport, view_point(panel.contour, rng))
        if rng.random() < 0.3:
            self.note("Esc")
            panel.setFocus()
            QTest.keyClick(panel, Qt.Key.Key_Escape)

    # -- gradient descent -----------------------------------------------------------------
    def descent_click(self, rng) -> None:
        """Click the contour map: every optimizer starts there and the race plays."""
        view = self.window.descent.contour
        point = view_point(view, rng)
        self.note(f"at {point.x()},{point.y()}")
        click(view.viewport(), point)

    def descent_playback(self, rng) -> None:
        panel = self.window.descent
        button = rng.choice((panel.play_button, panel.play_button, panel.step_button, panel.reset_button))
        self.note(button.text())
        click(button)

    def descent_sliders(self, rng) -> None:
        panel = self.window.descent
        name, slider = rng.choice((("lr", panel.lr_slider), ("speed", panel.speed_slider)))
        self.note(name)
        drag_slider(slider, rng)

    def descent_methods(self, rng) -> None:
        method, check = rng.choice(list(self.window.descent.method_checks.items()))
        self.note(method)
        click_check(check)

    def descent_spins(self, rng) -> None:
        panel = self.window.descent
        spins = [panel.steps_spin, panel.start_x, panel.start_y, panel.clip_spin, panel.l2_spin,
                 panel.noise_spin, *panel.constant_spins.values()]
        what = rng.random()
        if what < 0.15:
            self.note("clip")
            click_check(panel.clip_check)
        elif what < 0.3:
            self.note(f"schedule {combo_keys(panel.schedule_box, rng)}")
        else:
            self.note(type_spin(rng.choice(spins), rng))

    def descent_basins(self, rng) -> None:
        panel = self.window.descent
        if not panel.basin_runner.busy:
            combo_keys(panel.basin_method, rng)
            panel.basin_size.setCurrentIndex(rng.randrange(panel.basin_size.count()))
        self.note(f"{panel.basin_button.text()} {panel.basin_size.currentText()}")
        click(panel.basin_button)

    def descent_animation(self, rng) -> None:
        """Export the race as GIF or MP4 (its frames are rendered on the GUI thread)."""
        suffix = rng.choice((".gif", ".gif", ".mp4"))
        view = rng.choice(("contour", "auto"))
        self.note(f"{view}{suffix}")
        self.window.descent.export(self.out / f"race{suffix}", view=view)

    # -- backpropagation ------------------------------------------------------------------
    def backprop_sliders(self, rng) -> None:
        panel = self.window.backprop
        name, slider = rng.choice(list(panel.weight_sliders.items()) + list(panel.input_sliders.items()))
        self.note(name)
        drag_slider(slider._slider, rng)

    def backprop_walk(self, rng) -> None:
        panel = self.window.backprop
        buttons = (panel.forward_button, panel.forward_button, panel.backward_button, panel.step_button,
                   panel.all_button, panel.restart_button)
        for _ in range(rng.randint(1, 5)):
            button = rng.choice(buttons)
            self.note(button.text())
            click(button)

    def backprop_controls(self, rng) -> None:
        panel = self.window.backprop
        if rng.random() < 0.5:
            self.note(f"lr {type_spin(panel.lr_spin, rng)}")
        else:
            self.note(f"pair {combo_keys(rng.choice(panel.pair_boxes), rng)}")

    # -- network playground -----------------------------------------------------------------
    def playground_playback(self, rng) -> None:
        panel = self.window.playground
        button = rng.choice((panel.play_button, panel.play_button, panel.step_button, panel.reset_button))
        self.note(button.text())
        click(button)

    def playground_widths(self, rng) -> None:
        text = rng.choice(WIDTHS)
        self.note(text)
        type_into(self.window.playground.widths_edit, text)

    def playground_controls(self, rng) -> None:
        panel = self.window.playground
        combos = (panel.dataset_box, panel.activation_box, panel.loss_box, panel.method_box, panel.speed_box)
        spins = (panel.noise_spin, panel.points_spin, panel.validation_spin, panel.seed_spin,
                 panel.dropout_spin, panel.l2_spin, panel.batch_spin, panel.patience_spin,
                 panel.max_steps_spin)
        what = rng.random()
        if what < 0.4:
            self.note(f"combo -> {combo_keys(rng.choice(combos), rng)}")
        elif what < 0.6:
            self.note("lr")
            drag_slider(panel.lr_slider, rng)
        else:
            self.note(type_spin(rng.choice(spins), rng))

    # -- attention ------------------------------------------------------------------------
    def attention_type(self, rng) -> None:
        panel = self.window.attention
        text = rng.choice(PROMPTS)
        self.note(text)
        if len(text) > 200:
            panel.set_text(text)  # pasted rather than typed
        else:
            type_into(panel.text_edit, text, enter=False)

    def attention_controls(self, rng) -> None:
        panel = self.window.attention
        what = rng.choice(("layer", "head", "sum", "mask", "special", "words", "k", "token", "tab"))
        self.note(what)
        if what in ("layer", "head"):
            type_into((panel.layer_spin if what == "layer" else panel.head_spin).lineEdit(),
                      str(rng.randint(0, 14)))
        elif what in ("sum", "mask"):
            combo_keys(panel.sum_combo if what == "sum" else panel.mask_combo, rng)
        elif what in ("special", "words"):
            click_check(panel.special_check if what == "special" else panel.words_check)
        elif what == "k":
            drag_slider(panel.k_slider, rng)
        elif what == "token":
            panel.select_token(rng.choice((None, rng.randrange(40))))
        else:
            click(panel.side_tabs.tabBar(), panel.side_tabs.tabBar().tabRect(
                rng.randrange(panel.side_tabs.count())).center())

    def attention_remember(self, rng) -> None:
        click(self.window.attention.remember_button)

    # -- LSH store ------------------------------------------------------------------------
    def lsh_mode(self, rng) -> None:
        self.note(combo_keys(self.window.lsh.mode_combo, rng))

    def lsh_points(self, rng) -> None:
        panel = self.window.lsh
        if panel.mode != "points":
            button = rng.choice((panel.memory_clear, panel.corpus_button))
            self.note(f"memory: {button.text()}")
            click(button)
            return
        what = rng.random()
        if what < 0.3:
            self.note("random")
            click(panel.random_button)
        elif what < 0.4:
            self.note("clear")
            click(panel.clear_button)
        else:
            shift = rng.random() < 0.3
            self.note("shift-click: query" if shift else "click: add")
            modifier = Qt.KeyboardModifier.ShiftModifier if shift else NO_MODIFIER
            click(panel.plane.viewport(), view_point(panel.plane, rng), modifier)

    def lsh_index(self, rng) -> None:
        panel = self.window.lsh
        what = rng.choice(("bits", "tables", "probes", "k", "table", "seed"))
        if what in ("bits", "tables", "probes"):
            self.note(what)
            drag_slider({"bits": panel.bits_slider, "tables": panel.tables_slider,
                         "probes": panel.probes_slider}[what], rng)
        else:
            spin = {"k": panel.k_spin, "table": panel.table_spin, "seed": panel.seed_spin}[what]
            self.note(f"{what} {type_spin(spin, rng)}")

    def lsh_query(self, rng) -> None:
        panel = self.window.lsh
        if panel.mode == "points":
            x, y = rng.uniform(-1.3, 1.3), rng.uniform(-1.3, 1.3)
            self.note(f"point {x:.2f},{y:.2f}")
            panel.query_point(x, y)
        else:
            text = rng.choice(PROMPTS)
            self.note(text)
            type_into(panel.query_edit, text)
        if rng.random() < 0.2:
            click(panel.clear_query_button)

    def lsh_select_delete(self, rng) -> None:
        panel = self.window.lsh
        ids, _ = panel.store.contents()
        if len(ids):
            ident = int(ids[int(rng.random() * len(ids))])
            self.note(f"select {ident}")
            panel.select(ident)
        if rng.random() < 0.6:
            self.note("Del")
            panel.setFocus()
            QTest.keyClick(panel, Qt.Key.Key_Delete)

    def lsh_files(self, rng) -> None:
        """Save the store, open it again, or open a damaged copy (which must be refused)."""
        panel = self.window.lsh
        path = self.out / f"store-{panel.mode}.npz"
        what = rng.choice(("save", "open", "damaged"))
        self.note(what)
        if what == "save":
            panel.save_store(path)
        elif what == "open" and path.exists():
            panel.open_store(path)
        elif what == "damaged":
            data = bytearray(path.read_bytes() if path.exists() else b"PK\x03\x04")
            data = data[: rng.randint(0, len(data))]
            for _ in range(min(8, len(data))):
                data[rng.randrange(len(data))] = rng.randrange(256)
            bad = self.out / "damaged.npz"
            bad.write_bytes(bytes(data))
            if panel.open_store(bad):
                self.refuse("a damaged store file was opened")

    # -- warm-up and closing ----------------------------------------------------------------
    def warm_up(self, begin) -> None:
        """Each slow first-time thing once (the landscape's training, MiniLM and the corpus,
        compiled code, every export), so that what is measured afterwards is steady.
        ``begin(name)`` logs each step."""
        w = self.window
        d = w.descent
        steps = (
            ("surface preset", lambda: (self.show(w.surface), w.surface.set_preset("himmelblau"))),
            ("short race", lambda: (self.show(d), d.steps_spin.setValue(40), d.set_start(0.5, 0.5))),
            ("race animation", lambda: d.export(self.out / "warm-up.gif", view="contour")),
            ("basin map", lambda: (d.basin_size.setCurrentIndex(0), d.toggle_basins())),
            ("landscape", lambda: (self.show(w.surface), w.surface.set_landscape(LandscapeSettings(grid=21)))),
            ("race on the landscape", lambda: (self.show(d), d.set_start(0.2, 0.1))),
            ("typed function", lambda: (self.show(w.surface), d.steps_spin.setValue(300),
                                        w.surface.set_expression("a*x**2 + b*y**2"))),
            ("backprop", lambda: (self.show(w.backprop), w.backprop.show_all(), w.backprop.step())),
            ("playground", lambda: (self.show(w.playground), w.playground.play())),
            ("attention", lambda: (self.show(w.attention), w.attention.run())),
            ("remember", lambda: w.attention.remember()),
            ("lsh corpus", lambda: (self.show(w.lsh), w.lsh.set_mode("minilm"))),
            ("lsh query", lambda: w.lsh.query_text("a cat by the fire")),
            ("lsh points", lambda: (w.lsh.set_mode("points"), w.lsh.add_random_points(50))),
        )
        for name, step in steps:
            begin(f"warm-up: {name}")
            step()
            wait(300)
            if not self.settle(180):
                raise RuntimeError(f"warm-up step '{name}' did not finish within 180 s")
        for panel in w.panels:
            self.show(panel)
            for view, suffix in getattr(panel, "export_filters", EXPORT_FILTERS).values():
                if suffix not in (".gif", ".mp4"):
                    begin(f"warm-up: export {type(panel).__name__} {view}{suffix}")
                    try:
                        panel.export(self.out / f"warm-up{suffix}", view=view)
                    except ExportError as error:
                        self.refuse(f"warm-up export: {error}")

    def restore(self, document: dict) -> str:
        """Put every panel back as the session ``document`` has it and let the work that
        starts finish; returns "" or why the session was refused."""
        self.show(self.window.surface)
        opened = self.window.open_session_document(document)
        self.settle(180)
        return "" if opened else self.window.session.last_error or "refused"

    def start_everything(self) -> list[str]:
        """A race playing, a network training, a basin map and a landscape computing: the
        work a user may leave running when closing the window. Returns what is running."""
        w = self.window
        d = w.descent
        w.surface.set_expression("sin(3*x)*cos(3*y)")
        wait_until(lambda: w.surface.result is not None and not w.surface.surface_runner.busy, 30)
        d.set_start(0.3, -0.2)
        wait_until(lambda: d.trajectories and not d.runner.busy, 30)
        d.play()
        d.basin_size.setCurrentIndex(d.basin_size.count() - 1)
        d.toggle_basins()
        w.playground.play()
        w.surface.set_landscape(LandscapeSettings(grid=101, seed=7))
        wait(200)
        busy = {"race playing": d._timer.isActive(), "training": w.playground.is_playing,
                "basin map": d.basin_runner.busy, "landscape": w.surface.landscape_runner.busy}
        return [name for name, on in busy.items() if on]
