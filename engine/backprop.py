"""Backpropagation through the 3-unit ReLU network of seed 003, one equation at a time.

Seed 003 ("Machine Learning is Calculus Plus Linear Algebra", Kautz), section "Example: a
3-Unit Network": inputs x1, x2 and the constant x0 = 1 (layer 0), two ReLU units (layer 1),
one ReLU output unit (layer 2), nine weights and no regularization. ``wij_l`` is the weight
from unit j of layer l-1 to unit i of layer l (eq. 14), j = 0 being the constant input; in
layer 2, j = 1, 2 are the hidden activations a1_1, a2_1. Units are named ``"i_l"``
(``"1_1"``, ``"2_1"``, ``"1_2"``), as the suffixes of ``z1_1``, ``a1_1``, ``delta1_1``.

Forward pass: sigma(z) = max(0, z) (eq. 15); the hidden units (eq. 17), the output
pre-activation (eq. 18; the seed prints its last weight as w12 without the layer index) and
y_hat = sigma(z1_2) (eq. 19); the loss l = (y_hat - y)^2 (eq. 20).

Backward pass: delta_i^(l) = dl/dz_i^(l) (eq. 21), with sigma'(z) = 1{z > 0} (eq. 16), so
sigma'(0) = 0 ("a choice of subgradient", after eq. 9). dl/dy_hat = 2 (y_hat - y) (eq. 22);
delta1_2 = 2 (y_hat - y) 1{z1_2 > 0} (eq. 23); the layer-2 gradients (eq. 24); the error
sent back to the hidden activations, dl/da_i^(1) = delta1_2 w1i_2 (eq. 25); the hidden
deltas (eq. 26) and the layer-1 gradients (eq. 27). One gradient-descent step is
W <- W - eta dl/dW (eq. 6), the weights in the order of eq. 43.

A unit with z <= 0 is *dead*: sigma' is 0 there, so its delta and the gradients of its
incoming weights are exactly 0.0 (not merely small). :func:`forward_steps` and
:func:`backward_steps` list the equations with their numbers substituted, for a view that
walks the network one equation at a time.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from engine._common import MAX_RESOLUTION, _check_range
from engine.surfaces import Grid, default_levels, level_curves

__all__ = [
    "INCOMING", "NODES", "UNITS", "WEIGHT_NAMES",
    "LossGrid", "LossSurface", "LossSurfaceRequest", "Step", "ThreeUnitRecord",
    "backward_steps", "compute_loss_surface", "finite_difference_gradient", "format_number",
    "forward_steps",
    "gradient_step", "loss_over_two_weights", "steps", "three_unit_pass",
]

WEIGHT_NAMES = ("w10_1", "w11_1", "w12_1", "w20_1", "w21_1", "w22_1", "w10_2", "w11_2", "w12_2")
"""The nine weights in the order of seed 003 eq. 43 (layer 1 unit by unit, then layer 2)."""

UNITS = ("1_1", "2_1", "1_2")
"""The ReLU units as ``"i_l"``: hidden units 1 and 2 of layer 1, the output unit of layer 2."""

NODES = ("x0", "x1", "x2") + UNITS + ("loss",)
"""Every node a step can belong to: the inputs (x0 = 1), the units and the loss."""

INCOMING: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "1_1": ("w10_1", "w11_1", "w12_1"),
    "2_1": ("w20_1", "w21_1", "w22_1"),
    "1_2": ("w10_2", "w11_2", "w12_2"),
})
"""The weights entering each unit (constant input first)."""


# -- checks -----------------------------------------------------------------------------------

def _finite(value: object, what: str) -> float:
    """``value`` as a finite float, or a ValueError naming ``what``."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number!r}")
    return number


