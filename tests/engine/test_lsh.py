"""engine.lsh: the mutable random-hyperplane LSH store of seed 000's weak RAG.

The reference answers are computed here, independently of the store's tables: a stored
vector's bucket in table t is read off the signs of ``hyperplanes[t] @ v``, the probed
buckets of a query are found by ranking all 2^K keys by the cost of their flipped bits, and
the expected result is the exact cosine top-k over the members of those buckets (or over
every stored vector for a scan), cut first to the ``shortlist`` whose L*K signs differ from
the query's in the fewest places (ties to the smaller id) when a shortlist is asked for.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine import lsh as lsh_module
from engine.lsh import (
    FORMAT,
    FORMAT_VERSION,
    MAX_BITS,
    RELIABLE_MARGIN,
    LSHIndex,
    StoreError,
    bit_collision_probability,
    empirical_collision_rate,
    index_collision_probability,
    table_collision_probability,
)

DIM, TABLES, BITS = 5, 3, 3
TOL = 1e-5  # float32 dot products against float64 references


def unit32(v) -> np.ndarray:
    """The store's normalisation: float32 in, float64 norm, float32 unit vector out."""
    x = np.asarray(v, dtype=np.float32).astype(np.float64)
    return (x / np.linalg.norm(x)).astype(np.float32)


def key_of(planes: np.ndarray, t: int, u: np.ndarray) -> int:
    bits = planes[t] @ u.astype(np.float64) > 0
    return int(sum(1 << b for b, on in enumerate(bits) if on))


def probed_keys(planes: np.ndarray, t: int, q: np.ndarray, probes: int):
    """All 2^K keys of table t ranked by the query's cost of reaching them (sum of squared
    distances to the flipped hyperplanes), the first 1 + probes of them, and whether that
    cut is ambiguous (a tie at the boundary)."""
    proj = planes[t] @ q.astype(np.float64)
    n_bits = planes.shape[1]
    own = key_of(planes, t, q)
    costs = sorted((sum(proj[b] ** 2 for b in range(n_bits) if (key ^ own) >> b & 1), key)
                   for key in range(2**n_bits))
    take = min(1 + probes, len(costs))
    tie = take < len(costs) and costs[take][0] - costs[take - 1][0] < 1e-9
    return [key for _, key in costs[:take]], tie


def sketch_of(planes: np.ndarray, u: np.ndarray) -> np.ndarray:
    """All L*K signs of a vector, table after table."""
    return planes.reshape(-1, planes.shape[2]) @ u.astype(np.float64) > 0


def reference(planes, stored: dict, q: np.ndarray, k: int, probes: int,
              shortlist: int | None = None, scan: bool = False):
    """(candidate scores by id, expected best ids, ambiguous probe order?)"""
    ambiguous = False
    candidates = set(stored) if scan else set()
    for t in range(planes.shape[0] if not scan else 0):
        keys, tie = probed_keys(planes, t, q, probes)
        ambiguous |= tie
        candidates |= {i for i, u in stored.items() if key_of(planes, t, u) in keys}
    if shortlist is not None:  # Hamming distance over the query's reliable bits
        mine = sketch_of(planes, q)
        flat = planes.reshape(-1, planes.shape[2])
        cut = RELIABLE_MARGIN / np.sqrt(flat.shape[1])
        counted = np.abs(flat @ q.astype(np.float64)) >= cut
        hamming = {i: int(np.sum((sketch_of(planes, stored[i]) != mine) & counted))
                   for i in candidates}
        candidates = sorted(candidates, key=lambda i: (hamming[i], i))[:shortlist]
    scores = {i: float(stored[i].astype(np.float64) @ q.astype(np.float64))
              for i in candidates}
    best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return scores, best, ambiguous


def check_query(index: LSHIndex, stored: dict, vector, k: int, probes: int,
                shortlist: int | None = None, scan: bool = False) -> None:
    ids, scores = index.query(vector, k, probes, shortlist=shortlist, scan=scan)
    for dtype in (np.float32, np.float64):  # an array takes the one-call path: same answer
        contiguous = np.asarray(vector, dtype)
        strided = np.repeat(contiguous, 2)[::2]  # made contiguous for the compiled call
        for as_array in (contiguous, strided):
            found = index.query(as_array, k, probes, shortlist=shortlist, scan=scan)
            np.testing.assert_array_equal(found[0], ids)
            np.testing.assert_array_equal(found[1], scores)
            assert found[1].dtype == np.float64
    q = unit32(vector)
    expected, best, ambiguous = reference(index.hyperplanes, stored, q, k, probes, shortlist,
                                          scan)
    assert set(ids.tolist()) <= set(stored), "a deleted or unknown id came back"
    assert len(set(ids.tolist())) == len(ids)
    assert np.all(np.diff(scores) <= 0)
    if ambiguous:
        return
    assert len(ids) == len(best)
    for i, s in zip(ids.tolist(), scores.tolist()):
        assert i in expected, "an id outside the probed buckets came back"
        assert s == pytest.approx(expected[i], abs=TOL)
    # equal to the exact top-k of the candidates, up to float ties
    np.testing.assert_allclose(scores, [expected[i] for i in best], atol=TOL)
    if len(ids) == k and len(expected) > k:
        left_out = max(s for i, s in expected.items() if i not in set(ids.tolist()))
        assert left_out <= scores[-1] + TOL


