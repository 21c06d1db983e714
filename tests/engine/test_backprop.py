"""engine.backprop: the 3-unit ReLU network of seed 003 (eqs. 15-27), forward and backward.

The expected numbers of the hand-worked case are computed below in comments from the seed's
equations; the finite-difference checks use a plain-Python loss written here, independent of
the engine. Seed 003 gives no worked numeric example for this network, so there is none to
reproduce.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.backprop import (
    INCOMING,
    NODES,
    UNITS,
    WEIGHT_NAMES,
    LossGrid,
    Step,
    backward_steps,
    finite_difference_gradient,
    format_number,
    forward_steps,
    gradient_step,
    loss_over_two_weights,
    steps,
    three_unit_pass,
)

# Both hidden units and the output alive (worked out in test_hand_worked_case).
HAND = {"w10_1": 0.1, "w11_1": 0.2, "w12_1": 0.3,
        "w20_1": -0.5, "w21_1": 0.4, "w22_1": 0.25,
        "w10_2": 0.2, "w11_2": 1.0, "w12_2": -0.5}
X1, X2, Y = 1.0, 2.0, 2.0


def plain_loss(x1, x2, y, w):
    """Seed 003 eqs. 17-20 in plain Python, independent of the engine."""
    a1 = max(0.0, w["w10_1"] + w["w11_1"] * x1 + w["w12_1"] * x2)
    a2 = max(0.0, w["w20_1"] + w["w21_1"] * x1 + w["w22_1"] * x2)
    y_hat = max(0.0, w["w10_2"] + w["w11_2"] * a1 + w["w12_2"] * a2)
    return (y_hat - y) ** 2


def plain_central_difference(x1, x2, y, w, name, h=1e-6):
    plus, minus = dict(w), dict(w)
    plus[name] += h
    minus[name] -= h
    return (plain_loss(x1, x2, y, plus) - plain_loss(x1, x2, y, minus)) / (plus[name] - minus[name])


def pre_activations(x1, x2, w):
    z1 = w["w10_1"] + w["w11_1"] * x1 + w["w12_1"] * x2
    z2 = w["w20_1"] + w["w21_1"] * x1 + w["w22_1"] * x2
    z3 = w["w10_2"] + w["w11_2"] * max(z1, 0.0) + w["w12_2"] * max(z2, 0.0)
    return z1, z2, z3


# -- the record ---------------------------------------------------------------------------------

def test_hand_worked_case():
    r = three_unit_pass(X1, X2, Y, HAND)
    approx = lambda v: pytest.approx(v, rel=1e-12, abs=1e-15)
    # eq. 17: z1_1 = 0.1 + 0.2*1 + 0.3*2 = 0.9, a1_1 = max(0, 0.9) = 0.9
    assert r.z1_1 == approx(0.9) and r.a1_1 == approx(0.9)
    # eq. 17: z2_1 = -0.5 + 0.4*1 + 0.25*2 = 0.4, a2_1 = 0.4
    assert r.z2_1 == approx(0.4) and r.a2_1 == approx(0.4)
    # eq. 18: z1_2 = 0.2 + 1.0*0.9 + (-0.5)*0.4 = 0.2 + 0.9 - 0.2 = 0.9; eq. 19: y_hat = 0.9
    assert r.z1_2 == approx(0.9) and r.y_hat == approx(0.9)
    # eq. 20: loss = (0.9 - 2)^2 = 1.21
    assert r.loss == approx(1.21)
    # eq. 22: dl/dy_hat = 2 (0.9 - 2) = -2.2; eq. 23: delta1_2 = -2.2 * 1{0.9 > 0} = -2.2
    assert r.dL_dyhat == approx(-2.2) and r.delta1_2 == approx(-2.2)
    # eq. 25: dl/da1_1 = -2.2 * 1.0 = -2.2, dl/da2_1 = -2.2 * (-0.5) = 1.1
    assert r.dL_da1_1 == approx(-2.2) and r.dL_da2_1 == approx(1.1)
    # eq. 26: delta1_1 = -2.2 * 1{0.9 > 0} = -2.2, delta2_1 = 1.1 * 1{0.4 > 0} = 1.1
    assert r.delta1_1 == approx(-2.2) and r.delta2_1 == approx(1.1)
    expected = {
        # eq. 27: delta1_1 * (1, x1, x2) = -2.2 * (1, 1, 2)
        "w10_1": -2.2, "w11_1": -2.2, "w12_1": -4.4,
        # eq. 27: delta2_1 * (1, x1, x2) = 1.1 * (1, 1, 2)
        "w20_1": 1.1, "w21_1": 1.1, "w22_1": 2.2,
        # eq. 24: delta1_2 * (1, a1_1, a2_1) = -2.2 * (1, 0.9, 0.4)
        "w10_2": -2.2, "w11_2": -1.98, "w12_2": -0.88,
    }
    assert tuple(r.grad) == WEIGHT_NAMES
    for name, value in expected.items():
        assert r.grad[name] == approx(value), name
    assert (r.x1, r.x2, r.y) == (X1, X2, Y)
    assert dict(r.weights) == HAND
    assert r.dead == ()
    assert not any(r.is_dead(unit) for unit in UNITS)
    assert r.z("2_1") == r.z2_1


def test_record_is_read_only():
    r = three_unit_pass(X1, X2, Y, HAND)
    with pytest.raises(TypeError):
        r.grad["w10_1"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        r.weights["w10_1"] = 0.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        r.loss = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("seed", range(8))
def test_gradients_match_central_differences(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    while checked < 5:
        values = rng.normal(0.0, 1.0, len(WEIGHT_NAMES))
        w = {name: float(v) for name, v in zip(WEIGHT_NAMES, values)}
        x1, x2 = (float(v) for v in rng.uniform(-2.0, 2.0, 2))
        y = float(rng.uniform(-1.0, 3.0))
        zs = pre_activations(x1, x2, w)
        if min(abs(z) for z in zs) < 1e-4:
            continue  # too near a kink for differences of step 1e-6
        if zs[2] < 0.0:
            continue  # a dead output zeroes every gradient: tested on its own below
        r = three_unit_pass(x1, x2, y, w)
        assert r.loss == pytest.approx(plain_loss(x1, x2, y, w), rel=1e-14, abs=1e-300)
        module_fd = finite_difference_gradient(x1, x2, y, w)
        scale = max(1e-3, max(abs(g) for g in r.grad.values()))
        for name in WEIGHT_NAMES:
            fd = plain_central_difference(x1, x2, y, w, name)
            assert abs(r.grad[name] - fd) <= 1e-6 * max(abs(r.grad[name]), scale), name
            assert abs(module_fd[name] - fd) <= 1e-6 * max(abs(fd), scale), name
        checked += 1


def test_finite_difference_gradient_is_exact_on_a_quadratic_piece():
    # Away from kinks the loss is quadratic in each single weight, so central differences
    # match backprop up to rounding only.
    r = three_unit_pass(X1, X2, Y, HAND)
    fd = finite_difference_gradient(X1, X2, Y, HAND, h=1e-3)
    assert tuple(fd) == WEIGHT_NAMES
    for name in WEIGHT_NAMES:
        assert fd[name] == pytest.approx(r.grad[name], rel=1e-9)
    with pytest.raises(ValueError, match="h must be positive"):
        finite_difference_gradient(X1, X2, Y, HAND, h=0.0)


def test_dead_hidden_unit_has_exactly_zero_gradients():
    w = dict(HAND, w20_1=-2.0)  # z2_1 = -2 + 0.4 + 0.5 = -1.1 <= 0
    r = three_unit_pass(X1, X2, Y, w)
    assert r.z2_1 < 0.0 and r.a2_1 == 0.0
    assert r.dead == ("2_1",) and r.is_dead("2_1")
    assert r.delta2_1 == 0.0
    for name in INCOMING["2_1"]:
        assert r.grad[name] == 0.0, name
    # Unit 2's activation is 0, so its outgoing weight has no gradient either (eq. 24).
    assert r.grad["w12_2"] == 0.0
    # The live unit still learns: z1_2 = 0.2 + 0.9 = 1.1, delta1_2 = 2 (1.1 - 2) = -1.8.
    assert r.delta1_2 == pytest.approx(-1.8, rel=1e-12)
    assert r.grad["w12_1"] == pytest.approx(-3.6, rel=1e-12)


def test_pre_activation_exactly_zero_counts_as_dead():
    w = dict(HAND, w20_1=-1.0, w21_1=0.5)  # z2_1 = -1 + 0.5*1 + 0.25*2 = 0 exactly
    r = three_unit_pass(X1, X2, Y, w)
    assert r.z2_1 == 0.0
    assert r.is_dead("2_1")  # sigma'(0) = 0 (seed 003 eq. 16)
    assert r.delta2_1 == 0.0
    for name in INCOMING["2_1"]:
        assert r.grad[name] == 0.0, name
    assert r.dL_da2_1 != 0.0  # the error arrives, the ReLU stops it


def test_dead_output_unit_zeroes_every_gradient():
    w = dict(HAND, w10_2=-5.0)  # z1_2 = -5 + 0.9 - 0.2 = -4.3
    r = three_unit_pass(X1, X2, Y, w)
    assert r.y_hat == 0.0 and r.loss == pytest.approx(Y**2)
    assert r.dead == ("1_2",)
    assert r.dL_dyhat == pytest.approx(-4.0) and r.delta1_2 == 0.0
    assert all(g == 0.0 for g in r.grad.values())
    assert all(math.copysign(1.0, g) == 1.0 for g in r.grad.values())  # no -0.0 shown


@pytest.mark.parametrize("bad, message", [
    ({k: v for k, v in HAND.items() if k != "w12_1"}, "'w12_1'"),
    (dict(HAND, w13_1=0.0), "'w13_1'"),
    (dict(HAND, w11_2=float("nan")), "'w11_2'"),
    (dict(HAND, w20_1=float("inf")), "'w20_1'"),
    (dict(HAND, w10_2="0.5"), "'w10_2'"),
    (dict(HAND, w21_1=None), "'w21_1'"),
])
def test_bad_weights_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        three_unit_pass(X1, X2, Y, bad)
    with pytest.raises(ValueError, match=message):
        gradient_step(bad, HAND, 0.1)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="x1"):
        three_unit_pass(float("nan"), X2, Y, HAND)
    with pytest.raises(ValueError, match="y"):
        three_unit_pass(X1, X2, float("inf"), HAND)
    with pytest.raises(TypeError, match="weights"):
        three_unit_pass(X1, X2, Y, [0.0] * 9)  # type: ignore[arg-type]


# -- the steps ----------------------------------------------------------------------------------

def test_forward_steps_follow_the_seed():
    r = three_unit_pass(X1, X2, Y, HAND)
    fwd = forward_steps(r)
    assert [s.quantity for s in fwd] == ["z1_1", "a1_1", "z2_1", "a2_1", "z1_2", "y_hat", "loss"]
    assert [s.equation for s in fwd] == ["eq. 17"] * 4 + ["eq. 18", "eq. 19", "eq. 20"]
    assert [s.node for s in fwd] == ["1_1", "1_1", "2_1", "2_1", "1_2", "1_2", "loss"]
    for s in fwd:
        assert isinstance(s, Step) and s.phase == "forward" and s.key is None
        assert s.value == getattr(r, s.quantity)
        assert s.substituted.endswith(f"= {format_number(s.value)}")
        assert s.symbolic
    # The operands are the record's numbers.
    assert fwd[0].substituted == "= 0.1 + 0.2 · 1 + 0.3 · 2 = 0.9"
    assert fwd[4].substituted == "= 0.2 + 1 · 0.9 + (-0.5) · 0.4 = 0.9"
    assert fwd[6].substituted == "= (0.9 - 2)² = 1.21"
    assert fwd[0].symbolic == "z₁⁽¹⁾ = w₁₀⁽¹⁾ + w₁₁⁽¹⁾ · x₁ + w₁₂⁽¹⁾ · x₂"


def test_backward_steps_follow_the_seed():
    r = three_unit_pass(X1, X2, Y, HAND)
    bwd = backward_steps(r)
    assert [(s.quantity, s.key) for s in bwd] == (
        [("dL_dyhat", None), ("delta1_2", None)]
        + [("grad", name) for name in ("w10_2", "w11_2", "w12_2")]
        + [("dL_da1_1", None), ("dL_da2_1", None), ("delta1_1", None), ("delta2_1", None)]
        + [("grad", name) for name in WEIGHT_NAMES[:6]])
    assert [s.equation for s in bwd] == (
        ["eq. 22", "eq. 23"] + ["eq. 24"] * 3 + ["eq. 25"] * 2 + ["eq. 26"] * 2
        + ["eq. 27"] * 6)
    assert {s.key for s in bwd if s.quantity == "grad"} == set(WEIGHT_NAMES)
    for s in bwd:
        assert s.phase == "backward" and s.node in NODES
        expected = r.grad[s.key] if s.quantity == "grad" else getattr(r, s.quantity)
        assert s.value == expected
        assert s.substituted.endswith(f"= {format_number(expected)}")
        if s.quantity == "grad":
            assert s.edge == s.key and s.key in INCOMING[s.node]
    by_quantity = {(s.quantity, s.key): s for s in bwd}
    assert by_quantity["dL_da1_1", None].edge == "w11_2"
    assert by_quantity["delta1_1", None].symbolic.startswith("δ₁⁽¹⁾ = δ₁⁽²⁾ · w₁₁⁽²⁾ · σ′(z₁⁽¹⁾)")
    assert by_quantity["delta1_1", None].substituted.endswith("= (-2.2) · 1 · 1 = -2.2")
    assert by_quantity["grad", "w11_2"].substituted == "= (-2.2) · 0.9 = -1.98"
    assert by_quantity["grad", "w22_1"].substituted == "= 1.1 · 2 = 2.2"
    assert steps(r) == forward_steps(r) + bwd


def test_steps_show_a_dead_unit():
    r = three_unit_pass(X1, X2, Y, dict(HAND, w20_1=-2.0))
    step = next(s for s in backward_steps(r) if s.quantity == "delta2_1")
    assert "σ′(-1.1)" in step.substituted and step.substituted.endswith("· 0 = 0")


# -- gradient descent and the loss surface ------------------------------------------------------

def test_gradient_step_descends():
    r = three_unit_pass(X1, X2, Y, HAND)
    new = gradient_step(HAND, r.grad, 0.01)
    assert tuple(new) == WEIGHT_NAMES
    for name in WEIGHT_NAMES:
        assert new[name] == HAND[name] - 0.01 * r.grad[name]  # seed 003 eq. 6
    assert three_unit_pass(X1, X2, Y, new).loss < r.loss
    assert gradient_step(HAND, r.grad, 0.0) == HAND
    with pytest.raises(ValueError, match="lr"):
        gradient_step(HAND, r.grad, -0.1)
    with pytest.raises(ValueError, match="grad"):
        gradient_step(HAND, {k: v for k, v in r.grad.items() if k != "w10_1"}, 0.1)


def test_loss_over_two_weights_matches_the_pass():
    grid = loss_over_two_weights(X1, X2, Y, HAND, "w11_2", "w12_1", (-1.0, 2.0), (-0.5, 1.5), 31)
    assert isinstance(grid, LossGrid)
    assert grid.z.shape == (31, 31) and grid.z.dtype == np.float64
    assert grid.z.flags.c_contiguous
    assert grid.x[0] == -1.0 and grid.x[-1] == 2.0 and grid.y[0] == -0.5 and grid.y[-1] == 1.5
    assert grid.a is grid.x and grid.b is grid.y and grid.loss is grid.z
    for i, j in [(0, 0), (30, 0), (0, 30), (7, 19), (20, 11), (30, 30)]:
        w = dict(HAND, w11_2=float(grid.x[i]), w12_1=float(grid.y[j]))
        assert grid.z[j, i] == pytest.approx(three_unit_pass(X1, X2, Y, w).loss, rel=1e-12)


@pytest.mark.parametrize("args, message", [
    (("w11_2", "w11_2", (0, 1), (0, 1), 5), "differ"),
    (("w99_2", "w11_2", (0, 1), (0, 1), 5), "name_a"),
    (("w11_2", "w12_2", (1, 0), (0, 1), 5), "range_a"),
    (("w11_2", "w12_2", (0, 1), (0, float("nan")), 5), "range_b"),
    (("w11_2", "w12_2", (0, 1), (0, 1), 1), "between 2"),
])
def test_loss_over_two_weights_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        loss_over_two_weights(X1, X2, Y, HAND, *args)
    with pytest.raises(TypeError, match="integer"):
        loss_over_two_weights(X1, X2, Y, HAND, "w11_2", "w12_2", (0, 1), (0, 1), 2.5)
