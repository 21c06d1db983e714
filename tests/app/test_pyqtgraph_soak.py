"""Guards against the PySide6 6.12 + pyqtgraph crash seen on this kind of machine.

PySide6-Essentials 6.12.0 aborted ("Fatal Python error: bool_dealloc") in a loop that adds
an ImageItem, calls setImage a few hundred times and removes it again; the pin below 6.12
avoids it. This test repeats that loop in a child process so a crash fails the test instead
of killing the run.
"""

import os
import subprocess
import sys

SCRIPT = """
import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication
app = QApplication([])
pg.setConfigOptions(imageAxisOrder="row-major")
w = pg.GraphicsLayoutWidget(); w.resize(400, 300); w.show()
plot = w.addPlot()
rng = np.random.default_rng(0)
for round_ in range(6):
    item = pg.ImageItem(axisOrder="row-major")
    plot.addItem(item)
    for i in range(60):
        item.setImage(rng.random((64, 64), dtype=np.float32), levels=(0, 1), autoLevels=False)
        app.processEvents()
    plot.removeItem(item)
    app.processEvents()
print("survived")
"""


def test_imageitem_churn_does_not_crash():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "survived" in out.stdout


def test_clicked_scatter_spots_are_released_when_the_data_changes(qapp):
    """pyqtgraph keeps a SpotItem per point after a click, in a cycle through a NumPy object
    array that the garbage collector cannot break; ``style.configure_pyqtgraph`` (called by
    every entry point and by the tests' conftest) makes ``setData`` drop them."""
    import gc

    import numpy as np
    import pyqtgraph as pg
    from pyqtgraph.graphicsItems.ScatterPlotItem import SpotItem

    from app import style

    style.configure_pyqtgraph()
    style.configure_pyqtgraph()  # twice: wrapped once
    scatter = pg.ScatterPlotItem()
    rng = np.random.default_rng(0)
    for _ in range(20):
        scatter.setData(pos=rng.random((500, 2)), data=np.arange(500))
        clicked = scatter.pointsAt(pg.Point(0.5, 0.5))  # what a click on the plot does
    assert all(isinstance(spot, SpotItem) for spot in clicked)
    scatter.clear()
    del clicked
    gc.collect()
    # type(), not isinstance: isinstance asks a weak proxy in the list for its referent, and
    # one whose referent is gone raises ReferenceError
    assert sum(type(o) is SpotItem for o in gc.get_objects()) == 0