def same_results(a: LSHIndex, b: LSHIndex, vectors, k=4, probes=2) -> None:
    for v in vectors:
        ia, sa = a.query(v, k, probes)
        ib, sb = b.query(v, k, probes)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(sa, sb)


def check_stats(index: LSHIndex, stored: dict) -> None:
    stats = index.stats()
    assert stats.n == len(index) == len(stored)
    planes = index.hyperplanes
    for t, table in enumerate(stats.tables):
        h = table.histogram
        assert int(np.sum(np.arange(h.size) * h)) == len(stored)  # sum of bucket sizes
        assert table.nonempty + table.empty == table.n_buckets == int(h.sum()) == 2**BITS
        keys = [key_of(planes, t, u) for u in stored.values()]
        sizes = np.unique(keys, return_counts=True)[1] if keys else np.zeros(0, int)
        assert table.nonempty == sizes.size
        assert table.largest == (sizes.max() if sizes.size else 0)
        for ident, u in stored.items():
            assert index.bucket_of(ident)[t] == key_of(planes, t, u)
        for key in range(2**BITS):
            members = [i for i, u in stored.items() if key_of(planes, t, u) == key]
            assert index.members(t, key).tolist() == sorted(members)


# -- theory -------------------------------------------------------------------------------

def test_theory_known_values():
    assert bit_collision_probability(0.0) == 1.0
    assert bit_collision_probability(math.pi) == 0.0
    assert bit_collision_probability(math.pi / 2) == 0.5
    assert table_collision_probability(0.0, 8) == 1.0
    assert table_collision_probability(math.pi, 8) == 0.0
    assert table_collision_probability(math.pi / 2, 3) == 0.125
    assert index_collision_probability(0.0, 8, 4) == 1.0
    assert index_collision_probability(math.pi, 8, 4) == 0.0
    assert index_collision_probability(math.pi / 2, 3, 2) == pytest.approx(1 - 0.875**2)
    theta = np.linspace(0, math.pi, 7)
    np.testing.assert_allclose(index_collision_probability(theta, 1, 1), 1 - theta / math.pi)
    with pytest.raises(ValueError):
        bit_collision_probability(4.0)
    with pytest.raises(ValueError):
        bit_collision_probability(-0.1)


def test_empirical_collision_rate_follows_one_minus_theta_over_pi():
    theta = np.linspace(0, math.pi, 9)
    n_pairs = 4000
    for bits, tables in ((1, 1), (3, 2)):
        rate = empirical_collision_rate(theta, dim=32, n_bits=bits, n_tables=tables,
                                        n_pairs=n_pairs, seed=3)
        p = index_collision_probability(theta, bits, tables)
        tolerance = 4 * np.sqrt(p * (1 - p) / n_pairs) + 0.005
        assert np.all(np.abs(rate - p) <= tolerance), (rate, p)
    assert rate[0] == 1.0 and rate[-1] == 0.0
    index = LSHIndex(16, 2, 4, seed=5)
    rate = index.empirical_collision_rate(theta, n_pairs=n_pairs)
    p = index_collision_probability(theta, 4, 2)
    assert np.all(np.abs(rate - p) <= 4 * np.sqrt(p * (1 - p) / n_pairs) + 0.005)


# -- mutation and queries, against the independent reference ------------------------------

def _with_a_direction(v: list) -> list:
    """Hypothesis loves zero vectors; those are tested on their own (they are refused)."""
    return v if float(np.linalg.norm(np.asarray(v, np.float32))) > 0.05 else [1.0] + v[1:]


coordinates = st.floats(-3, 3, allow_nan=False, width=32)
vectors = st.lists(coordinates, min_size=DIM, max_size=DIM).map(_with_a_direction)
payloads = st.none() | st.fixed_dictionaries({"token": st.text(max_size=5),
                                              "sentence": st.integers(0, 9)})
ident = st.integers(0, 24)


