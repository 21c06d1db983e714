"""engine.mlp and engine.datasets: backpropagation in the notation of seed 003 (eqs. 28-67).

Every gradient is checked against central finite differences of the loss written here,
never against the engine's own backward pass; the softmax derivatives against eqs. 56-57;
the parameter order against eq. 43; the optimizer steps against their papers' formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import datasets as DS
from engine import mlp as M
from engine.mlp import MLP, flatten, softmax, unflatten
from engine.optimizers import DEFAULTS, METHODS
from engine.training import Trainer

# -- helpers -----------------------------------------------------------------------------------

def numeric_gradient(f, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central finite differences (f(t + h e_i) - f(t - h e_i)) / 2h, one weight at a time."""
    grad = np.empty_like(theta)
    for i in range(theta.size):
        step = h * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += step
        down[i] -= step
        grad[i] = (f(up) - f(down)) / (2 * step)
    return grad


def loss_at(net: MLP, X, y):
    def f(theta):
        net.set_parameters(theta)
        return net.loss(X, y)
    return f


def assert_close_gradient(analytic: np.ndarray, numeric: np.ndarray, rtol: float = 1e-6) -> None:
    scale = np.abs(numeric).max()
    assert scale > 0
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=rtol * scale)


def random_problem(widths, activation, loss, l2, seed):
    """A network with random weights (biases too) and inputs whose pre-activations all keep
    a distance of at least 1e-3 from the kink at 0 (relu, leaky_relu)."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        net = MLP(widths, activation, loss, l2=l2, seed=int(rng.integers(1 << 30)))
        net.set_parameters(rng.normal(0.0, 0.7, net.size))
        X = rng.normal(0.0, 1.0, (7, widths[0]))
        forward = net.forward(X)
        margin = min(float(np.abs(z).min()) for z in forward.z[1:])
        if activation not in ("relu", "leaky_relu") or margin > 1e-3:
            break
    else:  # pragma: no cover
        raise AssertionError("no sample away from the kinks")
    k = widths[-1]
    if loss == "cross_entropy":
        y = rng.integers(0, max(k, 2), 7)
    else:
        y = rng.normal(0.5, 0.5, (7, k)) if k > 1 else rng.normal(0.5, 0.5, 7)
    return net, X, y


# -- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("widths", [(3, 5, 4, 3, 2), (2, 6, 1), (4, 3, 3, 3, 3, 3)])
@pytest.mark.parametrize("l2", [0.0, 0.05])
@pytest.mark.parametrize("loss", M.LOSSES)
@pytest.mark.parametrize("activation", M.ACTIVATIONS)
def test_backprop_gradient_matches_finite_differences(activation, loss, l2, widths):
    net, X, y = random_problem(widths, activation, loss, l2, seed=len(widths) * 7 + int(l2 > 0))
    theta = net.parameters()
    result = net.backward(X, y)
    numeric = numeric_gradient(loss_at(net, X, y), theta)
    assert_close_gradient(result.gradient, numeric)
    net.set_parameters(theta)
    assert result.loss == pytest.approx(net.loss(X, y), rel=1e-14)


@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh"])
def test_squared_loss_with_other_output_activations(output):
    _, X, y = random_problem((3, 4, 4, 2), "tanh", "squared", 0.01, seed=3)
    net = MLP((3, 4, 4, 2), "tanh", "squared", l2=0.01, output=output)
    theta = np.random.default_rng(4).normal(0.0, 0.7, net.size)
    numeric = numeric_gradient(loss_at(net, X, y), theta)
    net.set_parameters(theta)
    assert_close_gradient(net.backward(X, y).gradient, numeric)


def test_dropout_gradient_with_fixed_masks_matches_finite_differences():
    net, X, y = random_problem((3, 6, 5, 2), "tanh", "cross_entropy", 0.01, seed=5)
    net.dropout = 0.4
    theta = net.parameters()

    def f(t):
        net.set_parameters(t)
        return net.backward(X, y, dropout_rng=np.random.default_rng(11)).loss

    numeric = numeric_gradient(f, theta)
    net.set_parameters(theta)
    analytic = net.backward(X, y, dropout_rng=np.random.default_rng(11)).gradient
    assert_close_gradient(analytic, numeric)
    # Dropout only acts while training: evaluation ignores it.
    assert net.loss(X, y) == net.loss(X, y)
    assert not np.isclose(net.loss(X, y), f(theta))


def test_matrix_form_of_the_gradient_eqs_41_42_45():
    """G(l) = mean of delta(l) [1, a(l-1)]^T + 2 lambda W(l) with the bias column unregularised,
    written out with explicit sums over examples and indices as in eqs. 41-42."""
    lam = 0.03
    net, X, y = random_problem((3, 4, 2), "sigmoid", "squared", lam, seed=9)
    r = net.backward(X, y)
    n = X.shape[0]
    for l in (1, 2):
        W, G = net.weights[l], r.G[l]
        assert G.shape == W.shape == (net.widths[l], net.widths[l - 1] + 1)
        for i in range(1, net.widths[l] + 1):
            assert G[i - 1, 0] == pytest.approx(r.delta[l][:, i - 1].sum() / n, rel=1e-12)  # 41
            for j in range(1, net.widths[l - 1] + 1):
                expected = (r.delta[l][:, i - 1] * r.a[l - 1][:, j - 1]).sum() / n \
                    + 2 * lam * W[i - 1, j]  # eq. 42
                assert G[i - 1, j] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # eq. 36 for the top layer: delta(L) = 2 (a(L) - y) sigma'(z(L)), sigma' = a (1 - a).
    aL = r.a[2]
    np.testing.assert_allclose(r.delta[2], 2 * (aL - y) * aL * (1 - aL), rtol=1e-12)


def test_bias_weights_are_not_regularised():
    net, X, y = random_problem((2, 5, 4, 3), "tanh", "cross_entropy", 0.2, seed=1)
    plain = MLP(net.widths, "tanh", "cross_entropy", l2=0.0)
    theta = net.parameters()
    plain.set_parameters(theta)
    difference = net.backward(X, y).gradient - plain.backward(X, y).gradient
    bias = net.bias_mask
    assert bias.sum() == 5 + 4 + 3
    assert np.all(difference[bias] == 0.0)  # exactly zero: no L2 term at all for biases
    np.testing.assert_allclose(difference[~bias], 2 * 0.2 * theta[~bias], rtol=1e-9)
    # The L2 part of the loss does not see the biases.
    term = net.loss(X, y) - plain.loss(X, y)
    assert term == pytest.approx(0.2 * np.sum(theta[~bias] ** 2), rel=1e-12)
    moved = theta.copy()
    moved[bias] += np.random.default_rng(0).normal(0.0, 3.0, bias.sum())
    net.set_parameters(moved)
    plain.set_parameters(moved)
    assert net.loss(X, y) - plain.loss(X, y) == pytest.approx(term, rel=1e-12)


# -- softmax and cross-entropy -------------------------------------------------------------------

def test_softmax_jacobian_matches_eqs_56_57():
    z = np.array([0.3, -1.2, 2.0, 0.7])
    s = softmax(z)
    assert s.sum() == pytest.approx(1.0) and np.all(s > 0)  # eq. 55's properties
    numeric = np.empty((4, 4))  # [i, j] = d s_i / d z_j by central differences
    h = 1e-6
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        numeric[:, j] = (softmax(z + e) - softmax(z - e)) / (2 * h)
    for i in range(4):
        for j in range(4):
            seed = s[i] * (1 - s[i]) if i == j else -s[i] * s[j]  # eqs. 56 and 57
            assert numeric[i, j] == pytest.approx(seed, abs=1e-9)
    np.testing.assert_allclose(numeric, np.diag(s) - np.outer(s, s), atol=1e-9)
    # Large scores do not overflow.
    assert np.all(np.isfinite(softmax(np.array([1000.0, 0.0, -1000.0]))))


def test_softmax_cross_entropy_output_delta_is_s_minus_onehot():
    net, X, y = random_problem((3, 5, 4), "relu", "cross_entropy", 0.0, seed=2)
    r = net.backward(X, y)
    L = net.depth
    s = softmax(r.z[L])
    np.testing.assert_allclose(r.a[L], s, rtol=1e-13)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(r.delta[L], s - onehot, atol=1e-13)
    # The same from the chain rule with eqs. 56-57 and dl/da_i = -y_i / a_i (eq. 66).
    for t in range(X.shape[0]):
        jacobian = np.diag(s[t]) - np.outer(s[t], s[t])
        np.testing.assert_allclose(jacobian.T @ (-onehot[t] / s[t]), r.delta[L][t], atol=1e-12)
    # Loss of eq. 67: -log yhat_c, averaged.
    assert r.loss == pytest.approx(-np.mean(np.log(s[np.arange(len(y)), y])), rel=1e-12)


def test_single_output_cross_entropy_is_the_two_class_softmax():
    net, X, y = random_problem((2, 4, 1), "tanh", "cross_entropy", 0.0, seed=4)
    r = net.backward(X, y)
    z = r.z[2][:, 0]
    two = softmax(np.stack([np.zeros_like(z), z], axis=1))
    np.testing.assert_allclose(net.predict_proba(X), two, rtol=1e-12)
    np.testing.assert_allclose(r.delta[2][:, 0], two[:, 1] - y, atol=1e-13)
    assert r.loss == pytest.approx(-np.mean(np.log(two[np.arange(len(y)), y])), rel=1e-12)


# -- the stacked vector --------------------------------------------------------------------------

def test_stacked_vector_follows_eq_43():
    net = MLP((3, 4, 2), "tanh")
    P = 4 * (3 + 1) + 2 * (4 + 1)
    assert net.size == P
    net.set_parameters(np.arange(P, dtype=float))
    offset = 0
    for l in (1, 2):
        W = net.weights[l]
        m_in = net.widths[l - 1]
        for i in range(1, net.widths[l] + 1):  # w_i0, w_i1, ..., w_im, then row i + 1
            for j in range(m_in + 1):
                assert W[i - 1, j] == offset + (i - 1) * (m_in + 1) + j
        offset += W.size
    assert net.weights[0] is None
    with pytest.raises(ValueError):
        net.weights[1][0, 0] = 1.0  # read-only views
    # flatten / unflatten round trip, and the gradient vector in the same order (eq. 44).
    theta = np.random.default_rng(0).normal(size=P)
    matrices = unflatten(theta, net.widths)
    assert matrices[0] is None and [m.shape for m in matrices[1:]] == [(4, 4), (2, 5)]
    np.testing.assert_array_equal(flatten(matrices), theta)
    np.testing.assert_array_equal(flatten(matrices[1:]), theta)
    net.set_parameters(theta)
    r = net.backward(np.ones((2, 3)), np.array([[0.1, 0.2], [0.3, 0.4]]))
    np.testing.assert_array_equal(r.gradient, flatten(r.G))
    with pytest.raises(ValueError, match="26 weights"):
        unflatten(theta[:-1], net.widths)


# -- sizes and options ---------------------------------------------------------------------------

@pytest.mark.parametrize("widths, message", [
    ((2, 1), "1 to 8 hidden layers"),
    ((2,) + (4,) * 9 + (1,), "1 to 8 hidden layers"),
    ((2, 0, 1), "hidden layer 1 must be 1 to 256"),
    ((2, 8, 257, 1), "hidden layer 2 must be 1 to 256"),
    ((2, 8, 0), "output must be 1 to 256"),
    ((0, 8, 1), "input width"),
    ((2, 2.5, 1), "integers"),
    ((2, True, 1), "integers"),
    (5, "sequence"),
])
def test_unsupported_sizes_are_refused(widths, message):
    with pytest.raises(ValueError, match=message):
        MLP(widths)


def test_supported_extremes_and_bad_options():
    assert MLP((2,) + (1,) * 8 + (1,)).depth == 9
    assert MLP((2, 256, 256, 3), loss="cross_entropy").size == 256 * 3 + 256 * 257 + 3 * 257
    with pytest.raises(ValueError, match="activation"):
        MLP((2, 3, 1), "swish")
    with pytest.raises(ValueError, match="loss"):
        MLP((2, 3, 1), loss="hinge")
    with pytest.raises(ValueError, match="dropout"):
        MLP((2, 3, 1), dropout=1.0)
    with pytest.raises(ValueError, match="l2"):
        MLP((2, 3, 1), l2=-1)
    with pytest.raises(ValueError, match="softmax"):
        MLP((2, 3, 2), loss="cross_entropy", output="identity")
    data = DS.make_dataset("moons", 20)
    net = MLP((2, 3, 1))
    with pytest.raises(ValueError, match="method"):
        Trainer(net, data, method="lbfgs")
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(net, data, batch_size=21)
    with pytest.raises(ValueError, match="inputs must be"):
        net.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match="labels"):
        MLP((2, 3, 2), loss="cross_entropy").targets(np.array([0, 2]))


# -- optimizers ----------------------------------------------------------------------------------

def reference_steps(method, g_of, theta, lr, steps):
    """The update rules as their papers write them, with the constants of DEFAULTS."""
    c = DEFAULTS[method]
    m = np.zeros_like(theta)
    s = np.zeros_like(theta)
    bias = MLP((2, 3, 3), "tanh", "cross_entropy").bias_mask
    for t in range(1, steps + 1):
        g = g_of(theta)
        if method == "sgd":
            theta = theta - lr * g
        elif method == "momentum":
            m = c["beta"] * m + g
            theta = theta - lr * m
        elif method == "nesterov":
            m = c["beta"] * m + g
            theta = theta - lr * (g + c["beta"] * m)
        elif method == "adagrad":
            s = s + g * g
            theta = theta - lr * g / (np.sqrt(s) + c["eps"])
        elif method == "rmsprop":
            s = c["rho"] * s + (1 - c["rho"]) * g * g
            theta = theta - lr * g / (np.sqrt(s) + c["eps"])
        else:
            if method == "adamw":  # decoupled decay, not on the biases
                theta = theta - lr * c["weight_decay"] * np.where(bias, 0.0, theta)
            m = c["beta1"] * m + (1 - c["beta1"]) * g
            s = c["beta2"] * s + (1 - c["beta2"]) * g * g
            m_hat, v_hat = m / (1 - c["beta1"] ** t), s / (1 - c["beta2"] ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + c["eps"])
    return theta


@pytest.mark.parametrize("method", METHODS)
def test_optimizer_steps_follow_their_update_rules(method):
    data = DS.make_dataset("blobs", 30, seed=2)
    net = MLP((2, 3, 3), "tanh", "cross_entropy", l2=0.01, seed=1)
    start = net.parameters()
    probe = MLP((2, 3, 3), "tanh", "cross_entropy", l2=0.01)

    def g_of(theta):
        probe.set_parameters(theta)
        return probe.backward(data.X, data.y).gradient

    expected = reference_steps(method, g_of, start, 0.05, 3)
    trainer = Trainer(net, data, method=method, lr=0.05, max_steps=3)
    records = [trainer.step() for _ in range(3)]
    assert [r.step for r in records] == [1, 2, 3]
    np.testing.assert_allclose(net.parameters(), expected, rtol=1e-12, atol=1e-15)
    assert trainer.step() is None and trainer.status == "finished: 3 steps"


# -- training ------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_xor_is_learned_within_2000_steps(activation):
    data = DS.make_dataset("xor", 200, noise=0.0, seed=0)
    net = MLP((2, 8, 1), activation, "squared", seed=0)  # output 0/1, threshold at 0.5
    trainer = Trainer(net, data, method="sgd", lr=0.1, max_steps=2000)
    reached = None
    while trainer.step() is not None:
        if trainer.steps % 50 == 0 and net.evaluate(data.X, data.y).accuracy > 0.95:
            reached = trainer.steps
            break
    assert reached is not None and reached <= 2000, trainer.status
    steps, losses = trainer.train_history
    assert steps[-1] == reached and losses[-1] < losses[0]


def test_digits_are_scikit_learns_whether_read_from_its_file_or_by_its_loader(monkeypatch):
    from sklearn import datasets

    reference = datasets.load_digits()
    for table in (True, False):  # the file read directly, then scikit-learn's own loader
        if not table:
            monkeypatch.setattr(DS, "_digits_table", lambda: None)
        digits = DS.load_digits()
        np.testing.assert_array_equal(digits.X, reference.data / 16.0)
        np.testing.assert_array_equal(digits.y, reference.target)


def test_digits_train_to_over_80_percent_validation_accuracy():
    digits = DS.load_digits()
    assert digits.X.shape == (1797, 64) and digits.y.shape == (1797,)
    assert digits.classes == 10 and digits.X.min() == 0.0 and digits.X.max() == 1.0
    train, validation = DS.split(digits, 0.2, seed=0)
    net = MLP((64, 32, 10), "relu", "cross_entropy", l2=1e-4, seed=0)
    trainer = Trainer(net, train, validation, method="adam", lr=0.01, batch_size=64,
                      max_steps=300, eval_every=25, patience=None, seed=0)
    assert trainer.run(300) == 300
    result = trainer.evaluate()
    assert result.accuracy > 0.8
    confusion = trainer.confusion_matrix(validation.X, validation.y)
    assert confusion.shape == (10, 10) and confusion.sum() == len(validation)
    assert np.trace(confusion) / len(validation) == pytest.approx(result.accuracy)
    assert trainer.epoch == math.ceil(300 / math.ceil(len(train) / 64))
    assert len(trainer.validation_history[0]) == 12


def test_validation_stopping_rule_restores_the_best_weights():
    data = DS.make_dataset("moons", 240, noise=0.35, seed=3)
    train, validation = DS.split(data, 0.8, seed=0)  # 48 training points: overfits
    net = MLP((2, 64, 64, 1), "relu", "cross_entropy", seed=0)
    trainer = Trainer(net, train, validation, method="adam", lr=0.02, max_steps=3000,
                      patience=5, eval_every=10)
    trainer.run(3000)
    assert trainer.status.startswith("stopped early at step"), trainer.status
    steps, losses = trainer.validation_history
    best = int(np.argmin(losses))
    assert trainer.best_step == steps[best] and len(steps) - 1 - best == 5
    assert net.loss(validation.X, validation.y) == pytest.approx(losses[best], rel=1e-12)
    assert trainer.step() is None


def test_huge_learning_rate_diverges_and_keeps_finite_weights():
    data = DS.make_dataset("moons", 200, seed=0)
    net = MLP((2, 8, 8, 1), "tanh", "squared", output="identity", seed=0)
    trainer = Trainer(net, data, method="sgd", lr=1e3, max_steps=500)
    trainer.run(500)
    assert trainer.status.startswith("diverged at step ")
    k = int(trainer.status.rsplit(" ", 1)[1])
    steps, losses = trainer.train_history
    assert steps.tolist() == list(range(1, k))
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(net.parameters()))
    assert trainer.step() is None
    assert np.all(np.isfinite(trainer.decision_map((-2, 2), (-2, 2), 16)))
    assert all(np.all(np.isfinite(m)) for m in trainer.hidden_activation_maps((-2, 2), (-2, 2), 8))


def test_mini_batches_and_dropout_train_reproducibly():
    data = DS.make_dataset("circles", 300, noise=0.05, seed=1)

    def run():
        net = MLP((2, 16, 16, 1), "relu", "cross_entropy", dropout=0.2, seed=4)
        trainer = Trainer(net, data, method="adam", lr=0.01, batch_size=32, max_steps=400,
                          seed=7)
        trainer.run(400)
        return trainer

    a, b = run(), run()
    np.testing.assert_array_equal(a.train_history[1], b.train_history[1])
    np.testing.assert_array_equal(a.network.parameters(), b.network.parameters())
    assert a.epoch == math.ceil(400 / 10)  # 300 points, batches of 32: 10 per epoch
    assert a.evaluate(data.X, data.y).accuracy > 0.9
    # Predictions use no dropout: deterministic.
    np.testing.assert_array_equal(a.predict_proba(data.X), a.predict_proba(data.X))


def test_decision_and_activation_maps():
    data = DS.make_dataset("blobs", 90, seed=0)
    net = MLP((2, 5, 4, 3), "tanh", "cross_entropy", seed=0)
    Trainer(net, data, method="adam", lr=0.05, max_steps=100).run(100)
    x_range, y_range, n = (-2.0, 2.0), (-1.0, 3.0), 24
    points = M.grid_points(x_range, y_range, n)
    proba = net.predict_proba(points)
    image = net.decision_map(x_range, y_range, n)
    assert image.shape == (n, n) and image.dtype == np.float64
    np.testing.assert_allclose(image, proba[:, 1].reshape(n, n))
    assert image[0, -1] == pytest.approx(net.predict_proba(np.array([[2.0, -1.0]]))[0, 1])
    assert net.decision_map(x_range, y_range, n, class_index=None).shape == (n, n, 3)
    maps = net.hidden_activation_maps(x_range, y_range, n)
    assert [m.shape for m in maps] == [(5, n, n), (4, n, n)]
    forward = net.forward(points)
    for l, m in enumerate(maps, start=1):
        np.testing.assert_allclose(m, forward.a[l].T.reshape(-1, n, n))
    with pytest.raises(ValueError, match="2 inputs"):
        MLP((3, 4, 1)).decision_map(x_range, y_range, n)
    with pytest.raises(ValueError, match="grid size"):
        net.decision_map(x_range, y_range, 1)


def test_squared_loss_single_output_thresholds_at_one_half():
    net = MLP((1, 1, 1), "relu", "squared", output="identity")
    net.set_parameters(np.array([0.0, 1.0, 0.0, 1.0]))  # yhat = relu(x)
    X = np.array([[0.2], [0.49], [0.5], [0.9], [1.7]])
    np.testing.assert_array_equal(net.predict(X), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(net.predict_proba(X)[:, 1], [0.2, 0.49, 0.5, 0.9, 1.0])
    result = net.evaluate(X, np.array([0, 0, 1, 1, 1]))
    assert result.accuracy == 1.0


# -- data sets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DS.TOY_DATASETS)
def test_toy_datasets_are_deterministic_and_shaped(name):
    a = DS.make_dataset(name, 101, noise=0.1, seed=5)
    b = DS.make_dataset(name, 101, noise=0.1, seed=5)
    c = DS.make_dataset(name, 101, noise=0.1, seed=6)
    assert a.X.shape == (101, 2) and a.X.dtype == np.float64 and a.y.dtype == np.int64
    assert a.name == name and a.classes == (3 if name == "blobs" else 2) and len(a) == 101
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    counts = np.bincount(a.y, minlength=a.classes)
    assert counts.max() - counts.min() <= 1
    assert np.all(np.abs(DS.make_dataset(name, 500).X) < 2.0)
    with pytest.raises(ValueError):
        a.X[0, 0] = 1.0  # read-only
    (x0, _), (_, y1) = a.bounds()
    assert x0 < a.X[:, 0].min() and y1 > a.X[:, 1].max()


def test_xor_labels_follow_the_quadrants_without_noise():
    data = DS.make_dataset("xor", 400, seed=1)
    x, y = data.X[:, 0], data.X[:, 1]
    np.testing.assert_array_equal(data.y, (x * y < 0).astype(int))
    assert np.abs(data.X).min() >= 0.05


def test_dataset_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown data set"):
        DS.make_dataset("swirl", 10)
    with pytest.raises(ValueError, match="n must be"):
        DS.make_dataset("moons", 1)
    with pytest.raises(ValueError, match="n must be"):
        DS.make_dataset("moons", DS.MAX_POINTS + 1)
    with pytest.raises(ValueError, match="noise"):
        DS.make_dataset("moons", 10, noise=-0.1)


def test_split_is_deterministic_and_disjoint():
    data = DS.make_dataset("spirals", 200, noise=0.05, seed=0)
    train, validation = DS.split(data, 0.25, seed=3)
    again = DS.split(data, 0.25, seed=3)
    assert len(train) == 150 and len(validation) == 50
    np.testing.assert_array_equal(train.X, again[0].X)
    np.testing.assert_array_equal(validation.y, again[1].y)
    rows = {tuple(p) for p in train.X} | {tuple(p) for p in validation.X}
    assert len(rows) == 200 == len({tuple(p) for p in data.X})
    assert not np.array_equal(DS.split(data, 0.25, seed=4)[1].X, validation.X)
    with pytest.raises(ValueError, match="between 0 and 1"):
        DS.split(data, 1.0)
