"""``mlcalc`` / ``python -m app``: start the explorer, or export a figure from the command line.

    mlcalc                                   open the window
    mlcalc export surface --function "x**2 - y**2" --out saddle.png
    mlcalc export surface --preset himmelblau --out h.svg
    mlcalc export surface --function "a*x**2 + b*y**2" --param a=2 --param b=0.5 --out bowl.csv
    mlcalc export landscape --grid 51 --directions pca --out land.png
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

NO_DISPLAY_MESSAGE = """\
mlcalc: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set).
ML Calculus Explorer is a desktop application. Start it from a desktop session, or on a
machine without a screen run it under a virtual X server:
    xvfb-run -a -s "-screen 0 1280x1024x24 +extension GLX +render" mlcalc
Figures can be exported without any window:
    mlcalc export surface --function "x**2 - y**2" --out saddle.png
"""


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM"))


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'LO,HI', got {text!r}") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"range {text!r}: the first number must be smaller")
    return lo, hi


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip().isidentifier():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1200x600, got {text!r}") from None
    if not (100 <= w <= 8000 and 100 <= h <= 8000):
        raise argparse.ArgumentTypeError("width and height must be between 100 and 8000 pixels")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlcalc", description="ML Calculus Explorer")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    export = sub.add_parser("export", help="render a figure to a file without showing a window")
    what = export.add_subparsers(dest="figure", required=True)
    surf = what.add_parser("surface", help="a loss surface: 3-D view and contour map",
                           description="Export a surface: .png (3-D + contour, or --view), .svg (contour), .csv (grid).")
    _surface_arguments(surf, ".png, .svg or .csv")
    surf.add_argument("--no-arrows", action="store_true", help="hide the gradient arrows")
    surf.add_argument("--no-critical", action="store_true", help="do not search for critical points")
    surf.add_argument("--no-fill", action="store_true", help="level curves without the filled heatmap")
    surf.add_argument("--no-wireframe", action="store_true", help="3-D surface without grid lines")
    race = what.add_parser("descent", help="optimizers racing down a surface",
                           description="Export a race: .gif or .mp4 (animated), .png (3-D + contour), "
                                       ".svg (contour), .csv (trajectories).")
    _surface_arguments(race, ".gif, .mp4, .png, .svg or .csv")
    race.add_argument("--optimizers", type=_methods, default=("sgd", "momentum", "adam"),
                      help="comma-separated: " + ", ".join(_METHOD_NAMES) + " (default sgd,momentum,adam)")
    race.add_argument("--start", type=_point, default=(1.5, 0.01), help="X,Y start point (default 1.5,0.01; write --start=-0.5,2 when X is negative)")
    race.add_argument("--lr", type=_positive, default=0.05, help="learning rate (default 0.05)")
    race.add_argument("--steps", type=int, default=300, help="steps per optimizer (default 300)")
    race.add_argument("--fps", type=int, default=15, help="frames per second of a .gif/.mp4")
    net = what.add_parser("backprop", help="the 3-unit network of seed 003 with its passes",
                          description="Export the 3-unit network: .png or .svg of the diagram "
                                      "(--view both|surface|contour: the loss over two weights), "
                                      ".csv of the weights and gradients.")
    net.add_argument("--weights", type=_weights, default=None,
                     help="nine numbers in the order w10_1,w11_1,w12_1,w20_1,w21_1,w22_1,"
                          "w10_2,w11_2,w12_2, or NAME=VALUE pairs for some of them")
    net.add_argument("--x", type=_point, default=(1.0, 2.0), help="X1,X2 inputs (default 1,2)")
    net.add_argument("--y", type=float, default=2.0, help="target y (default 2)")
    net.add_argument("--show", choices=["none", "forward", "all"], default="all",
                     help="how much of the walk to show (default all: both passes)")
    net.add_argument("--pair", type=_pair, default=("w11_2", "w12_2"),
                     help="the two weights of the loss surface (default w11_2,w12_2)")
    net.add_argument("--out", "-o", type=Path, required=True, help="output file: .png, .svg or .csv")
    net.add_argument("--view", choices=["auto", "surface", "contour", "both"], default="auto",
                     help="auto: the network diagram; else the loss over two weights")
    net.add_argument("--size", type=_size, default=(1500, 900), help="window size WIDTHxHEIGHT")
    att = what.add_parser("attention", help="a transformer's attention and seed 000's top-k",
                          description="Export the attention of all-MiniLM-L6-v2 on a text: "
                                      ".png or .svg of one layer's head (--view map) or of the "
                                      "column sums with the top-k (--view bars); .csv of the "
                                      "map, the head sum (sum), B (masked) or the sums (bars).")
    att.add_argument("--text", required=True, help="the text (up to 512 word pieces)")
    att.add_argument("--layer", type=int, default=1, help="layer, from 1 (default 1)")
    att.add_argument("--head", type=int, default=1, help="head, from 1 (default 1)")
    att.add_argument("--k", type=int, default=3, help="how many tokens to select (default 3)")
    att.add_argument("--mask", choices=["elementwise", "product", "none"], default="elementwise",
                     help="how A = 1 - I masks the head sum (default elementwise)")
    att.add_argument("--all-layers", action="store_true",
                     help="sum the heads of every layer, not only of --layer")
    att.add_argument("--keep-special", action="store_true",
                     help="count [CLS] and [SEP] (left out by default)")
    att.add_argument("--out", "-o", type=Path, required=True, help="output file: .png, .svg, .csv")
    att.add_argument("--view", choices=["map", "bars", "sum", "masked"], default="map",
                     help="what to export (default: the attention map)")
    att.add_argument("--size", type=_size, default=(1500, 900), help="window size WIDTHxHEIGHT")
    land = what.add_parser("landscape", help="the real loss landscape of a digits network",
                           description="Export the loss landscape of a 64-32-10 network trained on "
                                       "the digits (Li et al. 2018): .png (3-D + contour, or --view), "
                                       ".svg (contour), .csv (grid) or .npz (x, y, loss, accuracy, path).")
    land.add_argument("--grid", type=int, default=51, help="odd number of nodes per side (default 51)")
    land.add_argument("--span", type=_positive, default=None,
                      help="a and b run over [-SPAN, SPAN] (default: 1, or the training path's "
                           "reach for --directions pca)")
    land.add_argument("--directions", choices=["filter", "layer", "weight", "none", "pca"], default="filter",
                      help="random directions with that normalisation, or PCA of the training path "
                           "(default filter)")
    land.add_argument("--bias", choices=["zero", "keep"], default="zero",
                      help="zero: the directions leave the biases alone (default); keep: they move them")
    land.add_argument("--metric", choices=["loss", "accuracy"], default="loss", help="what to draw")
    land.add_argument("--levels", type=int, default=None, help="number of level curves")
    land.add_argument("--log-levels", action="store_true", help="log-spaced level curves")
    land.add_argument("--out", "-o", type=Path, required=True, help="output file: .png, .svg, .csv or .npz")
    land.add_argument("--view", choices=["auto", "surface", "contour", "both"], default="auto",
                      help="what a .png shows (default: 3-D and contour side by side)")
    land.add_argument("--size", type=_size, default=(1400, 620), help="window size WIDTHxHEIGHT for rendering")
    return parser


_WEIGHT_NAMES = ("w10_1", "w11_1", "w12_1", "w20_1", "w21_1", "w22_1", "w10_2", "w11_2", "w12_2")


def _weights(text: str) -> dict[str, float]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            pairs = dict(p.split("=", 1) for p in parts)
            weights = {k.strip(): float(v) for k, v in pairs.items()}
        else:
            if len(parts) != 9:
                raise argparse.ArgumentTypeError(
                    f"expected nine numbers or NAME=VALUE pairs, got {len(parts)} values")
            weights = dict(zip(_WEIGHT_NAMES, (float(p) for p in parts)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None
    unknown = [k for k in weights if k not in _WEIGHT_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown weight {unknown[0]!r}; the names are "
                                         + ", ".join(_WEIGHT_NAMES))
    if not all(math.isfinite(v) for v in weights.values()):
        raise argparse.ArgumentTypeError("weights must be finite numbers")
    return weights


def _pair(text: str) -> tuple[str, str]:
    names = tuple(n.strip() for n in text.split(","))
    if len(names) != 2 or names[0] == names[1] or any(n not in _WEIGHT_NAMES for n in names):
        raise argparse.ArgumentTypeError("expected two different weight names, e.g. w11_2,w12_2")
    return names


_METHOD_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in _METHOD_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown optimizer {unknown[0] if unknown else text!r}; "
                                         f"choose from {', '.join(_METHOD_NAMES)}")
    return names


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'X,Y', got {text!r}") from None
    return x, y


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _surface_arguments(parser: argparse.ArgumentParser, outputs: str) -> None:
    """The options every figure of a surface shares: the function and its window."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--function", "-f", help='f(x, y), e.g. "x**2 - y**2"')
    source.add_argument("--preset", "-p", help="a preset key (see --list-presets)")
    source.add_argument("--list-presets", action="store_true", help="list the preset keys and exit")
    parser.add_argument("--out", "-o", type=Path, help=f"output file: {outputs}")
    parser.add_argument("--x-range", type=_range, help="LO,HI (default from the preset or -2,2)")
    parser.add_argument("--y-range", type=_range, help="LO,HI")
    parser.add_argument("--resolution", type=int, default=None, help="grid points per side (default 128)")
    parser.add_argument("--levels", type=int, default=None, help="number of level curves")
    parser.add_argument("--log-levels", action="store_true", help="log-spaced level curves")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--view", choices=["auto", "surface", "contour", "both"], default="auto",
                        help="the 3-D view, the contour map or both (auto: both when OpenGL works)")
    parser.add_argument("--size", type=_size, default=(1400, 620), help="window size WIDTHxHEIGHT for rendering")


