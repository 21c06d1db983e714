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