class LSHMachine(RuleBasedStateMachine):
    """Random sequences of inserts, updates, deletes, queries and save/load round trips."""

    def __init__(self):
        super().__init__()
        self.stored: dict[int, np.ndarray] = {}
        self.payloads: dict[int, dict | None] = {}

    @initialize(seed=st.integers(0, 5))
    def start(self, seed):
        self.index = LSHIndex(DIM, TABLES, BITS, seed=seed)

    @rule(batch=st.lists(st.tuples(ident, vectors, payloads), min_size=1, max_size=6))
    def add(self, batch):
        ids = [i for i, _, _ in batch]
        self.index.add(ids, [v for _, v, _ in batch], [p for _, _, p in batch])
        for i, v, p in batch:  # the last occurrence of an id wins
            self.stored[i] = unit32(v)
            self.payloads[i] = p

    @rule(i=ident, v=vectors)
    def add_one_without_payload(self, i, v):
        self.index.add(i, v)
        self.stored[i] = unit32(v)
        self.payloads[i] = None

    @rule(i=ident, v=vectors, dtype=st.sampled_from([np.float32, np.float64]),
          strided=st.booleans())
    def add_one_array(self, i, v, dtype, strided):
        """An int id and a float array: the store's one-call insert path."""
        x = np.asarray(v, dtype)
        self.index.add(i, np.repeat(x, 2)[::2] if strided else x)
        self.stored[i] = unit32(v)
        self.payloads[i] = None

    @rule(data=st.data())
    def remove_one_int(self, data):
        """One int id: the store's one-call delete path, which refuses a missing id."""
        i = data.draw(ident)
        if i not in self.stored:
            before = self.index.ids()
            with pytest.raises(KeyError, match=rf"1 id\(s\) not in the index: \[{i}\]"):
                self.index.remove(i)
            np.testing.assert_array_equal(self.index.ids(), before)
            return
        assert self.index.remove(i) == 1
        self.stored.pop(i)
        self.payloads.pop(i)

    @rule(data=st.data())
    def remove(self, data):
        if not self.stored:
            return
        ids = data.draw(st.lists(st.sampled_from(sorted(self.stored)), min_size=1,
                                 max_size=4))
        assert self.index.remove(ids) == len(set(ids))
        for i in ids:
            self.stored.pop(i, None)
            self.payloads.pop(i, None)

    @rule(ids=st.lists(ident, min_size=1, max_size=3))
    def remove_with_a_missing_id_changes_nothing(self, ids):
        if set(ids) <= set(self.stored):
            return
        before = self.index.ids()
        with pytest.raises(KeyError):
            self.index.remove(ids)
        np.testing.assert_array_equal(self.index.ids(), before)

    @rule(i=ident)
    def zero_vector_is_refused(self, i):
        with pytest.raises(ValueError):
            self.index.add(i, np.zeros(DIM))

    @rule(v=vectors, k=st.integers(1, 6), probes=st.integers(0, 8))
    def query(self, v, k, probes):
        check_query(self.index, self.stored, v, k, probes)

    @rule(v=vectors, k=st.integers(1, 4), extra=st.integers(0, 6), probes=st.integers(0, 8),
          scan=st.booleans())
    def query_with_a_shortlist(self, v, k, extra, probes, scan):
        check_query(self.index, self.stored, v, k, 0 if scan else probes, k + extra, scan)

    @rule(v=vectors, k=st.integers(1, 6))
    def scan_without_shortlist_is_exact_search(self, v, k):
        check_query(self.index, self.stored, v, k, 0, None, True)

    @rule(v=vectors, probes=st.integers(0, 8))
    def query_batch_agrees(self, v, probes):
        ids, scores = self.index.query_batch([v, v], 3, probes)
        one_ids, one_scores = self.index.query(v, 3, probes)
        assert ids.shape == scores.shape == (2, 3)
        found = len(one_ids)
        np.testing.assert_array_equal(ids[1, :found], one_ids)
        np.testing.assert_array_equal(scores[1, :found], one_scores)
        assert np.all(ids[:, found:] == -1) and np.all(np.isnan(scores[:, found:]))

    @rule(probe=vectors)
    def save_and_load_round_trip(self, probe):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "index.npz")
            self.index.save(path)
            loaded = LSHIndex.load(path, dim=DIM)
        queries = [probe] + [u for u in self.stored.values()][:3]
        same_results(self.index, loaded, queries)
        assert sorted(loaded.ids().tolist()) == sorted(self.stored)
        self.index = loaded  # carry on mutating the loaded copy

    @invariant()
    def contents_and_stats_agree(self):
        assert len(self.index) == len(self.stored)
        assert sorted(self.index.ids().tolist()) == sorted(self.stored)
        for i, p in self.payloads.items():
            assert self.index.payload(i) == p
        check_stats(self.index, self.stored)


LSHMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_lsh_state_machine = LSHMachine.TestCase


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 300), deletes=st.integers(0, 300), k=st.integers(1, 12),
       probes=st.integers(0, 40), extra=st.integers(0, 60), seed=st.integers(0, 100))
def test_many_vectors_then_many_deletes_match_the_reference(n, deletes, k, probes, extra,
                                                            seed):
    """Bigger batches than the state machine: K = 6 gives crowded and empty buckets, and
    the deleted slots lie among the live ones that a scan reads."""
    rng = np.random.default_rng(seed)
    dim = 8
    index = LSHIndex(dim, 4, 6, seed=seed)
    ids = rng.choice(10_000, n, replace=False)
    x = rng.standard_normal((n, dim)) + 0.5
    index.add(ids, x)
    gone = rng.permutation(ids)[:deletes]
    index.remove(gone)
    stored = {int(i): unit32(v) for i, v in zip(ids, x) if i not in set(gone.tolist())}
    for q in rng.standard_normal((3, dim)):
        check_query(index, stored, q, k, probes)
        check_query(index, stored, q, k, probes, shortlist=k + extra)
        check_query(index, stored, q, k, 0, shortlist=k + extra, scan=True)
    stats = index.stats()
    for table in stats.tables:
        assert int(np.sum(np.arange(table.histogram.size) * table.histogram)) == len(stored)


