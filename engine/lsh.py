"""A mutable random-hyperplane (SimHash) LSH store for cosine similarity: seed 000's weak RAG.

Seed 000 ("Weak RAG") needs a vector store that takes fast mutation and fast lookup, and
prefers LSH to HNSW because LSH has no graph whose quality inserts and deletes would erode.
This is that store: L tables, each hashing a vector v to the K signs of h_j . v for K
hyperplanes h_j drawn from a seeded Gaussian (Charikar, "Similarity estimation techniques
from rounding algorithms", STOC 2002). Two vectors at angle theta agree on one sign with
probability 1 - theta/pi, on all K signs of a table with (1 - theta/pi)^K and share a bucket
in at least one table with 1 - (1 - p^K)^L (:func:`bit_collision_probability`,
:func:`table_collision_probability`, :func:`index_collision_probability`).

A query visits its own bucket in each table plus ``probes`` more: the buckets reached by
flipping the bits whose hyperplanes pass closest to the query, cheapest first, where a set of
flipped bits costs the sum of the squared distances of the query to their hyperplanes
(Lv et al., "Multi-Probe LSH", VLDB 2007, section 4: the shift/expand generation of
perturbation sets in increasing cost). The union of the visited buckets is re-ranked exactly
by cosine similarity; ties go to the smaller id, so results depend only on the contents.

Each vector also keeps its sketch, all L*K signs packed in 64-bit words. The number of
differing bits between two sketches estimates their angle (each bit differs with probability
theta/pi, Charikar's estimator), so a query can re-rank exactly only the ``shortlist``
candidates nearest in Hamming distance, and with ``scan=True`` take every stored vector as a
candidate: a popcount scan over all sketches instead of bucket probing, the better choice
when the probed buckets would hold a large share of the store anyway. The distance counts
only the query's reliable signs, those whose hyperplane passes at least
``RELIABLE_MARGIN / sqrt(dim)`` from it: a neighbour lands on the other side of a hyperplane
that nearly touches the query about as often as a stranger does, so such a bit adds noise
and no evidence (the multi-probe argument, applied to the shortlist). On the MiniLM
word pieces it cuts the shortlist that reaches a given recall by a third (384 bits) to a
half (512 bits; ``benchmarks/lsh.py``).

Storage is array-based and compiled with Numba (:mod:`engine._lsh_kernels`). Per table, an
open-addressing hash map sends a bucket key to a block of a shared pool that lists the
bucket's slots, and every slot records where it sits in each table: a delete swaps the
block's last slot into its place (O(1) per table, no search), an insert appends (amortised
O(1)); freed slots are reused. Big batches of deletes or queries are split across threads
(the kernels release the GIL). Vectors are kept as float32 unit vectors plus their norms;
signs are computed in float32 and, within float32 rounding of zero, in float64, so every
bit is the float64 sign. A mutation must not run alongside any other call on the same
index: serialise access (the app's single worker does).

:meth:`LSHIndex.save` writes an ``.npz`` (arrays plus a JSON header, no pickle) atomically;
:meth:`LSHIndex.load` validates everything before it builds a new index, so a bad file raises
:class:`StoreError` and nothing else changes.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import _lsh_kernels as kernels
from engine._atomic import atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_BITS",
    "RELIABLE_MARGIN",
    "LSHIndex",
    "LSHStats",
    "StoreError",
    "TableStats",
    "bit_collision_probability",
    "empirical_collision_rate",
    "index_collision_probability",
    "table_collision_probability",
]

FORMAT = "mlcalc-lsh-index"
FORMAT_VERSION = 1
MAX_BITS = 62  # a bucket key is a non-negative int64, and 2^K still fits one
MAX_SKETCH_BITS = 65534  # Hamming distances (and one "far" value) are uint16
# A shortlist counts only the query's signs whose hyperplane is at least this many
# 1/sqrt(dim) (the spread of a unit query's projections) from the query.
RELIABLE_MARGIN = 0.6
_ARRAYS = ("header", "vectors", "norms", "hyperplanes")

_MAX_POOL = 2**31 - 1  # pool offsets and slots are int32
_HASH_ROWS = 4096  # vectors hashed per matrix product (the projections fit in cache)
_FEW_ROWS = 8  # up to this many vectors are hashed by a compiled loop, not by BLAS
# Sketches of up to this many words are also kept beside every bucket entry: a probed
# query then reads its candidates' sketches with the blocks (L copies: 8 L words a vector).
_INLINE_WORDS = 4
_WORKERS = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))
_ROWS_PER_WORKER = 32  # batch queries split across threads from 2 x 32 rows on
_DELETES_PER_WORKER = 2048  # batch deletes split the tables across threads from 2 x 2048 on


class StoreError(ValueError):
    """A file that is not a valid LSH index of this format (or cannot be read or written)."""


# -- theory -------------------------------------------------------------------------------

def _angles(theta) -> np.ndarray:
    t = np.asarray(theta, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t > math.pi):
        raise ValueError("angles must lie in [0, pi] radians")
    return t


def bit_collision_probability(theta):
    """Pr[sign(h . u) = sign(h . v)] = 1 - theta/pi for a Gaussian h (Charikar 2002)."""
    return 1.0 - _angles(theta) / math.pi


def table_collision_probability(theta, n_bits: int):
    """Probability that all K bits of one table agree: (1 - theta/pi)^K."""
    return bit_collision_probability(theta) ** int(n_bits)


def index_collision_probability(theta, n_bits: int, n_tables: int):
    """Probability of sharing a bucket in at least one of L tables: 1 - (1 - p^K)^L."""
    return 1.0 - (1.0 - table_collision_probability(theta, n_bits)) ** int(n_tables)


def _collision_rate(hyperplanes: np.ndarray, theta, n_pairs: int, seed: int) -> np.ndarray:
    """Share of random pairs at each angle that collide in at least one table."""
    t = _angles(theta)
    n_tables, n_bits, dim = hyperplanes.shape
    if dim < 2:
        raise ValueError("pairs at a given angle need at least 2 dimensions")
    if int(n_pairs) < 1:
        raise ValueError("n_pairs must be at least 1")
    rng = np.random.default_rng(seed)
    flat = hyperplanes.reshape(-1, dim).T
    rates = np.empty(t.size)
    for i, angle in enumerate(t.ravel()):
        u = rng.standard_normal((int(n_pairs), dim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        w = rng.standard_normal((int(n_pairs), dim))
        w -= np.sum(w * u, axis=1, keepdims=True) * u  # orthogonal to u
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        v = math.cos(angle) * u + math.sin(angle) * w
        same = ((u @ flat) > 0) == ((v @ flat) > 0)
        table_hit = same.reshape(-1, n_tables, n_bits).all(axis=2)
        rates[i] = table_hit.any(axis=1).mean()
    return rates.reshape(t.shape)


def empirical_collision_rate(theta, dim: int = 64, n_bits: int = 1, n_tables: int = 1,
                             n_pairs: int = 2000, seed: int = 0) -> np.ndarray:
    """Measured collision rate of random pairs of unit vectors at each angle ``theta``.

    Pairs are drawn uniformly on the sphere at exactly the given angle and hashed by
    ``n_tables`` x ``n_bits`` seeded Gaussian hyperplanes; the result, plotted over
    :func:`index_collision_probability`, shows the theory holding (standard error about
    sqrt(p (1 - p) / n_pairs)).
    """
    planes = _hyperplanes(int(dim), int(n_tables), int(n_bits), seed)
    return _collision_rate(planes.reshape(int(n_tables), int(n_bits), int(dim)), theta,
                           n_pairs, seed + 1)


def _hyperplanes(dim: int, n_tables: int, n_bits: int, seed: int) -> np.ndarray:
    """(L*K, dim) unit Gaussian hyperplanes: scaling changes no sign, and unit rows make
    |h . q| the distance of a unit query to the hyperplane (the multi-probe cost)."""
    planes = np.random.default_rng(seed).standard_normal((n_tables * n_bits, dim))
    return planes / np.linalg.norm(planes, axis=1, keepdims=True)


def _search_scratch(top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Working arrays of :func:`kernels.search` for ``top`` slots: (int64 x 2 top + 1,
    uint16 x 2 top + 1, an all-zero bitmap of top bits). The search leaves the bitmap all
    zero, so they may be kept for the next search."""
    return (np.empty(2 * top + 1, np.int64), np.empty(2 * top + 1, np.uint16),
            np.zeros((top + 63) >> 6, np.uint64))


