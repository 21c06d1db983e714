"""Backpropagation benchmark: training steps per second, engine against scikit-learn.

    .venv/bin/python benchmarks/backprop.py

A 2-8-8-1 network (relu hidden layers, one logistic output unit with the binary
cross-entropy loss, L2 on the non-bias weights) trained by full-batch gradient descent on
500 points of two moons. The engine's ``Trainer.step`` (eq. 6 of seed 003: forward pass,
backward pass, L2 term, update, divergence guard, loss history) against scikit-learn's
``MLPClassifier(hidden_layer_sizes=(8, 8), solver="sgd", batch_size=500, momentum=0)`` with
one ``partial_fit`` per step: the same network, loss and update. scikit-learn writes the L2
term as alpha / (2 n) sum w^2 and the engine as lambda sum w^2 (eq. 40), so alpha =
2 n lambda makes them equal.

Both start from the same weights and must follow the same path: their losses agree to 1e-9
after every step (checked before the timing). Both are warmed up, then timed in turns
(interleaved repeats, so that machine noise hits both alike); the best repeat counts.
                                                    target: engine >= 1.5x scikit-learn
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from engine.datasets import make_dataset  # noqa: E402
from engine.mlp import MLP  # noqa: E402
from engine.training import Trainer  # noqa: E402

POINTS = 500
LR = 0.1
L2 = 1e-4
STEPS = 300  # per timed repeat
REPEATS = 7
CHECK_STEPS = 50
TARGET = 1.5


def engine_trainer(max_steps: int) -> Trainer:
    data = make_dataset("moons", POINTS, noise=0.1, seed=0)
    net = MLP((2, 8, 8, 1), "relu", "cross_entropy", l2=L2, seed=0)
    return Trainer(net, data, method="sgd", lr=LR, batch_size=None, max_steps=max_steps,
                   patience=None)


def sklearn_model(trainer: Trainer) -> MLPClassifier:
    """scikit-learn's network, initialised by one partial_fit and then given the engine's
    current weights (W(l) = [bias | coef.T])."""
    clf = MLPClassifier(hidden_layer_sizes=(8, 8), activation="relu", solver="sgd",
                        batch_size=POINTS, learning_rate="constant", learning_rate_init=LR,
                        momentum=0.0, nesterovs_momentum=False, alpha=2 * POINTS * L2,
                        shuffle=False, random_state=0)
    X, y = trainer.X, trainer.y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(X, y, classes=np.array([0, 1]))
    for l, W in enumerate(trainer.network.weights[1:]):
        clf.coefs_[l][...] = W[:, 1:].T
        clf.intercepts_[l][...] = W[:, 0]
    return clf


def sklearn_steps(clf: MLPClassifier, X, y, steps: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(steps):
            clf.partial_fit(X, y)


def engine_steps(trainer: Trainer, steps: int) -> None:
    step = trainer.step
    for _ in range(steps):
        step()


def check_same_path() -> float:
    """Largest relative difference of the two loss curves over CHECK_STEPS steps."""
    trainer = engine_trainer(CHECK_STEPS)
    clf = sklearn_model(trainer)
    skipped = len(clf.loss_curve_)
    sklearn_steps(clf, trainer.X, trainer.y, CHECK_STEPS)
    engine_steps(trainer, CHECK_STEPS)
    ours = trainer.train_history[1]
    theirs = np.array(clf.loss_curve_[skipped:])
    return float(np.max(np.abs(ours - theirs) / np.abs(theirs)))


def main() -> bool:
    print(f"2-8-8-1 relu network, binary cross-entropy, L2 {L2:g}, full-batch gradient descent "
          f"(lr {LR}) on {POINTS} points of two moons")
    worst = check_same_path()
    same = worst <= 1e-9
    print(f"    same losses as scikit-learn over {CHECK_STEPS} steps from the same weights: "
          f"largest relative difference {worst:.1e} ({'same to 1e-9' if same else 'DIFFERENT'})")

    warm = 100
    trainer = engine_trainer(warm + STEPS * REPEATS + 1)
    clf = sklearn_model(trainer)
    X, y = trainer.X, trainer.y
    engine_steps(trainer, warm)
    sklearn_steps(clf, X, y, warm)
    times: dict[str, list[float]] = {"engine": [], "sklearn": []}
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        engine_steps(trainer, STEPS)
        times["engine"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sklearn_steps(clf, X, y, STEPS)
        times["sklearn"].append(time.perf_counter() - t0)
    assert not trainer.done or trainer.status.startswith("finished"), trainer.status

    rate = {name: STEPS / min(t) for name, t in times.items()}
    median = {name: STEPS / statistics.median(t) for name, t in times.items()}
    ratio = rate["engine"] / rate["sklearn"]
    print(f"    {STEPS} steps per repeat, {REPEATS} interleaved repeats after {warm} warm-up "
          f"steps each (best; median in brackets)")
    for name, label in (("engine", "engine Trainer.step"),
                        ("sklearn", "scikit-learn partial_fit")):
        print(f"    {label:26s} {rate[name]:9.0f} steps/s ({median[name]:7.0f})  "
              f"{1e6 / rate[name]:7.1f} us/step")
    met = ratio >= TARGET
    print(f"    ratio {ratio:.2f}x (median {median['engine'] / median['sklearn']:.2f}x); "
          f"target >= {TARGET}x: {'met' if met else 'NOT met'}")
    final = trainer.network.evaluate(X, y)
    print(f"    (after {trainer.steps} engine steps: loss {final.loss:.4f}, "
          f"accuracy {final.accuracy:.3f}; the finite-check and history cost is included)")
    return met and same and math.isfinite(final.loss)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
