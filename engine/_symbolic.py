"""Exact derivatives for :mod:`engine.expressions`.

A sympy tree is built from the already checked syntax tree (never from text), differentiated
exactly and compiled into NumPy closures by a small node walker of our own (``lambdify``
would run generated code). Expressions whose derivatives grow too large, or too deep,
fall back to central differences in the caller.
"""

from __future__ import annotations

import ast
import math
import operator
import time
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import sympy

from engine._closures import (
    Closure,
    _binary,
    _call,
    _relu,
    _sigmoid,
    _softplus,
    _variable,
)

# Symbolic derivatives larger than these (tree nodes) fall back to central differences.
# Second derivatives cost about 0.1-0.4 ms of sympy time per node; a first derivative of
# n nodes gives second ones of roughly 4n to 12n nodes.
MAX_FIRST_DERIVATIVE_NODES = 500
MAX_SECOND_DERIVATIVE_NODES = 8000
MAX_SYMBOLIC_NESTING = 12  # deeper chains of calls and powers skip sympy altogether
SYMBOLIC_SECONDS = 3.0  # safety net on wall time, checked between derivatives

_VARIABLES = ("x", "y")
_DERIVATIVES = ("fx", "fy", "fxx", "fxy", "fyy")
_NO_FORMULA = "(not available)"

class _Sigmoid(sympy.Function):
    """sigmoid(t) = 1 / (1 + exp(-t)); sigmoid' = sigmoid (1 - sigmoid)."""

    def fdiff(self, argindex=1):
        s = _Sigmoid(self.args[0])
        return s * (1 - s)


class _Softplus(sympy.Function):
    """softplus(t) = log(1 + exp(t)); softplus' = sigmoid."""

    def fdiff(self, argindex=1):
        return _Sigmoid(self.args[0])


class _Relu(sympy.Function):
    """relu(t) = max(t, 0); relu' = 1{t > 0}, so relu'(0) = 0 (eq. (16) of seed 003)."""

    def fdiff(self, argindex=1):
        return sympy.Heaviside(self.args[0], 0)


class _Max(sympy.Function):
    """max(a, b); at a tie each partial derivative is 1/2, so max(t, t)' = 1."""

    def fdiff(self, argindex=1):
        a, b = self.args
        return sympy.Heaviside(a - b if argindex == 1 else b - a, sympy.S.Half)


class _Min(sympy.Function):
    """min(a, b); at a tie each partial derivative is 1/2."""

    def fdiff(self, argindex=1):
        a, b = self.args
        return sympy.Heaviside(b - a if argindex == 1 else a - b, sympy.S.Half)


for _cls, _name in ((_Sigmoid, "sigmoid"), (_Softplus, "softplus"), (_Relu, "relu"),
                    (_Max, "max"), (_Min, "min")):
    _cls.__name__ = _cls.__qualname__ = _name  # printed formulas use the names people type

_SYMPY_FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
    "sqrt": sympy.sqrt, "abs": sympy.Abs, "tanh": sympy.tanh, "sigmoid": _Sigmoid,
    "relu": _Relu, "softplus": _Softplus, "min": _Min, "max": _Max,
}
_SYMPY_TO_NUMPY = {
    sympy.sin: np.sin, sympy.cos: np.cos, sympy.tan: np.tan, sympy.exp: np.exp,
    sympy.log: np.log, sympy.tanh: np.tanh, sympy.Abs: np.abs, sympy.sign: np.sign,
    _Sigmoid: _sigmoid, _Softplus: _softplus, _Relu: _relu, _Max: np.maximum, _Min: np.minimum,
}


class _TooComplex(Exception):
    """The symbolic route is unsafe or too big here: use central differences."""


def _sympy_number(value: float) -> sympy.Expr:
    """A readable exact sympy number for a float: 2 rather than 2.0, 1/2 rather than 0.5."""
    if value == int(value) and abs(value) <= 2**53:
        return sympy.Integer(int(value))
    fraction = Fraction(value)
    if fraction.denominator <= 1024:
        return sympy.Rational(fraction.numerator, fraction.denominator)
    return sympy.Float(value)


