"""Pure NumPy mathematics of ML Calculus Explorer.

Nothing in this package imports Qt, pyqtgraph or OpenGL; every function runs and is tested
without a screen. The boundary is checked by an import-linter contract in ``pyproject.toml``.
"""
