"""engine.optimizers: seven optimizers racing on f(x, y), stopping rules, basins of attraction.

The expected numbers of the first steps are worked out by hand below, in plain Python floats,
from the update rules of the papers (seed 002's x' = x - eps grad f, seed 003 eqs. 6-8) and
never from the engine's own shared-update formula.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from engine.optimizers import (
    DEFAULTS,
    METHODS,
    BasinMap,
    BasinRequest,
    RaceRequest,
    basins,
    compute_basins,
    compute_race,
    descend,
    learning_rates,
    race,
)

BOWL = "x**2 + 3*y**2"  # grad = (2x, 6y)
HIMMELBLAU = "(x**2 + y - 11)**2 + (x + y**2 - 7)**2"
HIMMELBLAU_MINIMA = [(3.0, 2.0), (-2.805118086952745, 3.131312518250573),
                     (-3.779310253377747, -3.283185991286170), (3.584428340330492, -1.848126526964404)]


def first_steps(method, steps=3, lr=0.1, **constants):
    return descend(BOWL, method, (1.0, 1.0), steps, lr, grad_tol=0.0, **constants).points


def approx_points(points):
    return pytest.approx(np.array(points, dtype=float), rel=1e-12, abs=1e-15)


# -- the public names -------------------------------------------------------------------------

def test_methods_and_defaults_are_the_papers():
    assert METHODS == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
    assert set(DEFAULTS) == set(METHODS)
    assert dict(DEFAULTS["sgd"]) == {}
    assert dict(DEFAULTS["momentum"]) == {"beta": 0.9}
    assert dict(DEFAULTS["nesterov"]) == {"beta": 0.9}
    assert dict(DEFAULTS["adagrad"]) == {"eps": 1e-8}
    assert dict(DEFAULTS["rmsprop"]) == {"rho": 0.9, "eps": 1e-8}
    assert dict(DEFAULTS["adam"]) == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert dict(DEFAULTS["adamw"]) == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    with pytest.raises(TypeError):
        DEFAULTS["adam"]["beta1"] = 0.5  # read-only


def test_unknown_constants_and_methods_are_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="beta1, beta2, eps"):
        descend(BOWL, "adam", (1, 1), 3, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="no constants"):
        descend(BOWL, "sgd", (1, 1), 3, 0.1, beta=0.9)
    with pytest.raises(ValueError, match="unknown method"):
        descend(BOWL, "lbfgs", (1, 1), 3, 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        descend(BOWL, "momentum", (1, 1), 3, 0.1, beta=1.0)
    with pytest.raises(ValueError, match="learning rate"):
        descend(BOWL, "sgd", (1, 1), 3, -0.1)
    with pytest.raises(ValueError, match="schedule"):
        descend(BOWL, "sgd", (1, 1), 3, 0.1, schedule="warmup")
    with pytest.raises(ValueError, match="finite"):
        descend(BOWL, "sgd", (math.nan, 1), 3, 0.1)
    # Constants are passed through to the method.
    slow = descend(BOWL, "momentum", (1, 1), 2, 0.1, beta=0.0, grad_tol=0)
    assert slow.points[2] == approx_points([0.64, 0.16])  # beta = 0 is plain SGD
    assert dict(slow.constants) == {"beta": 0.0}


# -- the first three steps of each optimizer, by hand -------------------------------------------
# f = x^2 + 3 y^2 from (1, 1), lr = 0.1; grad f = (2x, 6y).

def test_sgd_by_hand():
    # x' = x - 0.1 * grad f (seed 002)
    # step 1: grad (2, 6)       -> (1 - 0.2, 1 - 0.6)        = (0.8, 0.4)
    # step 2: grad (1.6, 2.4)   -> (0.8 - 0.16, 0.4 - 0.24)  = (0.64, 0.16)
    # step 3: grad (1.28, 0.96) -> (0.64 - 0.128, 0.16 - 0.096) = (0.512, 0.064)
    assert first_steps("sgd") == approx_points([[1, 1], [0.8, 0.4], [0.64, 0.16], [0.512, 0.064]])


def test_momentum_by_hand():
    # v <- 0.9 v + g, theta <- theta - 0.1 v
    # step 1: g (2, 6),        v (2, 6)                           -> (0.8, 0.4)
    # step 2: g (1.6, 2.4),    v (1.8 + 1.6, 5.4 + 2.4) = (3.4, 7.8)   -> (0.46, -0.38)
    # step 3: g (0.92, -2.28), v (3.06 + 0.92, 7.02 - 2.28) = (3.98, 4.74) -> (0.062, -0.854)
    assert first_steps("momentum") == approx_points(
        [[1, 1], [0.8, 0.4], [0.46, -0.38], [0.062, -0.854]])


def test_nesterov_by_hand():
    # v <- 0.9 v + g, theta <- theta - 0.1 (g + 0.9 v)
    # step 1: g (2, 6), v (2, 6); move 0.1 (2 + 1.8, 6 + 5.4) = (0.38, 1.14)   -> (0.62, -0.14)
    # step 2: g (1.24, -0.84), v (3.04, 4.56);
    #         move 0.1 (1.24 + 2.736, -0.84 + 4.104) = (0.3976, 0.3264)    -> (0.2224, -0.4664)
    # step 3: g (0.4448, -2.7984), v (3.1808, 1.3056);
    #         move 0.1 (0.4448 + 2.86272, -2.7984 + 1.17504) = (0.330752, -0.162336)
    #                                                                  -> (-0.108352, -0.304064)
    assert first_steps("nesterov") == approx_points(
        [[1, 1], [0.62, -0.14], [0.2224, -0.4664], [-0.108352, -0.304064]])


def test_adagrad_by_hand():
    # s <- s + g^2, theta <- theta - 0.1 g / (sqrt(s) + 1e-8)
    eps = 1e-8
    x1 = 1 - 0.1 * 2 / (math.sqrt(4) + eps)                # s_x = 4:  x1 = 0.9 + 5e-10
    y1 = 1 - 0.1 * 6 / (math.sqrt(36) + eps)               # s_y = 36: y1 = 0.9 + 1.7e-10
    sx2, sy2 = 4 + (2 * x1) ** 2, 36 + (6 * y1) ** 2       # 4 + 3.24, 36 + 29.16
    x2 = x1 - 0.1 * (2 * x1) / (math.sqrt(sx2) + eps)      # 0.9 - 0.18 / 2.6907 = 0.8331
    y2 = y1 - 0.1 * (6 * y1) / (math.sqrt(sy2) + eps)      # 0.9 - 0.54 / 8.0720 = 0.8331
    sx3, sy3 = sx2 + (2 * x2) ** 2, sy2 + (6 * y2) ** 2
    x3 = x2 - 0.1 * (2 * x2) / (math.sqrt(sx3) + eps)
    y3 = y2 - 0.1 * (6 * y2) / (math.sqrt(sy3) + eps)
    assert (x1, x2, x3) == pytest.approx((0.9, 0.8331035, 0.7804562), abs=1e-6)
    assert first_steps("adagrad") == approx_points([[1, 1], [x1, y1], [x2, y2], [x3, y3]])


def test_rmsprop_by_hand():
    # s <- 0.9 s + 0.1 g^2, theta <- theta - 0.1 g / (sqrt(s) + 1e-8)  (Hinton, lecture 6e)
    eps = 1e-8
    sx1, sy1 = 0.1 * 4, 0.1 * 36                           # 0.4, 3.6
    x1 = 1 - 0.1 * 2 / (math.sqrt(sx1) + eps)              # 1 - sqrt(0.1) = 0.68377
    y1 = 1 - 0.1 * 6 / (math.sqrt(sy1) + eps)              # the same: 0.68377
    sx2, sy2 = 0.9 * sx1 + 0.1 * (2 * x1) ** 2, 0.9 * sy1 + 0.1 * (6 * y1) ** 2
    x2 = x1 - 0.1 * (2 * x1) / (math.sqrt(sx2) + eps)
    y2 = y1 - 0.1 * (6 * y1) / (math.sqrt(sy2) + eps)
    sx3, sy3 = 0.9 * sx2 + 0.1 * (2 * x2) ** 2, 0.9 * sy2 + 0.1 * (6 * y2) ** 2
    x3 = x2 - 0.1 * (2 * x2) / (math.sqrt(sx3) + eps)
    y3 = y2 - 0.1 * (6 * y2) / (math.sqrt(sy3) + eps)
    assert x1 == pytest.approx(1 - math.sqrt(0.1), abs=1e-7)
    assert first_steps("rmsprop") == approx_points([[1, 1], [x1, y1], [x2, y2], [x3, y3]])


def _adam_by_hand(weight_decay):
    """Kingma & Ba, Algorithm 1, unrolled; with decoupled decay for AdamW."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    x, y = 1.0, 1.0
    mx = my = vx = vy = 0.0
    points = [(x, y)]
    # step 1: m = 0.1 g, v = 0.001 g^2; m_hat = g, v_hat = g^2: the move is lr*g/(|g| + eps),
    # lr * sign(g) to within 1e-9: (1, 1) -> (0.9, 0.9) (AdamW: 1 - 0.1*0.01*1 first: 0.899)
    gx, gy = 2 * x, 6 * y
    mx, my = b1 * mx + (1 - b1) * gx, b1 * my + (1 - b1) * gy
    vx, vy = b2 * vx + (1 - b2) * gx * gx, b2 * vy + (1 - b2) * gy * gy
    c1, c2 = 1 - b1 ** 1, 1 - b2 ** 1
    x = x - lr * weight_decay * x - lr * (mx / c1) / (math.sqrt(vx / c2) + eps)
    y = y - lr * weight_decay * y - lr * (my / c1) / (math.sqrt(vy / c2) + eps)
    points.append((x, y))
    # step 2
    gx, gy = 2 * x, 6 * y
    mx, my = b1 * mx + (1 - b1) * gx, b1 * my + (1 - b1) * gy
    vx, vy = b2 * vx + (1 - b2) * gx * gx, b2 * vy + (1 - b2) * gy * gy
    c1, c2 = 1 - b1 ** 2, 1 - b2 ** 2
    x = x - lr * weight_decay * x - lr * (mx / c1) / (math.sqrt(vx / c2) + eps)
    y = y - lr * weight_decay * y - lr * (my / c1) / (math.sqrt(vy / c2) + eps)
    points.append((x, y))
    # step 3
    gx, gy = 2 * x, 6 * y
    mx, my = b1 * mx + (1 - b1) * gx, b1 * my + (1 - b1) * gy
    vx, vy = b2 * vx + (1 - b2) * gx * gx, b2 * vy + (1 - b2) * gy * gy
    c1, c2 = 1 - b1 ** 3, 1 - b2 ** 3
    x = x - lr * weight_decay * x - lr * (mx / c1) / (math.sqrt(vx / c2) + eps)
    y = y - lr * weight_decay * y - lr * (my / c1) / (math.sqrt(vy / c2) + eps)
    points.append((x, y))
    return points