def _in_threads(work, count: int) -> list:
    """[work(0), ..., work(count - 1)], on ``count`` threads when count > 1 (the compiled
    kernels release the GIL); every thread is joined before this returns."""
    if count == 1:
        return [work(0)]
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


# -- the store ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TableStats:
    """Occupancy of one table: ``histogram[s]`` buckets hold exactly s vectors
    (``histogram[0]`` counts the empty ones, so the histogram sums to 2^K)."""

    table: int
    n_buckets: int
    nonempty: int
    empty: int
    largest: int
    mean_size: float  # vectors per non-empty bucket
    histogram: np.ndarray


@dataclass(frozen=True)
class LSHStats:
    """Index-wide numbers and one :class:`TableStats` per table."""

    n: int
    dim: int
    n_tables: int
    n_bits: int
    n_buckets: int  # 2^K per table
    tables: tuple[TableStats, ...]

    @property
    def empty_fraction(self) -> float:
        """Mean share of empty buckets over the tables."""
        return float(np.mean([t.empty / t.n_buckets for t in self.tables]))


def _int(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        rule = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rule}, got {value}")
    return value


def _pow2_at_least(n: int) -> int:
    return 1 << max(3, int(n - 1).bit_length())


def _percent_empty(used: float) -> str:
    """The share 1 - used as '99.9%', but 'more than 99.9%' rather than a rounded '100.0%'
    when some buckets are used (and 'less than 0.1%' near 0)."""
    text = f"{100 * (1.0 - used):.1f}%"
    if text == "100.0%" and used > 0:
        return "more than 99.9%"
    if text == "0.0%" and used < 1:
        return "less than 0.1%"
    return text


