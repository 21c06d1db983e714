"""PySide6 + pyqtgraph front end of ML Calculus Explorer: windows, panels, workers, export."""

__version__ = "0.1.0"
