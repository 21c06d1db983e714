"""The traced gradient programs and their compiled interpreter against the NumPy closures.

The optimizers' loop evaluates gradients by interpreting a program traced from the
expression's closures (engine/_trace.py, engine/_kernel.py). These tests hold the program to
the closures on every preset and on every function and operator of the language, through
the symbolic route and through the central-difference fallback.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import _symbolic
from engine._kernel import run_program
from engine._trace import TraceError, trace
from engine.expressions import parse
from engine.presets import PRESETS

TRICKY = [
    "sigmoid(x*y) + softplus(x - y)", "relu(x) + relu(-y)", "max(x, y) - min(x, 2*y)",
    "abs(x - y) + sqrt(x**2 + y**2 + 1)", "x**0.5 + y**-3", "2**x + x**y", "log(x) * tan(y)",
    "exp(-x**2) * cos(3*y) * sin(x)", "tanh(x + y)**3", "x**0 * y + (x - x)",
    "a*x**2 + b*y**2", "sqrt(x)", "log(x*y)", "1/(x - y)", "x**2.5 * y**7",
]


def _points(n: int = 400, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, n)
    y = rng.uniform(-3, 3, n)
    x[:5] = [0.0, 1.0, -1.0, 0.0, 2.0]  # kinks, ties and holes land on exact values
    y[:5] = [0.0, 1.0, 0.0, -0.0, 2.0]
    return x, y


def _run(program, x, y):
    regs = np.repeat(program.registers[:, None], x.size, axis=1)
    regs[0], regs[1] = x, y
    run_program(program.code, regs, x.size)
    return regs[program.fx].copy(), regs[program.fy].copy()


def _assert_same(expression, x, y, **params):
    program = expression.gradient_program(**params)
    fx, fy = _run(program, x, y)
    with np.errstate(all="ignore"):
        ex, ey = expression.gradient(x, y, **params)
    for got, want in ((fx, ex), (fy, ey)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = np.isfinite(want)
        np.testing.assert_array_equal(got[~finite], want[~finite])
        # Same operations in the same order; only sin, exp & co. may differ in the last bit
        # (libm here, NumPy's own loops there), which a cancelling sum can amplify.
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.key for p in PRESETS])
def test_program_of_every_preset_equals_its_gradient(preset):
    expression = parse(preset.text, parameters=dict(preset.parameters))
    x, y = _points()
    lo_x, hi_x = preset.x_range
    lo_y, hi_y = preset.y_range
    _assert_same(expression, lo_x + (x + 3) / 6 * (hi_x - lo_x), lo_y + (y + 3) / 6 * (hi_y - lo_y))


@pytest.mark.parametrize("text", TRICKY)
def test_program_of_every_function_and_operator_equals_the_gradient(text):
    expression = parse(text, parameters={"a": 1.5, "b": -0.25} if "a*" in text else ())
    _assert_same(expression, *_points())


def test_parameters_are_bound_when_the_program_is_traced():
    expression = parse("a*x**2 + b*y**2", parameters={"a": 1.0, "b": 1.0})
    x, y = _points()
    _assert_same(expression, x, y, a=3.0, b=-2.0)
    fx, fy = _run(expression.gradient_program(a=3.0, b=-2.0), np.array([1.0]), np.array([1.0]))
    assert (fx[0], fy[0]) == (6.0, -4.0)


@pytest.mark.parametrize("text", ["sin(x) * exp(y / 3)", "sigmoid(x*y) + relu(x - 1)"])
def test_the_central_difference_fallback_is_traced_too(text, monkeypatch):
    monkeypatch.setattr(_symbolic, "MAX_SYMBOLIC_NESTING", -1)
    expression = parse(text)
    assert not expression.symbolic
    _assert_same(expression, *_points())


def test_shared_work_is_computed_once():
    # fx = 2 (x + y) and fy = 2 (x + y): one program line per distinct operation
    program = parse("(x + y)**2").gradient_program()
    assert program.fx == program.fy
    assert len(program.code) == len({tuple(row[[0, 2, 3]]) for row in program.code})


def test_a_branch_on_a_traced_value_is_refused():
    def branching(x, y):
        return (x if x > 0 else y), y

    with pytest.raises(TraceError):
        trace(branching)
