"""The loss landscape of a real network, after Li et al. (2018), "Visualizing the Loss
Landscape of Neural Nets" (the paper seed 001 points to).

A small network (64-32-10, ReLU, softmax + cross-entropy, seed 003's eqs. 28-45 and 55-67)
is trained on scikit-learn's bundled digits, keeping its weight vector theta (eq. 43) every
few steps. Around the trained weights theta* the loss is drawn on a plane,

    f(a, b) = L(theta* + a d1 + b d2),

spanned by two directions d1, d2 of the parameter space (Li et al., section 3):

* random Gaussian directions, *filter-normalised* (Li et al., section 4): every filter of a
  direction is rescaled to the norm of the same filter of theta*. In a fully connected
  network a filter is one neuron's incoming weights, a row of W(l). By default the bias
  column (column 0 of W(l), seed 003 eq. 28) of a direction is zero, as the paper's code
  does with ``ignore='biasbn'``; with ``bias="keep"`` the bias belongs to its neuron's row
  and is rescaled with it. Also layer normalisation (a whole W(l)), weight normalisation
  (element-wise, d <- d * theta) and none, as in the paper's code;
* the two principal directions of the training trajectory (section 7): PCA of the matrix
  whose rows are theta_i - theta*, with its explained variance.

Evaluating the plane uses its structure. The first layer's pre-activations are linear in
(a, b): Z(1)(a, b) = A0 W(1)*^T + a A0 D1(1)^T + b A0 D2(1)^T, with A0 = [1 | X] (eqs. 28,
32), so the three products are computed once and each grid point costs one combination,
done together with the ReLU in one compiled pass over memory (Numba, as in
:mod:`engine._kernel`). The later layers (here [1 | a(1)] times the 33 x 10 W(2)^T) run per
point, a chunk of points per stacked matrix product, and the cross-entropy follows; the
usual shift of the scores by their maximum is made only where e^z would overflow or
vanish: a 51 x 51 map of all 1797 digits takes about a twelfth of the time of calling
MLP.evaluate at every node (``benchmarks/landscape.py``). The node a = b = 0 is
theta* itself and holds :meth:`engine.mlp.MLP.evaluate` of the trained network, so the
map's centre is the very number reported for it (the fast path agrees there to ~1e-16).

:func:`compute_landscape` and :func:`compute_interpolation` are generators in the pattern of
:func:`engine.optimizers.compute_basins`: they yield progress fractions between chunks and
return the result (``StopIteration.value``); a caller cancels by no longer iterating (or by
closing the generator), which stops them within one chunk.

BLAS threads: on a busy two-core machine OpenBLAS's worker threads wait for cores and a
matrix product of the sizes used here can take a hundred times longer (300 full-batch
training steps: 0.28 s with one BLAS thread, 21 s with two while another process was
busy). Each chunk of work (training steps, grid points, interpolation nodes) therefore
runs with one BLAS thread (threadpoolctl, as the playground panel does), lifted again before
every ``yield``; this also makes a trained model the same whatever the caller's setting.
OpenBLAS's results depend on its thread count in the last bits, so the reference numbers
(the trained model's evaluation, the map's centre, the interpolation's t = 0 and t = 1) are
computed by :meth:`MLP.evaluate` in the caller's own setting: they equal what the caller
gets from ``model.network().evaluate(X, y)`` exactly.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numba import njit

from engine._progress import drain
from engine.datasets import Dataset, load_digits
from engine.mlp import (
    ACTIVATIONS,
    LEAKY_SLOPE,
    MAX_WIDTH,
    MLP,
    Evaluation,
    _activate,
    _Workspace,
)
from engine.optimizers import METHODS
from engine.surfaces import Grid
from engine.training import Trainer

__all__ = [
    "DIRECTIONS", "BIASES", "METRICS", "MAX_GRID", "MAX_SPAN", "MAX_TRAINING_STEPS",
    "TrainingSettings", "SMALL_BATCH", "LARGE_BATCH", "TrainedModel", "training_steps",
    "train_model", "digits_samples",
    "Directions", "normalize_direction", "random_directions", "pca_directions",
    "project_path", "Plane", "PlaneField",
    "LandscapeRequest", "LandscapeResult", "compute_landscape", "landscape",
    "InterpolationRequest", "InterpolationResult", "compute_interpolation", "interpolate",
]

DIRECTIONS = ("filter", "layer", "weight", "none", "pca")
BIASES = ("zero", "keep")
METRICS = ("loss", "accuracy")
MAX_GRID = 201  # most nodes per side of a landscape (odd, so that 0 is a node)
MAX_SPAN = 1000.0
MAX_TRAINING_STEPS = 20_000
MAX_INTERPOLATION_NODES = 2001
_CACHE_SIZE = 8  # trained models kept
_CHUNK_ELEMENTS = 1 << 20  # first-layer activations per chunk (points x units x samples)
_INPUTS, _CLASSES, _DIGITS = 64, 10, 1797


# -- one BLAS thread per chunk ---------------------------------------------------------------

_blas_controller = None


def _one_blas_thread():
    """A context with one BLAS thread (see the module doc); a no-op without threadpoolctl."""
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn brings it
            _blas_controller = False
        else:
            _blas_controller = ThreadpoolController()
    if not _blas_controller:
        return contextlib.nullcontext()  # pragma: no cover
    return _blas_controller.limit(limits=1, user_api="blas")


def _scaled(steps: Iterator, lo: float, hi: float):
    """Re-yield a progress generator's fractions mapped to [lo, hi]; return its result."""
    try:
        while True:
            try:
                fraction = next(steps)
            except StopIteration as stop:
                return stop.value
            yield lo + (hi - lo) * float(fraction)
    finally:
        steps.close()