def test_adam_by_hand():
    points = _adam_by_hand(0.0)
    assert points[1] == pytest.approx((0.9, 0.9), abs=1e-9)  # lr * sign(g)
    assert first_steps("adam") == approx_points(points)


def test_adamw_by_hand():
    points = _adam_by_hand(0.01)
    assert points[1] == pytest.approx((0.899, 0.899), abs=1e-9)
    assert first_steps("adamw") == approx_points(points)


# -- convergence, divergence and the stopping rule ---------------------------------------------

@pytest.mark.parametrize("eps", [0.1, 0.5, 0.9, 0.99])
def test_gradient_descent_on_the_paraboloid_converges_below_one(eps):
    t = descend("x**2 + y**2", "sgd", (1.0, -2.0), 5000, eps)
    assert t.status == "converged" and t.diverged_at is None
    assert t.grad_norms[-1] < 1e-8 <= t.grad_norms[-2]
    assert np.abs(t.points[-1]).max() < 1e-8
    assert t.message == f"converged in {t.steps} step" + ("s" if t.steps != 1 else "")


@pytest.mark.parametrize("eps", [1.01, 1.1, 1.5])
def test_gradient_descent_on_the_paraboloid_diverges_above_one(eps):
    # x_k = (1 - 2 eps)^k x_0: with eps = 1.1, |x| grows by 1.2 per step.
    bound = 1e6
    x, k = 1.0, 0
    while abs(x) <= bound:
        x, k = (1 - 2 * eps) * x, k + 1
    t = descend("x**2 + y**2", "sgd", (1.0, 0.5), 5000, eps, bound=bound)
    assert t.status == "diverged"
    assert t.diverged_at == k
    assert t.message.startswith(f"diverged at step {k}")
    assert t.points.shape == (k, 2)  # the start and the k - 1 steps that stayed in bounds
    assert np.isfinite(t.points).all() and np.abs(t.points).max() <= bound
    assert t.points[-1, 0] == pytest.approx((1 - 2 * eps) ** (k - 1), rel=1e-9)


