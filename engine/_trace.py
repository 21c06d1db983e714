"""Record an expression's NumPy closures as a register program for the compiled step loop.

The closures of :mod:`engine._closures` are called once with :class:`_Tracer` values in place
of the x and y arrays; every operator and NumPy function they apply is written down as one
instruction ``(op, destination, a, b)`` on numbered registers. The program is therefore the
closures' own arithmetic in their own order: no second compiler to keep in step, and the
typed text is never turned into code (the program is an integer table that
:mod:`engine._kernel` interprets). Parameters are read at trace time and become constants.

Registers 0 and 1 hold x and y, then come the constants, then one register per distinct
operation (value numbering: a sub-expression shared by fx and fy is computed once).
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple

import numpy as np

# Opcodes. Binary operations read registers a and b; unary ones read a.
(ADD, SUB, MUL, DIV, POW, NEG, SIN, COS, TAN, EXP, LOG, SQRT, ABS, TANH, MAX, MIN,
 LOGADDEXP, HEAVISIDE, SIGN, ZERO) = range(20)

_UFUNCS = {
    np.add: ADD, np.subtract: SUB, np.multiply: MUL, np.true_divide: DIV, np.power: POW,
    np.negative: NEG, np.sin: SIN, np.cos: COS, np.tan: TAN, np.exp: EXP, np.log: LOG,
    np.sqrt: SQRT, np.absolute: ABS, np.tanh: TANH, np.maximum: MAX, np.minimum: MIN,
    np.logaddexp: LOGADDEXP, np.heaviside: HEAVISIDE, np.sign: SIGN,
}
_UNARY = {NEG, SIN, COS, TAN, EXP, LOG, SQRT, ABS, TANH, SIGN, ZERO}

MAX_INSTRUCTIONS = 20_000  # far above any expression the symbolic limits let through


class TraceError(Exception):
    """The closures did something the program cannot express."""


class Program(NamedTuple):
    """A gradient as a register program: ``code`` rows are (op, destination, a, b)."""

    code: np.ndarray  # (n, 4) int64
    registers: np.ndarray  # (count,) float64: x, y, constants, then scratch (initial values)
    fx: int  # register holding df/dx after the run
    fy: int


class _Recorder:
    def __init__(self) -> None:
        self.values: list[float] = [0.0, 0.0]  # x and y are filled in per step
        self.constants: dict[bytes, int] = {}
        self.code: list[tuple[int, int, int, int]] = []
        self.seen: dict[tuple[int, int, int], int] = {}

    def constant(self, value) -> int:
        value = float(value)
        key = struct.pack("<d", value)  # 0.0 and -0.0 stay apart; every NaN is one NaN
        if math.isnan(value):
            key = b"nan"
        if key not in self.constants:
            self.constants[key] = len(self.values)
            self.values.append(value)
        return self.constants[key]

    def register(self, value) -> int:
        if isinstance(value, _Tracer):
            if value.recorder is not self:
                raise TraceError("a value from another trace")
            return value.index
        if isinstance(value, (int, float, np.floating, np.integer)) or (
                isinstance(value, np.ndarray) and value.ndim == 0):
            return self.constant(value)
        raise TraceError(f"cannot record a {type(value).__name__}")

    def emit(self, op: int, a, b=None) -> _Tracer:
        ia = self.register(a)
        ib = self.register(b) if b is not None else -1
        key = (op, ia, ib)
        if key not in self.seen:
            if len(self.code) >= MAX_INSTRUCTIONS:
                raise TraceError("the program is too long")
            self.seen[key] = len(self.values)
            self.code.append((op, len(self.values), ia, ib))
            self.values.append(0.0)
        return _Tracer(self, self.seen[key])


class _Tracer:
    """Stands for an array during a trace; arithmetic on it records instructions."""

    __array_priority__ = 1000  # float64 scalars defer to our reflected operators

    def __init__(self, recorder: _Recorder, index: int) -> None:
        self.recorder = recorder
        self.index = index

    def _op(self, op, a, b=None):
        return self.recorder.emit(op, a, b)

    def __add__(self, other):
        return self._op(ADD, self, other)

    def __radd__(self, other):
        return self._op(ADD, other, self)

    def __sub__(self, other):
        return self._op(SUB, self, other)

    def __rsub__(self, other):
        return self._op(SUB, other, self)

    def __mul__(self, other):
        return self._op(MUL, self, other)

    def __rmul__(self, other):
        return self._op(MUL, other, self)

    def __truediv__(self, other):
        return self._op(DIV, self, other)

    def __rtruediv__(self, other):
        return self._op(DIV, other, self)

    def __pow__(self, other):
        if not isinstance(other, _Tracer) and other == 2:
            return self._op(MUL, self, self)  # what NumPy's square computes
        return self._op(POW, self, other)

    def __rpow__(self, other):
        return self._op(POW, other, self)

    def __neg__(self):
        return self._op(NEG, self)

    def __abs__(self):
        return self._op(ABS, self)

    def astype(self, dtype):  # the central-difference fallback converts its inputs
        return self

    def __bool__(self):
        raise TraceError("a branch on a traced value")

    def _compare(self, other):
        raise TraceError("a comparison of a traced value")

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc not in _UFUNCS:
            raise TraceError(f"NumPy {ufunc.__name__}.{method} is not recorded")
        op = _UFUNCS[ufunc]
        if op in _UNARY:
            (a,) = inputs
            return self._op(op, a)
        a, b = inputs
        if op == POW and not isinstance(b, _Tracer) and b == 2:
            return self._op(MUL, a, a)
        return self._op(op, a, b)

    def __array_function__(self, func, types, args, kwargs):
        if func is np.zeros_like and not kwargs:
            return self._op(ZERO, args[0])
        raise TraceError(f"NumPy {func.__name__} is not recorded")


def trace(gradient) -> Program:
    """The program of ``gradient(x, y) -> (fx, fy)``, a function of NumPy-like values."""
    recorder = _Recorder()
    x, y = _Tracer(recorder, 0), _Tracer(recorder, 1)
    with np.errstate(all="ignore"):
        fx, fy = gradient(x, y)
    out = [recorder.register(value) for value in (fx, fy)]
    code = np.array(recorder.code, dtype=np.int64).reshape(-1, 4)
    return Program(code, np.array(recorder.values, dtype=np.float64), out[0], out[1])
