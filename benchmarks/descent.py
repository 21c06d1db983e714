"""Optimizer benchmarks, each measured side by side with its baseline in one run.

    .venv/bin/python benchmarks/descent.py

(1) Six optimizers (sgd, momentum, nesterov, adagrad, rmsprop, adam) x 10 000 steps on
    Rosenbrock, stopping rules off: the engine's ``race`` (all rows in one compiled loop that
    interprets the typed expression's gradient program) against the straightforward loop,
    one optimizer after another, a 2-element NumPy array per step and a hand-written gradient.
    Both must end at the same points (same formulas) to 1e-9.
                                                  targets: ratio >= 5x; race < 50 ms
    For context only, the same six written in plain Python floats (no NumPy at all), and the
    race with more starts (its cost hardly grows with rows, the loop's grows linearly).
(2) A 256 x 256 basin map of 500 steps on Himmelblau (sgd and adam). target: < 1 s
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import optimizers

ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"
HIMMELBLAU = "(x**2 + y - 11)**2 + (x + y**2 - 7)**2"
START = (-1.2, 1.0)
STEPS = 10_000
# Learning rates that make steady progress along the valley without blowing up.
LR = {"sgd": 1e-3, "momentum": 1e-4, "nesterov": 1e-4, "adagrad": 0.1, "rmsprop": 1e-4,
      "adam": 5e-3}
METHODS = tuple(LR)


# -- the naive baseline: one optimizer at a time, 2-element arrays ------------------------

def rosenbrock_gradient(p):
    x, y = p
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def naive(method: str, start, lr: float, steps: int) -> np.ndarray:
    """The loop as one would write it for one optimizer; returns the path (steps + 1, 2)."""
    p = np.array(start, dtype=float)
    path = np.empty((steps + 1, 2))
    path[0] = p
    m = np.zeros(2)
    v = np.zeros(2)
    for t in range(1, steps + 1):
        g = rosenbrock_gradient(p)
        if method == "sgd":
            p = p - lr * g
        elif method == "momentum":
            m = 0.9 * m + g
            p = p - lr * m
        elif method == "nesterov":
            m = 0.9 * m + g
            p = p - lr * (g + 0.9 * m)
        elif method == "adagrad":
            v = v + g * g
            p = p - lr * g / (np.sqrt(v) + 1e-8)
        elif method == "rmsprop":
            v = 0.9 * v + 0.1 * g * g
            p = p - lr * g / (np.sqrt(v) + 1e-8)
        elif method == "adam":
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            m_hat = m / (1 - 0.9 ** t)
            v_hat = v / (1 - 0.999 ** t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        path[t] = p
    return path


def plain_floats(method: str, start, lr: float, steps: int) -> list:
    """The same in plain Python floats (for context: no NumPy call at all)."""
    x, y = start
    path = [(x, y)]
    mx = my = vx = vy = 0.0
    for t in range(1, steps + 1):
        d = y - x * x
        gx, gy = -2 * (1 - x) - 400 * x * d, 200 * d
        if method == "sgd":
            x, y = x - lr * gx, y - lr * gy
        elif method == "momentum":
            mx, my = 0.9 * mx + gx, 0.9 * my + gy
            x, y = x - lr * mx, y - lr * my
        elif method == "nesterov":
            mx, my = 0.9 * mx + gx, 0.9 * my + gy
            x, y = x - lr * (gx + 0.9 * mx), y - lr * (gy + 0.9 * my)
        elif method == "adagrad":
            vx, vy = vx + gx * gx, vy + gy * gy
            x, y = x - lr * gx / (math.sqrt(vx) + 1e-8), y - lr * gy / (math.sqrt(vy) + 1e-8)
        elif method == "rmsprop":
            vx, vy = 0.9 * vx + 0.1 * gx * gx, 0.9 * vy + 0.1 * gy * gy
            x, y = x - lr * gx / (math.sqrt(vx) + 1e-8), y - lr * gy / (math.sqrt(vy) + 1e-8)
        elif method == "adam":
            mx, my = 0.9 * mx + 0.1 * gx, 0.9 * my + 0.1 * gy
            vx, vy = 0.999 * vx + 0.001 * gx * gx, 0.999 * vy + 0.001 * gy * gy
            c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            x = x - lr * (mx / c1) / (math.sqrt(vx / c2) + 1e-8)
            y = y - lr * (my / c1) / (math.sqrt(vy / c2) + 1e-8)
        path.append((x, y))
    return path


def _best_of(fn, repeat: int = 5) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, out


def _interleaved(functions, repeat: int = 5) -> list[tuple[float, object]]:
    """Best time of each function, run in turns so that machine noise hits all alike."""
    results = [(math.inf, None)] * len(functions)
    for _ in range(repeat):
        for i, fn in enumerate(functions):
            ms, out = _best_of(fn, 1)
            results[i] = (min(results[i][0], ms), out)
    return results


def engine_race(starts=(START,)):
    return optimizers.race(ROSENBROCK, METHODS, starts, STEPS, LR, grad_tol=0.0)


def bench_race() -> bool:
    print(f"(1) {len(METHODS)} optimizers x {STEPS} steps on Rosenbrock from {START}, stopping off "
          f"(best of 5, interleaved)")
    engine_race()  # parse, derive and load the compiled loop once, outside the timing
    (ours_ms, trajectories), (naive_ms, paths), (floats_ms, _) = _interleaved([
        engine_race,
        lambda: [naive(m, START, LR[m], STEPS) for m in METHODS],
        lambda: [plain_floats(m, START, LR[m], STEPS) for m in METHODS],
    ])
    worst = 0.0
    print(f"    {'method':9s} {'lr':>7s} {'final x':>12s} {'final y':>12s} {'status':>10s}")
    for method, trajectory, path in zip(METHODS, trajectories, paths):
        assert trajectory.points.shape == path.shape, (method, trajectory.message)
        worst = max(worst, float(np.max(np.abs(trajectory.points - path))))
        x, y = trajectory.final
        print(f"    {method:9s} {LR[method]:7.0e} {x:12.8f} {y:12.8f} {trajectory.status:>10s}")
    ratio = naive_ms / ours_ms
    same = worst <= 1e-9
    print(f"    engine race          {ours_ms:8.1f} ms   (< 50 ms: {'yes' if ours_ms < 50 else 'NO'})")
    print(f"    naive NumPy loop     {naive_ms:8.1f} ms   ratio {ratio:.2f}x (target >= 5x: "
          f"{'met' if ratio >= 5 else 'NOT met'})")
    print(f"    plain-float loop     {floats_ms:8.1f} ms   (context: no NumPy at all)")
    print(f"    largest difference between the engine's and the naive paths: {worst:.1e} "
          f"({'same to 1e-9' if same else 'DIFFERENT'})")
    for count in (4, 16, 64):
        starts = [(START[0] + 0.01 * i, START[1]) for i in range(count)]
        ms, _ = _best_of(lambda starts=starts: engine_race(starts), 3)
        print(f"    race with {count:3d} starts ({len(METHODS) * count:4d} rows): {ms:8.1f} ms; "
              f"the naive loop would take about {naive_ms * count:8.0f} ms "
              f"({naive_ms * count / ms:.0f}x)")
    return same


def bench_basins() -> bool:
    ok = True
    print("(2) 256 x 256 basin map of 500 steps on Himmelblau over [-5, 5]^2 (best of 3)")
    for method, lr in (("sgd", 0.01), ("adam", 0.05)):
        def run(method=method, lr=lr):
            return optimizers.basins(HIMMELBLAU, method, (-5, 5), (-5, 5), 256, 500, lr,
                                     grad_tol=1e-6)
        run()
        ms, basin = _best_of(run, 3)
        labels = basin.labels
        share = [f"{np.mean(labels == i):.2f}" for i in range(len(basin.kinds))]
        print(f"    {method:5s} lr={lr:<5g} {ms:7.1f} ms (< 1 s: {'yes' if ms < 1000 else 'NO'}); "
              f"{len(basin.kinds)} points reached {basin.kinds}, shares {share}; "
              f"diverged {np.mean(labels == -1):.3f}, not converged {np.mean(labels == -2):.3f}; "
              f"median steps {statistics.median(basin.steps_taken.ravel().tolist()):.0f}")
        ok &= ms < 1000
    return ok


def bench_animation() -> bool:
    """(3) Playback of a 6-optimizer race in the real panel: frames shown per second and the
    longest gap between them (needs a display; run under xvfb-run)."""
    import os
    import time

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("(3) skipped: no display (run under xvfb-run for the animation figures)")
        return True
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app import style
    from app.panels.descent import FPS, DescentPanel, DescentSettings
    from app.panels.surface import SurfacePanel, SurfaceSettings

    style.configure_pyqtgraph()
    _app = QApplication.instance() or QApplication([])  # kept alive while the panels run
    surface = SurfacePanel(settings=SurfaceSettings(text=HIMMELBLAU, preset=None, x_range=(-5, 5),
                                                    y_range=(-5, 5)))
    methods = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
    panel = DescentPanel(surface, settings=DescentSettings(methods=methods, start=(-0.5, 4.5), lr=0.01,
                                                           steps=400, speed=1))
    panel.resize(1400, 850)
    panel.show()

    def spin(ms):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    while not panel.trajectories:
        spin(50)
    stamps = []
    panel.frameShown.connect(lambda _k: stamps.append(time.perf_counter()))
    panel.reset()
    stamps.clear()
    panel.play()
    spin(5000)
    panel.pause()
    gaps = np.diff(stamps) * 1000
    fps = len(gaps) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    ok = fps >= 0.9 * FPS and float(np.percentile(gaps, 95)) <= 2.5 * 1000 / FPS
    print(f"(3) playback of 6 optimizers in the panel (timer at {FPS} fps, 5 s): {fps:.1f} frames/s, "
          f"gap median {np.median(gaps):.1f} ms, p95 {np.percentile(gaps, 95):.1f} ms, "
          f"max {gaps.max():.1f} ms: {'smooth' if ok else 'NOT smooth'}")
    panel.shutdown()
    surface.shutdown()
    from app import lifecycle

    lifecycle.dispose(panel)
    lifecycle.dispose(surface)
    return ok


if __name__ == "__main__":
    bench_race()
    bench_basins()
    bench_animation()