def test_sgd_converges_when_the_gradient_first_drops_below_the_tolerance():
    # lr = 0.25 halves x: |grad| = 2 sqrt(2) 0.5^k < 1e-8 first at k = 29.
    k = next(k for k in range(100) if 2 * math.sqrt(2) * 0.5 ** k < 1e-8)
    t = descend("x**2 + y**2", "sgd", (1.0, 1.0), 100, 0.25)
    assert (t.status, t.steps, t.message) == ("converged", k, f"converged in {k} steps")
    t = descend("x**2 + y**2", "sgd", (1.0, 1.0), 10, 0.25)
    assert t.status == "max_steps" and t.steps == 10 and "10 steps" in t.message


def test_a_huge_learning_rate_diverges_at_step_one_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in METHODS:
            # The adaptive methods' first move is about lr * sign(g), not lr * g: it lands at
            # 1 - 1e6, just inside the bound, so they need a learning rate of 1e7 to leave it.
            lr = 1e6 if method in ("sgd", "momentum", "nesterov") else 1e7
            t = descend("x**2 + y**2", method, (1.0, 1.0), 50, lr)
            assert t.status == "diverged" and t.diverged_at == 1, (method, t.message)
            assert t.message.startswith("diverged at step 1")
            assert t.points.tolist() == [[1.0, 1.0]]
        t = descend("exp(x**2)", "sgd", (3.0, 0.0), 50, 1.0)  # f overflows within the bound
        assert t.status == "diverged" and np.isfinite(t.points).all()


