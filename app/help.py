"""Help for each panel: the equations it implements, where they come from, and a short guide.

The content is data (:data:`PANELS`), so that tests can hold every citation against the
engine code that implements it: an equation number of seed 003 must be one the cited module
names, a seed without numbered equations must be named by the module, and so must a paper.
:func:`help_html` renders one panel's help as Qt rich text; :func:`show_help` shows it in a
non-modal window that is reused when asked again (a combo box in it switches panels).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
)
from shiboken6 import isValid

__all__ = ["HELP_KEYS", "HELP_TITLES", "SEEDS", "SEED_EQUATION_COUNTS", "PAPERS", "Source",
           "Equation", "PanelHelp", "PANELS", "help_html", "key_for_panel", "HelpDialog",
           "show_help"]

#: The course's four source documents: (short name used inline, full reference).
SEEDS: dict[str, tuple[str, str]] = {
    "000": ("Drake", "Collin Drake, “Motivating Multivariable Calculus with Machine Learning”"),
    "001": ("Functions of Several Variables",
            "“Calculus: Functions of Several Variables” (course lesson)"),
    "002": ("Zaidi, Math Review", "Nayyar Zaidi, “SIT744 Lecture 2: Math Review”"),
    "003": ("Kautz", "Henry Kautz, “Machine Learning is Calculus Plus Linear Algebra”"),
}
#: How many numbered equations each seed has; the others number none.
SEED_EQUATION_COUNTS = {"003": 67}

#: Papers cited beside the seeds: key -> (inline citation, full reference). The key is the
#: name the engine's own comments use for the paper.
PAPERS: dict[str, tuple[str, str]] = {
    "Li et al.": ("Li et al. (2018)", "H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein, "
                  "“Visualizing the Loss Landscape of Neural Nets”, NeurIPS 2018"),
    "Polyak": ("Polyak (1964)", "B. T. Polyak, “Some methods of speeding up the convergence of "
               "iteration methods”, 1964"),
    "Sutskever": ("Sutskever et al. (2013)", "I. Sutskever, J. Martens, G. Dahl, G. Hinton, “On the "
                  "importance of initialization and momentum in deep learning”, ICML 2013"),
    "Duchi": ("Duchi, Hazan & Singer (2011)", "J. Duchi, E. Hazan, Y. Singer, “Adaptive Subgradient "
              "Methods for Online Learning and Stochastic Optimization”, JMLR 2011"),
    "Hinton": ("Hinton, lecture 6e", "G. Hinton, “Neural Networks for Machine Learning”, "
               "Coursera, lecture 6e (RMSProp)"),
    "Kingma": ("Kingma & Ba (2015), Algorithm 1", "D. P. Kingma, J. Ba, “Adam: A Method for "
               "Stochastic Optimization”, ICLR 2015"),
    "Loshchilov": ("Loshchilov & Hutter (2019)", "I. Loshchilov, F. Hutter, “Decoupled Weight Decay "
                   "Regularization”, ICLR 2019"),
    "Vaswani": ("Vaswani et al. (2017), eq. (1)", "A. Vaswani et al., “Attention Is All You Need”, "
                "NeurIPS 2017"),
    "Charikar": ("Charikar (2002)", "M. Charikar, “Similarity Estimation Techniques from Rounding "
                 "Algorithms”, STOC 2002"),
    "Lv et al.": ("Lv et al. (2007), section 4", "Q. Lv, W. Josephson, Z. Wang, M. Charikar, K. Li, "
                  "“Multi-Probe LSH: Efficient Indexing for High-Dimensional Similarity Search”, "
                  "VLDB 2007"),
}


@dataclass(frozen=True)
class Source:
    """Where an equation comes from: a seed (with its equation numbers, or the heading of the
    passage where it has none) or a paper (a key of :data:`PAPERS`)."""

    seed: str = ""
    numbers: tuple[int, ...] = ()
    section: str = ""
    paper: str = ""


@dataclass(frozen=True)
class Equation:
    """One formula as Qt rich text, what the panel does with it, its sources, and the
    modules (dotted names) whose code implements it and cites those sources."""

    formula: str
    meaning: str
    sources: tuple[Source, ...]
    modules: tuple[str, ...]


@dataclass(frozen=True)
class PanelHelp:
    """Everything one panel's help page says. ``controls`` pairs keys or mouse gestures
    with what they do; the other texts are Qt rich text."""

    key: str
    title: str
    summary: str
    equations: tuple[Equation, ...]
    steps: tuple[str, ...]
    controls: tuple[tuple[str, str], ...]
    look_for: tuple[str, ...]


def _numbers_text(numbers: tuple[int, ...]) -> str:
    """(17, 18, 19, 20, 22) -> "eqs. 17–20, 22"; a single number -> "eq. 6"."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    return ("eq. " if len(numbers) == 1 else "eqs. ") + ", ".join(parts)


