"""Write the example sessions of Help > Examples (resources/examples/*.json).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_examples.py

Each example is set up through the panels' public API in a real window, then saved as a
session document (without the window's geometry, so opening one never moves the window).
Run it again when a panel's saved state changes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "examples"


def wait(app: QApplication, condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the example did not finish setting up")
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from app import session, style
    from app.main_window import MainWindow
    from app.panels.descent import _lr_to_slider
    from app.panels.surface import LandscapeSettings

    style.configure_pyqtgraph()
    app = QApplication(sys.argv[:1])
    OUT.mkdir(parents=True, exist_ok=True)

    def write(name: str, title: str, description: str, tab: str, window: MainWindow) -> None:
        document = window.session_document()
        document["title"] = title
        document["description"] = description
        document["window"] = {"tab": tab}
        session.save(OUT / f"{name}.json", document)
        print(f"wrote {name}.json")

    def fresh() -> MainWindow:
        window = MainWindow()
        window.resize(1400, 850)
        window.show()
        wait(app, lambda: window.surface.result is not None)
        return window

    def choose(descent, methods, lr, steps, start) -> None:
        for method, check in descent.method_checks.items():
            check.setChecked(method in methods)
        descent.lr_slider.setValue(_lr_to_slider(lr))
        descent.settings.lr = lr
        descent.steps_spin.setValue(steps)
        descent.set_start(*start)

    # Seeds 001 and 002: gradient descent stalls at a saddle point, Adam leaves it.
    window = fresh()
    window.surface.set_expression("x**2 + (y**2 - 1)**2")
    wait(app, lambda: window.surface.result is not None
         and window.surface.result.request.text == "x**2 + (y**2 - 1)**2")
    choose(window.descent, ("sgd", "momentum", "adam"), 0.01, 800, (1.5, 0.001))
    write("saddle_sgd_vs_adam", "Saddle point: SGD vs Adam",
          "f = x² + (y² − 1)² has a saddle at the origin between minima at (0, ±1). From "
          "(1.5, 0.001) plain gradient descent slides to the saddle and waits there while the "
          "tiny y-component grows; Adam rescales each coordinate by its own gradient history "
          "and leaves it long before (seeds 001, 002).", "descent", window)
    window.close()

    # Seed 001: clipping tames the steep walls of Rosenbrock's valley.
    window = fresh()
    window.surface.set_preset("rosenbrock")
    choose(window.descent, ("sgd", "momentum", "adam"), 0.001, 2000, (-1.5, 2.0))
    window.descent.clip_check.setChecked(True)
    window.descent.clip_spin.setValue(5.0)
    write("rosenbrock_clipping", "Rosenbrock: a narrow valley, with gradient clipping",
          "The valley floor is flat while its walls are steep: the first steps are long, then "
          "progress along the floor is slow. Clipping |∇f| at 5 keeps the first steps in "
          "bounds; untick it to see why it helps (seed 001).", "descent", window)
    window.close()

    # Seed 003: a dead ReLU unit passes no gradient back.
    window = fresh()
    net = window.backprop
    net.set_weights({"w22_1": -0.4})
    net.set_inputs(y=3.0)
    write("dead_relu", "Dead ReLU: a hidden unit that learns nothing",
          "Hidden unit 2's pre-activation is negative for this input, so ReLU outputs 0 and "
          "its derivative is 0: every gradient reaching its incoming weights is exactly 0. "
          "Press Forward, then Backward, and watch the zeros (seed 003, eqs. 17–33).",
          "backprop", window)
    window.close()

    # Seed 000: the attention sink on [CLS], and why the selection leaves special tokens out.
    window = fresh()
    att = window.attention
    wait(app, lambda: att.result is not None)
    att.special_check.setChecked(False)
    att.pick(4, 5)
    write("attention_sink", "Attention sink: layer 5, head 6 looks at [CLS]",
          "In this head most tokens send most of their attention to [CLS] (83% on average): a "
          "'sink' that carries little meaning. Special tokens are counted here; tick 'leave "
          "out special tokens' to see the top-k of seed 000's selection change.",
          "attention", window)
    window.close()

    # Li et al. (2018): optimizers on the real landscape of the digits network.
    window = fresh()
    window.surface.set_landscape(LandscapeSettings(directions="pca"))
    wait(app, lambda: window.surface.landscape is not None)
    window.tabs.setCurrentWidget(window.descent)
    wait(app, lambda: window.descent.loss_map is not None)
    start = window.surface.landscape.result.path[0]
    choose(window.descent, ("sgd", "momentum", "adam"), 0.3, 300,
           (round(float(start[0]), 3), round(float(start[1]), 3)))
    write("real_landscape_race", "Real landscape: optimizers on the digits network's plane",
          "The loss of a 64-32-10 network trained on the digits, on the plane of the two "
          "principal directions of its training path (Li et al. 2018). SGD, momentum and "
          "Adam start where training started and follow the gradient projected onto the "
          "plane; each step is a backward pass over the 1 797 digits.", "descent", window)
    window.close()

    # Seed 000's LSH: too many bits per table and most buckets are empty.
    window = fresh()
    store = window.lsh
    store.add_random_points(80)
    store.set_bits(12)
    store.set_tables(2)
    store.query_point(0.6, 0.5)
    write("lsh_too_many_bits", "LSH: why a query comes back empty",
          "80 points, 2 tables of K = 12 hyperplanes: 4 096 buckets per table for 80 points, "
          "so most buckets are empty and a query rarely shares one with its neighbours. Lower "
          "K, add tables (L) or probes and watch the recall climb (seed 000).", "lsh", window)
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
