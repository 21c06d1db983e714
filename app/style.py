"""Shared look: the colormap every view uses and pyqtgraph's global options."""

from __future__ import annotations

from functools import lru_cache

import pyqtgraph as pg

#: The perceptual colormap shared by the 3-D surface, the heatmap and the colour bar.
COLORMAP_NAME = "viridis"


@lru_cache(maxsize=None)
def colormap() -> pg.ColorMap:
    """The app's height colormap (one object, so every view agrees)."""
    return pg.colormap.get(COLORMAP_NAME)


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options: row-major images (NumPy order), antialiased lines."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")


def level_colormap(contour_levels, levels: tuple[float, float]) -> pg.ColorMap:
    """The colormap stretched so that every band between contour levels gets an equal share.

    With log-spaced levels (a deep, flat valley such as Rosenbrock's), a linear colour
    scale paints the whole valley one colour; this one follows the levels instead, so the
    heatmap, the colour bar and the 3-D surface show the same bands as the level curves.
    """
    import numpy as np

    lo, hi = levels
    base = colormap()
    if not hi > lo or len(contour_levels) == 0:
        return base
    stops = np.clip((np.asarray(contour_levels, dtype=float) - lo) / (hi - lo), 0.0, 1.0)
    stops = np.unique(np.concatenate([[0.0], stops, [1.0]]))
    colors = base.map(np.linspace(0.0, 1.0, len(stops)), mode="byte")
    return pg.ColorMap(stops, colors)