def _citation(sources: tuple[Source, ...]) -> str:
    """Sources as plain text, one seed's passages together: "seed 003 (Kautz), eqs. 6, 43;
    Kingma & Ba (2015), Algorithm 1"."""
    parts: dict[str, list[str]] = {}
    for s in sources:
        if s.paper:
            parts.setdefault(s.paper, []).append(PAPERS[s.paper][0] + (f", {s.section}" if s.section else ""))
        else:
            head = parts.setdefault(f"seed {s.seed}", [f"seed {s.seed} ({SEEDS[s.seed][0]})"])
            head.append(_numbers_text(s.numbers) if s.numbers else f"“{s.section}”")
    return "; ".join(", ".join(p) for p in parts.values())


def _w(ij: str, layer: str) -> str:
    """w with subscript ij and superscript (layer), the seed's weight notation."""
    return f"w<sub>{ij}</sub><sup>({layer})</sup>"


def _s(letter: str, index: str, layer: str) -> str:
    """A unit's quantity (z, a, δ) with its index and (layer), as the seed writes it."""
    return f"{letter}<sub>{index}</sub><sup>({layer})</sup>"


def _seed(seed: str, *numbers: int, section: str = "") -> Source:
    return Source(seed=seed, numbers=tuple(numbers), section=section)


def _paper(key: str, section: str = "") -> Source:
    return Source(paper=key, section=section)


_KAUTZ = "003"
_IND = "<b>1</b>"  # the indicator 1{P} of seed 003

SURFACE = PanelHelp(
    "surface", "Loss surface",
    "Any function of two variables as a 3-D surface beside its contour map, with the gradient "
    "field and every critical point classified; or the loss of a real network trained on "
    "handwritten digits, on a plane through its weights.",
    (
        Equation("z = x² + y² (bowl) &nbsp;·&nbsp; z = x² − y² (saddle) &nbsp;·&nbsp; "
                 "L(w, b) = (2w + b − 3)² &nbsp;·&nbsp; xy ⁄ (x² + y²)",
                 "The course's shapes among the presets: the minimum of a bowl, a saddle whose "
                 "gradient vanishes although it is no minimum, the practice problem's "
                 "regression loss, and functions whose limit at the origin depends on the path.",
                 (_seed("001", section="Surfaces: The Loss Landscape of Neural Networks"),
                  _seed("001", section="Practice"), _seed("001", section="Limits: Path Matters")),
                 ("engine.presets",)),
        Equation("{ (x, y) : f(x, y) = c }",
                 "A level curve: each line of the contour map is one level c. Where the lines "
                 "crowd, the surface is steep.",
                 (_seed("001", section="Level Curves: Reading the Loss Landscape"),),
                 ("engine.surfaces",)),
        Equation("∇f = (∂f⁄∂x, ∂f⁄∂y)",
                 "The arrows: the direction of steepest ascent, perpendicular to the level "
                 "curves. The derivatives box shows ∂f⁄∂x, ∂f⁄∂y and the Hessian as formulas.",
                 (_seed("002", section="Derivative and gradient"),
                  _seed("001", section="Level Curves: Reading the Loss Landscape")),
                 ("engine.surfaces",)),
        Equation("∇f(x*, y*) = 0, &nbsp; H v = λ v, &nbsp; H = [[f<sub>xx</sub>, f<sub>xy</sub>], "
                 "[f<sub>xy</sub>, f<sub>yy</sub>]]",
                 "Critical points are found numerically and classified by the eigenvalues of "
                 "the Hessian: λ₁, λ₂ &gt; 0 minimum, both &lt; 0 maximum, opposite signs "
                 "saddle, a zero eigenvalue degenerate (the test cannot decide).",
                 (_seed("002", section="Stationary points"), _seed("002", section="Eigendecomposition")),
                 ("engine.critical_points", "engine._common")),
        Equation("f(a, b) = L(θ* + a d₁ + b d₂), &nbsp; d<sub>i</sub> ← d<sub>i</sub> ‖θ*<sub>i</sub>‖ ⁄ "
                 "‖d<sub>i</sub>‖",
                 "The real landscape: the loss on a plane through the trained weights θ*. Each "
                 "filter d<sub>i</sub> (one neuron's incoming weights) of a random direction is "
                 "rescaled to the norm of the same filter of θ*; or d₁, d₂ are the two principal "
                 "directions of the training path.",
                 (_paper("Li et al.", "sections 3, 4 and 7"),),
                 ("engine.landscape",)),
        Equation("L = (1⁄|D|) Σ −log ŷ<sub>c</sub>, &nbsp; ŷ<sub>i</sub> = exp(z<sub>i</sub>) ⁄ "
                 "Σ<sub>k</sub> exp(z<sub>k</sub>)",
                 "The landscape's height: the mean cross-entropy of the 64-32-10 ReLU network "
                 "over all 1797 digits (or its accuracy, if you choose).",
                 (_seed(_KAUTZ, 40, 55, 67),),
                 ("engine.landscape", "engine.mlp")),
    ),
    (
        "Pick a preset from the list, or type f(x, y) and press Enter. Any name that is not "
        "x, y, a function or a constant becomes a parameter with a slider: "
        "<code>a*x**2 + b*y**2</code> gives sliders for a and b.",
        "Drag a parameter slider: a coarse preview follows your hand, the full grid comes when "
        "you let go.",
        "Set the window, the grid, the number of level curves and their spacing; log spacing "
        "shows the floor of deep, flat valleys such as Rosenbrock's.",
        "Pick “Real landscape: digits network” at the end of the list, then the directions "
        "(filter-normalised random, or PCA of the training path) and loss or accuracy.",
    ),
    (
        ("left-drag in 3-D", "rotate the surface"),
        ("wheel in 3-D", "zoom"),
        ("Ctrl + left-drag, middle-drag in 3-D", "pan"),
        ("Ctrl+0", "reset the 3-D camera"),
        ("hover the contour map", "read f, ∇f, |∇f|, the Hessian and its eigenvalues there"),
        ("click the contour map", "pin the read-out at that point"),
        ("Esc", "let the read-out follow the mouse again"),
        ("click a critical-point row", "mark that point"),
        ("W / H / G / C", "wireframe / filled heatmap / gradient arrows / critical points"),
        ("F5, Ctrl+E", "recompute; export PNG, SVG or CSV"),
    ),
    (
        "The arrows cross every level curve at a right angle and point uphill; they are long "
        "where the level curves crowd.",
        "On the saddle x² − y² the gradient vanishes at the origin, as at a minimum, but the "
        "eigenvalues are 2 and −2.",
        "Near the origin xy ⁄ (x² + y²) is 0 along the axes and ½ along y = x: no limit.",
        "The regression loss has a whole valley of minima, 2w + b = 3: one eigenvalue is 0, "
        "so the points are degenerate.",
        "On the real landscape with PCA directions, the projected training path ends at the "
        "trained weights in the middle of the map.",
    ),
)