# -- the data --------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _digits() -> Dataset:
    return load_digits()


@lru_cache(maxsize=16)
def _samples(samples) -> tuple[np.ndarray, np.ndarray]:
    data = _digits()
    if samples == "all":
        return data.X, data.y
    keep = np.random.default_rng(0).permutation(len(data))[:samples]
    X, y = data.X[keep], data.y[keep]
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _check_samples(samples) -> str | int:
    if isinstance(samples, str):
        if samples != "all":
            raise ValueError(f"samples must be 'all' or a count, got {samples!r}")
        return samples
    if isinstance(samples, bool) or int(samples) != samples or not 1 <= samples <= _DIGITS:
        raise ValueError(f"samples must be 'all' or an integer from 1 to {_DIGITS}, "
                         f"got {samples!r}")
    return "all" if int(samples) == _DIGITS else int(samples)


def digits_samples(samples: str | int = "all") -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of the landscape: all 1797 digits, or the first ``samples`` of a fixed shuffle
    (the same subset whatever the directions' seed). Read-only arrays."""
    return _samples(_check_samples(samples))


# -- training with a recorded trajectory -----------------------------------------------------

def _int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or int(value) != value or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TrainingSettings:
    """How the digits network is trained (frozen, hashable: the key of the model cache).

    The network is (64, ``hidden``, 10) with softmax + cross-entropy, trained on all 1797
    digits by :class:`engine.training.Trainer` (``batch_size=None`` is full-batch descent);
    theta is recorded at step 0 and every ``record_every`` steps, and at the end.
    """

    hidden: int = 32
    activation: str = "relu"
    method: str = "momentum"
    lr: float = 0.05
    batch_size: int | None = 32
    steps: int = 1200
    record_every: int = 20
    l2: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "hidden", _int(self.hidden, "hidden", 1, MAX_WIDTH))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r} "
                             f"(activations: {', '.join(ACTIVATIONS)})")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r} (methods: {', '.join(METHODS)})")
        lr, l2 = float(self.lr), float(self.l2)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning rate must be positive and finite, got {self.lr!r}")
        if not (math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be zero or positive and finite, got {self.l2!r}")
        set_(self, "lr", lr)
        set_(self, "l2", l2)
        if self.batch_size is not None:
            set_(self, "batch_size", _int(self.batch_size, "batch_size", 1, _DIGITS))
        set_(self, "steps", _int(self.steps, "steps", 1, MAX_TRAINING_STEPS))
        set_(self, "record_every", _int(self.record_every, "record_every", 1, self.steps))
        set_(self, "seed", _int(self.seed, "seed", 0, 2**63 - 1))

    @property
    def widths(self) -> tuple[int, int, int]:
        return (_INPUTS, self.hidden, _CLASSES)


SMALL_BATCH = TrainingSettings()  # 32 digits a step, about 21 epochs: the default model
# The other solution of Li et al.'s small-batch / large-batch comparison (sections 3 and 5,
# after Keskar et al., 2017): here the batch is the whole set.
LARGE_BATCH = TrainingSettings(batch_size=None, lr=0.5, steps=300, record_every=5)


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained digits network: theta* (eq. 43 order) and the recorded trajectory.

    ``trajectory`` (k, P) holds theta at ``trajectory_steps`` (k,), from step 0 to the
    end, its last row equal to ``theta``; ``evaluation`` is loss and accuracy on all
    1797 digits (the training set). Arrays are read-only.
    """

    settings: TrainingSettings
    theta: np.ndarray
    trajectory: np.ndarray
    trajectory_steps: np.ndarray
    status: str
    evaluation: Evaluation
    seconds: float

    @property
    def widths(self) -> tuple[int, int, int]:
        return self.settings.widths

    def network(self) -> MLP:
        """A fresh :class:`MLP` holding theta* (the caller may change it freely)."""
        s = self.settings
        net = MLP(s.widths, s.activation, "cross_entropy", l2=s.l2, seed=s.seed)
        net.set_parameters(self.theta)
        return net


_models: OrderedDict[TrainingSettings, TrainedModel] = OrderedDict()
_models_lock = threading.Lock()


def _cached_model(settings: TrainingSettings) -> TrainedModel | None:
    with _models_lock:
        model = _models.get(settings)
        if model is not None:
            _models.move_to_end(settings)
        return model


def training_steps(settings: TrainingSettings = SMALL_BATCH):
    """Generator: train (or fetch from the cache) the model of ``settings``.

    Yields progress fractions between blocks of ``record_every`` steps and returns the
    :class:`TrainedModel`; only a completed training enters the cache (the last
    ``_CACHE_SIZE`` settings), so a cancelled one leaves nothing behind.
    """
    if not isinstance(settings, TrainingSettings):
        raise TypeError(f"settings must be TrainingSettings, got {type(settings).__name__}")
    model = _cached_model(settings)
    if model is not None:
        return model
    data = _digits()
    start = time.perf_counter()
    with _one_blas_thread():
        net = MLP(settings.widths, settings.activation, "cross_entropy", l2=settings.l2,
                  seed=settings.seed)
        trainer = Trainer(net, data, method=settings.method, lr=settings.lr,
                          batch_size=settings.batch_size, max_steps=settings.steps,
                          patience=None, seed=settings.seed)
    snapshots, at = [net.parameters()], [0]
    while not trainer.done:
        with _one_blas_thread():
            taken = trainer.run(settings.record_every)
        if taken:
            snapshots.append(net.parameters())
            at.append(trainer.steps)
        yield trainer.steps / settings.steps
    theta = net.parameters()
    if not np.array_equal(snapshots[-1], theta):  # a divergence restored earlier weights
        snapshots.append(theta)
        at.append(trainer.steps)
    evaluation = net.evaluate(data.X, data.y)  # in the caller's BLAS setting (module doc)
    trajectory = np.array(snapshots)
    steps = np.array(at, dtype=np.int64)
    for array in (theta, trajectory, steps):
        array.setflags(write=False)
    model = TrainedModel(settings, theta, trajectory, steps, trainer.status, evaluation,
                         time.perf_counter() - start)
    with _models_lock:
        _models[settings] = model
        while len(_models) > _CACHE_SIZE:
            _models.popitem(last=False)
    yield 1.0
    return model


def train_model(settings: TrainingSettings = SMALL_BATCH) -> TrainedModel:
    """The trained model of ``settings`` (cached; see :func:`training_steps`)."""
    return drain(training_steps(settings))


# -- directions ------------------------------------------------------------------------------

def _layers(vector: np.ndarray, widths: Sequence[int]) -> list[np.ndarray]:
    """Views W(1), ..., W(L) of a vector in the order of eq. 43 (no copies)."""
    out, start = [], 0
    for l in range(1, len(widths)):
        rows, cols = widths[l], widths[l - 1] + 1
        out.append(vector[start:start + rows * cols].reshape(rows, cols))
        start += rows * cols
    if start != vector.size:
        raise ValueError(f"widths {tuple(widths)} need {start} weights, got {vector.size}")
    return out


def _bias_mask(widths: Sequence[int]) -> np.ndarray:
    size = sum(widths[l] * (widths[l - 1] + 1) for l in range(1, len(widths)))
    mask = np.zeros(size, dtype=bool)
    for layer in _layers(mask, widths):
        layer[:, 0] = True
    return mask


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r} ({name}s: {', '.join(choices)})")
    return value


def normalize_direction(direction: np.ndarray, theta: np.ndarray, widths: Sequence[int],
                        kind: str = "filter", bias: str = "zero") -> np.ndarray:
    """A copy of ``direction`` normalised against the weights ``theta`` (Li et al., sec. 4).

    Parameters
    ----------
    direction, theta : (P,) arrays in the order of eq. 43
    widths : the network's layer widths
    kind : {"filter", "layer", "weight", "none"}
        "filter": each row of D(l) (one neuron's incoming weights) gets the norm of the
        same row of W(l); "layer": each D(l) the Frobenius norm of W(l); "weight":
        d <- d * theta element by element; "none": unchanged.
    bias : {"zero", "keep"}
        "zero" sets the bias column of every D(l) to 0 and normalises the other columns
        against the other columns of W(l); "keep" treats the bias as one more weight.

    A filter of ``direction`` with norm 0 stays 0.
    """
    kind = _check_choice(kind, DIRECTIONS[:-1], "direction")
    bias = _check_choice(bias, BIASES, "bias")
    d = np.array(direction, dtype=np.float64)
    w = np.asarray(theta, dtype=np.float64)
    if d.shape != w.shape or d.ndim != 1:
        raise ValueError(f"direction and theta must be vectors of one size, got {d.shape} "
                         f"and {w.shape}")
    for D, W in zip(_layers(d, widths), _layers(w, widths)):
        if bias == "zero":
            D[:, 0] = 0.0
            D, W = D[:, 1:], W[:, 1:]  # views: scaling them scales d
        if kind == "filter":
            norms = np.linalg.norm(D, axis=1)
            scale = np.divide(np.linalg.norm(W, axis=1), norms, out=np.zeros_like(norms),
                              where=norms > 0)
            D *= scale[:, None]
        elif kind == "layer":
            norm = float(np.linalg.norm(D))
            D *= float(np.linalg.norm(W)) / norm if norm > 0 else 0.0
        elif kind == "weight":
            D *= W
    return d


@dataclass(frozen=True, eq=False)
class Directions:
    """The plane's two directions d1, d2 (read-only (P,) vectors, eq. 43 order).

    ``explained_variance`` is, for PCA directions, the share of the trajectory's variance
    along d1 and along d2 (Li et al., section 7); None for random directions.
    """

    d1: np.ndarray
    d2: np.ndarray
    kind: str
    bias: str
    seed: int | None = None
    explained_variance: tuple[float, float] | None = None

    @property
    def cosine(self) -> float:
        """cos of the angle between d1 and d2 (near 0 for random directions in high
        dimension, exactly 0 for PCA)."""
        return float(self.d1 @ self.d2 / (np.linalg.norm(self.d1) * np.linalg.norm(self.d2)))


def _frozen(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)


def random_directions(theta: np.ndarray, widths: Sequence[int], kind: str = "filter",
                      bias: str = "zero", seed: int = 0) -> Directions:
    """Two Gaussian directions N(0, I) from ``default_rng(seed)``, normalised against
    ``theta`` by :func:`normalize_direction`."""
    theta = np.asarray(theta, dtype=np.float64)
    rng = np.random.default_rng(seed)
    d1 = normalize_direction(rng.standard_normal(theta.size), theta, widths, kind, bias)
    d2 = normalize_direction(rng.standard_normal(theta.size), theta, widths, kind, bias)
    _frozen(d1, d2)
    return Directions(d1, d2, kind, bias, int(seed))


def pca_directions(trajectory: np.ndarray, widths: Sequence[int],
                   bias: str = "zero") -> Directions:
    """The two principal directions of a training trajectory (Li et al., section 7).

    The rows of M are theta_i - theta_final for every recorded theta_i before the last;
    with ``bias="zero"`` the bias entries of M are set to 0 (the paper's ``biasbn``). As in
    the paper's code (scikit-learn's PCA) the columns of M are centred, then d1, d2 are the
    first two right singular vectors: orthonormal. Signs are chosen so that the start of
    the trajectory has non-negative coordinates.
    """
    bias = _check_choice(bias, BIASES, "bias")
    trajectory = np.asarray(trajectory, dtype=np.float64)
    if trajectory.ndim != 2 or trajectory.shape[0] < 4:
        raise ValueError("PCA directions need a trajectory of at least 4 recorded weight "
                         f"vectors, got shape {trajectory.shape}")
    keep = (~_bias_mask(widths) if bias == "zero"
            else np.ones(trajectory.shape[1], dtype=bool))
    M = trajectory[:-1, keep] - trajectory[-1, keep]
    start = M[0].copy()
    M -= M.mean(axis=0)
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    if s.size < 2 or not s[1] > 1e-12 * max(s[0], 1e-300):
        raise ValueError("the trajectory does not span two directions")
    d1, d2 = np.zeros(trajectory.shape[1]), np.zeros(trajectory.shape[1])
    for d, v in ((d1, vt[0]), (d2, vt[1])):
        d[keep] = v if start @ v >= 0 else -v
    variance = s * s
    ratio = (float(variance[0] / variance.sum()), float(variance[1] / variance.sum()))
    _frozen(d1, d2)
    return Directions(d1, d2, "pca", bias, None, ratio)


def project_path(trajectory: np.ndarray, theta: np.ndarray, d1: np.ndarray,
                 d2: np.ndarray) -> tuple[np.ndarray, float]:
    """Plane coordinates of a trajectory: least squares in span(d1, d2).

    For every row theta_i, (a_i, b_i) minimises ||theta_i - theta* - a d1 - b d2||, from
    the 2 x 2 normal equations (d1, d2 need not be orthogonal). Returns the (k, 2)
    coordinates and the share of sum_i ||theta_i - theta*||^2 that lies in the plane
    (1.0 for a path with no length).
    """
    V = np.asarray(trajectory, dtype=np.float64) - np.asarray(theta, dtype=np.float64)
    D = np.stack([d1, d2])
    gram = D @ D.T
    coords = np.linalg.solve(gram, (V @ D.T).T).T
    total = float(np.einsum("ij,ij->", V, V))
    captured = float(np.einsum("ij,jk,ik->", coords, gram, coords))
    return coords, (captured / total if total > 0 else 1.0)


# -- the plane -------------------------------------------------------------------------------

_TINY_SUM = 1e-290  # sum_k e^z_k below this (or not finite): shift the scores instead


@njit(cache=True, nogil=True)
def _rectified_first_layer(first, coef, hidden, slope):  # pragma: no cover - compiled
    """hidden[p, 1 + u, j] = relu (slope 0) or leaky relu of z(1)_u of example j at point p,
    z = first[0, u, j] + a_p first[1, u, j] + b_p first[2, u, j]: the combination and the
    activation in one pass over memory (eqs. 30, 32)."""
    q, m, n = coef.shape[0], first.shape[1], first.shape[2]
    for u in range(m):  # unit by unit: the unit's three rows are read once for all points
        base, da, db = first[0, u], first[1, u], first[2, u]
        for p in range(q):
            a, b, out = coef[p, 0], coef[p, 1], hidden[p, u + 1]
            if slope == 0.0:
                for j in range(n):
                    z = base[j] + a * da[j] + b * db[j]
                    out[j] = 0.0 if z < 0.0 else z
            else:
                for j in range(n):
                    z = base[j] + a * da[j] + b * db[j]
                    out[j] = slope * z if z < 0.0 else z


@njit(cache=True, nogil=True)
def _softmax_sums(z, e, labels, top, total, true_sum, correct):  # pragma: no cover
    """With e = e^z, for every point p and example j: total[p, j] = sum_k e[p, k, j] and
    top[p, j] = max_k z[p, k, j]; true_sum[p] = sum_j z[p, c_j, j] and correct[p] =
    #{j : z_c >= top}. False when some sum overflowed, vanished or is NaN."""
    q, K, n = z.shape
    ok = True
    for p in range(q):
        t, s = top[p], total[p]
        for j in range(n):
            t[j] = z[p, 0, j]
            s[j] = e[p, 0, j]
        for k in range(1, K):
            zk, ek = z[p, k], e[p, k]
            for j in range(n):
                t[j] = max(zk[j], t[j])
                s[j] += ek[j]
        acc, right = 0.0, 0
        for j in range(n):
            if not (_TINY_SUM < s[j] < math.inf):
                ok = False
            zc = z[p, labels[j], j]
            acc += zc
            if zc >= t[j]:
                right += 1
        true_sum[p] = acc
        correct[p] = right
    return ok


class _Buffers:
    """Work arrays of one evaluation run: q points at a time, allocated once."""

    def __init__(self, widths: tuple[int, ...], n: int, q: int, fused: bool) -> None:
        L = len(widths) - 1
        self.coef = np.ones((q, 3))
        self.z1 = None if fused else np.empty((q, widths[1] * n))  # unless fused with sigma
        self.hidden = []  # [1 | a(l)] transposed per point: (q, m_l + 1, n)
        for m in widths[1:L]:
            h = np.empty((q, m + 1, n))
            h[:, 0, :] = 1.0
            self.hidden.append(h)
        self.weights = [np.empty((q, widths[l], widths[l - 1] + 1)) for l in range(2, L + 1)]
        self.z = [np.empty((q, widths[l], n)) for l in range(2, L + 1)]
        self.e = np.empty((q, widths[L], n))
        self.top = np.empty((q, n))
        self.lse = np.empty((q, n))
        self.zc = np.empty((q, n))
        self.true_sum = np.empty(q)
        self.correct = np.empty(q, dtype=np.int64)


class Plane:
    """f(a, b) = L(theta* + a d1 + b d2) of a softmax + cross-entropy :class:`MLP` on (X, y).

    Parameters
    ----------
    network : MLP
        Its current weights are theta*; it is not changed (a copy is used).
    d1, d2 : (P,) arrays
        The directions, in the order of eq. 43.
    X, y : inputs (n, m_0) and integer labels (n,)

    :meth:`evaluate` computes many points fast (the first layer's three products once,
    then per point one combination and the remaining layers, see the module doc);
    :meth:`reference` is one full forward pass, :meth:`loss_and_gradient` the loss and
    its derivatives along d1 and d2 from a backward pass.
    """

    def __init__(self, network: MLP, d1: np.ndarray, d2: np.ndarray, X: np.ndarray,
                 y: np.ndarray) -> None:
        if network.loss_name != "cross_entropy" or network.widths[-1] < 2:
            raise ValueError("the plane needs a softmax + cross-entropy network with at "
                             "least 2 outputs")
        self.widths = widths = network.widths
        self.activation, self.l2 = network.activation, network.l2
        self._spec = (widths, network.activation, network.l2, network.seed)
        self.centre = network.parameters()
        self.d1 = np.array(d1, dtype=np.float64)
        self.d2 = np.array(d2, dtype=np.float64)
        if self.d1.shape != self.centre.shape or self.d2.shape != self.centre.shape:
            raise ValueError(f"d1 and d2 must have {self.centre.size} entries")
        X = network._inputs(X)
        self.y = np.asarray(y)
        if self.y.shape != (X.shape[0],) or not np.issubdtype(self.y.dtype, np.integer):
            raise ValueError("y must hold one integer label per row of X")
        network.targets(self.y)  # checks the label range
        self.X = X
        self.n = n = X.shape[0]
        _frozen(self.centre, self.d1, self.d2)
        A0 = np.empty((n, widths[0] + 1))
        A0[:, 0] = 1.0
        A0[:, 1:] = X
        layers = [_layers(v, widths) for v in (self.centre, self.d1, self.d2)]
        # Z(1)^T of theta*, d1 and d2: (3, m_1 * n), combined per point by one product.
        first = np.empty((3, widths[1], n))
        with _one_blas_thread():
            for k in range(3):
                first[k] = (A0 @ layers[k][0].T).T
        self._first3 = first
        self._first = first.reshape(3, -1)
        self._rest = [tuple(np.array(layers[k][l]) for k in range(3))
                      for l in range(1, len(widths) - 1)]
        self._labels = np.ascontiguousarray(self.y, dtype=np.int64)
        self._pick = self._labels * n + np.arange(n)  # z_c of each example in a K * n row
        nb = ~_bias_mask(widths)
        V = np.stack([self.centre[nb], self.d1[nb], self.d2[nb]])
        self._l2_gram = V @ V.T  # lambda ||w_nb||^2 is a quadratic form in (1, a, b)
        self._lock = threading.Lock()
        self._backward = None
        self.chunk_size = int(min(256, max(1, _CHUNK_ELEMENTS // (widths[1] * n))))

    def theta(self, a: float, b: float) -> np.ndarray:
        """theta* + a d1 + b d2."""
        return self.centre + a * self.d1 + b * self.d2

    def _chunk(self, coef: np.ndarray, buf: _Buffers) -> tuple[np.ndarray, np.ndarray]:
        """Loss and accuracy at q <= chunk_size points (rows (a, b) of ``coef``)."""
        q, n, widths = coef.shape[0], self.n, self.widths
        z = None
        for l, (W, D1, D2) in enumerate(self._rest, start=2):
            h = buf.hidden[l - 2][:q]
            if l > 2:
                _activate(self.activation, z, h[:, 1:, :])
            elif self.activation in ("relu", "leaky_relu"):
                slope = 0.0 if self.activation == "relu" else LEAKY_SLOPE
                _rectified_first_layer(self._first3, coef, h, slope)
            else:  # z(1)^T = base + a P1 + b P2 for every point as one product, then sigma
                c = buf.coef[:q]
                c[:, 1:] = coef
                z = buf.z1[:q]
                np.matmul(c, self._first, out=z)
                _activate(self.activation, z.reshape(q, widths[1], n), h[:, 1:, :])
            w = buf.weights[l - 2][:q]
            np.multiply(coef[:, 0, None, None], D1, out=w)
            w += coef[:, 1, None, None] * D2
            w += W
            z = buf.z[l - 2][:q]
            np.matmul(w, h, out=z)  # z(l) = W(l) [1; a(l-1)] per point (eq. 32)
        # -log softmax_c = logsumexp(z) - z_c (eqs. 55, 67). The usual shift by the largest
        # score is needed only where e^z overflows or all e^z underflow; a prediction is
        # right when the true class has the largest score (an exact tie counts as right
        # here, where argmax would pick the first of the tied classes).
        e, top, lse, zc = buf.e[:q], buf.top[:q], buf.lse[:q], buf.zc[:q]
        true_sum, correct = buf.true_sum[:q], buf.correct[:q]
        np.exp(z, out=e)
        if not _softmax_sums(z, e, self._labels, top, lse, true_sum, correct):
            np.max(z, axis=1, out=top)
            np.subtract(z, top[:, None, :], out=e)
            np.exp(e, out=e)
            np.sum(e, axis=1, out=lse)
            np.log(lse, out=lse)
            lse += top
            np.take(z.reshape(q, -1), self._pick, axis=1, out=zc)
            true_sum[:] = zc.sum(axis=1)
            correct[:] = np.count_nonzero(zc >= top, axis=1)
        else:
            np.log(lse, out=lse)
        loss = (lse.sum(axis=1) - true_sum) / n
        if self.l2:
            v = np.column_stack([np.ones(q), coef])
            loss += self.l2 * np.einsum("pi,ij,pj->p", v, self._l2_gram, v)
        accuracy = correct / n
        bad = ~np.isfinite(loss)
        loss[bad] = np.nan
        accuracy[bad] = np.nan
        return loss, accuracy

    def _evaluator(self, most: int | None = None):
        """A function of (q, 2) points, q <= ``most`` (default ``chunk_size``), with its
        own work arrays."""
        buf = _Buffers(self.widths, self.n, min(most or self.chunk_size, self.chunk_size),
                       self.activation in ("relu", "leaky_relu"))

        def evaluate(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with np.errstate(all="ignore"), _one_blas_thread():
                return self._chunk(coef, buf)
        return evaluate

    def evaluate(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Loss (eq. 40) and accuracy at (k, 2) plane points (a, b); NaN where the loss
        is not finite."""
        points = _points(points)
        loss, accuracy = np.empty(len(points)), np.empty(len(points))
        evaluate = self._evaluator(len(points))
        for s in range(0, len(points), self.chunk_size):
            loss[s:s + self.chunk_size], accuracy[s:s + self.chunk_size] = \
                evaluate(points[s:s + self.chunk_size])
        return loss, accuracy

    def reference(self, a: float, b: float) -> Evaluation:
        """:meth:`MLP.evaluate` at theta* + a d1 + b d2: one full forward pass."""
        widths, activation, l2, seed = self._spec
        net = MLP(widths, activation, "cross_entropy", l2=l2, seed=seed)
        net.set_parameters(self.theta(a, b))
        return net.evaluate(self.X, self.y)

    def loss_and_gradient(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Loss and (df/da, df/db) = (<grad L, d1>, <grad L, d2>) at (k, 2) points.

        One backward pass (eqs. 36-45) per point; what optimisers restricted to the plane
        need. Thread-safe (calls are serialised).
        """
        points = _points(points)
        loss, gradient = np.empty(len(points)), np.empty((len(points), 2))
        D = np.stack([self.d1, self.d2])
        with self._lock, np.errstate(all="ignore"), _one_blas_thread():
            if self._backward is None:
                widths, activation, l2, seed = self._spec
                net = MLP(widths, activation, "cross_entropy", l2=l2, seed=seed)
                ws = _Workspace(widths, self.n, False)
                ws.load(self.X)
                self._backward = (net, ws, net.targets(self.y))
            net, ws, T = self._backward
            for i, (a, b) in enumerate(points):
                net.set_parameters(self.theta(a, b))
                loss[i] = net._loss_gradient(ws, T)
                gradient[i] = D @ net._grad
        return loss, gradient


class PlaneField:
    """The loss on a :class:`Plane` as a field f(a, b) that :func:`engine.optimizers.race`
    can run the descent lab's optimizers on, restricted to the plane.

    The gradient of f(a, b) = L(theta* + a d1 + b d2) is (<grad L, d1>, <grad L, d2>):
    the full gradient projected onto the two directions (chain rule), one backward pass per
    point. Both functions take arrays of one shape and give NaN where a point is not finite.
    """

    def __init__(self, plane: Plane) -> None:
        self.plane = plane

    @staticmethod
    def _pairs(a, b) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        points = np.column_stack([a.ravel(), b.ravel()])
        return points, np.isfinite(points).all(axis=1), a.shape

    def evaluate(self, a, b) -> np.ndarray:
        """f at the points (fast path of :meth:`Plane.evaluate`)."""
        points, ok, shape = self._pairs(a, b)
        out = np.full(len(points), np.nan)
        if ok.any():
            out[ok] = self.plane.evaluate(points[ok])[0]
        return out.reshape(shape)

    def gradient(self, a, b) -> tuple[np.ndarray, np.ndarray]:
        """(df/da, df/db) at the points (:meth:`Plane.loss_and_gradient`)."""
        points, ok, shape = self._pairs(a, b)
        out = np.full((len(points), 2), np.nan)
        if ok.any():
            out[ok] = self.plane.loss_and_gradient(points[ok])[1]
        return out[:, 0].reshape(shape), out[:, 1].reshape(shape)


def _points(points) -> np.ndarray:
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim == 1 and points.shape == (2,):
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (k, 2) pairs (a, b), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("plane points must be finite")
    return points


# -- the landscape ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LandscapeRequest:
    """A landscape snapshot built on the GUI thread (frozen, hashable).

    ``directions`` is one of :data:`DIRECTIONS` (random with that normalisation, or
    "pca"); ``bias`` "zero" or "keep" (see :func:`normalize_direction`; for "pca", whether
    the trajectory's bias entries count). ``grid`` is the odd number of nodes per side;
    the axes run over [-span, span] with 0 in the middle. ``span=None`` means 1 for random
    directions and, for "pca", a span that holds the projected trajectory. ``seed`` draws
    the random directions; ``samples`` picks the data (see :func:`digits_samples`);
    ``metric`` is what :meth:`LandscapeResult.to_grid` draws by default.
    """

    training: TrainingSettings = SMALL_BATCH
    directions: str = "filter"
    bias: str = "zero"
    grid: int = 51
    span: float | None = None
    metric: str = "loss"
    seed: int = 0
    samples: str | int = "all"

    def __post_init__(self) -> None:
        if not isinstance(self.training, TrainingSettings):
            raise TypeError("training must be TrainingSettings")
        _check_choice(self.directions, DIRECTIONS, "direction")
        _check_choice(self.bias, BIASES, "bias")
        _check_choice(self.metric, METRICS, "metric")
        grid = _int(self.grid, "grid", 3, MAX_GRID)
        if grid % 2 == 0:
            raise ValueError(f"grid must be odd, so that a = b = 0 (the trained weights) is "
                             f"a node; got {grid}")
        object.__setattr__(self, "grid", grid)
        if self.span is not None:
            span = float(self.span)
            if not (math.isfinite(span) and 0 < span <= MAX_SPAN):
                raise ValueError(f"span must lie in (0, {MAX_SPAN:g}], got {self.span!r}")
            object.__setattr__(self, "span", span)
        object.__setattr__(self, "seed", _int(self.seed, "seed", 0, 2**63 - 1))
        object.__setattr__(self, "samples", _check_samples(self.samples))


@dataclass(frozen=True, eq=False)
class LandscapeResult:
    """What :func:`compute_landscape` returns.

    ``loss`` and ``accuracy`` are (grid, grid) float64 with rows along ``y`` (the b
    axis, coefficient of d2) and columns along ``x`` (a, coefficient of d1); NaN where
    the loss is not finite. The centre node [k, k] (a = b = 0) holds ``centre_loss`` and
    ``centre_accuracy``, which are :meth:`MLP.evaluate` of the trained network on the
    same data. ``path`` (k, 2) is the training trajectory in plane coordinates
    (:func:`project_path`, ending at (0, 0)) at ``model.trajectory_steps``;
    ``path_captured`` the share of its squared distance to theta* in the plane.
    """

    request: LandscapeRequest
    model: TrainedModel
    directions: Directions
    plane: Plane
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    centre_loss: float
    centre_accuracy: float
    path: np.ndarray
    path_captured: float
    seconds: float
    _grids: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def span(self) -> float:
        return float(self.x[-1])

    def values(self, metric: str | None = None) -> np.ndarray:
        metric = _check_choice(metric or self.request.metric, METRICS, "metric")
        return self.loss if metric == "loss" else self.accuracy

    def to_grid(self, metric: str | None = None, dtype=np.float32) -> Grid:
        """The map as an :class:`engine.surfaces.Grid` (z rows along b) for the views."""
        metric = metric or self.request.metric
        key = (metric, np.dtype(dtype).str)
        if key not in self._grids:
            z = np.array(self.values(metric), dtype=dtype, order="C")
            self._grids[key] = Grid(x=self.x, y=self.y, z=z, text=f"{metric} of the digits "
                                    f"network on its {self.request.directions} plane")
        return self._grids[key]


def _auto_span(request: LandscapeRequest, path: np.ndarray) -> float:
    if request.span is not None:
        return request.span
    if request.directions != "pca":
        return 1.0
    reach = float(np.abs(path).max()) if path.size else 0.0
    if not reach > 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(1.2 * reach)) / 10  # two significant digits
    return float(min(MAX_SPAN, math.ceil(1.2 * reach / step) * step))


def compute_landscape(request: LandscapeRequest):
    """Generator: yields progress fractions between chunks, returns a LandscapeResult.

    Training (cached per :class:`TrainingSettings`) is the first 30 % of the progress; the
    grid is computed ``plane.chunk_size`` points at a time. Stop iterating (or close the
    generator) to cancel: no chunk starts after the last value yielded.
    """
    if not isinstance(request, LandscapeRequest):
        raise TypeError(f"request must be a LandscapeRequest, got {type(request).__name__}")
    start = time.perf_counter()
    model = yield from _scaled(training_steps(request.training), 0.0, 0.3)
    X, y = digits_samples(request.samples)
    widths = model.widths
    if request.directions == "pca":
        directions = pca_directions(model.trajectory, widths, request.bias)
    else:
        directions = random_directions(model.theta, widths, request.directions, request.bias,
                                       request.seed)
    path, captured = project_path(model.trajectory, model.theta, directions.d1, directions.d2)
    _frozen(path)
    span = _auto_span(request, path)
    k = request.grid // 2
    axis = span * np.arange(-k, k + 1) / k  # exactly 0 at index k, exactly +-span at ends
    _frozen(axis)
    network = model.network()
    plane = Plane(network, directions.d1, directions.d2, X, y)
    yield 0.31
    G = request.grid
    points = np.empty((G, G, 2))
    points[:, :, 0] = axis[None, :]
    points[:, :, 1] = axis[:, None]
    points = points.reshape(-1, 2)
    loss, accuracy = np.empty(G * G), np.empty(G * G)
    evaluate, q = plane._evaluator(), plane.chunk_size
    for s in range(0, G * G, q):
        loss[s:s + q], accuracy[s:s + q] = evaluate(points[s:s + q])
        yield 0.31 + 0.68 * min(s + q, G * G) / (G * G)
    with np.errstate(all="ignore"):
        centre = network.evaluate(X, y)  # the node a = b = 0 is theta* itself
    loss[k * G + k], accuracy[k * G + k] = centre.loss, centre.accuracy
    loss, accuracy = loss.reshape(G, G), accuracy.reshape(G, G)
    _frozen(loss, accuracy)
    yield 1.0
    return LandscapeResult(request, model, directions, plane, axis, axis, loss, accuracy,
                           float(centre.loss), float(centre.accuracy), path, captured,
                           time.perf_counter() - start)


def landscape(request: LandscapeRequest | None = None) -> LandscapeResult:
    """:func:`compute_landscape` run to its end (for scripts and tests)."""
    return drain(compute_landscape(request or LandscapeRequest()))


# -- 1-D interpolation between two solutions -------------------------------------------------

@dataclass(frozen=True)
class InterpolationRequest:
    """L((1 - t) theta_A + t theta_B) for t over ``t_range`` (frozen, hashable).

    Goodfellow et al.'s 1-D linear interpolation as Li et al. use it (section 3) between
    two trained solutions, by default the small-batch and the large-batch one. Nodes are
    t = i / ``per_unit``, so t = 0 (theta_A) and t = 1 (theta_B) are nodes; the range must
    contain [0, 1].
    """

    first: TrainingSettings = SMALL_BATCH
    second: TrainingSettings = LARGE_BATCH
    t_range: tuple[float, float] = (-0.5, 1.5)
    per_unit: int = 20
    samples: str | int = "all"

    def __post_init__(self) -> None:
        if not (isinstance(self.first, TrainingSettings)
                and isinstance(self.second, TrainingSettings)):
            raise TypeError("first and second must be TrainingSettings")
        if self.first.hidden != self.second.hidden:
            raise ValueError("both solutions need the same network (the same hidden width)")
        lo, hi = (float(v) for v in self.t_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0.0 and hi >= 1.0):
            raise ValueError(f"t_range must be finite and contain [0, 1], got {self.t_range!r}")
        object.__setattr__(self, "t_range", (lo, hi))
        per_unit = _int(self.per_unit, "per_unit", 1, 1000)
        object.__setattr__(self, "per_unit", per_unit)
        if len(self.nodes()) > MAX_INTERPOLATION_NODES:
            raise ValueError(f"at most {MAX_INTERPOLATION_NODES} nodes; lower per_unit or "
                             f"narrow t_range")
        object.__setattr__(self, "samples", _check_samples(self.samples))

    def nodes(self) -> np.ndarray:
        """The t values i / per_unit within t_range (0 and 1 exactly among them)."""
        lo, hi = self.t_range
        k = self.per_unit
        i = np.arange(math.ceil(lo * k - 1e-9), math.floor(hi * k + 1e-9) + 1)
        return i / k


@dataclass(frozen=True, eq=False)
class InterpolationResult:
    """Loss and accuracy along the line through two solutions; ``first_evaluation`` and
    ``second_evaluation`` are :meth:`MLP.evaluate` of each model on the same data, equal
    to the curve's values at t = 0 and t = 1."""

    request: InterpolationRequest
    t: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    first: TrainedModel
    second: TrainedModel
    first_evaluation: Evaluation
    second_evaluation: Evaluation
    distance: float  # ||theta_B - theta_A||
    seconds: float


def compute_interpolation(request: InterpolationRequest):
    """Generator: yields progress fractions, returns an :class:`InterpolationResult`.

    Each node is one full forward pass (:meth:`MLP.evaluate`) at
    (1 - t) theta_A + t theta_B, which is theta_A and theta_B exactly at t = 0 and 1; those
    two nodes hold the models' own evaluations (see the module doc on BLAS threads).
    """
    if not isinstance(request, InterpolationRequest):
        raise TypeError("request must be an InterpolationRequest")
    start = time.perf_counter()
    first = yield from _scaled(training_steps(request.first), 0.0, 0.25)
    second = yield from _scaled(training_steps(request.second), 0.25, 0.5)
    X, y = digits_samples(request.samples)
    t = request.nodes()
    loss, accuracy = np.empty(t.size), np.empty(t.size)
    A, B = first.theta, second.theta
    net = first.network()
    with np.errstate(all="ignore"):
        evaluations = [model.network().evaluate(X, y) for model in (first, second)]
    chunk = 8
    for s in range(0, t.size, chunk):
        with np.errstate(all="ignore"), _one_blas_thread():
            for i in range(s, min(s + chunk, t.size)):
                net.set_parameters((1.0 - t[i]) * A + t[i] * B)
                ev = net.evaluate(X, y)
                loss[i] = ev.loss if math.isfinite(ev.loss) else np.nan
                accuracy[i] = ev.accuracy if math.isfinite(ev.loss) else np.nan
        yield 0.5 + 0.49 * min(s + chunk, t.size) / t.size
    for at, ev in ((0.0, evaluations[0]), (1.0, evaluations[1])):  # theta_A and theta_B
        i = int(np.flatnonzero(t == at)[0])
        loss[i], accuracy[i] = ev.loss, ev.accuracy
    _frozen(t, loss, accuracy)
    yield 1.0
    return InterpolationResult(request, t, loss, accuracy, first, second, evaluations[0],
                               evaluations[1], float(np.linalg.norm(B - A)),
                               time.perf_counter() - start)


def interpolate(request: InterpolationRequest | None = None) -> InterpolationResult:
    """:func:`compute_interpolation` run to its end."""
    return drain(compute_interpolation(request or InterpolationRequest()))
