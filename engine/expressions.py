"""A safe expression language for surfaces f(x, y) with named parameters.

Text such as ``a*x**2 + b*sin(y)`` is read by Python's own parser (``ast`` in ``eval`` mode),
checked node by node against an allowlist, folded and compiled into NumPy closures. No
``eval``, ``exec`` or ``compile`` ever sees the text, and neither do ``sympy.sympify``,
``parse_expr`` or ``lambdify`` (all three run generated code). Derivatives come from a sympy
tree built from the checked syntax tree, differentiated exactly and compiled by a small node
walker of our own; when that fails or grows too large, central differences take over and
:attr:`Expression.symbolic` says so.

The language: numbers, ``x``, ``y``, parameters, the constants ``pi`` and ``e``, the
operators ``+ - * / **`` (and unary ``-``, ``+``) and calls to the functions in
:data:`FUNCTIONS`. Everything else is refused with an :class:`ExpressionError` that says
what and where.
"""

from __future__ import annotations

import ast
import math
import threading
import warnings
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from engine._closures import _NUMPY_FUNCTIONS, Closure, _binary, _call, _variable
from engine._symbolic import _VARIABLES, _Derivatives, _differentiate
from engine._trace import Program, trace

__all__ = ["CONSTANTS", "FUNCTIONS", "Expression", "ExpressionError", "parse"]

MAX_LENGTH = 1000  # characters, checked before anything else reads the text
MAX_BRACKET_DEPTH = 100  # nesting of ( [ {, found by a scan before ast.parse
MAX_NODES = 500  # syntax-tree nodes
MAX_DEPTH = 150  # syntax-tree levels (long unary-minus chains, long sums)
MAX_PARAMETERS = 8

FUNCTIONS: Mapping[str, int] = MappingProxyType({
    "sin": 1, "cos": 1, "tan": 1, "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "tanh": 1,
    "sigmoid": 1, "relu": 1, "softplus": 1, "min": 2, "max": 2,
})
"""Allowed function names, each mapped to its number of arguments."""

CONSTANTS: Mapping[str, float] = MappingProxyType({"pi": math.pi, "e": math.e})
"""Named constants and their values."""