DESCENT = PanelHelp(
    "descent", "Gradient descent",
    "Optimizers race down the Loss surface tab's function from one start point, in the 3-D "
    "view and on the contour map, with their loss and gradient-norm curves below.",
    (
        Equation("x′ = x − ε ∇f(x) &nbsp; (Θ ← Θ − η ∇L(Θ))",
                 "Plain gradient descent (SGD), the step every other method refines; ε is the "
                 "learning rate of the logarithmic slider.",
                 (_seed("002", section="Gradient descent"), _seed(_KAUTZ, 6)),
                 ("engine.optimizers",)),
        Equation("r(θ) = Σ<sub>i</sub> θ<sub>i</sub>², &nbsp; ∇(λ Σ<sub>j</sub> θ<sub>j</sub>²) = 2λθ",
                 "The L2 λ box adds λ r(θ) to f, so the gradient gains 2λθ.",
                 (_seed(_KAUTZ, 7, 8),),
                 ("engine.optimizers",)),
        Equation("stop when ‖∇f‖ &lt; tol",
                 "A run has converged when its gradient is shorter than a small constant; "
                 "“diverged at step k” when it runs off beyond any bound (the last finite "
                 "point is kept).",
                 (_seed(_KAUTZ, section="Parameterized Families of Functions"),),
                 ("engine.optimizers",)),
        Equation("g ← g · min(1, c ⁄ ‖g‖)",
                 "Gradient clipping by norm: on steep slopes (crowded level curves) the step "
                 "keeps a sane length.",
                 (_seed("001", section="Level Curves: Reading the Loss Landscape"),),
                 ("engine.optimizers", "engine._kernel")),
        Equation("v ← βv + g, &nbsp; θ ← θ − εv &nbsp; (Nesterov: θ ← θ − ε(g + βv))",
                 "Momentum (heavy ball) and Nesterov's look-ahead, β = 0.9.",
                 (_paper("Polyak"), _paper("Sutskever")),
                 ("engine.optimizers",)),
        Equation("s ← s + g² (AdaGrad) &nbsp;or&nbsp; s ← ρs + (1 − ρ)g² (RMSProp), &nbsp; "
                 "θ ← θ − ε g ⁄ (√s + ϵ)",
                 "Per-coordinate step sizes from the history of squared gradients; ρ = 0.9.",
                 (_paper("Duchi"), _paper("Hinton")),
                 ("engine.optimizers",)),
        Equation("m ← β₁m + (1 − β₁)g, &nbsp; v ← β₂v + (1 − β₂)g², "
                 "<br>m̂ = m ⁄ (1 − β₁<sup>t</sup>), &nbsp; v̂ = v ⁄ (1 − β₂<sup>t</sup>), &nbsp; "
                 "θ ← θ − ε m̂ ⁄ (√v̂ + ϵ)",
                 "Adam with bias correction (β₁ = 0.9, β₂ = 0.999, ϵ = 10<sup>−8</sup>); AdamW "
                 "also multiplies θ by 1 − ε·wd each step (decoupled weight decay, wd = 0.01).",
                 (_paper("Kingma"), _paper("Loshchilov")),
                 ("engine.optimizers",)),
        Equation("∇f(a, b) = (⟨∇L(θ), d₁⟩, ⟨∇L(θ), d₂⟩), &nbsp; θ = θ* + a d₁ + b d₂",
                 "On the real landscape the optimizers move on its plane: the gradient of the "
                 "loss over all the network's weights (one backward pass), projected on the "
                 "plane's two directions by the chain rule.",
                 (_seed(_KAUTZ, 43), _paper("Li et al.", "section 3")),
                 ("engine.landscape",)),
    ),
    (
        "Choose the function in the Loss surface tab; this tab follows it.",
        "Tick the optimizers to race and click a start point on the contour map or on the 3-D "
        "surface: the race plays at once.",
        "Set ε, the number of steps and the methods' constants (each defaults to its paper's).",
        "Try the extras: clipping, L2 λ, a learning-rate schedule, gradient noise that mimics "
        "mini-batches.",
        "“Compute basin map” runs one optimizer from every point of a grid and colours each "
        "start by the minimum it reaches (grey where it diverged).",
        "With “Real landscape: digits network” chosen there, the race runs on the landscape's "
        "plane from the start of the training path (or where you click), with a progress bar; "
        "θ* is marked. Basin maps need a typed function.",
    ),
    (
        ("click the map or the surface", "start every ticked optimizer there"),
        ("Space", "play / pause"),
        ("→", "one step"),
        ("Home", "back to the start"),
        ("speed slider", "steps per frame"),
        ("A", "arrows at the balls: dashed −ε∇f, solid the step actually taken"),
        ("B", "show or hide the basin map"),
        ("drag, wheel", "rotate and zoom the 3-D view (Ctrl+0 resets it)"),
        ("Ctrl+E", "export PNG, SVG, GIF or MP4 of the race, CSV of the paths"),
    ),
    (
        "On the saddle x² − y², start on the x-axis: plain descent stops at the saddle, where "
        "∇f = 0; start just off the axis, or add noise, and it escapes.",
        "On Rosenbrock, plain descent crawls along the curved valley floor; momentum gets "
        "much further in the same number of steps.",
        "Too large an ε: “diverged at step k” in the results table; clipping tames it.",
        "With momentum the solid arrow (the step taken) and the dashed one (−ε∇f) part ways.",
        "Basin maps: each minimum collects its own region; the borders run along ridges.",
        "On the real landscape with PCA directions, SGD, momentum and Adam started where "
        "training started head for θ* in the middle of the map, each at its own pace: compare "
        "their paths with the projected training path.",
    ),
)