def test_big_batches_split_across_threads_give_the_same_answers():
    """Batch queries and batch deletes of this size run on several threads."""
    rng = np.random.default_rng(7)
    dim = 8
    x = rng.standard_normal((6000, dim))
    index = LSHIndex(dim, 4, 5, seed=1)
    index.add(np.arange(6000), x)
    gone = rng.choice(6000, 4500, replace=False)
    index.remove(gone)
    stored = {i: unit32(x[i]) for i in range(6000) if i not in set(gone.tolist())}
    check_stats_light(index, stored)
    queries = rng.standard_normal((100, dim))
    ids, scores = index.query_batch(queries, 5, probes=3)
    for q, row_ids, row_scores in zip(queries, ids, scores):
        one_ids, one_scores = index.query(q, 5, probes=3)
        np.testing.assert_array_equal(row_ids, one_ids)
        np.testing.assert_array_equal(row_scores, one_scores)
    for q in queries[:3]:
        check_query(index, stored, q, 5, 3)
    for options in ({"probes": 3, "shortlist": 20}, {"scan": True, "shortlist": 40}):
        ids, scores = index.query_batch(queries, 5, **options)
        for q, row_ids, row_scores in zip(queries[:10], ids, scores):
            one_ids, one_scores = index.query(q, 5, **options)
            np.testing.assert_array_equal(row_ids, one_ids)
            np.testing.assert_array_equal(row_scores, one_scores)


def test_one_call_inserts_build_the_same_index_as_a_batch():
    """add(int, array) takes a compiled one-call path; through growth of every array, slot
    reuse and pauses to enlarge the bucket maps it must leave what a batch leaves."""
    rng = np.random.default_rng(11)
    dim = 12
    x = rng.standard_normal((3000, dim)).astype(np.float32)
    one = LSHIndex(dim, 5, 7, seed=3)
    for i in range(2000):
        one.add(i, x[i])
        if i % 3 == 2:
            one.remove(i - 1)
    for i in range(2000, 3000):  # the freed slots are reused
        one.add(i, x[i])
    alive = sorted(one.ids().tolist())
    batch = LSHIndex(dim, 5, 7, seed=3)
    batch.add(alive, x[alive])
    assert len(one) == len(batch) == len(alive) == 2000 - 666 + 1000
    for t, (a, b) in enumerate(zip(one.stats().tables, batch.stats().tables)):
        np.testing.assert_array_equal(a.histogram, b.histogram)
        for key in np.unique([one.bucket_of(i)[t] for i in alive[:50]]):
            np.testing.assert_array_equal(one.members(t, int(key)), batch.members(t, int(key)))
    queries = rng.standard_normal((20, dim))
    for options in ({"probes": 4}, {"probes": 4, "shortlist": 30},
                    {"scan": True, "shortlist": 30}):
        got = one.query_batch(queries, 6, **options)
        expected = batch.query_batch(queries, 6, **options)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    one.add(5, x[0])  # present: the general path updates it
    np.testing.assert_allclose(one.vector(5), x[0], rtol=1e-6)
    with pytest.raises(ValueError, match="not finite"):
        one.add(99_999, np.full(dim, np.nan, np.float32))
    assert 99_999 not in one


def test_churn_through_many_buckets_keeps_the_maps_small():
    """With K = 14 nearly every vector has a bucket of its own; a delete leaves the empty
    bucket mapped (no map work) and the map rebuild drops them, so inserting and deleting
    new vectors for ever does not grow the store, and answers stay exact."""
    rng = np.random.default_rng(4)
    dim = 16
    index = LSHIndex(dim, 2, 14, seed=1)
    stored: dict[int, np.ndarray] = {}
    sizes = []
    for round_ in range(30):
        ids = np.arange(round_ * 300, round_ * 300 + 300)
        x = rng.standard_normal((300, dim))
        index.add(ids[:150], x[:150])
        for i, v in zip(ids[150:], x[150:]):
            index.add(int(i), v.astype(np.float32))  # the one-call path
        stored.update({int(i): unit32(v) for i, v in zip(ids, x)})
        gone = sorted(stored)[:-100]  # the 100 newest stay
        index.remove(gone)
        for i in gone:
            del stored[i]
        sizes.append(index.nbytes())
    assert sizes[-1] < 1.5 * sizes[5]
    check_stats_light(index, stored)
    for q in rng.standard_normal((3, dim)):
        check_query(index, stored, q, 4, 30)
        check_query(index, stored, q, 4, 30, shortlist=8)


def test_a_full_pool_is_copied_while_garbage_is_small_and_compacted_when_it_is_not(
        monkeypatch):
    """Bucket blocks live in one pool; a block that outgrows its room moves and leaves
    garbage. A pool that runs out with under half of it garbage is copied as it is (a
    memory copy, no spike in a run of single inserts), else compacted; answers stay exact
    either way."""
    compactions = []
    compact = lsh_module.kernels.compact

    def counted(pool, *args):
        if index._pstate[0]:  # not the first pool of an empty index
            compactions.append(int(index._pstate[1]) / int(index._pstate[0]))
        return compact(pool, *args)

    monkeypatch.setattr(lsh_module.kernels, "compact", counted)
    rng = np.random.default_rng(8)
    dim = 12
    index = LSHIndex(dim, 4, 5, seed=2)
    x = rng.standard_normal((3000, dim))
    index.add(np.arange(3000), x)
    stored = {i: unit32(v) for i, v in enumerate(x)}
    copies = 0
    i = 3000
    while not (copies and compactions):
        pool, before = index._pool, len(compactions)
        v = rng.standard_normal(dim)
        index.add(i, v.astype(np.float32))
        stored[i] = unit32(v)
        i += 1
        if index._pool is not pool and len(compactions) == before:
            copies += 1
        if i % 500 == 0:  # deletes make bucket maps shed empty buckets: more garbage
            gone = rng.choice(sorted(stored), 400, replace=False).tolist()
            index.remove(gone)
            for g in gone:
                del stored[g]
        assert i < 60_000, (copies, compactions)
    assert min(compactions) >= 0.5  # only a pool at least half garbage was compacted
    check_stats_light(index, stored)
    for q in rng.standard_normal((4, dim)):
        check_query(index, stored, q, 5, 3)