def _surface_settings(args, command: str, outputs: tuple[str, ...]):
    """Settings for the surface behind a figure, or an exit status when the input is bad."""
    from engine import surfaces
    from engine.expressions import ExpressionError

    if args.list_presets:
        for p in surfaces.PRESETS:
            print(f"{p.key:18s} {p.text}")
        return 0
    if args.out is None:
        print(f"mlcalc export {command}: --out FILE is required", file=sys.stderr)
        return 2
    if args.out.suffix.lower() not in outputs:
        print(f"mlcalc: unsupported output type '{args.out.suffix}': use {', '.join(outputs)}", file=sys.stderr)
        return 2
    from app.panels.surface import DEFAULT_RESOLUTION, SurfaceSettings

    settings = SurfaceSettings()
    if args.preset:
        try:
            p = surfaces.preset(args.preset)
        except KeyError:
            print(f"mlcalc: unknown preset {args.preset!r}; try --list-presets", file=sys.stderr)
            return 2
        settings.text, settings.preset = p.text, p.key
        settings.params = dict(p.parameters)
        settings.x_range, settings.y_range = tuple(p.x_range), tuple(p.y_range)
        settings.level_spacing = p.level_spacing
    else:
        settings.text, settings.preset = args.function, None
        try:  # refuse bad input before any window machinery starts
            surfaces.parse_cached(args.function)
        except ExpressionError as error:
            print(f"mlcalc: invalid function: {error}", file=sys.stderr)
            if error.position is not None:
                print(f"  {args.function[:200]}\n  {' ' * error.position}^", file=sys.stderr)
            return 2
    settings.params.update(dict(args.param))
    settings.x_range = args.x_range or settings.x_range
    settings.y_range = args.y_range or settings.y_range
    settings.resolution = args.resolution or DEFAULT_RESOLUTION
    settings.n_levels = args.levels or settings.n_levels
    if args.log_levels:
        settings.level_spacing = "log"
    if not 8 <= settings.resolution <= 1024:
        print("mlcalc: --resolution must be between 8 and 1024", file=sys.stderr)
        return 2
    return settings


