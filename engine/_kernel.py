"""The optimizers' step loop, compiled once with Numba.

:func:`advance` runs K steps of the shared update of :mod:`engine.optimizers` for every row
of a race, evaluating the gradient by interpreting a register program of
:mod:`engine._trace`. The expression is data for one compiled function, so a typed function
costs no compilation; the compiled loop is cached on disk after its first use.

Rows are taken a block at a time (their registers stay in the cache) and each instruction
runs over the block, so the interpreter's dispatch is paid once per block and step. The
arithmetic is the NumPy loop's, operation for operation: with the same gradient values the
iterates agree bit for bit. ``nogil`` lets the GUI thread run while a worker is in here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine._trace import (
    ABS,
    ADD,
    COS,
    DIV,
    EXP,
    HEAVISIDE,
    LOG,
    LOGADDEXP,
    MAX,
    MIN,
    MUL,
    NEG,
    POW,
    SIGN,
    SIN,
    SQRT,
    SUB,
    TAN,
    TANH,
    ZERO,
)

BLOCK = 256  # rows per block
_LOG2 = math.log(2.0)

_JIT = {"cache": True, "nogil": True, "error_model": "numpy", "boundscheck": False}


@njit(**_JIT)
def _logaddexp(a, b):
    """log(exp(a) + exp(b)) as NumPy computes it (no overflow)."""
    if a == b:
        return a + _LOG2
    d = a - b
    if d > 0:
        return a + math.log1p(math.exp(-d))
    if d <= 0:
        return b + math.log1p(math.exp(d))
    return d  # NaN


@njit(**_JIT)
def run_program(code, regs, n):
    """Execute ``code`` on the first n columns of ``regs`` (registers x block)."""
    for i in range(code.shape[0]):
        op, d, a, b = code[i, 0], code[i, 1], code[i, 2], code[i, 3]
        out, u = regs[d], regs[a]
        if op == ADD:
            v = regs[b]
            for j in range(n):
                out[j] = u[j] + v[j]
        elif op == SUB:
            v = regs[b]
            for j in range(n):
                out[j] = u[j] - v[j]
        elif op == MUL:
            v = regs[b]
            for j in range(n):
                out[j] = u[j] * v[j]
        elif op == DIV:
            v = regs[b]
            for j in range(n):
                out[j] = u[j] / v[j]
        elif op == POW:
            v = regs[b]
            for j in range(n):
                out[j] = u[j] ** v[j]
        elif op == NEG:
            for j in range(n):
                out[j] = -u[j]
        elif op == SIN:
            for j in range(n):
                out[j] = math.sin(u[j])
        elif op == COS:
            for j in range(n):
                out[j] = math.cos(u[j])
        elif op == TAN:
            for j in range(n):
                out[j] = math.tan(u[j])
        elif op == EXP:
            for j in range(n):
                out[j] = math.exp(u[j])
        elif op == LOG:
            for j in range(n):
                t = u[j]
                out[j] = math.log(t) if t > 0 else (-math.inf if t == 0 else math.nan)
        elif op == SQRT:
            for j in range(n):
                t = u[j]
                out[j] = math.sqrt(t) if t >= 0 else math.nan
        elif op == ABS:
            for j in range(n):
                out[j] = abs(u[j])
        elif op == TANH:
            for j in range(n):
                out[j] = math.tanh(u[j])
        elif op == MAX:  # NumPy's maximum: a NaN on either side wins
            v = regs[b]
            for j in range(n):
                s, t = u[j], v[j]
                out[j] = s if (s >= t or math.isnan(s)) else t
        elif op == MIN:
            v = regs[b]
            for j in range(n):
                s, t = u[j], v[j]
                out[j] = s if (s <= t or math.isnan(s)) else t
        elif op == LOGADDEXP:
            v = regs[b]
            for j in range(n):
                out[j] = _logaddexp(u[j], v[j])
        elif op == HEAVISIDE:  # 0 below zero, b at zero, 1 above; NaN stays NaN
            v = regs[b]
            for j in range(n):
                t = u[j]
                out[j] = 0.0 if t < 0 else (1.0 if t > 0 else (v[j] if t == 0 else t))
        elif op == SIGN:
            for j in range(n):
                t = u[j]
                out[j] = 1.0 if t > 0 else (-1.0 if t < 0 else (0.0 if t == 0 else t))
        elif op == ZERO:
            for j in range(n):
                out[j] = 0.0


@njit(**_JIT)
def advance(code, registers, fx, fy, theta, m, s, kind, b, kappa, a, rho, A, B, E, D,
            noise, l2, clip, bound, tol2, pos, grads, first):
    """K = pos.shape[0] steps of every row; the state (theta, m, s) is updated in place.

    Flat layout: entries [0, R) are the rows' x, [R, 2R) their y. ``kind`` gives each row's
    column in the per-method coefficients b, kappa, a, rho (U,) and the per-step tables
    A, B, E, D (K, U). ``noise`` is (K, 2) or (0, 2); ``l2`` is 2 lambda; ``clip`` <= 0 is
    off. ``pos`` and ``grads`` receive each step's point and loss gradient (K, 2R), and
    ``first`` (R,) the first step where a point is beyond ``bound``, its gradient is not
    finite or its squared norm is below ``tol2`` (< 0: no such test); K where none is.
    """
    K = pos.shape[0]
    R = kind.shape[0]
    width = min(BLOCK, R)
    regs = np.empty((registers.shape[0], width))
    for r in range(registers.shape[0]):
        for j in range(width):
            regs[r, j] = registers[r]
    noisy = noise.shape[0] > 0
    for r in range(R):
        first[r] = K
    for start in range(0, R, BLOCK):
        n = min(BLOCK, R - start)
        for k in range(K):
            for j in range(n):
                regs[0, j] = theta[start + j]
                regs[1, j] = theta[R + start + j]
            run_program(code, regs, n)
            for j in range(n):
                ix = start + j
                iy = R + ix
                x, y = theta[ix], theta[iy]
                gx, gy = regs[fx, j], regs[fy, j]
                if l2 != 0.0:
                    gx += l2 * x
                    gy += l2 * y
                pos[k, ix], pos[k, iy] = x, y
                grads[k, ix], grads[k, iy] = gx, gy
                if first[ix] == K and not (
                        abs(x) <= bound and abs(y) <= bound
                        and math.isfinite(gx) and math.isfinite(gy)
                        and gx * gx + gy * gy >= tol2):
                    first[ix] = k
                if noisy:
                    gx += noise[k, 0]
                    gy += noise[k, 1]
                if clip > 0.0:  # rescale to length clip when longer (seed 001)
                    norm = math.sqrt(gx * gx + gy * gy)
                    if norm == math.inf:
                        norm = math.hypot(gx, gy)
                    scale = clip / norm
                    if scale >= 1.0:  # NaN stays NaN
                        scale = 1.0
                    gx *= scale
                    gy *= scale
                u = kind[ix]
                # m <- a m + b g; s <- rho s + kappa g^2
                mx = m[ix] * a[u] + gx * b[u]
                my = m[iy] * a[u] + gy * b[u]
                sx, sy = s[ix], s[iy]
                if kappa[u] != 0.0:  # else s stays 0 (g^2 may overflow, 0 * inf is NaN)
                    sx = sx * rho[u] + (gx * gx) * kappa[u]
                    sy = sy * rho[u] + (gy * gy) * kappa[u]
                m[ix], m[iy], s[ix], s[iy] = mx, my, sx, sy
                # theta <- theta D - (A g + B m) / (sqrt(s) + E), Kingma & Ba's form
                stepx = (gx * A[k, u] + mx * B[k, u]) / (math.sqrt(sx) + E[k, u])
                stepy = (gy * A[k, u] + my * B[k, u]) / (math.sqrt(sy) + E[k, u])
                theta[ix] = x * D[k, u] - stepx
                theta[iy] = y * D[k, u] - stepy