def test_signs_near_a_hyperplane_are_the_float64_signs():
    """Bits are computed in float32 but re-checked in float64 within float32's error of
    zero: vectors a hair's breadth from a hyperplane land where float64 puts them."""
    rng = np.random.default_rng(5)
    dim = 64
    index = LSHIndex(dim, 3, 8, seed=2)
    planes = index.hyperplanes
    h = planes[1, 3]
    vectors = []
    for eps in (1e-9, -1e-9, 3e-7, -3e-7, 2e-6, -2e-6, 0.0) * 3:
        v = rng.standard_normal(dim)
        v -= (v @ h) * h  # on the hyperplane, then nudged off it
        v = v / np.linalg.norm(v) + eps * h
        vectors.append(v)
    vectors = np.array(vectors)
    for t in range(3):
        expected = [key_of(planes, t, unit32(v)) for v in vectors]
        assert [int(index.bucket_of(v)[t]) for v in vectors] == expected  # one at a time
    index.add(np.arange(len(vectors)), vectors)  # a batch: BLAS, then the re-check
    for i in range(0, len(vectors), 3):
        index.add(100 + i, vectors[i].astype(np.float32))  # the one-call path
    for i, v in enumerate(vectors):
        u = unit32(v)
        keys = [key_of(planes, t, u) for t in range(3)]
        assert index.bucket_of(i).tolist() == keys
        if i % 3 == 0:
            assert index.bucket_of(100 + i).tolist() == keys


def test_a_shortlist_counts_the_reliable_bits_as_float64_decides_them():
    """A shortlist counts the query's bits whose hyperplane is at least RELIABLE_MARGIN /
    sqrt(dim) away. For queries a hair's breadth from that cut, a single query (compiled
    float32 or float64 projections) and a batch (BLAS) both count what float64 counts."""
    rng = np.random.default_rng(8)
    dim = 64
    index = LSHIndex(dim, 4, 6, seed=3)
    x = rng.standard_normal((400, dim))
    index.add(np.arange(400), x)
    stored = {i: unit32(x[i]) for i in range(400)}
    cut = RELIABLE_MARGIN / math.sqrt(dim)
    queries = []
    for t, b in ((0, 1), (2, 5), (3, 0)):
        h = index.hyperplanes[t, b]
        for eps in (1e-9, -1e-9, 3e-7, -3e-7, 2e-6, -2e-6, 0.0):
            w = rng.standard_normal(dim)
            w -= (w @ h) * h
            w /= np.linalg.norm(w)
            side = 1 if rng.random() < 0.5 else -1
            queries.append(side * (cut + eps) * h + math.sqrt(1 - (cut + eps) ** 2) * w)
    queries = np.array(queries)
    for options in ({"probes": 2, "shortlist": 12}, {"scan": True, "shortlist": 12}):
        ids, scores = index.query_batch(queries, 5, **options)
        for q, row_ids, row_scores in zip(queries, ids, scores):
            check_query(index, stored, q, 5, options.get("probes", 0), options["shortlist"],
                        options.get("scan", False))
            one_ids, one_scores = index.query(q, 5, **options)
            np.testing.assert_array_equal(row_ids, one_ids)
            np.testing.assert_array_equal(row_scores, one_scores)


@pytest.mark.parametrize("n_tables, n_bits", [(4, 6), (20, 14)])
def test_probed_shortlists_read_sketches_beside_the_entries_or_from_the_rows(n_tables,
                                                                             n_bits):
    """Sketches of up to four words are kept beside every bucket entry, longer ones only
    per slot: through inserts that move blocks, deletes that swap entries and the
    compaction of the pool, both give the shortlist that the sketches define."""
    rng = np.random.default_rng(9)
    dim = 16
    index = LSHIndex(dim, n_tables, n_bits, seed=4)
    assert (index._psk.shape[1] > 0) == (n_tables * n_bits <= 256)
    x = rng.standard_normal((1500, dim))
    index.add(np.arange(1000), x[:1000])
    for i in range(1000, 1500):  # one by one: blocks fill up and move
        index.add(i, x[i].astype(np.float32))
    gone = rng.choice(1500, 900, replace=False)
    index.remove(gone[:450])  # a batch, then one by one: swaps inside the blocks
    for i in gone[450:].tolist():
        index.remove(i)
    index._grow_pool(0)  # pool mostly garbage by now? compacted; else copied
    stored = {i: unit32(x[i]) for i in range(1500) if i not in set(gone.tolist())}
    for q in rng.standard_normal((6, dim)):
        check_query(index, stored, q, 5, 3, shortlist=9)


