"""Surfaces z = f(x, y): presets, grids, level curves, gradient fields and critical points.

The mathematics behind the surface and contour panels. Seed 001 (functions of several
variables) supplies the shapes: paraboloid, saddle, tilted plane, the regression loss of its
practice, level curves and limits that do not exist. Seed 002 (gradient, stationary points)
supplies the gradient field and the classification of stationary points by the eigenvalues
of the Hessian.

Grids are float32 because they are only drawn; every number shown to a student (probe
read-outs, critical points, the gradient field) is computed in float64. Functions taking an
``expression`` accept an :class:`engine.expressions.Expression` or its text (parsed once,
cached, with free names inferred as parameters); ``params`` maps parameter names to values,
missing ones take the expression's defaults and names it does not use are ignored.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, Any, Iterable, Mapping, Sequence

import contourpy
import numpy as np

from engine.expressions import Expression, parse

__all__ = [
    "Preset", "PRESETS", "preset", "preset_keys", "parse_cached",
    "Grid", "evaluate_grid", "default_levels", "suggest_level_spacing", "level_curves",
    "gradient_field", "CriticalPoint", "critical_points", "classify_eigenvalues",
    "PointInfo", "probe",
    "SurfaceRequest", "SurfaceResult", "compute_surface", "compute_critical_points",
    "write_grid_csv",
]

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


# -- presets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    """A named surface with the window that shows its interesting structure.

    ``parameters`` maps each parameter name to its default value (empty for most presets);
    ``note`` says in one sentence what the surface teaches. ``level_spacing`` is the level
    spacing that reads best ("log" for surfaces with a huge dynamic range).
    """

    key: str
    name: str
    text: str
    x_range: Range
    y_range: Range
    parameters: Mapping[str, float] = field(default_factory=dict, hash=False)
    note: str = ""
    level_spacing: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_range", _check_range(self.x_range, "x_range"))
        object.__setattr__(self, "y_range", _check_range(self.y_range, "y_range"))
        object.__setattr__(self, "parameters",
                           MappingProxyType({str(k): float(v) for k, v in dict(self.parameters).items()}))

    def expression(self) -> Expression:
        """Parse the preset's text with its parameters (cached)."""
        return _parse_cached(self.text, tuple(self.parameters.items()), False)

    def request(self, resolution: int | tuple[int, int] = 128, n_levels: int = 15,
                arrows: int = 0, **changes: Any) -> "SurfaceRequest":
        """A :class:`SurfaceRequest` showing this preset at its default parameters."""
        values = dict(self.parameters)
        values.update(changes.pop("params", {}))
        kwargs = dict(text=self.text, params=tuple(values.items()), x_range=self.x_range,
                      y_range=self.y_range, resolution=resolution, n_levels=n_levels,
                      level_spacing=self.level_spacing, arrows=arrows)
        kwargs.update(changes)
        return SurfaceRequest(**kwargs)