def _check_weights(weights: Mapping[str, float], what: str = "weights") -> dict[str, float]:
    """The nine values as floats in the order of WEIGHT_NAMES; bad names or values raise."""
    if not isinstance(weights, Mapping):
        raise TypeError(f"{what} must map the names {', '.join(WEIGHT_NAMES)} to numbers")
    missing = [name for name in WEIGHT_NAMES if name not in weights]
    if missing:
        raise ValueError(f"{what}: missing {', '.join(map(repr, missing))} "
                         f"(expected {', '.join(WEIGHT_NAMES)})")
    unknown = [name for name in weights if name not in WEIGHT_NAMES]
    if unknown:
        raise ValueError(f"{what}: unknown {', '.join(map(repr, unknown))} "
                         f"(expected {', '.join(WEIGHT_NAMES)})")
    return {name: _finite(weights[name], f"{what}[{name!r}]") for name in WEIGHT_NAMES}


def _check_weight_name(name: str, what: str) -> str:
    if name not in WEIGHT_NAMES:
        raise ValueError(f"{what} must be one of {', '.join(WEIGHT_NAMES)}, got {name!r}")
    return name


# -- forward and backward pass ----------------------------------------------------------------

def _forward(x1, x2, y, w: Mapping):
    """Seed 003 eqs. 17-20 on floats or on broadcasting arrays of weights.

    Returns (z1_1, a1_1, z2_1, a2_1, z1_2, y_hat, loss).
    """
    z1_1 = w["w10_1"] + w["w11_1"] * x1 + w["w12_1"] * x2  # eq. 17
    a1_1 = np.maximum(z1_1, 0.0)  # eqs. 15, 17
    z2_1 = w["w20_1"] + w["w21_1"] * x1 + w["w22_1"] * x2  # eq. 17
    a2_1 = np.maximum(z2_1, 0.0)  # eqs. 15, 17
    z1_2 = w["w10_2"] + w["w11_2"] * a1_1 + w["w12_2"] * a2_1  # eq. 18
    y_hat = np.maximum(z1_2, 0.0)  # eq. 19
    residual = y_hat - y
    return z1_1, a1_1, z2_1, a2_1, z1_2, y_hat, residual * residual  # eq. 20


@dataclass(frozen=True, eq=False)
class ThreeUnitRecord:
    """Everything the forward and backward pass of seed 003's 3-unit network computed.

    All values are Python floats. ``delta*`` are dl/dz (seed 003 eq. 21), ``dL_d*`` the
    other partial derivatives of the loss l = (y_hat - y)^2.

    Attributes
    ----------
    x1, x2, y : float
        The training instance ((x1, x2), y).
    weights : Mapping[str, float]
        Read-only, in the order of :data:`WEIGHT_NAMES`.
    z1_1, a1_1, z2_1, a2_1 : float
        Pre-activations and activations of the hidden units (eq. 17).
    z1_2, y_hat : float
        The output unit's pre-activation (eq. 18) and activation y_hat = a1_2 (eq. 19).
    loss : float
        (y_hat - y)^2 (eq. 20).
    dL_dyhat : float
        2 (y_hat - y) (eq. 22).
    delta1_2 : float
        2 (y_hat - y) 1{z1_2 > 0} (eq. 23).
    dL_da1_1, dL_da2_1 : float
        The error sent back to the hidden activations, delta1_2 w11_2 and delta1_2 w12_2
        (eq. 25).
    delta1_1, delta2_1 : float
        The hidden deltas, dL_da 1{z > 0} (eq. 26).
    grad : Mapping[str, float]
        Read-only dl/dw for every weight name (eqs. 24 and 27).
    dead : tuple of str
        The units (of :data:`UNITS`) with z <= 0: sigma' is 0 there, so their delta and the
        gradients of their incoming weights (:data:`INCOMING`) are exactly 0.0. A dead output
        unit makes all nine gradients 0.
    """

    x1: float
    x2: float
    y: float
    weights: Mapping[str, float]
    z1_1: float
    a1_1: float
    z2_1: float
    a2_1: float
    z1_2: float
    y_hat: float
    loss: float
    dL_dyhat: float
    delta1_2: float
    dL_da1_1: float
    dL_da2_1: float
    delta1_1: float
    delta2_1: float
    grad: Mapping[str, float]
    dead: tuple[str, ...]

    def z(self, unit: str) -> float:
        """The pre-activation of ``unit`` (one of :data:`UNITS`)."""
        return getattr(self, f"z{_check_unit(unit)}")

    def is_dead(self, unit: str) -> bool:
        """True when ``unit`` has z <= 0, so sigma'(z) = 0 (seed 003 eq. 16)."""
        return _check_unit(unit) in self.dead


