"""The engine runs where Qt is absent: importing it pulls in no Qt, pyqtgraph or OpenGL."""

import subprocess
import sys

BLOCK = """
import sys
for name in ("PySide6", "shiboken6", "pyqtgraph", "OpenGL", "superqt"):
    sys.modules[name] = None  # any import of these now raises ImportError
import engine, engine.expressions, engine.surfaces
f = engine.expressions.parse("x**2 - y**2")
print(float(f.evaluate(1.0, 2.0)))
"""


def test_engine_imports_and_runs_without_qt():
    out = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "-3.0"