def _prepare_display(args) -> int | None:
    """Without a display, render 2-D views offscreen; a 3-D view then needs xvfb-run."""
    if _has_display():
        return None
    if args.out.suffix.lower() != ".svg" and args.out.suffix.lower() != ".csv" and args.view in ("surface", "both"):
        print("mlcalc: the 3-D view needs OpenGL and a display; run under xvfb-run "
              "or use --view contour", file=sys.stderr)
        return 2
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if args.out.suffix.lower() in (".png", ".gif", ".mp4") and args.view == "auto":
        print("mlcalc: no display, so the contour map only (the 3-D view needs OpenGL: "
              "run under xvfb-run for both)", file=sys.stderr)
    return None


def _export_surface(args) -> int:
    settings = _surface_settings(args, "surface", (".png", ".svg", ".csv"))
    if isinstance(settings, int):
        return settings
    settings.arrows = not args.no_arrows
    settings.critical_points = not args.no_critical
    settings.filled = not args.no_fill
    settings.wireframe = not args.no_wireframe
    status = _prepare_display(args)
    if status is not None:
        return status
    from app.headless import render_surface

    return render_surface(settings, args.out, args.view, args.size)


def _export_descent(args) -> int:
    settings = _surface_settings(args, "descent", (".gif", ".mp4", ".png", ".svg", ".csv"))
    if isinstance(settings, int):
        return settings
    if not 1 <= args.steps <= 100_000:
        print("mlcalc: --steps must be between 1 and 100000", file=sys.stderr)
        return 2
    if not 1 <= args.fps <= 60:
        print("mlcalc: --fps must be between 1 and 60", file=sys.stderr)
        return 2
    settings.arrows = False
    settings.critical_points = False
    status = _prepare_display(args)
    if status is not None:
        return status
    from app.headless import render_descent
    from app.panels.descent import DescentSettings

    race = DescentSettings(methods=tuple(args.optimizers), start=tuple(args.start), lr=args.lr,
                           steps=args.steps)
    return render_descent(settings, race, args.out, args.view, args.size, args.fps)


