"""Regenerate the README's panel screenshots in resources/screenshots/.

Run under a display (a virtual one is fine):
    xvfb-run -a -s "-screen 0 1920x1080x24 +extension GLX +render" .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "screenshots"


def wait_for(signal, timeout_ms: int = 30000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def loop_until(app: QApplication, condition, timeout_ms: int) -> None:
    """Run the event loop until ``condition()`` holds or the time runs out."""
    import time

    end = time.monotonic() + timeout_ms / 1000
    while not condition() and time.monotonic() < end:
        settle(app, 50)


def settle(app: QApplication, ms: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from app import style
    from app.export import window_image
    from app.main_window import MainWindow
    from app.panels.descent import _lr_to_slider

    style.configure_pyqtgraph()
    app = QApplication(sys.argv[:1])
    window = MainWindow()
    window.resize(1600, 900)
    window.show()
    OUT.mkdir(parents=True, exist_ok=True)

    panel = window.surface
    wait_for(panel.surfaceDrawn)
    panel.set_preset("himmelblau")
    wait_for(panel.criticalPointsDrawn)
    panel._on_click(-0.27, -0.92)
    settle(app, 800)
    path = OUT / "surface.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")

    # A real loss landscape (Li et al. 2018): the digits network on the PCA plane of its
    # training path, the path and the trained weights marked.
    from app.panels.surface import LandscapeSettings

    panel.set_landscape(LandscapeSettings(directions="pca"))
    wait_for(panel.landscapeDrawn, 120000)
    settle(app, 800)
    path = OUT / "landscape.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")

    # Optimizers restricted to that plane: SGD, momentum and Adam from the start of the
    # training path, each step a backward pass over the 1 797 digits.
    descent = window.descent
    window.tabs.setCurrentWidget(descent)
    for method, check in descent.method_checks.items():
        check.setChecked(method in ("sgd", "momentum", "adam"))
    descent.lr_slider.setValue(_lr_to_slider(0.3))
    descent.steps_spin.setValue(300)
    loop_until(app, lambda: descent.loss_map is not None, 60000)
    start = panel.landscape.result.path[0]
    descent.set_start(float(start[0]), float(start[1]))
    wait_for(descent.raceComputed, 120000)
    descent.pause()
    descent.show_frame(descent._last_frame())
    settle(app, 800)
    path = OUT / "descent_landscape.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")
    window.tabs.setCurrentWidget(panel)
    panel.set_preset("himmelblau")
    wait_for(panel.surfaceDrawn)

    # The descent lab on the saddle-laden Himmelblau: six optimizers from one start near
    # the maximum go to different minima; the frame shows the race half-way.
    descent = window.descent
    window.tabs.setCurrentWidget(descent)
    for method, check in descent.method_checks.items():
        check.setChecked(method != "adamw")
    descent.lr_slider.setValue(_lr_to_slider(0.01))
    descent.set_start(-0.6, -0.6)
    wait_for(descent.raceComputed)
    descent.pause()
    descent.show_frame(descent._last_frame() // 2)
    settle(app, 800)
    path = OUT / "descent.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")

    # The backprop lab mid-way through the backward pass, hidden unit 2 dead.
    net = window.backprop
    window.tabs.setCurrentWidget(net)
    net.set_weights({"w22_1": -0.4})
    net.set_inputs(y=3.0)
    wait_for(net.lossSurfaceDrawn, 5000)
    net.show_all()
    net.restart()
    while net.position < net.forward_count + 9:
        net.forward() if net.position < net.forward_count else net.backward()
    settle(app, 800)
    path = OUT / "backprop.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")

    # The playground training two moons, caught mid-way.
    playground = window.playground
    window.tabs.setCurrentWidget(playground)
    playground.set_settings(dataset="moons", noise=0.15, points=500)
    playground.play()
    loop_until(app, lambda: playground.step_count >= 700, 60000)
    playground.pause()
    settle(app, 800)
    path = OUT / "playground.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")

    # The attention lab: one token followed, the top-4 of layer 3 highlighted.
    att = window.attention
    window.tabs.setCurrentWidget(att)
    loop_until(app, lambda: att.result is not None, 60000)
    att.pick(2, 4)
    att.set_k(4)
    att.select_token(3)
    settle(app, 800)
    path = OUT / "attention.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")

    # The LSH store: 60 points in 2-D with K = 3 bits and L = 2 tables, a query shown; then
    # the sample corpus of MiniLM token embeddings with a typed query.
    store = window.lsh
    window.tabs.setCurrentWidget(store)
    store.set_mode("points")
    store.set_bits(3)
    store.set_tables(2)
    store.set_probes(1)
    store.add_random_points(60)
    store.query_point(0.55, 0.35)
    settle(app, 800)
    path = OUT / "lsh_points.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")
    store.set_mode("minilm")
    store.load_corpus()
    wait_for(store.corpusLoaded, 60000)
    store.query_text("A kitten naps by the fireplace.")
    wait_for(store.queried, 60000)
    settle(app, 800)
    path = OUT / "lsh_minilm.png"
    window_image(window).save(str(path))
    print(f"wrote {path}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
