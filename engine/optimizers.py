"""Optimizers racing on a surface f(x, y): gradient descent and its descendants, vectorised.

Seed 002 gives the rule everything here starts from, x' = x - eps grad f (its "gradient
descent"); seed 003 gives the same step as eq. (6), Theta <- Theta - eta grad L, the L2
regularizer r(Theta) = sum theta^2 of eq. (7) with its gradient 2 lambda Theta (eq. 8), and
the stopping rule "stop when the gradient is smaller than a given constant". Seed 001 asks
why Adam leaves saddle points and why gradients are clipped on steep slopes; both can be
watched here.

Every (method, start) pair is one *row*. :func:`race` advances all rows together in one
compiled loop (:mod:`engine._kernel`, Numba): the gradient is the expression's register
program (:mod:`engine._trace`), evaluated for all rows at each step, and the update is
written once for all seven methods, whose constants are per-method columns (:func:`_rule`
maps each method to the shared form below). :func:`descend` is a race of one row and
:func:`basins` a race of n*n rows, so there is one code path. With g the gradient fed
to the optimizer (after the L2 term, noise and clipping) and step t = 1, 2, ...::

    m <- a m + b g                 (first moment: momentum buffer or Adam's mean)
    s <- rho s + kappa g^2         (second moment: AdaGrad's sum or an average of g^2)
    theta <- theta (1 - lr_t wd) - lr_t (cg g + cm m / (1 - bc1^t)) / (sqrt(s / (1 - bc2^t)) + eps)

The last line is computed in Kingma & Ba's equivalent form (end of their section 2): the
factor sqrt(1 - bc2^t) is folded into the step size and into eps, per step. Methods without
a second moment use s = 0 and eps = 1 (a denominator of exactly 1), so SGD's rows compute
lr*g bit for bit even inside a race with Adam.

Between chunks of steps, NumPy checks the recorded points (is f defined there?) and
settles the rows that stopped. A step that overflows or leaves the domain is not an error: the row stops with a status and
a message, and only finite points are kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from engine._common import _as_expression, _check_range, _param_values
from engine._kernel import advance
from engine._progress import drain
from engine.critical_points import critical_points, probe
from engine.expressions import Expression

__all__ = [
    "DEFAULTS",
    "LABEL_DIVERGED",
    "LABEL_NOT_CONVERGED",
    "METHODS",
    "SCHEDULES",
    "STATUSES",
    "BasinMap",
    "BasinRequest",
    "RaceRequest",
    "Trajectory",
    "basins",
    "compute_basins",
    "compute_race",
    "compute_race_steps",
    "descend",
    "learning_rates",
    "race",
    "race_steps",
]

METHODS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")

DEFAULTS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    # Plain gradient descent, seed 002 / seed 003 eq. (6).
    "sgd": MappingProxyType({}),
    # Polyak's heavy ball in the form of PyTorch's SGD(momentum=0.9, dampening=0):
    # v <- beta v + g, theta <- theta - lr v.
    "momentum": MappingProxyType({"beta": 0.9}),
    # Nesterov's accelerated gradient as reformulated by Bengio et al. (2013) and used by
    # PyTorch and Keras: v <- beta v + g, theta <- theta - lr (g + beta v); the gradient is
    # taken at the plotted iterate (the look-ahead point of Sutskever et al., 2013).
    "nesterov": MappingProxyType({"beta": 0.9}),
    # Duchi, Hazan & Singer (2011): s <- s + g^2, theta <- theta - lr g / (sqrt(s) + eps).
    # The paper has no eps; 1e-8 is "on the order of 1e-8" from Ruder (2016), "An overview
    # of gradient descent optimization algorithms" (PyTorch uses 1e-10, Goodfellow et al.'s
    # Algorithm 8.4 1e-7); eps sits outside the root as in PyTorch and Algorithm 8.4.
    "adagrad": MappingProxyType({"eps": 1e-8}),
    # Hinton, Coursera "Neural Networks for Machine Learning", lecture 6e:
    # s <- 0.9 s + 0.1 g^2, theta <- theta - lr g / (sqrt(s) + eps).
    "rmsprop": MappingProxyType({"rho": 0.9, "eps": 1e-8}),
    # Kingma & Ba (2015), Algorithm 1, with bias correction.
    "adam": MappingProxyType({"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    # Loshchilov & Hutter (2019), decoupled weight decay, in PyTorch's AdamW form:
    # theta <- theta - lr_t wd theta - lr_t m_hat / (sqrt(v_hat) + eps); 0.01 is PyTorch's
    # default (the paper's lambda multiplies the schedule multiplier instead of lr).
    "adamw": MappingProxyType({"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}),
})
"""The constants of each method with the defaults of its paper or standard implementation."""

SCHEDULES = ("constant", "step", "exponential", "cosine")
STATUSES = ("converged", "diverged", "max_steps", "undefined")
LABEL_DIVERGED = -1  # basin label of a start whose run diverged or left the domain of f
LABEL_NOT_CONVERGED = -2  # basin label of a start still moving after the last step

_UNIT_INTERVAL = ("beta", "beta1", "beta2", "rho")  # constants that must lie in [0, 1)

# Row codes while running and after stopping.
_RUNNING, _CONVERGED, _OUT_OF_BOUND, _OVERFLOW, _NO_VALUE, _NO_GRADIENT = range(6)
_CHUNK_BUDGET = 1 << 21  # floats per (steps, 2 * rows) buffer of one chunk
_NO_NOISE = np.zeros((0, 2))


# -- constants, learning rates and options ----------------------------------------------------

def _check_method(method: str) -> str:
    if method not in DEFAULTS:
        raise ValueError(f"unknown method {method!r} (methods: {', '.join(METHODS)})")
    return method


def _constants(method: str, overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The method's defaults updated by ``overrides``; unknown or out-of-range names raise."""
    _check_method(method)
    values = dict(DEFAULTS[method])
    for name, value in dict(overrides or {}).items():
        if name not in values:
            allowed = ", ".join(DEFAULTS[method]) or "none: it has no constants"
            raise ValueError(f"unknown constant {name!r} for {method} (allowed: {allowed})")
        value = float(value)
        ok = math.isfinite(value) and (
            0.0 <= value < 1.0 if name in _UNIT_INTERVAL
            else value > 0.0 if name == "eps" else value >= 0.0)
        if not ok:
            rule = ("in [0, 1)" if name in _UNIT_INTERVAL
                    else "positive" if name == "eps" else "zero or positive")
            raise ValueError(f"{method} constant {name} must be {rule}, got {value!r}")
        values[name] = value
    return values


