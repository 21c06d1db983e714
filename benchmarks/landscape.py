"""Loss-landscape benchmarks (Li et al. 2018 on the digits network), each measured side by
side with its baseline in one run.

    .venv/bin/python benchmarks/landscape.py

(1) A 51 x 51 filter-normalised landscape of the trained 64-32-10 digits network over all
    1 797 samples (the whole of ``engine.landscape.landscape``: directions, the trajectory's
    projection, the plane's set-up, the grid and the centre) against the straightforward
    loop: for every node, ``MLP.set_parameters(theta* + a d1 + b d2)`` and
    ``MLP.evaluate(X, y)``. Both grids (loss and accuracy) must agree to 1e-6. The loop is
    timed with one BLAS thread, as the engine runs its chunks (the fair and the faster
    baseline on a busy two-core machine), and once more with OpenBLAS's default threads.
                                                  targets: ratio >= 3x; engine < 0.5 s
    The network is trained (and cached) before the timing; training time is printed for
    context (target: well under a few seconds), as are the PCA map and the 1-D
    interpolation between the small-batch and the large-batch solutions.
(2) A proxy for the GUI's responsiveness: the landscape generator runs on a worker thread
    (as the app's JobRunner runs it) while the main thread wakes every 5 ms; the longest gap
    between two wake-ups, three runs each with the network cached and with a fresh
    training. For reading the numbers on a shared machine: the same loop with no worker
    (the machine's own jitter) and beside a control worker that only calls np.exp on large
    arrays for 0.5 s (never holds the GIL for long): gaps the control shows too come from
    the operating system's scheduling, not from the engine.
                                                  target: longest gap < 50 ms in every run
(3) The real thing, when a display is there (run under xvfb-run): the surface panel computes
    a 51 x 51 landscape through its JobRunner while a 5 ms QTimer on the GUI thread records
    the gaps between its ticks, from the request until the result reaches the GUI thread;
    then, reported beside it, the longest gap while the result is drawn (the handler and
    the first paint of both views: GUI work, done once per landscape, like drawing any new
    surface). The first landscape of the process is reported apart (it trains the network
    and loads compiled code); then three runs with new direction seeds.
                                                  target: longest gap while computing < 50 ms
(4) Optimizers restricted to the plane (the descent tab on a landscape): three methods x
    300 steps, against one SGD path by a plain loop of backward passes.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import landscape as LS  # noqa: E402

GRID = 51


def _best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def per_point_loop(result: LS.LandscapeResult) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: one full forward pass per node, as one would first write it."""
    X, y = LS.digits_samples(result.request.samples)
    net = result.model.network()
    theta, d1, d2 = result.model.theta, result.directions.d1, result.directions.d2
    loss = np.empty((len(result.y), len(result.x)))
    accuracy = np.empty_like(loss)
    for r, b in enumerate(result.y):
        for c, a in enumerate(result.x):
            net.set_parameters(theta + a * d1 + b * d2)
            ev = net.evaluate(X, y)
            loss[r, c], accuracy[r, c] = ev.loss, ev.accuracy
    return loss, accuracy


