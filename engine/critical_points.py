"""Critical points of f(x, y) and the local picture at any point (seed 002).

Stationary points (grad f = 0) are found numerically from a grid of seeds and classified by
the eigenvalues of the Hessian: minimum, maximum, saddle or degenerate. Everything here is
float64, because these are the numbers a student reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from engine._common import (
    KINDS,
    _as_expression,
    _check_range,
    _evaluate,
    _gradient,
    _hessian,
    _param_values,
    _robust_scale,
    _symmetric_eigen,
    classify_eigenvalues,
)
from engine.expressions import Expression

__all__ = ["CriticalPoint", "critical_points", "PointInfo", "probe"]

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