def _check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    return unit


def _relu_prime(z: float) -> float:
    """sigma'(z) = 1{z > 0} (seed 003 eq. 16), so 0 at z = 0."""
    return 1.0 if z > 0.0 else 0.0


def three_unit_pass(x1: float, x2: float, y: float,
                    weights: Mapping[str, float]) -> ThreeUnitRecord:
    """Run the forward pass (seed 003 eqs. 17-20) and backpropagation (eqs. 22-27).

    Parameters
    ----------
    x1, x2 : float
        The inputs (x0 = 1 is implicit).
    y : float
        The target.
    weights : Mapping[str, float]
        Exactly the nine names of :data:`WEIGHT_NAMES`.

    Returns
    -------
    ThreeUnitRecord

    Raises
    ------
    ValueError
        A weight name missing or unknown, or a value not a finite number (the message names
        the key).
    TypeError
        ``weights`` is not a mapping.
    """
    x1, x2, y = _finite(x1, "x1"), _finite(x2, "x2"), _finite(y, "y")
    w = _check_weights(weights)
    z1_1, a1_1, z2_1, a2_1, z1_2, y_hat, loss = (float(v) for v in _forward(x1, x2, y, w))

    dL_dyhat = 2.0 * (y_hat - y)  # eq. 22
    # Deltas multiply by sigma' = 0 or 1 (eqs. 16, 23, 26); "+ 0.0" turns a -0.0 into 0.0.
    delta1_2 = dL_dyhat * _relu_prime(z1_2) + 0.0  # eq. 23
    dL_da1_1 = delta1_2 * w["w11_2"]  # eq. 25
    dL_da2_1 = delta1_2 * w["w12_2"]  # eq. 25
    delta1_1 = dL_da1_1 * _relu_prime(z1_1) + 0.0  # eq. 26
    delta2_1 = dL_da2_1 * _relu_prime(z2_1) + 0.0  # eq. 26
    grad = {
        "w10_1": delta1_1, "w11_1": delta1_1 * x1, "w12_1": delta1_1 * x2,  # eq. 27
        "w20_1": delta2_1, "w21_1": delta2_1 * x1, "w22_1": delta2_1 * x2,  # eq. 27
        "w10_2": delta1_2, "w11_2": delta1_2 * a1_1, "w12_2": delta1_2 * a2_1,  # eq. 24
    }
    grad = {name: grad[name] + 0.0 for name in WEIGHT_NAMES}
    dead = tuple(unit for unit, z in zip(UNITS, (z1_1, z2_1, z1_2)) if not z > 0.0)
    return ThreeUnitRecord(
        x1=x1, x2=x2, y=y, weights=MappingProxyType(w),
        z1_1=z1_1, a1_1=a1_1, z2_1=z2_1, a2_1=a2_1, z1_2=z1_2, y_hat=y_hat, loss=loss,
        dL_dyhat=dL_dyhat, delta1_2=delta1_2, dL_da1_1=dL_da1_1, dL_da2_1=dL_da2_1,
        delta1_1=delta1_1, delta2_1=delta2_1, grad=MappingProxyType(grad), dead=dead)


