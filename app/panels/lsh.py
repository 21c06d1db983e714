"""LSH store: seed 000's weak RAG memory with its hyperplanes, buckets, probes and recall shown.

Two stores, each an ``engine.lsh.LSHIndex`` (random-hyperplane LSH for cosine similarity):

* **2-D points** that a student clicks in. The K hyperplanes of a table are lines through the
  origin, and every sector between them is one bucket: cosine LSH only sees directions.
* **MiniLM token memory**: contextual token embeddings (the last hidden state of each word
  piece, 384-d) with the token and its sentence as payload, drawn in a 2-D PCA view. The
  attention panel stores its top-k tokens here through :meth:`LSHPanel.remember` and looks
  them up across prompts through :meth:`LSHPanel.recall` (seed 000, "Weak RAG").

Both show the occupancy of a table, the members of a bucket, what a query visits (its probed
buckets, the candidates, the re-ranked top-k) with its recall against exact search, and the
probability that two vectors share a bucket against their angle, measured over theory.

The stores live on the GUI thread: adding, removing, rebuilding and querying take well under a
few milliseconds for the thousands of vectors a panel holds, and the engine's store must not be
mutated alongside another call. Encoding text and measuring collision rates run on workers.
"""

from __future__ import annotations

import html
import io
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import session
from app.jobs import JobFailure, JobResult, JobRunner
from app.panels._layout import controls_beside_views, panel_shortcuts
from engine import attention, lsh, transformer
from engine._progress import drain

POINTS, MEMORY = "points", "minilm"
MODE_LABELS = {POINTS: "2-D points", MEMORY: "MiniLM token memory"}
MEMORY_DIM = 384  # all-MiniLM-L6-v2's hidden size; the random stand-in is built to match
MAX_BITS = {POINTS: 16, MEMORY: 24}
MAX_TABLES = 32
MAX_PROBES = 32
MAX_RESULTS = 50  # the top-k spin box's end
MAX_IMPORTANT = 20  # most query tokens kept by seed 000's selection
MAX_QUERY_TEXT = 32767  # a QLineEdit's length limit
LIVE_REBUILD = 5000  # vectors up to which K and L rebuild the index while their slider moves
MAX_FILE_TABLES = 1024  # an opened file may hold more tables than the slider offers
MAX_ENTRIES = 1_000_000  # vectors per store a session may hold
MAX_ID = 2**63 - 1  # ids and seeds are non-negative int64
PLANE_RADIUS = 1.3  # the 2-D view shows [-1.3, 1.3]^2; random points lie in the unit disc
ANGLES_DEG = np.arange(0.0, 181.0, 10.0)  # where the collision rate is measured
PAIRS = {POINTS: 2000, MEMORY: 300}  # random pairs per angle (384-d pairs cost more)

#: Bucket colours: qualitative and without grey, which means "a smaller bucket" in PCA.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf", "#393b79")
OTHER_COLOR = "#c8c8c8"
STAR_COLOR = "#ffd700"
SELECT_COLOR = "#e6007e"
BAR_COLOR = "#9ecae1"
ERROR_STYLE = "color: #b2182b"
HELP_STYLE = "color: #555"

SAMPLE_CORPUS = (
    "The cat sat on the warm mat by the fire.",
    "A small kitten slept on the rug all afternoon.",
    "Dogs love to chase a ball across the park.",
    "She deposited her salary at the bank on Monday.",
    "We had a picnic on the grassy bank of the river.",
    "The central bank raised interest rates again.",
    "Heavy rain and strong wind are expected tonight.",
    "The sun will shine all weekend under clear skies.",
    "He scored the winning goal in the final minute.",
    "The tennis match lasted almost five hours.",
    "Stir the soup slowly and add a pinch of salt.",
    "Bake the bread until the crust is golden brown.",
    "Python is a popular language for machine learning.",
    "The compiler reported a syntax error on line ten.",
    "Gradient descent walks downhill on the loss surface.",
    "Attention lets every token look at every other token.",
    "The rocket carried a satellite into orbit around Earth.",
    "Astronomers discovered a planet orbiting a distant star.",
    "The orchestra played a symphony by Beethoven.",
    "She practised the piano every evening after school.",
    "The old castle stood on a hill above the village.",
    "Fresh apples and pears are sold at the market.",
)
DEFAULT_QUERY = "A kitten napped on the carpet near the fireplace."

POINTS_HELP = ("Each line is a hyperplane h·x = 0 of the table shown; bit b of a point's "
               "bucket key is 1 on the side h_b points to. The lines cut the plane into 2K "
               "sectors, and each sector is one bucket: cosine LSH only sees a point's "
               "direction. Keys are written h_K … h_1 (h_1's bit rightmost). Click: add a point. Click a point: select it (Delete removes it). "
               "Shift+click, or query mode: place a query.")
WARMING_TEXT = ("Loading the LSH store's compiled code… The first start after an installation "
                "compiles it: about 30 s, longer while other tabs compile theirs. The views "
                "draw and the controls wake as soon as it is ready.")
MEMORY_HELP = ("Each stored entry is one word piece's contextual embedding: MiniLM's last "
               "hidden state (384 numbers), with its token and sentence. The view is a PCA "
               "projection onto the two directions of largest variance; the buckets are cut "
               "in all 384 dimensions, so buckets of one colour may not look close here. "
               "The embeddings are contextual: a token carries its sentence, so 'the' of a "
               "sentence about kittens lies near 'kitten'. Hover a point to read it, click to "
               "select it, Shift+click to query with it.")


# -- state ----------------------------------------------------------------------------------

@dataclass
class ModeSettings:
    """The index settings of one store and how it is queried and shown."""

    n_bits: int  # K, hyperplanes per table
    n_tables: int  # L
    probes: int = 0  # extra buckets visited per table (multi-probe)
    k: int = 5  # results wanted
    table: int = 0  # the table drawn (0-based; the panel shows 1-based numbers)
    seed: int = 0


DEFAULTS = {POINTS: ModeSettings(n_bits=3, n_tables=2, probes=0, k=5),
            MEMORY: ModeSettings(n_bits=8, n_tables=16, probes=2, k=5)}


@dataclass(frozen=True)
class _Corpus:
    """The sample corpus as loaded: its ``count`` tokens, encoded by ``model``, took the ids
    ``first_id`` to ``first_id + count - 1`` in reading order."""

    model: str
    first_id: int
    count: int


@dataclass(frozen=True, eq=False)
class _Restored:
    """A session's LSH state, checked and built, ready to be shown."""

    mode: str
    settings: dict
    stores: dict
    corpus: _Corpus | None
    corpus_ids: set
    random_draws: int
    query_mode: bool
    query_text: str
    important: bool
    important_top: int
    selected_id: int | None
    selected_bucket: int | None


@dataclass(frozen=True, eq=False)
class QuerySpec:
    """What is looked up: one vector (a point, a stored entry) or one per query token."""

    vectors: np.ndarray  # (m, dim)
    labels: tuple[str, ...]  # one per vector, shown in the results
    source: str  # "point", "entry" or "text"
    text: str = ""


@dataclass(frozen=True, eq=False)
class QueryResult:
    """A query's path through the index, per query vector, and its recall@k."""

    spec: QuerySpec
    k: int
    probes: int
    probed: np.ndarray  # (m, L, 1 + probes) keys visited per table; -1 past 2^K - 1 flips
    candidates: tuple[np.ndarray, ...]  # sorted ids sharing a probed bucket
    ids: tuple[np.ndarray, ...]  # the LSH top-k, best first
    scores: tuple[np.ndarray, ...]  # their cosine similarities
    exact: tuple[np.ndarray, ...]  # the exact top-k over every stored vector
    exact_scores: tuple[np.ndarray, ...]
    hits: int  # LSH top-k entries that are also exact top-k entries, over all query vectors
    wanted: int  # sum over query vectors of min(k, n)
    diagnostic: str | None  # the engine's explanation when a query found nothing

    @property
    def recall(self) -> float:
        return self.hits / self.wanted if self.wanted else float("nan")


class LSHStore:
    """A mutable LSH index with fresh increasing ids, plus what the views need as arrays: the
    stored ids and vectors (kept in step with every add and remove, not re-read), their
    bucket keys (re-read after a rebuild) and a PCA basis. ``opened`` counts the files opened:
    a fresh index's hyperplanes follow from (dim, L, K, seed), an opened one's from its file.

    The store also keeps each vector as it was added, rounded to float32 (what the engine
    reads of it): rebuilding from those, not from the stored unit vectors times their norms,
    gives the same unit vectors again, and a saved session that holds them brings the index
    back bit for bit."""

    DRIFT = 0.25  # recompute the PCA basis once a quarter of the contents has changed

    def __init__(self, dim: int, settings: ModeSettings, hyperplanes: np.ndarray | None = None):
        if hyperplanes is None:
            self.index = lsh.LSHIndex(dim, settings.n_tables, settings.n_bits, settings.seed)
        else:  # those of a file opened before a session was saved
            self.index = lsh.LSHIndex.from_hyperplanes(hyperplanes, settings.seed)
        self.next_id = 0
        self.opened = int(hyperplanes is not None)
        self.query: QuerySpec | None = None
        self.version = 0  # counts changes of contents or index: a rebuild's result must match
        self._reload(np.empty((0, dim), np.float32))

    @property
    def dim(self) -> int:
        return self.index.dim

    def __len__(self) -> int:
        return len(self.index)

    def add(self, vectors, payloads=None, ids=None) -> np.ndarray:
        """Store vectors under new ids, or under ``ids`` that the store does not hold (a
        restored corpus); returns the ids. Nothing changes when the engine refuses."""
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim == 1:
            vectors = vectors[None]
        if ids is None:
            ids = np.arange(self.next_id, self.next_id + vectors.shape[0], dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        self.index.add(ids, vectors, payloads)
        if ids.size:
            self.next_id = max(self.next_id, int(ids.max()) + 1)
        # The vectors as the engine keeps them (float32 directions), so that exact search
        # and PCA see what the index sees.
        self._ids = np.concatenate([self._ids, ids])
        self._vectors = np.vstack([self._vectors, self._stored(ids)])
        self._inputs = np.vstack([self._inputs, vectors.astype(np.float32)])
        if self._keys is not None:
            self._keys = np.vstack([self._keys, self._bucket_keys(ids)])
        if ids.size and np.any(np.diff(self._ids) < 0):  # ids given out of order: sort
            order = np.argsort(self._ids, kind="stable")
            self._ids, self._vectors, self._inputs = (self._ids[order], self._vectors[order],
                                                      self._inputs[order])
            if self._keys is not None:
                self._keys = self._keys[order]
        self._drift += int(ids.size)
        self.version += 1
        return ids

    def remove(self, ids) -> int:
        removed = self.index.remove(ids)
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        self._ids, self._vectors, self._inputs = (self._ids[keep], self._vectors[keep],
                                                  self._inputs[keep])
        if self._keys is not None:
            self._keys = self._keys[keep]
        self._drift += removed
        self.version += 1
        return removed

    def clear(self) -> None:
        self.index.clear()
        self._reload(np.empty((0, self.dim), np.float32))
        self.version += 1

    def rebuild(self, n_bits: int, n_tables: int, seed: int) -> None:
        """A new index with these settings holding the same ids, vectors and payloads."""
        self.adopt(drain(build_index(self.rebuild_request("", n_bits, n_tables, seed))))

    def rebuild_request(self, mode: str, n_bits: int, n_tables: int,
                        seed: int) -> RebuildRequest:
        """What :func:`build_index` needs to rebuild this store with other settings."""
        return RebuildRequest(mode, self, self.version, self.dim, self._ids, self._inputs,
                              tuple(self.index.payloads(self._ids)), n_bits, n_tables, seed)

    def adopt(self, index: lsh.LSHIndex) -> None:
        """Take a rebuilt index of the same contents (from :func:`build_index`)."""
        self.index = index
        self._keys = None
        self.version += 1

    def replace(self, index: lsh.LSHIndex) -> None:
        """Adopt another index (an opened file) and everything in it.

        Its vectors are added again as float32 (its unit vectors times their norms), so that
        it holds what adding those gives, as every other store does."""
        ids = np.sort(index.ids())
        inputs = self._stored_in(index, ids).astype(np.float32)
        if ids.size:
            index.add(ids, inputs, index.payloads(ids))
            self.next_id = max(self.next_id, int(ids.max()) + 1)
        self.index = index
        self.opened += 1
        self._reload(inputs)
        self.version += 1

    def inputs(self) -> np.ndarray:
        """The vectors as added, float32, in :meth:`contents` order."""
        return self._inputs

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids in increasing order, their vectors (n, dim))."""
        return self._ids, self._vectors

    def keys(self) -> np.ndarray:
        """(n, L) bucket keys of the stored ids (in :meth:`contents` order), from the engine."""
        if self._keys is None:
            self._keys = self._bucket_keys(self._ids)
        return self._keys

    def buckets(self, table: int) -> list[tuple[int, int]]:
        """(key, size) of the non-empty buckets of ``table``, largest first, then by key."""
        keys = self.keys()
        if not keys.size:
            return []
        values, counts = np.unique(keys[:, table], return_counts=True)
        order = np.lexsort((values, -counts))
        return [(int(values[i]), int(counts[i])) for i in order]

    def pca(self):
        """(coordinates (n, 2), components, mean, explained shares) of the contents, or None.

        The basis (one SVD) is kept while the contents drift by less than a quarter: points
        do not jump when an entry comes or goes, and a remembered token costs no SVD.
        """
        n = self._ids.size
        if not n:
            return None
        if self._basis is None or self._drift > self.DRIFT * self._basis_n:
            _, components, mean, explained = pca_2d(self._vectors)
            self._basis, self._basis_n, self._drift = (components, mean, explained), n, 0
        components, mean, explained = self._basis
        # The coordinates too are kept until the contents (a new array on every change) or
        # the basis change: a redraw of 30 000 MiniLM vectors spent 0.17 s projecting them.
        if self._coords is None or self._coords[0] is not self._vectors \
                or self._coords[1] is not self._basis:
            unit = self._vectors / np.linalg.norm(self._vectors, axis=1, keepdims=True)
            coords = (unit - mean) @ components.T
            coords.flags.writeable = False  # shared by every caller until the next change
            self._coords = (self._vectors, self._basis, coords)
        return self._coords[2], components, mean, explained

    def payload(self, ident: int) -> dict:
        return self.index.payload(int(ident)) or {}

    def _stored(self, ids) -> np.ndarray:
        return self._stored_in(self.index, ids)

    @staticmethod
    def _stored_in(index: lsh.LSHIndex, ids) -> np.ndarray:
        return index.vectors(ids)

    def _bucket_keys(self, ids) -> np.ndarray:
        return self.index.bucket_keys(ids)

    def _reload(self, inputs: np.ndarray) -> None:
        """Re-read the index's contents; ``inputs`` are its vectors as added, in id order."""
        self._ids = np.sort(self.index.ids())
        self._vectors = self._stored(self._ids)
        self._inputs = inputs
        self._keys = None
        self._basis, self._basis_n, self._drift = None, 0, 0
        self._coords = None  # (vectors, basis, their coordinates), see pca()


