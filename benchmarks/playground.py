"""Network playground benchmark: decision-map redraws per second while a network trains.

    xvfb-run -a -s "-screen 0 1920x1080x24 +extension GLX +render" .venv/bin/python benchmarks/playground.py

The real panel (1440 x 860) trains a 2-8-8-1 network (tanh, cross-entropy, plain gradient
descent, full batch, early stopping off) on 500 points of two moons (400 for training, 100
held out) for 5 s. Measured, side by side in one run:

* **ours**: the panel playing: chunks of about 15 ms of optimizer steps run on its JobRunner
  worker, which then computes the 100 x 100 decision map, its 0.5 curve, the unit maps and the
  evaluation; the GUI thread submits the next chunk, then draws the delivered one.
* **baseline, "GUI-thread loop"**: the same panel, the same chunk function and the same drawing
  code, but each chunk computed on the GUI thread from a zero-interval QTimer: the
  straightforward way to animate training in a Qt app (no worker, no hand-off).

For each: decision maps drawn per second (snapshots drawn), paints of the map's ImageItem per
second (what reached the screen), optimizer steps per second, and the GUI's responsiveness:
how late a 10 ms probe timer on the GUI thread fires (median, 99th percentile, worst).
                      target: ours >= 30 maps drawn per second; GUI stall (worst late probe) < 50 ms
The runs alternate (ours, baseline, three times each) so that machine noise hits both alike;
every run is printed and the medians are compared. The decision map's cost alone is printed
for context.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECONDS = 5.0
REPEATS = 3
PROBE_MS = 10
TARGET_MAPS = 30.0
TARGET_STALL_MS = 50.0
SETTINGS = {"dataset": "moons", "noise": 0.15, "points": 500, "hidden": (8, 8), "activation": "tanh",
            "loss": "cross_entropy", "method": "sgd", "lr": 0.3, "batch_size": 0, "validation": 0.2,
            "patience": 0, "max_steps": 1_000_000, "seed": 0}


def _spin(ms: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


class _Meter:
    """Counts map draws, map paints and probe-timer lateness over one run."""

    def __init__(self, panel) -> None:
        from PySide6.QtCore import QTimer

        self.panel = panel
        self.draws = 0
        self.paints = 0
        self.probes: list[float] = []
        self._probe = QTimer()
        self._probe.setInterval(PROBE_MS)
        self._probe.timeout.connect(lambda: self.probes.append(time.perf_counter()))
        image = panel.map_image
        paint = type(image).paint

        def counting_paint(*args):
            self.paints += 1
            return paint(image, *args)

        image.paint = counting_paint  # the scene calls the instance's paint: count, then draw

    def start(self) -> None:
        self.draws = self.paints = 0
        self.probes = [time.perf_counter()]
        self.steps0 = self.panel.step_count
        self.t0 = time.perf_counter()
        self._probe.start()

    def stop(self) -> dict:
        self._probe.stop()
        seconds = time.perf_counter() - self.t0
        late = np.diff(self.probes) * 1000 - PROBE_MS
        return {"maps": self.draws / seconds, "paints": self.paints / seconds,
                "steps": (self.panel.step_count - self.steps0) / seconds,
                "late_median": float(np.median(late)), "late_p99": float(np.percentile(late, 99)),
                "late_max": float(late.max())}


def run_ours(panel, meter) -> dict:
    """The panel as the user runs it: Play, 5 s, Pause."""
    panel.trained.connect(meter_draw := (lambda _s: setattr(meter, "draws", meter.draws + 1)))
    meter.start()
    panel.play()
    _spin(int(SECONDS * 1000))
    panel.pause()
    result = meter.stop()
    panel.trained.disconnect(meter_draw)
    while panel.runner.busy:
        _spin(10)
    return result


def run_gui_thread(panel, meter) -> dict:
    """The baseline: the same chunks, computed and drawn on the GUI thread by a QTimer(0)."""
    from PySide6.QtCore import QTimer

    from app.panels.playground import train_chunk

    def tick():
        snap = train_chunk(panel.chunk_request())  # the runner is idle: one thread touches it
        panel.draw(snap, animating=True)
        meter.draws += 1

    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(tick)
    meter.start()
    timer.start()
    _spin(int(SECONDS * 1000))
    timer.stop()
    return meter.stop()


def map_cost_ms() -> float:
    """Worker-side cost of one decision map and its 0.5 curve, as the chunk computes it."""
    from app.panels.playground import MAP_SIZE, _decision_picture, _one_blas_thread
    from engine.mlp import MLP

    net = MLP((2, 8, 8, 1), "tanh", "cross_entropy", seed=0)
    best = float("inf")
    with _one_blas_thread():
        for _ in range(30):
            t0 = time.perf_counter()
            _decision_picture(net, (-2.0, 2.0), (-2.0, 2.0), MAP_SIZE)
            best = min(best, time.perf_counter() - t0)
    return best * 1000


def main() -> bool:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("skipped: no display (run under xvfb-run, see the docstring)")
        return True
    from PySide6.QtWidgets import QApplication

    from app import lifecycle, style
    from app.panels.playground import MAP_SIZE, PlaygroundPanel, PlaygroundSettings

    style.configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    lifecycle.install_collector(app)
    panel = PlaygroundPanel(settings=PlaygroundSettings(**SETTINGS))
    panel.resize(1440, 860)
    panel.show()
    while panel.snapshot is None:
        _spin(20)
    _spin(300)
    meter = _Meter(panel)
    runs = {"ours": [], "baseline": []}
    for _ in range(REPEATS):
        for name, run in (("ours", run_ours), ("baseline", run_gui_thread)):
            panel.reset()
            _spin(300)
            runs[name].append(run(panel, meter))
    print(f"Playground: 2-8-8-1 on 500 points of two moons, {SECONDS:.0f} s of training per run, "
          f"{REPEATS} alternating runs each; one {MAP_SIZE}x{MAP_SIZE} decision map with its 0.5 "
          f"curve costs {map_cost_ms():.1f} ms on the worker")
    print(f"    {'run':30s} {'maps drawn/s':>12s} {'map paints/s':>12s} {'steps/s':>8s} "
          f"{'GUI late: median':>17s} {'p99':>8s} {'worst':>8s}")
    names = {"ours": "ours (worker, JobRunner)", "baseline": "baseline: GUI-thread loop"}
    for name, results in runs.items():
        for i, r in enumerate(results, 1):
            print(f"    {names[name] + f' #{i}':30s} {r['maps']:12.1f} {r['paints']:12.1f} {r['steps']:8.0f} "
                  f"{r['late_median']:14.1f} ms {r['late_p99']:5.1f} ms {r['late_max']:5.1f} ms")
    med = {name: {k: float(np.median([r[k] for r in results])) for k in results[0]}
           for name, results in runs.items()}
    ours, base = med["ours"], med["baseline"]
    ok = ours["maps"] >= TARGET_MAPS and ours["late_max"] < TARGET_STALL_MS
    print(f"    medians: ours {ours['maps']:.1f} maps/s (target >= {TARGET_MAPS:.0f}: "
          f"{'met' if ours['maps'] >= TARGET_MAPS else 'NOT met'}), baseline {base['maps']:.1f}: "
          f"{ours['maps'] / base['maps']:.2f}x; steps/s {ours['steps'] / base['steps']:.2f}x; GUI late "
          f"median {ours['late_median']:.1f} ms against {base['late_median']:.1f} ms, worst "
          f"{ours['late_max']:.0f} ms (target < {TARGET_STALL_MS:.0f} ms: "
          f"{'met' if ours['late_max'] < TARGET_STALL_MS else 'NOT met'}) against {base['late_max']:.0f} ms")
    panel.shutdown()
    lifecycle.dispose(panel)
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