def test_shortlist_and_scan_arguments_are_checked():
    index = LSHIndex(4, 2, 3)
    index.add([1, 2], [[1, 0, 0, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match="shortlist must be >= 3"):
        index.query([1, 0, 0, 0], k=3, shortlist=2)
    with pytest.raises(TypeError):
        index.query([1, 0, 0, 0], shortlist=True)
    with pytest.raises(ValueError, match="scan"):
        index.query([1, 0, 0, 0], probes=2, scan=True)
    ids, _ = index.query([1, 0, 0, 0], k=2, shortlist=5, scan=True)  # shortlist > n
    assert ids.tolist() == [1, 2]


def check_stats_light(index: LSHIndex, stored: dict) -> None:
    planes = index.hyperplanes
    u = np.array(list(stored.values()), dtype=np.float64)
    for t, table in enumerate(index.stats().tables):
        keys = ((u @ planes[t].T) > 0) @ (1 << np.arange(planes.shape[1]))
        sizes = np.unique(keys, return_counts=True)[1]
        assert table.nonempty == sizes.size and table.largest == sizes.max()
        assert int(np.sum(np.arange(table.histogram.size) * table.histogram)) == len(stored)


# -- behaviour of the API -----------------------------------------------------------------

def test_update_payload_and_vector_round_trip():
    index = LSHIndex(4, 2, 3, seed=1)
    index.add([7, 9], [[1, 0, 0, 0], [0, 2, 0, 0]], [{"token": "cat", "sentence": 0}, None])
    assert 7 in index and 9 in index and 8 not in index and len(index) == 2
    assert index.payload(7) == {"token": "cat", "sentence": 0}
    assert index.payload(9) is None
    np.testing.assert_allclose(index.vector(9), [0, 2, 0, 0])
    index.add(7, [0, 0, 3, 0], {"token": "dog"})  # re-adding updates vector and payload
    assert len(index) == 2 and index.payload(7) == {"token": "dog"}
    np.testing.assert_allclose(index.vector(7), [0, 0, 3, 0])
    ids, scores = index.query([0, 0, 1, 0], k=1, probes=7)
    assert ids.tolist() == [7] and scores[0] == pytest.approx(1.0)
    index.add(7, [0, 0, 3, 0])  # no payload given: the new entry has none
    assert index.payload(7) is None
    index.add([5, 5, 5], np.eye(4)[:3], [{"v": 1}, {"v": 2}, {"v": 3}])  # last one wins
    assert index.payload(5) == {"v": 3}
    np.testing.assert_allclose(index.vector(5), [0, 0, 1, 0])
    assert index.remove([5, 5]) == 1 and 5 not in index
    copy = index.payload(9)
    assert copy is None
    index.clear()
    assert len(index) == 0 and index.query([1, 0, 0, 0])[0].size == 0


@pytest.mark.parametrize("bad_ids, bad_vectors, error", [
    ([-1], [[1, 0, 0]], ValueError),
    ([1.5], [[1, 0, 0]], TypeError),
    ([True], [[1, 0, 0]], TypeError),
    ([1, 2], [[1, 0, 0]], ValueError),
    ([1], [[1, 0]], ValueError),
    ([1], [[0, 0, 0]], ValueError),
    ([1], [[np.nan, 0, 0]], ValueError),
    ([1], [[1e39, 0, 0]], ValueError),  # beyond float32
    ([1], [["a", "b", "c"]], TypeError),
])
def test_bad_input_is_refused_and_nothing_changes(bad_ids, bad_vectors, error):
    index = LSHIndex(3, 2, 2)
    index.add([0], [[1, 1, 1]], [{"token": "a"}])
    with pytest.raises(error):
        index.add(bad_ids, bad_vectors)
    assert index.ids().tolist() == [0] and index.payload(0) == {"token": "a"}


@pytest.mark.parametrize("payload", [{"x": float("nan")}, {"x": {1, 2}}, ["not a dict"]])
def test_payloads_must_be_json_dicts(payload):
    index = LSHIndex(3, 2, 2)
    with pytest.raises((TypeError, ValueError)):
        index.add([1], [[1, 0, 0]], [payload])
    assert len(index) == 0
    with pytest.raises((TypeError, ValueError)):  # one bad payload among good ones
        index.add([1, 2, 3], np.eye(3), [{"ok": 1}, payload, None])
    assert len(index) == 0


def test_the_batch_accessors_give_what_the_one_id_ones_give():
    rng = np.random.default_rng(3)
    index = LSHIndex(6, 4, 5, seed=2)
    ids = rng.permutation(200)[:120]
    payloads = [{"token": f"t{i}", "n": int(i), "f": 0.1 * i} if i % 3 else None for i in ids]
    index.add(ids, rng.standard_normal((120, 6)), payloads)
    index.remove(ids[::7])
    asked = rng.permutation(np.setdiff1d(ids, ids[::7]))
    assert np.array_equal(index.vectors(asked), np.array([index.vector(int(i)) for i in asked]))
    assert np.array_equal(index.bucket_keys(asked),
                          np.array([index.bucket_of(int(i)) for i in asked]))
    got = index.payloads(asked)
    assert got == [index.payload(int(i)) for i in asked]
    first = next(p for p in got if p is not None)
    first["token"] = "changed"  # copies: the store keeps its own
    assert "changed" not in [p and p["token"] for p in index.payloads(asked)]
    assert index.vectors([]).shape == (0, 6) and index.bucket_keys([]).shape == (0, 4)
    assert index.payloads([]) == []
    for accessor in (index.vectors, index.bucket_keys, index.payloads):
        with pytest.raises(KeyError):
            accessor([int(asked[0]), int(ids[0])])  # ids[0] was removed


def test_constructor_checks_its_arguments():
    for args in ((0, 2, 2), (3, 0, 2), (3, 2, 0), (3, 2, 63)):
        with pytest.raises(ValueError):
            LSHIndex(*args)
    with pytest.raises(TypeError):
        LSHIndex(3.0, 2, 2)
    with pytest.raises(ValueError):
        LSHIndex(3, 2, 2).query([1, 0, 0], k=0)


def test_probes_flip_the_lowest_margin_bits_first():
    index = LSHIndex(6, 2, 5, seed=4)
    q = unit32([0.3, -1.0, 0.2, 0.7, -0.1, 0.5])
    keys = index.probe_buckets(q, probes=31)
    planes = index.hyperplanes
    for t in range(2):
        margins = np.abs(planes[t] @ q.astype(np.float64))
        own = key_of(planes, t, q)
        assert keys[t, 0] == own
        assert keys[t, 1] == own ^ (1 << int(np.argmin(margins)))  # closest hyperplane
        assert sorted(keys[t].tolist()) == list(range(32))  # every bucket, each once
        costs = [sum(margins[b] ** 2 for b in range(5) if (key ^ own) >> b & 1)
                 for key in keys[t]]
        assert np.all(np.diff(costs) >= -1e-12)  # cheapest first
    assert np.all(index.probe_buckets(q, probes=40)[:, 32:] == -1)  # only 2^K - 1 flips


def test_probing_order_is_the_float64_order_when_few_bits_are_flipped():
    """With probes + 1 < K only the smallest margins of a table are sorted; the order must
    still be the full float64 one, for single queries and batches alike."""
    rng = np.random.default_rng(8)
    index = LSHIndex(32, 4, 10, seed=6)
    planes = index.hyperplanes
    queries = rng.standard_normal((60, 32))
    for probes in (1, 3, 6):
        for q in queries:
            u = unit32(q)
            got = index.probe_buckets(q, probes)
            for t in range(4):
                expected, tie = probed_keys(planes, t, u, probes)
                if not tie:
                    assert got[t].tolist() == expected
    index.add(np.arange(400), rng.standard_normal((400, 32)))
    for probes in (1, 3):
        ids, scores = index.query_batch(queries, 5, probes)  # BLAS projections
        for q, row_ids, row_scores in zip(queries[:20], ids, scores):
            one = index.query(q, 5, probes)  # the compiled one-call path
            np.testing.assert_array_equal(row_ids[:len(one[0])], one[0])
            np.testing.assert_array_equal(row_scores[:len(one[0])], one[1])


def test_stats_are_consistent_on_clustered_data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 16))
    x = centres[rng.integers(0, 5, 2000)] + 0.3 * rng.standard_normal((2000, 16))
    index = LSHIndex(16, 4, 8, seed=2)
    index.add(np.arange(2000), x)
    index.remove(np.arange(0, 2000, 3))
    stats = index.stats()
    assert stats.n == len(index) == 1333 and stats.n_buckets == 256
    planes = index.hyperplanes
    u = np.array([unit32(v) for v in x[index.ids()]], dtype=np.float64)
    for t, table in enumerate(stats.tables):
        keys = ((u @ planes[t].T) > 0) @ (1 << np.arange(8))
        sizes = np.unique(keys, return_counts=True)[1]
        assert table.nonempty == sizes.size and table.empty == 256 - sizes.size
        assert table.largest == sizes.max()
        assert table.mean_size == pytest.approx(sizes.mean())
        np.testing.assert_array_equal(table.histogram[1:],
                                      np.bincount(sizes, minlength=sizes.max() + 1)[1:])
        assert int(np.sum(np.arange(table.histogram.size) * table.histogram)) == 1333
    assert 0 <= stats.empty_fraction < 1