def bench_grid() -> bool:
    request = LS.LandscapeRequest(grid=GRID)
    t0 = time.perf_counter()
    model = LS.train_model(request.training)
    print(f"(1) digits network {model.widths}, {request.training.method}, batch "
          f"{request.training.batch_size}, {request.training.steps} steps: trained in "
          f"{model.seconds:.2f} s ({time.perf_counter() - t0:.2f} s with loading the data); "
          f"loss {model.evaluation.loss:.4f}, accuracy {model.evaluation.accuracy:.4f}")
    LS.landscape(LS.LandscapeRequest(grid=3))  # compile / load the compiled kernel once
    ours, result = _best_of(lambda: LS.landscape(request), 7)
    def one_thread_loop():
        with LS._one_blas_thread():
            return per_point_loop(result)

    loop, (loss, accuracy) = _best_of(one_thread_loop, 2)
    default_loop, _ = _best_of(lambda: per_point_loop(result), 1)
    worst = float(np.max(np.abs(result.loss - loss)))
    same_accuracy = bool(np.array_equal(result.accuracy, accuracy))
    ratio = loop / ours
    fast, faster = ours < 0.5, ratio >= 3
    print(f"    {GRID} x {GRID} landscape over {len(LS.digits_samples()[1])} samples, filter "
          f"directions, span [-1, 1]^2")
    print(f"    engine                {ours * 1000:8.1f} ms   (< 500 ms: "
          f"{'yes' if fast else 'NO'}); best of 7, {result.plane.chunk_size} points a chunk")
    print(f"    per-point loop        {loop * 1000:8.1f} ms   ratio {ratio:.1f}x "
          f"(target >= 3x: {'met' if faster else 'NOT met'}); one BLAS thread, best of 2")
    print(f"    per-point loop        {default_loop * 1000:8.1f} ms   with OpenBLAS's default "
          f"threads (one run, for context)")
    agree = "same to 1e-6" if worst <= 1e-6 else "DIFFERENT"
    accuracies = "identical" if same_accuracy else "DIFFERENT"
    print(f"    largest loss difference {worst:.1e} ({agree}); accuracy grids {accuracies}; "
          f"centre {result.centre_loss:.6f}, range {np.nanmin(result.loss):.4f} .. "
          f"{np.nanmax(result.loss):.3f}")
    pca_s, pca = _best_of(lambda: LS.landscape(LS.LandscapeRequest(grid=GRID,
                                                                   directions="pca")), 3)
    ev = pca.directions.explained_variance
    print(f"    context: PCA map {pca_s * 1000:.0f} ms, span {pca.span:g}, explained variance "
          f"{ev[0]:.3f} + {ev[1]:.3f}, path in plane {pca.path_captured:.2f} (random plane: "
          f"{result.path_captured:.4f})")
    t0 = time.perf_counter()
    line = LS.interpolate(LS.InterpolationRequest())
    print(f"    context: 1-D interpolation small -> large batch, {len(line.t)} nodes, "
          f"{time.perf_counter() - t0:.2f} s with training; loss at t = 0, 0.5, 1: "
          f"{line.loss[line.t == 0][0]:.4f}, {line.loss[line.t == 0.5][0]:.4f}, "
          f"{line.loss[line.t == 1][0]:.4f}")
    return fast and faster and worst <= 1e-6 and same_accuracy


def longest_gap(request: LS.LandscapeRequest, tick: float = 0.005) -> tuple[float, float, int]:
    """Run the generator on a worker thread; the main thread sleeps ``tick`` at a time and
    records the gaps between its wake-ups. Returns (longest gap, job seconds, wake-ups)."""
    done = threading.Event()
    elapsed = []

    def work():
        t0 = time.perf_counter()
        for _ in LS.compute_landscape(request):
            pass
        elapsed.append(time.perf_counter() - t0)
        done.set()

    worker = threading.Thread(target=work, name="landscape-bench")
    last, gaps = time.perf_counter(), []
    worker.start()
    while not done.is_set():
        time.sleep(tick)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    worker.join()
    return max(gaps), elapsed[0], len(gaps)


def control_gap(seconds: float = 0.5, tick: float = 0.005) -> float:
    """The longest gap beside a worker that only runs np.exp on large arrays."""
    done = threading.Event()
    x = np.linspace(-5.0, 5.0, 500_000)
    out = np.empty_like(x)

    def work():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            np.exp(x, out=out)
        done.set()

    worker = threading.Thread(target=work, name="control")
    last, gaps = time.perf_counter(), []
    worker.start()
    while not done.is_set():
        time.sleep(tick)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    worker.join()
    return max(gaps)


def idle_gap(seconds: float = 0.5, tick: float = 0.005) -> float:
    """The longest gap of the same wake-up loop with nothing else running."""
    last, gaps = time.perf_counter(), []
    end = last + seconds
    while last < end:
        time.sleep(tick)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return max(gaps)


def bench_responsiveness() -> bool:
    ok = True
    controls = ", ".join(f"{control_gap() * 1000:.1f}" for _ in range(3))
    print(f"(2) the generator on a worker thread, the main thread waking every 5 ms "
          f"(no worker: longest gap {idle_gap() * 1000:.1f} ms; beside the np.exp control "
          f"worker: {controls} ms)")
    for name, fresh in (("cached network", False), ("fresh training", True)):
        runs = []
        for k in range(3):
            training = LS.TrainingSettings(seed=100 + k) if fresh else LS.SMALL_BATCH
            runs.append(longest_gap(LS.LandscapeRequest(grid=GRID, seed=10 + k,
                                                         training=training)))
        worst = max(gap for gap, _, _ in runs)
        ok &= worst < 0.05
        gaps = ", ".join(f"{gap * 1000:.1f}" for gap, _, _ in runs)
        jobs = ", ".join(f"{seconds * 1000:.0f}" for _, seconds, _ in runs)
        print(f"    {name:15s} jobs of {jobs} ms: longest gaps {gaps} ms "
              f"(< 50 ms: {'yes' if worst < 0.05 else 'NO'})")
    return ok