def _seeded(index: lsh.LSHIndex) -> bool:
    """Whether ``index``'s hyperplanes are those its (dim, L, K, seed) draw."""
    fresh = lsh.LSHIndex(index.dim, index.n_tables, index.n_bits, index.seed)
    return np.array_equal(fresh.hyperplanes, index.hyperplanes)


def _short_floats(rows: np.ndarray) -> list:
    """float32 rows as lists of the shortest decimals that read back as the same float32
    (about half the characters of their float64 values in a session file)."""
    return [[float(str(v)) for v in row] for row in np.asarray(rows, dtype=np.float32)]


def _read_rows(rows: list, path: str, dim: int) -> np.ndarray:
    """A session's list of ``dim``-number lists as an (n, dim) float64 array."""
    out = np.empty((len(rows), dim))
    for i, row in enumerate(rows):
        where = f"{path}[{i}]"
        if not isinstance(row, list) or len(row) != dim:
            raise session.SessionError(f"expected a list of {dim} numbers", where)
        if not all(type(v) in (int, float) for v in row):
            raise session.SessionError("expected numbers only", where)
        try:
            out[i] = row
        except OverflowError:
            raise session.SessionError("a number is out of range", where) from None
    return out


def _read_store(state: dict, mode: str, dim: int):
    """(settings, store, (corpus, its ids) or None) of the store ``state[mode]``, checked;
    the engine checks the vectors, payloads and any hyperplanes as it checks a file's."""
    s = session.expect_dict(state, mode, default={})
    d = DEFAULTS[mode]
    n_bits = session.expect_int(s, "n_bits", mode, low=1, high=lsh.MAX_BITS, default=d.n_bits)
    n_tables = session.expect_int(s, "n_tables", mode, low=1, high=MAX_FILE_TABLES,
                                 default=d.n_tables)
    settings = ModeSettings(
        n_bits, n_tables,
        probes=session.expect_int(s, "probes", mode, low=0, high=MAX_PROBES, default=d.probes),
        k=session.expect_int(s, "k", mode, low=1, high=MAX_RESULTS, default=d.k),
        table=session.expect_int(s, "table", mode, low=0, high=n_tables - 1,
                                default=min(d.table, n_tables - 1)),
        seed=session.expect_int(s, "seed", mode, low=0, high=MAX_ID, default=d.seed))
    items = session.expect_list(s, "ids", mode, max_length=MAX_ENTRIES, default=[])
    ids = [session.expect_int(items, i, f"{mode}.ids", low=0, high=MAX_ID - 1)
           for i in range(len(items))]
    if len(set(ids)) != len(ids):
        raise session.SessionError("an id appears twice", f"{mode}.ids")
    vectors = session.expect_list(s, "vectors", mode, max_length=len(ids), default=[])
    payloads = session.expect_list(s, "payloads", mode, max_length=len(ids),
                                  default=[None] * len(ids))
    for key, values in (("vectors", vectors), ("payloads", payloads)):
        if len(values) != len(ids):
            raise session.SessionError(f"{len(values)} {key} for {len(ids)} ids", f"{mode}.{key}")
    for i, payload in enumerate(payloads):
        if payload is not None and not isinstance(payload, dict):
            raise session.SessionError("expected an object or null", f"{mode}.payloads[{i}]")
        try:
            json.dumps(payload, allow_nan=False)
        except ValueError:
            raise session.SessionError("holds a number JSON cannot store (NaN or infinity)",
                                       f"{mode}.payloads[{i}]") from None
    rows = _read_rows(vectors, f"{mode}.vectors", dim)
    lowest = max(ids) + 1 if ids else 0
    next_id = session.expect_int(s, "next_id", mode, low=lowest, high=MAX_ID, default=lowest)
    found = None
    if mode == MEMORY and s.get("corpus") is not None:
        found = _read_corpus(s, mode, set(ids), next_id)
    planes = None
    if "hyperplanes" in s:
        items = session.expect_list(s, "hyperplanes", mode, max_length=n_tables * n_bits)
        if len(items) != n_tables * n_bits:
            raise session.SessionError(f"expected {n_tables * n_bits} hyperplanes (L × K)",
                                       f"{mode}.hyperplanes")
        planes = _read_rows(items, f"{mode}.hyperplanes", dim).reshape(n_tables, n_bits, dim)
    try:
        store = LSHStore(dim, settings, planes)
    except lsh.StoreError as error:
        raise session.SessionError(str(error), f"{mode}.hyperplanes") from None
    try:
        store.add(rows, payloads, ids=ids)
    except ValueError as error:
        raise session.SessionError(str(error), f"{mode}.vectors") from None
    store.next_id = next_id
    store.query = _read_query(s, mode, dim)
    return settings, store, found


def _read_corpus(state: dict, mode: str, taken: set, next_id: int) -> tuple[_Corpus, set]:
    path = f"{mode}.corpus"
    c = session.expect_dict(state, "corpus", mode)
    corpus = _Corpus(session.expect_str(c, "model", path, max_length=200),
                     session.expect_int(c, "first_id", path, low=0, high=MAX_ID),
                     session.expect_int(c, "count", path, low=1, high=MAX_ENTRIES))
    items = session.expect_list(c, "ids", path, max_length=corpus.count)
    last = min(corpus.first_id + corpus.count, next_id) - 1
    ids = {session.expect_int(items, i, f"{path}.ids", low=corpus.first_id, high=last)
           for i in range(len(items))}
    if len(ids) != len(items):
        raise session.SessionError("an id appears twice", f"{path}.ids")
    if ids & taken:
        raise session.SessionError(f"id {min(ids & taken)} is also a stored entry", f"{path}.ids")
    return corpus, ids


def _read_query(state: dict, mode: str, dim: int) -> QuerySpec | None:
    if state.get("query") is None:
        return None
    path = f"{mode}.query"
    q = session.expect_dict(state, "query", mode)
    items = session.expect_list(q, "vectors", path, max_length=transformer.MAX_TOKENS)
    vectors = _read_rows(items, f"{path}.vectors", dim)
    if not len(vectors):
        raise session.SessionError("a query needs at least one vector", f"{path}.vectors")
    with np.errstate(over="ignore"):
        as_read = vectors.astype(np.float32)  # what the engine reads of a query
    if not np.all(np.isfinite(as_read)) or not np.all(np.any(as_read != 0, axis=1)):
        raise session.SessionError("expected finite vectors with a direction (not zero)",
                                   f"{path}.vectors")
    labels = session.expect_list(q, "labels", path, max_length=len(vectors))
    if len(labels) != len(vectors):
        raise session.SessionError(f"{len(labels)} labels for {len(vectors)} vectors",
                                   f"{path}.labels")
    return QuerySpec(vectors, tuple(session.expect_str(labels, i, f"{path}.labels")
                                    for i in range(len(labels))),
                     session.expect_str(q, "source", path, choices=("point", "entry", "text")),
                     session.expect_str(q, "text", path, max_length=MAX_QUERY_TEXT, default=""))


def exact_top_k(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int):
    """The k stored vectors most cosine-similar to ``query`` by brute force, ties to the
    smaller id as the engine breaks them: the reference the LSH answer is measured against."""
    if not ids.size:
        return np.empty(0, np.int64), np.empty(0)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ (np.asarray(query, dtype=np.float64) / np.linalg.norm(query))
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


def run_query(store: LSHStore, spec: QuerySpec, k: int, probes: int) -> QueryResult:
    """Look every vector of ``spec`` up in the store: probed buckets, candidates, the engine's
    top-k and the exact top-k."""
    index = store.index
    ids, vectors = store.contents()
    probed, candidates, top, top_scores, exact, exact_scores = [], [], [], [], [], []
    hits = wanted = 0
    diagnostic = None
    for vector in spec.vectors:
        keys = index.probe_buckets(vector, probes)
        probed.append(keys)
        members = [index.members(t, int(key)) for t in range(index.n_tables)
                   for key in keys[t] if key >= 0]
        candidates.append(np.unique(np.concatenate(members)) if members
                          else np.empty(0, np.int64))
        found, scores = index.query(vector, k, probes)
        top.append(found)
        top_scores.append(scores)
        best, best_scores = exact_top_k(ids, vectors, vector, k)
        exact.append(best)
        exact_scores.append(best_scores)
        hits += len(set(found.tolist()) & set(best.tolist()))
        wanted += min(k, ids.size)
        if diagnostic is None:
            diagnostic = index.explain_empty(vector, probes)
    return QueryResult(spec, k, probes, np.array(probed), tuple(candidates), tuple(top),
                       tuple(top_scores), tuple(exact), tuple(exact_scores), hits, wanted,
                       diagnostic)


def pca_2d(vectors: np.ndarray):
    """(coordinates (n, 2), components (2, dim), mean, explained variance shares) of the unit
    vectors (cosine LSH sees directions); each component's sign is fixed so that its
    largest entry is positive and the picture does not flip when the store changes.

    Fewer vectors than dimensions: an SVD of the centred vectors. More: the eigenvectors of
    their dim x dim scatter matrix, the same directions for a fraction of the work (an SVD
    of 30 000 MiniLM vectors took 1.3 s, this 0.1 s)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = unit.mean(axis=0)
    centred = unit - mean
    n, dim = unit.shape
    if n < 2:
        components = np.eye(2, dim)
        return centred @ components.T, components, mean, np.zeros(2)
    if n <= dim:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        variances, directions = s**2, vt
    else:
        values, vectors_ = np.linalg.eigh(centred.T @ centred)
        variances, directions = np.clip(values[::-1], 0.0, None), vectors_[:, ::-1].T
    components = np.zeros((2, dim))
    components[:min(2, directions.shape[0])] = directions[:2]
    signs = np.sign(components[np.arange(2), np.argmax(np.abs(components), axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    total = float(np.sum(variances)) or 1.0
    explained = np.zeros(2)
    explained[:min(2, variances.size)] = variances[:2] / total
    return centred @ components.T, components, mean, explained


def bits_text(key: int, n_bits: int) -> str:
    """A bucket key as its K bits, hyperplane 1's bit rightmost (the key's binary form)."""
    return format(int(key), f"0{n_bits}b")


# -- workers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class EncodeRequest:
    """Texts to encode: the sample corpus (every token stored) or a query (``top`` > 0 keeps
    only its ``top`` most important tokens, seed 000's selection on all layers' heads)."""

    kind: str  # "corpus" or "query"
    texts: tuple[str, ...]
    top: int = 0


@dataclass(frozen=True, eq=False)
class EncodedTokens:
    request: EncodeRequest
    vectors: np.ndarray  # (m, 384) last hidden states
    payloads: list  # {"token", "sentence"} per vector
    model_name: str
    notice: str  # "" for MiniLM, else why a random transformer stands in


def _model():
    try:
        return transformer.load_minilm(), ""
    except transformer.ModelUnavailable as error:
        model = transformer.random_transformer(0, hidden=MEMORY_DIM)
        text = str(error)
        if transformer.INSTALL_COMMAND not in text:
            text += f" Install it with: {transformer.INSTALL_COMMAND}"
        return model, (f"{text} Meanwhile: {model.name}, so the neighbours found mean "
                       "nothing.")


def encode_tokens(request: EncodeRequest):
    """Worker job: each text's word pieces and their last hidden states. [CLS], [SEP] and
    punctuation are left out: they carry the whole sentence's context and would turn up as
    everybody's neighbours."""
    model, notice = _model()
    vectors, payloads = [], []
    for i, text in enumerate(request.texts):
        out = model.encode(text)
        specials = [t for t, w in enumerate(out.word_ids) if w is None]
        if request.top > 0:
            chosen, _, _ = attention.select_important_tokens(out.attentions, request.top,
                                                             "elementwise", specials)
            positions = [int(t) for t in chosen]
        else:
            positions = [t for t in range(out.num_tokens)
                         if t not in specials and any(c.isalnum() for c in out.tokens[t])]
        for t in positions:
            vectors.append(out.hidden_states[-1][t].astype(np.float64))
            payloads.append({"token": out.tokens[t], "sentence": text})
        yield (i + 1) / len(request.texts)
    array = np.array(vectors) if vectors else np.empty((0, MEMORY_DIM))
    return EncodedTokens(request, array, payloads, model.name, notice)


