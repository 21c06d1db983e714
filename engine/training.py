"""Training depth-L networks: mini-batches, dropout, the optimizers, the stopping rules.

:class:`Trainer` runs mini-batch training of an :class:`engine.mlp.MLP` with any method of
``engine.optimizers`` (plain gradient descent is seed 003's eq. 6; the others use the same
constants as the descent lab), inverted dropout, seed 003's validation stopping rule (stop
when the validation loss has not improved for ``patience`` evaluations and restore the best
weights) and a divergence guard (a non-finite loss or weight stops the run with "diverged at
step k" and restores the last finite weights).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.mlp import MLP, Evaluation, _Workspace
from engine.optimizers import DEFAULTS, METHODS, _constants, learning_rates

__all__ = ["StepRecord", "Trainer"]


@dataclass(frozen=True)
class StepRecord:
    """What one training step reports: its number (from 1), the mini-batch loss at the
    weights it started from, and the validation loss when it evaluated one."""

    step: int
    loss: float
    validation_loss: float | None = None




# -- optimizers -------------------------------------------------------------------------------

class _Optimizer:
    """The update rules of engine.optimizers on one flat parameter vector, in place.

    Constants come from ``engine.optimizers.DEFAULTS`` (overridable); buffers are allocated
    once. AdamW's decoupled decay skips the bias weights, like the L2 term of eq. 40.
    """

    def __init__(self, method: str, size: int, constants: Mapping[str, float] | None,
                 bias_mask: np.ndarray) -> None:
        self.method = method
        self.c = _constants(method, constants)
        self.m = np.zeros(size)
        self.s = np.zeros(size)
        self.tmp = np.empty(size)
        self.tmp2 = np.empty(size)
        self.decay = (~bias_mask).astype(np.float64)

    def update(self, theta: np.ndarray, g: np.ndarray, lr: float, t: int) -> None:
        c, m, s, tmp, method = self.c, self.m, self.s, self.tmp, self.method
        if method == "sgd":  # seed 003 eq. 6
            np.multiply(g, lr, out=tmp)
        elif method in ("momentum", "nesterov"):  # v <- beta v + g
            np.multiply(m, c["beta"], out=m)
            np.add(m, g, out=m)
            if method == "momentum":
                np.multiply(m, lr, out=tmp)
            else:  # step lr (g + beta v)
                np.multiply(m, c["beta"], out=tmp)
                np.add(tmp, g, out=tmp)
                np.multiply(tmp, lr, out=tmp)
        elif method in ("adagrad", "rmsprop"):
            np.multiply(g, g, out=tmp)
            if method == "rmsprop":  # s <- rho s + (1 - rho) g^2
                np.multiply(s, c["rho"], out=s)
                np.multiply(tmp, 1.0 - c["rho"], out=tmp)
            np.add(s, tmp, out=s)
            np.sqrt(s, out=tmp)
            np.add(tmp, c["eps"], out=tmp)
            np.divide(g, tmp, out=tmp)
            np.multiply(tmp, lr, out=tmp)
        else:  # adam, adamw: Kingma & Ba's Algorithm 1 with bias correction
            b1, b2, tmp2 = c["beta1"], c["beta2"], self.tmp2
            if method == "adamw" and c["weight_decay"]:  # theta <- theta - lr wd theta
                np.multiply(theta, self.decay, out=tmp2)
                np.multiply(tmp2, lr * c["weight_decay"], out=tmp2)
                np.subtract(theta, tmp2, out=theta)
            np.multiply(m, b1, out=m)
            np.multiply(g, 1.0 - b1, out=tmp)
            np.add(m, tmp, out=m)
            np.multiply(s, b2, out=s)
            np.multiply(g, g, out=tmp)
            np.multiply(tmp, 1.0 - b2, out=tmp)
            np.add(s, tmp, out=s)
            np.multiply(s, 1.0 / (1.0 - b2 ** t), out=tmp)  # v_hat
            np.sqrt(tmp, out=tmp)
            np.add(tmp, c["eps"], out=tmp)
            np.divide(m, tmp, out=tmp)
            np.multiply(tmp, lr / (1.0 - b1 ** t), out=tmp)  # lr m_hat / (sqrt v_hat + eps)
        np.subtract(theta, tmp, out=theta)


# -- training ---------------------------------------------------------------------------------

def _xy(data) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "X") and hasattr(data, "y"):
        return np.asarray(data.X, dtype=np.float64), np.asarray(data.y)
    X, y = data
    return np.asarray(X, dtype=np.float64), np.asarray(y)


class Trainer:
    """Mini-batch training of an :class:`MLP`, one optimizer step per :meth:`step`.

    Parameters
    ----------
    network : MLP
        Trained in place.
    train, validation : Dataset or (X, y)
        The validation set is never used for gradients (seed 003's stopping rule).
    method : str
        One of ``engine.optimizers.METHODS``; "sgd" is plain gradient descent, eq. 6.
    lr : float
        Initial learning rate eta; ``schedule`` (see ``engine.optimizers.learning_rates``)
        spreads it over ``max_steps``.
    batch_size : int, optional
        Examples per step; None uses the whole training set (full-batch descent). The
        order is reshuffled every epoch from ``seed``, which also seeds dropout.
    max_steps : int
    patience : int, optional
        Seed 003's validation stopping rule: stop when the validation loss has not improved
        for ``patience`` evaluations (one every ``eval_every`` steps) and restore the
        weights of the best one. None never stops early.
    constants : mapping, optional
        Overrides of the method's constants in ``engine.optimizers.DEFAULTS``.

    A step whose loss or new weights are not finite ends training with the status
    "diverged at step k" and restores the last weights whose loss was finite; histories
    hold finite numbers only.
    """

    def __init__(self, network: MLP, train, validation=None, *, method: str = "sgd",
                 lr: float = 0.1, batch_size: int | None = None, max_steps: int = 10_000,
                 schedule: str = "constant", patience: int | None = 20, eval_every: int = 10,
                 seed: int = 0, constants: Mapping[str, float] | None = None) -> None:
        if method not in DEFAULTS:
            raise ValueError(f"unknown method {method!r} (methods: {', '.join(METHODS)})")
        lr = float(lr)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning rate must be positive and finite, got {lr!r}")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps!r}")
        if int(eval_every) < 1 or (patience is not None and int(patience) < 1):
            raise ValueError("eval_every and patience must be at least 1")
        self.network = net = network
        self.X, self.y = _xy(train)
        net._inputs(self.X)
        self.T = net.targets(self.y)
        n = self.X.shape[0]
        if n < 1 or self.T.shape[0] != n:
            raise ValueError(f"{n} training inputs but {self.T.shape[0]} targets")
        self.batch_size = n if batch_size is None else int(batch_size)
        if not 1 <= self.batch_size <= n:
            raise ValueError(f"batch_size must be 1 to {n} (the training set), got {batch_size!r}")
        self.method, self.max_steps = method, int(max_steps)
        self.patience = None if patience is None else int(patience)
        self.eval_every = int(eval_every)
        self.rates = learning_rates(lr, self.max_steps, schedule)
        self._rng = np.random.default_rng(seed)
        self._optimizer = _Optimizer(method, net.size, constants, net.bias_mask)
        self._dropping = net.dropout > 0
        self._spaces: dict[int, _Workspace] = {}
        self._full = self.batch_size == n
        if self._full:  # inputs loaded once: every step sees the same batch
            self._workspace(n).load(self.X)
        self._order = np.arange(n)
        self._position = n  # start a new epoch at the first step
        self.epoch = 0
        self.validation = None
        if validation is not None:
            Xv, yv = _xy(validation)
            self.validation = (net._inputs(Xv), yv)
            self._val_T = net.targets(yv)
            self._val_ws = _Workspace(net.widths, Xv.shape[0], False)
            self._val_ws.load(Xv)
        self.steps = 0
        self.status = "ready"
        self.done = False
        self.best_step: int | None = None
        self.best_loss = math.inf
        self._best = net._theta.copy()
        self._last_good = net._theta.copy()
        self._since_best = 0
        self._train_steps: list[int] = []
        self._train_losses: list[float] = []
        self._val_steps: list[int] = []
        self._val_losses: list[float] = []

    # -- histories --------------------------------------------------------------------------
    @property
    def train_history(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, losses): the mini-batch loss of eq. 40 at each step, all finite."""
        return np.array(self._train_steps, dtype=np.int64), np.array(self._train_losses)

    @property
    def validation_history(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, losses) of the validation evaluations, all finite."""
        return np.array(self._val_steps, dtype=np.int64), np.array(self._val_losses)

    # -- stepping ---------------------------------------------------------------------------
    def _workspace(self, n: int) -> _Workspace:
        ws = self._spaces.get(n)
        if ws is None:
            ws = self._spaces[n] = _Workspace(self.network.widths, n, self._dropping)
        return ws

    def _batch(self) -> tuple[_Workspace, np.ndarray]:
        n = self.X.shape[0]
        if self._full:
            self.epoch += 1
            return self._spaces[n], self.T
        if self._position >= n:
            self._order = self._rng.permutation(n)
            self._position = 0
            self.epoch += 1
        index = self._order[self._position:self._position + self.batch_size]
        self._position += self.batch_size
        ws = self._workspace(index.size)
        np.take(self.X, index, axis=0, out=ws.hidden[0])
        return ws, self.T[index]

    def _stop(self, status: str) -> None:
        self.status, self.done = status, True

    def _diverge(self, k: int) -> None:
        np.copyto(self.network._theta, self._last_good)
        self._stop(f"diverged at step {k}")

    def step(self) -> StepRecord | None:
        """One optimizer step on the next mini-batch; None once training has stopped
        (see :attr:`status`), including a step that diverged."""
        if self.done:
            return None
        net, k = self.network, self.steps + 1
        ws, T = self._batch()
        with np.errstate(all="ignore"):
            loss = net._loss_gradient(ws, T, self._rng if self._dropping else None)
            if not math.isfinite(loss):
                self._diverge(k)
                return None
            np.copyto(self._last_good, net._theta)
            self._optimizer.update(net._theta, net._grad, float(self.rates[k - 1]), k)
            if not math.isfinite(float(net._theta.sum())):
                self._diverge(k)
                return None
        self.steps = k
        self.status = "training"
        self._train_steps.append(k)
        self._train_losses.append(loss)
        validation_loss = None
        if self.validation is not None and k % self.eval_every == 0:
            validation_loss = self._validate(k)
        if not self.done and k >= self.max_steps:
            self._stop(f"finished: {k} steps")
        return StepRecord(k, loss, validation_loss)

    def _validate(self, k: int) -> float | None:
        """Seed 003's rule: evaluate on held-out data; stop after ``patience`` evaluations
        without improvement, restoring the best weights seen."""
        net = self.network
        with np.errstate(all="ignore"):
            loss = net._data_loss(self._val_ws, self._val_T) + net._l2_term()
        if not math.isfinite(loss):
            self._diverge(k)
            return None
        self._val_steps.append(k)
        self._val_losses.append(loss)
        if loss < self.best_loss:
            self.best_loss, self.best_step, self._since_best = loss, k, 0
            np.copyto(self._best, net._theta)
        else:
            self._since_best += 1
            if self.patience is not None and self._since_best >= self.patience:
                np.copyto(net._theta, self._best)
                self._stop(f"stopped early at step {k}: validation loss not improved for "
                           f"{self.patience} evaluations; weights of step {self.best_step} "
                           f"restored")
        return loss

    def run(self, steps: int) -> int:
        """Up to ``steps`` steps, fewer if training stops; returns the number taken."""
        taken = 0
        while taken < steps and self.step() is not None:
            taken += 1
        return taken

    # -- the network's views, for convenience -----------------------------------------------
    def evaluate(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> Evaluation:
        """Loss and accuracy on (X, y), by default on the validation set (else training)."""
        if X is None:
            X, y = self.validation if self.validation is not None else (self.X, self.y)
        return self.network.evaluate(X, y)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.network.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.network.predict(X)

    def confusion_matrix(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.network.confusion_matrix(X, y)

    def decision_map(self, x_range, y_range, n: int = 100, class_index: int | None = 1):
        return self.network.decision_map(x_range, y_range, n, class_index)

    def hidden_activation_maps(self, x_range, y_range, n: int = 32) -> list[np.ndarray]:
        return self.network.hidden_activation_maps(x_range, y_range, n)
