"""Shared test settings: pyqtgraph configured like the app (row-major images)."""

import os
import tempfile

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# Preferences, recent files and the recovery file of every app the tests start go to a
# folder of their own, never the user's.
os.environ.setdefault("MLCALC_DATA_DIR", tempfile.mkdtemp(prefix="mlcalc-tests-"))
