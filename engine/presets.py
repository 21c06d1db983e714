"""Preset surfaces: the shapes of seed 001 and the classic optimisation test functions,
each with the window that shows its structure and a sentence on what it teaches."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from engine._common import Range, _check_range, _parse_cached
from engine.expressions import Expression

if TYPE_CHECKING:
    from engine.surfaces import SurfaceRequest

__all__ = ["Preset", "PRESETS", "preset", "preset_keys"]

@dataclass(frozen=True)
class Preset:
    """A named surface with the window that shows its interesting structure.

    ``parameters`` maps each parameter name to its default value (empty for most presets);
    ``note`` says in one sentence what the surface teaches. ``level_spacing`` is the level
    spacing that reads best ("log" for surfaces with a huge dynamic range).
    """

    key: str
    name: str
    text: str
    x_range: Range
    y_range: Range
    parameters: Mapping[str, float] = field(default_factory=dict, hash=False)
    note: str = ""
    level_spacing: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_range", _check_range(self.x_range, "x_range"))
        object.__setattr__(self, "y_range", _check_range(self.y_range, "y_range"))
        object.__setattr__(self, "parameters",
                           MappingProxyType({str(k): float(v) for k, v in dict(self.parameters).items()}))

    def expression(self) -> Expression:
        """Parse the preset's text with its parameters (cached)."""
        return _parse_cached(self.text, tuple(self.parameters.items()), False)

    def request(self, resolution: int | tuple[int, int] = 128, n_levels: int = 15,
                arrows: int = 0, **changes: Any) -> "SurfaceRequest":
        """A :class:`SurfaceRequest` showing this preset at its default parameters."""
        values = dict(self.parameters)
        values.update(changes.pop("params", {}))
        kwargs = dict(text=self.text, params=tuple(values.items()), x_range=self.x_range,
                      y_range=self.y_range, resolution=resolution, n_levels=n_levels,
                      level_spacing=self.level_spacing, arrows=arrows)
        kwargs.update(changes)
        from engine.surfaces import SurfaceRequest  # the request lives with the grids

        return SurfaceRequest(**kwargs)


PRESETS: tuple[Preset, ...] = (
    Preset("paraboloid", "Paraboloid", "x**2 + y**2", (-3.0, 3.0), (-3.0, 3.0),
           note="Seed 001: the paraboloid bowl, whose level curves x^2 + y^2 = c are circles "
                "of radius sqrt(c) around its single minimum at the origin."),
    Preset("saddle", "Saddle", "x**2 - y**2", (-2.0, 2.0), (-2.0, 2.0),
           note="Seed 001: saddle point, gradient zero but not a minimum (a minimum along x, "
                "a maximum along y; Hessian eigenvalues 2 and -2)."),
    Preset("plane", "Tilted plane", "x + 2*y", (-3.0, 3.0), (-3.0, 3.0),
           note="Seed 001 practice: a tilted plane with parallel level lines of slope -1/2 and "
                "gradient (1, 2) everywhere, so it has no critical point."),
    Preset("regression", "Regression loss L(w, b)", "(2*x + y - 3)**2", (-1.0, 3.0), (-2.0, 4.0),
           note="Seed 001 practice: the loss L(w, b) = (2w + b - 3)^2 with x as w and y as b; "
                "every point of the valley 2w + b = 3 is optimal (L(1.5, 0) = L(1, 1) = 0), "
                "so its minima are degenerate."),
    Preset("limit_diagonal", "xy / (x² + y²)", "x*y/(x**2 + y**2)", (-1.0, 1.0), (-1.0, 1.0),
           note="Seed 001: the limit at the origin does not exist, because the function is 0 "
                "along both axes but 1/2 along y = x."),
    Preset("limit_axes", "(x² - y²) / (x² + y²)", "(x**2 - y**2)/(x**2 + y**2)",
           (-1.0, 1.0), (-1.0, 1.0),
           note="Seed 001 practice: constant on each ray from the origin, 1 along the x-axis "
                "and -1 along the y-axis, so the limit at the origin does not exist."),
    Preset("monkey_saddle", "Monkey saddle", "x**3 - 3*x*y**2", (-1.5, 1.5), (-1.5, 1.5),
           note="Seed 002: gradient and Hessian both vanish at the origin, so the eigenvalue "
                "test cannot classify this degenerate stationary point (three valleys, not two)."),
    Preset("quadratic", "Quadratic a x² + b y²", "a*x**2 + b*y**2", (-3.0, 3.0), (-3.0, 3.0),
           parameters={"a": 1.0, "b": 3.0},
           note="Seed 002: the Hessian is diag(2a, 2b), so the signs of a and b decide whether "
                "the origin is a minimum, a maximum or a saddle (try b < 0)."),
    Preset("rosenbrock", "Rosenbrock", "(a - x)**2 + b*(y - x**2)**2", (-2.0, 2.0), (-1.0, 3.0),
           parameters={"a": 1.0, "b": 100.0}, level_spacing="log",
           note="Rosenbrock's banana: the minimum at (a, a^2) lies at the bottom of a long, "
                "curved, nearly flat valley where gradient descent crawls."),
    Preset("himmelblau", "Himmelblau", "(x**2 + y - 11)**2 + (x + y**2 - 7)**2",
           (-5.0, 5.0), (-5.0, 5.0), level_spacing="log",
           note="Himmelblau's function: four equally good minima (value 0), one maximum and "
                "four saddle points between them."),
    Preset("beale", "Beale", "(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2",
           (-4.5, 4.5), (-4.5, 4.5), level_spacing="log",
           note="Beale's function: the minimum 0 at (3, 0.5) sits in a flat basin walled by "
                "values near 10^5, so the level spacing must be logarithmic to see it."),
    Preset("rastrigin", "Rastrigin", "20 + x**2 - 10*cos(2*pi*x) + y**2 - 10*cos(2*pi*y)",
           (-5.12, 5.12), (-5.12, 5.12),
           note="Rastrigin's function: a bowl covered in ripples, with about a hundred local "
                "minima around the global minimum 0 at the origin."),
    Preset("ackley", "Ackley",
           "-20*exp(-0.2*sqrt(0.5*(x**2 + y**2))) - exp(0.5*(cos(2*pi*x) + cos(2*pi*y))) + exp(1) + 20",
           (-5.0, 5.0), (-5.0, 5.0),
           note="Ackley's function: a bumpy, nearly flat plate around a deep funnel whose "
                "global minimum 0 at the origin is a cusp where the gradient does not exist."),
    Preset("goldstein_price", "Goldstein-Price",
           "(1 + (x + y + 1)**2*(19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2))"
           "*(30 + (2*x - 3*y)**2*(18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))",
           (-2.0, 2.0), (-2.0, 2.0), level_spacing="log",
           note="Goldstein-Price function: the global minimum 3 at (0, -1) hides among local "
                "minima and values near 10^6, visible only with logarithmic levels."),
)

_PRESETS_BY_KEY = {p.key: p for p in PRESETS}


def preset(key: str) -> Preset:
    """The preset called ``key``; raises KeyError listing the known keys."""
    try:
        return _PRESETS_BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown preset {key!r}; known: {', '.join(_PRESETS_BY_KEY)}") from None


def preset_keys() -> tuple[str, ...]:
    """Keys of :data:`PRESETS` in display order."""
    return tuple(_PRESETS_BY_KEY)