BACKPROP = PanelHelp(
    "backprop", "Backpropagation",
    "Seed 003's network of three ReLU units (inputs x₁, x₂ and the constant x₀ = 1, nine "
    "weights, loss (ŷ − y)²), walked through one equation at a time with the numbers put in.",
    (
        Equation("σ(z) = max(0, z), &nbsp; σ′(z) = " + _IND + "{z &gt; 0}",
                 "The ReLU and its derivative, 0 at the kink: a unit with z ≤ 0 is dead and "
                 "passes no gradient back.",
                 (_seed(_KAUTZ, 15, 16),),
                 ("engine.backprop",)),
        Equation(f"{_s('z', 'i', 1)} = {_w('i0', 1)} + {_w('i1', 1)} x₁ + {_w('i2', 1)} x₂, &nbsp; "
                 f"{_s('a', 'i', 1)} = σ({_s('z', 'i', 1)})<br>"
                 f"{_s('z', '1', 2)} = {_w('10', 2)} + {_w('11', 2)} {_s('a', '1', 1)} + "
                 f"{_w('12', 2)} {_s('a', '2', 1)}, &nbsp; ŷ = σ({_s('z', '1', 2)}), &nbsp; "
                 "ℓ = (ŷ − y)²",
                 "The forward pass, which Forward applies one line at a time.",
                 (_seed(_KAUTZ, 17, 18, 19, 20),),
                 ("engine.backprop",)),
        Equation(f"{_s('δ', 'i', 'l')} ≡ ∂ℓ⁄∂{_s('z', 'i', 'l')}, &nbsp; ∂ℓ⁄∂ŷ = 2(ŷ − y), &nbsp; "
                 f"{_s('δ', '1', 2)} = 2(ŷ − y) {_IND}{{{_s('z', '1', 2)} &gt; 0}}",
                 "The error terms, and the first two steps back: through the loss and through "
                 "the output ReLU.",
                 (_seed(_KAUTZ, 21, 22, 23),),
                 ("engine.backprop",)),
        Equation(f"∂ℓ⁄∂{_w('10', 2)} = {_s('δ', '1', 2)}, &nbsp; ∂ℓ⁄∂{_w('1j', 2)} = "
                 f"{_s('δ', '1', 2)} {_s('a', 'j', 1)}, &nbsp; ∂ℓ⁄∂{_s('a', 'i', 1)} = "
                 f"{_s('δ', '1', 2)} {_w('1i', 2)}",
                 "The output unit's weight gradients, and the error sent back along each "
                 "layer-2 weight to the hidden activations.",
                 (_seed(_KAUTZ, 24, 25),),
                 ("engine.backprop",)),
        Equation(f"{_s('δ', 'i', 1)} = {_s('δ', '1', 2)} {_w('1i', 2)} {_IND}{{{_s('z', 'i', 1)} &gt; 0}}, "
                 f"&nbsp; ∂ℓ⁄∂{_w('i0', 1)} = {_s('δ', 'i', 1)}, &nbsp; ∂ℓ⁄∂{_w('ij', 1)} = "
                 f"{_s('δ', 'i', 1)} x<sub>j</sub>",
                 "Through the hidden ReLUs to their pre-activations, then the first layer's "
                 "weight gradients.",
                 (_seed(_KAUTZ, 26, 27),),
                 ("engine.backprop",)),
        Equation("w ← w − η ∂ℓ⁄∂w",
                 "Step: one gradient-descent step on all nine weights, in the order of eq. 43.",
                 (_seed(_KAUTZ, 6, 43),),
                 ("engine.backprop",)),
    ),
    (
        "Set the training instance (x₁, x₂, y) and the nine weights with the sliders.",
        "Press Forward repeatedly: each press applies the next equation; the box under the "
        "network shows it, its number in the seed and the numbers substituted.",
        "Then press Backward to walk the backward pass the same way, from ∂ℓ⁄∂ŷ to the "
        "first layer's gradients.",
        "Press Step to take one gradient-descent step with the learning rate η beside it, and "
        "watch the loss fall.",
        "Under “Loss over two weights”, pick any two weights: the loss over them, the other "
        "seven fixed, appears in contour and 3-D views, with the current point marked.",
    ),
    (
        ("F", "Forward: apply the next forward equation"),
        ("B", "Backward: apply the next backward equation"),
        ("S", "Step: one gradient-descent step"),
        ("End", "show both passes at once"),
        ("Home", "hide the computed values and start the walk again"),
        ("drag, wheel", "rotate and zoom the 3-D loss view"),
        ("Ctrl+E", "export the network (PNG, SVG), the loss views, or the gradients (CSV)"),
    ),
    (
        "Edges are coloured by the sign of their weight and as thick as its size; once the "
        "backward pass reaches an edge its label adds ∂ℓ⁄∂w.",
        "Make a hidden unit's z negative: it is marked dead, its δ is 0 and so are the "
        "gradients of its three incoming weights, whatever the error.",
        "The table puts every backprop gradient beside a central-difference estimate "
        "(ℓ(w + h) − ℓ(w − h)) ⁄ 2h: they agree.",
        "The loss over two weights has flat plateaus where a ReLU is dead: the gradient there "
        "is 0, so gradient descent cannot leave them.",
    ),
)

