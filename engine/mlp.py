"""Depth-L fully connected networks trained by backpropagation, in the notation of seed 003.

Layer 0 is the input x, layers 1 .. L-1 are hidden and layer L is the output; layer l has
m_l units. Following the seed, every layer's input has a constant a_0^(l-1) = 1 in position
0 (eq. 28), so the bias is a weight like the others: W(l) is the m_l x (m_{l-1} + 1) matrix
with [W(l)]_{i,j} = w_ij^(l), the weight from unit j of layer l-1 to unit i of layer l, and
column j = 0 holding the bias weights w_i0^(l). Units are numbered from 1 as in the seed,
so w_ij^(l) is ``W[i - 1, j]`` in NumPy. All tuples indexed by layer use the seed's l:
``weights[l]`` is W(l), ``z[l]`` is z(l), ``delta[l]`` is delta(l) and ``G[l]`` is G(l), for
l = 1 .. L, with ``None`` in slot 0; ``a[0]`` is x.

Forward pass (eqs. 32-33): z(l) = W(l) [1; a(l-1)], a(l) = sigma(z(l)). For a batch the
examples are rows, so Z(l) = A(l-1) W(l)^T with A(l-1) = [1 | a(l-1)] of shape (n, m_{l-1}+1).

Output and loss:

* ``loss="squared"``: l = ||a(L) - y||^2 (eq. 35), summed over the outputs, not halved. As
  in eqs. 33-36 the output layer uses the network's activation sigma unless ``output``
  names another ("identity" for regression). Integer labels become one-hot targets when
  there are several outputs; with one output the label 0/1 is the target and
  :meth:`MLP.predict` thresholds the output at 0.5.
* ``loss="cross_entropy"``: a softmax output (eq. 55) with l = -log yhat_c (eq. 67). Its
  output errors are delta(L) = s - onehot(y): with eqs. 56-57, dl/dz_j = sum_i (-y_i / s_i)
  s_i (delta_ij - s_j) = s_j - y_j. A single output unit is the two-class softmax with the
  other score fixed at 0: yhat = 1 / (1 + e^-z), the same delta, as scikit-learn's
  MLPClassifier does for two classes.

Mean loss (eq. 40): L_mean = (1/n) sum l + lambda sum_l sum_i sum_{j>=1} (w_ij^(l))^2; the
bias weights j = 0 are not regularised, so eq. 41 has no L2 term and eq. 42 adds
2 lambda w_ij. Backward pass (eqs. 36-39, 45): delta(L) as above, delta(l) =
(delta(l+1) W(l+1)[:, 1:]) * sigma'(z(l)) and G(l) = (1/n) delta(l)^T A(l-1) + 2 lambda W(l)
with zero in column 0 of the L2 term. All parameters live in one float64 vector in the
order of eq. 43 (row after row of W(1), then W(2), ...), of which the W(l) are views; so
an optimizer step is a handful of NumPy calls on one vector, whatever the depth.

Training (mini-batches, dropout, the optimizers, the stopping rules) is in
:mod:`engine.training`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ACTIVATIONS", "LOSSES", "OUTPUTS", "LEAKY_SLOPE",
    "MIN_HIDDEN_LAYERS", "MAX_HIDDEN_LAYERS", "MAX_WIDTH", "MAX_INPUTS", "MAX_GRID",
    "MLP", "Network", "Forward", "Backprop", "Evaluation",
    "flatten", "unflatten", "softmax", "grid_points",
]

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
LOSSES = ("squared", "cross_entropy")
OUTPUTS = ("identity",) + ACTIVATIONS  # output activations allowed with the squared loss
LEAKY_SLOPE = 0.01  # slope of leaky_relu for z < 0
MIN_HIDDEN_LAYERS = 1
MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 256  # most units in a hidden layer, and most output units
MAX_INPUTS = 4096  # most input features
MAX_GRID = 1024  # largest side of a decision map or activation map
MAX_DROPOUT = 0.9


# -- parameter vectors -------------------------------------------------------------------------

def _shapes(widths: Sequence[int]) -> list[tuple[int, int]]:
    return [(widths[l], widths[l - 1] + 1) for l in range(1, len(widths))]


def flatten(matrices: Sequence[np.ndarray | None]) -> np.ndarray:
    """The stacked vector W of eq. 43 from W(1), ..., W(L): each matrix row by row.

    A leading ``None`` (slot 0 of a seed-indexed tuple) is skipped; works as well for the
    gradient matrices G(l), giving the gradient vector of eq. 44 in the same order.
    """
    return np.concatenate([np.asarray(m, dtype=np.float64).ravel()
                           for m in matrices if m is not None])


def unflatten(vector: np.ndarray, widths: Sequence[int]) -> tuple[np.ndarray | None, ...]:
    """(None, W(1), ..., W(L)) from a stacked vector of eq. 43; the inverse of :func:`flatten`.

    The matrices are copies of shape (m_l, m_{l-1} + 1).
    """
    vector = np.asarray(vector, dtype=np.float64)
    shapes = _shapes(widths)
    size = sum(r * c for r, c in shapes)
    if vector.shape != (size,):
        raise ValueError(f"widths {tuple(widths)} need a vector of {size} weights, "
                         f"got shape {vector.shape}")
    out: list[np.ndarray | None] = [None]
    start = 0
    for rows, cols in shapes:
        out.append(vector[start:start + rows * cols].reshape(rows, cols).copy())
        start += rows * cols
    return tuple(out)


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax along the last axis (eq. 55), computed as e^(z - max z) / sum for stability."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def grid_points(x_range: Sequence[float], y_range: Sequence[float], n: int) -> np.ndarray:
    """(n * n, 2) points of an n x n grid, row by row: point r * n + c is (xs[c], ys[r]).

    Values computed on these points reshape to (n, n) row-major images whose rows follow y.
    """
    (x0, x1), (y0, y1) = (_check_range(r, name) for r, name in
                          ((x_range, "x_range"), (y_range, "y_range")))
    if isinstance(n, bool) or int(n) != n or not 2 <= n <= MAX_GRID:
        raise ValueError(f"the grid size n must be an integer from 2 to {MAX_GRID}, got {n!r}")
    n = int(n)
    points = np.empty((n, n, 2))
    points[:, :, 0] = np.linspace(x0, x1, n)[None, :]
    points[:, :, 1] = np.linspace(y0, y1, n)[:, None]
    return points.reshape(n * n, 2)


def _check_range(r: Sequence[float], name: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in r)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be two finite numbers with lo < hi, got {tuple(r)!r}")
    return lo, hi


# -- activations ------------------------------------------------------------------------------

def _activate(kind: str, z: np.ndarray, out: np.ndarray) -> None:
    """out = sigma(z) for one of OUTPUTS; ``out`` may be a strided view."""
    if kind == "relu":  # eq. 30
        np.maximum(z, 0.0, out=out)
    elif kind == "tanh":
        np.tanh(z, out=out)
    elif kind == "sigmoid":  # 1 / (1 + e^-z) = (1 + tanh(z / 2)) / 2, with no overflow
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        np.multiply(out, 0.5, out=out)
        np.add(out, 0.5, out=out)
    elif kind == "leaky_relu":
        np.multiply(z, LEAKY_SLOPE, out=out)
        np.maximum(z, out, out=out)
    else:  # identity
        np.copyto(out, z)


def _times_derivative(kind: str, delta: np.ndarray, z: np.ndarray, a: np.ndarray,
                      tmp: np.ndarray) -> None:
    """delta *= sigma'(z), using the activation a = sigma(z) where that is cheaper."""
    if kind == "relu":  # eq. 31: 1{z > 0}, derivative 0 at the kink
        np.greater(z, 0.0, out=tmp)
        np.multiply(delta, tmp, out=delta)
    elif kind == "tanh":  # 1 - a^2
        np.multiply(a, a, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        np.multiply(delta, tmp, out=delta)
    elif kind == "sigmoid":  # a (1 - a)
        np.subtract(1.0, a, out=tmp)
        np.multiply(tmp, a, out=tmp)
        np.multiply(delta, tmp, out=delta)
    elif kind == "leaky_relu":
        np.greater(z, 0.0, out=tmp)
        np.multiply(tmp, 1.0 - LEAKY_SLOPE, out=tmp)
        np.add(tmp, LEAKY_SLOPE, out=tmp)
        np.multiply(delta, tmp, out=delta)


# -- results ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Forward:
    """A forward pass over n examples (rows); seed indexing, ``z[0]`` is None.

    ``a[l]`` is a(l) without the constant a_0 = 1 (n, m_l); ``a[0]`` is x and ``a[L]`` yhat.
    """

    z: tuple[np.ndarray | None, ...]
    a: tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class Backprop:
    """Loss and gradient of eq. 40 at the current weights, with the pass's intermediates.

    ``delta[l]`` (n, m_l) holds each example's error terms delta_i^(l) = dl/dz_i^(l)
    (eqs. 36-37, before averaging); ``G[l]`` is the gradient matrix of eq. 45 and
    ``gradient`` the same numbers stacked in the order of eq. 44.
    """

    loss: float
    z: tuple[np.ndarray | None, ...]
    a: tuple[np.ndarray, ...]
    delta: tuple[np.ndarray | None, ...]
    G: tuple[np.ndarray | None, ...]
    gradient: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """Mean loss of eq. 40 and the share of correct predictions (None for real targets)."""

    loss: float
    accuracy: float | None


class _Workspace:
    """Buffers of one forward and backward pass over n examples, allocated once.

    A[l-1] is [1 | a(l-1)] (n, m_{l-1} + 1) with its column of ones set here; Z, D hold
    z(l) and delta(l) / n; H the activations before dropout when dropout is on.
    """

    def __init__(self, widths: Sequence[int], n: int, dropout: bool) -> None:
        L = len(widths) - 1
        self.n = n
        self.A = [np.empty((n, m + 1)) for m in widths[:-1]]
        for A in self.A:
            A[:, 0] = 1.0
        self.hidden = [A[:, 1:] for A in self.A]  # a(l) views, l = 0 .. L-1
        self.Z = [np.empty((n, m)) for m in widths[1:]]
        self.D = [np.empty((n, m)) for m in widths[1:]]
        self.tmp = [np.empty((n, m)) for m in widths[1:]]
        self.out = np.empty((n, widths[-1]))
        self.col = np.empty((n, 1))
        self.col2 = np.empty((n, 1))
        self.H = [np.empty((n, m)) for m in widths[1:L]] if dropout else self.hidden[1:]
        self.masks = [np.empty((n, m)) for m in widths[1:L]] if dropout else []

    def load(self, X: np.ndarray) -> None:
        np.copyto(self.hidden[0], X)


# -- the network ------------------------------------------------------------------------------

def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    try:
        values = tuple(widths)
    except TypeError:
        raise ValueError(f"widths must be a sequence of layer sizes, got {widths!r}") from None
    if any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) for w in values):
        raise ValueError(f"layer widths must be integers, got {values!r}")
    hidden = len(values) - 2
    if not MIN_HIDDEN_LAYERS <= hidden <= MAX_HIDDEN_LAYERS:
        raise ValueError(f"a network has {MIN_HIDDEN_LAYERS} to {MAX_HIDDEN_LAYERS} hidden "
                         f"layers (widths = inputs, hidden..., outputs); {values!r} has "
                         f"{max(hidden, 0)}")
    if not 1 <= values[0] <= MAX_INPUTS:
        raise ValueError(f"the input width must be 1 to {MAX_INPUTS}, got {values[0]}")
    for l, m in enumerate(values[1:], start=1):
        if not 1 <= m <= MAX_WIDTH:
            kind = "output" if l == len(values) - 1 else f"hidden layer {l}"
            raise ValueError(f"the width of {kind} must be 1 to {MAX_WIDTH}, got {m}")
    return tuple(int(w) for w in values)