@dataclass(frozen=True, eq=False)
class CollisionRequest:
    """Measure the index's collision rate. ``empirical_collision_rate`` reads only the
    hyperplanes, which an index never changes, so the worker may use the live index."""

    index: lsh.LSHIndex
    key: tuple
    n_pairs: int


def _warm_engine(_request):
    """Worker: load (the first time after an installation, compile) the LSH engine's code;
    a closing window stops it between steps."""
    yield from lsh.warm_up_steps()


def measure_collisions(request: CollisionRequest):
    theta = np.radians(ANGLES_DEG)
    return ANGLES_DEG.copy(), request.index.empirical_collision_rate(theta, request.n_pairs)


@dataclass(frozen=True)
class RebuildRequest:
    """A store's contents (ids, vectors as added, payloads) to index with other settings;
    ``store`` and ``version`` say which store, as it was: only the GUI thread reads them."""

    mode: str
    store: object = field(compare=False, repr=False)
    version: int
    dim: int
    ids: np.ndarray = field(compare=False, repr=False)
    inputs: np.ndarray = field(compare=False, repr=False)
    payloads: tuple = field(compare=False, repr=False)
    n_bits: int
    n_tables: int
    seed: int


REBUILD_CHUNK = 4096  # vectors added between progress reports (and chances to stop)


def build_index(request: RebuildRequest):
    """Worker job (a generator: progress fractions, then the index): a new index with the
    request's settings holding its ids, vectors and payloads, added a chunk at a time."""
    index = lsh.LSHIndex(request.dim, request.n_tables, request.n_bits, request.seed)
    n = request.ids.size
    for lo in range(0, n, REBUILD_CHUNK):
        rows = slice(lo, lo + REBUILD_CHUNK)
        index.add(request.ids[rows], request.inputs[rows], request.payloads[rows])
        yield min(1.0, (lo + REBUILD_CHUNK) / n)
    return index


@dataclass(frozen=True)
class OpenRequest:
    """A store file to open into the store of ``mode`` (vectors of dimension ``dim``)."""

    path: str
    mode: str
    dim: int


def open_store_file(request: OpenRequest) -> LSHStore:
    """Worker job (or a direct call): the store saved in ``request.path``, read and checked
    by the engine (:class:`engine.lsh.StoreError` if refused), its vectors added again as
    :meth:`LSHStore.replace` does, and its bucket keys and (for embeddings) PCA basis ready,
    so that the GUI thread only draws it: a store of 30 000 MiniLM vectors takes seconds."""
    index = lsh.LSHIndex.load(request.path, dim=request.dim)
    settings = ModeSettings(n_bits=index.n_bits, n_tables=index.n_tables, seed=index.seed)
    store = LSHStore(index.dim, settings, hyperplanes=index.hyperplanes)
    store.replace(index)
    store.keys()
    if request.mode == MEMORY:
        store.pca()
    return store


# -- views ----------------------------------------------------------------------------------

def _axes_black(plot: pg.PlotItem) -> None:
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setTextPen("k")
        plot.getAxis(axis).setPen("k")


@dataclass(frozen=True)
class PointClick:
    """A click in a points view: where, the stored id hit (or None), and Shift."""

    x: float
    y: float
    ident: int | None
    shift: bool


class PointsView(pg.PlotWidget):
    """Stored vectors as coloured dots, with the overlays of a query and of a selection.

    ``clicked`` carries a :class:`PointClick`; ``hovered`` the id under the mouse or None.
    """

    clicked = Signal(object)
    hovered = Signal(object)
    HIT_PIXELS = 9.0

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.plot = self.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setAspectLocked(True)
        _axes_black(self.plot)
        self.points = pg.ScatterPlotItem(size=10, brush=pg.mkBrush("#888"),
                                         pen=pg.mkPen("k", width=0.7), name="points")
        # The dots of buckets without a colour of their own, one brush for all, drawn
        # under the coloured ones: pyqtgraph takes a third of the time per dot for them.
        self.others = pg.ScatterPlotItem(size=10, brush=_brush(OTHER_COLOR),
                                         pen=pg.mkPen("k", width=0.7))
        self.others.setZValue(9)
        self.plot.addItem(self.others)
        self.members = pg.ScatterPlotItem(symbol="s", size=18, brush=None,
                                          pen=pg.mkPen("#333", width=1.6,
                                                       style=Qt.PenStyle.DashLine))
        self.rings = pg.ScatterPlotItem(symbol="o", size=19, brush=None,
                                        pen=pg.mkPen("k", width=1.8))
        self.stars = pg.ScatterPlotItem(symbol="star", size=24, brush=pg.mkBrush(STAR_COLOR),
                                        pen=pg.mkPen("k", width=1.3))
        self.query = pg.ScatterPlotItem(symbol="+", size=28, brush=pg.mkBrush("k"),
                                        pen=pg.mkPen("w", width=1.2))
        self.selected = pg.ScatterPlotItem(symbol="o", size=26, brush=None,
                                           pen=pg.mkPen(SELECT_COLOR, width=3.2))
        for z, item in enumerate((self.points, self.members, self.rings, self.stars,
                                  self.query, self.selected)):
            item.setZValue(10 + z)
            self.plot.addItem(item)
        self.tip = pg.TextItem("", color="k", fill=pg.mkBrush(255, 255, 255, 235),
                               border=pg.mkPen("#777"), anchor=(0, 1))
        self.tip.setZValue(40)
        self.tip.setVisible(False)
        self.plot.addItem(self.tip, ignoreBounds=True)
        # The legend sits in a row under the x axis, where it can never hide a point.
        self.legend = pg.LegendItem(labelTextColor="k", frame=False, colCount=5,
                                    horSpacing=10)
        self.plot.layout.addItem(self.legend, 4, 1)
        self.xy = np.empty((0, 2))
        self.ids = np.empty(0, np.int64)
        self.keys = np.empty(0, np.int64)  # the bucket key each dot is coloured by
        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)

    def fill_legend(self, entries) -> None:
        self.legend.clear()
        for item, name in entries:
            self.legend.addItem(item, name)

    def set_points(self, xy: np.ndarray, ids: np.ndarray, keys: np.ndarray, colors) -> None:
        """Dots at ``xy`` for ``ids``, each filled with the colour of its bucket key (grey
        for a key without one, under the coloured dots)."""
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.keys = np.asarray(keys, dtype=np.int64)
        coloured = np.isin(self.keys, np.fromiter(colors, np.int64, len(colors)))
        grey = ~coloured
        self.others.setData(pos=self.xy[grey], data=self.ids[grey])
        brushes = [_brush(colors[k]) for k in self.keys[coloured].tolist()]
        self.points.setData(pos=self.xy[coloured], data=self.ids[coloured], brush=brushes)

    def position(self, ident: int):
        hit = np.flatnonzero(self.ids == ident)
        return self.xy[hit[0]] if hit.size else None

    def mark(self, item: pg.ScatterPlotItem, ids) -> None:
        """Put the overlay ``item`` on the dots of ``ids`` (those shown)."""
        ids = np.asarray(list(ids), dtype=np.int64)
        item.setData(pos=self.xy[np.isin(self.ids, ids)] if ids.size else np.empty((0, 2)))

    def marked(self, item: pg.ScatterPlotItem) -> set:
        """The ids under an overlay (what a test compares with the engine)."""
        x, y = item.getData()
        found = set()
        for px, py in zip(x, y):
            hit = np.flatnonzero((self.xy[:, 0] == px) & (self.xy[:, 1] == py))
            found.update(int(self.ids[i]) for i in hit)
        return found

    def show_tip(self, ident, text: str) -> None:
        at = None if ident is None else self.position(ident)
        if at is None or not text:
            self.tip.setVisible(False)
            return
        self.tip.setText(text)
        self.tip.setPos(float(at[0]), float(at[1]))
        self.tip.setVisible(True)

    def nearest(self, scene_pos) -> int | None:
        """The id of the dot within a few pixels of ``scene_pos``, or None."""
        vb = self.plot.vb
        if not self.ids.size or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        pw, ph = vb.viewPixelSize()
        d = np.hypot((self.xy[:, 0] - p.x()) / pw, (self.xy[:, 1] - p.y()) / ph)
        i = int(np.argmin(d))
        return int(self.ids[i]) if d[i] <= self.HIT_PIXELS else None

    def _on_click(self, event) -> None:
        vb = self.plot.vb
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.clicked.emit(PointClick(p.x(), p.y(), self.nearest(event.scenePos()), shift))

    def _on_move(self, scene_pos) -> None:
        self.hovered.emit(self.nearest(scene_pos))


class PlaneView(PointsView):
    """The 2-D store: the K hyperplanes of one table as lines through the origin, each
    bucket's sector shaded in its colour, the probed sectors darker."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("bottom", "x₁")
        self.plot.setLabel("left", "x₂")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setRange(xRange=(-PLANE_RADIUS, PLANE_RADIUS),
                           yRange=(-PLANE_RADIUS, PLANE_RADIUS), padding=0)
        self.lines = pg.PlotCurveItem(pen=pg.mkPen("#222", width=1.8), connect="pairs",
                                      name="hyperplane h·x = 0")
        self.lines.setZValue(5)
        self.plot.addItem(self.lines, ignoreBounds=True)
        self.sectors: list = []  # (QGraphicsPolygonItem, key)
        self.labels: list[pg.TextItem] = []
        self.fill_legend([(self.points, "point (colour = bucket)"),
                          (self.query, "query"),
                          (self.rings, "candidate"),
                          (self.stars, "top-k"),
                          (self.selected, "selected")])

    def set_table(self, planes: np.ndarray, sectors, colors, probed=(), own=None,
                  chosen=None) -> None:
        """Draw the lines of ``planes`` (K, 2) and the ``sectors`` [(start, end, key)] in
        radians; ``probed`` keys are shaded darker (``own``, the query's bucket, outlined
        solid, the other probes dashed) and ``chosen`` (a listed bucket) outlined in colour."""
        for item, _ in self.sectors:
            self.plot.removeItem(item)
        for item in self.labels:
            self.plot.removeItem(item)
        self.sectors, self.labels = [], []
        reach = 3.0 * PLANE_RADIUS
        n_bits = planes.shape[0]
        probed = {int(k) for k in probed}
        for start, end, key in sectors:
            steps = max(2, int(np.ceil((end - start) / 0.05)))
            arc = np.linspace(start, end, steps)
            polygon = QPolygonF([QPointF(0.0, 0.0)] + [QPointF(reach * math.cos(a),
                                                              reach * math.sin(a)) for a in arc])
            item = pg.QtWidgets.QGraphicsPolygonItem(polygon)
            color = QColor(colors.get(key, OTHER_COLOR))
            color.setAlpha(120 if key in probed else 42)
            item.setBrush(pg.mkBrush(color))
            if key == chosen:
                item.setPen(pg.mkPen(SELECT_COLOR, width=3))
            elif key == own:
                item.setPen(pg.mkPen("k", width=2.2))
            elif key in probed:
                item.setPen(pg.mkPen("k", width=1.6, style=Qt.PenStyle.DashLine))
            else:
                item.setPen(pg.mkPen(None))
            item.setZValue(-10 + (2 if key in probed or key == chosen else 0))
            self.plot.addItem(item, ignoreBounds=True)
            self.sectors.append((item, key))
            if len(sectors) <= 16:  # the bits of each sector, just outside the unit circle
                middle = 0.5 * (start + end)
                label = pg.TextItem(bits_text(key, n_bits), color="#444", anchor=(0.5, 0.5))
                label.setPos(1.16 * math.cos(middle), 1.16 * math.sin(middle))
                label.setZValue(6)
                self.plot.addItem(label, ignoreBounds=True)
                self.labels.append(label)
        ends = []
        for b, (a, c) in enumerate(planes):
            direction = np.array([-c, a]) / math.hypot(a, c)
            ends += [-reach * direction, reach * direction]
            if n_bits <= 8:  # name the line where it leaves the view
                name = pg.TextItem(f"h{b + 1}", color="k", anchor=(0.5, 0.5))
                edge = PLANE_RADIUS * 0.93 / max(abs(direction[0]), abs(direction[1]))
                name.setPos(*(edge * direction))
                name.setZValue(7)
                self.plot.addItem(name, ignoreBounds=True)
                self.labels.append(name)
        ends = np.array(ends) if ends else np.empty((0, 2))
        self.lines.setData(ends[:, 0], ends[:, 1])

    def sector_keys(self) -> list[int]:
        return [key for _, key in self.sectors]


class PCAView(PointsView):
    """The token memory in its first two principal components; query tokens named."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot.setLabel("bottom", "PC 1")
        self.plot.setLabel("left", "PC 2")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.query.setSize(22)
        self.query_labels: list[pg.TextItem] = []
        self.fill_legend([(self.points, "token (colour = bucket)"),
                          (self.query, "query token"),
                          (self.rings, "candidate"),
                          (self.stars, "top-k"),
                          (self.selected, "selected")])

    def set_axes(self, explained: np.ndarray) -> None:
        self.plot.setLabel("bottom", f"PC 1 ({100 * explained[0]:.0f}% of the variance)")
        self.plot.setLabel("left", f"PC 2 ({100 * explained[1]:.0f}% of the variance)")

    def set_queries(self, xy: np.ndarray, labels) -> None:
        for item in self.query_labels:
            self.plot.removeItem(item)
        self.query_labels = []
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.query.setData(pos=xy)
        for (x, y), label in zip(xy, labels):
            text = pg.TextItem(label, color="k", anchor=(0, 1.1),
                               fill=pg.mkBrush(255, 255, 255, 190))
            text.setPos(float(x), float(y))
            text.setZValue(30)
            self.plot.addItem(text, ignoreBounds=True)
            self.query_labels.append(text)

    def frame(self) -> None:
        shown = [self.xy] + [np.array([[t.pos().x(), t.pos().y()]]) for t in self.query_labels]
        xy = np.vstack(shown) if shown else np.empty((0, 2))
        if xy.size:
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            pad = 0.08 * max(float(np.max(hi - lo)), 1e-3)
            self.plot.setRange(xRange=(lo[0] - pad, hi[0] + pad),
                               yRange=(lo[1] - pad, hi[1] + pad), padding=0)


