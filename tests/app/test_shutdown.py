"""Closing the app while the engine works: exit status 0, within 2 s, with nothing printed.

Each case starts the real window through the ``mlcalc`` entry point in a child process,
puts one panel to work and, once the work is under way, either closes the window as File >
Quit does or lets the test send Ctrl+C (SIGINT) the way a terminal user would. Under the
suite's Xvfb the child uses it, so the 3-D views are real OpenGL windows.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial  # each case times the exit: alone, see scripts/test.sh

ROOT = Path(__file__).resolve().parents[2]
EXIT_SECONDS = 2.0  # the limit, from the close (or the signal) to the process's exit
HANG_GUARD_SECONDS = 150  # the child dumps its stacks and exits after this: a hang fails, not blocks
BAD_OUTPUT = ("QThread", "deleted", "Error while drawing", "Traceback", "Segmentation", "QObject",
              "Fatal")

DRIVER = """
import faulthandler, sys, threading, time
from pathlib import Path

# A hang fails with every thread's stack on stderr, instead of blocking the suite.
faulthandler.dump_traceback_later(int(sys.argv[4]), exit=True)
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import app.__main__ as entry
from app import jobs
from app.export import ExportError, export_animation
from app.main_window import MainWindow
from app.panels.surface import LandscapeSettings

STATE, HOW, OUT = sys.argv[1], sys.argv[2], Path(sys.argv[3])
qapp = QApplication(sys.argv[:1])


def window():
    return next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))


def stop():
    # The work is under way: close the window as File > Quit does, or ask for Ctrl+C.
    if HOW == "close":
        print(f"CLOSING {time.monotonic()!r}", flush=True)
        window().close()
    else:
        print("BUSY", flush=True)


def when(condition, then):
    if condition():
        then()
    else:
        QTimer.singleShot(10, lambda: when(condition, then))


def export_race():
    QTimer.singleShot(0, stop)  # runs between two frames of the export
    try:
        window().descent.export(OUT / "race.gif", view="auto")
    except ExportError as error:
        print(f"EXPORT {error}", flush=True)


def export_race_encoding():
    stopped = []

    def progress(fraction):
        if fraction > 0.5 and not stopped:  # the frames are drawn and being encoded
            stopped.append(fraction)
            QTimer.singleShot(0, stop)
        return True

    try:
        # File > Export's path for the race, with 40 frames of the contour view instead of
        # 120 of both views (6 s of drawing): what is measured is the stop while the
        # worker encodes them.
        export_animation(window().descent, OUT / "race.gif", "contour", max_frames=40,
                         progress=progress)
    except ExportError as error:
        print(f"EXPORT {error}", flush=True)


def start():
    print(f"STARTING {STATE}", flush=True)
    w = window()
    surface, descent = w.surface, w.descent
    if STATE == "surface":
        surface.settings.resolution = 512
        surface.set_expression("sin(5*x)*cos(5*y) + softplus(x*y) + tanh(x - y)")
        when(lambda: surface.surface_runner.busy, stop)
    elif STATE == "race":
        w.tabs.setCurrentWidget(descent)
        descent.steps_spin.setValue(5000)
        descent.set_start(0.5, 0.5)
        when(lambda: descent.play_button.text() == "Pause", stop)
    elif STATE == "training":
        w.tabs.setCurrentWidget(w.playground)
        w.playground.play()
        when(lambda: w.playground.is_playing and w.playground.step_count > 0, stop)
    elif STATE == "landscape":
        surface.set_landscape(LandscapeSettings(grid=101))
        when(lambda: surface.landscape_runner.busy, lambda: QTimer.singleShot(300, stop))
    elif STATE == "attention":
        w.tabs.setCurrentWidget(w.attention)
        def encode_long_text():
            w.attention.set_text(" ".join(["attention"] * 480))
            w.attention.run()
            when(lambda: w.attention.runner.busy, stop)
        when(lambda: w.attention.result is not None, encode_long_text)
    elif STATE == "basins":
        w.tabs.setCurrentWidget(descent)
        descent.basin_size.setCurrentIndex(descent.basin_size.count() - 1)
        def basins():
            descent.toggle_basins()
            when(lambda: descent.basin_runner.busy, stop)
        when(lambda: surface.result is not None, basins)
    elif STATE == "export":
        w.tabs.setCurrentWidget(descent)
        when(lambda: descent.trajectories and not descent.runner.busy, export_race)
    elif STATE == "encoding":
        w.tabs.setCurrentWidget(descent)
        when(lambda: descent.trajectories and not descent.runner.busy, export_race_encoding)
    else:
        raise SystemExit(f"unknown state {STATE}")


