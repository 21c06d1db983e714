"""engine.surfaces: presets, grids, levels, level curves, gradient fields, critical points.

The numbers come from seed 001 (surfaces, level curves, limits, the regression practice)
and seed 002 (gradient, stationary points, Hessian eigenvalues).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine import surfaces as S
from engine.expressions import ExpressionError, parse


def _points_near(points, x, y, tol=1e-6):
    return [p for p in points if math.hypot(p.x - x, p.y - y) <= tol]


# -- presets -------------------------------------------------------------------------------

REQUIRED = {
    "paraboloid": "x**2 + y**2",
    "saddle": "x**2 - y**2",
    "plane": "x + 2*y",
    "regression": "(2*x + y - 3)**2",
    "limit_diagonal": "x*y/(x**2 + y**2)",
    "limit_axes": "(x**2 - y**2)/(x**2 + y**2)",
    "monkey_saddle": "x**3 - 3*x*y**2",
}


def test_presets_are_complete_and_well_formed():
    keys = [p.key for p in S.PRESETS]
    assert len(keys) == len(set(keys))
    assert S.preset_keys() == tuple(keys)
    for key, text in REQUIRED.items():
        assert S.preset(key).text == text
    for key in ("rosenbrock", "himmelblau", "beale", "rastrigin", "ackley", "goldstein_price", "quadratic"):
        assert key in keys
    assert dict(S.preset("rosenbrock").parameters) == {"a": 1.0, "b": 100.0}
    assert set(S.preset("quadratic").parameters) == {"a", "b"}
    for p in S.PRESETS:
        assert p.x_range[0] < p.x_range[1] and p.y_range[0] < p.y_range[1]
        assert p.note.endswith(".") and p.note.count(". ") == 0, p.key  # one sentence
        assert p.level_spacing in ("linear", "log")
        e = p.expression()
        assert e.parameters == tuple(p.parameters)
        assert e.symbolic
    assert S.preset("saddle").note.startswith("Seed 001: saddle point, gradient zero but not a minimum")
    assert hash(S.preset("rosenbrock")) == hash(S.preset("rosenbrock"))
    with pytest.raises(KeyError, match="paraboloid"):
        S.preset("no-such-surface")


def test_standard_windows_of_the_test_functions():
    assert S.preset("rastrigin").x_range == (-5.12, 5.12)
    assert S.preset("beale").x_range == (-4.5, 4.5)
    assert S.preset("himmelblau").y_range == (-5.0, 5.0)
    assert S.preset("goldstein_price").x_range == (-2.0, 2.0)
    # The known global minima sit inside their windows with the textbook values.
    for key, (x, y, value) in {"rosenbrock": (1, 1, 0), "beale": (3, 0.5, 0), "rastrigin": (0, 0, 0),
                               "goldstein_price": (0, -1, 3), "himmelblau": (3, 2, 0)}.items():
        p = S.preset(key)
        assert p.x_range[0] <= x <= p.x_range[1] and p.y_range[0] <= y <= p.y_range[1]
        assert S.probe(p.expression(), x, y, p.parameters).value == pytest.approx(value, abs=1e-12)
    ackley = S.preset("ackley").expression()
    assert float(ackley.evaluate(0.0, 0.0)) == pytest.approx(0.0, abs=1e-12)


# -- the seed's numbers --------------------------------------------------------------------

def test_paraboloid_values_of_seed_001():
    f = S.preset("paraboloid").expression()
    for (x, y), value in {(1, 0): 1.0, (0, 2): 4.0, (1, 1): 2.0, (0, 0): 0.0}.items():
        assert S.probe(f, x, y).value == value


def test_regression_loss_of_seed_001_practice():
    loss = S.preset("regression").expression()  # x plays w, y plays b
    assert S.probe(loss, 1.0, 0.0).value == 1.0
    assert S.probe(loss, 1.5, 0.0).value == 0.0
    assert S.probe(loss, 1.0, 1.0).value == 0.0


def test_level_sets_of_the_paraboloid_are_circles_of_radius_sqrt_c():
    grid = S.evaluate_grid("x**2 + y**2", (-4, 4), (-4, 4), 201)
    spacing = 8 / 200
    curves = S.level_curves(grid, [1.0, 4.0, 9.0])
    assert [c for c, _ in curves] == [1.0, 4.0, 9.0]
    for c, lines in curves:
        assert len(lines) == 1  # one closed curve
        line = lines[0]
        assert line.shape[1] == 2 and line.dtype == np.float64 and len(line) > 50
        np.testing.assert_allclose(line[0], line[-1])  # closed
        radius = np.hypot(line[:, 0], line[:, 1])
        assert np.max(np.abs(radius - math.sqrt(c))) < 0.05 * spacing


def test_level_lines_of_the_tilted_plane_are_parallel_with_slope_minus_half():
    grid = S.evaluate_grid("x + 2*y", (-3, 3), (-3, 3), 61, dtype=np.float64)
    for c, lines in S.level_curves(grid, [-2.0, 0.0, 2.0]):
        assert len(lines) == 1
        x, y = lines[0][:, 0], lines[0][:, 1]
        np.testing.assert_allclose(x + 2 * y, c, atol=1e-9)
        assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(-0.5)
        assert abs(x[-1] - x[0]) > 4  # crosses the whole window


def test_gradient_of_the_tilted_plane_is_1_2_everywhere():
    f = S.preset("plane").expression()
    X, Y, U, V = S.gradient_field(f, (-3, 3), (-3, 3), 7)
    assert X.shape == (49,) and X.dtype == np.float64
    np.testing.assert_array_equal(U, 1.0)
    np.testing.assert_array_equal(V, 2.0)
    info = S.probe(f, 0.3, -1.7)
    assert info.gradient == (1.0, 2.0)
    assert info.grad_norm == pytest.approx(math.sqrt(5))
    assert info.kind == "regular" and info.curvature == "flat"


def test_gradient_field_positions_and_holes():
    X, Y, U, V = S.gradient_field("x**2 + y**2", (0, 4), (-1, 1), 4)
    np.testing.assert_allclose(np.unique(X), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(np.unique(Y), [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(U, 2 * X)
    np.testing.assert_allclose(V, 2 * Y)
    # The centre of a 3 x 3 field is the singular origin of xy/(x^2+y^2): dropped.
    X, Y, U, V = S.gradient_field("x*y/(x**2 + y**2)", (-1, 1), (-1, 1), 3)
    assert X.size == 8 and not np.any((X == 0) & (Y == 0))
    assert np.isfinite(U).all() and np.isfinite(V).all()
    assert all(a.size == 0 for a in S.gradient_field("x", (0, 1), (0, 1), 0))


def test_limits_that_do_not_exist_at_the_origin():
    t = np.array([-0.5, -1e-3, -1e-8, 1e-8, 1e-3, 0.7])
    zero = np.zeros_like(t)
    f = S.preset("limit_diagonal").expression()
    np.testing.assert_array_equal(np.abs(f.evaluate(t, zero)), 0.0)  # along the x-axis
    np.testing.assert_array_equal(np.abs(f.evaluate(zero, t)), 0.0)  # along the y-axis
    np.testing.assert_allclose(f.evaluate(t, t), 0.5)  # along y = x
    g = S.preset("limit_axes").expression()
    np.testing.assert_allclose(g.evaluate(t, zero), 1.0)
    np.testing.assert_allclose(g.evaluate(zero, t), -1.0)
    # On an odd grid the origin itself is a hole, and only the origin.
    grid = S.evaluate_grid(f, (-1, 1), (-1, 1), 21)
    holes = np.argwhere(np.isnan(grid.z))
    assert holes.tolist() == [[10, 10]]


# -- grids ----------------------------------------------------------------------------------

def test_grid_layout_dtype_and_values():
    f = parse("x**2 - y**2")
    grid = S.evaluate_grid(f, (-1, 3), (-2, 2), (5, 3))
    assert grid.z.shape == (3, 5) and grid.shape == (3, 5)
    assert grid.z.dtype == np.float32 and grid.z.flags.c_contiguous and grid.z.flags.writeable
    np.testing.assert_allclose(grid.x, [-1, 0, 1, 2, 3])
    np.testing.assert_allclose(grid.y, [-2, 0, 2])
    np.testing.assert_allclose(grid.z, grid.x[None, :] ** 2 - grid.y[:, None] ** 2)
    assert grid.x_range == (-1.0, 3.0) and grid.y_range == (-2.0, 2.0)
    assert grid.finite and grid.z_range == (-4.0, 9.0)
    assert grid.text == "x**2 - y**2"
    wide = S.evaluate_grid(f, (-1, 3), (-2, 2), 4, dtype=np.float64)
    assert wide.z.dtype == np.float64 and wide.z.shape == (4, 4)


def test_grid_uses_parameters_and_defaults():
    f = parse("a*x**2 + b*y**2", parameters={"a": 1.0, "b": 3.0})
    grid = S.evaluate_grid(f, (0, 1), (0, 1), 2)
    np.testing.assert_allclose(grid.z, [[0, 1], [3, 4]])
    grid = S.evaluate_grid(f, (0, 1), (0, 1), 2, params={"b": -1.0, "unused": 5.0})
    np.testing.assert_allclose(grid.z, [[0, 1], [-1, 0]])
    assert grid.params == (("a", 1.0), ("b", -1.0))


def test_constant_surface_broadcasts_and_widens_its_levels():
    grid = S.evaluate_grid("3", (0, 1), (0, 1), (4, 2))
    assert grid.z.shape == (2, 4) and (grid.z == 3).all()
    lo, hi = grid.levels()
    assert lo < 3 < hi and hi - lo < 1
    levels = S.default_levels(grid, 3)
    assert len(levels) == 3 and (levels > lo).all() and (levels < hi).all()


def test_bad_ranges_and_resolutions_are_refused():
    with pytest.raises(ValueError):
        S.evaluate_grid("x", (1, 1), (0, 1), 10)
    with pytest.raises(ValueError):
        S.evaluate_grid("x", (0, math.inf), (0, 1), 10)
    with pytest.raises(ValueError):
        S.evaluate_grid("x", (0, 1), (0, 1), 1)


# -- holes and colour levels ----------------------------------------------------------------

def test_log_has_holes_for_nonpositive_x_and_finite_levels():
    grid = S.evaluate_grid("log(x)", (-1, 1), (-1, 1), 65)
    nonpositive = grid.x <= 0
    assert np.isnan(grid.z[:, nonpositive]).all()
    assert np.isfinite(grid.z[:, ~nonpositive]).all()
    lo, hi = grid.levels()
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    assert grid.z_range == pytest.approx((math.log(1 / 32), 0.0), rel=1e-6)
    # Level curves skip the holes: every vertex lies where log is defined.
    curves = S.level_curves(grid, S.default_levels(grid, 8))
    assert sum(len(lines) for _, lines in curves) >= 8
    for _, lines in curves:
        for line in lines:
            assert (line[:, 0] > 0).all()


def test_level_curves_stop_at_a_hole_in_the_middle():
    # y, with the unit disc cut out: the level y = 0 would cross the hole and must break there.
    grid = S.evaluate_grid("y + 1e-9*sqrt(x**2 + y**2 - 1)", (-2, 2), (-2, 2), 81)
    assert np.isnan(grid.z[40, 40]) and np.isfinite(grid.z[40, 0])
    (_, lines), = S.level_curves(grid, [0.0])
    assert len(lines) == 2
    for line in lines:
        assert (np.hypot(line[:, 0], line[:, 1]) >= 1 - 1e-9).all()
        assert (np.abs(line[:, 0]) >= 1).all()


def test_exponential_blow_up_gives_finite_ordered_levels():
    grid = S.evaluate_grid("exp(1000*x)", (-1, 1), (-1, 1), 64)
    assert np.isnan(grid.z).any() and grid.finite  # float32 overflow became holes
    lo, hi = grid.levels()
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    for spacing in ("linear", "log", "auto"):
        levels = S.default_levels(grid, 10, spacing)
        assert np.isfinite(levels).all() and (np.diff(levels) > 0).all()


def test_levels_ignore_outliers_only_when_the_spread_is_extreme():
    z = np.linspace(0, 1, 10_000).reshape(100, 100).astype(np.float32)
    grid = S.Grid(np.arange(100.0), np.arange(100.0), z)
    assert grid.levels() == (0.0, 1.0)  # ordinary spread: min and max
    z = z.copy()
    z[0, 0] = 1e30
    lo, hi = S.Grid(np.arange(100.0), np.arange(100.0), z).levels()
    assert 0 <= lo < hi <= 1.0  # one huge outlier: percentiles
    assert S.Grid(np.arange(100.0), np.arange(100.0), z).levels(clip=None)[1] == pytest.approx(1e30)


def test_no_finite_values():
    grid = S.evaluate_grid("log(-1 - x**2)", (-1, 1), (-1, 1), 9)
    assert not grid.finite and grid.z_range is None
    assert grid.levels() == (0.0, 1.0)
    assert S.level_curves(grid, [0.5]) == [(0.5, [])]


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(2, 12), st.integers(2, 12)),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_levels_are_never_nan_and_ordered(z):
    z = np.where(np.isfinite(z), z, np.nan).astype(np.float32)
    grid = S.Grid(np.arange(z.shape[1], dtype=float), np.arange(z.shape[0], dtype=float), z)
    lo, hi = grid.levels()
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    levels = S.default_levels(grid, 5)
    assert np.isfinite(levels).all() and (levels >= lo).all() and (levels <= hi).all()


def test_default_levels_linear_log_and_auto():
    grid = S.evaluate_grid(S.preset("rosenbrock").expression(), (-2, 2), (-1, 3), 128)
    lo, hi = grid.levels()
    linear = S.default_levels(grid, 10)
    assert len(linear) == 10 and lo < linear[0] and linear[-1] < hi
    np.testing.assert_allclose(np.diff(linear), (hi - lo) / 11)
    log = S.default_levels(grid, 10, "log")
    assert len(log) == 10 and lo < log[0] and log[-1] < hi
    ratios = np.diff(np.log(log - lo))
    np.testing.assert_allclose(ratios, ratios[0])  # geometric above the floor
    assert log[0] - lo < 1e-3 * (hi - lo)  # reaches down into the valley
    assert S.suggest_level_spacing(S.evaluate_grid(S.preset("beale").expression(), (-4.5, 4.5),
                                                   (-4.5, 4.5), 128)) == "log"
    assert S.suggest_level_spacing(S.evaluate_grid("x**2 + y**2", (-1, 1), (-1, 1), 64)) == "linear"
    assert S.default_levels(grid, 0).size == 0
    with pytest.raises(ValueError):
        S.default_levels(grid, 5, "cubic")


# -- derivatives ----------------------------------------------------------------------------

@pytest.mark.parametrize("preset", S.PRESETS, ids=lambda p: p.key)
def test_symbolic_derivatives_agree_with_central_differences(preset):
    """Gradient vs differences of f, Hessian vs differences of the gradient (float64)."""
    f = preset.expression()
    values = dict(preset.parameters)
    (x0, x1), (y0, y1) = preset.x_range, preset.y_range
    extent = math.hypot(x1 - x0, y1 - y0)
    rng = np.random.default_rng(20240601)
    x, y = rng.uniform(x0, x1, 300), rng.uniform(y0, y1, 300)
    away = np.hypot(x, y) > 0.05 * extent  # the singular origins of the limit presets, Ackley's cusp
    x, y = x[away], y[away]
    h = 1e-6 * extent
    value = f.evaluate(x, y, **values)
    gx, gy = f.gradient(x, y, **values)
    fx = (f.evaluate(x + h, y, **values) - f.evaluate(x - h, y, **values)) / (2 * h)
    fy = (f.evaluate(x, y + h, **values) - f.evaluate(x, y - h, **values)) / (2 * h)
    scale = np.hypot(gx, gy) + np.abs(value) / extent
    assert np.max(np.hypot(fx - gx, fy - gy) / scale) < 1e-6

    hess = f.hessian(x, y, **values)
    assert hess.shape == x.shape + (2, 2)
    gxp, gyp = f.gradient(x + h, y, **values)
    gxm, gym = f.gradient(x - h, y, **values)
    col_x = np.stack([(gxp - gxm) / (2 * h), (gyp - gym) / (2 * h)], axis=-1)
    gxp, gyp = f.gradient(x, y + h, **values)
    gxm, gym = f.gradient(x, y - h, **values)
    col_y = np.stack([(gxp - gxm) / (2 * h), (gyp - gym) / (2 * h)], axis=-1)
    numeric = np.stack([col_x, col_y], axis=-1)  # numeric[..., i, j] = d(grad_i)/d(x_j)
    scale = np.linalg.norm(hess, axis=(-2, -1)) + np.hypot(gx, gy) / extent
    assert np.max(np.linalg.norm(numeric - hess, axis=(-2, -1)) / scale) < 1e-6


# -- point probe ----------------------------------------------------------------------------

def test_probe_reads_out_value_gradient_hessian_and_kind():
    info = S.probe("x**2 - y**2", 0.0, 0.0)
    assert info.value == 0.0 and info.grad_norm == 0.0
    np.testing.assert_array_equal(info.hessian, [[2, 0], [0, -2]])
    assert info.eigenvalues == (-2.0, 2.0)
    assert info.kind == "saddle" and info.curvature == "saddle"
    info = S.probe(S.preset("rosenbrock").expression(), 1.0, 1.0)
    assert info.kind == "minimum" and info.curvature == "bowl"
    assert info.eigenvalues == pytest.approx((0.39936, 1001.6006), rel=1e-5)
    info = S.probe("x**2 + y**2", 1.0, 2.0)
    assert info.gradient == (2.0, 4.0) and info.kind == "regular" and info.curvature == "bowl"
    assert isinstance(info.value, float) and info.hessian.dtype == np.float64
    assert S.probe("-(x**2) - y**2", 0, 0).kind == "maximum"
    assert S.probe("x**3 - 3*x*y**2", 0, 0).kind == "degenerate"
    singular = S.probe("x*y/(x**2 + y**2)", 0.0, 0.0)
    assert math.isnan(singular.value) and singular.kind == "undefined"
    assert S.probe("a*x**2", 1.0, 0.0, {"a": 3.0}).value == 3.0


# -- critical points ------------------------------------------------------------------------

def _critical(key, **kwargs):
    p = S.preset(key)
    return S.critical_points(p.expression(), p.x_range, p.y_range, p.parameters, **kwargs)


def test_paraboloid_has_one_minimum_at_the_origin():
    (point,) = _critical("paraboloid")
    assert (point.x, point.y, point.value, point.kind) == (0.0, 0.0, 0.0, "minimum")
    assert point.eigenvalues == pytest.approx((2.0, 2.0))


def test_saddle_of_seed_001_is_a_saddle_not_a_minimum():
    (point,) = _critical("saddle")
    assert (point.x, point.y, point.kind) == (0.0, 0.0, "saddle")
    assert point.eigenvalues == pytest.approx((-2.0, 2.0))


def test_himmelblau_four_minima_one_maximum_four_saddles():
    points = _critical("himmelblau")
    kinds = [p.kind for p in points]
    assert kinds.count("minimum") == 4 and kinds.count("maximum") == 1 and kinds.count("saddle") == 4
    assert len(points) == 9
    for x, y in [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]:
        (p,) = _points_near(points, x, y, 1e-5)
        assert p.kind == "minimum" and p.value == pytest.approx(0.0, abs=1e-12)
    (top,) = _points_near(points, -0.270845, -0.923039, 1e-5)
    assert top.kind == "maximum" and top.value == pytest.approx(181.617, abs=1e-3)
    assert kinds[:4] == ["minimum"] * 4  # minima first


def test_rosenbrock_minimum_and_its_parameters():
    (point,) = _critical("rosenbrock")
    assert point.kind == "minimum"
    assert (point.x, point.y) == pytest.approx((1.0, 1.0), abs=1e-9)
    p = S.preset("rosenbrock")
    (moved,) = S.critical_points(p.expression(), p.x_range, p.y_range, {"a": -1.0, "b": 100.0})
    assert (moved.x, moved.y) == pytest.approx((-1.0, 1.0), abs=1e-9)  # (a, a^2)


def test_monkey_saddle_is_degenerate_at_the_origin():
    (point,) = _critical("monkey_saddle")
    assert point.kind == "degenerate"
    assert math.hypot(point.x, point.y) < 1e-6


def test_tilted_plane_has_no_critical_point():
    assert _critical("plane") == []


def test_singular_origin_is_not_a_critical_point():
    for key in ("limit_diagonal", "limit_axes"):
        points = _critical(key)
        assert all(math.hypot(p.x, p.y) > 1e-2 for p in points), key
        # Rays where the angular derivative vanishes are genuine curves of stationary points.
        assert all(p.kind == "degenerate" for p in points)
    diagonal = _critical("limit_diagonal")
    assert diagonal and all(abs(abs(p.x) - abs(p.y)) < 1e-8 for p in diagonal)


def test_regression_valley_is_a_chain_of_degenerate_minima():
    points = _critical("regression")
    assert len(points) >= 5
    for p in points:
        assert p.kind == "degenerate" and p.value == pytest.approx(0.0, abs=1e-12)
        assert 2 * p.x + p.y == pytest.approx(3.0, abs=1e-9)
        assert p.eigenvalues[1] == pytest.approx(10.0)


def test_quadratic_parameters_change_the_kind():
    p = S.preset("quadratic")
    f = p.expression()
    for (a, b), kind in {(1, 3): "minimum", (-1, -2): "maximum", (1, -1): "saddle"}.items():
        (point,) = S.critical_points(f, p.x_range, p.y_range, {"a": a, "b": b})
        assert point.kind == kind and (point.x, point.y) == (0.0, 0.0)
        assert point.eigenvalues == pytest.approx(tuple(sorted((2.0 * a, 2.0 * b))))


def test_known_critical_points_of_the_other_test_functions():
    beale = _critical("beale")
    (minimum,) = [p for p in beale if p.kind == "minimum"]
    assert (minimum.x, minimum.y) == pytest.approx((3.0, 0.5), abs=1e-9)
    goldstein = _critical("goldstein_price")
    best = goldstein[0]
    assert best.kind == "minimum" and (best.x, best.y, best.value) == pytest.approx((0, -1, 3), abs=1e-9)
    rastrigin = _critical("rastrigin")
    minima = [p for p in rastrigin if p.kind == "minimum"]
    assert len(minima) == 121  # one per integer point of [-5, 5]^2
    assert (minima[0].x, minima[0].y, minima[0].value) == (0.0, 0.0, 0.0)
    ackley = _critical("ackley")
    assert not _points_near(ackley, 0.0, 0.0, 1e-3)  # a cusp, not a stationary point
    assert sum(p.kind == "minimum" for p in ackley) >= 100


def test_critical_points_are_capped_and_ordered():
    points = _critical("rastrigin", max_points=50)
    assert len(points) == 50 and all(p.kind == "minimum" for p in points)
    values = [p.value for p in points]
    assert values == sorted(values)
    full = _critical("rastrigin")
    assert len(full) <= 512
    order = {"minimum": 0, "maximum": 1, "saddle": 2, "degenerate": 3}
    ranks = [order[p.kind] for p in full]
    assert ranks == sorted(ranks)


def test_critical_points_stay_inside_the_window():
    points = S.critical_points("x**2 + y**2", (1, 2), (1, 2))
    assert points == []  # the minimum at the origin is outside
    points = _critical("himmelblau")
    assert all(-5 <= p.x <= 5 and -5 <= p.y <= 5 for p in points)


def test_constant_and_undefined_surfaces_have_no_critical_points():
    assert S.critical_points("0", (-1, 1), (-1, 1)) == []
    assert S.critical_points("log(-1 - x**2)", (-1, 1), (-1, 1)) == []


def test_classify_eigenvalues():
    assert S.classify_eigenvalues(1, 2, 1e-9) == "minimum"
    assert S.classify_eigenvalues(-1, -2, 1e-9) == "maximum"
    assert S.classify_eigenvalues(-1, 2, 1e-9) == "saddle"
    assert S.classify_eigenvalues(0, 2, 1e-9) == "degenerate"
    assert S.classify_eigenvalues(-1e-12, 1e-12, 1e-9) == "degenerate"


# -- request and result ---------------------------------------------------------------------

def test_request_is_hashable_and_normalised():
    a = S.SurfaceRequest("a*x**2 + b*y**2", params={"a": 1, "b": 3}, x_range=[-3, 3], y_range=(-3, 3))
    b = S.SurfaceRequest("a*x**2 + b*y**2", params=(("a", 1.0), ("b", 3.0)), x_range=(-3.0, 3.0),
                         y_range=(-3.0, 3.0))
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a.params == (("a", 1.0), ("b", 3.0)) and a.x_range == (-3.0, 3.0)
    with pytest.raises(ValueError):
        S.SurfaceRequest("x", level_spacing="cubic")
    with pytest.raises(ValueError):
        S.SurfaceRequest("x", x_range=(2, 1))
    with pytest.raises(AttributeError):
        a.text = "x"  # type: ignore[misc]


def test_compute_surface_round_trip():
    request = S.preset("himmelblau").request(resolution=(96, 64), n_levels=12, arrows=10)
    result = S.compute_surface(request)
    assert result.request is request
    grid = result.grid
    assert grid.z.shape == (64, 96) and grid.z.dtype == np.float32
    assert grid.x_range == (-5.0, 5.0) and grid.y_range == (-5.0, 5.0)
    lo, hi = result.levels
    assert lo < hi and lo == pytest.approx(0.0, abs=1.0)
    assert len(result.contour_levels) == 12 and [c for c, _ in result.curves] == list(result.contour_levels)
    assert any(lines for _, lines in result.curves)
    X, Y, U, V = result.field
    assert X.shape == (100,) and U.dtype == np.float64
    np.testing.assert_allclose(U, 4 * X * (X**2 + Y - 11) + 2 * (X + Y**2 - 7))
    assert result.seconds >= 0
    # Slider values travel in the request; the parsed expression is shared between them.
    moved = S.compute_surface(S.preset("quadratic").request(resolution=16, params={"b": -1.0}))
    assert moved.grid.z[0, 0] == pytest.approx(9 - 9)  # a x^2 + b y^2 at (-3, -3) with b = -1
    assert moved.field is None
    assert S.preset("quadratic").request(params={"b": -1.0}).expression() is \
        S.preset("quadratic").request(params={"b": 5.0}).expression()


def test_compute_critical_points_job():
    points = S.compute_critical_points(S.preset("himmelblau").request())
    assert sum(p.kind == "minimum" for p in points) == 4
    limited = S.compute_critical_points(S.preset("rastrigin").request(max_points=10))
    assert len(limited) == 10


def test_compute_surface_reports_bad_text():
    with pytest.raises(ExpressionError) as caught:
        S.compute_surface(S.SurfaceRequest("x + * y"))
    assert caught.value.position is not None
    with pytest.raises(ExpressionError):
        S.compute_surface(S.SurfaceRequest("a*x"))  # a is not declared
    result = S.compute_surface(S.SurfaceRequest("a*x", infer_parameters=True, resolution=8))
    assert result.expression.parameters == ("a",)
    # Values left over from another function add no parameters when names are inferred.
    stale = S.SurfaceRequest("a*x", params={"a": 2.0, "b": 100.0}, infer_parameters=True, resolution=3)
    result = S.compute_surface(stale)
    assert result.expression.parameters == ("a",)
    np.testing.assert_allclose(result.grid.z[0], [-6, 0, 6])


def test_parse_cached_remembers_and_infers():
    f = S.parse_cached("k*x + y")
    assert f is S.parse_cached("k*x + y") and f.parameters == ("k",)
    g = S.parse_cached("a*x", {"a": 2.0}, infer_parameters=False)
    assert g.defaults == {"a": 2.0} and S.probe(g, 1.0, 0.0).value == 2.0
    with pytest.raises(ExpressionError):
        S.parse_cached("k*x", infer_parameters=False)


# -- CSV --------------------------------------------------------------------------------------

def test_write_grid_csv_long_format_with_holes(tmp_path):
    grid = S.evaluate_grid("x*y/(x**2 + y**2)", (-1, 1), (-2, 2), (3, 5))
    buffer = io.StringIO()
    S.write_grid_csv(buffer, grid)
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("# ") and "x*y/(x**2 + y**2)" in lines[0]
    assert "[-1, 1]" in lines[0] and "[-2, 2]" in lines[0]
    assert lines[1] == "x,y,z"
    rows = [line.split(",") for line in lines[2:]]
    assert len(rows) == 15 and all(len(r) == 3 for r in rows)
    assert rows[0][:2] == ["-1", "-2"] and rows[1][:2] == ["0", "-2"]  # x runs fastest
    assert rows[7] == ["0", "0", "nan"]  # the hole at the origin
    data = np.genfromtxt(io.StringIO(buffer.getvalue()), delimiter=",", skip_header=2)
    np.testing.assert_allclose(data[:, 2].reshape(5, 3), grid.z, equal_nan=True)

    path = tmp_path / "grid.csv"
    S.write_grid_csv(path, S.evaluate_grid(S.preset("rosenbrock").expression(), (-2, 2), (-1, 3), 4))
    text = path.read_text()
    assert text.count("\n") == 2 + 16 and "a = 1; b = 100" in text.splitlines()[0]


def test_no_gradient_arrows_where_f_is_undefined():
    # d/dx log(x) = 1/x is finite for x < 0, but f is not defined there.
    X, Y, U, V = S.gradient_field("log(x) + y**2", (-1.0, 1.0), (-1.0, 1.0), 10)
    assert len(X) == 50
    assert np.all(X > 0)