class OccupancyView(pg.PlotWidget):
    """How many buckets of a table hold 1, 2, 3, ... vectors; the empty ones are counted in
    the title, since 2^K of them would flatten every other bar."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("bottom", "bucket size (vectors in the bucket)")
        self.plot.setLabel("left", "number of buckets")
        _axes_black(self.plot)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.plot.addItem(self.bars)
        self.sizes = np.empty(0, np.int64)
        self.counts = np.empty(0, np.int64)

    def set_table(self, table: lsh.TableStats, chosen_size: int | None = None) -> None:
        hist = np.asarray(table.histogram, dtype=np.int64)
        sizes = np.flatnonzero(hist[1:]) + 1
        counts = hist[sizes]
        self.sizes, self.counts = sizes, counts
        brushes = [pg.mkBrush(SELECT_COLOR if s == chosen_size else BAR_COLOR) for s in sizes]
        self.bars.setOpts(x=sizes, height=counts, width=0.8, brushes=brushes,
                          pen=pg.mkPen("#555", width=0.6), pens=None)
        share = table.empty / table.n_buckets
        self.plot.setTitle(f"Table {table.table + 1}: {table.nonempty:,} non-empty buckets; "
                           f"empty: {table.empty:,} of 2^K = {table.n_buckets:,} "
                           f"({100 * share:.1f}%)", color="k", size="10pt")
        top = int(sizes.max()) if sizes.size else 1
        self.plot.setRange(xRange=(0.3, top + 0.7), yRange=(0, max(int(counts.max()) if
                                                                    counts.size else 1, 1) * 1.1),
                           padding=0)
        step = max(1, int(np.ceil(top / 20)))
        self.plot.getAxis("bottom").setTicks([[(s, str(s)) for s in range(1, top + 1, step)]])
        most = int(counts.max()) if counts.size else 1
        step = max(1, int(np.ceil(most / 6)))
        self.plot.getAxis("left").setTicks([[(c, str(c)) for c in range(0, most + step, step)]])


class CollisionView(pg.PlotWidget):
    """Probability that two vectors at angle θ share a bucket: per bit, per table and in any
    table (theory, lines) and this index's measured rate (markers)."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot = self.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("bottom", "angle θ between two vectors (degrees)")
        self.plot.setLabel("left", "P(same bucket)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.setToolTip("Lines: the probability over random hyperplanes (Charikar 2002). "
                        "Markers: random pairs at each angle hashed by this index's own "
                        "hyperplanes; a few fixed hyperplanes (2-D, small K·L) stray from the "
                        "average.")
        _axes_black(self.plot)
        self.legend = pg.LegendItem(labelTextColor="k", frame=False, colCount=2,
                                    horSpacing=10)
        self.plot.layout.addItem(self.legend, 4, 1)  # under the axis: it hides no marker
        self.bit = self.plot.plot(pen=pg.mkPen("#999", width=1.6, style=Qt.PenStyle.DashLine))
        self.table = self.plot.plot(pen=pg.mkPen("#1f77b4", width=2))
        self.index = self.plot.plot(pen=pg.mkPen("#d62728", width=2.4))
        self.measured = pg.ScatterPlotItem(symbol="o", size=8, brush=pg.mkBrush("#d62728"),
                                           pen=pg.mkPen("k", width=0.8))
        self.plot.addItem(self.measured)
        self.plot.setRange(xRange=(0, 180), yRange=(0, 1.02), padding=0.02)
        self.plot.getAxis("bottom").setTicks([[(a, str(a)) for a in range(0, 181, 30)]])

    def set_theory(self, n_bits: int, n_tables: int) -> None:
        theta_deg = np.linspace(0.0, 180.0, 361)
        theta = np.radians(theta_deg)
        self.bit.setData(theta_deg, lsh.bit_collision_probability(theta))
        self.table.setData(theta_deg, lsh.table_collision_probability(theta, n_bits))
        self.index.setData(theta_deg, lsh.index_collision_probability(theta, n_bits, n_tables))
        self.measured.setData([], [])
        self.legend.clear()  # re-added, so that the box fits the new labels
        self.legend.addItem(self.bit, "one bit: p = 1 − θ/π")
        self.legend.addItem(self.table, f"one table: p^K, K = {n_bits}")
        self.legend.addItem(self.index, f"any of L = {n_tables} tables: 1 − (1 − p^K)^L")
        self.legend.addItem(self.measured, f"measured: this index's {n_tables * n_bits} "
                                           "planes")
        self.plot.setTitle("Chance that two vectors share a bucket (measuring…)", color="k",
                           size="10pt")

    def set_measured(self, theta_deg: np.ndarray, rates: np.ndarray, n_pairs: int) -> None:
        self.measured.setData(theta_deg, rates)
        self.plot.setTitle(f"Chance that two vectors share a bucket ({n_pairs} random pairs "
                           "per angle)", color="k", size="10pt")


_BRUSHES: dict = {}


def _brush(color: str):
    if color not in _BRUSHES:
        _BRUSHES[color] = pg.mkBrush(color)
    return _BRUSHES[color]