def bench_window() -> bool:
    """(3) The GUI thread's longest stall while the real panel computes, and the cost of
    drawing the result once it is in."""
    if not os.environ.get("DISPLAY"):
        print("(3) skipped: no display (run under xvfb-run for the real window)")
        return True
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app import jobs, lifecycle, style
    from app.panels.surface import LandscapeSettings, SurfacePanel

    arrivals: list[float] = []

    class TimedPanel(SurfacePanel):
        """The panel with the moment its result handler starts recorded."""

        def _on_landscape(self, job) -> None:
            arrivals.append(time.perf_counter())
            super()._on_landscape(job)

    style.configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    panel = TimedPanel()
    panel.resize(1400, 800)
    panel.show()
    ok = True

    def run(seed: int) -> tuple[float, float, float]:
        """Longest gap before the result arrives, longest gap from then until 300 ms after
        the views were updated (handler and first paint), and the seconds to the result."""
        ticks: list[float] = [time.perf_counter()]
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        done = QEventLoop()
        panel.landscapeDrawn.connect(done.quit)
        arrivals.clear()
        t0 = time.perf_counter()
        timer.start()
        panel.set_landscape(LandscapeSettings(grid=GRID, seed=seed))
        QTimer.singleShot(60_000, done.quit)
        done.exec()
        QTimer.singleShot(300, done.quit)  # the paint follows the handler
        done.exec()
        timer.stop()
        panel.landscapeDrawn.disconnect(done.quit)
        t = np.array(ticks)
        arrived = arrivals[0] if arrivals else t[-1]
        before = np.diff(t[t <= arrived])
        tail = np.diff(np.concatenate([[t[t <= arrived][-1]], t[t > arrived]]))
        return (float(before.max()) if before.size else 0.0,
                float(tail.max()) if tail.size else 0.0, arrived - t0)

    try:
        loop = QEventLoop()
        panel.surfaceDrawn.connect(loop.quit)
        QTimer.singleShot(60_000, loop.quit)
        loop.exec()
        compute, draw, cold = [], [], run(10)
        print(f"    first landscape in this process (training, compiled code loaded): "
              f"{cold[2]:.2f} s, longest gap while computing {cold[0] * 1000:.1f} ms, "
              f"drawing {cold[1] * 1000:.1f} ms")
        for seed in (11, 12, 13):
            gap, paint, seconds = run(seed)
            compute.append(gap)
            draw.append(paint)
            print(f"    seed {seed}: result after {seconds:.2f} s; longest GUI gap while it "
                  f"computed {gap * 1000:.1f} ms; drawing it (handler + first paint of both "
                  f"views) {paint * 1000:.1f} ms")
        idle = idle_gap()
        ok = max(compute) < 0.05
        print(f"(3) real window, {GRID} x {GRID}: longest GUI stall while the landscape is "
              f"computed {max(compute) * 1000:.1f} ms (target < 50 ms: "
              f"{'met' if ok else 'NOT met'}); drawing the finished landscape "
              f"{max(draw) * 1000:.1f} ms; the same timer with nothing to do {idle * 1000:.1f} ms")
    finally:
        panel.shutdown()
        jobs.shutdown_all()
        lifecycle.dispose(panel)
    return ok


def bench_plane_race() -> bool:
    """(4) Optimizers restricted to the plane: a race of three methods for 300 steps."""
    from engine import optimizers

    result = LS.landscape(LS.LandscapeRequest(grid=3))
    field = LS.PlaneField(result.plane)
    methods = ("sgd", "momentum", "adam")
    seconds, out = _best_of(lambda: optimizers.race(field, methods, [(-0.6, 0.5)], 300, 0.05,
                                                     grad_tol=0.0), 2)
    network = result.model.network()
    X, y = LS.digits_samples("all")

    def naive():  # the textbook SGD loop on full parameter vectors, projected by hand
        p = np.array([-0.6, 0.5])
        plane = result.plane
        for _ in range(300):
            network.set_parameters(plane.theta(*p))
            g = network.backward(X, y).gradient
            p = p - 0.05 * np.array([g @ plane.d1, g @ plane.d2])
        return p
    per_race, _ = _best_of(naive, 1)
    print(f"(4) 3 optimizers x 300 steps on the plane (one backward pass per step and "
          f"optimizer): {seconds:.2f} s; one SGD path by a plain loop of MLP backward "
          f"passes: {per_race:.2f} s; SGD end point {out[0].points[-1].round(4)}")
    return True


if __name__ == "__main__":
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} at the start")
    good = bench_grid()
    good &= bench_responsiveness()
    good &= bench_window()
    good &= bench_plane_race()
    print("all targets met" if good else "SOME TARGETS NOT MET")