def _export_backprop(args) -> int:
    if args.out.suffix.lower() not in (".png", ".svg", ".csv"):
        print(f"mlcalc: unsupported output type '{args.out.suffix}': use .png, .svg or .csv",
              file=sys.stderr)
        return 2
    if not all(math.isfinite(v) for v in (*args.x, args.y)):
        print("mlcalc: --x and --y must be finite numbers", file=sys.stderr)
        return 2
    status = _prepare_display(args)
    if status is not None:
        return status
    from app.headless import render_backprop
    from app.panels.backprop import DEFAULT_WEIGHTS, BackpropSettings

    settings = BackpropSettings(x1=args.x[0], x2=args.x[1], y=args.y,
                                weights={**DEFAULT_WEIGHTS, **(args.weights or {})},
                                pair=tuple(args.pair))
    return render_backprop(settings, args.out, args.view, args.size, args.show)


def _export_attention(args) -> int:
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".svg", ".csv"):
        print(f"mlcalc: unsupported output type '{args.out.suffix}': use .png, .svg or .csv",
              file=sys.stderr)
        return 2
    if suffix != ".csv" and args.view in ("sum", "masked"):
        print("mlcalc: --view sum and masked export as .csv", file=sys.stderr)
        return 2
    if args.layer < 1 or args.head < 1 or not 1 <= args.k <= 512:
        print("mlcalc: --layer and --head count from 1; --k must be 1..512", file=sys.stderr)
        return 2
    if not _has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # every view here is 2-D
    from app.headless import render_attention
    from app.panels.attention import AttentionSettings

    settings = AttentionSettings(text=args.text, layer=args.layer - 1, head=args.head - 1,
                                 sum_over="all" if args.all_layers else "layer", mask=args.mask,
                                 exclude_special=not args.keep_special, k=args.k)
    return render_attention(settings, args.out, args.view, args.size)


def _export_landscape(args) -> int:
    from engine.landscape import MAX_GRID, MAX_SPAN

    if args.out.suffix.lower() not in (".png", ".svg", ".csv", ".npz"):
        print(f"mlcalc: unsupported output type '{args.out.suffix}': use .png, .svg, .csv or .npz",
              file=sys.stderr)
        return 2
    if not (3 <= args.grid <= MAX_GRID and args.grid % 2 == 1):
        print(f"mlcalc: --grid must be an odd number from 3 to {MAX_GRID} (so that the trained "
              "weights are a node)", file=sys.stderr)
        return 2
    if args.span is not None and not args.span <= MAX_SPAN:
        print(f"mlcalc: --span must be at most {MAX_SPAN:g}", file=sys.stderr)
        return 2
    if args.levels is not None and not 1 <= args.levels <= 200:
        print("mlcalc: --levels must be between 1 and 200", file=sys.stderr)
        return 2
    if args.out.suffix.lower() in (".csv", ".npz"):
        args.view = "contour"  # tables need no view at all, least of all OpenGL
    status = _prepare_display(args)
    if status is not None:
        return status
    from app.headless import render_landscape
    from app.panels.surface import LandscapeSettings, SurfaceSettings

    settings = SurfaceSettings(source="landscape", critical_points=False, arrows=False,
                               level_spacing="log" if args.log_levels else "linear",
                               landscape=LandscapeSettings(directions=args.directions, bias=args.bias,
                                                           grid=args.grid, span=args.span,
                                                           metric=args.metric))
    if args.levels:
        settings.n_levels = args.levels
    return render_landscape(settings, args.out, args.view, args.size)


def run_gui() -> int:
    if not _has_display():
        sys.stderr.write(NO_DISPLAY_MESSAGE)
        return 2
    from PySide6.QtWidgets import QApplication

    from app import jobs, lifecycle, style
    from app.main_window import MainWindow
    from app.session_controller import data_dir

    style.configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ML Calculus Explorer")
    app.setOrganizationName("mlcalc-explorer")
    app.aboutToQuit.connect(jobs.shutdown_all)
    lifecycle.install_collector(app)
    window = MainWindow(recovery_dir=data_dir())
    window.show()
    window.offer_recovery()
    lifecycle.close_on_interrupt(window)  # Ctrl+C in the terminal, like File > Quit
    status = app.exec()
    lifecycle.dispose(window)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from app import lifecycle

    lifecycle.limit_malloc_arenas()  # before the workers start (see app.lifecycle)
    if args.version:
        from app import __version__

        print(f"mlcalc {__version__}")
        return 0
    if args.command == "export":
        if args.figure == "backprop":
            return _export_backprop(args)
        if args.figure == "attention":
            return _export_attention(args)
        if args.figure == "landscape":
            return _export_landscape(args)
        return _export_descent(args) if args.figure == "descent" else _export_surface(args)
    return run_gui()


if __name__ == "__main__":
    sys.exit(main())