def _safe_pow(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """base**exponent, refusing forms where sympy would compute a giant exact number.

    sympy distributes rational powers over numeric factors ((3*x)**n -> 3**n * x**n), so a
    large n would build an integer with millions of digits.
    """
    if exponent.is_Rational and not base.is_number:
        if exponent.q > 1024:
            exponent = sympy.Float(float(exponent))
        else:
            coefficient = base.as_coeff_Mul()[0]
            if coefficient.is_Rational and abs(coefficient) != 1:
                bits = max(abs(coefficient.p).bit_length(), coefficient.q.bit_length())
                if bits * abs(exponent) > 4096:
                    raise _TooComplex
    return sympy.Pow(base, exponent)


#: The four arithmetic operators on sympy values; ** is handled by each caller.
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}


def _exact_constant(node: ast.expr) -> sympy.Expr | None:
    """An exact sympy value for simple constant arithmetic (pi/2, 1/3), or None."""
    if isinstance(node, ast.Constant):
        return _sympy_number(float(node.value))
    if isinstance(node, ast.Name):
        return sympy.pi if node.id == "pi" else sympy.E
    if isinstance(node, ast.UnaryOp):
        operand = _exact_constant(node.operand)
        if operand is None:
            return None
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):  # small literal powers only: sizes stay bounded
            if not (isinstance(node.left, (ast.Constant, ast.Name))
                    and isinstance(node.right, ast.Constant)
                    and isinstance(node.right.value, int) and abs(node.right.value) <= 64):
                return None
        left, right = _exact_constant(node.left), _exact_constant(node.right)
        if left is None or right is None:
            return None
        combine = _ARITHMETIC.get(type(node.op), operator.pow)
        return combine(left, right)
    return None


