"""Shared pieces of the surface engine: parsing with a cache, float64 evaluation of f and
its derivatives, range checks and the classification of a Hessian's eigenvalues."""

from __future__ import annotations

import functools
import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from engine.expressions import Expression, parse

Range = tuple[float, float]
LEVEL_SPACINGS = ("linear", "log", "auto")
KINDS = ("minimum", "maximum", "saddle", "degenerate")
MAX_RESOLUTION = 4096


def _check_range(r: Sequence[float], name: str) -> Range:
    lo, hi = (float(v) for v in r)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be two finite numbers with lo < hi, got {tuple(r)!r}")
    return lo, hi


def _check_resolution(resolution: int | Sequence[int]) -> tuple[int, int]:
    if np.ndim(resolution) == 0:
        nx = ny = int(resolution)  # type: ignore[arg-type]
    else:
        nx, ny = (int(v) for v in resolution)  # type: ignore[union-attr]
    if not (2 <= nx <= MAX_RESOLUTION and 2 <= ny <= MAX_RESOLUTION):
        raise ValueError(f"resolution must be between 2 and {MAX_RESOLUTION}, got {resolution!r}")
    return nx, ny



@functools.lru_cache(maxsize=64)
def _parse_cached(text: str, parameters: tuple, infer: bool) -> Expression:
    """Parse once per (text, parameters); ``parameters`` holds names or (name, default) pairs.

    Requests pass names only, and parameter *values* at evaluation, so moving a slider
    never re-parses.
    """
    if parameters and isinstance(parameters[0], tuple):
        return parse(text, parameters=dict(parameters), infer_parameters=infer)
    return parse(text, parameters=parameters, infer_parameters=infer)


def parse_cached(text: str, parameters: Sequence[str] | Mapping[str, float] = (),
                 infer_parameters: bool = True) -> Expression:
    """:func:`engine.expressions.parse`, remembered for the last 64 distinct inputs.

    Unlike ``parse`` it infers free names as parameters by default, as the panels do. Safe
    to call from any thread; raises ``ExpressionError`` for bad text.
    """
    if isinstance(parameters, Mapping):
        key: tuple = tuple((str(k), float(v)) for k, v in parameters.items())
    else:
        key = tuple(str(name) for name in parameters)
    return _parse_cached(text, key, bool(infer_parameters))


def _as_expression(expression: Expression | str) -> Expression:
    if isinstance(expression, str):
        return _parse_cached(expression, (), True)
    return expression


def _param_values(expression: Expression, params: Mapping[str, float] | Iterable | None) -> dict[str, float]:
    """Defaults of ``expression`` overridden by ``params``; names it does not use are ignored.

    Values are plain Python floats so that float32 inputs stay float32 (NEP 50).
    """
    given = dict(params or {})
    defaults = dict(getattr(expression, "defaults", {}) or {})
    values = {}
    for name in expression.parameters:
        values[name] = float(given.get(name, defaults.get(name, 1.0)))
    return values


def _evaluate(expression: Expression, x, y, values: dict[str, float], dtype=np.float64) -> np.ndarray:
    with np.errstate(all="ignore"):
        z = expression.evaluate(x, y, **values)
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    return np.broadcast_to(np.asarray(z, dtype=dtype), shape)


def _gradient(expression: Expression, x, y, values: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        fx, fy = expression.gradient(x, y, **values)
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    return (np.broadcast_to(np.asarray(fx, dtype=np.float64), shape),
            np.broadcast_to(np.asarray(fy, dtype=np.float64), shape))


def _hessian(expression: Expression, x, y, values: dict[str, float]) -> np.ndarray:
    with np.errstate(all="ignore"):
        h = expression.hessian(x, y, **values)
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    return np.broadcast_to(np.asarray(h, dtype=np.float64), shape + (2, 2))


def _symmetric_eigen(h: np.ndarray):
    """Eigenvalues (ascending) and the unit eigenvector of the smaller one, for symmetric 2x2.

    Closed form, vectorised over leading axes and NaN-safe (``eigvalsh`` raises on NaN).
    """
    a = h[..., 0, 0]
    d = h[..., 1, 1]
    b = 0.5 * (h[..., 0, 1] + h[..., 1, 0])
    with np.errstate(all="ignore"):
        mean = 0.5 * (a + d)
        radius = np.hypot(0.5 * (a - d), b)
        lam1, lam2 = mean - radius, mean + radius
        # Eigenvector of lam1: the angle theta with tan(2 theta) = 2b / (a - d), rotated.
        theta = 0.5 * np.arctan2(2.0 * b, a - d) + 0.5 * np.pi
    return lam1, lam2, np.cos(theta), np.sin(theta)


def classify_eigenvalues(lam1: float, lam2: float, tol: float) -> str:
    """Kind of a stationary point from its Hessian eigenvalues (seed 002, second-order test).

    "minimum" if both exceed ``tol``, "maximum" if both are below ``-tol``, "saddle" if
    they have opposite signs beyond ``tol``, else "degenerate" (the test cannot decide).
    """
    lo, hi = min(lam1, lam2), max(lam1, lam2)
    if lo > tol:
        return "minimum"
    if hi < -tol:
        return "maximum"
    if lo < -tol and hi > tol:
        return "saddle"
    return "degenerate"


def _robust_scale(values: np.ndarray) -> float:
    """Spread of the finite values (1st to 99th percentile), never zero."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 1.0
    lo, hi = np.percentile(v, (1.0, 99.0))
    spread = float(hi - lo)
    if not (math.isfinite(spread) and spread > 0):
        spread = float(np.max(np.abs(v))) if np.isfinite(np.max(np.abs(v))) else 1.0
    return spread if spread > 0 else 1.0