def test_a_hole_on_the_path_stops_the_run_with_only_finite_points():
    # log(x) from x = 0.5 with lr = 1: x1 = 0.5 - 1/0.5 = -1.5, where log is undefined.
    t = descend("log(x) + y**2", "sgd", (0.5, 1.0), 100, 1.0)
    assert t.status == "undefined"
    assert "domain" in t.message and "step 1" in t.message
    assert t.points.tolist() == [[0.5, 1.0]]
    assert np.isfinite(t.values).all() and np.isfinite(t.points).all()
    # A start outside the domain.
    t = descend("log(x)", "adam", (-1.0, 0.0), 100, 0.1)
    assert t.status == "undefined" and "start" in t.message
    assert t.points.tolist() == [[-1.0, 0.0]] and math.isnan(t.values[0])
    # f defined, gradient not: sqrt(x) at x = 0.
    t = descend("sqrt(x) + y**2", "sgd", (0.0, 1.0), 100, 0.1)
    assert t.status == "undefined" and t.message.startswith("gradient undefined at (0, 1)")
    # A singular point reached exactly: the cone sqrt(x^2 + y^2) from (1, 1), lr = 1/sqrt(2)
    # lands on the apex after two steps.
    t = descend("sqrt(x**2 + y**2)", "sgd", (1.0, 1.0), 100, math.sqrt(0.5))
    assert t.status == "undefined" and "(0, 0)" in t.message
    assert np.isfinite(t.points).all()


# -- seed 001: saddles and steep slopes -----------------------------------------------------------

def test_adam_leaves_the_saddle_before_sgd():
    # x^2 - y^2 from (1, 1e-6): "leaves" means |y| > 1. SGD multiplies y by 1.02 per step
    # (about 700 steps); Adam moves y by about lr per step whatever the slope.
    out = race("x**2 - y**2", ["sgd", "adam"], [(1.0, 1e-6)], 3000, 0.01, grad_tol=0.0)

    def leaves(t):
        beyond = np.flatnonzero(np.abs(t.points[:, 1]) > 1)
        return int(beyond[0]) if beyond.size else math.inf

    sgd, adam = (leaves(t) for t in out)
    assert sgd == next(k for k in range(2000) if 1e-6 * 1.02 ** k > 1)
    assert adam < sgd / 4