def _to_sympy(node: ast.expr, folded: dict, symbols: dict) -> sympy.Expr:
    """The sympy tree of a checked syntax tree (never of the text)."""
    if node in folded:
        exact = _exact_constant(node)
        return exact if exact is not None else _sympy_number(folded[node])
    if isinstance(node, ast.Name):
        return symbols[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _to_sympy(node.operand, folded, symbols)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left = _to_sympy(node.left, folded, symbols)
        right = _to_sympy(node.right, folded, symbols)
        return _ARITHMETIC.get(type(node.op), _safe_pow)(left, right)
    args = [_to_sympy(arg, folded, symbols) for arg in node.args]
    return _SYMPY_FUNCTIONS[node.func.id](*args)


def _nesting(node: ast.expr, folded: dict) -> int:
    """Longest chain of function calls and variable powers (derivatives grow with it)."""
    if node in folded or isinstance(node, ast.Name):
        return 0
    children = list(ast.iter_child_nodes(node))
    below = max((_nesting(c, folded) for c in children if isinstance(c, ast.expr)), default=0)
    if isinstance(node, ast.Call) or (isinstance(node, ast.BinOp)
                                      and isinstance(node.op, ast.Pow)
                                      and node.right not in folded):
        return below + 1
    return below


def _node_count(expr: sympy.Basic, limit: int) -> int:
    """Nodes of expr as a tree, counting stops just past limit."""
    count, stack = 0, [expr]
    while stack and count <= limit:
        count += 1
        stack.extend(stack.pop().args)
    return count


def _finite(value) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise _TooComplex
    return number


class _SympyCompiler:
    """Compile sympy trees into NumPy closures; shared sub-trees compile once."""

    def __init__(self, symbols: dict) -> None:
        self.names = {symbol: name for name, symbol in symbols.items()}
        self.cache: dict = {}

    def __call__(self, expr: sympy.Expr) -> Closure | float:
        if expr not in self.cache:
            self.cache[expr] = self._build(expr)
        return self.cache[expr]

    def _build(self, expr: sympy.Expr) -> Closure | float:
        if expr.is_Symbol:
            return _variable(self.names[expr])
        if expr.is_Number or expr.is_NumberSymbol:
            return _finite(expr)
        if expr.is_Add:
            return self._sum(expr)
        if expr.is_Mul:
            return self._product(expr)
        if expr.is_Pow:
            base, exponent = self(expr.base), self(expr.exp)
            if not callable(base) and not callable(exponent):
                return _finite(expr)
            return _binary("**", base, exponent)
        function = expr.func
        args = [self(arg) for arg in expr.args]
        if function in (sympy.Heaviside, sympy.DiracDelta):
            if not callable(args[0]):
                return _finite(expr)
            if function is sympy.DiracDelta:  # zero away from a set of measure zero
                return lambda x, y, p, a=args[0]: np.zeros_like(a(x, y, p))
            at_zero = args[1] if len(args) > 1 else 0.5
            return lambda x, y, p, a=args[0]: np.heaviside(a(x, y, p), at_zero)
        if function not in _SYMPY_TO_NUMPY:
            raise _TooComplex
        if not any(callable(arg) for arg in args):
            return _finite(expr)
        return _call(_SYMPY_TO_NUMPY[function], args)

    def _sum(self, expr: sympy.Add) -> Closure | float:
        constant, plus, minus = 0.0, [], []
        for term in expr.args:
            coefficient = term.as_coeff_Mul()[0]
            negative = coefficient.is_Number and coefficient < 0
            part = self(-term if negative else term)
            if not callable(part):
                constant += -part if negative else part
            else:
                (minus if negative else plus).append(part)
        if not plus and not minus:
            return constant

        def total(x, y, p):
            value = plus[0](x, y, p) if plus else -minus[0](x, y, p)
            for term in plus[1:]:
                value = value + term(x, y, p)
            for term in (minus if plus else minus[1:]):
                value = value - term(x, y, p)
            return value + constant if constant else value

        return total

    def _product(self, expr: sympy.Mul) -> Closure | float:
        coefficient, above, below = 1.0, [], []
        for factor in expr.args:
            if factor.is_Pow and factor.exp.is_Number and factor.exp < 0:
                part = self(_safe_pow(factor.base, -factor.exp))
                if callable(part):
                    below.append(part)
                    continue
                coefficient /= part
            else:
                part = self(factor)
                if callable(part):
                    above.append(part)
                else:
                    coefficient *= part
        coefficient = _finite(coefficient)
        if not above and not below:
            return coefficient

        def product(x, y, p):
            value = above[0](x, y, p) if above else coefficient
            for factor in above[1:]:
                value = value * factor(x, y, p)
            if above and coefficient != 1.0:
                value = value * coefficient
            if below:
                denominator = below[0](x, y, p)
                for factor in below[1:]:
                    denominator = denominator * factor(x, y, p)
                value = value / denominator
            return value

        return product


class _Derivatives(NamedTuple):
    symbolic: bool
    formulas: dict
    closures: tuple  # fx, fy, fxx, fxy, fyy, or () for central differences


def _differentiate(body: ast.expr, folded: dict, parameters: tuple, text: str) -> _Derivatives:
    """Exact derivatives through sympy, or the central-difference fallback."""
    started = time.perf_counter()
    symbols = {name: sympy.Symbol(name, real=True) for name in (*_VARIABLES, *parameters)}
    formulas = {"f": text.strip(), **{key: _NO_FORMULA for key in _DERIVATIVES}}
    try:
        if _nesting(body, folded) > MAX_SYMBOLIC_NESTING:
            raise _TooComplex
        f = _to_sympy(body, folded, symbols)
        formulas["f"] = sympy.sstr(f)
        x, y = symbols["x"], symbols["y"]

        def derivative(expr, variable, limit):
            result = expr.diff(variable)
            if (_node_count(result, limit) > limit
                    or time.perf_counter() - started > SYMBOLIC_SECONDS):
                raise _TooComplex
            return result

        fx = derivative(f, x, MAX_FIRST_DERIVATIVE_NODES)
        fy = derivative(f, y, MAX_FIRST_DERIVATIVE_NODES)
        exprs = (fx, fy, derivative(fx, x, MAX_SECOND_DERIVATIVE_NODES),
                 derivative(fx, y, MAX_SECOND_DERIVATIVE_NODES),
                 derivative(fy, y, MAX_SECOND_DERIVATIVE_NODES))
        compiler = _SympyCompiler(symbols)
        closures = tuple(compiler(expr) for expr in exprs)
        formulas.update(zip(_DERIVATIVES, (sympy.sstr(expr) for expr in exprs)))
    except Exception:  # any failure of the symbolic route (sympy, size, recursion) -> numeric
        formulas.update(dict.fromkeys(_DERIVATIVES, _NO_FORMULA))
        return _Derivatives(False, formulas, ())
    return _Derivatives(True, formulas, closures)
