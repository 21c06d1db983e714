"""Shared test settings: pyqtgraph configured like the app (row-major images)."""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
