"""`mlcalc` from the command line: figures without a window, clear refusals, no-display help."""

import csv
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env or dict(os.environ), timeout=timeout)


def no_display_env():
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    return env


def test_export_png_has_3d_and_contour_side_by_side(tmp_path):
    out = tmp_path / "saddle.png"
    result = run("export", "surface", "--function", "x**2 - y**2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert not image.isNull()
    assert image.width() > 1.5 * image.height()  # two views next to each other
    assert "Error while drawing" not in result.stderr


def test_export_svg_and_csv_without_a_display(tmp_path):
    svg = tmp_path / "bowl.svg"
    result = run("export", "surface", "--function", "a*x**2 + b*y**2", "--param", "a=2", "--out", str(svg),
                 env=no_display_env())
    assert result.returncode == 0, result.stderr
    assert ET.parse(svg).getroot().tag.endswith("svg")
    table = tmp_path / "bowl.csv"
    result = run("export", "surface", "--function", "a*x**2 + b*y**2", "--param", "a=2", "--param", "b=0.5",
                 "--resolution", "16", "--out", str(table), env=no_display_env())
    assert result.returncode == 0, result.stderr
    lines = table.read_text().splitlines()
    assert lines[0].startswith("#") and "a = 2" in lines[0]
    rows = list(csv.reader(lines[2:]))
    assert len(rows) == 16 * 16
    x, y, z = map(float, rows[37])
    assert z == pytest.approx(2 * x * x + 0.5 * y * y, rel=1e-5, abs=1e-5)


def test_3d_export_without_a_display_is_refused_clearly(tmp_path):
    result = run("export", "surface", "--preset", "saddle", "--view", "surface", "--out", str(tmp_path / "s.png"),
                 env=no_display_env())
    assert result.returncode == 2
    assert "xvfb-run" in result.stderr


@pytest.mark.parametrize("text", ["__import__('os').system('echo hi')", "sin(x", "foo(x)"])
def test_bad_function_is_refused_with_its_position(tmp_path, text):
    out = tmp_path / "never.png"
    result = run("export", "surface", "--function", text, "--out", str(out), env=no_display_env())
    assert result.returncode == 2
    assert "invalid function" in result.stderr
    assert "hi" not in result.stdout
    assert not out.exists()


def test_unknown_preset_lists_the_way_out(tmp_path):
    result = run("export", "surface", "--preset", "nope", "--out", str(tmp_path / "x.png"), env=no_display_env())
    assert result.returncode == 2 and "--list-presets" in result.stderr
    listing = run("export", "surface", "--list-presets", env=no_display_env())
    assert "himmelblau" in listing.stdout and "rosenbrock" in listing.stdout


def test_gui_without_a_display_says_how_to_run_it():
    result = run(env=no_display_env(), timeout=60)
    assert result.returncode == 2
    assert "xvfb-run" in result.stderr and "no display" in result.stderr


def test_export_descent_gif_and_csv(tmp_path):
    import imageio.v3 as iio

    gif = tmp_path / "race.gif"
    result = run("export", "descent", "--function", "x**2 + 3*y**2", "--optimizers", "sgd,adam",
                 "--start", "1.5,1", "--steps", "30", "--out", str(gif))
    assert result.returncode == 0, result.stderr
    assert "sgd:" in result.stdout and "adam:" in result.stdout
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] > 1
    table = tmp_path / "race.csv"
    result = run("export", "descent", "--preset", "saddle", "--optimizers", "sgd", "--start=1,0.001",
                 "--lr", "0.1", "--steps", "5", "--out", str(table), env=no_display_env())
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(table.read_text().splitlines()))
    # SGD on x^2 - y^2 with eps = 0.1: x shrinks by 0.8 and y grows by 1.2 each step.
    assert float(rows[1]["x"]) == pytest.approx(0.8) and float(rows[1]["y"]) == pytest.approx(0.0012)


def test_export_descent_refuses_an_unknown_optimizer(tmp_path):
    result = run("export", "descent", "--function", "x**2", "--optimizers", "sgd,bogus",
                 "--out", str(tmp_path / "x.gif"), env=no_display_env())
    assert result.returncode == 2 and "unknown optimizer 'bogus'" in result.stderr


def test_export_backprop_svg_and_csv_without_a_display(tmp_path):
    weights = "0.1,0.5,0.3,-0.2,-0.4,-0.4,0.1,0.8,-0.5"
    svg = tmp_path / "net.svg"
    result = run("export", "backprop", "--weights", weights, "--x", "1,2", "--y", "3",
                 "--out", str(svg), env=no_display_env())
    assert result.returncode == 0, result.stderr
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "dead units: 2_1" in result.stdout  # z2 = -0.2 - 0.4 - 0.8 < 0
    table = tmp_path / "net.csv"
    result = run("export", "backprop", "--weights", "w11_1=0.75", "--x", "1,2", "--y", "3",
                 "--out", str(table), env=no_display_env())
    assert result.returncode == 0, result.stderr
    rows = {r["weight"]: r for r in csv.DictReader(table.read_text().splitlines())}
    assert float(rows["w11_1"]["w"]) == 0.75
    assert float(rows["w11_1"]["grad_backprop"]) == pytest.approx(
        float(rows["w11_1"]["grad_finite_difference"]), rel=1e-6)


def test_export_backprop_refuses_bad_weights(tmp_path):
    result = run("export", "backprop", "--weights", "1,2", "--out", str(tmp_path / "n.svg"),
                 env=no_display_env())
    assert result.returncode == 2 and "nine numbers" in result.stderr
    result = run("export", "backprop", "--weights", "w99_1=3", "--out", str(tmp_path / "n.svg"),
                 env=no_display_env())
    assert result.returncode == 2 and "unknown weight 'w99_1'" in result.stderr


def test_export_attention_png_and_csv_without_a_display(tmp_path):
    text = "The bank raised interest rates. She sat by the river bank."
    png = tmp_path / "att.png"
    result = run("export", "attention", "--text", text, "--layer", "3", "--head", "5",
                 "--out", str(png), env=no_display_env())
    assert result.returncode == 0, result.stderr
    assert QImage(str(png)).width() > 200
    assert "top-3:" in result.stdout
    table = tmp_path / "b.csv"
    result = run("export", "attention", "--text", text, "--view", "masked", "--out", str(table),
                 env=no_display_env())
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(table.read_text().splitlines()))
    assert rows[1][0] == "[CLS]" and float(rows[2][2]) == 0.0  # B's diagonal is zero


def test_export_attention_refuses_a_layer_the_model_lacks(tmp_path):
    result = run("export", "attention", "--text", "hello", "--layer", "9",
                 "--out", str(tmp_path / "a.png"), env=no_display_env())
    assert result.returncode == 2 and "--layer must be 1..6" in result.stderr


def test_every_entry_keeps_the_process_to_two_malloc_arenas(monkeypatch, capsys):
    import platform

    import app.__main__ as entry
    from app import lifecycle

    calls = []
    monkeypatch.setattr(lifecycle, "limit_malloc_arenas", lambda count=2: calls.append(count))
    assert entry.main(["--version"]) == 0 and calls == [2]
    monkeypatch.undo()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert lifecycle.limit_malloc_arenas() is True  # mallopt accepted it