# Start the work once the window has drawn its first results, so the time measured is
# the shutdown's and not the start-up's.
QTimer.singleShot(300, lambda: when(lambda: not any(r.busy for r in jobs.live_runners()),
                                    lambda: QTimer.singleShot(300, start)))
qapp.aboutToQuit.connect(lambda: print(f"QUITTING {time.monotonic()!r}", flush=True))
status = entry.main([])
print(f"RETURNED {time.monotonic()!r}", flush=True)
main = threading.main_thread()
print("THREADS " + ",".join(t.name for t in threading.enumerate() if t is not main), flush=True)
print(f"exit {status}", flush=True)
sys.exit(status)
"""


def app_environment(tmp_path: Path) -> dict:
    """The child's environment: its own data folder (no autosave in the user's), and the
    suite's Xvfb when there is one, so that the 3-D views are OpenGL windows."""
    env = dict(os.environ, MLCALC_DATA_DIR=str(tmp_path / "data"), MLCALC_RECOVERY="discard")
    if env.get("DISPLAY"):
        env.pop("QT_QPA_PLATFORM", None)
    return env


def stop_while_busy(state: str, how: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, float, str]:
    """Run the driver; return its outcome, the seconds from the close (or SIGINT) to the
    exit, and where they went."""
    args = [sys.executable, "-c", DRIVER, state, how, str(tmp_path), str(HANG_GUARD_SECONDS)]
    stderr_file = tmp_path / "stderr.txt"
    asked = None
    out = []
    with open(stderr_file, "w") as stderr, subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
            env=app_environment(tmp_path)) as process:
        for line in process.stdout:
            out.append(line)
            if line.startswith("CLOSING "):
                asked = float(line.split()[1])
            elif line.startswith("BUSY"):
                asked = time.monotonic()
                process.send_signal(signal.SIGINT)
        process.wait()
        exited = time.monotonic()
    result = subprocess.CompletedProcess(args, process.returncode, "".join(out), stderr_file.read_text())
    assert asked is not None, f"the {state} work never got under way:\n{result.stdout}\n{result.stderr[-3000:]}"
    stamps = {line.split()[0]: float(line.split()[1]) for line in out if line.startswith(("QUITTING", "RETURNED"))}
    phases = (f"window closed and workers stopped after {stamps.get('QUITTING', exited) - asked:.2f} s, "
              f"windows deleted after {stamps.get('RETURNED', exited) - asked:.2f} s, "
              f"the interpreter ended after {exited - asked:.2f} s")
    return result, exited - asked, phases


@pytest.mark.parametrize("how", ["close", "sigint"])
@pytest.mark.parametrize("state", ["surface", "race", "training", "landscape", "attention", "basins", "export",
                                   "encoding"])
def test_stopping_while_busy_exits_cleanly_and_quickly(state, how, tmp_path):
    result, seconds, phases = stop_while_busy(state, how, tmp_path)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "exit 0" in result.stdout
    assert "THREADS \n" in result.stdout, f"threads still running after the window closed:\n{result.stdout}"
    for bad in BAD_OUTPUT:
        assert bad not in result.stderr, result.stderr[-3000:]
    if state in ("export", "encoding"):  # stopped between two frames: no file, and why
        assert "EXPORT export cancelled: the window was closed" in result.stdout, result.stdout
        assert not [p.name for p in tmp_path.iterdir() if "race" in p.name]
    assert seconds < EXIT_SECONDS, f"{seconds:.2f} s to exit after the {how}: {phases}"


def test_ctrl_c_only_queues_the_close_and_deleting_the_window_restores_the_handler(qtbot):
    from PySide6.QtWidgets import QWidget

    from app import lifecycle

    previous = signal.getsignal(signal.SIGINT)
    window = QWidget()
    window.show()
    lifecycle.close_on_interrupt(window)
    signal.raise_signal(signal.SIGINT)
    assert window.isVisible()  # the handler ran where Python was; the close waits for the loop
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    lifecycle.dispose(window)
    assert signal.getsignal(signal.SIGINT) is previous