def _rule(method: str, c: Mapping[str, float]) -> tuple[float, ...]:
    """The method as coefficients of the shared update (see the module docstring).

    Returns (a, b, rho, kappa, cg, cm, bc1, bc2, eps, wd). Wherever cg is not 0, b is 1: the
    update reads b*g in place of g to save a NumPy call.
    """
    if method == "sgd":
        return 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0
    if method == "momentum":
        return c["beta"], 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0
    if method == "nesterov":
        return c["beta"], 1.0, 0.0, 0.0, 1.0, c["beta"], 0.0, 0.0, 1.0, 0.0
    if method == "adagrad":
        return 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, c["eps"], 0.0
    if method == "rmsprop":
        return 0.0, 1.0, c["rho"], 1.0 - c["rho"], 1.0, 0.0, 0.0, 0.0, c["eps"], 0.0
    b1, b2 = c["beta1"], c["beta2"]
    return (b1, 1.0 - b1, b2, 1.0 - b2, 0.0, 1.0, b1, b2, c["eps"], c.get("weight_decay", 0.0))


def learning_rates(lr: float, steps: int, schedule: str = "constant", gamma: float | None = None,
                   step_size: int | None = None) -> np.ndarray:
    """The learning rate used at each step 0, 1, ..., steps - 1 (float64, shape (steps,)).

    Parameters
    ----------
    lr : float
        The initial learning rate (eps of seed 002, eta of seed 003 eq. 6).
    steps : int
    schedule : {"constant", "step", "exponential", "cosine"}
        "step": lr * gamma**(k // step_size) (gamma 0.1 and step_size steps // 4 unless
        given, as PyTorch's StepLR); "exponential": lr * gamma**k (gamma 0.99 unless given);
        "cosine": lr * (1 + cos(pi k / steps)) / 2, down towards 0 over the run (PyTorch's
        CosineAnnealingLR with T_max = steps, eta_min = 0).
    gamma : float, optional
    step_size : int, optional
    """
    steps = int(steps)
    k = np.arange(steps, dtype=np.float64)
    if schedule == "constant":
        factor = np.ones(steps)
    elif schedule == "step":
        gamma = 0.1 if gamma is None else float(gamma)
        size = max(steps // 4, 1) if step_size is None else int(step_size)
        if size < 1:
            raise ValueError(f"step_size must be at least 1, got {step_size!r}")
        factor = gamma ** (np.arange(steps) // size).astype(np.float64)
    elif schedule == "exponential":
        gamma = 0.99 if gamma is None else float(gamma)
        factor = gamma ** k
    elif schedule == "cosine":
        factor = 0.5 * (1.0 + np.cos(np.pi * k / max(steps, 1)))
    else:
        raise ValueError(f"unknown schedule {schedule!r} (schedules: {', '.join(SCHEDULES)})")
    if gamma is not None and not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be positive, got {gamma!r}")
    return float(lr) * factor


@dataclass(frozen=True)
class _Options:
    """The options shared by all rows of a run, checked."""

    steps: int
    clip: float | None
    l2: float
    schedule: str
    gamma: float | None
    step_size: int | None
    noise: float
    seed: int
    grad_tol: float
    bound: float

    def __post_init__(self) -> None:
        def positive(name, value, strict=True, allow_inf=False):
            value = float(value)
            if math.isnan(value) or (value == math.inf and not allow_inf) or (
                    value <= 0 if strict else value < 0):
                rule = "positive" if strict else "zero or positive"
                raise ValueError(f"{name} must be {rule} and finite, got {value!r}")
            return value

        if int(self.steps) < 0:
            raise ValueError(f"steps must be zero or positive, got {self.steps!r}")
        object.__setattr__(self, "steps", int(self.steps))
        if self.clip is not None:
            object.__setattr__(self, "clip", positive("clip", self.clip))
        object.__setattr__(self, "l2", positive("l2", self.l2, strict=False))
        object.__setattr__(self, "noise", positive("noise", self.noise, strict=False))
        object.__setattr__(self, "grad_tol", positive("grad_tol", self.grad_tol, strict=False))
        object.__setattr__(self, "bound", positive("bound", self.bound, allow_inf=True))
        object.__setattr__(self, "seed", int(self.seed))
        learning_rates(1.0, 1, self.schedule, self.gamma, self.step_size)  # checks them


def _lr_by_method(lr, methods: Sequence[str]) -> dict[str, float]:
    if isinstance(lr, Mapping):
        missing = [m for m in methods if m not in lr]
        if missing:
            raise ValueError(f"no learning rate given for {', '.join(missing)}")
        rates = {m: float(lr[m]) for m in methods}
    else:
        rates = dict.fromkeys(methods, float(lr))
    for method, rate in rates.items():
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"the learning rate of {method} must be positive, got {rate!r}")
    return rates


# -- gradient and value functions ---------------------------------------------------------------

def _gradient_function(expression: Expression, values: dict[str, float]):
    """(x, y) -> (fx, fy) on float64 arrays, for the last point of a run (the steps before
    it use the gradient program): :meth:`Expression.gradient_kernel`."""
    return expression.gradient_kernel(**values)


# -- the shared loop ------------------------------------------------------------------------

class _Rows:
    """Coefficients of the active rows: one column per distinct method, a column per row."""

    NAMES = ("a", "b", "rho", "kappa", "cg", "cm", "bc1", "bc2", "eps", "wd", "lr")

    def __init__(self, kinds: np.ndarray, kind: np.ndarray) -> None:
        self.kinds = kinds  # (11, U): one line per name, one column per distinct method
        self.kind = np.ascontiguousarray(kind, dtype=np.int64)  # (R,) column of each row

    def take(self, keep: np.ndarray) -> _Rows:
        return _Rows(self.kinds, self.kind[keep])

    def tables(self, n: np.ndarray, factors: np.ndarray) -> list[np.ndarray]:
        """Per-step coefficients A, B, E, D (K, U) for 1-based step numbers ``n``."""
        _, _, _, _, cg, cm, bc1, bc2, eps, wd, lr = self.kinds
        with np.errstate(all="ignore"):
            lr = factors[:, None] * lr[None, :]
            q = np.sqrt(1.0 - bc2[None, :] ** n[:, None])  # Kingma & Ba, end of section 2
            c1 = 1.0 / (1.0 - bc1[None, :] ** n[:, None])
            lrq = lr * q
            return [np.ascontiguousarray(t) for t in
                    (lrq * cg, lrq * (cm * c1), eps * q, 1.0 - lr * wd)]


def _norm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sqrt(a^2 + b^2), several times faster than np.hypot; hypot where the squares overflow."""
    norm = np.sqrt(a * a + b * b)
    over = norm == np.inf
    if over.any():
        norm[over] = np.hypot(a[over], b[over])
    return norm


def _first_events(pos: np.ndarray, grads: np.ndarray, rows: int, options: _Options):
    """Per row, the first j where the point is out of bound, the gradient not finite or
    shorter than grad_tol (the stopping rule of seed 003); J where there is none.

    NumPy's twin of the scan :func:`engine._kernel.advance` does while stepping, for the
    one-point chunk of the last iterate.
    """
    R = rows
    gx, gy = grads[:, :R], grads[:, R:]
    with np.errstate(all="ignore"):
        ok = (np.abs(pos[:, :R]) <= options.bound) & (np.abs(pos[:, R:]) <= options.bound)
        ok &= np.isfinite(gx) & np.isfinite(gy)
        if options.grad_tol > 0:
            ok &= gx * gx + gy * gy >= options.grad_tol ** 2
    return np.where(ok.all(axis=0), pos.shape[0], np.argmin(ok, axis=0))


def _advance_field(gradient, theta, m, s, kind, b, kappa, a, rho, A, B, E, D, noise, l2, clip,
                   bound, tol2, pos, grads, first) -> None:
    """:func:`engine._kernel.advance` for a field whose gradient is a Python function.

    The same arguments but ``gradient`` ((x, y) arrays -> (fx, fy)) in place of the
    register program, and the same arithmetic, operation for operation, vectorised over
    the rows: K NumPy steps, one gradient call each (for a network's plane a call is a
    backward pass per row, which dwarfs the update).
    """
    K, R = pos.shape[0], kind.shape[0]
    first[:] = K
    a, b, rho, kappa = a[kind], b[kind], rho[kind], kappa[kind]
    has_s = kappa != 0.0
    for k in range(K):
        x, y = theta[:R].copy(), theta[R:].copy()
        with np.errstate(all="ignore"):
            gx, gy = (np.array(g, dtype=np.float64).reshape(R) for g in gradient(x, y))
            if l2 != 0.0:
                gx += l2 * x
                gy += l2 * y
            pos[k, :R], pos[k, R:] = x, y
            grads[k, :R], grads[k, R:] = gx, gy
            ok = ((np.abs(x) <= bound) & (np.abs(y) <= bound) & np.isfinite(gx)
                  & np.isfinite(gy) & (gx * gx + gy * gy >= tol2))
            first[(first == K) & ~ok] = k
            if noise.shape[0]:
                gx += noise[k, 0]
                gy += noise[k, 1]
            if clip > 0.0:  # rescale to length clip when longer (seed 001)
                scale = clip / _norm(gx, gy)
                scale[scale >= 1.0] = 1.0  # NaN stays NaN
                gx *= scale
                gy *= scale
            mx = m[:R] * a + gx * b
            my = m[R:] * a + gy * b
            sx, sy = s[:R].copy(), s[R:].copy()
            sx[has_s] = sx[has_s] * rho[has_s] + (gx[has_s] * gx[has_s]) * kappa[has_s]
            sy[has_s] = sy[has_s] * rho[has_s] + (gy[has_s] * gy[has_s]) * kappa[has_s]
            m[:R], m[R:], s[:R], s[R:] = mx, my, sx, sy
            Ak, Bk, Ek, Dk = A[k, kind], B[k, kind], E[k, kind], D[k, kind]
            theta[:R] = x * Dk - (gx * Ak + mx * Bk) / (np.sqrt(sx) + Ek)
            theta[R:] = y * Dk - (gy * Ak + my * Bk) / (np.sqrt(sy) + Ek)


def _analyse(pos: np.ndarray, grads: np.ndarray, rows: int, evaluate, options: _Options,
             every_value: bool, first: np.ndarray):
    """Values, gradient norms and the first stopping event of each row in a chunk.

    ``pos`` and ``grads`` are (J, 2R): the points of J consecutive steps and the gradients
    of the loss there; ``first`` (R,) is the first event of each row but a non-finite f
    (see :func:`_first_events`), updated here. Returns f and |grad| (J, R) (both None
    unless ``every_value``) and, per row, whether an event happened, its index j and its
    code. Without ``every_value`` f is evaluated at the chunk's last points and, where it
    is not finite there, along the row's whole chunk: a basin map's run that enters a hole
    and leaves it again within one chunk goes unnoticed, at a third of the cost of the chunk.
    """
    R, J = rows, pos.shape[0]
    with np.errstate(all="ignore"):
        gx, gy = grads[:, :R], grads[:, R:]
        f = norms = None
        if every_value:
            f = np.asarray(evaluate(pos[:, :R], pos[:, R:]), dtype=np.float64)
            f = np.broadcast_to(f, (J, R))
            norms = _norm(gx, gy)
            where, bad = np.arange(R), ~np.isfinite(f)
        else:
            last = np.broadcast_to(evaluate(pos[-1, :R], pos[-1, R:]), (R,))
            where = np.flatnonzero(~np.isfinite(last))  # rows in a hole at the chunk's end
            values = evaluate(pos[:, where], pos[:, R + where]) if where.size else 0.0
            bad = ~np.isfinite(np.broadcast_to(values, (J, where.size)))
        hit = bad.any(axis=0)
        if hit.any():
            rows_hit = where[hit]
            first[rows_hit] = np.minimum(first[rows_hit], np.argmax(bad[:, hit], axis=0))
        has = first < J
        cols = np.flatnonzero(has)
        j = np.zeros(R, dtype=np.intp)
        j[cols] = jc = first[cols]
        inside = (np.abs(pos[jc, cols]) <= options.bound) & (
            np.abs(pos[jc, R + cols]) <= options.bound)
        fj = (f[jc, cols] if f is not None
              else np.broadcast_to(evaluate(pos[jc, cols], pos[jc, R + cols]), (cols.size,)))
        nj = np.hypot(gx[jc, cols], gy[jc, cols])
        code = np.full(R, _RUNNING, dtype=np.int8)
        code[cols] = np.select([~inside, np.isinf(fj), np.isnan(fj), ~np.isfinite(nj)],
                               [_OUT_OF_BOUND, _OVERFLOW, _NO_VALUE, _NO_GRADIENT], _CONVERGED)
    return f, norms, has, j, code


class _Run:
    """All rows of one race: advanced by :meth:`steps`, a generator yielding progress."""

    def __init__(self, expression: Expression, values: dict[str, float], rows: _Rows,
                 starts: np.ndarray, options: _Options, record: bool) -> None:
        self.options = options
        self.record = record
        if isinstance(expression, Expression):
            self.gradient = _gradient_function(expression, values)
            self.program = expression.gradient_program(**values)
            self.evaluate = lambda x, y: expression.evaluate(x, y, **values)
        else:  # a field (see :func:`race`): its own gradient, stepped by the NumPy loop
            self.gradient, self.evaluate, self.program = expression.gradient, expression.evaluate, None
        self.factors = learning_rates(1.0, options.steps, options.schedule, options.gamma,
                                      options.step_size)
        self.noise = None
        if options.noise > 0 and options.steps:
            # One draw per step shared by every row, as if all of them saw the same
            # mini-batches: the comparison is fair, and a row of a race equals its descend.
            rng = np.random.default_rng(options.seed)
            self.noise = options.noise * rng.standard_normal((options.steps, 2))
        count = starts.shape[0]
        self.ids = np.arange(count)
        self.rows = rows
        self.theta = np.ascontiguousarray(starts.T, dtype=np.float64).reshape(-1)
        self.moments = np.zeros((2, 2 * count))  # m, then s
        # Results per row (original index).
        self.code = np.full(count, _RUNNING, dtype=np.int8)
        self.at = np.full(count, options.steps, dtype=np.int64)  # index of the last point
        self.final = np.array(starts, dtype=np.float64)
        self.chunks: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.stopped = np.zeros(count, dtype=bool)  # stopped rows not yet dropped
        self._memory: np.ndarray | None = None

    def _buffers(self, K: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Two (K, width) arrays for a chunk's points and gradients.

        A race keeps every chunk; otherwise the memory is reused, which spares a large basin
        map the page faults of fresh buffers (about a third of its time per step).
        """
        if self.record:
            return np.empty((K, width)), np.empty((K, width))
        size = K * width
        if self._memory is None or self._memory.size < 2 * size:
            self._memory = np.empty(2 * size)
        return (self._memory[:size].reshape(K, width),
                self._memory[size:2 * size].reshape(K, width))

    # -- one chunk of steps ------------------------------------------------------------
    def _loss_gradient(self, out: np.ndarray) -> np.ndarray:
        """grad f + 2 lambda theta (seed 003 eq. 8) at the current points, written to ``out``."""
        R = self.ids.size
        theta = self.theta
        out[:R], out[R:] = self.gradient(theta[:R], theta[R:])
        if self.options.l2:
            out += (2.0 * self.options.l2) * theta
        return out

    def _advance(self, t0: int, K: int):
        """K steps from step t0 for every active row.

        Returns the points, the loss gradients there and each row's first event (see
        :func:`_first_events`).

        The loop is :func:`engine._kernel.advance`, compiled: the gradient is the
        expression's register program, the update the shared one of the module docstring.
        """
        o, rows = self.options, self.rows
        R = self.ids.size
        pos, grads = self._buffers(K, 2 * R)
        A, B, E, D = rows.tables(np.arange(t0 + 1, t0 + K + 1, dtype=np.float64),
                                 self.factors[t0:t0 + K])
        noise = self.noise[t0:t0 + K] if self.noise is not None else _NO_NOISE
        a, b, rho, kappa = (np.ascontiguousarray(c) for c in rows.kinds[:4])
        program = self.program
        first = np.empty(R, dtype=np.int64)
        if program is None:
            _advance_field(self.gradient, self.theta, self.moments[0], self.moments[1],
                           rows.kind, b, kappa, a, rho, A, B, E, D, noise, 2.0 * o.l2,
                           -1.0 if o.clip is None else o.clip, o.bound,
                           o.grad_tol ** 2 if o.grad_tol > 0 else -1.0, pos, grads, first)
            return pos, grads, first
        advance(program.code, program.registers, program.fx, program.fy, self.theta,
                self.moments[0], self.moments[1], rows.kind, b, kappa, a, rho, A, B, E, D,
                noise, 2.0 * o.l2, -1.0 if o.clip is None else o.clip, o.bound,
                o.grad_tol ** 2 if o.grad_tol > 0 else -1.0, pos, grads, first)
        return pos, grads, first

    def _settle(self, t0: int, pos: np.ndarray, grads: np.ndarray, first: np.ndarray) -> None:
        """Record the chunk and stop the rows with an event.

        Stopped rows are frozen: their results are taken at the event, later steps of theirs
        are ignored, and they leave the arrays once they are an eighth of them (copying the
        state of a large basin map after every chunk would cost more than carrying them).
        """
        R = self.ids.size
        f, norms, has, j, code = _analyse(pos, grads, R, self.evaluate, self.options,
                                          self.record, first)
        if self.record:
            self.chunks.append((t0, self.ids, pos, f, norms, grads))
        has &= ~self.stopped
        if has.any():
            stopped = np.flatnonzero(has)
            ids = self.ids[stopped]
            self.code[ids] = code[stopped]
            self.at[ids] = t0 + j[stopped]
            self.final[ids, 0] = pos[j[stopped], stopped]
            self.final[ids, 1] = pos[j[stopped], R + stopped]
            self.stopped |= has
        if np.count_nonzero(self.stopped) >= max(R // 8, 1):
            keep = np.flatnonzero(~self.stopped)
            flat = np.concatenate([keep, keep + R])
            self.ids = self.ids[keep]
            self.rows = self.rows.take(keep)
            self.theta = self.theta[flat]
            self.moments = self.moments[:, flat]
            self.stopped = np.zeros(keep.size, dtype=bool)

    def steps(self):
        """Run every row to its end; yields the fraction of steps done after each chunk."""
        total = self.options.steps
        t0, K = 0, 32
        while t0 < total and not self.stopped.all():
            K = min(K, total - t0, max(_CHUNK_BUDGET // (2 * self.ids.size), 4))
            self._settle(t0, *self._advance(t0, K))
            t0 += K
            K *= 2
            yield t0 / total
        if not self.stopped.all():  # the last point: its gradient decides converged or max_steps
            grads = np.empty((1, 2 * self.ids.size))
            with np.errstate(all="ignore"):
                self._loss_gradient(grads[0])
            pos = self.theta[None, :].copy()
            self._settle(total, pos, grads,
                         _first_events(pos, grads, self.ids.size, self.options))
            live = ~self.stopped
            self.final[self.ids[live]] = self.theta.reshape(2, -1).T[live]
        yield 1.0

    # -- results -------------------------------------------------------------------------
    def kept(self, i: int) -> int:
        """How many points row i keeps: the ones before a non-finite or undefined point."""
        code, at = int(self.code[i]), int(self.at[i])
        if code in (_OUT_OF_BOUND, _OVERFLOW, _NO_VALUE):
            return max(at, 1)  # the start is always kept
        return at + 1

    def history(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Points (k, 2), f, |grad| and the loss gradients (k, 2) of row i from the
        recorded chunks."""
        need = self.kept(i)
        points, values, norms, gradients = [], [], [], []
        for t0, ids, pos, f, g, grads in self.chunks:
            if t0 >= need:
                break
            col = int(np.searchsorted(ids, i))
            if col >= ids.size or ids[col] != i:
                break
            take = min(f.shape[0], need - t0)
            R = ids.size
            points.append(np.stack([pos[:take, col], pos[:take, R + col]], axis=1))
            values.append(f[:take, col])
            norms.append(g[:take, col])
            gradients.append(np.stack([grads[:take, col], grads[:take, R + col]], axis=1))
        return (np.concatenate(points), np.concatenate(values), np.concatenate(norms),
                np.concatenate(gradients))


# -- trajectories --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Trajectory:
    """One optimizer's path from one start.

    Attributes
    ----------
    method : str
    points : ndarray
        (k + 1, 2) float64: the start, then one row per iterate. Only finite points: when a
        step diverges or lands where f is undefined, the path ends at the last good point.
    values : ndarray
        f at the points (without the L2 term); NaN only when f is undefined at the start.
    losses : ndarray
        The minimised loss f + l2 (x^2 + y^2) at the points (seed 003 eqs. 3 and 7); a copy
        of ``values`` when l2 = 0.
    grad_norms : ndarray
        |grad loss| at the points, before noise and clipping (what the stopping rule reads).
    status : str
        "converged" (|grad loss| < grad_tol), "diverged" (a coordinate beyond the bound or
        f overflowed), "max_steps" or "undefined" (f undefined at the start or at a point
        the step reached, or its gradient not finite where f is defined).
    diverged_at : int or None
        The step whose result diverged (the path keeps the points before it).
    message : str
        One line for the person watching, e.g. "converged in 57 steps".
    lr : float
        The initial learning rate.
    constants : tuple of (str, float)
        The method's constants as used.
    gradients : ndarray
        (k + 1, 2) gradients of the minimised loss at the points, before noise and
        clipping (what the optimizer read, and what ``grad_norms`` measures).
    """

    method: str
    points: np.ndarray
    values: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    status: str
    diverged_at: int | None
    message: str
    lr: float = 0.0
    constants: tuple[tuple[str, float], ...] = ()
    gradients: np.ndarray | None = None

    @property
    def steps(self) -> int:
        """Number of steps drawn (points minus one)."""
        return self.points.shape[0] - 1

    @property
    def final(self) -> tuple[float, float]:
        return float(self.points[-1, 0]), float(self.points[-1, 1])


def _fmt(x: float, y: float) -> str:
    return f"({x:.6g}, {y:.6g})"


def _message(code: int, at: int, steps: int, x: float, y: float, norm: float, bound: float) -> str:
    plural = "" if at == 1 else "s"
    if code == _CONVERGED:
        return f"converged in {at} step{plural}" + (" (the start is stationary)" if at == 0 else "")
    if code == _RUNNING:
        return f"stopped after {steps} steps without converging (|grad| = {norm:.3g})"
    if code == _NO_GRADIENT:
        return f"gradient undefined at {_fmt(x, y)}" + (f" after {at} step{plural}" if at else "")
    where = _fmt(x, y) if math.isfinite(x) and math.isfinite(y) else "a non-finite point"
    if at == 0:
        if code == _NO_VALUE:
            return f"f is undefined at the start {where}"
        if code == _OVERFLOW:
            return f"f overflows at the start {where}"
        return f"the start {where} lies beyond the bound {bound:g}"
    if code == _NO_VALUE:
        return f"undefined at step {at}: the step left the domain of f, landing at {where}"
    if code == _OVERFLOW:
        return f"diverged at step {at}: f overflowed at {where}"
    if math.isfinite(x) and math.isfinite(y):
        return f"diverged at step {at}: {where} lies beyond the bound {bound:g}"
    return f"diverged at step {at}: the step was not finite"


_STATUS = {_CONVERGED: "converged", _RUNNING: "max_steps", _OUT_OF_BOUND: "diverged",
           _OVERFLOW: "diverged", _NO_VALUE: "undefined", _NO_GRADIENT: "undefined"}


def _starts(starts) -> np.ndarray:
    points = np.array(starts, dtype=np.float64, ndmin=2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"starts must be a point (x, y) or an (S, 2) array, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("every start must be a finite point")
    return points


def _setup(methods: Sequence[str], starts, lr, constants):
    """Rows: every method from every start, method-major."""
    methods = tuple(_check_method(m) for m in methods)
    if not methods:
        raise ValueError("race needs at least one method")
    for method in dict(constants or {}):
        _check_method(method)
    points = _starts(starts)
    rates = _lr_by_method(lr, methods)
    used = {m: _constants(m, dict(constants or {}).get(m)) for m in methods}
    kinds = np.array([(*_rule(m, used[m]), rates[m]) for m in methods], dtype=np.float64).T
    rows = _Rows(kinds, np.repeat(np.arange(len(methods)), points.shape[0]))  # method-major
    return methods, np.tile(points, (len(methods), 1)), rows, used, rates


def race(expression, methods: Sequence[str], starts, steps: int, lr,
         constants: Mapping[str, Mapping[str, float]] | None = None, *, clip: float | None = None,
         l2: float = 0.0, schedule: str = "constant", gamma: float | None = None,
         step_size: int | None = None, noise: float = 0.0, seed: int = 0, grad_tol: float = 1e-8,
         bound: float = 1e6, params: Mapping[str, float] | None = None) -> list[Trajectory]:
    """Run several optimizers from several starts on f, all rows advanced together.

    :func:`race_steps` with the progress ignored.

    Parameters
    ----------
    expression : Expression, str or field
        A field is any object with ``evaluate(x, y)`` (f on arrays of one shape, NaN
        where undefined) and ``gradient(x, y)`` ((fx, fy) on arrays of shape (R,)), for
        a function that is not an expression, such as a network's loss on a plane of its
        weights (:class:`engine.landscape.PlaneField`). It is stepped by a NumPy twin of
        the compiled loop, and ``params`` is ignored.
    methods : sequence of str
        Names from :data:`METHODS`.
    starts : (x, y) or array_like of shape (S, 2)
    steps : int
        The most steps any row takes.
    lr : float or mapping of method to float
        Initial learning rate(s).
    constants : mapping of method to mapping, optional
        Overrides of :data:`DEFAULTS`, e.g. ``{"adam": {"beta1": 0.8}}``.
    clip : float, optional
        Largest gradient norm: longer gradients are rescaled to it (seed 001).
    l2 : float
        lambda of seed 003 eq. (7): the loss is f + lambda (x^2 + y^2), whose gradient gains
        2 lambda theta (eq. 8).
    schedule, gamma, step_size
        Learning-rate schedule, see :func:`learning_rates`.
    noise : float
        Standard deviation of Gaussian noise added to the gradient (mini-batch SGD). The
        same draws (from ``seed``) perturb every row at a given step.
    seed : int
    grad_tol : float
        A row has converged when |grad loss| < grad_tol (seed 003's stopping rule).
    bound : float
        A row has diverged when |x| or |y| exceeds it or f overflows.
    params : mapping, optional
        Values of the expression's parameters.

    Returns
    -------
    list of Trajectory
        Method-major: all starts of ``methods[0]``, then of ``methods[1]``, ...
    """
    return drain(race_steps(expression, methods, starts, steps, lr, constants, clip=clip, l2=l2,
                             schedule=schedule, gamma=gamma, step_size=step_size, noise=noise,
                             seed=seed, grad_tol=grad_tol, bound=bound, params=params))


def race_steps(expression, methods: Sequence[str], starts, steps: int, lr,
               constants: Mapping[str, Mapping[str, float]] | None = None, *,
               clip: float | None = None, l2: float = 0.0, schedule: str = "constant",
               gamma: float | None = None, step_size: int | None = None, noise: float = 0.0,
               seed: int = 0, grad_tol: float = 1e-8, bound: float = 1e6,
               params: Mapping[str, float] | None = None):
    """Generator: :func:`race`, yielding the fraction of steps done after each chunk of
    steps and returning the trajectories (for jobs with a progress bar)."""
    if isinstance(expression, (Expression, str)):
        expression = _as_expression(expression)
        values = _param_values(expression, params)
    elif callable(getattr(expression, "gradient", None)) and callable(getattr(expression, "evaluate", None)):
        values = {}
    else:
        raise TypeError(f"race needs an expression, its text or a field with evaluate and "
                        f"gradient, got {type(expression).__name__}")
    options = _Options(steps, clip, l2, schedule, gamma, step_size, noise, seed, grad_tol, bound)
    methods, points, rows, used, rates = _setup(methods, starts, lr, constants)
    run = _Run(expression, values, rows, points, options, record=True)
    yield from run.steps()
    out = []
    count = points.shape[0] // len(methods)
    for i in range(points.shape[0]):
        method = methods[i // count]
        path, values, norms, gradients = run.history(i)
        code, at = int(run.code[i]), int(run.at[i])
        x, y = (float(v) for v in run.final[i])
        if code == _RUNNING:
            x, y = (float(v) for v in path[-1])
        losses = values + options.l2 * (path[:, 0] ** 2 + path[:, 1] ** 2) if options.l2 else values.copy()
        out.append(Trajectory(
            method, path, values, losses, norms, _STATUS[code],
            at if code in (_OUT_OF_BOUND, _OVERFLOW) else None,
            _message(code, at, options.steps, x, y, float(norms[-1]), options.bound),
            rates[method], tuple(used[method].items()), gradients))
    return out


def descend(expression: Expression | str, method: str, start, steps: int, lr: float, *,
            clip: float | None = None, l2: float = 0.0, schedule: str = "constant",
            gamma: float | None = None, step_size: int | None = None, noise: float = 0.0,
            seed: int = 0, grad_tol: float = 1e-8, bound: float = 1e6,
            params: Mapping[str, float] | None = None, **constants: float) -> Trajectory:
    """One optimizer from one start: :func:`race` with one row.

    Keyword arguments other than the options of :func:`race` are the method's constants
    (see :data:`DEFAULTS`); an unknown name raises ValueError naming the allowed ones.

    Examples
    --------
    >>> descend("x**2 + y**2", "sgd", (1.0, 1.0), steps=100, lr=0.1).status
    'converged'
    """
    start = _starts(start)
    if start.shape[0] != 1:
        raise ValueError("descend takes one start point (x, y); use race for several")
    return race(expression, [method], start, steps, lr, {method: constants}, clip=clip, l2=l2,
                schedule=schedule, gamma=gamma, step_size=step_size, noise=noise, seed=seed,
                grad_tol=grad_tol, bound=bound, params=params)[0]


# -- basins of attraction ----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class BasinMap:
    """Where one optimizer ends from every node of a grid.

    ``labels[i, j]`` belongs to the start (x[j], y[i]) (rows along y, like a surface grid):
    an index into ``minima`` for a converged run, :data:`LABEL_DIVERGED` (-1) for a run that
    diverged or left the domain of f, :data:`LABEL_NOT_CONVERGED` (-2) for one still moving
    after the last step. ``minima`` (K, 2) are the distinct points reached, lowest f first:
    the critical point's exact position when it matches one from
    :func:`engine.critical_points.critical_points`, else the mean of the cluster; ``kinds``
    and ``values`` describe them ("minimum" usually; a run started on a saddle's stable line
    can stop at the saddle). ``steps_taken`` counts the steps until each run stopped.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    steps_taken: np.ndarray
    minima: np.ndarray
    kinds: tuple[str, ...]
    values: np.ndarray
    method: str = ""
    text: str = ""

    @property
    def counts(self) -> np.ndarray:
        """How many starts reach each of ``minima``."""
        return np.bincount(self.labels[self.labels >= 0].ravel(), minlength=len(self.kinds))


def _cluster(points: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Group points closer than about ``tol``: labels (N,) and the groups' means (G, 2).

    Points are binned into cells of side ``tol`` (coarsened until there are at most 4096
    cells), then cells within 2 tol of a bigger cell join its group.
    """
    while True:
        cells = np.floor(points / tol).astype(np.int64)
        cells -= cells.min(axis=0)
        keys = cells[:, 0] * (int(cells[:, 1].max()) + 1) + cells[:, 1]  # one int per cell
        unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        if unique.size <= 4096:
            break
        tol *= 2.0
    centres = np.stack([np.bincount(inverse, points[:, d]) / counts for d in (0, 1)], axis=1)
    group = np.full(unique.size, -1)
    count = 0
    for i in np.argsort(-counts, kind="stable"):
        if group[i] >= 0:
            continue
        near = (np.hypot(*(centres - centres[i]).T) <= 2.0 * tol) & (group < 0)
        group[near] = count
        count += 1
    labels = group[inverse]
    means = np.stack([np.bincount(labels, points[:, d]) / np.bincount(labels) for d in (0, 1)], axis=1)
    return labels, means


def _name_minima(expression, values, finals, x_range, y_range):
    """Labels of converged final points and the points they stand for (see BasinMap)."""
    if finals.shape[0] == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, 2)), (), np.empty(0)
    (x0, x1), (y0, y1) = x_range, y_range
    diagonal = math.hypot(x1 - x0, y1 - y0)
    labels, means = _cluster(finals, 1e-3 * diagonal)
    known = critical_points(expression, x_range, y_range, values)
    reps, kinds, heights = [], [], []
    group_of = np.empty(means.shape[0], dtype=np.int64)
    index_of_known: dict[int, int] = {}
    for g, (mx, my) in enumerate(means):
        distances = [math.hypot(p.x - mx, p.y - my) for p in known]
        best = int(np.argmin(distances)) if distances else -1
        if best >= 0 and distances[best] <= 1e-2 * diagonal:
            if best not in index_of_known:  # clusters near one critical point merge
                index_of_known[best] = len(reps)
                p = known[best]
                reps.append((p.x, p.y))
                kinds.append(p.kind)
                heights.append(p.value)
            group_of[g] = index_of_known[best]
        else:
            info = probe(expression, float(mx), float(my), values)
            group_of[g] = len(reps)
            reps.append((float(mx), float(my)))
            kinds.append(info.kind if info.kind != "regular" else "unknown")
            heights.append(info.value)
    order = sorted(range(len(reps)), key=lambda i: (heights[i], reps[i]))
    rank = np.empty(len(reps), dtype=np.int64)
    rank[order] = np.arange(len(reps))
    return (rank[group_of[labels]], np.array([reps[i] for i in order], dtype=np.float64),
            tuple(kinds[i] for i in order), np.array([heights[i] for i in order], dtype=np.float64))


def _basin_steps(expression, method, x_range, y_range, n, steps, lr, params, constants, options):
    """The basin computation as a generator: progress fractions, then the BasinMap."""
    expression = _as_expression(expression)
    x_range, y_range = _check_range(x_range, "x_range"), _check_range(y_range, "y_range")
    n = int(n)
    if not 2 <= n <= 2048:
        raise ValueError(f"n must be between 2 and 2048, got {n!r}")
    x = np.linspace(*x_range, n)
    y = np.linspace(*y_range, n)
    gx, gy = np.meshgrid(x, y)
    starts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    _, points, rows, _, _ = _setup([method], starts, lr, {method: constants})
    values = _param_values(expression, params)
    run = _Run(expression, values, rows, points, options, record=False)
    for fraction in run.steps():
        yield 0.95 * fraction
    labels = np.full(n * n, LABEL_NOT_CONVERGED, dtype=np.int64)
    labels[np.isin(run.code, (_OUT_OF_BOUND, _OVERFLOW, _NO_VALUE, _NO_GRADIENT))] = LABEL_DIVERGED
    converged = np.flatnonzero(run.code == _CONVERGED)
    found, minima, kinds, heights = _name_minima(expression, values, run.final[converged],
                                                 x_range, y_range)
    labels[converged] = found
    yield 1.0
    return BasinMap(x, y, labels.reshape(n, n), run.at.reshape(n, n), minima, kinds, heights,
                    method, expression.text)


def basins(expression: Expression | str, method: str, x_range: Sequence[float],
           y_range: Sequence[float], n: int, steps: int, lr: float,
           params: Mapping[str, float] | None = None, *, constants: Mapping[str, float] | None = None,
           clip: float | None = None, l2: float = 0.0, schedule: str = "constant",
           gamma: float | None = None, step_size: int | None = None, noise: float = 0.0,
           seed: int = 0, grad_tol: float = 1e-8, bound: float = 1e6) -> BasinMap:
    """Basins of attraction: ``method`` run from every node of an n x n grid at once.

    The n*n rows are one race (:func:`race`'s loop); rows that stop are dropped from the
    arrays, so the work shrinks as starts converge. Options as in :func:`race`;
    ``constants`` overrides the method's defaults. See :class:`BasinMap` for the labels.
    """
    options = _Options(steps, clip, l2, schedule, gamma, step_size, noise, seed, grad_tol, bound)
    generator = _basin_steps(expression, method, x_range, y_range, n, steps, lr, params,
                             constants, options)
    return drain(generator)


# -- snapshot requests for the GUI's job runner -----------------------------------------------

def _pairs(items) -> tuple[tuple[str, float], ...]:
    items = items.items() if isinstance(items, Mapping) else items
    return tuple((str(k), float(v)) for k, v in items)


class _RequestOptions:
    """What both request types share: checked options and parameter values."""

    def _normalise(self) -> None:
        object.__setattr__(self, "params", _pairs(self.params))
        object.__setattr__(self, "lr", float(self.lr))
        self.options()  # refuse bad values on the GUI thread, where the user sees them

    @property
    def param_dict(self) -> dict[str, float]:
        return dict(self.params)

    def options(self) -> _Options:
        return _Options(self.steps, self.clip, self.l2, self.schedule, self.gamma, self.step_size,
                        self.noise, self.seed, self.grad_tol, self.bound)


@dataclass(frozen=True)
class RaceRequest(_RequestOptions):
    """A race snapshot built on the GUI thread (frozen, hashable).

    ``params`` holds (name, value) pairs, ``methods`` names, ``starts`` (x, y) pairs,
    ``constants`` (method, ((name, value), ...)) pairs and ``lrs`` optional (method, lr)
    pairs overriding ``lr`` for some methods. ``field``, when given, is raced instead of
    ``text`` (see :func:`race`; ``text`` then only names it). The other fields are
    :func:`race`'s options.
    """

    text: str
    params: tuple[tuple[str, float], ...] = ()
    methods: tuple[str, ...] = METHODS
    starts: tuple[tuple[float, float], ...] = ((1.0, 1.0),)
    steps: int = 200
    lr: float = 0.01
    constants: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    clip: float | None = None
    l2: float = 0.0
    schedule: str = "constant"
    noise: float = 0.0
    seed: int = 0
    grad_tol: float = 1e-8
    bound: float = 1e6
    gamma: float | None = None
    step_size: int | None = None
    lrs: tuple[tuple[str, float], ...] = ()
    field: object = None

    def __post_init__(self) -> None:
        self._normalise()
        object.__setattr__(self, "methods", tuple(_check_method(str(m)) for m in self.methods))
        starts = _starts(self.starts)
        object.__setattr__(self, "starts", tuple((float(a), float(b)) for a, b in starts))
        constants = self.constants.items() if isinstance(self.constants, Mapping) else self.constants
        constants = tuple((str(m), _pairs(c)) for m, c in constants)
        for method, pairs in constants:
            _constants(method, dict(pairs))
        object.__setattr__(self, "constants", constants)
        object.__setattr__(self, "lrs", _pairs(self.lrs))
        _lr_by_method({**dict.fromkeys(self.methods, self.lr), **dict(self.lrs)}, self.methods)


def compute_race(request: RaceRequest) -> list[Trajectory]:
    """The race a :class:`RaceRequest` describes (run on a worker thread)."""
    return drain(compute_race_steps(request))


def compute_race_steps(request: RaceRequest):
    """Generator job: :func:`compute_race`, yielding the fraction of steps done."""
    rates = {m: request.lr for m in request.methods}
    rates.update(request.lrs)
    o = request.options()
    return (yield from race_steps(
        request.text if request.field is None else request.field, request.methods,
        request.starts, o.steps, rates, {m: dict(c) for m, c in request.constants}, clip=o.clip,
        l2=o.l2, schedule=o.schedule, gamma=o.gamma, step_size=o.step_size, noise=o.noise,
        seed=o.seed, grad_tol=o.grad_tol, bound=o.bound, params=request.param_dict))


@dataclass(frozen=True)
class BasinRequest(_RequestOptions):
    """A basin-map snapshot (frozen, hashable): one ``method`` with ``constants`` as
    (name, value) pairs, run from every node of an ``n`` x ``n`` grid over ``x_range`` x
    ``y_range``. The other fields are :func:`race`'s options."""

    text: str
    params: tuple[tuple[str, float], ...] = ()
    method: str = "sgd"
    x_range: tuple[float, float] = (-3.0, 3.0)
    y_range: tuple[float, float] = (-3.0, 3.0)
    n: int = 128
    steps: int = 200
    lr: float = 0.01
    constants: tuple[tuple[str, float], ...] = ()
    clip: float | None = None
    l2: float = 0.0
    schedule: str = "constant"
    noise: float = 0.0
    seed: int = 0
    grad_tol: float = 1e-8
    bound: float = 1e6
    gamma: float | None = None
    step_size: int | None = None

    def __post_init__(self) -> None:
        self._normalise()
        object.__setattr__(self, "constants", _pairs(self.constants))
        _constants(self.method, dict(self.constants))
        _lr_by_method(self.lr, (self.method,))
        object.__setattr__(self, "x_range", _check_range(self.x_range, "x_range"))
        object.__setattr__(self, "y_range", _check_range(self.y_range, "y_range"))
        object.__setattr__(self, "n", int(self.n))


def compute_basins(request: BasinRequest):
    """Generator: yields progress fractions between chunks of steps, returns the BasinMap.

    The job runner stops iterating (and closes the generator) when a newer request arrives.
    """
    return (yield from _basin_steps(request.text, request.method, request.x_range,
                                    request.y_range, request.n, request.steps, request.lr,
                                    request.param_dict, dict(request.constants),
                                    request.options()))