def _payload(value):
    """A JSON-serialisable dict (or None), copied through JSON: what is stored is exactly
    what a save and a load give back."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"a payload must be a dict or None, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload is not JSON-serialisable: {exc}") from None


def _payload_list(values: list) -> list:
    """:func:`_payload` of each value, through JSON in one pass (a store reloaded with tens of
    thousands of payloads would spend most of its time in per-item calls); the same error,
    naming the first bad value, when one is refused."""
    for value in values:
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"a payload must be a dict or None, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(values, allow_nan=False))
    except (TypeError, ValueError):
        return [_payload(value) for value in values]  # raises for the first bad one


class LSHIndex:
    """Random-hyperplane LSH for cosine similarity: L tables of K bits, mutable in O(1).

    Parameters
    ----------
    dim : int
        Dimension of the vectors.
    n_tables : int
        L, the number of hash tables (more tables: higher recall, more candidates).
    n_bits : int
        K, hyperplanes per table, 1 to 62 (more bits: smaller, purer buckets).
    seed : int
        Seed of the Gaussian hyperplanes.

    Ids are non-negative integers chosen by the caller and never change; each may carry a
    JSON-serialisable dict payload. Zero vectors have no direction and are refused.
    """

    def __init__(self, dim: int, n_tables: int, n_bits: int, seed: int = 0):
        dim = _int(dim, "dim", 1)
        n_tables = _int(n_tables, "n_tables", 1)
        n_bits = _int(n_bits, "n_bits", 1, MAX_BITS)
        seed = _int(seed, "seed", 0)
        self._setup(_hyperplanes(dim, n_tables, n_bits, seed), n_tables, n_bits, seed)

    @classmethod
    def from_hyperplanes(cls, hyperplanes, seed: int = 0) -> LSHIndex:
        """An empty index on given hyperplanes, (L, K, dim) unit normals, instead of those
        its seed would draw (``seed`` is kept as its label); they are checked as a store
        file's are, and refused with :class:`StoreError`."""
        planes = np.asarray(hyperplanes)
        if planes.ndim != 3 or min(planes.shape) < 1:
            raise StoreError(f"hyperplanes must be an (L, K, dim) array, got shape "
                             f"{planes.shape}")
        n_tables, n_bits, dim = planes.shape
        if n_bits > MAX_BITS:
            raise StoreError(f"at most {MAX_BITS} bits per table, got {n_bits}")
        seed = _int(seed, "seed", 0)
        planes = _checked_planes(planes.reshape(n_tables * n_bits, dim).astype(np.float64))
        index = cls.__new__(cls)
        index._setup(planes, n_tables, n_bits, seed)
        return index

    def _setup(self, planes: np.ndarray, n_tables: int, n_bits: int, seed: int) -> None:
        self._planes = np.ascontiguousarray(planes, dtype=np.float64)
        self._planes.flags.writeable = False
        self._planes32 = self._planes.astype(np.float32)
        self._dim = planes.shape[1]
        # Worst-case error of a float32 projection of two unit vectors (float32 rounding of
        # the plane, then of each of dim products and sums), doubled: beyond it the float32
        # sign is the float64 sign.
        self._sign_bound = (self._dim + 2) * 2.0**-23
        self._sign_bound64 = (self._dim + 2) * 2.0**-52  # the same for float64 products
        self._reliable_cut = RELIABLE_MARGIN / math.sqrt(self._dim)
        self._L, self._K, self._seed = n_tables, n_bits, seed
        self._words = (n_tables * n_bits + 63) // 64  # uint64 words per sketch
        self._n = 0  # live vectors
        self._top = 0  # slots ever used; the free ones below it are on the free list
        self._n_free = 0
        self._payloads: dict[int, dict] = {}
        L = self._L
        self._unit = np.empty((0, self._dim), np.float32)
        self._norms = np.empty(0, np.float32)
        self._slot_ids = np.empty(0, np.int64)
        self._sketch = np.empty((self._words, 0), np.uint64)
        # a slot's sketch row padded to a power of two words (up to 8) never straddles
        # two cache lines: one miss per bucket candidate
        self._row_words = self._words if self._words > 8 else 1 << (self._words - 1).bit_length()
        self._rows = np.empty((0, self._row_words), np.uint64)
        self._free = np.empty(0, np.int64)
        self._where = np.empty((L, 0, 2), np.int64)
        self._pool = np.empty(0, np.int32)
        # each pool entry's sketch beside it, for short sketches (see _INLINE_WORDS)
        self._inline = self._words if self._words <= _INLINE_WORDS else 0
        self._psk = np.empty((0, self._inline), np.uint64)
        self._pstate = np.zeros(3, np.int64)  # pool top, garbage, room wanted
        self._allocate_slots(16)
        self._allocate_ids(32)
        self._bmap = np.full((L, 16, 2), kernels.EMPTY, np.int64)
        self._bcap = np.zeros((L, 16), np.int8)
        self._bused = np.zeros(L, np.int64)  # non-empty buckets per table
        self._bcells = np.zeros(L, np.int64)  # occupied map cells (empty buckets kept too)
        self._bshift = 64 - 4
        # query()'s working arrays, kept between calls while nobody else holds them
        self._scratch = _search_scratch(0)
        self._scratch_lock = threading.Lock()
        self._checked: dict[tuple, tuple[int, int, int, bool]] = {}  # _options of plain ints

    # -- allocation ------------------------------------------------------------------------

    def _allocate_slots(self, cap: int) -> None:
        n, L = self._top, self._L
        unit = np.empty((cap, self._dim), np.float32)
        norms = np.empty(cap, np.float32)
        slot_ids = np.empty(cap, np.int64)
        sketch = np.empty((self._words, cap), np.uint64)  # word-major: scans read rows
        rows = np.empty((cap, self._row_words), np.uint64)  # slot-major: a line a candidate
        where = np.empty((L, cap, 2), np.int64)  # per table: (bucket key, place in the pool)
        unit[:n], norms[:n], slot_ids[:n] = self._unit[:n], self._norms[:n], self._slot_ids[:n]
        sketch[:, :n], rows[:n] = self._sketch[:, :n], self._rows[:n]
        where[:, :n] = self._where[:, :n]
        free = np.empty(cap, np.int64)
        free[:self._n_free] = self._free[:self._n_free]
        self._unit, self._norms, self._slot_ids = unit, norms, slot_ids
        self._sketch, self._rows, self._where, self._free = sketch, rows, where, free

    def _allocate_ids(self, cap: int) -> None:
        self._idkeys = np.full(cap, kernels.EMPTY, np.int64)
        self._idvals = np.empty(cap, np.int64)
        self._idshift = 64 - (cap.bit_length() - 1)
        if self._top:  # an empty index calls no compiled code: creating one stays instant
            kernels.refill_ids(self._slot_ids, self._top, self._idkeys, self._idvals,
                               self._idshift)

    def _grow_buckets(self) -> None:
        """Rebuild the bucket maps (kept at most 70% full) without their empty buckets, at
        twice the size or more unless dropping those leaves the fullest under 35%."""
        cap = self._bmap.shape[1]
        while 20 * int(self._bused.max()) >= 7 * cap:
            cap *= 2
        bmap = np.full((self._L, cap, 2), kernels.EMPTY, np.int64)
        bcap = np.zeros((self._L, cap), np.int8)
        shift = 64 - (cap.bit_length() - 1)
        self._pstate[1] += kernels.rehash(self._bmap, self._bcap, self._pool, bmap, bcap, shift,
                                          self._bcells)
        self._bmap, self._bcap, self._bshift = bmap, bcap, shift

    def _grow_pool(self, extra: int) -> None:
        """A new pool with room for ``extra`` more entries: the old one copied as it is
        while less than half of it is garbage (a memory copy, 5 ms for 2 million entries;
        offsets stay), else its live blocks compacted (every entry's place rewritten,
        37 ms for those 2 million: a spike in a run of single inserts)."""
        top, garbage = int(self._pstate[0]), int(self._pstate[1])
        size = max(1024, 3 * (top + extra) // 2)
        if 2 * garbage < top and size <= _MAX_POOL:
            pool = np.empty(size, np.int32)
            pool[:top] = self._pool[:top]
            psk = np.empty((size, self._inline), np.uint64)
            psk[:top] = self._psk[:top]
            self._pool, self._psk = pool, psk
            return
        size = min(max(1024, 3 * (top - garbage + extra) // 2), _MAX_POOL)
        pool = np.empty(size, np.int32)
        psk = np.empty((size, self._inline), np.uint64)
        self._pstate[0] = kernels.compact(self._pool, pool, self._psk, psk, self._where,
                                          self._bmap, self._bcap)
        self._pstate[1] = 0
        self._pool, self._psk = pool, psk

    def _reserve(self, m: int) -> None:
        """Room for m more vectors and ids (the tables make room as they fill, in _link)."""
        need = self._n + m
        if 2 * need * self._L > _MAX_POOL:  # checked before anything changes
            raise ValueError(f"too many vectors: L x n must stay below {_MAX_POOL // 2}")
        slots = self._top + max(0, m - self._n_free)
        if slots > self._unit.shape[0]:  # an eighth spare, as Python lists: steady inserts
            self._allocate_slots(max(slots + slots // 8, 2 * self._unit.shape[0]))
        if 2 * need > self._idkeys.size:
            self._allocate_ids(_pow2_at_least(3 * need))
        if self._pool.size - self._pstate[0] < m * self._L:  # room for the batch, give or take
            self._grow_pool(m * self._L)

    def _take_slots(self, m: int) -> np.ndarray:
        """m free slots (reused ones first), after :meth:`_reserve`."""
        if m == 1:
            if self._n_free:
                self._n_free -= 1
                return self._free[self._n_free:self._n_free + 1].copy()
            self._top += 1
            return np.array([self._top - 1], np.int64)
        reused = min(m, self._n_free)
        slots = np.empty(m, np.int64)
        slots[:reused] = self._free[self._n_free - reused:self._n_free][::-1]
        self._n_free -= reused
        slots[reused:] = np.arange(self._top, self._top + m - reused)
        self._top += m - reused
        return slots

    def _link(self, ids: np.ndarray, unit: np.ndarray, norms: np.ndarray,
              keys: np.ndarray, words: np.ndarray) -> None:
        """Insert new ids (absent from the index, room reserved)."""
        slots = self._take_slots(ids.size)
        kernels.store_rows(ids, slots, unit, norms, words, self._unit, self._norms,
                           self._sketch, self._rows, self._slot_ids, self._idkeys,
                           self._idvals, self._idshift)
        self._link_tables(keys, words, slots, 0)
        self._n += ids.size

    def _link_tables(self, keys: np.ndarray, words: np.ndarray, slots: np.ndarray,
                     t: int) -> None:
        """Enter stored slots (sketches ``words``) in their buckets from table t on, making
        room as needed."""
        i = 0
        while t < self._L:
            t, i = kernels.link_tables(keys, words, slots, t, i, self._where, self._pool,
                                       self._psk, self._pstate, self._bmap, self._bcap,
                                       self._bused, self._bcells, self._bshift)
            if t < self._L:
                if self._pstate[2] < 0:
                    self._grow_buckets()
                else:
                    self._grow_pool(int(self._pstate[2]) + (self._L - t) * (slots.size - i))

    # -- input checks ----------------------------------------------------------------------

    def _as_ids(self, ids) -> np.ndarray:
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, (bool, np.bool_)):
            if not 0 <= ids < 2**63:
                raise ValueError(f"ids must be non-negative and below 2^63, got {ids}")
            return np.array([ids], np.int64)
        arr = np.asarray(ids)
        if arr.dtype == np.bool_ or (arr.dtype.kind not in "iu" and arr.size):
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        if arr.ndim > 1:
            raise ValueError(f"ids must be one id or a 1-D sequence, got shape {arr.shape}")
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError("ids must be below 2^63")
        arr = np.atleast_1d(arr).astype(np.int64)
        if arr.size and arr.min() < 0:
            raise ValueError(f"ids must be non-negative, got {int(arr.min())}")
        return arr

    def _as_units(self, vectors, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(unit float32 rows, float32 norms) of a vector or a stack of vectors."""
        x = np.asarray(vectors)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"vectors must be real numbers, got dtype {x.dtype}")
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self._dim:
            raise ValueError(f"vectors must have {self._dim} components, got shape "
                             f"{np.shape(vectors)}")
        if m is not None and x.shape[0] != m:
            raise ValueError(f"{m} ids but {x.shape[0]} vectors")
        unit, norms, status, row = kernels.normalize(np.ascontiguousarray(x, dtype=np.float64))
        if status == 1:
            raise ValueError(f"vector {row} is not finite (or beyond float32 range)")
        if status == 2:
            raise ValueError(f"vector {row} is zero: it has no direction")
        return unit, norms

    def _hash(self, unit: np.ndarray) -> np.ndarray:
        """Projections (m, L*K) on the hyperplanes in float64: the margins of probing."""
        if unit.shape[0] <= _FEW_ROWS:
            return kernels.project64(unit, self._planes)
        return unit.astype(np.float64) @ self._planes.T

    def _project32(self, unit: np.ndarray) -> np.ndarray:
        """float32 projections (m, L*K): a compiled loop for a few rows, BLAS for more."""
        if unit.shape[0] <= _FEW_ROWS:
            return kernels.project32(unit, self._planes32)
        return unit @ self._planes32.T

    def _signs(self, unit: np.ndarray, masks: bool = False):
        """(bucket keys (m, L), sketches (m, W)) from float32 projections, a block of rows
        at a time; the float64 signs, as :func:`kernels.signs` re-checks those near zero.
        With ``masks``, also the reliable bits of each row (:func:`kernels.reliable`)."""
        keys = np.empty((unit.shape[0], self._L), np.int64)
        words = np.empty((unit.shape[0], self._words), np.uint64)
        reliable = np.empty((unit.shape[0], self._words if masks else 0), np.uint64)
        for lo in range(0, unit.shape[0], _HASH_ROWS):
            rows = slice(lo, lo + _HASH_ROWS)
            proj = self._project32(unit[rows])
            keys[rows], words[rows] = kernels.signs(proj, unit[rows], self._planes,
                                                    self._sign_bound, self._L, self._K)
            if masks:
                reliable[rows] = kernels.reliable(proj, unit[rows], self._planes,
                                                  self._sign_bound, self._reliable_cut)
        return (keys, words, reliable) if masks else (keys, words)

    def _query_hashes(self, unit: np.ndarray, probes: int, masks: bool = False):
        """(keys, sketches, reliable bits (with ``masks``, for a shortlist; else no
        columns), margins) of queries. Probing orders bits by their margins, in float64 as
        documented (refining only the bits it reads was tried: a float32 projection plus
        that refinement cost as much); without probes, only signs."""
        if not probes:
            if masks:
                keys, words, reliable = self._signs(unit, masks=True)
            else:
                keys, words = self._signs(unit)
                reliable = np.empty((unit.shape[0], 0), np.uint64)
            return keys, words, reliable, np.empty((unit.shape[0], 0))
        margins = self._hash(unit)
        keys, words = kernels.signs(margins, unit, self._planes, -1.0, self._L, self._K)
        if masks:
            reliable = kernels.reliable(margins, unit, self._planes, self._sign_bound64,
                                        self._reliable_cut)
        else:
            reliable = np.empty((unit.shape[0], 0), np.uint64)
        return keys, words, reliable, margins

    # -- mutation --------------------------------------------------------------------------

    def add(self, ids, vectors, payloads=None) -> None:
        """Insert vectors under ``ids``; an id already present is updated (vector and payload).

        ``ids`` is one id or a sequence, ``vectors`` one vector or an (m, dim) array and
        ``payloads`` None, one dict (with one id) or a sequence of dicts or None. If an id
        appears twice in one call, the last occurrence wins. Nothing changes on an error.
        """
        if payloads is None and self._add_one(ids, vectors):
            return
        single = np.ndim(ids) == 0
        ids = self._as_ids(ids)
        unit, norms = self._as_units(vectors, ids.size)
        if payloads is not None:
            if single and not isinstance(payloads, (list, tuple)):
                payloads = [payloads]
            payloads = list(payloads)
            if len(payloads) != ids.size:
                raise ValueError(f"{ids.size} ids but {len(payloads)} payloads")
            payloads = _payload_list(payloads)
        if ids.size == 0:
            return
        if ids.size > 1:
            _, last = np.unique(ids[::-1], return_index=True)
            if last.size < ids.size:  # keep each id's last occurrence, in order
                keep = np.sort(ids.size - 1 - last)
                ids, unit, norms = ids[keep], unit[keep], norms[keep]
                if payloads is not None:
                    payloads = [payloads[i] for i in keep]
        keys, words = self._signs(unit)
        present = kernels.lookup(self._idkeys, self._idvals, self._idshift, ids) >= 0
        self._reserve(ids.size)  # may refuse: before anything changes
        updated = present.any()
        if updated:
            self._unlink_ids(ids[present])
        self._link(ids, unit, norms, keys, words)
        if payloads is None:
            if self._payloads and updated:
                for i in ids[present].tolist():
                    self._payloads.pop(i, None)
        else:
            for i, p in zip(ids.tolist(), payloads):
                if p is None:
                    self._payloads.pop(i, None)
                else:
                    self._payloads[i] = p

    def _add_one(self, ident, vector) -> bool:
        """The one-call path of :meth:`add` for one new id given as an int and one float
        vector as an array; False (nothing changed) leaves it to the general path."""
        if (type(ident) is not int or not 0 <= ident < 2**63 or type(vector) is not np.ndarray
                or vector.shape != (self._dim,) or vector.dtype.char not in "fd"):
            return False
        if not vector.flags.c_contiguous:  # one compiled version per dtype, not per layout
            vector = np.ascontiguousarray(vector)
        status, slot, table, keys, words = kernels.insert_one(
            ident, vector, self._planes32, self._planes,
            self._sign_bound, self._K, self._n, self._top, self._n_free, _MAX_POOL, self._free,
            self._unit, self._norms, self._sketch, self._rows, self._slot_ids, self._idkeys,
            self._idvals, self._idshift, self._where, self._pool, self._psk, self._pstate,
            self._bmap, self._bcap, self._bused, self._bcells, self._bshift)
        if status:
            return False
        if slot == self._top:
            self._top += 1
        else:
            self._n_free -= 1
        if table < self._L:
            self._link_tables(keys, words, np.array([slot], np.int64), table)
        self._n += 1
        return True

    def remove(self, ids) -> int:
        """Delete ``ids`` (one or many); all must be present, else KeyError and no change.

        Returns the number of vectors removed (duplicates in ``ids`` count once).
        """
        if type(ids) is int and 0 <= ids < 2**63:  # one plain id: one compiled call
            if not kernels.remove_one(ids, self._slot_ids, self._idkeys, self._idvals,
                                      self._idshift, self._where, self._pool, self._psk,
                                      self._bused, self._free, self._n_free):
                self._refuse_absent(np.array([ids], np.int64))
            self._n_free += 1
            self._n -= 1
            if self._payloads:
                self._payloads.pop(ids, None)
            return 1
        ids = self._as_ids(ids)
        if ids.size > 1:
            ids = np.unique(ids)
        if ids.size == 0:
            return 0
        if ids.size < _WORKERS * _DELETES_PER_WORKER:  # one thread: check and delete at once
            if kernels.remove_ids(ids, self._slot_ids, self._idkeys, self._idvals,
                                  self._idshift, self._where, self._pool, self._psk,
                                  self._bused, self._free, self._n_free) >= 0:
                self._refuse_absent(ids)
            self._n_free += ids.size
            self._n -= ids.size
        else:
            self._refuse_absent(ids)
            self._unlink_ids(ids)
        if self._payloads:
            for i in ids.tolist():
                self._payloads.pop(i, None)
        return int(ids.size)

    def _refuse_absent(self, ids: np.ndarray) -> None:
        missing = ids[kernels.lookup(self._idkeys, self._idvals, self._idshift, ids) < 0]
        if missing.size:
            raise KeyError(f"{missing.size} id(s) not in the index: {missing[:10].tolist()}")

    def _unlink_ids(self, ids: np.ndarray) -> None:
        """Delete present, distinct ids; big batches split the tables between threads."""
        slots = kernels.release_ids(ids, self._slot_ids, self._idkeys, self._idvals,
                                    self._idshift)
        workers = max(1, min(_WORKERS, self._L, ids.size // _DELETES_PER_WORKER))
        bounds = [self._L * i // workers for i in range(workers + 1)]
        _in_threads(lambda i: kernels.unlink(slots, bounds[i], bounds[i + 1], self._where,
                                             self._pool, self._psk, self._bused), workers)
        self._free[self._n_free:self._n_free + slots.size] = slots
        self._n_free += slots.size
        self._n -= slots.size

    def clear(self) -> None:
        """Remove every vector (the hyperplanes stay)."""
        self._setup(self._planes, self._L, self._K, self._seed)

    # -- queries ---------------------------------------------------------------------------

    def _options(self, k, probes, shortlist, scan) -> tuple[int, int, int, bool]:
        """Checked (k, probes, shortlist, scan) of a query; shortlist 0 means none."""
        k = _int(k, "k", 1)
        probes = min(_int(probes, "probes", 0), 2**self._K - 1)
        scan = bool(scan)
        if scan and probes:
            raise ValueError("probes choose buckets; a scan takes every vector: pass one")
        if shortlist is None:
            return k, probes, 0, scan
        shortlist = _int(shortlist, "shortlist", k)
        if self._L * self._K > MAX_SKETCH_BITS:
            raise ValueError(f"a shortlist needs L x K <= {MAX_SKETCH_BITS} sketch bits, "
                             f"this index has {self._L * self._K}")
        return k, probes, shortlist, scan

    def _run(self, queries, k: int, probes: int, shortlist: int, scan: bool):
        """(ids, scores, candidate counts) of a stack of queries, options checked."""
        unit, _ = self._as_units(queries)
        m = unit.shape[0]
        if self._n == 0:
            return (np.full((m, k), -1, np.int64), np.full((m, k), np.nan),
                    np.zeros(m, np.int64))
        keys, words, masks, margins = self._query_hashes(unit, probes, shortlist > 0)
        free = self._free[:self._n_free]

        def search(rows: slice):
            return kernels.search(unit[rows], keys[rows], words[rows], masks[rows],
                                  margins[rows], probes, k, shortlist, scan, self._K, self._n,
                                  self._top, self._slot_ids, self._unit, self._sketch,
                                  self._rows, free, self._pool, self._psk, self._bmap,
                                  self._bshift, *_search_scratch(self._top))

        workers = max(1, min(_WORKERS, m // _ROWS_PER_WORKER))
        if workers == 1:
            ids, scores, counts = search(slice(0, m))
        else:
            bounds = [m * i // workers for i in range(workers + 1)]
            parts = _in_threads(lambda i: search(slice(bounds[i], bounds[i + 1])), workers)
            ids, scores, counts = (np.concatenate(column) for column in zip(*parts))
        return ids, scores.astype(np.float64), counts

    def query(self, vector, k: int = 10, probes: int = 0, *, shortlist: int | None = None,
              scan: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The k most cosine-similar stored vectors among the candidates of ``vector``.

        Candidates are the members of the query's bucket plus ``probes`` more buckets per
        table (multi-probe, lowest margins first), or with ``scan`` every stored vector.
        With ``shortlist`` (at least k), only the ``shortlist`` candidates whose L*K-bit
        sketches differ from the query's in the fewest of its reliable bits (those whose
        hyperplane is at least ``RELIABLE_MARGIN / sqrt(dim)`` from it; ties to the smaller
        id) are scored exactly; by default all are. Returns (ids, cosine similarities), best
        first, ties to the smaller id; fewer than k when there are fewer candidates.
        """
        fast = (type(vector) is np.ndarray and vector.shape == (self._dim,)
                and vector.dtype.char in "fd")
        if not fast and np.ndim(vector) != 1:
            raise ValueError("query takes one vector; use query_batch for many")
        if (type(k) is int and type(probes) is int and type(scan) is bool
                and (shortlist is None or type(shortlist) is int)):  # checked once
            key = (k, probes, shortlist, scan)
            options = self._checked.get(key)
            if options is None:
                options = self._options(k, probes, shortlist, scan)
                if len(self._checked) >= 64:
                    self._checked.clear()
                self._checked[key] = options
        else:
            options = self._options(k, probes, shortlist, scan)
        if fast and self._n:  # one compiled call (for contiguous float32 or float64 only:
            if not vector.flags.c_contiguous:  # each layout would compile a version)
                vector = np.ascontiguousarray(vector)
            if self._scratch_lock.acquire(blocking=False):
                try:
                    if self._scratch[1].size <= 2 * self._top:
                        self._scratch = _search_scratch(self._unit.shape[0])
                    found = self._query_one(vector, options, self._scratch)
                finally:
                    self._scratch_lock.release()
            else:  # another thread is querying: working arrays of its own
                found = self._query_one(vector, options, _search_scratch(self._top))
            if found is not None:
                return found
        k, probes, shortlist, scan = options
        ids, scores, _ = self._run(vector, k, probes, shortlist, scan)
        found = int(np.count_nonzero(ids[0] >= 0))
        return ids[0, :found], scores[0, :found]

    def _query_one(self, vector: np.ndarray, options: tuple, scratch: tuple):
        """(ids, scores) of one float vector in one compiled call; None if it is not finite
        or zero (the general path explains why)."""
        k, probes, shortlist, scan = options
        status, ids, scores, _ = kernels.query_one(
            vector, self._planes32, self._planes, self._sign_bound, self._sign_bound64,
            self._reliable_cut, self._K, probes, k, shortlist, scan, self._n, self._top,
            self._slot_ids, self._unit, self._sketch, self._rows, self._free[:self._n_free],
            self._pool, self._psk, self._bmap, self._bshift, *scratch)
        return (ids, scores) if status == 0 else None

    def query_batch(self, vectors, k: int = 10, probes: int = 0, *,
                    shortlist: int | None = None, scan: bool = False):
        """:meth:`query` for each row of ``vectors``: (ids, scores) of shape (m, k), padded
        with id -1 and score NaN where a query had fewer than k candidates."""
        ids, scores, _ = self._run(vectors, *self._options(k, probes, shortlist, scan))
        return ids, scores

    def candidate_counts(self, vectors, probes: int = 0) -> np.ndarray:
        """Number of distinct candidates (members of the probed buckets) for each query:
        the vectors re-ranked unless a shortlist cuts them."""
        return self._run(vectors, *self._options(1, probes, None, False))[2]

    def probe_buckets(self, vector, probes: int = 0) -> np.ndarray:
        """(L, 1 + probes) bucket keys a query visits per table, in order; -1 past the
        2^K - 1 possible flips."""
        unit, _ = self._as_units(vector)
        probes = min(_int(probes, "probes", 0), 2**self._K - 1)
        keys, _, _, margins = self._query_hashes(unit, probes)
        return kernels.probe_keys(keys[0], margins[0], self._K, probes)

    # -- inspection ------------------------------------------------------------------------

    def bucket_of(self, item) -> np.ndarray:
        """The bucket key in each table (shape (L,)) of a stored id or of a vector."""
        if np.ndim(item) == 0:
            (slot,) = self._slots(item)
            return self._where[:, slot, 0].copy()
        unit, _ = self._as_units(item)
        if unit.shape[0] != 1:
            raise ValueError("bucket_of takes one id or one vector")
        return self._signs(unit)[0][0]

    def members(self, table: int, bucket: int) -> np.ndarray:
        """Ids in bucket ``bucket`` of table ``table``, sorted."""
        table = _int(table, "table", 0, self._L - 1)
        bucket = _int(bucket, "bucket", 0, 2**self._K - 1)
        return np.sort(kernels.bucket_members(table, bucket, self._slot_ids, self._pool,
                                              self._bmap, self._bshift))

    def stats(self) -> LSHStats:
        """Occupancy per table: histogram, empty buckets out of 2^K, largest, mean size."""
        n_buckets = 2**self._K
        tables = []
        for t in range(self._L):
            sizes = kernels.bucket_sizes(t, self._pool, self._bmap, self._bused)
            histogram = np.bincount(sizes, minlength=1).astype(np.int64)
            histogram[0] = n_buckets - sizes.size
            tables.append(TableStats(
                table=t, n_buckets=n_buckets, nonempty=int(sizes.size),
                empty=n_buckets - int(sizes.size),
                largest=int(sizes.max()) if sizes.size else 0,
                mean_size=float(sizes.mean()) if sizes.size else 0.0, histogram=histogram))
        return LSHStats(n=self._n, dim=self._dim, n_tables=self._L, n_bits=self._K,
                        n_buckets=n_buckets, tables=tuple(tables))

    def explain_empty(self, vector=None, probes: int = 0) -> str | None:
        """A sentence saying why queries find nothing, or None when they should find some.

        With ``vector``: None if that query has candidates. Without: None unless a query
        probing 1 + ``probes`` buckets in each table is expected to meet fewer than one
        non-empty bucket (the share of empty buckets is the reason given either way).
        """
        if self._n == 0:
            return "The index is empty: add vectors before querying."
        probes = _int(probes, "probes", 0)
        if vector is not None and self.candidate_counts(np.atleast_2d(vector), probes)[0]:
            return None
        used = float(np.mean(self._bused)) / 2.0**self._K  # share of non-empty buckets
        if vector is None and self._L * (probes + 1) * used >= 1.0:
            return None
        return (f"K = {self._K}: {_percent_empty(used)} of the {2**self._K} buckets of each "
                f"table are empty; lower K or add probes")

    def empirical_collision_rate(self, theta, n_pairs: int = 2000, seed: int = 0):
        """:func:`empirical_collision_rate` with this index's own hyperplanes."""
        return _collision_rate(self.hyperplanes, theta, n_pairs, seed)

    def _slots(self, ids) -> np.ndarray:
        ids = self._as_ids(ids)
        slots = kernels.lookup(self._idkeys, self._idvals, self._idshift, ids)
        if np.any(slots < 0):
            raise KeyError(f"id(s) not in the index: {ids[slots < 0][:10].tolist()}")
        return slots

    def vector(self, ident: int) -> np.ndarray:
        """The stored vector of ``ident`` (its float32 direction times its norm)."""
        (slot,) = self._slots(ident)
        return self._unit[slot].astype(np.float64) * float(self._norms[slot])

    def payload(self, ident: int) -> dict | None:
        """A copy of the payload of ``ident`` (None if it has none)."""
        return self.payloads(ident)[0]

    def vectors(self, ids) -> np.ndarray:
        """(m, dim) float64: :meth:`vector` of each of ``ids``, in one call."""
        slots = self._slots(ids)
        return self._unit[slots].astype(np.float64) * self._norms[slots].astype(np.float64)[:, None]

    def bucket_keys(self, ids) -> np.ndarray:
        """(m, L): :meth:`bucket_of` of each of the stored ``ids``, in one call."""
        return self._where[:, self._slots(ids), 0].T.copy()

    def payloads(self, ids) -> list:
        """:meth:`payload` of each of ``ids`` (copies; None where there is none), in one call."""
        ids = self._as_ids(ids)
        self._slots(ids)
        return json.loads(json.dumps([self._payloads.get(i) for i in ids.tolist()]))

    def ids(self) -> np.ndarray:
        """The stored ids, in storage order (reused slots make it no particular order)."""
        ids = self._slot_ids[:self._top]
        return ids[ids >= 0]

    def __len__(self) -> int:
        return self._n

    def __contains__(self, ident) -> bool:
        try:
            ids = self._as_ids(ident)
        except (TypeError, ValueError):
            return False
        return ids.size == 1 and bool(kernels.lookup(self._idkeys, self._idvals,
                                                     self._idshift, ids)[0] >= 0)

    def __repr__(self) -> str:
        return (f"LSHIndex(dim={self._dim}, n_tables={self._L}, n_bits={self._K}, "
                f"seed={self._seed}, n={self._n})")

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def n_tables(self) -> int:
        return self._L

    @property
    def n_bits(self) -> int:
        return self._K

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def hyperplanes(self) -> np.ndarray:
        """Read-only (L, K, dim) unit normals; bit b of table t is h[t, b] . v > 0."""
        return self._planes.reshape(self._L, self._K, self._dim)

    def nbytes(self) -> int:
        """Bytes held in arrays (vectors, sketches, tables, maps; payloads not counted)."""
        arrays = (self._planes, self._planes32, self._unit, self._norms, self._slot_ids,
                  self._sketch, self._rows, self._free, self._where, self._pool, self._psk,
                  self._idkeys,
                  self._idvals, self._bmap, self._bcap, self._bused, self._bcells,
                  *self._scratch)
        return int(sum(a.nbytes for a in arrays))

    # -- files -----------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the index to ``path`` (.npz, no pickle) atomically (see
        :func:`engine._atomic.atomic_write`): on any failure the previous file is left as it
        was, and an :class:`OSError` says why."""
        path = Path(path)
        live = self._slot_ids[:self._top] >= 0
        ids = self._slot_ids[:self._top][live].tolist()
        header = {
            "format": FORMAT, "version": FORMAT_VERSION, "dim": self._dim,
            "n_tables": self._L, "n_bits": self._K, "seed": self._seed, "ids": ids,
            "payloads": [self._payloads.get(i) for i in ids],
        }
        blob = json.dumps(header, allow_nan=False).encode("utf-8")
        data = io.BytesIO()
        np.savez(data, header=np.frombuffer(blob, np.uint8),
                 vectors=self._unit[:self._top][live], norms=self._norms[:self._top][live],
                 hyperplanes=self._planes)
        atomic_write(path, data.getbuffer())

    @classmethod
    def load(cls, path, dim: int | None = None) -> LSHIndex:
        """Read an index written by :meth:`save`; with ``dim``, also require that dimension.

        Every part is checked before a new index is built: a missing, truncated, corrupted,
        pickled, foreign, wrong-version or wrong-dimension file raises :class:`StoreError`.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            parts = _read_npz(data)
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any parse failure of a damaged file
            raise StoreError(f"{path} is not a readable LSH index file "
                             f"({type(exc).__name__}: {exc})") from None
        header, unit, norms, planes = parts
        if dim is not None and header["dim"] != dim:
            raise StoreError(f"{path} holds vectors of dimension {header['dim']}, "
                             f"expected {dim}")
        index = cls.__new__(cls)
        index._setup(planes, header["n_tables"], header["n_bits"], header["seed"])
        ids = np.asarray(header["ids"], dtype=np.int64)
        if ids.size:
            keys, words = index._signs(unit)
            index._reserve(ids.size)
            index._link(ids, unit, norms, keys, words)
        index._payloads = {i: p for i, p in zip(header["ids"], header["payloads"])
                           if p is not None}
        return index


_WARM = threading.Event()


def warm_up_steps():
    """Load the compiled code of every LSHIndex method, for the argument types callers pass
    (float32 and float64 vectors, one or many, with and without probes), on the calling
    thread; a generator that yields the fraction done between steps (so that a caller may
    stop between them). From Numba's cache it takes about a second; the first run after an
    installation compiles it all, about 35 s on two cores. An application runs it on a
    worker at start-up so that no user action waits for it (see :func:`is_warm`)."""
    rng = np.random.default_rng(0)
    configs = ((2, 2, 3), (8, 4, 6))
    for c, (dim, n_tables, n_bits) in enumerate(configs):
        def done(step, of=6, c=c):
            return (c + step / of) / len(configs)

        index = LSHIndex(dim, n_tables, n_bits, seed=1)
        x = rng.standard_normal((600, dim))
        index.add(np.arange(600), x, [{"token": str(i)} for i in range(600)])
        index.add(np.arange(600, 1200), x.astype(np.float32))
        index.add(np.arange(100), x[:100] + 1)  # present ids: updates
        yield done(1)
        for step, dtype in enumerate((np.float32, np.float64)):
            v = x[0].astype(dtype)
            index.add(5000, v)
            index.remove(5000)
            for probes in (0, 2):
                index.query(v, 5, probes)
                index.query_batch(x[:70].astype(dtype), 5, probes)
                index.query(v, 5, probes, shortlist=8)
            index.query(v, 5, shortlist=8, scan=True)
            index.probe_buckets(v, 2)
            index.bucket_of(v)
            yield done(2 + step)
        index.query(x[0].tolist(), 5, 1)
        index.bucket_of(3)
        index.members(0, int(index.bucket_of(3)[0]))
        index.stats()
        index.vector(3)
        yield done(4)
        index.remove(7)
        index.remove(np.arange(200, 400))
        yield done(5)
        index.empirical_collision_rate(np.array([0.5, 1.0]), 50)
        yield done(6)
    _WARM.set()


def warm_up() -> None:
    """:func:`warm_up_steps` in one call."""
    for _ in warm_up_steps():
        pass


def is_warm() -> bool:
    """True once :func:`warm_up` has finished in this process."""
    return _WARM.is_set()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_npz(data: bytes):
    """(header, unit vectors, norms, hyperplanes) of a saved index, all checked."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise StoreError("not an .npz archive")
        if sorted(npz.files) != sorted(_ARRAYS):
            raise StoreError(f"expected the arrays {list(_ARRAYS)}, found {npz.files}")
        arrays = {name: npz[name] for name in _ARRAYS}  # object arrays raise here
    raw = arrays["header"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise StoreError("the header is not a byte string")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreError(f"not a {FORMAT} file")
    if header.get("version") != FORMAT_VERSION:
        raise StoreError(f"format version {header.get('version')!r} is not supported "
                         f"(this build reads version {FORMAT_VERSION})")
    for name, low, high in (("dim", 1, None), ("n_tables", 1, None), ("n_bits", 1, MAX_BITS),
                            ("seed", 0, None)):
        value = header.get(name)
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise StoreError(f"header field {name!r} is invalid: {value!r}")
    ids, payloads = header.get("ids"), header.get("payloads")
    if not isinstance(ids, list) or not all(_is_int(i) and 0 <= i < 2**63 for i in ids):
        raise StoreError("header field 'ids' must be a list of non-negative integers")
    if len(set(ids)) != len(ids):
        raise StoreError("header field 'ids' repeats an id")
    if not isinstance(payloads, list) or len(payloads) != len(ids) or not all(
            p is None or isinstance(p, dict) for p in payloads):
        raise StoreError("header field 'payloads' must hold one dict or null per id")
    n, dim = len(ids), header["dim"]
    L, K = header["n_tables"], header["n_bits"]
    unit, norms, planes = arrays["vectors"], arrays["norms"], arrays["hyperplanes"]
    if unit.dtype != np.float32 or unit.shape != (n, dim):
        raise StoreError(f"'vectors' must be float32 of shape {(n, dim)}, got {unit.dtype} "
                         f"{unit.shape}")
    if norms.dtype != np.float32 or norms.shape != (n,):
        raise StoreError(f"'norms' must be float32 of shape {(n,)}")
    if planes.dtype != np.float64 or planes.shape != (L * K, dim):
        raise StoreError(f"'hyperplanes' must be float64 of shape {(L * K, dim)}")
    if not (np.all(np.isfinite(unit)) and np.all(np.isfinite(norms))):
        raise StoreError("the file holds non-finite numbers")
    if n and (np.any(np.abs(np.linalg.norm(unit, axis=1) - 1) > 1e-3) or np.any(norms <= 0)):
        raise StoreError("'vectors' must be unit vectors with positive norms")
    return header, np.ascontiguousarray(unit), np.ascontiguousarray(norms), _checked_planes(planes)


def _checked_planes(planes: np.ndarray) -> np.ndarray:
    """(L*K, dim) float64 hyperplane normals, refused unless finite unit vectors."""
    if not np.all(np.isfinite(planes)):
        raise StoreError("the hyperplanes hold non-finite numbers")
    if np.any(np.abs(np.linalg.norm(planes, axis=1) - 1) > 1e-9):
        raise StoreError("'hyperplanes' must be unit vectors")
    return planes