def test_clipping_bounds_every_step():
    # A steep bowl: |grad| = 200 |theta| = 100 at the start, so the first steps are clipped.
    lr, clip = 0.004, 1.0
    t = descend("100*(x**2 + y**2)", "sgd", (0.3, 0.4), 400, lr, clip=clip)
    moves = np.hypot(*np.diff(t.points, axis=0).T)
    assert (moves <= lr * clip * (1 + 1e-12)).all()
    assert moves[0] == pytest.approx(lr * clip)
    assert t.status == "converged"  # short gradients near the bottom are left alone
    assert t.grad_norms[0] == pytest.approx(100.0)  # the stopping rule sees the true gradient
    free = descend("100*(x**2 + y**2)", "sgd", (0.3, 0.4), 400, lr)
    assert np.hypot(*(free.points[1] - free.points[0])) == pytest.approx(lr * 100.0)


# -- seed 003: L2 regularization and weight decay --------------------------------------------------

def test_l2_adds_two_lambda_theta_to_the_gradient():
    # eq. (8): the loss f + lambda (x^2 + y^2) has gradient grad f + 2 lambda theta.
    lam, lr = 0.1, 0.1
    t = descend("x + y", "sgd", (1.0, 2.0), 3, lr, l2=lam, grad_tol=0.0)
    x, y = 1.0, 2.0
    expected = [(x, y)]
    for _ in range(3):
        x, y = x - lr * (1 + 2 * lam * x), y - lr * (1 + 2 * lam * y)
        expected.append((x, y))
    # first step by hand: 0.1 * ((1, 1) + 0.2 * (1, 2)) = (0.12, 0.14) -> (0.88, 1.86)
    assert expected[1] == pytest.approx((0.88, 1.86))
    assert t.points == approx_points(expected)
    assert t.values == pytest.approx(t.points.sum(axis=1))  # f alone
    assert t.losses == pytest.approx(t.points.sum(axis=1) + lam * (t.points ** 2).sum(axis=1))
    assert t.grad_norms[0] == pytest.approx(math.hypot(1 + 0.2, 1 + 0.4))
    # On a flat surface the regularizer alone pulls theta to the origin: theta *= 1 - 2 lr lambda.
    flat = descend("0*x", "sgd", (1.0, -2.0), 5, lr, l2=lam, grad_tol=0.0)
    assert flat.points[:, 0] == pytest.approx(0.98 ** np.arange(6))
    assert flat.points[:, 1] == pytest.approx(-2 * 0.98 ** np.arange(6))


def test_adamw_decay_is_decoupled_from_the_gradient():
    # On a flat surface Adam does not move; AdamW shrinks theta by (1 - lr wd) per step.
    lr, wd = 0.1, 0.05
    t = descend("1", "adamw", (1.0, -2.0), 4, lr, weight_decay=wd, grad_tol=0.0)
    assert t.points[:, 0] == pytest.approx((1 - lr * wd) ** np.arange(5), rel=1e-14)
    assert descend("1", "adam", (1.0, -2.0), 4, lr, grad_tol=0.0).points == approx_points([[1, -2]] * 5)


# -- the race ----------------------------------------------------------------------------

