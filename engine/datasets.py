"""Data sets for the network lab: five 2-D toy sets drawn with NumPy, and the real digits.

The toy sets are the classic pictures of what one hidden layer can and cannot separate
(TensorFlow Playground's xor, circles, spirals and Gaussian blobs, and scikit-learn's two
moons), drawn here from ``numpy.random.default_rng(seed)`` so that one seed always gives
the same points. Each lies roughly within [-1.5, 1.5]^2 before noise; ``noise`` is the
standard deviation of a Gaussian jitter added to both coordinates after labelling, so a
large noise blurs the classes into each other. Classes have equal sizes (up to one point)
and the points come in random order, so a slice of them is a fair sample.

:func:`load_digits` reads scikit-learn's bundled 8 x 8 handwritten digits (1797 real
images, no download), the small cousin of the MNIST example at the end of seed 003.
:func:`split` holds out a validation set for seed 003's validation stopping rule.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TOY_DATASETS", "MAX_POINTS", "Dataset", "make_dataset", "load_digits", "split"]

TOY_DATASETS = ("xor", "circles", "moons", "spirals", "blobs")
MAX_POINTS = 100_000  # largest toy set make_dataset draws
_CLASSES = {"xor": 2, "circles": 2, "moons": 2, "spirals": 2, "blobs": 3}
_XOR_MARGIN = 0.05  # points of xor keep this distance from the axes, so noise 0 is separable
_BLOB_SPREAD = 0.2  # standard deviation of each blob before noise


@dataclass(frozen=True, eq=False)
class Dataset:
    """Points X (n, d) float64 with integer labels y (n,) in 0 .. classes - 1.

    The arrays are read-only: a data set is a value that panels and workers can share.
    """

    X: np.ndarray
    y: np.ndarray
    classes: int
    name: str

    def __post_init__(self) -> None:
        X = np.array(self.X, dtype=np.float64)
        y = np.array(self.y, dtype=np.int64)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.classes):
            raise ValueError(f"labels must lie in 0 .. {self.classes - 1}")
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def features(self) -> int:
        return self.X.shape[1]

    def bounds(self, margin: float = 0.25) -> tuple[tuple[float, float], tuple[float, float]]:
        """x and y ranges around the points of a 2-D set, widened by ``margin`` on each side
        (for a decision map that shows a little beyond the data)."""
        if self.features != 2:
            raise ValueError(f"bounds are for 2-D data sets, this one has {self.features} features")
        lo, hi = self.X.min(axis=0) - margin, self.X.max(axis=0) + margin
        return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _labels(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced labels (class sizes differ by at most one) in random order."""
    return rng.permutation(np.arange(n) % classes)


def _xor(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Class 1 in the quadrants where x and y have opposite signs (x * y < 0).
    n = y.size
    magnitude = rng.uniform(_XOR_MARGIN, 1.0, (n, 2))
    sx = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    sy = np.where(y == 1, -sx, sx)
    return magnitude * np.stack([sx, sy], axis=1)


def _circles(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Class 1: a disc of radius 0.5 (uniform by area); class 0: the ring 0.8 <= r <= 1.2.
    n = y.size
    u = rng.random(n)
    r = np.where(y == 1, 0.5 * np.sqrt(u), np.sqrt(0.64 + (1.44 - 0.64) * u))
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)


def _moons(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # scikit-learn's make_moons at random angles, centred on the origin.
    t = rng.uniform(0.0, math.pi, y.size)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    return np.where((y == 0)[:, None], upper, lower) - np.array([0.5, 0.25])


def _spirals(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Two arms r = 1.4 t, angle = 3.5 pi t (+ pi for class 1), t uniform by arc length.
    t = np.sqrt(rng.uniform(0.0, 1.0, y.size))
    angle = 3.5 * math.pi * t + math.pi * y
    return 1.4 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _blobs(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Three Gaussian blobs at the corners of an equilateral triangle of radius 0.9.
    angle = math.pi / 2 + 2 * math.pi * np.arange(3) / 3
    centres = 0.9 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres[y] + _BLOB_SPREAD * rng.standard_normal((y.size, 2))


_DRAW = {"xor": _xor, "circles": _circles, "moons": _moons, "spirals": _spirals, "blobs": _blobs}


def make_dataset(name: str, n: int, noise: float = 0.0, seed: int = 0) -> Dataset:
    """One of the 2-D toy sets, the same points for the same arguments.

    Parameters
    ----------
    name : {"xor", "circles", "moons", "spirals", "blobs"}
        Two classes each, except "blobs" with three.
    n : int
        Number of points, from the number of classes up to ``MAX_POINTS``.
    noise : float
        Standard deviation of the Gaussian jitter added to each coordinate (0 = none).
    seed : int
        Seed of ``numpy.random.default_rng``.
    """
    if name not in _DRAW:
        raise ValueError(f"unknown data set {name!r} (toy sets: {', '.join(TOY_DATASETS)})")
    classes = _CLASSES[name]
    if isinstance(n, bool) or int(n) != n or not classes <= n <= MAX_POINTS:
        raise ValueError(f"n must be an integer from {classes} to {MAX_POINTS}, got {n!r}")
    noise = float(noise)
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be zero or positive and finite, got {noise!r}")
    rng = np.random.default_rng(seed)
    y = _labels(int(n), classes, rng)
    X = _DRAW[name](y, rng)
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return Dataset(X, y, classes, name)


def load_digits() -> Dataset:
    """scikit-learn's bundled handwritten digits: 1797 images of 8 x 8 pixels, 10 classes.

    The pixels (0 .. 16 in the file) are divided by 16, so X lies in [0, 1]; X is (1797, 64).
    The file is read where scikit-learn installed it, without importing scikit-learn (its
    import takes 1-2 s, which a job could not interrupt); scikit-learn's own loader reads it
    if the file is not where this version keeps it.
    """
    table = _digits_table()
    if table is None:
        from sklearn import datasets

        digits = datasets.load_digits()
        data, target = digits.data, digits.target
    else:
        data, target = table[:, :-1], table[:, -1].astype(np.int64)
    return Dataset(data / 16.0, target, 10, "digits")


def _digits_table() -> np.ndarray | None:
    """scikit-learn's ``datasets/data/digits.csv.gz`` (64 pixels and the label per row), or
    None when scikit-learn or the file is not found."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as file:
                table = np.loadtxt(file, delimiter=",")
            if table.shape == (1797, 65):
                return table
    return None


def split(dataset: Dataset, validation_fraction: float = 0.2,
          seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, validation): a random ``validation_fraction`` of the points held out.

    The permutation comes from ``default_rng(seed)``, so a split is reproducible; each part
    keeps at least one point and the original order of the rest is irrelevant.
    """
    fraction = float(validation_fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must lie strictly between 0 and 1, "
                         f"got {validation_fraction!r}")
    n = len(dataset)
    if n < 2:
        raise ValueError("a data set of fewer than 2 points cannot be split")
    held = min(max(round(fraction * n), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    parts = order[held:], order[:held]
    return tuple(Dataset(dataset.X[p], dataset.y[p], dataset.classes, dataset.name)
                 for p in parts)  # type: ignore[return-value]
