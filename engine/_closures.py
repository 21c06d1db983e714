"""NumPy closures: the compiled form of an expression, one closure per syntax node.

Constants stay Python floats (a NumPy float64 scalar would promote float32 grids to
float64 under NEP 50), small integer powers become repeated multiplication (a generic
float32 power is about 100x slower), and constant sub-trees are folded before this point.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Closure = Callable[[Any, Any, dict], Any]

_MAX_INT_POWER = 32  # x**n with |n| up to this becomes repeated multiplication

# Constants stay Python floats so that float32 arrays stay float32 (NEP 50).

def _sigmoid(v):
    """1 / (1 + exp(-v)) as exp(-softplus(-v)): no overflow, accurate in both tails."""
    return np.exp(-np.logaddexp(0.0, -v))


def _softplus(v):
    return np.logaddexp(0.0, v)


def _relu(v):
    """max(v, 0), eq. (15) of seed 003."""
    return np.maximum(v, 0.0)


_NUMPY_FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "abs": np.abs, "tanh": np.tanh, "sigmoid": _sigmoid, "relu": _relu, "softplus": _softplus,
    "min": np.minimum, "max": np.maximum,
}


def _ipow(value, n: int):
    """value**n for an integer n >= 1 by repeated squaring (the generic power is ~100x slower)."""
    result = None
    while True:
        if n & 1:
            result = value if result is None else result * value
        n >>= 1
        if not n:
            return result
        value = value * value


def _power(base: Closure, exponent: float) -> Closure | float:
    """A closure for base**exponent with a constant exponent, avoiding np.power when it can."""
    if exponent == 0:
        return 1.0
    if exponent == 1:
        return base
    size = abs(exponent)
    if size <= _MAX_INT_POWER and size == int(size):
        n = int(size)
        if exponent == 2:  # NumPy's own fast path (square), and it reuses temporaries
            return lambda x, y, p: base(x, y, p) ** 2
        if exponent > 0:
            return lambda x, y, p: _ipow(base(x, y, p), n)
        return lambda x, y, p: 1.0 / _ipow(base(x, y, p), n)
    if size <= _MAX_INT_POWER and 2 * size == int(2 * size):  # n + 1/2: products and a sqrt
        n = int(size)

        def half_power(x, y, p):
            v = base(x, y, p)
            root = np.sqrt(v)
            return root * _ipow(v, n) if n else root

        if exponent > 0:
            return half_power
        return lambda x, y, p: 1.0 / half_power(x, y, p)
    return lambda x, y, p: np.power(base(x, y, p), exponent)


_OPERATORS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}


def _constant(function, *args: float) -> float:
    """A NumPy function of constants, as the Python float the closures capture.

    Sub-trees that only became constant while compiling (``x**0``) land here; the folding
    of literal constants happens earlier, with its own overflow checks.
    """
    with np.errstate(all="ignore"):
        return float(function(*(np.float64(a) for a in args)))


def _binary(op: str, left: Closure | float, right: Closure | float) -> Closure | float:
    """One closure for left (op) right; a constant side is captured as a Python float."""
    if not callable(left) and not callable(right):
        return _constant(_OPERATORS[op], left, right)
    if op == "**":
        if not callable(right):
            return _power(left, right)
        if not callable(left):
            return lambda x, y, p: np.power(left, right(x, y, p))
        return lambda x, y, p: np.power(left(x, y, p), right(x, y, p))
    # Operators, not np.add & co: NumPy then reuses temporaries in place (temporary elision).
    if not callable(left):
        if op == "+":
            return lambda x, y, p: left + right(x, y, p)
        if op == "-":
            return lambda x, y, p: left - right(x, y, p)
        if op == "*":
            return lambda x, y, p: left * right(x, y, p)
        return lambda x, y, p: left / right(x, y, p)
    if not callable(right):
        if op == "+":
            return lambda x, y, p: left(x, y, p) + right
        if op == "-":
            return lambda x, y, p: left(x, y, p) - right
        if op == "*":
            return lambda x, y, p: left(x, y, p) * right
        return lambda x, y, p: left(x, y, p) / right
    if op == "+":
        return lambda x, y, p: left(x, y, p) + right(x, y, p)
    if op == "-":
        return lambda x, y, p: left(x, y, p) - right(x, y, p)
    if op == "*":
        return lambda x, y, p: left(x, y, p) * right(x, y, p)
    return lambda x, y, p: left(x, y, p) / right(x, y, p)


def _variable(name: str) -> Closure:
    if name == "x":
        return lambda x, y, p: x
    if name == "y":
        return lambda x, y, p: y
    return lambda x, y, p: p[name]


def _call(function, args: list) -> Closure | float:
    if not any(callable(a) for a in args):
        return _constant(function, *args)
    if len(args) == 1:
        (a,) = args
        return lambda x, y, p: function(a(x, y, p))
    a, b = args
    if not callable(a):
        return lambda x, y, p: function(a, b(x, y, p))
    if not callable(b):
        return lambda x, y, p: function(a(x, y, p), b)
    return lambda x, y, p: function(a(x, y, p), b(x, y, p))