PRESETS: tuple[Preset, ...] = (
    Preset("paraboloid", "Paraboloid", "x**2 + y**2", (-3.0, 3.0), (-3.0, 3.0),
           note="Seed 001: the paraboloid bowl, whose level curves x^2 + y^2 = c are circles "
                "of radius sqrt(c) around its single minimum at the origin."),
    Preset("saddle", "Saddle", "x**2 - y**2", (-2.0, 2.0), (-2.0, 2.0),
           note="Seed 001: saddle point, gradient zero but not a minimum (a minimum along x, "
                "a maximum along y; Hessian eigenvalues 2 and -2)."),
    Preset("plane", "Tilted plane", "x + 2*y", (-3.0, 3.0), (-3.0, 3.0),
           note="Seed 001 practice: a tilted plane with parallel level lines of slope -1/2 and "
                "gradient (1, 2) everywhere, so it has no critical point."),
    Preset("regression", "Regression loss L(w, b)", "(2*x + y - 3)**2", (-1.0, 3.0), (-2.0, 4.0),
           note="Seed 001 practice: the loss L(w, b) = (2w + b - 3)^2 with x as w and y as b; "
                "every point of the valley 2w + b = 3 is optimal (L(1.5, 0) = L(1, 1) = 0), "
                "so its minima are degenerate."),
    Preset("limit_diagonal", "xy / (x² + y²)", "x*y/(x**2 + y**2)", (-1.0, 1.0), (-1.0, 1.0),
           note="Seed 001: the limit at the origin does not exist, because the function is 0 "
                "along both axes but 1/2 along y = x."),
    Preset("limit_axes", "(x² - y²) / (x² + y²)", "(x**2 - y**2)/(x**2 + y**2)",
           (-1.0, 1.0), (-1.0, 1.0),
           note="Seed 001 practice: constant on each ray from the origin, 1 along the x-axis "
                "and -1 along the y-axis, so the limit at the origin does not exist."),
    Preset("monkey_saddle", "Monkey saddle", "x**3 - 3*x*y**2", (-1.5, 1.5), (-1.5, 1.5),
           note="Seed 002: gradient and Hessian both vanish at the origin, so the eigenvalue "
                "test cannot classify this degenerate stationary point (three valleys, not two)."),
    Preset("quadratic", "Quadratic a x² + b y²", "a*x**2 + b*y**2", (-3.0, 3.0), (-3.0, 3.0),
           parameters={"a": 1.0, "b": 3.0},
           note="Seed 002: the Hessian is diag(2a, 2b), so the signs of a and b decide whether "
                "the origin is a minimum, a maximum or a saddle (try b < 0)."),
    Preset("rosenbrock", "Rosenbrock", "(a - x)**2 + b*(y - x**2)**2", (-2.0, 2.0), (-1.0, 3.0),
           parameters={"a": 1.0, "b": 100.0}, level_spacing="log",
           note="Rosenbrock's banana: the minimum at (a, a^2) lies at the bottom of a long, "
                "curved, nearly flat valley where gradient descent crawls."),
    Preset("himmelblau", "Himmelblau", "(x**2 + y - 11)**2 + (x + y**2 - 7)**2",
           (-5.0, 5.0), (-5.0, 5.0), level_spacing="log",
           note="Himmelblau's function: four equally good minima (value 0), one maximum and "
                "four saddle points between them."),
    Preset("beale", "Beale", "(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2",
           (-4.5, 4.5), (-4.5, 4.5), level_spacing="log",
           note="Beale's function: the minimum 0 at (3, 0.5) sits in a flat basin walled by "
                "values near 10^5, so the level spacing must be logarithmic to see it."),
    Preset("rastrigin", "Rastrigin", "20 + x**2 - 10*cos(2*pi*x) + y**2 - 10*cos(2*pi*y)",
           (-5.12, 5.12), (-5.12, 5.12),
           note="Rastrigin's function: a bowl covered in ripples, with about a hundred local "
                "minima around the global minimum 0 at the origin."),
    Preset("ackley", "Ackley",
           "-20*exp(-0.2*sqrt(0.5*(x**2 + y**2))) - exp(0.5*(cos(2*pi*x) + cos(2*pi*y))) + exp(1) + 20",
           (-5.0, 5.0), (-5.0, 5.0),
           note="Ackley's function: a bumpy, nearly flat plate around a deep funnel whose "
                "global minimum 0 at the origin is a cusp where the gradient does not exist."),
    Preset("goldstein_price", "Goldstein-Price",
           "(1 + (x + y + 1)**2*(19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2))"
           "*(30 + (2*x - 3*y)**2*(18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))",
           (-2.0, 2.0), (-2.0, 2.0), level_spacing="log",
           note="Goldstein-Price function: the global minimum 3 at (0, -1) hides among local "
                "minima and values near 10^6, visible only with logarithmic levels."),
)

_PRESETS_BY_KEY = {p.key: p for p in PRESETS}


def preset(key: str) -> Preset:
    """The preset called ``key``; raises KeyError listing the known keys."""
    try:
        return _PRESETS_BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown preset {key!r}; known: {', '.join(_PRESETS_BY_KEY)}") from None


def preset_keys() -> tuple[str, ...]:
    """Keys of :data:`PRESETS` in display order."""
    return tuple(_PRESETS_BY_KEY)


# -- helpers -----------------------------------------------------------------------------

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


# -- grids and colour levels -------------------------------------------------------------

def _widen(lo: float, hi: float) -> tuple[float, float]:
    if hi > lo:
        return lo, hi
    pad = 0.05 * max(abs(lo), 1.0)
    new_lo, new_hi = lo - pad, lo + pad
    if not (math.isfinite(new_lo) and math.isfinite(new_hi)):
        new_lo, new_hi = float(np.nextafter(lo, -np.inf)), float(np.nextafter(lo, np.inf))
    return new_lo, new_hi


