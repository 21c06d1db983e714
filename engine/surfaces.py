"""Surfaces z = f(x, y): grids, colour levels, level curves, gradient fields, and the
snapshot request/result pair the surface panel's job runner carries.

Presets live in :mod:`engine.presets` and critical points in :mod:`engine.critical_points`;
both are re-exported here, so ``engine.surfaces`` is the one import a panel needs.

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

import math
import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Mapping, Sequence

import contourpy
import numpy as np

from engine._common import (
    KINDS,
    LEVEL_SPACINGS,
    Range,
    _as_expression,
    _check_range,
    _check_resolution,
    _evaluate,
    _gradient,
    _param_values,
    _parse_cached,
    classify_eigenvalues,
    parse_cached,
)
from engine.critical_points import CriticalPoint, PointInfo, critical_points, probe
from engine.expressions import Expression
from engine.presets import PRESETS, Preset, preset, preset_keys

__all__ = [
    "Preset", "PRESETS", "preset", "preset_keys", "parse_cached",
    "Grid", "evaluate_grid", "default_levels", "suggest_level_spacing", "level_curves",
    "gradient_field", "CriticalPoint", "critical_points", "classify_eigenvalues",
    "PointInfo", "probe",
    "SurfaceRequest", "SurfaceResult", "compute_surface", "compute_critical_points",
    "write_grid_csv", "KINDS",
]

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