def test_empty_result_diagnostic_fires_for_large_k():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 32))
    assert LSHIndex(32, 1, 24).explain_empty() == (
        "The index is empty: add vectors before querying.")
    big = LSHIndex(32, 1, 24, seed=0)
    big.add(np.arange(1000), x)
    message = big.explain_empty()
    assert message.startswith("K = 24: more than 99.9% of the 16777216 buckets")
    assert message.endswith("lower K or add probes")
    q = rng.standard_normal(32)
    assert big.query(q, 5)[0].size == 0
    assert big.explain_empty(q) == message
    assert big.explain_empty(x[0]) is None  # a stored vector finds at least itself
    small = LSHIndex(32, 4, 4, seed=0)
    small.add(np.arange(1000), x)
    assert small.explain_empty() is None and small.explain_empty(q) is None


# -- files --------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(2)
    index = LSHIndex(8, 3, 4, seed=9)
    index.add(np.arange(50) * 3, rng.standard_normal((50, 8)),
              [{"token": f"t{i}", "sentence": i % 4} for i in range(50)])
    path = tmp_path / "store.npz"
    index.save(path)
    return index, path, rng.standard_normal((5, 8))


def test_save_and_load_give_identical_results(saved):
    index, path, queries = saved
    loaded = LSHIndex.load(path, dim=8)
    assert repr(loaded) == repr(index)
    assert loaded.payload(3) == {"token": "t1", "sentence": 1}
    same_results(index, loaded, queries, k=6, probes=3)
    np.testing.assert_array_equal(loaded.hyperplanes, index.hyperplanes)
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["header"].tobytes())
    assert header["format"] == FORMAT and header["version"] == FORMAT_VERSION
    assert (header["dim"], header["n_tables"], header["n_bits"], header["seed"]) == (8, 3, 4, 9)
    assert header["ids"] == index.ids().tolist() and len(header["payloads"]) == 50


