"""Faults a session must survive: a save killed at any moment leaves the previous file
readable, and an app killed with unsaved edits offers them back on the next start."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from app import session
from engine._atomic import temp_name_pattern

ROOT = Path(__file__).resolve().parents[2]

# A session of about 3 MB whose every save is numbered; it saves forever, printing each
# number once the save has returned.
SAVER = """
import math, sys
from app import session

def document(i):
    trail = [[i + k * 1e-3, math.nan if k % 97 == 0 else -k] for k in range(40000)]
    return {"format": session.FORMAT, "format_version": session.FORMAT_VERSION,
            "panels": {"descent": {"generation": i, "trail": trail}}}

i = 0
while True:
    session.save(sys.argv[1], document(i))
    print(i, flush=True)
    i += 1
"""

# Saves once, then stops for good between writing the temporary file and renaming it:
# the moment a crash hurts most.
STUCK_BEFORE_RENAME = """
import os, sys, time
from app import session

def document(i):
    return {"format": session.FORMAT, "format_version": session.FORMAT_VERSION,
            "panels": {"descent": {"generation": i}}}

session.save(sys.argv[1], document(0))

def stuck(src, dst):
    print("WRITTEN", flush=True)
    time.sleep(600)

os.replace = stuck
session.save(sys.argv[1], document(1))
"""


def _run_until(script: str, args: list[str], marker: str, env: dict, timeout: float = 120):
    """Start ``script``; return the process and its stdout lines once ``marker`` is printed."""
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if marker in line:
            return process, lines
    process.kill()
    _, err = process.communicate(timeout=30)
    raise AssertionError(f"{marker!r} never came; output {lines[-5:]}, errors {err[-3000:]}")


def _kill(process) -> list[str]:
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return out.split()


def test_a_save_killed_at_a_random_moment_leaves_a_whole_session(tmp_path):
    path = tmp_path / "race.mlcalc.json"
    rng = random.Random(7)
    for _ in range(4):
        process, lines = _run_until(SAVER, [str(path)], "0", dict(os.environ))
        time.sleep(rng.uniform(0.0, 1.0))
        printed = [int(v) for v in lines + _kill(process)]
        document = session.load(path)  # never partial: the previous or the newer save
        generation = document["panels"]["descent"]["generation"]
        assert generation in (printed[-1], printed[-1] + 1)
        trail = document["panels"]["descent"]["trail"]
        assert len(trail) == 40000 and trail[-1] == [generation + 39999 * 1e-3, -39999]
    session.save(path, {"format": session.FORMAT, "format_version": 2, "panels": {}})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # killed saves' temps are gone


def test_a_crash_between_write_and_rename_keeps_the_previous_file(tmp_path):
    path = tmp_path / "race.mlcalc.json"
    process, _ = _run_until(STUCK_BEFORE_RENAME, [str(path)], "WRITTEN", dict(os.environ))
    _kill(process)
    assert session.load(path)["panels"]["descent"]["generation"] == 0
    stale = [p.name for p in tmp_path.iterdir() if temp_name_pattern(path.name).fullmatch(p.name)]
    assert len(stale) == 1  # the written, never renamed, temporary file
    session.save(path, {"format": session.FORMAT, "format_version": 2, "panels": {"descent": {"generation": 2}}})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert session.load(path)["panels"]["descent"]["generation"] == 2


# Starts the real app, edits the backpropagation tab through its public methods and waits
# until the autosave holds the edit; the test then kills it.
EDIT_AND_WAIT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import app.__main__ as entry
from app import session
from app.main_window import MainWindow

qapp = QApplication(sys.argv[:1])

def window():
    return next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))

def edit():
    window().backprop.set_weights({"w11_2": 1.25})
    window().backprop.set_inputs(x1=-0.75)
    wait_for_autosave()

def wait_for_autosave():
    try:
        state = session.load(sys.argv[1])["panels"]["backprop"]
    except session.SessionError:
        state = None
    if state and state["weights"]["w11_2"] == 1.25 and state["x1"] == -0.75:
        print("AUTOSAVED", flush=True)
        return
    QTimer.singleShot(100, wait_for_autosave)

QTimer.singleShot(300, edit)
sys.exit(entry.main([]))
"""

# Starts the real app again and reports what it shows.
REPORT = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import app.__main__ as entry
from app.main_window import MainWindow

qapp = QApplication(sys.argv[:1])

def report():
    w = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
    print("STATE " + json.dumps(w.backprop.session_state()), flush=True)
    print("TITLE " + w.windowTitle().replace("[*]", "*" if w.isWindowModified() else ""), flush=True)
    w.close()

QTimer.singleShot(300, report)
status = entry.main([])
print(f"exit {status}")
sys.exit(status)
"""


def test_edits_of_a_killed_app_are_offered_back_on_the_next_start(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLCALC_DATA_DIR=str(tmp_path),
               MLCALC_AUTOSAVE_SECONDS="1")
    recovery = tmp_path / session.RecoveryStore.FILE_NAME
    process, _ = _run_until(EDIT_AND_WAIT, [str(recovery)], "AUTOSAVED", env)
    _kill(process)
    assert recovery.is_file()

    out = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, cwd=ROOT,
                         env=dict(env, MLCALC_RECOVERY="restore"), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    state = json.loads(lines["STATE"])
    assert state["weights"]["w11_2"] == 1.25 and state["x1"] == -0.75
    assert lines["TITLE"] == "Recovered session* — ML Calculus Explorer"
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert recovery.exists()  # closed with the changes still unsaved: kept for next time

    out = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, cwd=ROOT,
                         env=dict(env, MLCALC_RECOVERY="discard"), timeout=120)
    state = json.loads(dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)["STATE"])
    assert state["weights"]["w11_2"] != 1.25 and not recovery.exists()  # discarded

    out = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, cwd=ROOT,
                         env=dict(env, MLCALC_RECOVERY="restore"), timeout=120)
    state = json.loads(dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)["STATE"])
    assert state["weights"]["w11_2"] != 1.25  # nothing left to restore after a clean exit