def test_race_rows_equal_descend_runs():
    starts = [(-4.0, 4.5), (0.5, -0.2), (3.9, -4.1)]
    options = {"clip": 50.0, "l2": 0.01, "schedule": "exponential", "gamma": 0.995, "noise": 0.3,
               "seed": 7, "grad_tol": 1e-7}
    lrs = {"sgd": 0.01, "momentum": 0.002, "nesterov": 0.002, "adagrad": 0.5, "rmsprop": 0.02,
           "adam": 0.05, "adamw": 0.05}
    constants = {"adam": {"beta1": 0.8}, "rmsprop": {"rho": 0.95}}
    out = race(HIMMELBLAU, METHODS, starts, 400, lrs, constants, **options)
    assert len(out) == len(METHODS) * len(starts)
    for i, t in enumerate(out):
        method, start = METHODS[i // len(starts)], starts[i % len(starts)]
        assert t.method == method and t.points[0].tolist() == list(start)
        alone = descend(HIMMELBLAU, method, start, 400, lrs[method], **options,
                        **constants.get(method, {}))
        assert (alone.status, alone.diverged_at, alone.message) == (t.status, t.diverged_at, t.message)
        np.testing.assert_allclose(alone.points, t.points, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(alone.values, t.values, rtol=1e-13, atol=1e-13)


def test_stopped_rows_are_frozen_while_the_others_go_on():
    out = race("x**2 + y**2", ["sgd"], [(1.0, 1.0), (0.001, 0.0)], 500,
               0.25, grad_tol=1e-6)  # both converge, at different steps
    a, b = out
    assert a.status == b.status == "converged" and a.steps != b.steps
    mixed = race("x**2 + y**2", ["sgd", "adam"], [(1.0, 1.0)], 200, {"sgd": 1.5, "adam": 0.1})
    assert mixed[0].status == "diverged" and mixed[1].status in ("converged", "max_steps")
    assert mixed[1].steps > mixed[0].steps and np.isfinite(mixed[0].points).all()


def _reference_race(method, start, steps, lr, l2=0.0, clip=None, noise=None, **c):
    """The textbook loop for one optimizer on Himmelblau, NumPy on 2-element arrays, with
    the hand-written gradient: an independent check of the compiled loop."""
    def grad(p):
        x, y = p
        a, b = x * x + y - 11, x + y * y - 7
        return np.array([4 * x * a + 2 * b, 2 * a + 4 * y * b])

    p, m, v = np.array(start, dtype=float), np.zeros(2), np.zeros(2)
    path = [p.copy()]
    for t in range(1, steps + 1):
        g = grad(p) + 2 * l2 * p
        if noise is not None:
            g = g + noise[t - 1]
        if clip is not None and np.linalg.norm(g) > clip:
            g = g * (clip / np.linalg.norm(g))
        if method == "sgd":
            p = p - lr * g
        elif method == "momentum":
            m = 0.9 * m + g
            p = p - lr * m
        elif method == "nesterov":
            m = 0.9 * m + g
            p = p - lr * (g + 0.9 * m)
        elif method == "adagrad":
            v = v + g * g
            p = p - lr * g / (np.sqrt(v) + 1e-8)
        elif method == "rmsprop":
            v = 0.9 * v + 0.1 * g * g
            p = p - lr * g / (np.sqrt(v) + 1e-8)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            wd = 0.01 if method == "adamw" else 0.0
            p = p - lr * wd * p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t))
                                                                 + 1e-8)
        path.append(p.copy())
    return np.array(path)


@pytest.mark.parametrize("options", [{}, {"l2": 0.05}, {"clip": 5.0}, {"noise": 0.5}])
def test_the_compiled_race_matches_the_textbook_loop_of_every_method(options):
    starts = [(0.5, 0.5), (-1.0, 2.0), (4.0, -4.0)]
    steps, lr = 300, 0.002
    noise = None
    if "noise" in options:  # the race draws one noise vector per step, shared by all rows
        noise = options["noise"] * np.random.default_rng(7).standard_normal((steps, 2))
    trajectories = race(HIMMELBLAU, METHODS, starts, steps, lr, grad_tol=0.0, seed=7,
                        **options)
    for trajectory in trajectories:
        reference = _reference_race(
            trajectory.method, trajectory.points[0], steps, lr, l2=options.get("l2", 0.0),
            clip=options.get("clip"), noise=noise)
        assert trajectory.points.shape == reference.shape
        np.testing.assert_allclose(trajectory.points, reference, rtol=1e-9, atol=1e-12,
                                   err_msg=trajectory.method)


class _HimmelblauField:
    """Himmelblau as a field (not an expression): its hand-written gradient, so that
    :func:`race` steps it with the NumPy twin of the compiled loop."""

    calls = 0

    def evaluate(self, x, y):
        return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

    def gradient(self, x, y):
        self.calls += 1
        a, b = x * x + y - 11, x + y * y - 7
        return 4 * x * a + 2 * b, 2 * a + 4 * y * b


