"""engine.landscape: loss landscapes of the digits network after Li et al. (2018).

The fast plane evaluation is checked against full forward passes (:meth:`MLP.evaluate`),
the projected gradient against finite differences of the plane's loss, the directions
against the paper's normalisation rules written out here row by row.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import landscape as LS
from engine.mlp import MLP
from engine.surfaces import Grid


@pytest.fixture(scope="module")
def model() -> LS.TrainedModel:
    return LS.train_model(LS.SMALL_BATCH)


def rows(vector: np.ndarray, widths) -> list[np.ndarray]:
    """W(1), W(2), ... of a vector in the order of eq. 43, built here independently."""
    out, start = [], 0
    for l in range(1, len(widths)):
        r, c = widths[l], widths[l - 1] + 1
        out.append(vector[start:start + r * c].reshape(r, c))
        start += r * c
    assert start == vector.size
    return out


# -- training --------------------------------------------------------------------------------

def test_training_records_the_trajectory_and_is_cached(model):
    s = LS.SMALL_BATCH
    assert model.status == f"finished: {s.steps} steps"
    assert model.trajectory.shape == (s.steps // s.record_every + 1, 2410)
    assert list(model.trajectory_steps[:3]) == [0, s.record_every, 2 * s.record_every]
    assert np.array_equal(model.trajectory[-1], model.theta)
    fresh = MLP(s.widths, "relu", "cross_entropy", seed=s.seed)
    assert np.array_equal(model.trajectory[0], fresh.parameters())  # step 0: the initial weights
    assert model.evaluation.accuracy > 0.97
    assert LS.train_model(LS.SMALL_BATCH) is model  # cached: no retraining
    assert model.seconds > 0  # its time is benchmarks/landscape.py's figure, not a test's
    with pytest.raises(ValueError):
        model.theta[0] = 1.0  # read-only


def test_a_cancelled_training_is_not_cached():
    settings = LS.TrainingSettings(steps=400, record_every=10, seed=7)
    steps = LS.training_steps(settings)
    next(steps)
    steps.close()
    assert LS._cached_model(settings) is None
    assert LS.train_model(settings) is LS._cached_model(settings)


# -- directions ------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", ["zero", "keep"])
def test_filter_normalised_directions_have_the_norms_of_the_weights_filters(model, bias):
    d = LS.random_directions(model.theta, model.widths, "filter", bias, seed=3)
    for direction in (d.d1, d.d2):
        for D, W in zip(rows(direction, model.widths), rows(model.theta, model.widths)):
            if bias == "zero":  # the paper's biasbn: bias directions 0, filters without bias
                assert np.all(D[:, 0] == 0.0)
                D, W = D[:, 1:], W[:, 1:]
            assert np.allclose(np.linalg.norm(D, axis=1), np.linalg.norm(W, axis=1),
                               rtol=1e-12, atol=0)
    assert abs(d.cosine) < 0.1  # two random directions in 2410 dimensions


def test_layer_weight_and_no_normalisation(model):
    theta, widths = model.theta, model.widths
    g = np.random.default_rng(5).standard_normal(theta.size)
    layer = LS.normalize_direction(g, theta, widths, "layer", "keep")
    for D, W in zip(rows(layer, widths), rows(theta, widths)):
        assert math.isclose(np.linalg.norm(D), np.linalg.norm(W), rel_tol=1e-12)
    weight = LS.normalize_direction(g, theta, widths, "weight", "zero")
    mask = LS._bias_mask(widths)
    assert np.all(weight[mask] == 0.0) and np.array_equal(weight[~mask], g[~mask] * theta[~mask])
    none = LS.normalize_direction(g, theta, widths, "none", "keep")
    assert np.array_equal(none, g)
    zero_row = np.zeros_like(g)
    assert np.all(LS.normalize_direction(zero_row, theta, widths, "filter") == 0.0)


def test_pca_directions_are_orthonormal_and_the_path_ends_at_the_origin(model):
    result = LS.landscape(LS.LandscapeRequest(directions="pca", grid=5, samples=200))
    d1, d2 = result.directions.d1, result.directions.d2
    gram = np.array([[d1 @ d1, d1 @ d2], [d2 @ d1, d2 @ d2]])
    assert np.allclose(gram, np.eye(2), atol=1e-12)
    assert np.all(d1[LS._bias_mask(model.widths)] == 0.0)  # bias="zero" by default
    first, second = result.directions.explained_variance
    assert 1.0 >= first >= second > 0.0 and first + second <= 1.0 + 1e-12
    assert result.path.shape == (len(model.trajectory), 2)
    assert np.array_equal(result.path[-1], [0.0, 0.0])
    assert np.all(result.path[0] >= 0.0)  # the sign convention: the start lies at a, b >= 0
    assert result.path_captured > 0.5  # the PCA plane holds most of the path ...
    assert np.abs(result.path).max() <= result.span  # ... and the map holds all of it
    random = LS.landscape(LS.LandscapeRequest(grid=3, samples=50))
    assert random.path_captured < 0.05  # a random plane holds almost none (Li et al., sec. 7)


def test_projection_recovers_coordinates_in_a_non_orthogonal_plane(model):
    rng = np.random.default_rng(1)
    d1 = rng.standard_normal(model.theta.size)
    d2 = 0.6 * d1 + rng.standard_normal(model.theta.size)  # far from orthogonal
    coords = rng.uniform(-2, 2, (7, 2))
    coords[-1] = 0.0
    path = model.theta + coords[:, :1] * d1 + coords[:, 1:] * d2
    found, captured = LS.project_path(path, model.theta, d1, d2)
    assert np.allclose(found, coords, atol=1e-10)
    assert math.isclose(captured, 1.0, rel_tol=1e-10)


# -- the landscape ---------------------------------------------------------------------------

def test_the_grid_centre_is_the_trained_models_evaluation(model):
    result = LS.landscape(LS.LandscapeRequest(grid=7))
    k = 3
    assert result.x[k] == 0.0 and result.y[k] == 0.0
    assert result.x[0] == -1.0 and result.x[-1] == 1.0
    X, y = LS.digits_samples("all")
    reference = model.network().evaluate(X, y)
    assert result.loss[k, k] == reference.loss == result.centre_loss
    assert result.accuracy[k, k] == reference.accuracy == result.centre_accuracy
    # The fast path itself agrees at the centre (there it combines with a = b = 0).
    loss, accuracy = result.plane.evaluate([[0.0, 0.0]])
    assert abs(loss[0] - reference.loss) <= 1e-12 and accuracy[0] == reference.accuracy


@pytest.mark.parametrize("directions, bias, span", [
    ("filter", "zero", None),
    ("layer", "keep", 0.5),
    ("weight", "zero", 2.0),
    ("none", "zero", 0.05),
    ("filter", "keep", 300.0),  # scores beyond e^700: the shifted log-sum-exp
])
def test_fast_grid_equals_full_forward_passes(directions, bias, span):
    request = LS.LandscapeRequest(directions=directions, bias=bias, grid=5, span=span,
                                  samples=300, seed=2)
    result = LS.landscape(request)
    for r, b in enumerate(result.y):
        for c, a in enumerate(result.x):
            reference = result.plane.reference(a, b)
            assert abs(result.loss[r, c] - reference.loss) <= 1e-6 + 1e-12 * reference.loss
            assert result.accuracy[r, c] == reference.accuracy


@pytest.mark.parametrize("widths, activation, l2", [
    ((64, 12, 10), "tanh", 0.0),
    ((64, 12, 10), "leaky_relu", 1e-3),
    ((64, 16, 12, 10), "relu", 1e-3),
    ((64, 8, 6, 10), "sigmoid", 0.0),
])
def test_fast_plane_equals_full_forward_passes_for_other_networks(widths, activation, l2):
    X, y = LS.digits_samples(120)
    net = MLP(widths, activation, "cross_entropy", l2=l2, seed=4)
    d = LS.random_directions(net.parameters(), widths, "filter", "keep", seed=1)
    plane = LS.Plane(net, d.d1, d.d2, X, y)
    points = np.random.default_rng(0).uniform(-1.5, 1.5, (2 * plane.chunk_size + 3, 2))
    loss, accuracy = plane.evaluate(points)
    for (a, b), fast_loss, fast_accuracy in zip(points, loss, accuracy):
        reference = plane.reference(a, b)
        assert abs(fast_loss - reference.loss) <= 1e-9
        assert fast_accuracy == reference.accuracy


def test_cancel_stops_within_one_chunk(monkeypatch, model):
    computed = []
    chunk = LS.Plane._chunk

    def counting(self, coef, buf):
        computed.append(len(coef))
        return chunk(self, coef, buf)

    monkeypatch.setattr(LS.Plane, "_chunk", counting)
    steps = LS.compute_landscape(LS.LandscapeRequest(grid=31, samples=100))
    while len(computed) < 3:
        fraction = next(steps)
        assert 0.0 <= fraction <= 1.0
    steps.close()  # what the job runner does when a newer request arrives
    assert len(computed) == 3
    assert sum(computed) < 31 * 31
    with pytest.raises(StopIteration):
        next(steps)


def test_generator_delivers_the_result_like_compute_basins(model):
    steps = LS.compute_landscape(LS.LandscapeRequest(grid=5, samples=64, metric="accuracy"))
    fractions = []
    try:
        while True:
            fractions.append(next(steps))
    except StopIteration as stop:
        result = stop.value
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert isinstance(result, LS.LandscapeResult)
    grid = result.to_grid()
    assert isinstance(grid, Grid) and grid.z.shape == (5, 5) and grid.z.dtype == np.float32
    assert grid.z.flags.c_contiguous and np.array_equal(grid.x, result.x)
    assert np.array_equal(grid.z, result.accuracy.astype(np.float32))
    assert np.array_equal(result.to_grid("loss", np.float64).z, result.loss)


def test_projected_gradient_equals_finite_differences_of_the_grid_function(model):
    result = LS.landscape(LS.LandscapeRequest(grid=3, samples=400, seed=1))
    plane = result.plane
    points = np.array([[0.0, 0.0], [0.3, -0.2], [-0.45, 0.6]])
    loss, gradient = plane.loss_and_gradient(points)
    assert np.allclose(loss, plane.evaluate(points)[0], rtol=0, atol=1e-12)
    h = 1e-5
    for (a, b), g in zip(points, gradient):
        f = plane.evaluate([[a + h, b], [a - h, b], [a, b + h], [a, b - h]])[0]
        numeric = np.array([(f[0] - f[1]) / (2 * h), (f[2] - f[3]) / (2 * h)])
        assert np.allclose(g, numeric, rtol=1e-5, atol=1e-7), (g, numeric)
    assert np.linalg.norm(gradient[1]) > 1e-3  # away from theta* the slope is not flat


def test_optimizers_restricted_to_the_plane_follow_its_projected_gradient(model):
    from engine.optimizers import race

    result = LS.landscape(LS.LandscapeRequest(grid=3, samples=400, seed=1))
    field = LS.PlaneField(result.plane)
    start, lr, steps = (-0.6, 0.5), 0.05, 12
    out = race(field, ["sgd", "adam"], [start], steps, lr, grad_tol=0.0)
    sgd, adam = out
    # SGD by hand on the plane: (a, b) <- (a, b) - lr (<grad L, d1>, <grad L, d2>).
    p = np.array(start)
    for k in range(steps):
        g = result.plane.loss_and_gradient(p[None, :])[1][0]
        assert np.allclose(sgd.gradients[k], g, rtol=1e-12, atol=0)
        p = p - lr * g
        assert np.allclose(sgd.points[k + 1], p, rtol=1e-12, atol=1e-14)
    assert np.allclose(sgd.values, result.plane.evaluate(sgd.points)[0], rtol=1e-12)
    assert sgd.values[-1] < sgd.values[0] and adam.values[-1] < adam.values[0]
    # The field is NaN where a point is not finite (the race stops there), never an error.
    assert np.isnan(field.evaluate(np.array([np.nan, 0.0]), np.array([0.0, 0.0]))[0])
    gx, gy = field.gradient(np.array([[np.inf]]), np.array([[0.0]]))
    assert gx.shape == (1, 1) and np.isnan(gx[0, 0]) and np.isnan(gy[0, 0])


# -- 1-D interpolation -----------------------------------------------------------------------

def test_interpolation_endpoints_equal_the_two_models():
    request = LS.InterpolationRequest(per_unit=4, samples="all")
    result = LS.interpolate(request)
    assert list(result.t) == [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    X, y = LS.digits_samples("all")
    first = result.first.network().evaluate(X, y)
    second = result.second.network().evaluate(X, y)
    assert result.loss[2] == first.loss == result.first_evaluation.loss
    assert result.loss[6] == second.loss == result.second_evaluation.loss
    assert result.accuracy[2] == first.accuracy and result.accuracy[6] == second.accuracy
    assert result.first.settings.batch_size == 32 and result.second.settings.batch_size is None
    assert result.distance > 1.0 and np.all(np.isfinite(result.loss))


# -- requests --------------------------------------------------------------------------------

def test_requests_are_hashable_and_refuse_bad_values():
    a = LS.LandscapeRequest(grid=21, span=2, samples=1797)
    assert a == LS.LandscapeRequest(grid=21, span=2.0, samples="all") and hash(a) == hash(
        LS.LandscapeRequest(grid=21, span=2.0, samples="all"))
    assert len({a, LS.LandscapeRequest(), LS.LandscapeRequest(seed=1)}) == 3
    for bad in (dict(grid=50), dict(grid=1), dict(span=0.0), dict(span=math.inf),
                dict(directions="random"), dict(bias="none"), dict(metric="error"),
                dict(samples=0), dict(samples="some"), dict(seed=-1)):
        with pytest.raises(ValueError):
            LS.LandscapeRequest(**bad)
    for bad in (dict(lr=0.0), dict(batch_size=0), dict(steps=0), dict(method="newton"),
                dict(record_every=5000), dict(activation="gelu")):
        with pytest.raises(ValueError):
            LS.TrainingSettings(**bad)
    with pytest.raises(ValueError):
        LS.InterpolationRequest(t_range=(0.2, 1.5))
    result = LS.landscape(LS.LandscapeRequest(grid=3, samples=10))
    with pytest.raises(ValueError):
        result.values("error")
    with pytest.raises(ValueError):
        result.plane.evaluate([[0.0, math.nan]])