def rewrite(path, **changes):
    """Re-save the arrays of a valid file with some of them (or header fields) replaced."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays["header"].tobytes())
    for name, value in changes.items():
        if name in arrays and name != "header":
            arrays[name] = value
        else:
            header[name] = value
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage, words", [
    (lambda p: rewrite(p, version=FORMAT_VERSION + 1), "version"),
    (lambda p: rewrite(p, format="something-else"), "not a"),
    (lambda p: rewrite(p, vectors=np.array([{"a": 1}], dtype=object)), "pickle"),
    (lambda p: rewrite(p, ids=list(range(49)) + [0]), "repeats"),
    (lambda p: rewrite(p, n_bits=99), "n_bits"),
    (lambda p: rewrite(p, norms=np.ones(3, np.float32)), "norms"),
    (lambda p: p.write_bytes(pickle.dumps({"vectors": [1, 2, 3]})), "pickle"),
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "readable"),
    (lambda p: p.write_bytes(b""), "readable"),
    (lambda p: p.unlink(), "cannot read"),
])
def test_bad_files_are_refused_and_the_open_store_untouched(saved, damage, words):
    index, path, queries = saved
    before = [index.query(q, 6, 3) for q in queries]
    damage(path)
    with pytest.raises(StoreError, match=words) as caught:
        LSHIndex.load(path)
    assert isinstance(caught.value, ValueError)
    for q, (ids, scores) in zip(queries, before):
        got = index.query(q, 6, 3)
        np.testing.assert_array_equal(got[0], ids)
        np.testing.assert_array_equal(got[1], scores)


def test_wrong_dimension_is_refused(saved):
    _, path, _ = saved
    with pytest.raises(StoreError, match="dimension 8, expected 384"):
        LSHIndex.load(path, dim=384)


def test_an_index_on_given_hyperplanes_hashes_by_them_and_saves_them(tmp_path):
    rng = np.random.default_rng(5)
    planes = rng.normal(size=(3, 4, 2))
    planes /= np.linalg.norm(planes, axis=2, keepdims=True)
    index = LSHIndex.from_hyperplanes(planes, seed=9)
    assert (index.n_tables, index.n_bits, index.dim, index.seed, len(index)) == (3, 4, 2, 9, 0)
    np.testing.assert_array_equal(index.hyperplanes, planes)
    x = rng.normal(size=(50, 2))
    index.add(np.arange(50), x)
    bits = (x @ planes.reshape(12, 2).T > 0).reshape(50, 3, 4)
    keys = (bits * (1 << np.arange(4))).sum(axis=2)  # bit b of a table's key: plane b's sign
    np.testing.assert_array_equal([index.bucket_of(i) for i in range(50)], keys)
    index.save(tmp_path / "planes.npz")
    np.testing.assert_array_equal(LSHIndex.load(tmp_path / "planes.npz").hyperplanes, planes)


@pytest.mark.parametrize("planes, words", [
    (np.ones((2, 3)), "(L, K, dim)"),
    (np.ones((1, 2, 2)), "unit vectors"),
    (np.full((1, 1, 2), np.nan), "non-finite"),
    (np.ones((1, MAX_BITS + 1, 1)), "at most"),
])
def test_bad_hyperplanes_are_refused(planes, words):
    with pytest.raises(StoreError, match=re.escape(words)):
        LSHIndex.from_hyperplanes(planes)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(where=st.floats(0, 1, exclude_max=True), byte=st.integers(1, 255))
def test_a_flipped_byte_is_refused_or_harmless(saved, where, byte):
    index, path, queries = saved
    data = bytearray(path.read_bytes())
    data[int(where * len(data))] ^= byte
    damaged = path.with_name("damaged.npz")
    damaged.write_bytes(bytes(data))
    try:
        loaded = LSHIndex.load(damaged)
    except StoreError:
        return
    same_results(index, loaded, queries)  # only bytes nobody reads (zip timestamps...)
    assert [loaded.payload(i) for i in loaded.ids()] == [index.payload(i) for i in index.ids()]


def test_a_failed_save_leaves_the_previous_file(saved, monkeypatch):
    index, path, _ = saved
    before = path.read_bytes()
    index.add([1000], [np.ones(8)])

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["store.npz"]  # no temp file
    assert 1000 not in LSHIndex.load(path)


def test_small_vocabulary_workflow_of_the_weak_rag(tmp_path):
    """Tokens picked by the attention panel stored with their sentence, found again later."""
    rng = np.random.default_rng(3)
    tokens = ["cat", "sat", "mat", "dog", "ran", "far"]
    vectors = rng.standard_normal((6, 12))
    index = LSHIndex(12, 8, 4, seed=0)
    index.add(range(6), vectors, [{"token": t, "sentence": i // 3} for i, t in enumerate(tokens)])
    ids, scores = index.query(vectors[3] + 0.01 * rng.standard_normal(12), k=1, probes=4)
    assert index.payload(int(ids[0]))["token"] == "dog" and scores[0] > 0.99
    index.remove([3])
    ids, _ = index.query(vectors[3], k=6, probes=15)
    assert 3 not in ids.tolist()
    index.save(tmp_path / "rag.npz")
    again = LSHIndex.load(tmp_path / "rag.npz", dim=12)
    assert [again.payload(i)["token"] for i in sorted(again.ids())] == [
        "cat", "sat", "mat", "ran", "far"]