PLAYGROUND = PanelHelp(
    "playground", "Network playground",
    "Train a real depth-L network on toy 2-D data or on 8 × 8 handwritten digits and watch it "
    "learn: the decision map, the loss curves and what each hidden unit computes.",
    (
        Equation(f"{_s('a', '0', 'l')} = 1, &nbsp; {_s('z', 'i', 'l')} = Σ<sub>j=0</sub> "
                 f"{_w('ij', 'l')} {_s('a', 'j', 'l−1')}, &nbsp; {_s('a', 'i', 'l')} = "
                 f"σ({_s('z', 'i', 'l')}), &nbsp; σ(u) = max(0, u), &nbsp; σ′(u) = {_IND}{{u &gt; 0}}",
                 "The forward pass of every layer, the bias being the weight of a constant input "
                 "1. ReLU as in the seed; leaky ReLU, tanh and sigmoid are the alternatives.",
                 (_seed(_KAUTZ, 28, 30, 31, 32, 33),),
                 ("engine.mlp",)),
        Equation(f"ℓ = ‖a<sup>(L)</sup> − y‖², &nbsp; {_s('δ', 'i', 'L')} = 2({_s('a', 'i', 'L')} − "
                 f"y<sub>i</sub>) σ′({_s('z', 'i', 'L')})",
                 "The squared-error loss and the output layer's error terms.",
                 (_seed(_KAUTZ, 35, 36),),
                 ("engine.mlp",)),
        Equation("a<sub>i</sub> = exp(z<sub>i</sub>) ⁄ Σ<sub>k</sub> exp(z<sub>k</sub>), "
                 "&nbsp; ℓ = −log ŷ<sub>c</sub>, &nbsp; so &nbsp; δ<sup>(L)</sup> = ŷ − y",
                 "Softmax with cross-entropy for classes; with the softmax derivatives "
                 "a<sub>i</sub>(1 − a<sub>i</sub>) and −a<sub>i</sub>a<sub>j</sub> the output "
                 "error is simply prediction minus one-hot target.",
                 (_seed(_KAUTZ, 55, 56, 57, 67),),
                 ("engine.mlp",)),
        Equation(f"{_s('δ', 'j', 'l')} = (Σ<sub>i</sub> {_w('ij', 'l+1')} {_s('δ', 'i', 'l+1')}) "
                 f"σ′({_s('z', 'j', 'l')}), &nbsp; ∂ℓ⁄∂{_w('i0', 'l')} = {_s('δ', 'i', 'l')}, &nbsp; "
                 f"∂ℓ⁄∂{_w('ij', 'l')} = {_s('δ', 'i', 'l')} {_s('a', 'j', 'l−1')}",
                 "Backpropagation through any depth: errors flow back along the weights.",
                 (_seed(_KAUTZ, 37, 38, 39),),
                 ("engine.mlp",)),
        Equation("L<sub>mean</sub> = (1⁄|D|) Σ ℓ + λ Σ<sub>l,i</sub> Σ<sub>j≥1</sub> "
                 f"({_w('ij', 'l')})², &nbsp; [G<sup>(l)</sup>]<sub>ij</sub> = (1⁄|D|) Σ "
                 f"{_s('δ', 'i', 'l')} {_s('a', 'j', 'l−1')} + 2λ{_w('ij', 'l')}",
                 "The mean loss over a batch with L2 on every weight but the biases, and its "
                 "gradient, one matrix G<sup>(l)</sup> per layer.",
                 (_seed(_KAUTZ, 40, 41, 42, 45),),
                 ("engine.mlp",)),
        Equation("Θ ← Θ − η ∇L(Θ)",
                 "Plain gradient descent; the other optimizers are those of the Gradient "
                 "descent tab, with the same constants.",
                 (_seed(_KAUTZ, 6),),
                 ("engine.training",)),
        Equation("stop when L<sub>val</sub> has not improved for <i>patience</i> evaluations",
                 "The validation stopping rule: the held-out points never feed a gradient; the "
                 "weights of the best validation step are restored.",
                 (_seed(_KAUTZ, section="Parameterized Families of Functions"),),
                 ("engine.training",)),
    ),
    (
        "Pick a data set, its noise, the number of points and the validation share.",
        "Type the hidden widths (for example <code>8, 8</code>) and choose the activation, the "
        "loss and dropout.",
        "Choose the optimizer, learning rate η, L2 λ, batch size and patience.",
        "Press Play and watch; Step to go one step at a time; Reset for fresh weights.",
    ),
    (
        ("Space", "train / pause"),
        ("→", "one optimizer step"),
        ("Home", "reset: fresh weights, step 0"),
        ("speed box", "steps per frame while playing"),
        ("Ctrl+E", "export the decision map, loss curves and unit maps (PNG, SVG) or the loss "
                   "histories (CSV)"),
    ),
    (
        "The 0.5 boundary of the decision map bends as the hidden units learn; the small maps "
        "show what each unit computes over the plane.",
        "Training loss keeps falling while validation loss turns up: overfitting; the star "
        "marks the best validation step.",
        "Sigmoid or tanh in a deep network can learn slowly: their derivatives are small away "
        "from 0 and multiply layer after layer.",
        "A learning rate that is too large stops training with “diverged at step k”.",
        "For the digits: the confusion matrix, sample digits with the guesses, and each "
        "first-layer unit's weights as an 8 × 8 picture.",
    ),
)