class ExpressionError(ValueError):
    """An expression that cannot be accepted, with a short message for the person typing it.

    Attributes
    ----------
    message : str
        What is wrong, in a few words (also ``str(error)``).
    position : int or None
        0-based character offset into the text where the problem is, or None.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __reduce__(self):
        return type(self), (self.message, self.position)


# -- reading and checking the text ----------------------------------------------------------

_REFUSED = {  # attributes and indexing have their own visitors, to point at "." and "["
    ast.Lambda: "lambda is not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.List: "lists are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dictionaries are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and' and 'or' are not allowed",
    ast.IfExp: "'if ... else' is not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Slice: "slices are not allowed",
}
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_OTHER_OPERATORS = {
    ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitAnd: "&",
}
_GRAMMAR_NODES = (ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


def _read(text: str) -> tuple[ast.expr, str, int]:
    """Cheap checks on the raw text, then ast.parse; returns (tree body, source, lead)."""
    if not isinstance(text, str):
        raise TypeError(f"expression text must be a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(text)} characters; the limit is {MAX_LENGTH})",
            MAX_LENGTH)
    if not text.strip():
        raise ExpressionError("the expression is empty", None)
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise ExpressionError(
                    f"brackets are nested too deeply (the limit is {MAX_BRACKET_DEPTH})", index)
        elif char in ")]}":
            depth = max(depth - 1, 0)
    # One line, no indentation: newlines and tabs become spaces (offsets stay the same).
    source = text.translate({ord(c): " " for c in "\t\n\r\x0b\x0c"})
    lead = len(source) - len(source.lstrip(" "))
    source = source[lead:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for "2(3)" and the like
            tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        message = error.msg or "invalid syntax"
        if message.startswith("invalid syntax"):
            message = "invalid syntax"
        elif message == "invalid decimal literal":
            message = "invalid number (write 2*x for a product)"
        offset = (error.offset or 1) - 1 if error.lineno in (None, 1) else len(source)
        raise ExpressionError(message, min(max(lead + offset, 0), len(text))) from None
    except (ValueError, MemoryError, RecursionError, OverflowError):
        raise ExpressionError("the expression could not be read", None) from None
    return tree.body, source, lead


def _check_size(body: ast.expr) -> None:
    """Refuse trees with too many nodes or levels, iteratively (no recursion yet)."""
    count = 0
    stack = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"the expression is too long (more than {MAX_NODES} parts)", None)
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)", None)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, _GRAMMAR_NODES))


class _Checker:
    """Walk a parsed tree once: refuse what is not allowed, fold constants, find parameters.

    ``folded`` maps every constant sub-tree to its value as a finite Python float.
    """

    def __init__(self, source: str, lead: int, parameters: list[str], infer: bool) -> None:
        self.source = source
        self.lead = lead
        self.parameters = parameters
        self.infer = infer
        self.folded: dict[ast.AST, float] = {}
        self._char = []  # UTF-8 byte offset (what ast reports) -> character offset
        for index, char in enumerate(source):
            self._char.extend([index] * len(char.encode("utf-8")))
        self._char.append(len(source))

    def start(self, node: ast.AST) -> int:
        return self.lead + self._char[node.col_offset]

    def after(self, node: ast.AST, skip: str = " )") -> int:
        """Position of the first character after node, past closing brackets and spaces."""
        index = self._char[node.end_col_offset]
        while index < len(self.source) and self.source[index] in skip:
            index += 1
        return self.lead + index

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node) or "?"
        return text if len(text) <= 30 else text[:27] + "..."

    def visit(self, node: ast.AST) -> float | None:
        """Check node and its children; return its value if it is constant, else None."""
        method = getattr(self, "_visit_" + type(node).__name__, None)
        if method is None:
            message = _REFUSED.get(type(node), f"'{type(node).__name__}' is not allowed")
            raise ExpressionError(message, self.start(node))
        value = method(node)
        if value is not None:
            self.folded[node] = value
        return value

    def _visit_Attribute(self, node: ast.Attribute) -> None:
        dot = self.after(node.value) - self.lead
        while dot < len(self.source) and self.source[dot] in " .":
            dot += 1
        raise ExpressionError("attribute access is not allowed", self.lead + dot)

    def _visit_Subscript(self, node: ast.Subscript) -> None:
        raise ExpressionError("indexing is not allowed", self.after(node.value))

    def _visit_Constant(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, (str, bytes)):
            raise ExpressionError("strings are not allowed", self.start(node))
        if isinstance(value, complex):
            raise ExpressionError("complex numbers are not allowed", self.start(node))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"'{self.segment(node)}' is not a number", self.start(node))
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ExpressionError("number too large", self.start(node))
        return number

    def _visit_Name(self, node: ast.Name) -> float | None:
        name = node.id
        if name in _VARIABLES or name in self.parameters:
            return None
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise ExpressionError(f"'{name}' is a function: write {name}(...)", self.start(node))
        if not self.infer:
            raise ExpressionError(f"unknown name '{name}'", self.start(node))
        if name.startswith("_"):
            raise ExpressionError("names starting with '_' are not allowed", self.start(node))
        if len(self.parameters) >= MAX_PARAMETERS:
            raise ExpressionError(
                f"too many parameters (the limit is {MAX_PARAMETERS})", self.start(node))
        self.parameters.append(name)
        return None

    def _visit_UnaryOp(self, node: ast.UnaryOp) -> float | None:
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            symbol = {ast.Not: "not", ast.Invert: "~"}.get(type(node.op), "?")
            raise ExpressionError(f"'{symbol}' is not allowed", self.start(node))
        value = self.visit(node.operand)
        if value is None:
            return None
        return -value if isinstance(node.op, ast.USub) else value

    def _visit_BinOp(self, node: ast.BinOp) -> float | None:
        op = type(node.op)
        if op not in _OPERATORS:
            where = self.after(node.left)
            if op is ast.BitXor:
                raise ExpressionError("use ** for powers; ^ is not supported", where)
            raise ExpressionError(f"operator '{_OTHER_OPERATORS.get(op, '?')}' is not allowed", where)
        left = self.visit(node.left)
        right = self.visit(node.right)
        if left is None or right is None:
            return None
        where = self.start(node)
        try:
            if op is ast.Add:
                value = left + right
            elif op is ast.Sub:
                value = left - right
            elif op is ast.Mult:
                value = left * right
            elif op is ast.Div:
                value = left / right
            else:
                value = math.pow(left, right)  # raises instead of building a giant number
        except ZeroDivisionError:
            raise ExpressionError("division by zero", where) from None
        except OverflowError:
            raise ExpressionError("number too large", where) from None
        except ValueError:
            if left == 0:
                raise ExpressionError("division by zero", where) from None
            raise ExpressionError(f"'{self.segment(node)}' is not a real number", where) from None
        if not math.isfinite(value):
            raise ExpressionError("number too large", where)
        return value

    def _visit_Call(self, node: ast.Call) -> float | None:
        where = self.start(node)
        if not isinstance(node.func, ast.Name):
            self.visit(node.func)  # refuses attributes, indexing, lambdas...
            raise ExpressionError("only the listed functions can be called", where)
        name = node.func.id
        if name not in FUNCTIONS:
            if name in _VARIABLES or name in self.parameters or name in CONSTANTS:
                raise ExpressionError(f"'{name}' is not a function: use * to multiply", where)
            raise ExpressionError(
                f"unknown function '{name}' (allowed: {', '.join(FUNCTIONS)})", where)
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed", self.start(node.keywords[0]))
        arity = FUNCTIONS[name]
        if len(node.args) != arity:
            plural = "" if arity == 1 else "s"
            raise ExpressionError(
                f"{name}() takes {arity} argument{plural}, got {len(node.args)}", where)
        values = [self.visit(arg) for arg in node.args]
        if any(value is None for value in values):
            return None
        with np.errstate(all="ignore"):
            value = float(_NUMPY_FUNCTIONS[name](*(np.float64(v) for v in values)))
        if math.isnan(value):
            raise ExpressionError(f"'{self.segment(node)}' is not a real number", where)
        if not math.isfinite(value):
            raise ExpressionError(f"'{self.segment(node)}' is infinite", where)
        return value


def _compile(node: ast.expr, folded: dict) -> Closure | float:
    """One NumPy closure per node of a checked tree; constant sub-trees become floats."""
    if node in folded:
        return folded[node]
    if isinstance(node, ast.Name):
        return _variable(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand, folded)
        if isinstance(node.op, ast.UAdd):
            return operand
        return lambda x, y, p: np.negative(operand(x, y, p))
    if isinstance(node, ast.BinOp):
        return _binary(_OPERATORS[type(node.op)], _compile(node.left, folded),
                       _compile(node.right, folded))
    args = [_compile(arg, folded) for arg in node.args]
    return _call(_NUMPY_FUNCTIONS[node.func.id], args)


# -- the public API -----------------------------------------------------------------------------

def _prepare(x, y):
    """Inputs as float arrays (float32 and float64 kept), their result dtype and shape."""
    arrays = []
    for value in (x, y):
        array = np.asarray(value)
        if array.dtype.kind in "biu":
            array = array.astype(np.float64)
        elif array.dtype.kind != "f":
            raise TypeError(f"x and y must be real numbers, got dtype {array.dtype}")
        arrays.append(array)
    x, y = arrays
    return x, y, np.result_type(x, y), np.broadcast_shapes(x.shape, y.shape)


def _finish(value, shape: tuple, dtype, inputs: tuple):
    """value as a fresh array of the broadcast shape and dtype (a numpy scalar for shape ())."""
    array = np.asarray(value)
    if array.shape != shape or array.dtype != dtype or any(array is a for a in inputs):
        array = np.broadcast_to(array, shape).astype(dtype)
    return array[()] if array.ndim == 0 else array


class Expression:
    """A checked expression f(x, y) compiled to NumPy, with its derivatives.

    Build one with :func:`parse`. Evaluation runs under ``np.errstate(all="ignore")``: the
    log of a negative number gives nan and overflow gives inf; masking them is the caller's
    job. float32 inputs give float32 results, float64 give float64, Python numbers give
    NumPy float64 scalars.

    Attributes
    ----------
    text : str
        The text as typed.
    parameters : tuple of str
        Parameter names, declared ones first, then inferred ones in order of appearance.
    """

    def __init__(self, text: str, parameters: tuple, defaults: dict, body: ast.expr,
                 folded: dict) -> None:
        self.text = text
        self.parameters = parameters
        self._defaults = defaults
        self._body = body
        self._folded = folded
        self._function = _compile(body, folded)
        self._lock = threading.Lock()
        self._derived: _Derivatives | None = None

    def __repr__(self) -> str:
        return f"Expression({self.text!r}, parameters={self.parameters!r})"

    def __reduce__(self):
        return parse, (self.text, self.defaults)

    @property
    def defaults(self) -> dict:
        """Default value of each parameter (a fresh dict)."""
        return dict(self._defaults)

    @property
    def symbolic(self) -> bool:
        """True if derivatives are exact (sympy), False if central differences."""
        return self._derivatives().symbolic

    @property
    def formulas(self) -> dict:
        """Readable formulas for "f", "fx", "fy", "fxx", "fxy" and "fyy".

        Without exact derivatives the derivative entries read "(not available)".
        """
        return dict(self._derivatives().formulas)

    def evaluate(self, x, y, **params):
        """f at (x, y), broadcasting x against y.

        Parameters
        ----------
        x, y : float or array_like
            Coordinates; shapes (1, N) and (N, 1) give an (N, N) grid.
        **params : float
            Parameter values; missing ones take their defaults.

        Returns
        -------
        ndarray or numpy scalar
            f with the broadcast shape of x and y.
        """
        x, y, dtype, shape = _prepare(x, y)
        values = self._values(params)
        with np.errstate(all="ignore"):
            return _finish(self._run(self._function, x, y, values), shape, dtype, (x, y))

    def gradient(self, x, y, **params):
        """The gradient (df/dx, df/dy) at (x, y), each with the broadcast shape.

        Exact when :attr:`symbolic`, else central differences in float64 with steps
        h = 1e-5 (1 + |x|).
        """
        x, y, dtype, shape = _prepare(x, y)
        values = self._values(params)
        derived = self._derivatives()
        with np.errstate(all="ignore"):
            if derived.symbolic:
                parts = [self._run(c, x, y, values) for c in derived.closures[:2]]
            else:
                parts = self._central_gradient(x, y, values)
            return tuple(_finish(part, shape, dtype, (x, y)) for part in parts)

    def gradient_kernel(self, **params):
        """A fast ``(x, y) -> (fx, fy)`` for an optimizer's inner loop.

        For many calls on float64 arrays of one shape: no argument checks and no
        broadcasting of constant derivatives (they come back as Python floats). The caller
        holds ``np.errstate``. Exact when :attr:`symbolic`, else :meth:`gradient`.
        """
        values = self._values(params)
        derived = self._derivatives()
        if not derived.symbolic:
            return lambda x, y: self.gradient(x, y, **values)
        fx, fy = derived.closures[:2]
        return lambda x, y: (fx(x, y, values) if callable(fx) else fx,
                             fy(x, y, values) if callable(fy) else fy)

    def gradient_program(self, **params) -> Program:
        """The gradient as a register program for the compiled optimizer loop.

        A trace of the same closures :meth:`gradient_kernel` runs (exact when
        :attr:`symbolic`, else central differences), parameters bound as constants.
        """
        values = self._values(params)
        derived = self._derivatives()
        if not derived.symbolic:
            return trace(lambda x, y: self._central_gradient(x, y, values))
        fx, fy = derived.closures[:2]
        return trace(lambda x, y: (self._run(fx, x, y, values), self._run(fy, x, y, values)))

    def hessian(self, x, y, **params):
        """The Hessian [[fxx, fxy], [fxy, fyy]] at (x, y).

        Returns
        -------
        ndarray
            Shape ``broadcast(x, y).shape + (2, 2)``; (2, 2) for a single point. Exact when
            :attr:`symbolic`, else central differences in float64 with h = 1e-4 (1 + |x|).
        """
        x, y, dtype, shape = _prepare(x, y)
        values = self._values(params)
        derived = self._derivatives()
        with np.errstate(all="ignore"):
            if derived.symbolic:
                fxx, fxy, fyy = (self._run(c, x, y, values) for c in derived.closures[2:])
            else:
                fxx, fxy, fyy = self._central_hessian(x, y, values)
            out = np.empty(shape + (2, 2), dtype)
            out[..., 0, 0] = fxx  # float64 -> float32 may overflow to inf: no warning
            out[..., 0, 1] = fxy
            out[..., 1, 0] = fxy
            out[..., 1, 1] = fyy
        return out

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _run(function, x, y, values):
        return function(x, y, values) if callable(function) else function

    def _values(self, params: dict) -> dict:
        values = dict(self._defaults)
        for name, value in params.items():
            if name not in values:
                known = ", ".join(self.parameters) or "none"
                raise ExpressionError(f"unknown parameter '{name}' (parameters: {known})")
            if np.ndim(value) != 0:
                raise TypeError(f"parameter '{name}' must be a single number")
            values[name] = float(value)
        return values

    def _derivatives(self) -> _Derivatives:
        with self._lock:
            if self._derived is None:
                self._derived = _differentiate(self._body, self._folded, self.parameters,
                                               self.text)
            return self._derived

    def _central_gradient(self, x, y, values):
        f = self._function
        if not callable(f):
            return 0.0, 0.0
        x, y = x.astype(np.float64), y.astype(np.float64)
        hx, hy = 1e-5 * (1.0 + np.abs(x)), 1e-5 * (1.0 + np.abs(y))
        xp, xm, yp, ym = x + hx, x - hx, y + hy, y - hy
        fx = (f(xp, y, values) - f(xm, y, values)) / (xp - xm)
        fy = (f(x, yp, values) - f(x, ym, values)) / (yp - ym)
        return fx, fy

    def _central_hessian(self, x, y, values):
        f = self._function
        if not callable(f):
            return 0.0, 0.0, 0.0
        x, y = x.astype(np.float64), y.astype(np.float64)
        hx, hy = 1e-4 * (1.0 + np.abs(x)), 1e-4 * (1.0 + np.abs(y))
        xp, xm, yp, ym = x + hx, x - hx, y + hy, y - hy
        hx, hy = (xp - xm) / 2, (yp - ym) / 2  # the steps actually taken
        centre = 2.0 * f(x, y, values)
        fxx = (f(xp, y, values) - centre + f(xm, y, values)) / (hx * hx)
        fyy = (f(x, yp, values) - centre + f(x, ym, values)) / (hy * hy)
        fxy = (f(xp, yp, values) - f(xp, ym, values) - f(xm, yp, values)
               + f(xm, ym, values)) / (4 * hx * hy)
        return fxx, fxy, fyy


def _declared(parameters) -> dict:
    """Declared parameters as an ordered dict name -> default, checked."""
    if isinstance(parameters, str):
        raise TypeError("parameters must be a sequence of names or a mapping, not a str")
    if isinstance(parameters, Mapping):
        items = list(parameters.items())
    else:
        items = [(name, 1.0) for name in parameters]
    defaults: dict[str, float] = {}
    for name, value in items:
        if not (isinstance(name, str) and name.isidentifier()) or name.startswith("_"):
            raise ExpressionError(f"'{name}' cannot be a parameter name")
        if name in _VARIABLES or name in CONSTANTS or name in FUNCTIONS:
            raise ExpressionError(f"'{name}' is reserved and cannot be a parameter")
        if name in defaults:
            raise ExpressionError(f"parameter '{name}' is declared twice")
        default = float(value)
        if not math.isfinite(default):
            raise ExpressionError(f"parameter '{name}' needs a finite default")
        defaults[name] = default
    if len(defaults) > MAX_PARAMETERS:
        raise ExpressionError(f"too many parameters (the limit is {MAX_PARAMETERS})")
    return defaults


def parse(text: str, parameters=(), infer_parameters: bool = False) -> Expression:
    """Check and compile an expression f(x, y).

    Parameters
    ----------
    text : str
        The expression, e.g. ``"a*x**2 + b*y**2"``; at most 1000 characters.
    parameters : sequence of str or mapping of str to float, optional
        Declared parameter names (default value 1.0 each) or names with default values.
    infer_parameters : bool, optional
        If True, every other bare name becomes a parameter with default 1.0, in order of
        first appearance (at most 8 parameters in all). If False, unknown names are errors.

    Returns
    -------
    Expression

    Raises
    ------
    ExpressionError
        With a short message and the character position of the problem. The text is never
        executed: it is parsed by ``ast`` and only allowlisted nodes are compiled.
    """
    defaults = _declared(parameters)
    body, source, lead = _read(text)
    _check_size(body)
    checker = _Checker(source, lead, list(defaults), infer_parameters)
    checker.visit(body)
    for name in checker.parameters:
        defaults.setdefault(name, 1.0)
    return Expression(text, tuple(checker.parameters), defaults, body, checker.folded)