@pytest.mark.parametrize("options", [{}, {"l2": 0.05}, {"clip": 5.0}, {"noise": 0.5}])
def test_a_field_race_matches_the_textbook_loop_and_the_compiled_race(options):
    starts = [(0.5, 0.5), (-1.0, 2.0), (4.0, -4.0)]
    steps, lr = 300, 0.002
    noise = None
    if "noise" in options:
        noise = options["noise"] * np.random.default_rng(7).standard_normal((steps, 2))
    field = _HimmelblauField()
    trajectories = race(field, METHODS, starts, steps, lr, grad_tol=0.0, seed=7, **options)
    compiled = race(HIMMELBLAU, METHODS, starts, steps, lr, grad_tol=0.0, seed=7, **options)
    assert field.calls == steps + 1  # one call per step for all 21 rows, and the last point
    for trajectory, twin in zip(trajectories, compiled):
        reference = _reference_race(
            trajectory.method, trajectory.points[0], steps, lr, l2=options.get("l2", 0.0),
            clip=options.get("clip"), noise=noise)
        np.testing.assert_allclose(trajectory.points, reference, rtol=1e-9, atol=1e-12,
                                   err_msg=trajectory.method)
        np.testing.assert_allclose(trajectory.points, twin.points, rtol=1e-12, atol=1e-13)
        assert trajectory.status == twin.status
        np.testing.assert_allclose(trajectory.values, twin.values, rtol=1e-12, atol=1e-12)
        # The recorded gradients are the loss's at the points, as the optimizer read them.
        x, y = trajectory.points.T
        gx, gy = field.gradient(x, y)
        l2 = options.get("l2", 0.0)
        np.testing.assert_allclose(trajectory.gradients, np.column_stack([gx, gy])
                                   + 2 * l2 * trajectory.points, rtol=1e-12, atol=1e-12)
        assert np.allclose(np.hypot(*trajectory.gradients.T), trajectory.grad_norms)


def test_a_field_race_stops_where_the_field_is_undefined_or_diverges():
    class Hole(_HimmelblauField):
        def evaluate(self, x, y):
            return np.where(x > 3.5, np.nan, super().evaluate(x, y))

    out = race(Hole(), ["sgd"], [(3.2, -1.8)], 200, 0.002)[0]  # towards (3.58, -1.85)
    assert out.status == "undefined" and (out.points[:, 0] <= 3.5).all() and out.steps > 1
    out = race(_HimmelblauField(), ["sgd"], [(4.0, -4.0)], 50, 1.0)[0]
    assert out.status == "diverged" and np.isfinite(out.points).all()
    with pytest.raises(TypeError, match="field"):
        race(object(), ["sgd"], [(0.0, 0.0)], 5, 0.1)


def test_learning_rate_schedules():
    lr = 0.1
    assert learning_rates(lr, 3) == pytest.approx([0.1, 0.1, 0.1])
    assert learning_rates(lr, 8, "step", gamma=0.5, step_size=3) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    assert learning_rates(lr, 4, "exponential", gamma=0.9) == pytest.approx(
        [0.1, 0.09, 0.081, 0.0729])
    cosine = learning_rates(lr, 100, "cosine")
    assert cosine[0] == pytest.approx(0.1) and cosine[50] == pytest.approx(0.05)
    assert 0 < cosine[-1] < 1e-4 and (np.diff(cosine) < 0).all()
    # The schedule drives the steps: on x^2, x_{k+1} = (1 - 2 lr_k) x_k.
    t = descend("x**2", "sgd", (1.0, 0.0), 4, lr, schedule="step", gamma=0.5, step_size=2,
                grad_tol=0.0)
    rates = [0.1, 0.1, 0.05, 0.05]
    assert t.points[:, 0] == pytest.approx(np.cumprod([1.0] + [1 - 2 * r for r in rates]))