ATTENTION = PanelHelp(
    "attention", "Attention",
    "Text runs through a real transformer (all-MiniLM-L6-v2, 6 layers × 12 heads, in NumPy) as "
    "you type; the tab shows every attention map and seed 000's selection of the tokens the "
    "others look at most.",
    (
        Equation("H = softmax(Q<sub>h</sub> K<sub>h</sub><sup>T</sup> ⁄ √d) &nbsp; for each head h",
                 "A head's attention map: row i is where token i looks (each row sums to 1).",
                 (_paper("Vaswani"),),
                 ("engine.transformer",)),
        Equation("S = Σ<sub>heads H</sub> H",
                 "The head sum, over the heads of the chosen layer or over every layer.",
                 (_seed("000", section="Embedding Selection Algorithm"),),
                 ("engine.attention",)),
        Equation("A = 1 − I, &nbsp; B = A ∘ S &nbsp; (as printed: B = A S)",
                 "A is 0 on the diagonal and 1 elsewhere, to ignore each token's attention to "
                 "itself. The element-wise product does that, as the seed's worked example "
                 "shows (zeros on the diagonal), and is the default; the matrix product as "
                 "printed adds up the other rows instead.",
                 (_seed("000", section="Embedding Selection Algorithm"),),
                 ("engine.attention",)),
        Equation("b<sub>j</sub> = Σ<sub>i</sub> B<sub>ij</sub>, &nbsp; selected = the k largest "
                 "b<sub>j</sub> (k = 1: argmax<sub>j</sub> b<sub>j</sub>)",
                 "How much attention token j receives, and the top-k tokens (orange bars). The "
                 "seed's example B = [[0, 8.41, 3.29], [9.2, 0, 1.6], [5.1, 3.8, 0]] gives "
                 "b = [14.3, 12.21, 4.89] and selects index 0.",
                 (_seed("000", section="Embedding Selection Algorithm"),),
                 ("engine.attention",)),
    ),
    (
        "Type or paste text (up to 512 word pieces); it runs as you type.",
        "Choose a layer and head, or click a thumbnail in the layer × head grid.",
        "Set the selection: the sum (this layer or all layers), the mask, whether [CLS] and "
        "[SEP] count, whether word pieces merge into words, and k.",
        "“Remember the top-k tokens” stores their embeddings in the LSH store tab's memory; "
        "later texts list the remembered tokens closest to their own top-k.",
    ),
    (
        ("hover the map", "the exact attention from row token to column token"),
        ("click a token", "in the strip, on a map or on its bar: frame its row and column "
                          "everywhere and shade the strip by where it looks"),
        ("click a thumbnail", "show that layer and head large"),
        ("Esc", "clear the followed token"),
        ("Ctrl+E", "export the map or the bars (PNG, SVG), or any matrix (CSV)"),
    ),
    (
        "[CLS], [SEP] and punctuation soak up much of the attention in many heads: leave them "
        "out to see the words that matter.",
        "Heads differ: some look at the previous or next token, some at the same word "
        "elsewhere, some at the sentence's end.",
        "Switch the mask to the literal product A S: its column sums are (n − 1) times those "
        "of S, so each token's attention to itself counts again.",
        "Without the model package the tab says how to install it and runs a small random "
        "transformer, labelled as such.",
    ),
)