@dataclass(frozen=True, eq=False)
class Grid:
    """z = f(x, y) sampled on the nodes of a rectangular grid.

    ``x`` (nx,) and ``y`` (ny,) are the float64 node coordinates; ``z`` has shape (ny, nx)
    (rows along y), is row-major and C-contiguous, and holds NaN where f is not finite
    (holes). ``text`` and ``params`` record what was evaluated.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    text: str = ""
    params: tuple[tuple[str, float], ...] = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def x_range(self) -> Range:
        return float(self.x[0]), float(self.x[-1])

    @property
    def y_range(self) -> Range:
        return float(self.y[0]), float(self.y[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.z.shape  # type: ignore[return-value]

    def _finite_values(self) -> np.ndarray:
        if "finite_values" not in self._cache:
            z = self.z[np.isfinite(self.z)]
            self._cache["finite_values"] = z.astype(np.float64)
        return self._cache["finite_values"]

    @property
    def finite(self) -> bool:
        """True when at least one value is finite."""
        return self._finite_values().size > 0

    @property
    def z_range(self) -> Range | None:
        """(min, max) of the finite values as floats, or None when there are none."""
        v = self._finite_values()
        if v.size == 0:
            return None
        return float(v.min()), float(v.max())

    def levels(self, clip: tuple[float, float] | None = (1.0, 99.0), spread: float = 10.0) -> Range:
        """Colour levels (lo, hi) from the finite values only, robust to outliers.

        Uses min and max unless they span more than ``spread`` times the ``clip``
        percentiles (e.g. exp(1000 x)), in which case the percentiles are used. Never NaN;
        lo < hi always (a constant surface is widened a little); (0, 1) without finite values.
        """
        key = ("levels", clip, spread)
        if key in self._cache:
            return self._cache[key]
        v = self._finite_values()
        if v.size == 0:
            result = (0.0, 1.0)
        else:
            lo, hi = float(v.min()), float(v.max())
            if clip is not None and hi > lo:
                p_lo, p_hi = (float(p) for p in np.percentile(v, clip))
                with np.errstate(over="ignore"):
                    full, core = hi - lo, p_hi - p_lo
                if p_hi > p_lo and (not math.isfinite(full) or full > spread * core):
                    lo, hi = p_lo, p_hi
            result = _widen(lo, hi)
        self._cache[key] = result
        return result


def evaluate_grid(expression: Expression | str, x_range: Sequence[float], y_range: Sequence[float],
                  resolution: int | Sequence[int], params: Mapping[str, float] | None = None,
                  dtype=np.float32) -> Grid:
    """Sample f on the nodes of a grid covering ``x_range`` x ``y_range``.

    Evaluates on broadcast coordinate vectors (x of shape (1, nx), y of shape (ny, 1)), not a
    meshgrid, which is several times slower.

    Parameters
    ----------
    expression : Expression or str
    x_range, y_range : (float, float)
        Finite, with lo < hi; the first and last nodes sit on the ends.
    resolution : int or (int, int)
        nodes per axis, or (nx, ny); 2 to 4096.
    params : mapping, optional
        Parameter values.
    dtype : numpy dtype, optional
        float32 (default, for drawing) or float64.

    Returns
    -------
    Grid
        z of shape (ny, nx), C-contiguous, with NaN where f is not finite (holes).
    """
    expression = _as_expression(expression)
    (x0, x1), (y0, y1) = _check_range(x_range, "x_range"), _check_range(y_range, "y_range")
    nx, ny = _check_resolution(resolution)
    dtype = np.dtype(dtype)
    x = np.linspace(x0, x1, nx)
    y = np.linspace(y0, y1, ny)
    values = _param_values(expression, params)
    z = _evaluate(expression, x.astype(dtype)[None, :], y.astype(dtype)[:, None], values, dtype)
    z = np.array(z, dtype=dtype, order="C", copy=True)  # own, writable, C-contiguous
    z[~np.isfinite(z)] = np.nan
    return Grid(x=x, y=y, z=z, text=expression.text, params=tuple(values.items()))


def suggest_level_spacing(grid: Grid, clip: tuple[float, float] | None = (1.0, 99.0)) -> str:
    """"log" when most of the surface sits near the bottom of its level range, else "linear".

    That happens for valleys inside steep walls (Rosenbrock, Beale, Goldstein-Price): with
    even spacing almost every level curve crowds onto the walls.
    """
    v = grid._finite_values()
    if v.size == 0:
        return "linear"
    lo, hi = grid.levels(clip)
    median = float(np.median(v))
    return "log" if (median - lo) < 0.05 * (hi - lo) else "linear"


def default_levels(grid: Grid, n: int, spacing: str = "linear",
                   clip: tuple[float, float] | None = (1.0, 99.0), decades: float = 4.0) -> np.ndarray:
    """``n`` contour levels strictly inside the robust level range of ``grid`` (float64).

    "linear" spaces them evenly; "log" spaces their height above the range's bottom
    geometrically over ``decades`` powers of ten, which shows both the floor of a valley and
    its walls; "auto" picks one with :func:`suggest_level_spacing`.
    """
    n = int(n)
    if n <= 0:
        return np.empty(0)
    if spacing == "auto":
        spacing = suggest_level_spacing(grid, clip)
    lo, hi = grid.levels(clip)
    if spacing == "linear":
        levels = np.linspace(lo, hi, n + 2)[1:-1]
    elif spacing == "log":
        levels = lo + (hi - lo) * np.geomspace(10.0 ** -float(decades), 1.0, n + 1)[:-1]
    else:
        raise ValueError(f"spacing must be one of {LEVEL_SPACINGS}, got {spacing!r}")
    levels = np.unique(levels[np.isfinite(levels)])
    return levels


# -- level curves --------------------------------------------------------------------------

def level_curves(grid: Grid, levels: Iterable[float]) -> list[tuple[float, list[np.ndarray]]]:
    """Level curves f = c of a grid (seed 001: "slices" of the surface).

    Computed by contourpy on the grid with its holes masked, so no curve enters a hole.

    Parameters
    ----------
    grid : Grid
    levels : iterable of float
        Non-finite levels are skipped.

    Returns
    -------
    list of (float, list of ndarray)
        For each level c, its polylines as float64 arrays of shape (N, 2) holding (x, y)
        vertices; a closed curve repeats its first vertex at the end; [] when f never
        crosses c.
    """
    levels = [float(c) for c in np.atleast_1d(np.asarray(list(levels), dtype=np.float64))]
    if not grid.finite:
        return [(c, []) for c in levels]
    z = grid.z
    if not np.isfinite(z).all():
        z = np.ma.masked_invalid(z)
    generator = contourpy.contour_generator(grid.x, grid.y, z, line_type=contourpy.LineType.Separate,
                                            corner_mask=True)
    out = []
    for c in levels:
        if not math.isfinite(c):
            continue
        lines = [np.asarray(line, dtype=np.float64) for line in generator.lines(c) if len(line) >= 2]
        out.append((c, lines))
    return out


# -- gradient field ------------------------------------------------------------------------

def gradient_field(expression: Expression | str, x_range: Sequence[float], y_range: Sequence[float],
                   n: int, params: Mapping[str, float] | None = None):
    """Gradient vectors (X, Y, U, V) at the centres of an n x n array of cells (float64).

    U, V = grad f (seed 002: the direction of steepest ascent, perpendicular to level
    curves). Positions where f or its gradient is not finite are dropped, so the arrays
    are 1-D.
    """
    expression = _as_expression(expression)
    (x0, x1), (y0, y1) = _check_range(x_range, "x_range"), _check_range(y_range, "y_range")
    n = int(n)
    if n <= 0:
        empty = np.empty(0)
        return empty, empty.copy(), empty.copy(), empty.copy()
    xs = x0 + (np.arange(n) + 0.5) * ((x1 - x0) / n)
    ys = y0 + (np.arange(n) + 0.5) * ((y1 - y0) / n)
    X, Y = np.meshgrid(xs, ys)
    values = _param_values(expression, params)
    U, V = _gradient(expression, X, Y, values)
    # Where f itself is undefined (log(x) for x < 0), the symbolic derivative may still be
    # finite (1/x), but there is no surface there to be steep: no arrow either.
    F = _evaluate(expression, X, Y, values)
    keep = np.isfinite(U) & np.isfinite(V) & np.isfinite(F)
    return X[keep], Y[keep], np.array(U[keep]), np.array(V[keep])


# -- point probe ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PointInfo:
    """Everything the hover read-out shows about one point, in float64.

    ``kind`` is "minimum", "maximum", "saddle" or "degenerate" at a stationary point
    (|grad f| within tolerance), "regular" elsewhere and "undefined" where f or its
    derivatives are not finite. ``curvature`` describes the local shape from the Hessian
    eigenvalues wherever they exist: "bowl", "dome", "saddle", "flat" or "undefined".
    """

    x: float
    y: float
    value: float
    gradient: tuple[float, float]
    grad_norm: float
    hessian: np.ndarray
    eigenvalues: tuple[float, float]
    kind: str
    curvature: str


_CURVATURE = {"minimum": "bowl", "maximum": "dome", "saddle": "saddle", "degenerate": "flat"}


def probe(expression: Expression | str, x: float, y: float, params: Mapping[str, float] | None = None,
          tol: float = 1e-9) -> PointInfo:
    """Value, gradient, Hessian and its eigenvalues of f at (x, y), for hover read-outs.

    Parameters
    ----------
    expression : Expression or str
    x, y : float
    params : mapping, optional
    tol : float, optional
        A point counts as stationary when |grad f| <= tol * max(1, |f|); an eigenvalue
        counts as zero when |lambda| <= tol * max(1, max |lambda|).

    Returns
    -------
    PointInfo
        float64 throughout; NaN (kind "undefined") where f is not defined.
    """
    expression = _as_expression(expression)
    values = _param_values(expression, params)
    px, py = np.array([float(x)]), np.array([float(y)])
    value = float(_evaluate(expression, px, py, values)[0])
    fx, fy = (float(g[0]) for g in _gradient(expression, px, py, values))
    hessian = np.array(_hessian(expression, px, py, values)[0], dtype=np.float64)
    lam1, lam2, _, _ = _symmetric_eigen(hessian)
    lam1, lam2 = float(lam1), float(lam2)
    grad_norm = float(math.hypot(fx, fy)) if math.isfinite(fx) and math.isfinite(fy) else math.nan
    if math.isfinite(lam1) and math.isfinite(lam2):
        eig_tol = tol * max(1.0, abs(lam1), abs(lam2))
        shape = classify_eigenvalues(lam1, lam2, eig_tol)
        curvature = _CURVATURE[shape]
    else:
        shape, curvature = "undefined", "undefined"
    if not (math.isfinite(value) and math.isfinite(grad_norm)) or shape == "undefined":
        kind = "undefined"
    elif grad_norm <= tol * max(1.0, abs(value)):
        kind = shape
    else:
        kind = "regular"
    return PointInfo(float(x), float(y), value, (fx, fy), grad_norm, hessian, (lam1, lam2), kind, curvature)


# -- critical points -----------------------------------------------------------------------

@dataclass(frozen=True)
class CriticalPoint:
    """A stationary point (grad f = 0) classified by its Hessian eigenvalues (seed 002)."""

    x: float
    y: float
    value: float
    kind: str
    eigenvalues: tuple[float, float]


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def _dedupe(px: np.ndarray, py: np.ndarray, order: np.ndarray, radius: float) -> np.ndarray:
    """Indices (taken in ``order``) of points no closer than ``radius`` to an earlier kept one."""
    kept: list[int] = []
    kx = np.empty(0)
    ky = np.empty(0)
    for i in order:
        if kx.size and np.min(np.hypot(kx - px[i], ky - py[i])) <= radius:
            continue
        kept.append(int(i))
        kx = np.append(kx, px[i])
        ky = np.append(ky, py[i])
    return np.asarray(kept, dtype=np.intp)


#: Iterations run from every seed: 0 Newton, +-1 saddle-free Newton (descent / ascent),
#: +-2 steepest descent / ascent with the 1-D Newton step length.
_SEARCH_MODES = (0.0, 1.0, -1.0, 2.0, -2.0)


def _stationary_search(expression, values, seed_x, seed_y, x_range, y_range, *, grad_tol, h_scale,
                       max_step, max_iter):
    """Positions where grad f = 0 reached from the seeds (vectorised, duplicates included).

    Every seed runs once per mode of :data:`_SEARCH_MODES`: plain Newton, which converges to
    any stationary point (saddles included); "saddle-free" Newton whose step uses |H|
    (descent, reaching minima) or -|H| (ascent, maxima), with much wider basins than
    Newton's on rippled surfaces such as Ackley's; and steepest descent/ascent, which keeps
    to the level-curve normal and so finds the rays of stationary points of a function of
    the angle alone, (x^2 - y^2)/(x^2 + y^2), where Newton steps run radially away. Each run
    keeps a trust radius: a step that does not improve its merit (|grad f| for Newton, f
    for descent, -f for ascent) or lands on a non-finite value is retried shorter from the
    last accepted point.
    """
    (x0, x1), (y0, y1) = x_range, y_range
    extent = math.hypot(x1 - x0, y1 - y0)
    eig_floor = 1e-10 * h_scale
    curvature_floor = 1e-3 * h_scale
    x_tol = 1e-11 * extent
    margin_x, margin_y = 0.25 * (x1 - x0), 0.25 * (y1 - y0)

    n = seed_x.size
    mode = np.repeat(np.array(_SEARCH_MODES), n)
    tx, ty = np.tile(seed_x, len(_SEARCH_MODES)), np.tile(seed_y, len(_SEARCH_MODES))  # trial positions
    ax, ay = tx.copy(), ty.copy()                            # last accepted positions
    merit_acc = np.full(tx.size, np.inf)
    gnorm_acc = np.full(tx.size, np.inf)
    step_x, step_y = np.zeros(tx.size), np.zeros(tx.size)  # full step from the accepted point
    radius = np.full(tx.size, float(max_step))
    ACTIVE, CONVERGED, DEAD = 0, 1, 2
    status = np.zeros(tx.size, dtype=np.int8)

    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            idx = np.flatnonzero(status == ACTIVE)
            if idx.size == 0:
                break
            x, y, m = tx[idx], ty[idx], mode[idx]
            f = _evaluate(expression, x, y, values)
            gx, gy = _gradient(expression, x, y, values)
            h = _hessian(expression, x, y, values)
            gnorm = np.hypot(gx, gy)
            finite = np.isfinite(f) & np.isfinite(gnorm) & np.isfinite(h).all(axis=(-2, -1))
            merit = np.where(m == 0.0, gnorm, np.sign(m) * f)
            first = np.isinf(merit_acc[idx])
            accept = finite & (first | (merit < merit_acc[idx]) | (gnorm <= grad_tol))
            status[idx[first & ~finite]] = DEAD

            # Rejected trials: shrink the radius and retry from the accepted point.
            rej = idx[~accept & ~first]
            radius[rej] *= 0.25
            small = radius[rej] < x_tol
            status[rej[small]] = np.where(gnorm_acc[rej[small]] <= grad_tol, CONVERGED, DEAD)
            rej = rej[~small]
            full = np.hypot(step_x[rej], step_y[rej])
            scale = np.minimum(1.0, radius[rej] / np.where(full > 0, full, 1.0))
            tx[rej] = ax[rej] + scale * step_x[rej]
            ty[rej] = ay[rej] + scale * step_y[rej]

            # Accepted trials: record them, test convergence, take the next step.
            sel = accept
            acc = idx[sel]
            x, y, m, gx, gy, h, gnorm = x[sel], y[sel], m[sel], gx[sel], gy[sel], h[sel], gnorm[sel]
            ax[acc], ay[acc], merit_acc[acc], gnorm_acc[acc] = x, y, merit[sel], gnorm
            lam1, lam2, c, s = _symmetric_eigen(h)
            # Step in the Hessian's eigenbasis (v1 = (c, s), v2 = (-s, c)).
            g1 = c * gx + s * gy
            g2 = -s * gx + c * gy
            newton = m == 0.0
            sign = np.sign(m)
            inv1 = np.where(newton, np.where(np.abs(lam1) > eig_floor, 1.0 / lam1, 0.0),
                            sign / np.maximum(np.abs(lam1), curvature_floor))
            inv2 = np.where(newton, np.where(np.abs(lam2) > eig_floor, 1.0 / lam2, 0.0),
                            sign / np.maximum(np.abs(lam2), curvature_floor))
            # Steepest descent/ascent modes: along -/+ grad f, with the 1-D Newton length.
            steep = np.abs(m) == 2.0
            along = sign * (lam1 * g1 * g1 + lam2 * g2 * g2)  # sign * g^T H g
            g2sum = g1 * g1 + g2 * g2
            t = np.where(along > curvature_floor * g2sum, g2sum / np.where(along > 0, along, 1.0), np.inf)
            inv1 = np.where(steep, sign * t, inv1)
            inv2 = np.where(steep, sign * t, inv2)
            d1, d2 = -inv1 * g1, -inv2 * g2
            d1 = np.where(np.isfinite(d1), d1, -sign * np.sign(g1) * max_step)
            d2 = np.where(np.isfinite(d2), d2, -sign * np.sign(g2) * max_step)
            dx, dy = c * d1 - s * d2, s * d1 + c * d2
            length = np.hypot(dx, dy)
            done = (gnorm <= grad_tol) & ((length <= x_tol) | (gnorm == 0))
            stuck = ~done & (length == 0)  # the gradient lies outside the Hessian's range
            status[acc[done]] = CONVERGED
            status[acc[stuck]] = DEAD
            go = ~done & ~stuck
            acc, x, y, dx, dy, length = acc[go], x[go], y[go], dx[go], dy[go], length[go]
            step_x[acc], step_y[acc] = dx, dy
            radius[acc] = np.minimum(2.0 * radius[acc], max_step)
            scale = np.minimum(1.0, radius[acc] / length)
            nx_, ny_ = x + scale * dx, y + scale * dy
            outside = ((nx_ < x0 - margin_x) | (nx_ > x1 + margin_x)
                       | (ny_ < y0 - margin_y) | (ny_ > y1 + margin_y))
            status[acc[outside]] = DEAD
            tx[acc], ty[acc] = nx_, ny_

    # Slowly converging (degenerate) runs that ran out of iterations count if already flat.
    found = (status == CONVERGED) | ((status == ACTIVE) & (gnorm_acc <= grad_tol))
    return ax[found], ay[found]


def _newton_steps(expression, values, x, y, eig_floor):
    """Pseudo-inverse Newton steps -H^+ grad f at each point, and |grad f| there."""
    gx, gy = _gradient(expression, x, y, values)
    h = _hessian(expression, x, y, values)
    with np.errstate(all="ignore"):
        lam1, lam2, c, s = _symmetric_eigen(h)
        g1 = c * gx + s * gy
        g2 = -s * gx + c * gy
        d1 = -np.where(np.abs(lam1) > eig_floor, g1 / lam1, 0.0)
        d2 = -np.where(np.abs(lam2) > eig_floor, g2 / lam2, 0.0)
        return c * d1 - s * d2, s * d1 + c * d2, np.hypot(gx, gy)


def _polish(expression, values, x, y, *, eig_floor, max_move, iterations=6):
    """Newton steps no longer than ``max_move``, each kept only where it lowers |grad f|.

    Returns the new positions and the length of the last proposed Newton step (NaN where f
    is not differentiable).
    """
    x, y = x.copy(), y.copy()
    with np.errstate(all="ignore"):
        for _ in range(iterations):
            dx, dy, gnorm = _newton_steps(expression, values, x, y, eig_floor)
            length = np.hypot(dx, dy)
            try_ = np.isfinite(length) & (length > 0) & (length <= max_move)
            if not try_.any():
                break
            tx, ty = x[try_] + dx[try_], y[try_] + dy[try_]
            gx, gy = _gradient(expression, tx, ty, values)
            better = np.hypot(gx, gy) < gnorm[try_]
            idx = np.flatnonzero(try_)[better]
            x[idx], y[idx] = tx[better], ty[better]
        dx, dy, _ = _newton_steps(expression, values, x, y, eig_floor)
        return x, y, np.hypot(dx, dy)


def critical_points(expression: Expression | str, x_range: Sequence[float], y_range: Sequence[float],
                    params: Mapping[str, float] | None = None, seeds: int | tuple[int, int] = 40,
                    max_points: int = 512, max_iter: int = 50) -> list[CriticalPoint]:
    """Stationary points of f inside the window, found numerically and classified.

    Newton-type iterations on grad f = 0 start from a ``seeds`` x ``seeds`` grid, all seeds
    at once (see :func:`_stationary_search`); steps are capped at a couple of seed spacings
    so each seed finds a nearby point. After a few polishing Newton steps, a point is kept
    when it lies in the window, |grad f| is tiny relative to the function's scale (spread of
    f over the window divided by its diagonal: 1e-7 of it), the next Newton step is
    negligible (which rejects flat slopes), and f on a small ring around it matches its
    quadratic model (which rejects singular points such as the origin of xy/(x^2+y^2),
    where f is not even defined). Duplicates are merged; a
    curve of degenerate stationary points (the valley of the regression loss, the diagonals
    of xy/(x^2+y^2)) is thinned to a chain of markers about 1/16 of the window apart.
    Coordinates within 1e-9 of the window's size from zero are reported as 0.

    A surface that is constant (or undefined) on every seed gives no points.

    Kinds follow :func:`classify_eigenvalues` with an eigenvalue tolerance of 1e-6 times the
    larger of the point's largest |eigenvalue| and the window's curvature scale. Returns at
    most ``max_points`` points: minima (lowest first), then maxima (highest first), saddles
    and degenerate points.
    """
    expression = _as_expression(expression)
    (x0, x1), (y0, y1) = _check_range(x_range, "x_range"), _check_range(y_range, "y_range")
    nsx, nsy = (int(seeds), int(seeds)) if np.ndim(seeds) == 0 else (int(s) for s in seeds)  # type: ignore
    values = _param_values(expression, params)
    wx, wy = x1 - x0, y1 - y0
    extent = math.hypot(wx, wy)

    sx = x0 + (np.arange(nsx) + 0.5) * (wx / nsx)
    sy = y0 + (np.arange(nsy) + 0.5) * (wy / nsy)
    seed_x, seed_y = (a.ravel() for a in np.meshgrid(sx, sy))
    f_seeds = _evaluate(expression, seed_x, seed_y, values)
    finite_seeds = f_seeds[np.isfinite(f_seeds)]
    if finite_seeds.size == 0 or finite_seeds.min() == finite_seeds.max():
        return []  # undefined everywhere, or constant: no point stands out
    f_scale = _robust_scale(f_seeds)
    grad_tol = 1e-7 * f_scale / extent
    h_scale = f_scale / extent ** 2

    cx, cy = _stationary_search(
        expression, values, seed_x, seed_y, (x0, x1), (y0, y1), grad_tol=grad_tol, h_scale=h_scale,
        max_step=2.0 * math.hypot(wx / nsx, wy / nsy), max_iter=int(max_iter))
    eps_in = 1e-9 * extent
    inside = (cx >= x0 - eps_in) & (cx <= x1 + eps_in) & (cy >= y0 - eps_in) & (cy <= y1 + eps_in)
    cx, cy = cx[inside], cy[inside]
    if cx.size == 0:
        return []
    # Collapse exact repeats before the O(n k) merge.
    key = np.round(np.stack([cx, cy], axis=1) / (1e-7 * extent))
    _, first = np.unique(key, axis=0, return_index=True)
    cx, cy = cx[first], cy[first]

    # A few short Newton steps sharpen points that a descent run left slightly off, and the
    # size of the last step shows whether the point is stationary or merely on a flat slope.
    cx, cy, newton_step = _polish(expression, values, cx, cy, eig_floor=1e-10 * h_scale,
                                  max_move=1e-3 * extent)
    fz = _evaluate(expression, cx, cy, values)
    gx, gy = _gradient(expression, cx, cy, values)
    h = _hessian(expression, cx, cy, values)
    with np.errstate(all="ignore"):
        gnorm = np.hypot(gx, gy)
    ok = (np.isfinite(fz) & np.isfinite(gnorm) & np.isfinite(h).all(axis=(-2, -1))
          & (gnorm <= grad_tol) & (newton_step <= 1e-6 * extent))

    # Quadratic-model check on a small ring: rejects points next to singularities.
    delta = 1e-3 * extent
    angles = np.linspace(0.0, 2.0 * np.pi, 8, endpoint=False)
    ux, uy = np.cos(angles), np.sin(angles)
    rx = cx[:, None] + delta * ux[None, :]
    ry = cy[:, None] + delta * uy[None, :]
    ring = _evaluate(expression, rx, ry, values)
    with np.errstate(all="ignore"):
        quad = (h[:, 0, 0, None] * ux * ux + (h[:, 0, 1, None] + h[:, 1, 0, None]) * ux * uy
                + h[:, 1, 1, None] * uy * uy)
        model = fz[:, None] + delta * (gx[:, None] * ux + gy[:, None] * uy) + 0.5 * delta ** 2 * quad
        mismatch = np.max(np.abs(ring - model), axis=1)
    ok &= np.isfinite(mismatch) & (mismatch <= 1e-2 * f_scale)
    if not ok.any():
        return []
    cx, cy, fz, gnorm, h = cx[ok], cy[ok], fz[ok], gnorm[ok], h[ok]

    lam1, lam2, _, _ = _symmetric_eigen(h)
    eig_tol = 1e-6 * np.maximum(h_scale, np.maximum(np.abs(lam1), np.abs(lam2)))
    kinds = np.array([classify_eigenvalues(a, b, t) for a, b, t in zip(lam1, lam2, eig_tol)])

    keep = _dedupe(cx, cy, np.argsort(gnorm, kind="stable"), 1e-5 * extent)
    # A curve of degenerate points (e.g. a valley of minima) becomes a chain of markers.
    degenerate = keep[kinds[keep] == "degenerate"]
    isolated = keep[kinds[keep] != "degenerate"]
    if degenerate.size:
        chain = _dedupe(cx, cy, degenerate[np.argsort(gnorm[degenerate], kind="stable")], extent / 16.0)
        keep = np.concatenate([isolated, chain])

    def rank(i: int):
        kind = kinds[i]
        value = fz[i] if kind != "maximum" else -fz[i]
        return (_KIND_ORDER[kind], value, cx[i], cy[i])

    ordered = sorted((int(i) for i in keep), key=rank)[: max(int(max_points), 0)]
    snap = 1e-9 * extent
    cx = np.where(np.abs(cx) < snap, 0.0, cx)
    cy = np.where(np.abs(cy) < snap, 0.0, cy)
    return [CriticalPoint(float(cx[i]), float(cy[i]), float(fz[i]), str(kinds[i]),
                          (float(lam1[i]), float(lam2[i]))) for i in ordered]


# -- snapshot request and result for the GUI's job runner ----------------------------------

@dataclass(frozen=True)
class SurfaceRequest:
    """Everything a surface computation needs, frozen on the GUI thread (hashable).

    ``params`` holds (name, value) pairs. Without ``infer_parameters`` the names listed
    there are the expression's parameters; with it, every free name of the text is one
    (taking its value from ``params`` when listed there, else 1.0).
    ``arrows`` is the side of the gradient-field array (0 for none). ``seeds`` and
    ``max_points`` tune :func:`compute_critical_points`.
    """

    text: str
    params: tuple[tuple[str, float], ...] = ()
    x_range: Range = (-3.0, 3.0)
    y_range: Range = (-3.0, 3.0)
    resolution: int | tuple[int, int] = 128
    n_levels: int = 15
    level_spacing: str = "linear"
    arrows: int = 0
    infer_parameters: bool = False
    seeds: int = 40
    max_points: int = 512

    def __post_init__(self) -> None:
        params = self.params.items() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple((str(k), float(v)) for k, v in params))
        object.__setattr__(self, "x_range", _check_range(self.x_range, "x_range"))
        object.__setattr__(self, "y_range", _check_range(self.y_range, "y_range"))
        nx, ny = _check_resolution(self.resolution)
        object.__setattr__(self, "resolution", nx if nx == ny and np.ndim(self.resolution) == 0 else (nx, ny))
        if self.level_spacing not in LEVEL_SPACINGS:
            raise ValueError(f"level_spacing must be one of {LEVEL_SPACINGS}, got {self.level_spacing!r}")
        object.__setattr__(self, "n_levels", int(self.n_levels))
        object.__setattr__(self, "arrows", max(int(self.arrows), 0))

    @property
    def param_dict(self) -> dict[str, float]:
        return dict(self.params)

    def expression(self) -> Expression:
        """The parsed expression (cached across requests that differ only in values).

        With ``infer_parameters`` the text alone decides the parameters, so values left over
        from an earlier function in ``params`` add no stray parameters.
        """
        if self.infer_parameters:
            return _parse_cached(self.text, (), True)
        return _parse_cached(self.text, tuple(name for name, _ in self.params), False)


@dataclass(frozen=True, eq=False)
class SurfaceResult:
    """What :func:`compute_surface` hands back: grid, colour levels, level curves, arrows."""

    request: SurfaceRequest
    expression: Expression
    grid: Grid
    levels: Range  # colour levels (lo, hi) for the heatmap
    contour_levels: np.ndarray
    curves: list[tuple[float, list[np.ndarray]]]
    field: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None
    seconds: float


def compute_surface(request: SurfaceRequest) -> SurfaceResult:
    """Parse, evaluate the float32 grid, colour levels, level curves and gradient field.

    Raises the parser's ``ExpressionError`` for bad text. Critical points are a separate,
    slower job (:func:`compute_critical_points`).
    """
    start = time.perf_counter()
    expression = request.expression()
    expression.formulas  # derive now, on the caller's (worker) thread, not when first shown
    params = request.param_dict
    grid = evaluate_grid(expression, request.x_range, request.y_range, request.resolution, params)
    levels = grid.levels()
    contour_levels = default_levels(grid, request.n_levels, request.level_spacing)
    curves = level_curves(grid, contour_levels)
    arrows = (gradient_field(expression, request.x_range, request.y_range, request.arrows, params)
              if request.arrows > 0 else None)
    return SurfaceResult(request, expression, grid, levels, contour_levels, curves, arrows,
                         time.perf_counter() - start)


def compute_critical_points(request: SurfaceRequest) -> list[CriticalPoint]:
    """The critical points of the request's surface inside its window (a job of its own)."""
    return critical_points(request.expression(), request.x_range, request.y_range, request.param_dict,
                           seeds=request.seeds, max_points=request.max_points)