# -- the equations, step by step --------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One equation of seed 003 with its numbers, for a view that walks the network.

    Attributes
    ----------
    phase : {"forward", "backward"}
    title : str
        The seed's heading for the group, e.g. "Step 5: Through hidden ReLUs".
    equation : str
        The equation number in seed 003, e.g. "eq. 26".
    symbolic : str
        The equation in the seed's notation (Unicode), e.g. "z₁⁽²⁾ = w₁₀⁽²⁾ + ...".
    substituted : str
        The right-hand side with the numbers put in and the result, e.g. "= 0.5 · 0.3 · 1 =
        0.15". Numbers are written by :func:`format_number`; negative operands in brackets.
    quantity : str
        The :class:`ThreeUnitRecord` attribute the step produces ("z1_1", ..., "delta2_1");
        "grad" for a weight's gradient, with the weight in ``key``.
    key : str or None
        The weight name when ``quantity`` is "grad".
    value : float
        The value produced (equal to the record's).
    node : str
        The node of :data:`NODES` the quantity belongs to.
    edge : str or None
        The weight whose edge the step involves: the weight of a gradient step, or the
        layer-2 weight the error travels back along (eq. 25).
    """

    phase: str
    title: str
    equation: str
    symbolic: str
    substituted: str
    quantity: str
    key: str | None
    value: float
    node: str
    edge: str | None = None


def format_number(value: float) -> str:
    """``value`` with six significant digits, as the steps write it ("0" for -0.0)."""
    value = float(value) + 0.0
    return f"{value:.6g}"


def _p(value: float) -> str:
    """An operand: negative numbers in brackets, so that "0.1 · (-2)" reads unambiguously."""
    text = format_number(value)
    return f"({text})" if text.startswith("-") else text


_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = {"1": "⁽¹⁾", "2": "⁽²⁾"}


def _sym(letter: str, name: str) -> str:
    """"w11_2" -> "w₁₁⁽²⁾", "z1_1" -> "z₁⁽¹⁾" (``name`` without its letter is "ij_l")."""
    index, layer = name.split("_")
    return f"{letter}{index.translate(_SUB)}{_SUP[layer]}"


def _w(name: str) -> str:
    return _sym("w", name[1:])


def forward_steps(record: ThreeUnitRecord) -> list[Step]:
    """The forward pass of ``record`` as seven steps: eqs. 17 (four), 18, 19 and 20.

    They produce, in order, z1_1, a1_1, z2_1, a2_1, z1_2, y_hat and loss.
    """
    r = record
    w = r.weights
    out: list[Step] = []
    layer1 = "Layer 1 (two units)"
    for i, z, a in (("1", r.z1_1, r.a1_1), ("2", r.z2_1, r.a2_1)):
        unit = f"{i}_1"
        w0, w1, w2 = INCOMING[unit]
        zs, as_ = _sym("z", unit), _sym("a", unit)
        out.append(Step(
            "forward", layer1, "eq. 17",
            f"{zs} = {_w(w0)} + {_w(w1)} · x₁ + {_w(w2)} · x₂",
            f"= {_p(w[w0])} + {_p(w[w1])} · {_p(r.x1)} + {_p(w[w2])} · {_p(r.x2)} "
            f"= {format_number(z)}",
            f"z{unit}", None, z, unit))
        out.append(Step(
            "forward", layer1, "eq. 17",
            f"{as_} = σ({zs}) = max(0, {zs})",
            f"= max(0, {format_number(z)}) = {format_number(a)}",
            f"a{unit}", None, a, unit))
    layer2 = "Layer 2 (one unit / output)"
    out.append(Step(
        "forward", layer2, "eq. 18",
        f"z₁⁽²⁾ = {_w('w10_2')} + {_w('w11_2')} · a₁⁽¹⁾ + {_w('w12_2')} · a₂⁽¹⁾",
        f"= {_p(w['w10_2'])} + {_p(w['w11_2'])} · {_p(r.a1_1)} + {_p(w['w12_2'])} · "
        f"{_p(r.a2_1)} = {format_number(r.z1_2)}",
        "z1_2", None, r.z1_2, "1_2"))
    out.append(Step(
        "forward", layer2, "eq. 19",
        "ŷ = a₁⁽²⁾ = σ(z₁⁽²⁾) = max(0, z₁⁽²⁾)",
        f"= max(0, {format_number(r.z1_2)}) = {format_number(r.y_hat)}",
        "y_hat", None, r.y_hat, "1_2"))
    out.append(Step(
        "forward", "Loss", "eq. 20",
        "ℓ = (ŷ − y)²",
        f"= ({format_number(r.y_hat)} - {_p(r.y)})² = {format_number(r.loss)}",
        "loss", None, r.loss, "loss"))
    return out


def _relu_prime_text(z: float) -> str:
    return f"σ′({format_number(z)})"


def backward_steps(record: ThreeUnitRecord) -> list[Step]:
    """The backward pass of ``record`` as fifteen steps, in the seed's order.

    dL_dyhat (eq. 22), delta1_2 (eq. 23), the gradients of w10_2, w11_2, w12_2 (eq. 24),
    dL_da1_1 and dL_da2_1 (eq. 25), delta1_1 and delta2_1 (eq. 26), then the gradients of
    w10_1, w11_1, w12_1, w20_1, w21_1, w22_1 (eq. 27).
    """
    r = record
    w, g = r.weights, r.grad
    out: list[Step] = []
    out.append(Step(
        "backward", "Step 1: Top derivative", "eq. 22",
        "∂ℓ/∂ŷ = 2(ŷ − y)",
        f"= 2 · ({format_number(r.y_hat)} - {_p(r.y)}) = {format_number(r.dL_dyhat)}",
        "dL_dyhat", None, r.dL_dyhat, "loss"))
    out.append(Step(
        "backward", "Step 2: Through the ReLU", "eq. 23",
        "δ₁⁽²⁾ = ∂ℓ/∂ŷ · σ′(z₁⁽²⁾) = 2(ŷ − y) · 1{z₁⁽²⁾ > 0}",
        f"= {_p(r.dL_dyhat)} · {_relu_prime_text(r.z1_2)} = {_p(r.dL_dyhat)} · "
        f"{format_number(_relu_prime(r.z1_2))} = {format_number(r.delta1_2)}",
        "delta1_2", None, r.delta1_2, "1_2"))
    title = "Step 3: Gradients for layer-2 weights"
    for name, source, sym in (("w10_2", None, None), ("w11_2", r.a1_1, "a₁⁽¹⁾"),
                              ("w12_2", r.a2_1, "a₂⁽¹⁾")):
        if source is None:
            symbolic = f"∂ℓ/∂{_w(name)} = δ₁⁽²⁾"
            substituted = f"= {format_number(g[name])}"
        else:
            symbolic = f"∂ℓ/∂{_w(name)} = δ₁⁽²⁾ · {sym}"
            substituted = f"= {_p(r.delta1_2)} · {_p(source)} = {format_number(g[name])}"
        out.append(Step("backward", title, "eq. 24", symbolic, substituted,
                        "grad", name, g[name], "1_2", name))
    title = "Step 4: Send error to hidden activations"
    for unit, name, value in (("1_1", "w11_2", r.dL_da1_1), ("2_1", "w12_2", r.dL_da2_1)):
        out.append(Step(
            "backward", title, "eq. 25",
            f"∂ℓ/∂{_sym('a', unit)} = δ₁⁽²⁾ · {_w(name)}",
            f"= {_p(r.delta1_2)} · {_p(w[name])} = {format_number(value)}",
            f"dL_da{unit}", None, value, unit, name))
    title = "Step 5: Through hidden ReLUs to pre-activations"
    for unit, name, z, value in (("1_1", "w11_2", r.z1_1, r.delta1_1),
                                 ("2_1", "w12_2", r.z2_1, r.delta2_1)):
        zs = _sym("z", unit)
        out.append(Step(
            "backward", title, "eq. 26",
            f"{_sym('δ', unit)} = δ₁⁽²⁾ · {_w(name)} · σ′({zs}) "
            f"= δ₁⁽²⁾ · {_w(name)} · 1{{{zs} > 0}}",
            f"= {_p(r.delta1_2)} · {_p(w[name])} · {_relu_prime_text(z)} "
            f"= {_p(r.delta1_2)} · {_p(w[name])} · {format_number(_relu_prime(z))} "
            f"= {format_number(value)}",
            f"delta{unit}", None, value, unit))
    title = "Step 6: Gradients for layer-1 weights"
    for unit, delta in (("1_1", r.delta1_1), ("2_1", r.delta2_1)):
        ds = _sym("δ", unit)
        for name, source, sym in zip(INCOMING[unit], (None, r.x1, r.x2), (None, "x₁", "x₂")):
            if source is None:
                symbolic = f"∂ℓ/∂{_w(name)} = {ds}"
                substituted = f"= {format_number(g[name])}"
            else:
                symbolic = f"∂ℓ/∂{_w(name)} = {ds} · {sym}"
                substituted = f"= {_p(delta)} · {_p(source)} = {format_number(g[name])}"
            out.append(Step("backward", title, "eq. 27", symbolic, substituted,
                            "grad", name, g[name], unit, name))
    return out


def steps(record: ThreeUnitRecord) -> list[Step]:
    """:func:`forward_steps` followed by :func:`backward_steps` (22 steps)."""
    return forward_steps(record) + backward_steps(record)


# -- descent, finite differences and the loss surface -----------------------------------------

def gradient_step(weights: Mapping[str, float], grad: Mapping[str, float],
                  lr: float) -> dict[str, float]:
    """One gradient-descent step, w <- w - lr dl/dw (seed 003 eq. 6).

    Parameters
    ----------
    weights, grad : Mapping[str, float]
        The nine weights and their gradients (e.g. ``ThreeUnitRecord.grad``).
    lr : float
        The learning rate (eta of eq. 6), finite and >= 0.

    Returns
    -------
    dict
        The updated weights, in the order of :data:`WEIGHT_NAMES`.
    """
    w = _check_weights(weights)
    g = _check_weights(grad, "grad")
    lr = _finite(lr, "lr")
    if lr < 0.0:
        raise ValueError(f"lr must be zero or positive, got {lr!r}")
    return {name: w[name] - lr * g[name] for name in WEIGHT_NAMES}


def finite_difference_gradient(x1: float, x2: float, y: float, weights: Mapping[str, float],
                               h: float = 1e-6) -> dict[str, float]:
    """Central-difference estimates (l(w + h) - l(w - h)) / 2h of dl/dw for every weight.

    All eighteen loss evaluations run as one NumPy call. The divisor is the step actually
    taken after rounding, (w + h) - (w - h). Where the loss has no kink within h of the
    weights it is a quadratic in each single weight (y_hat is linear in it), so the estimate
    is exact up to rounding; across a kink (some z near 0) it averages the two sides.

    Returns
    -------
    dict
        Weight name -> estimate, in the order of :data:`WEIGHT_NAMES`.
    """
    x1, x2, y = _finite(x1, "x1"), _finite(x2, "x2"), _finite(y, "y")
    w = _check_weights(weights)
    h = _finite(h, "h")
    if h <= 0.0:
        raise ValueError(f"h must be positive, got {h!r}")
    base = np.array([w[name] for name in WEIGHT_NAMES])
    eye = np.eye(len(WEIGHT_NAMES)) * h
    plus, minus = base + eye, base - eye  # row k moves weight k only
    table = np.concatenate([plus, minus])  # (18, 9)
    columns = {name: table[:, k] for k, name in enumerate(WEIGHT_NAMES)}
    with np.errstate(over="ignore", invalid="ignore"):
        loss = _forward(x1, x2, y, columns)[-1]
        n = len(WEIGHT_NAMES)
        estimate = (loss[:n] - loss[n:]) / np.diag(plus - minus)
    return {name: float(estimate[k]) for k, name in enumerate(WEIGHT_NAMES)}


@dataclass(frozen=True, eq=False)
class LossGrid:
    """The loss over two weights, the others held fixed, laid out like ``surfaces.Grid``.

    ``x`` (n,) holds the values of weight ``name_a``, ``y`` (n,) those of ``name_b``; ``z``
    is the (n, n) float64 C-contiguous loss with rows over ``name_b`` and columns over
    ``name_a``: z[j, i] = l at (x[i], y[j]). Huge weights can make entries inf.
    """

    name_a: str
    name_b: str
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @property
    def a(self) -> np.ndarray:
        """The values of ``name_a`` (same array as ``x``)."""
        return self.x

    @property
    def b(self) -> np.ndarray:
        """The values of ``name_b`` (same array as ``y``)."""
        return self.y

    @property
    def loss(self) -> np.ndarray:
        """The loss grid (same array as ``z``)."""
        return self.z


def loss_over_two_weights(x1: float, x2: float, y: float, weights: Mapping[str, float],
                          name_a: str, name_b: str, range_a: tuple[float, float],
                          range_b: tuple[float, float], n: int) -> LossGrid:
    """The loss l = (y_hat - y)^2 (seed 003 eqs. 17-20) over a grid of two weights.

    Parameters
    ----------
    x1, x2, y : float
        The training instance.
    weights : Mapping[str, float]
        All nine weights; ``name_a`` and ``name_b`` are replaced by the grid values.
    name_a, name_b : str
        Two different names of :data:`WEIGHT_NAMES`: the columns and the rows.
    range_a, range_b : (float, float)
        Finite (lo, hi) with lo < hi; both ends are grid nodes.
    n : int
        Nodes per axis, 2 to 4096.

    Returns
    -------
    LossGrid
        z[j, i] = l with name_a = x[i] and name_b = y[j], evaluated in one broadcast.
    """
    x1, x2, y = _finite(x1, "x1"), _finite(x2, "x2"), _finite(y, "y")
    w: dict = _check_weights(weights)
    _check_weight_name(name_a, "name_a")
    _check_weight_name(name_b, "name_b")
    if name_a == name_b:
        raise ValueError(f"name_a and name_b must differ, both are {name_a!r}")
    lo_a, hi_a = _check_range(range_a, "range_a")
    lo_b, hi_b = _check_range(range_b, "range_b")
    if isinstance(n, bool):
        raise TypeError(f"n must be an integer, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {n!r}") from None
    if not 2 <= n <= MAX_RESOLUTION:
        raise ValueError(f"n must be between 2 and {MAX_RESOLUTION}, got {n!r}")
    a = np.linspace(lo_a, hi_a, n)
    b = np.linspace(lo_b, hi_b, n)
    w[name_a] = a[np.newaxis, :]
    w[name_b] = b[:, np.newaxis]
    with np.errstate(over="ignore", invalid="ignore"):
        loss = _forward(x1, x2, y, w)[-1]
    z = np.ascontiguousarray(np.broadcast_to(loss, (n, n)), dtype=np.float64)
    return LossGrid(name_a, name_b, a, b, z)


# -- the loss over two weights, ready to draw ------------------------------------------------

@dataclass(frozen=True)
class LossSurfaceRequest:
    """A snapshot of what :func:`compute_loss_surface` needs (hashable, plain data)."""

    x1: float
    x2: float
    y: float
    weights: tuple[tuple[str, float], ...]  # (name, value) for all nine
    name_a: str
    name_b: str
    range_a: tuple[float, float]
    range_b: tuple[float, float]
    n: int = 101
    levels: int = 14


@dataclass(frozen=True, eq=False)
class LossSurface:
    """The loss grid as a ``surfaces.Grid``, its colour range, contour levels and curves."""

    request: LossSurfaceRequest
    grid: Grid
    color_range: tuple[float, float]
    levels: np.ndarray
    curves: list


def compute_loss_surface(request: LossSurfaceRequest) -> LossSurface:
    """The loss l over (name_a, name_b), the other weights held at their values."""
    loss = loss_over_two_weights(request.x1, request.x2, request.y, dict(request.weights),
                                 request.name_a, request.name_b, request.range_a,
                                 request.range_b, request.n)
    z = np.where(np.isfinite(loss.z), loss.z, np.nan)
    grid = Grid(loss.x, loss.y, np.ascontiguousarray(z), text="loss")
    color_range = grid.levels()
    levels = default_levels(grid, request.levels, "auto")
    return LossSurface(request, grid, color_range, levels, level_curves(grid, levels))