def test_noise_is_reproducible_with_its_seed():
    run = lambda seed: descend(BOWL, "sgd", (1.0, 1.0), 100, 0.05, noise=0.5, seed=seed)
    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.allclose(a.points, c.points)
    quiet = descend(BOWL, "sgd", (1.0, 1.0), 100, 0.05)
    assert not np.allclose(a.points[:10], quiet.points[:10])
    # The noise is a perturbation of the gradient: its mean effect on the path is small.
    assert np.abs(a.points[-1]).max() < 1.0


def test_race_request_is_hashable_and_computes_the_race():
    request = RaceRequest(BOWL, (), ("sgd", "adam"), ((1, 1), (0.5, -0.5)), 50, 0.1,
                          (("adam", (("beta1", 0.8),)),), None, 0.0, "constant", 0.0, 0, 1e-8, 1e6)
    assert hash(request) == hash(RaceRequest(**request.__dict__))
    out = compute_race(request)
    expected = race(BOWL, ["sgd", "adam"], [(1, 1), (0.5, -0.5)], 50, 0.1, {"adam": {"beta1": 0.8}})
    assert [t.message for t in out] == [t.message for t in expected]
    for t, e in zip(out, expected):
        np.testing.assert_array_equal(t.points, e.points)
    with pytest.raises(ValueError, match="allowed"):
        RaceRequest(BOWL, methods=("adam",), constants=(("adam", (("beta", 0.8),)),))
    with pytest.raises(ValueError):
        RaceRequest(BOWL, steps=-1)


# -- basins of attraction ------------------------------------------------------------------

def test_basins_of_himmelblau_label_its_four_minima():
    basin = basins(HIMMELBLAU, "sgd", (-5, 5), (-5, 5), 40, 300, 0.01)
    assert isinstance(basin, BasinMap)
    assert basin.labels.shape == basin.steps_taken.shape == (40, 40)
    assert basin.minima.shape == (4, 2) and basin.kinds == ("minimum",) * 4
    for x, y in basin.minima:  # every label's point is one of the four known minima
        assert min(math.hypot(x - a, y - b) for a, b in HIMMELBLAU_MINIMA) < 1e-6
    assert set(np.unique(basin.labels)) <= {-2, -1, 0, 1, 2, 3}
    assert (basin.counts > 0).all() and basin.counts.sum() >= 0.95 * 40 * 40
    # Each start's label is where its own descent ends.
    for i, j in [(5, 5), (35, 5), (5, 35), (35, 35), (20, 21)]:
        t = descend(HIMMELBLAU, "sgd", (basin.x[j], basin.y[i]), 300, 0.01)
        label = basin.labels[i, j]
        assert t.status == "converged" and label >= 0
        assert np.hypot(*(t.points[-1] - basin.minima[label])) < 1e-6
        assert basin.steps_taken[i, j] == t.steps


def test_basin_labels_for_divergence_and_slow_runs():
    basin = basins("x**2 + y**2", "sgd", (-1, 1), (-1, 1), 8, 100, 1.2)
    assert (basin.labels == -1).all() and basin.minima.shape == (0, 2)
    basin = basins("x**2 + y**2", "sgd", (-1, 1), (-1, 1), 8, 3, 0.01)
    assert (basin.labels == -2).all() and (basin.steps_taken == 3).all()


def test_basin_generator_yields_progress_and_stops_when_closed():
    request = BasinRequest(HIMMELBLAU, method="adam", n=64, steps=400, lr=0.05, x_range=(-5, 5),
                           y_range=(-5, 5))
    hash(request)
    generator = compute_basins(request)
    first = next(generator)
    assert 0.0 < first < 1.0
    generator.close()  # what the job runner does when a newer request arrives
    with pytest.raises(StopIteration):
        next(generator)
    # Drained to the end, it returns the map after increasing fractions.
    fractions = []
    generator = compute_basins(BasinRequest(HIMMELBLAU, n=16, steps=100, lr=0.01,
                                            x_range=(-5, 5), y_range=(-5, 5)))
    try:
        while True:
            fractions.append(next(generator))
    except StopIteration as stop:
        result = stop.value
    assert isinstance(result, BasinMap) and result.labels.shape == (16, 16)
    assert len(fractions) > 2 and fractions == sorted(fractions) and fractions[-1] == 1.0