def _item(text: str, data=None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    if data is not None:
        item.setData(Qt.ItemDataRole.UserRole, data)
    return item


def _table(headers) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill_table(table: QTableWidget, rows) -> None:
    """Replace a table's rows (lists of items), sizing the columns once at the end: a
    ResizeToContents header would measure every column again after each item."""
    table.setUpdatesEnabled(False)
    try:
        table.clearContents()
        table.setRowCount(len(rows))
        for r, items in enumerate(rows):
            for c, item in enumerate(items):
                table.setItem(r, c, item)
        table.resizeColumnsToContents()
    finally:
        table.setUpdatesEnabled(True)


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- the panel ------------------------------------------------------------------------------

class LSHPanel(QWidget):
    """A mutable random-hyperplane LSH store, seed 000's weak RAG memory, made visible."""

    title = "LSH store"
    status = Signal(str)
    rebuilt = Signal(str)  # the mode whose views were redrawn after a change
    queried = Signal(object)  # QueryResult
    corpusLoaded = Signal(int)  # entries the sample corpus added
    collisionsMeasured = Signal(object)  # (angles in degrees, measured rates)
    engineReady = Signal()  # the engine's code has loaded (or failed to): the store can act
    export_filters = {
        "PNG image, hyperplanes / PCA view (*.png)": ("main", ".png"),
        "SVG drawing, hyperplanes / PCA view (*.svg)": ("main", ".svg"),
        "PNG image, occupancy histogram (*.png)": ("histogram", ".png"),
        "SVG drawing, occupancy histogram (*.svg)": ("histogram", ".svg"),
        "PNG image, collision probability vs angle (*.png)": ("collision", ".png"),
        "SVG drawing, collision probability vs angle (*.svg)": ("collision", ".svg"),
        "CSV table, bucket statistics (*.csv)": ("buckets", ".csv"),
        "LSH store file (*.npz)": ("store", ".npz"),
    }

    def __init__(self, parent=None, mode: str = POINTS):
        super().__init__(parent)
        self.settings = {m: replace(s) for m, s in DEFAULTS.items()}
        self.stores = {POINTS: LSHStore(2, self.settings[POINTS]),
                       MEMORY: LSHStore(MEMORY_DIM, self.settings[MEMORY])}
        self.mode = POINTS
        self.result: QueryResult | None = None
        self.selected_id: int | None = None
        self.selected_bucket: int | None = None
        self.bucket_colors: dict[int, str] = {}
        self._sector_list: list = []  # (start, end, key) of the 2-D table shown
        self.model_name = ""
        self.model_notice = ""
        self._corpus: _Corpus | None = None  # the sample corpus loaded in the memory
        self._corpus_ids: set[int] = set()  # the ids of its tokens still stored
        self._corpus_job = 0  # the job encoding a restored session's corpus again
        self._pending_selection: int | None = None  # a restored corpus token, until it is back
        self._pca = None  # (components, mean) of the memory view
        self._stale = False  # the shown store changed while the panel was hidden
        self._warm_failed = False  # loading the engine's code ahead of use failed
        self._measured_key = None  # the hyperplanes whose collision rate is shown
        self._measured: dict = {}  # key -> (angles, rates, pairs), for going back and forth
        self._random_draws = 0
        self.corpus_runner = JobRunner(encode_tokens, "lsh-corpus", self)
        self.corpus_runner.finished.connect(self._on_corpus)
        self.corpus_runner.failed.connect(self._on_encode_failed)
        self.corpus_runner.progress.connect(
            lambda _id, f: self.corpus_progress.setValue(int(100 * f)))
        self.query_runner = JobRunner(encode_tokens, "lsh-query", self)
        self.query_runner.finished.connect(self._on_query_encoded)
        self.query_runner.failed.connect(self._on_encode_failed)
        self.collision_runner = JobRunner(measure_collisions, "lsh-collisions", self)
        self.collision_runner.finished.connect(self._on_collisions)
        self.open_runner = JobRunner(open_store_file, "lsh-open", self)
        self.open_runner.finished.connect(self._on_opened)
        self.open_runner.failed.connect(self._on_open_failed)
        self.rebuild_runners = {}  # one per mode: a rebuild of one store never drops another's
        for m in (POINTS, MEMORY):
            runner = JobRunner(build_index, f"lsh-rebuild-{m}", self)
            runner.finished.connect(self._on_rebuilt)
            runner.failed.connect(self._on_rebuild_failed)
            runner.progress.connect(lambda _id, f, m=m: self._show_rebuild_progress(m, f))
            runner.busyChanged.connect(lambda _busy: self._show_rebuild_progress(self.mode))
            self.rebuild_runners[m] = runner
        self.warm_runner = JobRunner(_warm_engine, "lsh-warm-up", self)
        self.warm_runner.finished.connect(self._on_engine_warm)
        self.warm_runner.failed.connect(self._on_warm_failed)
        self._build()
        if not lsh.is_warm():
            self.warm_runner.submit(None)
        self.set_mode(mode)

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        controls = QWidget()
        column = QVBoxLayout(controls)

        dbox = QGroupBox("Data")
        dlay = QVBoxLayout(dbox)
        self.mode_combo = QComboBox()
        for key, label in MODE_LABELS.items():
            self.mode_combo.addItem(label, key)
        self.mode_combo.setToolTip("2-D points you click in, or MiniLM's contextual token "
                                   "embeddings (the attention lab's memory); two separate stores")
        self.mode_combo.currentIndexChanged.connect(
            lambda i: self.set_mode(self.mode_combo.itemData(i)))
        dlay.addWidget(self.mode_combo)
        self.help_label = QLabel()
        self.help_label.setWordWrap(True)
        self.help_label.setStyleSheet(HELP_STYLE)
        dlay.addWidget(self.help_label)
        column.addWidget(dbox)

        self.points_box = QGroupBox("2-D points")
        play = QGridLayout(self.points_box)
        self.random_button = QPushButton("Add 50 random points")
        self.random_button.setToolTip("50 points in the unit disc (a seeded draw each time)")
        self.random_button.clicked.connect(lambda: self.add_random_points(50))
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove every point (the hyperplanes stay)")
        self.clear_button.clicked.connect(self.clear_store)
        self.query_mode = QCheckBox("Query mode: a click places the query (Q)")
        self.query_mode.setToolTip("Otherwise Shift+click places the query and a click adds "
                                   "a point")
        play.addWidget(self.random_button, 0, 0)
        play.addWidget(self.clear_button, 0, 1)
        play.addWidget(self.query_mode, 1, 0, 1, 2)
        column.addWidget(self.points_box)

        self.memory_box = QGroupBox("MiniLM token memory")
        mlay = QGridLayout(self.memory_box)
        self.corpus_button = QPushButton("Load sample corpus")
        self.corpus_button.setToolTip(f"Encode {len(SAMPLE_CORPUS)} built-in sentences with "
                                      "MiniLM on a worker and store every word piece")
        self.corpus_button.clicked.connect(self.load_corpus)
        self.memory_clear = QPushButton("Clear memory")
        self.memory_clear.setToolTip("Remove every stored token (also those remembered "
                                     "from the attention lab)")
        self.memory_clear.clicked.connect(self.clear_store)
        self.corpus_progress = QProgressBar()
        self.corpus_progress.setRange(0, 100)
        self.corpus_progress.setVisible(False)
        self.model_label = QLabel("The model loads with the corpus or the first query.")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.query_edit = QLineEdit(DEFAULT_QUERY)
        self.query_edit.setToolTip("A query text: its tokens are encoded by MiniLM and looked "
                                   "up (Enter)")
        self.query_edit.returnPressed.connect(self._on_search)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self._on_search)
        self.important_check = QCheckBox("only its most important tokens, top")
        self.important_check.setChecked(True)
        self.important_check.setToolTip("Seed 000's selection: the tokens with the largest "
                                        "column sums of the masked attention, summed over every "
                                        "layer and head ([CLS]/[SEP] left out)")
        self.important_spin = QSpinBox()
        self.important_spin.setRange(1, MAX_IMPORTANT)
        self.important_spin.setValue(3)
        self.important_check.toggled.connect(self.important_spin.setEnabled)
        self.query_message = QLabel()
        self.query_message.setWordWrap(True)
        self.query_message.setStyleSheet(ERROR_STYLE)
        mlay.addWidget(self.corpus_button, 0, 0)
        mlay.addWidget(self.memory_clear, 0, 1)
        mlay.addWidget(self.corpus_progress, 1, 0, 1, 2)
        mlay.addWidget(self.model_label, 2, 0, 1, 2)
        mlay.addWidget(QLabel("Query text"), 3, 0, 1, 2)
        mlay.addWidget(self.query_edit, 4, 0, 1, 2)
        mlay.addWidget(self.important_check, 5, 0)
        mlay.addWidget(self.important_spin, 5, 1)
        mlay.addWidget(self.search_button, 6, 0, 1, 2)
        mlay.addWidget(self.query_message, 7, 0, 1, 2)
        column.addWidget(self.memory_box)

        ibox = QGroupBox("Index")
        ilay = QFormLayout(ibox)
        self.bits_slider, self.bits_label = self._slider(
            1, MAX_BITS[MEMORY], "K, hyperplanes per table: more bits make smaller, purer "
            "buckets (and more empty ones). The index is rebuilt at once (holding more than "
            f"{LIVE_REBUILD:,} vectors, when the slider is let go, in the background).",
            self._on_index)
        self.tables_slider, self.tables_label = self._slider(
            1, MAX_TABLES, "L, the number of tables: a neighbour missed by one table may be "
            "caught by another (higher recall, more candidates). Rebuilt at once (holding "
            f"more than {LIVE_REBUILD:,} vectors, when the slider is let go, in the "
            "background).", self._on_index)
        # A drag that rebuilds only when let go still shows the value it is at.
        self.bits_slider.sliderMoved.connect(lambda v: self.bits_label.setText(f"K = {v}"))
        self.tables_slider.sliderMoved.connect(lambda v: self.tables_label.setText(f"L = {v}"))
        self.probes_slider, self.probes_label = self._slider(
            0, MAX_PROBES, "Multi-probe: also visit this many neighbouring buckets per table, "
            "flipping the bits whose hyperplanes pass closest to the query", self._on_probes)
        ilay.addRow(self.bits_label, self.bits_slider)
        ilay.addRow(self.tables_label, self.tables_slider)
        ilay.addRow(self.probes_label, self.probes_slider)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, MAX_RESULTS)
        self.k_spin.setToolTip("How many results a query returns (the k of recall@k)")
        self.k_spin.valueChanged.connect(self._on_k)
        ilay.addRow("top-k", self.k_spin)
        self.table_spin = QSpinBox()
        self.table_spin.setRange(1, 1)
        self.table_spin.setToolTip("The table drawn: its hyperplanes, bucket colours, "
                                   "occupancy and bucket list")
        self.table_spin.valueChanged.connect(self._on_table)
        ilay.addRow("table shown", self.table_spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 99999)
        self.seed_spin.setToolTip("Seed of the Gaussian hyperplanes: a new seed draws new "
                                  "hyperplanes and rebuilds the index")
        self.seed_spin.valueChanged.connect(self._on_index)
        ilay.addRow("hyperplane seed", self.seed_spin)
        self.index_label = QLabel()
        self.index_label.setWordWrap(True)
        ilay.addRow(self.index_label)
        self.index_progress = QProgressBar()  # a large store's rebuild, on a worker
        self.index_progress.setRange(0, 100)
        self.index_progress.setFormat("Rebuilding the index… %p%")
        self.index_progress.setVisible(False)
        ilay.addRow(self.index_progress)
        self.index_warning = QLabel()
        self.index_warning.setWordWrap(True)
        self.index_warning.setStyleSheet(ERROR_STYLE)
        ilay.addRow(self.index_warning)
        column.addWidget(ibox)

        qbox = QGroupBox("Query")
        qlay = QVBoxLayout(qbox)
        self.query_label = QLabel()
        self.query_label.setWordWrap(True)
        self.query_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.diagnostic_label = QLabel()
        self.diagnostic_label.setWordWrap(True)
        self.diagnostic_label.setStyleSheet(ERROR_STYLE)
        self.clear_query_button = QPushButton("Clear query (Esc)")
        self.clear_query_button.clicked.connect(self.clear_query)
        qlay.addWidget(self.query_label)
        qlay.addWidget(self.diagnostic_label)
        qlay.addWidget(self.clear_query_button)
        column.addWidget(qbox)

        sbox = QGroupBox("Selection")
        slay = QVBoxLayout(sbox)
        self.selection_label = QLabel()
        self.selection_label.setWordWrap(True)
        self.delete_button = QPushButton("Delete selected (Del)")
        self.delete_button.setToolTip("Remove the selected vector from the store (engine "
                                      "remove: O(L), nothing is rebuilt)")
        self.delete_button.clicked.connect(self.delete_selected)
        slay.addWidget(self.selection_label)
        slay.addWidget(self.delete_button)
        column.addWidget(sbox)

        fbox = QGroupBox("Store file")
        flay = QGridLayout(fbox)
        self.save_button = QPushButton("Save store…")
        self.save_button.setToolTip("Write this store (vectors, payloads, hyperplanes) to an "
                                    ".npz file")
        self.save_button.clicked.connect(self._save_dialog)
        self.open_button = QPushButton("Open store…")
        self.open_button.setToolTip("Replace this store by one saved before (a refused file "
                                    "leaves the store as it is)")
        self.open_button.clicked.connect(self._open_dialog)
        self.file_message = QLabel()
        self.file_message.setWordWrap(True)
        flay.addWidget(self.save_button, 0, 0)
        flay.addWidget(self.open_button, 0, 1)
        flay.addWidget(self.file_message, 1, 0, 1, 2)
        column.addWidget(fbox)
        column.addStretch(1)

        # Views.
        self.plane = PlaneView()
        self.plane.setMinimumSize(320, 300)
        self.pca = PCAView()
        self.pca.setMinimumSize(320, 240)
        for view in (self.plane, self.pca):
            view.clicked.connect(self._on_view_click)
            view.hovered.connect(self._on_hover)
        self.results = _table(["query token", "#", "stored token", "cosine", "id", "sentence"])
        self.results.setToolTip("The top-k of each query token after re-ranking the "
                                "candidates by cosine similarity; select a row to select the "
                                "entry")
        self.results.itemSelectionChanged.connect(self._on_result_row)
        memory_page = QSplitter(Qt.Orientation.Vertical)
        memory_page.addWidget(self.pca)
        memory_page.addWidget(self.results)
        memory_page.setSizes([460, 200])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.plane)
        self.stack.addWidget(memory_page)

        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(0, 0, 0, 0)
        self.buckets_title = QLabel()
        self.buckets = _table(["bucket key", "bits", "size", "visited by"])
        self.buckets.setToolTip("The non-empty buckets of the table shown, largest first; "
                                "click one to list its members")
        self.buckets.itemSelectionChanged.connect(self._on_bucket_row)
        self.members_title = QLabel("Members: click a bucket")
        self.members = QListWidget()
        self.members.setToolTip("The ids in the bucket chosen above; click one to select it")
        self.members.itemClicked.connect(
            lambda item: self.select(item.data(Qt.ItemDataRole.UserRole)))
        side_lay.addWidget(self.buckets_title)
        side_lay.addWidget(self.buckets, 3)
        side_lay.addWidget(self.members_title)
        side_lay.addWidget(self.members, 2)

        self.histogram = OccupancyView()
        self.histogram.setMinimumHeight(180)
        self.collision = CollisionView()
        self.collision.setMinimumHeight(180)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.stack)
        top.addWidget(side)
        top.setSizes([760, 300])
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.histogram)
        bottom.addWidget(self.collision)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(bottom)
        right.setSizes([600, 290])
        # Until the engine's compiled code is loaded (compiled, the first time after an
        # installation), the views wait and say why, and the controls, the views and the
        # keys that would call the engine are off: a call would wait for the compiler on
        # the GUI thread, freezing the window.
        self.warming_label = QLabel(WARMING_TEXT)
        self.warming_label.setWordWrap(True)
        self.warming_label.setStyleSheet("padding: 6px; background: #fff3cd; color: #664d03;")
        controls_beside_views(self, controls, right, 370, above=self.warming_label)
        self._controls, self._views = controls, right
        self._shortcuts = panel_shortcuts(self, [
            (Qt.Key.Key_Delete, self.delete_selected),
            (Qt.Key.Key_Backspace, self.delete_selected),
            (Qt.Key.Key_Escape, self.clear_query),
            (Qt.Key.Key_Q, lambda: self.mode == POINTS and self.query_mode.toggle())])
        self._show_readiness()

    def _slider(self, low: int, high: int, tip: str, slot):
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setToolTip(tip)
        slider.valueChanged.connect(slot)
        label = QLabel()
        label.setToolTip(tip)
        label.setMinimumWidth(62)
        return slider, label

    # -- public API ------------------------------------------------------------------------
    @property
    def store(self) -> LSHStore:
        """The store of the mode shown."""
        return self.stores[self.mode]

    @property
    def memory(self) -> LSHStore:
        """The MiniLM token memory (seed 000's weak RAG store)."""
        return self.stores[MEMORY]

    def set_mode(self, mode: str) -> None:
        """Show the 2-D store (``"points"``) or the MiniLM token memory (``"minilm"``)."""
        self._show_mode(mode)
        if mode == MEMORY and not len(self.memory) and not self.corpus_runner.busy:
            self.load_corpus()

    def _show_mode(self, mode: str, selected_id: int | None = None,
                   selected_bucket: int | None = None) -> None:
        if mode not in MODE_LABELS:
            raise ValueError(f"unknown mode {mode!r}: use {POINTS!r} or {MEMORY!r}")
        self.mode = mode
        self.selected_id = selected_id
        self.selected_bucket = selected_bucket
        self._pending_selection = None
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentIndex(list(MODE_LABELS).index(mode))
        self.mode_combo.blockSignals(False)
        self.points_box.setVisible(mode == POINTS)
        self.memory_box.setVisible(mode == MEMORY)
        self.help_label.setText(POINTS_HELP if mode == POINTS else MEMORY_HELP)
        self.stack.setCurrentIndex(0 if mode == POINTS else 1)
        self._show_settings()
        self._refresh()

    def set_bits(self, n_bits: int) -> None:
        self.bits_slider.setValue(int(n_bits))

    def set_tables(self, n_tables: int) -> None:
        self.tables_slider.setValue(int(n_tables))

    def set_probes(self, probes: int) -> None:
        self.probes_slider.setValue(int(probes))

    def set_k(self, k: int) -> None:
        self.k_spin.setValue(int(k))

    def set_table(self, table: int) -> None:
        """Draw table ``table`` (0-based)."""
        self.table_spin.setValue(int(table) + 1)

    def add_point(self, x: float, y: float) -> int | None:
        """Add a 2-D point; returns its id (None for the origin, which has no direction)."""
        try:
            (ident,) = self.stores[POINTS].add([[float(x), float(y)]])
        except ValueError as error:
            self.status.emit(f"Not added: {error}")
            return None
        self._store_changed(POINTS)
        self.status.emit(f"Added point {ident} at ({x:.2f}, {y:.2f})")
        return int(ident)

    def add_random_points(self, n: int = 50) -> np.ndarray:
        """``n`` points spread over the unit disc (seeded, a new draw each time)."""
        rng = np.random.default_rng(1000 + self._random_draws)
        self._random_draws += 1
        angle = rng.uniform(0.0, 2.0 * math.pi, n)
        radius = np.sqrt(rng.uniform(0.04, 1.0, n))
        ids = self.stores[POINTS].add(np.column_stack([radius * np.cos(angle),
                                                       radius * np.sin(angle)]))
        self._store_changed(POINTS)
        self.status.emit(f"Added {n} random points ({len(self.stores[POINTS])} stored)")
        return ids

    def clear_store(self) -> None:
        """Remove every vector of the store shown."""
        self.store.clear()
        if self.mode == MEMORY:
            self._forget_corpus()
        self.selected_id = None
        self.selected_bucket = None
        self._store_changed(self.mode)
        self.status.emit(f"Cleared the {MODE_LABELS[self.mode]} store")

    def select(self, ident: int | None) -> None:
        """Select a stored id of the store shown (or nothing)."""
        if ident is not None and int(ident) not in self.store.index:
            ident = None
        self.selected_id = None if ident is None else int(ident)
        self._pending_selection = None
        self._draw_selection()

    def select_bucket(self, key: int | None) -> None:
        """List the members of bucket ``key`` of the table shown, and mark them."""
        self.selected_bucket = None if key is None else int(key)
        self._draw_members()
        self._draw_main()
        self._draw_histogram()

    def delete_selected(self) -> None:
        """Remove the selected vector from its store."""
        if self.selected_id is None:
            self.status.emit("Nothing selected: click a point (or a row) first")
            return
        ident = self.selected_id
        self.remove([ident])
        self.status.emit(f"Removed id {ident}")

    def remove(self, ids) -> int:
        """Remove ``ids`` from the store shown (all must be present)."""
        removed = self.store.remove(list(ids))
        if self.mode == MEMORY:
            self._corpus_ids.difference_update(int(i) for i in ids)
        self._store_changed(self.mode)
        return removed

    def query_point(self, x: float, y: float) -> None:
        """Query the 2-D store with the point (x, y)."""
        if x == 0 and y == 0:
            self.status.emit("The origin has no direction: query somewhere else")
            return
        self.stores[POINTS].query = QuerySpec(np.array([[float(x), float(y)]]),
                                              (f"({x:.2f}, {y:.2f})",), "point")
        self._requery(POINTS)
        self._draw_all()

    def query_entry(self, ident: int) -> None:
        """Query the store shown with a stored vector (a Shift+clicked point)."""
        store = self.store
        payload = store.payload(ident)
        label = str(payload.get("token", f"id {ident}"))
        store.query = QuerySpec(store.index.vector(int(ident))[None], (label,), "entry")
        self._requery(self.mode)
        self._draw_all()

    def query_text(self, text: str | None = None) -> None:
        """Encode a text on a worker and look its tokens up in the memory (``queried``)."""
        text = self.query_edit.text() if text is None else text
        if text != self.query_edit.text():
            self.query_edit.setText(text)
        if not text.strip():
            self.query_message.setText("Type a query text first.")
            return
        self.query_message.clear()
        top = self.important_spin.value() if self.important_check.isChecked() else 0
        self.query_runner.submit(EncodeRequest("query", (text,), top))
        self.status.emit("Encoding the query…")

    def clear_query(self) -> None:
        self.store.query = None
        self.result = None
        self._draw_all()

    def load_corpus(self) -> None:
        """Encode the sample corpus on a worker and store its tokens (``corpusLoaded``)."""
        self._corpus_job = 0  # a restored corpus still on its way is superseded
        self._submit_corpus()
        self.status.emit("Encoding the sample corpus with MiniLM…")

    def _submit_corpus(self) -> int:
        self.corpus_button.setEnabled(False)
        self.corpus_progress.setValue(0)
        self.corpus_progress.setVisible(True)
        return self.corpus_runner.submit(EncodeRequest("corpus", SAMPLE_CORPUS))

    def _forget_corpus(self) -> None:
        """The memory no longer holds the sample corpus (cleared, or replaced by a file)."""
        if self._corpus_job:  # a restored corpus on its way would come back: stop it
            self.corpus_runner.cancel()
            self._corpus_job = 0
            self.corpus_button.setEnabled(True)
            self.corpus_progress.setVisible(False)
        self._corpus, self._corpus_ids = None, set()

    def remember(self, entries) -> list[int]:
        """Store (vector, payload) pairs in the MiniLM memory and return their new ids.

        ``vector`` is a (384,) token embedding (MiniLM's last hidden state of the token);
        ``payload`` a JSON-serialisable dict (for example ``{"token", "sentence"}``) or None.
        The memory is separate from the 2-D store and the panel need not show it. All or
        nothing: a wrong dimension, a zero vector or a payload that is not JSON raises
        ``ValueError``/``TypeError`` and nothing is stored.
        """
        entries = list(entries)
        if not entries:
            return []
        vectors = np.array([np.asarray(v, dtype=np.float64).ravel() for v, _ in entries])
        payloads = [p for _, p in entries]
        ids = self.memory.add(vectors, payloads)
        self._store_changed(MEMORY)
        self.status.emit(f"Remembered {len(ids)} token(s); the memory holds "
                         f"{len(self.memory)}")
        return [int(i) for i in ids]

    def recall(self, vectors, k: int = 5) -> list[tuple[dict, float]]:
        """The k stored entries most cosine-similar to any of ``vectors``, best first.

        ``vectors`` is one (384,) vector or an (m, 384) array (the query tokens); each is
        looked up in the LSH memory with the panel's probes, the answers are merged (an
        entry found by several query vectors counts with its best score) and the k best are
        returned as (payload, cosine similarity) pairs; the payload is a copy ({} if none).
        Fewer than k when the probed buckets hold fewer entries; [] for an empty memory.
        """
        queries = np.asarray(vectors, dtype=np.float64)
        if queries.ndim == 1:
            queries = queries[None]
        k = max(1, int(k))
        store = self.memory
        if not len(store) or not queries.shape[0]:
            return []
        probes = self.settings[MEMORY].probes
        best: dict[int, float] = {}
        for query in queries:
            ids, scores = store.index.query(query, k, probes)
            for ident, score in zip(ids.tolist(), scores.tolist()):
                if score > best.get(ident, -math.inf):
                    best[ident] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [(store.payload(ident), float(score)) for ident, score in ranked]

    def save_store(self, path) -> Path:
        """Write the store shown to ``path`` (.npz) with the engine's atomic save."""
        path = Path(path)
        self.store.index.save(path)
        self.file_message.setStyleSheet("")
        self.file_message.setText(f"Saved {len(self.store)} vectors to {path.name}")
        self.status.emit(f"Saved the store to {path}")
        return path

    def open_store(self, path) -> bool:
        """Replace the store shown by the index in ``path``, now (File > Open store… reads it
        on a worker: :meth:`open_store_in_background`). A file the engine refuses (or of the
        other store's dimension) is reported and the store stays as it was."""
        request = OpenRequest(str(path), self.mode, self.store.dim)
        try:
            store = open_store_file(request)
        except lsh.StoreError as error:
            self._open_refused(str(error))
            return False
        self._adopt_opened(request, store)
        return True

    def open_store_in_background(self, path) -> int:
        """Read the store file at ``path`` on a worker, then show it in place of the store
        shown (as :meth:`open_store`); the window stays live meanwhile. Returns the job id."""
        request = OpenRequest(str(path), self.mode, self.store.dim)
        self.open_button.setEnabled(False)
        self.file_message.setStyleSheet("")
        self.file_message.setText(f"Opening {Path(path).name}…")
        self.status.emit(f"Opening {path}…")
        return self.open_runner.submit(request)

    def _on_opened(self, job: JobResult) -> None:
        self.open_button.setEnabled(True)
        self._adopt_opened(job.request, job.value)

    def _on_open_failed(self, failure: JobFailure) -> None:
        self.open_button.setEnabled(True)
        self._open_refused(failure.message)

    def _open_refused(self, why: str) -> None:
        self.file_message.setStyleSheet(ERROR_STYLE)
        self.file_message.setText(f"Not opened: {why}. The store is unchanged.")
        self.status.emit(f"Not opened: {why}")

    def _adopt_opened(self, request: OpenRequest, store: LSHStore) -> None:
        """Put an opened store in place of the store of ``request.mode``, keeping its query
        and never giving out an id the old store gave."""
        mode, old = request.mode, self.stores[request.mode]
        store.opened = old.opened + 1  # a new set of hyperplanes for the collision plot
        store.next_id = max(store.next_id, old.next_id)
        store.query = old.query
        self.stores[mode] = store
        if mode == MEMORY:
            self._forget_corpus()
        index = store.index
        self.settings[mode] = replace(self.settings[mode], n_bits=index.n_bits,
                                      n_tables=index.n_tables, seed=index.seed, table=0)
        if mode == self.mode:
            self.selected_id = None
            self.selected_bucket = None
            self._show_settings()
        self._store_changed(mode)
        self.file_message.setStyleSheet("")
        self.file_message.setText(f"Opened {Path(request.path).name}: {len(index):,} vectors, "
                                  f"K = {index.n_bits}, L = {index.n_tables}")
        self.status.emit(f"Opened {request.path}")

    def refresh(self) -> None:
        self._store_changed(self.mode)

    # -- session ---------------------------------------------------------------------------
    def session_state(self) -> dict:
        """Both stores (index settings, ids, vectors, payloads, query), the mode shown, the
        query controls and the selection. The sample corpus's tokens are not written out:
        the state names the corpus and the ids its remaining tokens had, and a restore
        encodes it again (it encodes the same every time)."""
        return {"mode": self.mode, POINTS: self._store_state(POINTS),
                MEMORY: self._store_state(MEMORY), "random_draws": self._random_draws,
                "query_mode": self.query_mode.isChecked(), "query_text": self.query_edit.text(),
                "important": self.important_check.isChecked(),
                "important_top": self.important_spin.value(),
                "selected_id": (self.selected_id if self._pending_selection is None
                                else self._pending_selection),
                "selected_bucket": self.selected_bucket}

    def _store_state(self, mode: str) -> dict:
        store, s = self.stores[mode], self.settings[mode]
        ids, _ = store.contents()
        own = ~np.isin(ids, list(self._corpus_ids)) if mode == MEMORY else np.ones(ids.size, bool)
        state = {"n_bits": s.n_bits, "n_tables": s.n_tables, "probes": s.probes, "k": s.k,
                 "table": s.table, "seed": s.seed, "next_id": store.next_id,
                 "ids": ids[own].tolist(), "vectors": _short_floats(store.inputs()[own]),
                 "payloads": store.index.payloads(ids[own])}
        if not _seeded(store.index):
            state["hyperplanes"] = store.index.hyperplanes.reshape(-1, store.dim).tolist()
        q = store.query
        state["query"] = None if q is None else {
            "vectors": q.vectors.tolist(), "labels": list(q.labels), "source": q.source,
            "text": q.text}
        if mode == MEMORY:
            c = self._corpus
            state["corpus"] = None if c is None or not self._corpus_ids else {
                "model": c.model, "first_id": c.first_id, "count": c.count,
                "ids": sorted(self._corpus_ids)}
        return state

    def restore_session_state(self, state: dict) -> None:
        """Show a :meth:`session_state`: both stores are rebuilt from it, and the sample
        corpus, if it was loaded, is encoded again on its worker and stored under its old
        ids. Missing keys take their defaults, unknown keys are ignored; a bad value raises
        ``ValueError`` (a :class:`app.session.SessionError` naming its key) and changes
        nothing. Texts (the query, payloads) are only shown or encoded, never executed."""
        r = self._read_state(state)
        self.corpus_runner.cancel()
        self.query_runner.cancel()
        self.open_runner.cancel()  # a file on its way would replace what is restored
        for runner in self.rebuild_runners.values():
            runner.cancel()
        self.open_button.setEnabled(True)
        self.corpus_progress.setVisible(False)
        self.corpus_button.setEnabled(True)
        self.corpus_button.setText("Reload sample corpus" if r.corpus else "Load sample corpus")
        self.settings, self.stores = r.settings, r.stores
        self._corpus, self._corpus_ids, self._corpus_job = r.corpus, r.corpus_ids, 0
        self._random_draws = r.random_draws
        self._measured.clear()  # a restored store may have a file's hyperplanes
        self._measured_key = None
        self.result = None
        self.query_mode.setChecked(r.query_mode)
        self.query_edit.setText(r.query_text)
        self.important_check.setChecked(r.important)
        self.important_spin.setValue(r.important_top)
        self.query_message.clear()
        self.file_message.clear()
        pending = r.selected_id is not None and r.selected_id not in r.stores[r.mode].index
        self._show_mode(r.mode, None if pending else r.selected_id, r.selected_bucket)
        if r.corpus is not None:
            self._corpus_job = self._submit_corpus()
            self._pending_selection = r.selected_id if pending else None
            self.status.emit("Encoding the saved sample corpus again…")

    @staticmethod
    def _read_state(state: dict) -> _Restored:
        """Check every value of ``state`` and build its stores, off the panel."""
        if not isinstance(state, dict):
            raise session.SessionError("the LSH state must be an object")
        mode = session.expect_str(state, "mode", choices=tuple(MODE_LABELS), default=POINTS)
        settings, stores = {}, {}
        corpus, corpus_ids = None, set()
        for m, dim in ((POINTS, 2), (MEMORY, MEMORY_DIM)):
            settings[m], stores[m], found = _read_store(state, m, dim)
            if found is not None:
                corpus, corpus_ids = found
        selected_id = selected_bucket = None
        if state.get("selected_id") is not None:
            selected_id = session.expect_int(state, "selected_id", low=0, high=MAX_ID)
            if selected_id not in stores[mode].index and selected_id not in corpus_ids:
                raise session.SessionError(f"id {selected_id} is not in the {mode} store",
                                           "selected_id")
        if state.get("selected_bucket") is not None:
            selected_bucket = session.expect_int(state, "selected_bucket", low=0,
                                                 high=2 ** settings[mode].n_bits - 1)
        return _Restored(
            mode, settings, stores, corpus, corpus_ids,
            random_draws=session.expect_int(state, "random_draws", low=0, high=MAX_ID, default=0),
            query_mode=session.expect_bool(state, "query_mode", default=False),
            query_text=session.expect_str(state, "query_text", max_length=MAX_QUERY_TEXT,
                                          default=DEFAULT_QUERY),
            important=session.expect_bool(state, "important", default=True),
            important_top=session.expect_int(state, "important_top", low=1, high=MAX_IMPORTANT,
                                             default=3),
            selected_id=selected_id, selected_bucket=selected_bucket)

    def export(self, path, view: str = "main"):
        """.png/.svg of the main view ("main": hyperplanes or PCA; also "plane", "pca"), of
        the occupancy ("histogram") or of the collision plot ("collision"); .csv of the
        bucket statistics (table, bucket, size; every table); .npz of the store itself."""
        from app import export

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            try:
                self.store.index.save(path)
            except (OSError, lsh.StoreError) as error:
                raise export.ExportError(f"could not write {path}: {error}") from error
            return path
        if suffix == ".csv":
            store = self.store
            text = io.StringIO()
            text.write("table,bucket,size\n")
            for t in range(store.index.n_tables):
                for key, size in sorted(store.buckets(t)):
                    text.write(f"{t + 1},{key},{size}\n")
            export.write_bytes(path, text.getvalue().encode())
            return path
        if suffix not in (".png", ".svg"):
            raise export.ExportError(f"unsupported file type '{suffix}': use .png, .svg, "
                                     ".csv or .npz")
        views = {"main": self.plane if self.mode == POINTS else self.pca, "auto": None,
                 "plane": self.plane, "pca": self.pca, "histogram": self.histogram,
                 "collision": self.collision}
        if view not in views:
            raise export.ExportError(f"unknown view '{view}': use main, plane, pca, "
                                     "histogram or collision")
        return export.save_scene(views[view] or views["main"], path)

    def shutdown(self) -> None:
        for runner in (self.corpus_runner, self.query_runner, self.collision_runner,
                       self.open_runner, self.warm_runner, *self.rebuild_runners.values()):
            runner.shutdown()

    # -- state changes ---------------------------------------------------------------------
    def _show_settings(self) -> None:
        """Put the shown store's settings into the controls (without rebuilding)."""
        s = self.settings[self.mode]
        index = self.store.index
        widgets = (self.bits_slider, self.tables_slider, self.probes_slider, self.k_spin,
                   self.table_spin, self.seed_spin)
        for w in widgets:
            w.blockSignals(True)
        self.bits_slider.setMaximum(max(MAX_BITS[self.mode], index.n_bits))
        self.bits_slider.setValue(index.n_bits)
        self.tables_slider.setMaximum(max(MAX_TABLES, index.n_tables))
        self.tables_slider.setValue(index.n_tables)
        self.probes_slider.setValue(s.probes)
        self.k_spin.setValue(s.k)
        self.table_spin.setRange(1, index.n_tables)
        self.table_spin.setValue(min(s.table, index.n_tables - 1) + 1)
        self.seed_spin.setValue(index.seed)
        for w in widgets:
            w.blockSignals(False)
        self._show_slider_labels()
        self._set_rebuild_tracking()
        self._show_rebuild_progress(self.mode)

    def _set_rebuild_tracking(self) -> None:
        """K and L rebuild while their slider is dragged, unless the store is large: its
        rebuild runs on a worker, but each adopted index is redrawn (a third of a second for
        30 000 vectors), and a drag would queue one per step."""
        live = len(self.store) <= LIVE_REBUILD
        for slider in (self.bits_slider, self.tables_slider):
            slider.setTracking(live)

    def _show_slider_labels(self) -> None:
        s = self.settings[self.mode]
        self.bits_label.setText(f"K = {s.n_bits}")
        self.tables_label.setText(f"L = {s.n_tables}")
        reach = min(s.probes, 2 ** s.n_bits - 1)
        self.probes_label.setText(f"probes = {s.probes}" if reach == s.probes
                                  else f"probes = {s.probes} ({reach} possible)")

    def _on_index(self, *_args) -> None:
        """K, L or the seed changed: rebuild the shown store from its vectors, now, or on a
        worker for a store of more than LIVE_REBUILD vectors (the controls show the new
        settings meanwhile, the views the old index until the new one is in)."""
        n_bits, n_tables = self.bits_slider.value(), self.tables_slider.value()
        seed = self.seed_spin.value()
        runner = self.rebuild_runners[self.mode]
        if len(self.store) > LIVE_REBUILD:
            runner.submit(self.store.rebuild_request(self.mode, n_bits, n_tables, seed))
            self.bits_label.setText(f"K = {n_bits}")
            self.tables_label.setText(f"L = {n_tables}")
            self.status.emit(f"Rebuilding the index of {len(self.store):,} vectors: "
                             f"K = {n_bits} bits × L = {n_tables} tables…")
            return
        runner.cancel()  # these settings replace any still on their way
        self.store.rebuild(n_bits, n_tables, seed)
        self._adopt_settings(self.mode, n_bits, n_tables, seed)

    def _adopt_settings(self, mode: str, n_bits: int, n_tables: int, seed: int) -> None:
        """The store of ``mode`` was rebuilt with these settings: show it."""
        s = self.settings[mode]
        self.settings[mode] = replace(s, n_bits=n_bits, n_tables=n_tables, seed=seed,
                                      table=min(s.table, n_tables - 1))
        if mode == self.mode:
            self.selected_bucket = None
            self._show_settings()
        self._store_changed(mode)
        self.status.emit(f"Rebuilt the index: K = {n_bits} bits × L = {n_tables} tables, "
                         f"{len(self.stores[mode])} vectors")

    def _on_rebuilt(self, job: JobResult) -> None:
        """A worker's rebuild: adopted if its store is still there as it was; if the store
        changed meanwhile (an entry added or removed), done again with what it holds now;
        dropped if the store itself was replaced (a file opened, a session restored)."""
        r = job.request
        store = self.stores[r.mode]
        if store is not r.store:
            return
        if store.version != r.version:
            self.rebuild_runners[r.mode].submit(
                store.rebuild_request(r.mode, r.n_bits, r.n_tables, r.seed))
            return
        store.adopt(job.value)
        self._adopt_settings(r.mode, r.n_bits, r.n_tables, r.seed)

    def _on_rebuild_failed(self, failure: JobFailure) -> None:
        """Keep the index as it was, say why, and put its settings back in the controls."""
        r = failure.request
        if self.stores[r.mode] is not r.store:
            return
        if r.mode == self.mode:
            self._show_settings()
            self.index_warning.setText(f"Rebuilding the index failed: {failure.message}")
        self.status.emit(f"Rebuilding the index failed: {failure.message}")

    def _show_rebuild_progress(self, mode: str, fraction: float | None = None) -> None:
        if mode != self.mode:
            return
        busy = self.rebuild_runners[mode].busy
        self.index_progress.setVisible(busy)
        if fraction is not None:
            self.index_progress.setValue(int(100 * fraction))
        elif not busy:
            self.index_progress.setValue(0)

    def _on_probes(self, value: int) -> None:
        self.settings[self.mode] = replace(self.settings[self.mode], probes=int(value))
        self._show_slider_labels()
        self._requery(self.mode)
        self._draw_all()

    def _on_k(self, value: int) -> None:
        self.settings[self.mode] = replace(self.settings[self.mode], k=int(value))
        self._requery(self.mode)
        self._draw_all()

    def _on_table(self, value: int) -> None:
        self.settings[self.mode] = replace(self.settings[self.mode], table=int(value) - 1)
        self.selected_bucket = None
        self._draw_all()

    def _store_changed(self, mode: str) -> None:
        """A store's contents or index changed: re-run its query and redraw if it is shown
        (in a hidden tab, when the tab is next shown)."""
        self._requery(mode)
        if mode == self.mode:
            self._set_rebuild_tracking()
            if self.selected_id is not None and self.selected_id not in self.store.index:
                self.selected_id = None  # removed (reloading the corpus replaces its ids)
            self._refresh()

    def _refresh(self) -> None:
        """Redraw now if the panel is shown, else when it is next shown: a hidden panel
        (at start-up, in another tab) calls no engine code on the GUI thread."""
        if self.isVisible():
            self._update()
        else:
            self._stale = True

    @property
    def ready(self) -> bool:
        """Whether the store can act without the GUI thread waiting for its code to load:
        loaded, or its loading failed (each call then loads what it needs)."""
        return lsh.is_warm() or self._warm_failed

    def _show_readiness(self) -> None:
        ready = self.ready
        self.warming_label.setVisible(not lsh.is_warm())
        self._controls.setEnabled(ready)
        self._views.setEnabled(ready)
        for shortcut in self._shortcuts:
            shortcut.setEnabled(ready)

    def _on_engine_warm(self, _job: JobResult) -> None:
        self._became_ready()

    def _on_warm_failed(self, failure: JobFailure) -> None:
        """Say so, and act anyway: each call then loads what it needs, or shows its error."""
        self._warm_failed = True
        self.warming_label.setText(f"The LSH store's compiled code failed to load ahead of "
                                   f"use: {failure.message}")
        self._became_ready()

    def _became_ready(self) -> None:
        self._show_readiness()
        if self._stale:
            self._stale = False
            self._refresh()
        self.engineReady.emit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._update()

    def _requery(self, mode: str) -> None:
        store = self.stores[mode]
        s = self.settings[mode]
        if store.query is None:
            result = None
        else:
            result = run_query(store, store.query, s.k, s.probes)
        if mode == self.mode:
            self.result = result
        if result is not None:
            self.queried.emit(result)

    def _update(self) -> None:
        """Everything the shown store affects: query, views, lists and the collision plot."""
        if not self.ready:  # drawn when it is (_became_ready)
            self._stale = True
            return
        if self.store.query is not None and (self.result is None
                                             or self.result.spec is not self.store.query):
            self._requery(self.mode)
        elif self.store.query is None:
            self.result = None
        self._draw_all()
        self._measure_collisions()

    def _measure_collisions(self) -> None:
        store = self.store
        index = store.index
        key = (self.mode, store.opened, index.n_bits, index.n_tables, index.seed)
        if key == self._measured_key:
            return  # the same hyperplanes: shown already, or being measured
        self._measured_key = key
        self.collision.set_theory(index.n_bits, index.n_tables)
        if key in self._measured:
            self.collision.set_measured(*self._measured[key])
        else:
            self.collision_runner.submit(CollisionRequest(index, key, PAIRS[self.mode]))

    # -- drawing ---------------------------------------------------------------------------
    def _draw_all(self) -> None:
        self._colour_buckets()
        self._draw_main()
        self._draw_buckets()
        self._draw_members()
        self._draw_histogram()
        self._draw_query_text()
        self._draw_selection()
        self._draw_index_text()
        self.rebuilt.emit(self.mode)

    def _table(self) -> int:
        return min(self.settings[self.mode].table, self.store.index.n_tables - 1)

    def _sectors(self) -> list[tuple[float, float, int]]:
        """The 2K sectors of the shown table of the 2-D store: (start, end, key), the key
        read from the engine (``bucket_of``) at the sector's middle direction."""
        index = self.stores[POINTS].index
        table = self._table()
        planes = index.hyperplanes[table]
        bounds = []
        for a, c in planes:
            along = math.atan2(c, a) + math.pi / 2  # the line h·x = 0
            bounds += [along % (2 * math.pi), (along + math.pi) % (2 * math.pi)]
        bounds = sorted(bounds)
        sectors = []
        for i, start in enumerate(bounds):
            end = bounds[i + 1] if i + 1 < len(bounds) else bounds[0] + 2 * math.pi
            if end - start < 1e-12:
                continue
            middle = 0.5 * (start + end)
            key = int(index.bucket_of(np.array([math.cos(middle), math.sin(middle)]))[table])
            sectors.append((start, end, key))
        return sectors

    def _colour_buckets(self) -> None:
        """Colours per bucket key of the shown table. 2-D: by sector, going round, so that
        neighbouring sectors differ. Memory: the 10 largest buckets, the rest grey."""
        if self.mode == POINTS:
            self._sector_list = self._sectors()
            self.bucket_colors = {key: PALETTE[i % len(PALETTE)]
                                  for i, (_, _, key) in enumerate(self._sector_list)}
        else:
            buckets = [b for b in self.store.buckets(self._table()) if b[1] > 1]
            self.bucket_colors = {key: PALETTE[i] for i, (key, _) in
                                  enumerate(buckets[:len(PALETTE)])}

    def _overlays(self):
        """(probed keys of the shown table, the query's own key, candidates, top-k)."""
        r = self.result
        if r is None:
            return set(), None, set(), set()
        table = self._table()
        probed = {int(k) for row in r.probed for k in row[table] if k >= 0}
        own = int(r.probed[0][table][0]) if len(r.probed) == 1 else None
        candidates = set().union(*(set(c.tolist()) for c in r.candidates))
        top = set().union(*(set(i.tolist()) for i in r.ids))
        return probed, own, candidates, top

    def _draw_main(self) -> None:
        store = self.store
        ids, vectors = store.contents()
        keys = store.keys()[:, self._table()] if ids.size else np.empty(0, np.int64)
        probed, own, candidates, top = self._overlays()
        if self.mode == POINTS:
            view = self.plane
            view.set_table(store.index.hyperplanes[self._table()], self._sector_list,
                           self.bucket_colors, probed, own, self.selected_bucket)
            view.set_points(vectors, ids, keys, self.bucket_colors)
            query = self.result.spec.vectors if self.result is not None else np.empty((0, 2))
            view.query.setData(pos=query)
            n, K = len(store), store.index.n_bits
            sectors = len(self._sector_list)
            view.plot.setTitle(
                f"Table {self._table() + 1} of {store.index.n_tables}: K = {K} lines, "
                f"{sectors} sectors = buckets ({sectors} of 2^K = {2 ** K:,} keys occur in "
                f"2-D); {n} point{'s' if n != 1 else ''}", color="k", size="10pt")
        else:
            view = self.pca
            if ids.size:
                xy, components, mean, explained = store.pca()
                self._pca = (components, mean)
                view.set_axes(explained)
            else:
                xy, self._pca = np.empty((0, 2)), None
            view.set_points(xy, ids, keys, self.bucket_colors)
            if self.result is not None and self._pca is not None:
                components, mean = self._pca
                q = self.result.spec.vectors
                q = q / np.linalg.norm(q, axis=1, keepdims=True)
                view.set_queries((q - mean) @ components.T, self.result.spec.labels)
            else:
                view.set_queries(np.empty((0, 2)), [])
            view.frame()
            shown = len(self.bucket_colors)
            view.plot.setTitle(
                f"{len(store):,} tokens (384-d) by PCA; colour: bucket in table "
                f"{self._table() + 1} ({shown} largest; the rest grey)", color="k", size="10pt")
        view.mark(view.rings, candidates)
        view.mark(view.stars, top)
        view.mark(view.members, store.index.members(self._table(), self.selected_bucket)
                  if self.selected_bucket is not None else [])
        view.mark(view.selected, [] if self.selected_id is None else [self.selected_id])

    def _draw_buckets(self) -> None:
        store = self.store
        table = self._table()
        K = store.index.n_bits
        buckets = store.buckets(table)
        self.buckets_title.setText(f"<b>Buckets of table {table + 1}</b> "
                                   f"({len(buckets):,} non-empty of {2 ** K:,})")
        self.buckets.blockSignals(True)
        chosen_row = None
        rows = []
        visits: dict[int, list[str]] = {}  # who visits each bucket of this table, and how
        if self.result is not None:
            r = self.result
            single = len(r.probed) == 1
            for label, keys in zip(r.spec.labels, r.probed):
                for j, k in enumerate(int(k) for k in keys[table] if k >= 0):
                    who = "query" if single else label
                    visits.setdefault(k, []).append(who if j == 0 else f"{who} (probe {j})")
        for row, (key, size) in enumerate(buckets):
            first = _item(str(key), key)
            first.setData(Qt.ItemDataRole.DecorationRole,
                          QColor(self.bucket_colors.get(key, OTHER_COLOR)))
            rows.append([first, _item(bits_text(key, K), key), _item(str(size), key),
                         _item(", ".join(visits.get(key, [])), key)])
            if key == self.selected_bucket:
                chosen_row = row
        _fill_table(self.buckets, rows)
        self.buckets.clearSelection()
        if chosen_row is not None:
            self.buckets.selectRow(chosen_row)
        self.buckets.blockSignals(False)

    def _describe(self, ident: int) -> str:
        store = self.store
        if self.mode == POINTS:
            x, y = store.index.vector(int(ident))
            return f"id {ident}  ({x:.2f}, {y:.2f})"
        p = store.payload(ident)
        return f"id {ident}  '{p.get('token', '?')}'  {_short(str(p.get('sentence', '')), 60)}"

    def _draw_members(self) -> None:
        self.members.clear()
        key = self.selected_bucket
        if key is None:
            self.members_title.setText("Members: click a bucket")
            return
        table = self._table()
        ids = self.store.index.members(table, key)
        self.members_title.setText(f"<b>Members of bucket {key}</b> "
                                   f"({bits_text(key, self.store.index.n_bits)}) in table "
                                   f"{table + 1}: {ids.size}")
        for ident in ids.tolist():
            item = QListWidgetItem(self._describe(ident))
            item.setData(Qt.ItemDataRole.UserRole, int(ident))
            self.members.addItem(item)

    def _draw_histogram(self) -> None:
        stats = self.store.index.stats()
        table = stats.tables[self._table()]
        size = None
        if self.selected_bucket is not None:
            size = int(self.store.index.members(self._table(), self.selected_bucket).size)
        self.histogram.set_table(table, size)

    def _draw_index_text(self) -> None:
        index = self.store.index
        s = self.settings[self.mode]
        stats = index.stats()
        self.index_label.setText(
            f"{len(index):,} vectors in {index.n_tables} table(s) of 2^{index.n_bits} = "
            f"{2 ** index.n_bits:,} buckets; on average {100 * stats.empty_fraction:.1f}% "
            "of the buckets are empty.")
        warning = index.explain_empty(None, s.probes) if len(index) else None
        self.index_warning.setText(f"Most queries will find nothing. {warning}"
                                   if warning and self.mode == MEMORY else "")

    def _draw_query_text(self) -> None:
        r = self.result
        self.results.blockSignals(True)
        self.results.setRowCount(0)
        if r is None:
            self.query_label.setText("No query yet. " + (
                "Shift+click the plane (or switch on query mode)." if self.mode == POINTS
                else "Type a text and press Search, or Shift+click a point."))
            self.diagnostic_label.clear()
            self.results.blockSignals(False)
            return
        table = self._table()
        n = len(self.store)
        m = len(r.spec.vectors)
        n_cand = len(set().union(*(set(c.tolist()) for c in r.candidates)))
        rows = [f"<b>Query</b> {html.escape(', '.join(r.spec.labels[:8]))}"
                + (" …" if m > 8 else "")]
        if m == 1:
            probed = [int(k) for k in r.probed[0][table] if k >= 0]
            K = self.store.index.n_bits
            names = ", ".join(f"{k} ({bits_text(k, K)})" for k in probed[:6])
            rows.append(f"probed in table {table + 1}: {names}"
                        + (" …" if len(probed) > 6 else ""))
        L = self.store.index.n_tables
        rows.append(f"candidates re-ranked: <b>{n_cand}</b> of {n} stored, from "
                    f"{1 + r.probes} bucket{'s' if r.probes else ''} in each of {L} "
                    f"table{'s' if L > 1 else ''}"
                    + (f" (the view {'shades' if self.mode == POINTS else 'colours'} "
                       f"table {table + 1}'s)" if L > 1 else ""))
        if m == 1:
            found = ", ".join(f"{i} ({s:.3f})" for i, s in zip(r.ids[0].tolist(),
                                                                 r.scores[0].tolist()))
            exact = ", ".join(str(i) for i in r.exact[0].tolist())
            rows.append(f"LSH top-{r.k}: {found or 'nothing'}")
            rows.append(f"exact top-{r.k}: {exact or 'nothing'}")
        if r.wanted:
            rows.append(f"<b>recall@{r.k} = {r.hits}/{r.wanted} = {r.recall:.2f}</b> "
                        "against exact cosine search over every stored vector")
        self.query_label.setText("<br>".join(rows))
        if r.diagnostic:
            self.diagnostic_label.setText(f"Nothing found: {r.diagnostic}")
        elif r.wanted and any(len(i) < min(r.k, n) for i in r.ids):
            self.diagnostic_label.setText(
                f"Fewer than k = {r.k} candidates for some query: lower K, add tables or "
                "probes.")
        else:
            self.diagnostic_label.clear()
        if self.mode == MEMORY:
            self._fill_results(r)
        self.results.blockSignals(False)

    def _fill_results(self, r: QueryResult) -> None:
        rows = []
        for label, ids, scores in zip(r.spec.labels, r.ids, r.scores):
            for rank, (ident, score) in enumerate(zip(ids.tolist(), scores.tolist()), 1):
                rows.append((label, rank, ident, score))
        items = []
        for label, rank, ident, score in rows:
            p = self.store.payload(ident)
            cells = (label, str(rank), p.get("token", ""), f"{score:.3f}", str(ident),
                     str(p.get("sentence", "")))
            items.append([_item(text, ident) for text in cells])
        _fill_table(self.results, items)

    def _draw_selection(self) -> None:
        view = self.plane if self.mode == POINTS else self.pca
        ident = self.selected_id
        view.mark(view.selected, [] if ident is None else [ident])
        self.delete_button.setEnabled(ident is not None)
        if ident is None:
            self.selection_label.setText("Nothing selected. Click a point (or a row of a "
                                         "list) to select it.")
            return
        keys = self.store.index.bucket_of(int(ident))
        K = self.store.index.n_bits
        self.selection_label.setText(
            f"{html.escape(self._describe(ident))}<br>bucket in table {self._table() + 1}: "
            f"{int(keys[self._table()])} ({bits_text(int(keys[self._table()]), K)})")

    # -- handlers --------------------------------------------------------------------------
    def _on_view_click(self, click: PointClick) -> None:
        (self.plane if self.mode == POINTS else self.pca).setFocus()
        if self.mode == POINTS:
            if click.shift or self.query_mode.isChecked():
                self.query_point(click.x, click.y)
            elif click.ident is not None:
                self.select(click.ident)
            else:
                ident = self.add_point(click.x, click.y)
                if ident is not None:
                    self.select(ident)
            return
        if click.ident is None:
            self.select(None)
        elif click.shift:
            self.query_entry(click.ident)
        else:
            self.select(click.ident)

    def _on_hover(self, ident) -> None:
        view = self.plane if self.mode == POINTS else self.pca
        if ident is None or ident not in self.store.index:
            view.show_tip(None, "")
            return
        table = self._table()
        key = int(self.store.index.bucket_of(int(ident))[table])
        view.show_tip(ident, f"{self._describe(ident)}\nbucket {key} "
                             f"({bits_text(key, self.store.index.n_bits)}) in table "
                             f"{table + 1}")

    def _on_bucket_row(self) -> None:
        items = self.buckets.selectedItems()
        if items:
            self.select_bucket(items[0].data(Qt.ItemDataRole.UserRole))

    def _on_result_row(self) -> None:
        items = self.results.selectedItems()
        if items:
            self.select(items[0].data(Qt.ItemDataRole.UserRole))

    def _on_search(self) -> None:
        if self.mode != MEMORY:
            self.set_mode(MEMORY)
        self.query_text()

    def _on_corpus(self, job: JobResult) -> None:
        encoded: EncodedTokens = job.value
        self.corpus_button.setEnabled(True)
        self.corpus_progress.setVisible(False)
        self._show_model(encoded)
        self.corpus_button.setText("Reload sample corpus")
        if job.job_id == self._corpus_job:
            self._corpus_job = 0
            ids = self._restore_corpus(encoded)
        else:
            old = [i for i in self._corpus_ids if i in self.memory.index]
            if old:  # loading again replaces the corpus, not what was remembered
                self.memory.remove(old)
            ids = self.memory.add(encoded.vectors, encoded.payloads)
            self._corpus_ids = set(ids.tolist())
            self._corpus = (_Corpus(encoded.model_name, int(ids[0]), int(ids.size)) if ids.size
                            else None)
            self.status.emit(f"Stored {len(ids)} tokens of {len(SAMPLE_CORPUS)} sentences "
                             f"({encoded.model_name}, {job.seconds:.1f} s)")
        self._store_changed(MEMORY)
        self.corpusLoaded.emit(len(ids))

    def _restore_corpus(self, encoded: EncodedTokens) -> np.ndarray:
        """Store again the corpus tokens a restored session kept, under their old ids."""
        corpus = self._corpus
        if (encoded.model_name, len(encoded.payloads)) != (corpus.model, corpus.count):
            self.query_message.setText(
                f"The saved sample corpus was not restored: it was {corpus.count} tokens of "
                f"{corpus.model}, here it is {len(encoded.payloads)} of {encoded.model_name}. "
                "Load sample corpus stores it again.")
            self.corpus_button.setText("Load sample corpus")
            self._corpus, self._corpus_ids = None, set()
            self._pending_selection = None
            return np.empty(0, np.int64)
        ids = np.array(sorted(self._corpus_ids), dtype=np.int64)
        at = ids - corpus.first_id
        self.memory.add(encoded.vectors[at], [encoded.payloads[i] for i in at], ids=ids)
        if self._pending_selection is not None and self.mode == MEMORY:
            self.selected_id, self._pending_selection = self._pending_selection, None
        self.status.emit(f"Restored {ids.size} tokens of the sample corpus ({corpus.model})")
        return ids

    def _on_query_encoded(self, job: JobResult) -> None:
        encoded: EncodedTokens = job.value
        self._show_model(encoded)
        if not len(encoded.payloads):
            self.query_message.setText("The query has no tokens to look up.")
            return
        labels = tuple(p["token"] for p in encoded.payloads)
        self.memory.query = QuerySpec(encoded.vectors, labels, "text",
                                      encoded.request.texts[0])
        self._requery(MEMORY)
        if self.mode == MEMORY:
            self._draw_all()
        self.status.emit(f"Looked up {len(labels)} query token(s) in {len(self.memory)} "
                         "stored")

    def _on_encode_failed(self, failure: JobFailure) -> None:
        self.corpus_button.setEnabled(True)
        self.corpus_progress.setVisible(False)
        self.query_message.setText(failure.message)
        self.status.emit(f"LSH: {failure.message}")

    def _show_model(self, encoded: EncodedTokens) -> None:
        self.model_name, self.model_notice = encoded.model_name, encoded.notice
        if encoded.notice:
            self.model_label.setStyleSheet(ERROR_STYLE)
            self.model_label.setText(encoded.notice)
        else:
            self.model_label.setStyleSheet("")
            self.model_label.setText(f"{encoded.model_name}: one 384-d vector per word piece "
                                     "(last layer); [CLS], [SEP] and punctuation left out")

    def _on_collisions(self, job: JobResult) -> None:
        theta_deg, rates = job.value
        self._measured[job.request.key] = (theta_deg, rates, job.request.n_pairs)
        if job.request.key != self._measured_key:
            return
        self.collision.set_measured(theta_deg, rates, job.request.n_pairs)
        self.collisionsMeasured.emit((theta_deg, rates))

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save LSH store", f"{self.mode}-store.npz",
                                              "LSH store (*.npz)")
        if not path:
            return
        if not path.lower().endswith(".npz"):
            path += ".npz"
        try:
            self.save_store(path)
        except (OSError, lsh.StoreError) as error:
            self.file_message.setStyleSheet(ERROR_STYLE)
            self.file_message.setText(f"Not saved: {error}")

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open LSH store", "",
                                              "LSH store (*.npz);;All files (*)")
        if path:
            self.open_store_in_background(path)


__all__ = ["SAMPLE_CORPUS", "EncodeRequest", "EncodedTokens", "LSHPanel", "LSHStore",
           "ModeSettings", "OpenRequest", "QueryResult", "QuerySpec", "encode_tokens",
           "exact_top_k", "open_store_file", "pca_2d", "run_query"]