# -- export --------------------------------------------------------------------------------

def write_grid_csv(path_or_file: str | Any | IO[str], grid: Grid) -> None:
    """Write ``grid`` as CSV in long format: a ``#`` comment line, a header x,y,z, one row per node.

    Rows run along x within each y (the order of ``grid.z``); holes are written as ``nan``.
    """
    text = " ".join(grid.text.split()) or "?"
    (x0, x1), (y0, y1) = grid.x_range, grid.y_range
    ny, nx = grid.z.shape
    params = "".join(f"; {name} = {value:g}" for name, value in grid.params)
    comment = (f"# f(x, y) = {text}; x in [{x0:g}, {x1:g}] ({nx} points); "
               f"y in [{y0:g}, {y1:g}] ({ny} points){params}\n")
    z_format = "%.9g" if grid.z.dtype == np.float32 else "%.17g"
    z = grid.z.astype(np.float64).ravel() + 0.0  # + 0.0 turns -0 into 0
    table = np.column_stack([np.tile(grid.x, ny), np.repeat(grid.y, nx), z])

    def write(handle: IO[str]) -> None:
        handle.write(comment)
        handle.write("x,y,z\n")
        np.savetxt(handle, table, fmt=["%.15g", "%.15g", z_format], delimiter=",")

    if hasattr(path_or_file, "write"):
        write(path_or_file)  # type: ignore[arg-type]
    else:
        with open(path_or_file, "w", encoding="utf-8", newline="\n") as handle:
            write(handle)