LSH = PanelHelp(
    "lsh", "LSH store",
    "A locality-sensitive-hashing vector store for cosine similarity, made visible: seed 000's "
    "weak RAG memory, which needs fast inserts and deletes as well as fast look-ups.",
    (
        Equation("bucket<sub>t</sub>(v) = (sign(h<sub>1</sub> · v), …, sign(h<sub>K</sub> · v)), "
                 "&nbsp; h<sub>j</sub> ~ N(0, I)",
                 "Each of the L tables hashes a vector to the K sides of its K random "
                 "hyperplanes; in 2-D the hyperplanes are lines through the origin and the "
                 "buckets are the sectors between them.",
                 (_paper("Charikar"),),
                 ("engine.lsh",)),
        Equation("p = 1 − θ ⁄ π, &nbsp; table: p<sup>K</sup>, &nbsp; index: 1 − (1 − p<sup>K</sup>)"
                 "<sup>L</sup>, &nbsp; cos θ = u · v ⁄ (‖u‖ ‖v‖)",
                 "The chance that two vectors at angle θ agree on one bit, share a bucket of "
                 "one table, and share one in at least one table; the plot sets the rate "
                 "measured on the index's own hyperplanes against it.",
                 (_paper("Charikar"),),
                 ("engine.lsh",)),
        Equation("cost(Δ) = Σ<sub>j ∈ Δ</sub> (h<sub>j</sub> · q)², &nbsp; ‖h<sub>j</sub>‖ = 1",
                 "Multi-probe: a query also visits the buckets reached by flipping the bits Δ "
                 "whose hyperplanes pass closest to it, cheapest first. The candidates are "
                 "then ranked exactly by cosine similarity.",
                 (_paper("Lv et al."),),
                 ("engine.lsh",)),
        Equation("memory ← memory ∪ { (x<sub>j</sub>, token j) : j ∈ top-k(b) }",
                 "Weak RAG: the attention tab stores the contextual embeddings of its selected "
                 "tokens here, and any later text recalls the stored tokens nearest its own.",
                 (_seed("000", section="Weak RAG"),),
                 ("engine.lsh", "app.panels.lsh")),
    ),
    (
        "Choose the data: 2-D points that you click in, or MiniLM token embeddings (a sample "
        "corpus, or what the attention tab remembered) in a PCA view.",
        "Set K (bits per table), L (tables) and the probes: the index is rebuilt at once.",
        "Place a query (Shift+click, or query mode), or type a query text for the token "
        "memory, and read the probed buckets, the candidates, the top-k and the recall.",
        "Click a bucket in the list to see its members; select a point and delete it.",
        "Save the store to a .npz file and open it again later.",
    ),
    (
        ("click the plane", "add a point (2-D), or select the point under the mouse"),
        ("Shift+click", "place the query there (token memory: query with that token)"),
        ("Q", "toggle query mode: a plain click places the query"),
        ("Esc", "clear the query"),
        ("Delete, Backspace", "remove the selected vector"),
        ("hover a point", "its bucket and bits in the table shown"),
        ("Ctrl+E", "export the main view, the histogram or the collision plot (PNG, SVG), the "
                   "bucket statistics (CSV) or the store (.npz)"),
    ),
    (
        "Raise K: buckets shrink and purify, more of them are empty, recall falls; raise L or "
        "the probes to win recall back at the price of more candidates.",
        "The occupancy histogram: with too many bits for the vectors stored, most buckets hold "
        "one vector or none.",
        "The measured collision rate follows 1 − (1 − p<sup>K</sup>)<sup>L</sup> against the "
        "angle.",
        "An empty answer says why, for example K too large for the number of vectors stored.",
    ),
)

PANELS: dict[str, PanelHelp] = {p.key: p for p in (SURFACE, DESCENT, BACKPROP, PLAYGROUND, ATTENTION, LSH)}
#: The panels with help, in the order of the main window's tabs.
HELP_KEYS: tuple[str, ...] = tuple(PANELS)
#: Each key's tab title (the panel class's ``title``).
HELP_TITLES: dict[str, str] = {key: p.title for key, p in PANELS.items()}