class MLP:
    """A fully connected network of layer widths (m_0, m_1, ..., m_L); see the module doc.

    Parameters
    ----------
    widths : sequence of int
        Inputs, then 1 to ``MAX_HIDDEN_LAYERS`` hidden widths of 1 to ``MAX_WIDTH``, then
        outputs (1 to ``MAX_WIDTH``), e.g. (2, 8, 8, 1).
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}
        sigma of the hidden layers.
    loss : {"squared", "cross_entropy"}
    l2 : float
        lambda of eq. 40 (bias weights excluded).
    dropout : float
        Probability of dropping each hidden unit while training (inverted dropout: kept units
        are scaled by 1 / (1 - p), so nothing changes at evaluation); 0 to ``MAX_DROPOUT``.
    seed : int
        Seed of the initial weights: He-normal, N(0, 2 / m_{l-1}), for relu and leaky_relu
        (He et al., 2015); Glorot-uniform, U(+-sqrt(6 / (m_{l-1} + m_l))), for tanh and
        sigmoid (Glorot & Bengio, 2010); bias weights 0.
    output : str, optional
        Output activation of the squared loss, one of ``OUTPUTS``; by default the network's
        activation, as in eqs. 33-36. Cross-entropy always uses softmax (sigmoid for a
        single output unit).
    """

    def __init__(self, widths: Sequence[int] = (2, 8, 8, 1), activation: str = "relu",
                 loss: str = "squared", l2: float = 0.0, dropout: float = 0.0, seed: int = 0,
                 output: str | None = None) -> None:
        self.widths = _check_widths(widths)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r} "
                             f"(activations: {', '.join(ACTIVATIONS)})")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r} (losses: {', '.join(LOSSES)})")
        if loss == "cross_entropy":
            if output not in (None, "softmax"):
                raise ValueError(f"cross-entropy uses a softmax output, not {output!r}")
            output = "softmax"
        elif output is None:
            output = activation
        elif output not in OUTPUTS:
            raise ValueError(f"unknown output activation {output!r} (outputs: "
                             f"{', '.join(OUTPUTS)})")
        l2, dropout = float(l2), float(dropout)
        if not (math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be zero or positive and finite, got {l2!r}")
        if not 0.0 <= dropout <= MAX_DROPOUT:
            raise ValueError(f"dropout must lie in [0, {MAX_DROPOUT}], got {dropout!r}")
        self.activation, self.loss_name, self.output = activation, loss, output
        self.l2, self.dropout, self.seed = l2, dropout, int(seed)
        self.depth = len(self.widths) - 1  # L
        self.classes = max(self.widths[-1], 2)
        shapes = _shapes(self.widths)
        self.size = sum(r * c for r, c in shapes)  # P of eq. 47
        self._theta = np.empty(self.size)
        self._grad = np.empty(self.size)
        self._W: list[np.ndarray] = []
        self._G: list[np.ndarray] = []
        start = 0
        bias = np.zeros(self.size, dtype=bool)
        for rows, cols in shapes:
            stop = start + rows * cols
            self._W.append(self._theta[start:stop].reshape(rows, cols))
            self._G.append(self._grad[start:stop].reshape(rows, cols))
            bias[start:stop].reshape(rows, cols)[:, 0] = True
            start = stop
        self.bias_mask = bias  # True at the bias weights w_i0 in the vector of eq. 43
        self.bias_mask.setflags(write=False)
        self._l2_factor = np.where(bias, 0.0, 2.0 * l2)  # d(lambda w^2)/dw per weight / w
        self._l2_tmp = np.empty(self.size)
        self._initialise(np.random.default_rng(self.seed))

    def _initialise(self, rng: np.random.Generator) -> None:
        for W in self._W:
            fan_out, fan_in = W.shape[0], W.shape[1] - 1
            if self.activation in ("relu", "leaky_relu"):
                W[:, 1:] = rng.normal(0.0, math.sqrt(2.0 / fan_in), (fan_out, fan_in))
            else:
                r = math.sqrt(6.0 / (fan_in + fan_out))
                W[:, 1:] = rng.uniform(-r, r, (fan_out, fan_in))
            W[:, 0] = 0.0

    # -- parameters -------------------------------------------------------------------------
    @property
    def weights(self) -> tuple[np.ndarray | None, ...]:
        """(None, W(1), ..., W(L)): read-only views of the live weights (column 0 = bias)."""
        views = []
        for W in self._W:
            v = W.view()
            v.setflags(write=False)
            views.append(v)
        return (None, *views)

    def parameters(self) -> np.ndarray:
        """A copy of the stacked weight vector W of eq. 43."""
        return self._theta.copy()

    def set_parameters(self, vector: np.ndarray) -> None:
        """Replace all weights by a vector in the order of eq. 43 (see :func:`unflatten`)."""
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (self.size,):
            raise ValueError(f"expected {self.size} weights, got shape {vector.shape}")
        np.copyto(self._theta, vector)

    # -- targets ----------------------------------------------------------------------------
    def _inputs(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.widths[0]:
            raise ValueError(f"inputs must be (n, {self.widths[0]}), got shape {X.shape}")
        return X

    def targets(self, y: np.ndarray) -> np.ndarray:
        """The (n, m_L) float64 targets of labels or values ``y`` for this network's loss.

        Integer labels become one-hot rows for several outputs and a 0/1 column for one;
        real values (squared loss only) must be (n,) for one output or (n, m_L).
        """
        y = np.asarray(y)
        k = self.widths[-1]
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            if y.size and (y.min() < 0 or y.max() >= self.classes):
                raise ValueError(f"labels must lie in 0 .. {self.classes - 1} for "
                                 f"{k} output unit(s)")
            if k == 1:
                return y.astype(np.float64)[:, None]
            T = np.zeros((y.size, k))
            T[np.arange(y.size), y] = 1.0
            return T
        if self.loss_name == "cross_entropy":
            raise ValueError("cross-entropy needs integer class labels of shape (n,)")
        T = np.asarray(y, dtype=np.float64)
        if T.ndim == 1 and k == 1:
            T = T[:, None]
        if T.ndim != 2 or T.shape[1] != k:
            raise ValueError(f"targets must be (n,) or (n, {k}), got shape {y.shape}")
        return T

    # -- the passes -------------------------------------------------------------------------
    def _forward(self, ws: _Workspace, rng: np.random.Generator | None = None) -> None:
        """Forward pass on the inputs loaded in ``ws``; dropout masks drawn from ``rng``."""
        W, A, Z, L = self._W, ws.A, ws.Z, self.depth
        keep = 1.0 - self.dropout
        dropping = rng is not None and self.dropout > 0
        for l in range(1, L):
            np.matmul(A[l - 1], W[l - 1].T, out=Z[l - 1])  # eq. 32, with a_0 = 1
            if dropping:
                h, mask = ws.H[l - 1], ws.masks[l - 1]
                _activate(self.activation, Z[l - 1], h)
                rng.random(out=mask)
                np.greater_equal(mask, self.dropout, out=mask)
                np.multiply(mask, 1.0 / keep, out=mask)
                np.multiply(h, mask, out=ws.hidden[l])
            else:
                _activate(self.activation, Z[l - 1], ws.hidden[l])  # eq. 33
        z = Z[L - 1]
        np.matmul(A[L - 1], W[L - 1].T, out=z)
        if self.output == "softmax" and z.shape[1] > 1:
            np.max(z, axis=1, keepdims=True, out=ws.col)  # ws.col keeps max z for the loss
            np.subtract(z, ws.col, out=ws.out)
            np.exp(ws.out, out=ws.out)
            s = ws.out.sum(axis=1, keepdims=True)
            np.divide(ws.out, s, out=ws.out)
            np.log(s, out=s)
            np.add(ws.col, s, out=ws.col)  # log sum_k e^z_k, for the loss
        elif self.output == "softmax":  # one unit: yhat = e^(z - softplus z), softplus kept
            sp, e = ws.col, ws.col2  # softplus z = max(z, 0) + log(1 + e^-|z|), no overflow
            np.abs(z, out=e)
            np.negative(e, out=e)
            np.exp(e, out=e)
            np.log1p(e, out=e)
            np.maximum(z, 0.0, out=sp)
            np.add(sp, e, out=sp)  # twice as fast as np.logaddexp(0, z) on these sizes
            np.subtract(z, sp, out=ws.out)
            np.exp(ws.out, out=ws.out)
        else:
            _activate(self.output, z, ws.out)

    def _data_loss(self, ws: _Workspace, T: np.ndarray,
                   rng: np.random.Generator | None = None) -> float:
        """Forward pass and the mean of l over the batch (eq. 40 without the L2 term).

        Leaves delta(L) / n in ws.D[L-1]: the output errors of eq. 36 (squared loss) or
        s - onehot (cross-entropy), averaged over the n examples.
        """
        self._forward(ws, rng)
        n, L, Z = ws.n, self.depth, ws.Z
        top = ws.D[L - 1]
        np.subtract(ws.out, T, out=top)  # yhat - y
        if self.output == "softmax":  # -log yhat_c = logsumexp(z) - z_c (eq. 67)
            loss = (float(ws.col.sum()) - float(np.vdot(Z[L - 1], T))) / n
            np.multiply(top, 1.0 / n, out=top)
        else:  # ||yhat - y||^2 (eq. 35), delta(L) = 2 (yhat - y) sigma'(z(L)) (eq. 36)
            loss = float(np.vdot(top, top)) / n
            np.multiply(top, 2.0 / n, out=top)
            _times_derivative(self.output, top, Z[L - 1], ws.out, ws.tmp[L - 1])
        return loss

    def _l2_term(self) -> float:
        """lambda times the sum of the squared non-bias weights (eq. 40)."""
        if not self.l2:
            return 0.0
        return 0.5 * float(np.dot(self._theta * self._l2_factor, self._theta))

    def _loss_gradient(self, ws: _Workspace, T: np.ndarray,
                       rng: np.random.Generator | None = None) -> float:
        """Forward and backward pass; returns L_mean (eq. 40), writes the gradient to _grad."""
        loss = self._data_loss(ws, T, rng)
        D, A, Z = ws.D, ws.A, ws.Z
        dropping = rng is not None and self.dropout > 0
        for l in range(self.depth, 0, -1):
            np.matmul(D[l - 1].T, A[l - 1], out=self._G[l - 1])  # eqs. 38-39 and 41-42
            if l > 1:
                d = D[l - 2]
                np.matmul(D[l - 1], self._W[l - 1][:, 1:], out=d)  # eq. 37, sum_i w_ij delta_i
                if dropping:
                    np.multiply(d, ws.masks[l - 2], out=d)
                _times_derivative(self.activation, d, Z[l - 2], ws.H[l - 2], ws.tmp[l - 2])
        if self.l2:
            tmp = self._l2_tmp
            np.multiply(self._theta, self._l2_factor, out=tmp)  # 2 lambda w, 0 at biases
            np.add(self._grad, tmp, out=self._grad)
            loss += 0.5 * float(np.dot(tmp, self._theta))  # lambda sum w^2
        return loss

    def forward(self, X: np.ndarray) -> Forward:
        """z(l) and a(l) of every layer for the rows of X (no dropout)."""
        X = self._inputs(X)
        ws = _Workspace(self.widths, X.shape[0], False)
        ws.load(X)
        self._forward(ws)
        return Forward(z=(None, *[z.copy() for z in ws.Z]),
                       a=(X.copy(), *[h.copy() for h in ws.hidden[1:]], ws.out.copy()))

    def backward(self, X: np.ndarray, y: np.ndarray,
                 dropout_rng: np.random.Generator | None = None) -> Backprop:
        """Loss and gradient of eq. 40 on (X, y), with the passes' z(l), a(l), delta(l), G(l).

        With ``dropout_rng`` the pass is a training pass whose dropout masks come from it
        (so a fresh generator with a fixed seed gives the same masks every call).
        """
        X = self._inputs(X)
        T = self.targets(y)
        if T.shape[0] != X.shape[0]:
            raise ValueError(f"{X.shape[0]} inputs but {T.shape[0]} targets")
        ws = _Workspace(self.widths, X.shape[0], dropout_rng is not None and self.dropout > 0)
        ws.load(X)
        loss = self._loss_gradient(ws, T, dropout_rng)
        n = X.shape[0]
        return Backprop(loss=loss, z=(None, *[z.copy() for z in ws.Z]),
                        a=(X.copy(), *[h.copy() for h in ws.hidden[1:]], ws.out.copy()),
                        delta=(None, *[d * n for d in ws.D]),
                        G=(None, *[g.copy() for g in self._G]), gradient=self._grad.copy())

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """L_mean of eq. 40 on (X, y), without dropout (no gradient computed)."""
        X = self._inputs(X)
        T = self.targets(y)
        if T.shape[0] != X.shape[0]:
            raise ValueError(f"{X.shape[0]} inputs but {T.shape[0]} targets")
        ws = _Workspace(self.widths, X.shape[0], False)
        ws.load(X)
        return self._data_loss(ws, T) + self._l2_term()

    # -- predictions ------------------------------------------------------------------------
    def _outputs(self, X: np.ndarray) -> np.ndarray:
        X = self._inputs(X)
        ws = _Workspace(self.widths, X.shape[0], False)
        ws.load(X)
        with np.errstate(all="ignore"):
            self._forward(ws)
        return ws.out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities; for the squared loss, the outputs clipped to
        [0, 1] (with one output: [1 - yhat, yhat]), read as scores. Always finite."""
        out = self._outputs(X)
        if self.output != "softmax":
            np.clip(out, 0.0, 1.0, out=out)
        if out.shape[1] == 1:
            out = np.hstack([1.0 - out, out])
        return np.nan_to_num(out, nan=0.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted classes (n,) int64: yhat >= 0.5 for one output unit, else argmax."""
        out = self._outputs(X)
        if out.shape[1] == 1:
            return (out[:, 0] >= 0.5).astype(np.int64)
        return np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1).astype(np.int64)

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> Evaluation:
        """Mean loss (eq. 40) and accuracy on (X, y); accuracy is None for real targets."""
        y = np.asarray(y)
        with np.errstate(all="ignore"):
            loss = self.loss(X, y)
        labels = y.ndim == 1 and np.issubdtype(y.dtype, np.integer)
        accuracy = float(np.mean(self.predict(X) == y)) if labels and y.size else None
        return Evaluation(loss, accuracy)

    def confusion_matrix(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(classes, classes) counts: row = true class, column = predicted class."""
        y = np.asarray(y, dtype=np.int64)
        counts = np.bincount(y * self.classes + self.predict(X),
                             minlength=self.classes * self.classes)
        return counts.reshape(self.classes, self.classes)

    def _grid(self, x_range, y_range, n) -> np.ndarray:
        if self.widths[0] != 2:
            raise ValueError(f"maps need a network with 2 inputs, this one has {self.widths[0]}")
        return grid_points(x_range, y_range, n)

    def decision_map(self, x_range: Sequence[float], y_range: Sequence[float], n: int = 100,
                     class_index: int | None = 1) -> np.ndarray:
        """Probability (score) of class ``class_index`` over an n x n grid, (n, n) float64.

        Rows follow y and columns x (see :func:`grid_points`); ``class_index=None`` gives all
        classes, (n, n, classes). Always finite, one vectorised pass over the grid.
        """
        proba = self.predict_proba(self._grid(x_range, y_range, n))
        n = int(n)
        if class_index is None:
            return proba.reshape(n, n, self.classes)
        if not 0 <= class_index < self.classes:
            raise ValueError(f"class_index must lie in 0 .. {self.classes - 1}")
        return np.ascontiguousarray(proba[:, class_index].reshape(n, n))

    def hidden_activation_maps(self, x_range: Sequence[float], y_range: Sequence[float],
                               n: int = 32) -> list[np.ndarray]:
        """a_i^(l) of every hidden unit over an n x n grid: entry l - 1 is (m_l, n, n).

        Evaluation mode (no dropout); non-finite values (from diverging weights) become 0
        or the largest float, so a map is always finite.
        """
        points = self._grid(x_range, y_range, n)
        n = int(n)
        ws = _Workspace(self.widths, n * n, False)
        ws.load(points)
        with np.errstate(all="ignore"):
            self._forward(ws)
        return [np.nan_to_num(np.ascontiguousarray(h.T).reshape(h.shape[1], n, n))
                for h in ws.hidden[1:]]


Network = MLP