_STYLE = """
h2 { color: #1f3a5f; margin-bottom: 2px; }
h3 { color: #1f3a5f; margin-top: 14px; margin-bottom: 4px; }
p.formula { font-family: "DejaVu Serif", "Cambria Math", "STIX Two Math", serif; font-size: 14px;
            background-color: #f2f5fa; margin-top: 8px; margin-bottom: 2px; }
p.meaning { margin-top: 0px; margin-bottom: 0px; }
p.source { color: #5a6270; font-size: small; margin-top: 0px; margin-bottom: 4px; }
td.key { font-weight: bold; white-space: nowrap; padding-right: 12px; }
p.sources { color: #5a6270; font-size: small; }
"""


def _check_key(panel_key: str) -> PanelHelp:
    try:
        return PANELS[panel_key]
    except KeyError:
        raise ValueError(f"no help for panel {panel_key!r}; panels: {', '.join(HELP_KEYS)}") from None


def help_html(panel_key: str) -> str:
    """One panel's help as Qt rich text: equations with their sources, then the guide."""
    page = _check_key(panel_key)
    out = [f"<h2>{escape(page.title)}</h2>", f"<p>{page.summary}</p>", "<h3>Equations</h3>"]
    for eq in page.equations:
        cites = escape(_citation(eq.sources))
        out += [f'<p class="formula">{eq.formula}</p>', f'<p class="meaning">{eq.meaning}</p>',
                f'<p class="source">{cites}</p>']
    out.append("<h3>What to do</h3><ol>")
    out += [f"<li>{step}</li>" for step in page.steps]
    out.append("</ol><h3>Mouse and keys</h3><table cellspacing=\"0\" cellpadding=\"3\">")
    out += [f'<tr><td class="key">{escape(what)}</td><td>{escape(does)}</td></tr>'
            for what, does in page.controls]
    out.append("</table><h3>What to look for</h3><ul>")
    out += [f"<li>{item}</li>" for item in page.look_for]
    out.append("</ul><h3>Sources</h3>")
    seeds = sorted({s.seed for eq in page.equations for s in eq.sources if s.seed})
    papers = sorted({s.paper for eq in page.equations for s in eq.sources if s.paper})
    refs = [f"seed {seed}: {escape(SEEDS[seed][1])}" for seed in seeds]
    refs += [escape(PAPERS[key][1]) for key in papers]
    out.append('<p class="sources">' + "<br>".join(refs) + "</p>")
    return "\n".join(out)


def key_for_panel(panel) -> str:
    """The help key of a panel widget, found by its ``title`` (the tab's text)."""
    title = getattr(panel, "title", None)
    for key, text in HELP_TITLES.items():
        if text == title:
            return key
    raise ValueError(f"no help for a panel titled {title!r}; panels: {', '.join(HELP_TITLES.values())}")


class HelpDialog(QDialog):
    """A non-modal, resizable help window; its combo box switches between the panels."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setModal(False)
        self.setSizeGripEnabled(True)
        self.panel_box = QComboBox()
        for key in HELP_KEYS:
            self.panel_box.addItem(HELP_TITLES[key], key)
        self.panel_box.activated.connect(lambda index: self.show_panel(self.panel_box.itemData(index)))
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.document().setDefaultStyleSheet(_STYLE)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        top = QHBoxLayout()
        top.addWidget(QLabel("Help for"))
        top.addWidget(self.panel_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.key = ""
        self._fit_screen()

    def _fit_screen(self) -> None:
        """About 720 x 820, never more than nine tenths of the screen it opens on."""
        screen = self.screen().availableGeometry() if self.screen() else None
        width, height = 720, 820
        if screen is not None:
            width, height = min(width, int(screen.width() * 0.9)), min(height, int(screen.height() * 0.9))
        self.resize(width, height)

    def show_panel(self, panel_key: str) -> None:
        """Show ``panel_key``'s help, scrolled to the top."""
        page = _check_key(panel_key)
        self.key = panel_key
        self.panel_box.setCurrentIndex(HELP_KEYS.index(panel_key))
        self.setWindowTitle(f"Help: {page.title}")
        self.browser.setHtml(help_html(panel_key))


_detached: list[HelpDialog] = []  # the window opened without a parent, kept for reuse


def show_help(parent, panel_key: str) -> HelpDialog:
    """Open (or bring back) the help window on ``panel_key`` and return it.

    There is one window per parent: calling again reuses it, switched to the panel asked for.
    """
    _check_key(panel_key)
    if parent is not None:
        dialog = parent.findChild(HelpDialog, options=Qt.FindChildOption.FindDirectChildrenOnly)
    else:
        dialog = _detached[0] if _detached and isValid(_detached[0]) else None
    if dialog is None:
        dialog = HelpDialog(parent)
        if parent is None:
            _detached[:] = [dialog]
    dialog.show_panel(panel_key)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
