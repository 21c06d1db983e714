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

Storage is array-based and compiled with Numba. Per table, an open-addressing hash map
(linear probing, backward-shift deletion) sends a bucket key to a block of a shared pool that
lists the bucket's slots, and every slot records where it sits in each table: a delete swaps
the block's last slot into its place (O(1) per table, no search), an insert appends (a full
block moves and doubles: amortised O(1)), an update is both; freed slots are reused. Batches
are processed table by table so that one table's map and blocks stay in cache, and big
batches of deletes or queries are split across threads (the kernels release the GIL).
Vectors are kept as float32 unit vectors plus their norms and hashed in float64. A mutation
must not run alongside any other call on the same index: serialise access (the app's single
worker does).

:meth:`LSHIndex.save` writes an ``.npz`` (arrays plus a JSON header, no pickle) atomically;
:meth:`LSHIndex.load` validates everything before it builds a new index, so a bad file raises
:class:`StoreError` and nothing else changes.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_BITS",
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
_ARRAYS = ("header", "vectors", "norms", "hyperplanes")

_EMPTY = -1  # a free cell of a hash map; ids and bucket keys are never negative
_LOW = (1 << 32) - 1  # where[t, s, 1] packs at | off << 32
_MAX_POOL = 2**31 - 1  # pool offsets and slots are int32
_CHUNK = 1024  # deletes handled per pass (their cache lines fit in L2)
_HASH_ROWS = 4096  # vectors hashed per matrix product (the projections fit in cache)
_FEW_ROWS = 8  # up to this many vectors are hashed by a compiled loop, not by BLAS
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: 2^64 / golden ratio
_JIT = {"cache": True, "nogil": True, "boundscheck": False}
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


# -- compiled hash maps and bucket blocks ---------------------------------------------------
#
# Per table t, a bucket is a block of the pool: its size at pool[off - 1], then its slots
# pool[off : off + size] (room for 2^bcap[t, c] of them). The map cell bmap[t, c] = (key, off)
# finds it; where[t, s] = (key, at | off << 32) says where slot s sits, so a delete goes
# straight to the block (no map lookup unless the bucket empties) and swaps the block's last
# slot into the hole. A full block moves to the end of the pool at twice its room; the pool
# is compacted when it runs out. A deleted slot (slot_ids -1) goes on a free list and is
# reused by the next insert.

@njit(inline="always", **_JIT)
def _home(key, shift):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(shift))


@njit(inline="always", **_JIT)
def _find(keys, key, shift):
    """Cell of ``key``, or -1 - (the free cell where it would go)."""
    mask = keys.size - 1
    i = _home(key, shift)
    while True:
        k = keys[i]
        if k == key:
            return i
        if k == _EMPTY:
            return -1 - i
        i = (i + 1) & mask


@njit(inline="always", **_JIT)
def _next_in_run(keys, i, j, shift):
    """Next cell after j whose entry may move back into the hole at i, or -1 at the run's
    end (backward-shift deletion: no tombstones)."""
    mask = keys.size - 1
    while True:
        j = (j + 1) & mask
        k = keys[j]
        if k == _EMPTY:
            return -1
        if ((j - _home(k, shift)) & mask) >= ((j - i) & mask):
            return j


@njit(inline="always", **_JIT)
def _id_delete(idkeys, idvals, i, shift):
    j = _next_in_run(idkeys, i, i, shift)
    while j >= 0:
        idkeys[i] = idkeys[j]
        idvals[i] = idvals[j]
        i = j
        j = _next_in_run(idkeys, i, i, shift)
    idkeys[i] = _EMPTY


@njit(inline="always", **_JIT)
def _bucket_delete(t, i, bmap, bcap, shift):
    keys = bmap[t, :, 0]
    j = _next_in_run(keys, i, i, shift)
    while j >= 0:
        bmap[t, i, 0] = bmap[t, j, 0]
        bmap[t, i, 1] = bmap[t, j, 1]
        bcap[t, i] = bcap[t, j]
        i = j
        j = _next_in_run(keys, i, i, shift)
    bmap[t, i, 0] = _EMPTY


@njit(**_JIT)
def _pack_keys(proj, n_tables, n_bits):
    """Bucket keys (m, L): bit b of table t is set where proj[:, t*K + b] > 0."""
    m = proj.shape[0]
    out = np.empty((m, n_tables), np.int64)
    for i in range(m):
        for t in range(n_tables):
            key = np.int64(0)
            base = t * n_bits
            for b in range(n_bits):
                key |= np.int64(proj[i, base + b] > 0.0) << b
            out[i, t] = key
    return out


@njit(fastmath=True, **_JIT)
def _project(unit, planes):
    """unit @ planes.T in float64 for a few rows: a BLAS call on a tiny product costs more
    in waking its threads than the arithmetic."""
    out = np.empty((unit.shape[0], planes.shape[0]))
    for i in range(unit.shape[0]):
        for h in range(planes.shape[0]):
            acc = 0.0
            for j in range(planes.shape[1]):
                acc += planes[h, j] * unit[i, j]
            out[i, h] = acc
    return out


@njit(**_JIT)
def _normalize(x):
    """(float32 unit rows, float32 norms, status, row) of float64 rows rounded to float32;
    status 1: a component is not finite in float32, 2: a zero row."""
    m, d = x.shape
    unit = np.empty((m, d), np.float32)
    norms = np.empty(m, np.float32)
    for i in range(m):
        acc = 0.0
        for j in range(d):
            v = np.float64(np.float32(x[i, j]))
            if not np.isfinite(v):
                return unit, norms, 1, i
            acc += v * v
        if acc == 0.0:
            return unit, norms, 2, i
        r = math.sqrt(acc)
        for j in range(d):
            unit[i, j] = np.float32(np.float64(np.float32(x[i, j])) / r)
        norms[i] = np.float32(r)
    return unit, norms, 0, -1


@njit(**_JIT)
def _lookup(idkeys, idvals, idshift, ids):
    out = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        cell = _find(idkeys, ids[i], idshift)
        out[i] = idvals[cell] if cell >= 0 else -1
    return out


@njit(**_JIT)
def _claim_ids(ids, slots, slot_ids, idkeys, idvals, idshift):
    """Enter the new ids (absent, with room in the id map) at their slots."""
    for i in range(ids.size):
        cell = -1 - _find(idkeys, ids[i], idshift)
        idkeys[cell] = ids[i]
        idvals[cell] = slots[i]
        slot_ids[slots[i]] = ids[i]


@njit(**_JIT)
def _link_tables(new_keys, slots, t0, i0, where, pool, pstate, bmap, bcap, bused, bshift):
    """Put slots[i] into their buckets, table by table (one table's map and blocks stay
    in cache), from vector i0 of table t0 on.

    Stops where a bucket map would pass 70% full (pstate[2] = -1) or the pool lacks room
    (pstate[2] = entries wanted) and returns the (table, vector) to resume from; returns
    (L, 0) when done. pstate = [pool top, garbage, room wanted].
    """
    n_tables = where.shape[0]
    limit = bmap.shape[1] * 7 // 10
    start = i0
    for t in range(t0, n_tables):
        for i in range(start, new_keys.shape[0]):
            key = new_keys[i, t]
            cell = _find(bmap[t, :, 0], key, bshift)
            if cell < 0:
                if bused[t] >= limit:
                    pstate[2] = -1
                    return t, i
                if pstate[0] + 2 > pool.size:
                    pstate[2] = 2
                    return t, i
                cell = -1 - cell
                top = pstate[0]
                pool[top] = 0
                bmap[t, cell, 0] = key
                bmap[t, cell, 1] = top + 1
                bcap[t, cell] = 0
                pstate[0] += 2
                bused[t] += 1
            off = bmap[t, cell, 1]
            size = np.int64(pool[off - 1])
            if size == np.int64(1) << bcap[t, cell]:  # move the full block, doubled, to the top
                if pstate[0] + 2 * size + 1 > pool.size:
                    pstate[2] = 2 * size + 1
                    return t, i
                new = pstate[0] + 1
                pool[new - 1] = size
                for j in range(size):
                    moved = pool[off + j]
                    pool[new + j] = moved
                    where[t, moved, 1] = (new + j) | (new << 32)
                off = new
                bmap[t, cell, 1] = new
                bcap[t, cell] += 1
                pstate[0] += 2 * size + 1
                pstate[1] += size + 1
            s = slots[i]
            where[t, s, 0] = key
            where[t, s, 1] = (off + size) | (off << 32)
            pool[off + size] = s
            pool[off - 1] = size + 1
        start = 0
    return n_tables, 0


@njit(**_JIT)
def _release_ids(ids, slot_ids, idkeys, idvals, idshift):
    """Take present, distinct ids out of the id map; returns their slots (now free)."""
    slots = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        cell = _find(idkeys, ids[i], idshift)
        slots[i] = idvals[cell]
        _id_delete(idkeys, idvals, cell, idshift)
        slot_ids[slots[i]] = -1
    return slots


@njit(**_JIT)
def _unlink(slots, t0, t1, where, pool, bmap, bcap, bused, bshift):
    """Swap-remove the slots from their bucket blocks in tables t0 <= t < t1 (threads may
    work on disjoint table ranges); returns the pool entries freed."""
    m = slots.size
    emptied = np.empty(m, np.int64)
    warm = 0
    garbage = 0
    for t in range(t0, t1):
        n_emptied = 0
        for lo in range(0, m, _CHUNK):
            hi = min(m, lo + _CHUNK)
            # Pass 1 only reads: its loads are independent, so they overlap in the CPU and
            # leave the chunk's cache lines warm for pass 2.
            for i in range(lo, hi):
                off = where[t, slots[i], 1] >> 32
                warm += where[t, pool[off + pool[off - 1] - 1], 1]
            for i in range(lo, hi):  # pass 2
                s = slots[i]
                at, off = where[t, s, 1] & _LOW, where[t, s, 1] >> 32
                last = off + pool[off - 1] - 1
                if at != last:
                    moved = pool[last]
                    pool[at] = moved
                    where[t, moved, 1] = at | (off << 32)
                pool[off - 1] -= 1
                if last == off:
                    emptied[n_emptied] = where[t, s, 0]
                    n_emptied += 1
        for i in range(n_emptied):
            cell = _find(bmap[t, :, 0], emptied[i], bshift)
            garbage += (np.int64(1) << bcap[t, cell]) + 1
            _bucket_delete(t, cell, bmap, bcap, bshift)
            bused[t] -= 1
    return garbage + np.int64(warm < 0)  # always + 0, but keeps the warm-up loads alive


@njit(**_JIT)
def _refill_ids(slot_ids, top, idkeys, idvals, idshift):
    for s in range(top):
        if slot_ids[s] >= 0:
            cell = -1 - _find(idkeys, slot_ids[s], idshift)
            idkeys[cell] = slot_ids[s]
            idvals[cell] = s


@njit(**_JIT)
def _rehash(bmap, bcap, new_map, new_cap, new_shift):
    """Copy every table's bucket map into larger arrays (the blocks stay where they are)."""
    for t in range(bmap.shape[0]):
        for c in range(bmap.shape[1]):
            key = bmap[t, c, 0]
            if key != _EMPTY:
                d = -1 - _find(new_map[t, :, 0], key, new_shift)
                new_map[t, d, 0] = key
                new_map[t, d, 1] = bmap[t, c, 1]
                new_cap[t, d] = bcap[t, c]


@njit(**_JIT)
def _compact(pool, new_pool, where, bmap, bcap):
    """Copy the live blocks into ``new_pool`` back to back, each with room for the smallest
    power of 2 that holds it; returns the new pool top."""
    top = 0
    for t in range(bmap.shape[0]):
        for c in range(bmap.shape[1]):
            if bmap[t, c, 0] == _EMPTY:
                continue
            off = bmap[t, c, 1]
            size = np.int64(pool[off - 1])
            log2 = 0
            while (np.int64(1) << log2) < size:
                log2 += 1
            new = top + 1
            new_pool[top] = size
            for j in range(size):
                s = pool[off + j]
                new_pool[new + j] = s
                where[t, s, 1] = (new + j) | (new << 32)
            bmap[t, c, 1] = new
            bcap[t, c] = log2
            top = new + (np.int64(1) << log2)
    return top


@njit(inline="always", **_JIT)
def _probe_table(row, base, n_bits, probes, out, z, order, pool_cost, pool_mask, pool_top):
    """Fill ``out`` (1 + probes keys, -1 past the 2^K - 1 flips) for the table whose
    projections are row[base : base + K].

    out[0] is the query's bucket; then flip sets in increasing sum of squared margins,
    generated by Lv et al.'s shift/expand rule over the bits sorted by margin.
    """
    key = np.int64(0)
    for b in range(n_bits):
        v = row[base + b]
        if v > 0.0:
            key |= np.int64(1) << b
        z[b] = v * v
    out[0] = key
    for p in range(1, probes + 1):
        out[p] = -1
    if probes == 0:
        return
    for b in range(n_bits):  # insertion sort of the bits by margin (K <= 62)
        j = b
        while j > 0 and z[order[j - 1]] > z[b]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = b
    pool_cost[0] = z[order[0]]
    pool_mask[0] = np.int64(1) << order[0]
    pool_top[0] = 0
    size = 1
    for p in range(probes):
        if size == 0:
            break
        best = 0
        for c in range(1, size):
            if pool_cost[c] < pool_cost[best]:
                best = c
        cost, mask, top = pool_cost[best], pool_mask[best], pool_top[best]
        size -= 1
        pool_cost[best] = pool_cost[size]
        pool_mask[best] = pool_mask[size]
        pool_top[best] = pool_top[size]
        out[1 + p] = key ^ mask
        if top + 1 < n_bits:
            old_bit = np.int64(1) << order[top]
            new_bit = np.int64(1) << order[top + 1]
            zn = z[order[top + 1]]
            pool_cost[size] = cost - z[order[top]] + zn  # shift: replace the top bit
            pool_mask[size] = (mask ^ old_bit) | new_bit
            pool_top[size] = top + 1
            pool_cost[size + 1] = cost + zn  # expand: add the next bit
            pool_mask[size + 1] = mask | new_bit
            pool_top[size + 1] = top + 1
            size += 2


@njit(**_JIT)
def _probe_keys(row, n_tables, n_bits, probes):
    """Keys each table visits, (L, 1 + probes): see :func:`_probe_table`."""
    out = np.empty((n_tables, 1 + probes), np.int64)
    z, order = np.empty(n_bits), np.empty(n_bits, np.int64)
    pool_cost = np.empty(probes + 2)
    pool_mask, pool_top = np.empty(probes + 2, np.int64), np.empty(probes + 2, np.int64)
    for t in range(n_tables):
        _probe_table(row, t * n_bits, n_bits, probes, out[t], z, order, pool_cost, pool_mask,
                     pool_top)
    return out


@njit(fastmath=True, **_JIT)
def _dot(a, b):
    acc = np.float32(0.0)
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@njit(**_JIT)
def _search(proj, queries, n_tables, n_bits, probes, k, n, slot_ids, unit, pool, bmap,
            bshift):
    """Top-k (score desc, id asc) among each query's candidates, and the candidate counts."""
    m = queries.shape[0]
    out_ids = np.full((m, k), -1, np.int64)
    out_scores = np.full((m, k), np.nan, np.float32)
    counts = np.zeros(m, np.int64)
    seen = np.zeros(n, np.uint8)
    cand = np.empty(n, np.int64)
    best_s = np.empty(k, np.float32)
    best_i = np.empty(k, np.int64)
    probe = np.empty((n_tables, 1 + probes), np.int64)
    blocks = np.empty(n_tables * (1 + probes), np.int64)
    z, order = np.empty(n_bits), np.empty(n_bits, np.int64)
    pool_cost = np.empty(probes + 2)
    pool_mask, pool_top = np.empty(probes + 2, np.int64), np.empty(probes + 2, np.int64)
    for qi in range(m):
        for t in range(n_tables):
            _probe_table(proj[qi], t * n_bits, n_bits, probes, probe[t], z, order, pool_cost,
                         pool_mask, pool_top)
        nb = 0  # look all buckets up first: independent loads overlap in the CPU
        for t in range(n_tables):
            for p in range(1 + probes):
                key = probe[t, p]
                if key < 0:
                    break
                cell = _find(bmap[t, :, 0], key, bshift)
                if cell >= 0:
                    blocks[nb] = bmap[t, cell, 1]
                    nb += 1
        nc = 0
        for b in range(nb):
            off = blocks[b]
            for j in range(off, off + pool[off - 1]):
                s = pool[j]
                if seen[s] == 0:
                    seen[s] = 1
                    cand[nc] = s
                    nc += 1
        counts[qi] = nc
        if nc * 8 > n:  # many candidates: score them in storage order (prefetch-friendly)
            nc = 0
            for s in range(n):
                if seen[s]:
                    cand[nc] = s
                    nc += 1
        q = queries[qi]
        filled = 0
        for c in range(nc):
            s = cand[c]
            seen[s] = 0
            score = _dot(q, unit[s])
            ident = slot_ids[s]
            if filled == k:
                worst = best_s[k - 1]
                if score < worst or (score == worst and ident > best_i[k - 1]):
                    continue
                j = k - 1
            else:
                j = filled
                filled += 1
            while j > 0 and (best_s[j - 1] < score
                             or (best_s[j - 1] == score and best_i[j - 1] > ident)):
                best_s[j] = best_s[j - 1]
                best_i[j] = best_i[j - 1]
                j -= 1
            best_s[j] = score
            best_i[j] = ident
        out_ids[qi, :filled] = best_i[:filled]
        out_scores[qi, :filled] = best_s[:filled]
    return out_ids, out_scores, counts


@njit(**_JIT)
def _bucket_members(t, key, slot_ids, pool, bmap, bshift):
    cell = _find(bmap[t, :, 0], key, bshift)
    if cell < 0:
        return np.empty(0, np.int64)
    off = bmap[t, cell, 1]
    out = np.empty(pool[off - 1], np.int64)
    for j in range(out.size):
        out[j] = slot_ids[pool[off + j]]
    return out


@njit(**_JIT)
def _bucket_sizes(t, pool, bmap, bused):
    out = np.empty(bused[t], np.int64)
    j = 0
    for cell in range(bmap.shape[1]):
        if bmap[t, cell, 0] != _EMPTY:
            out[j] = pool[bmap[t, cell, 1] - 1]
            j += 1
    return out


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

    def _setup(self, planes: np.ndarray, n_tables: int, n_bits: int, seed: int) -> None:
        self._planes = np.ascontiguousarray(planes, dtype=np.float64)
        self._planes.flags.writeable = False
        self._dim = planes.shape[1]
        self._L, self._K, self._seed = n_tables, n_bits, seed
        self._n = 0  # live vectors
        self._top = 0  # slots ever used; the free ones below it are on the free list
        self._n_free = 0
        self._payloads: dict[int, dict] = {}
        L = self._L
        self._unit = np.empty((0, self._dim), np.float32)
        self._norms = np.empty(0, np.float32)
        self._slot_ids = np.empty(0, np.int64)
        self._free = np.empty(0, np.int64)
        self._where = np.empty((L, 0, 2), np.int64)
        self._pool = np.empty(0, np.int32)
        self._pstate = np.zeros(3, np.int64)  # pool top, garbage, room wanted
        self._allocate_slots(16)
        self._allocate_ids(32)
        self._bmap = np.full((L, 16, 2), _EMPTY, np.int64)
        self._bcap = np.zeros((L, 16), np.int8)
        self._bused = np.zeros(L, np.int64)
        self._bshift = 64 - 4

    # -- allocation ------------------------------------------------------------------------

    def _allocate_slots(self, cap: int) -> None:
        n, L = self._top, self._L
        unit = np.empty((cap, self._dim), np.float32)
        norms = np.empty(cap, np.float32)
        slot_ids = np.empty(cap, np.int64)
        where = np.empty((L, cap, 2), np.int64)  # per table: (bucket key, place in the pool)
        unit[:n], norms[:n], slot_ids[:n] = self._unit[:n], self._norms[:n], self._slot_ids[:n]
        where[:, :n] = self._where[:, :n]
        free = np.empty(cap, np.int64)
        free[:self._n_free] = self._free[:self._n_free]
        self._unit, self._norms, self._slot_ids = unit, norms, slot_ids
        self._where, self._free = where, free

    def _allocate_ids(self, cap: int) -> None:
        self._idkeys = np.full(cap, _EMPTY, np.int64)
        self._idvals = np.empty(cap, np.int64)
        self._idshift = 64 - (cap.bit_length() - 1)
        _refill_ids(self._slot_ids, self._top, self._idkeys, self._idvals, self._idshift)

    def _grow_buckets(self) -> None:
        """Double every table's bucket map (kept at most 70% full)."""
        cap = 2 * self._bmap.shape[1]
        bmap = np.full((self._L, cap, 2), _EMPTY, np.int64)
        bcap = np.zeros((self._L, cap), np.int8)
        shift = 64 - (cap.bit_length() - 1)
        _rehash(self._bmap, self._bcap, bmap, bcap, shift)
        self._bmap, self._bcap, self._bshift = bmap, bcap, shift

    def _grow_pool(self, extra: int) -> None:
        """Compact the live blocks into a new pool with room for ``extra`` more entries."""
        top, garbage = int(self._pstate[0]), int(self._pstate[1])
        size = min(max(1024, 3 * (top - garbage + extra) // 2), _MAX_POOL)
        pool = np.empty(size, np.int32)
        self._pstate[0] = _compact(self._pool, pool, self._where, self._bmap, self._bcap)
        self._pstate[1] = 0
        self._pool = pool

    def _reserve(self, m: int) -> None:
        """Room for m more vectors and ids (the tables make room as they fill, in _link)."""
        need = self._n + m
        if 2 * need * self._L > _MAX_POOL:  # checked before anything changes
            raise ValueError(f"too many vectors: L x n must stay below {_MAX_POOL // 2}")
        slots = self._top + max(0, m - self._n_free)
        if slots > self._unit.shape[0]:
            self._allocate_slots(max(slots, 2 * self._unit.shape[0]))
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
              keys: np.ndarray) -> None:
        """Insert new ids (absent from the index, room reserved)."""
        slots = self._take_slots(ids.size)
        self._unit[slots] = unit
        self._norms[slots] = norms
        _claim_ids(ids, slots, self._slot_ids, self._idkeys, self._idvals, self._idshift)
        t, i = 0, 0
        while t < self._L:
            t, i = _link_tables(keys, slots, t, i, self._where, self._pool, self._pstate,
                                self._bmap, self._bcap, self._bused, self._bshift)
            if t < self._L:
                if self._pstate[2] < 0:
                    self._grow_buckets()
                else:
                    self._grow_pool(int(self._pstate[2]) + (self._L - t) * (ids.size - i))
        self._n += ids.size

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
        unit, norms, status, row = _normalize(np.ascontiguousarray(x, dtype=np.float64))
        if status == 1:
            raise ValueError(f"vector {row} is not finite (or beyond float32 range)")
        if status == 2:
            raise ValueError(f"vector {row} is zero: it has no direction")
        return unit, norms

    def _hash(self, unit: np.ndarray) -> np.ndarray:
        """Projections (m, L*K) on the hyperplanes, in float64 (signs and margins)."""
        if unit.shape[0] <= _FEW_ROWS:
            return _project(unit, self._planes)
        return unit.astype(np.float64) @ self._planes.T

    def _keys(self, unit: np.ndarray) -> np.ndarray:
        """Bucket keys (m, L), hashed a block of rows at a time."""
        if unit.shape[0] <= _FEW_ROWS:
            return _pack_keys(self._hash(unit), self._L, self._K)
        keys = np.empty((unit.shape[0], self._L), np.int64)
        for lo in range(0, unit.shape[0], _HASH_ROWS):
            rows = slice(lo, lo + _HASH_ROWS)
            keys[rows] = _pack_keys(self._hash(unit[rows]), self._L, self._K)
        return keys

    # -- mutation --------------------------------------------------------------------------

    def add(self, ids, vectors, payloads=None) -> None:
        """Insert vectors under ``ids``; an id already present is updated (vector and payload).

        ``ids`` is one id or a sequence, ``vectors`` one vector or an (m, dim) array and
        ``payloads`` None, one dict (with one id) or a sequence of dicts or None. If an id
        appears twice in one call, the last occurrence wins. Nothing changes on an error.
        """
        single = np.ndim(ids) == 0
        ids = self._as_ids(ids)
        unit, norms = self._as_units(vectors, ids.size)
        if payloads is not None:
            if single and not isinstance(payloads, (list, tuple)):
                payloads = [payloads]
            payloads = list(payloads)
            if len(payloads) != ids.size:
                raise ValueError(f"{ids.size} ids but {len(payloads)} payloads")
            payloads = [_payload(p) for p in payloads]
        if ids.size == 0:
            return
        if ids.size > 1:
            _, last = np.unique(ids[::-1], return_index=True)
            if last.size < ids.size:  # keep each id's last occurrence, in order
                keep = np.sort(ids.size - 1 - last)
                ids, unit, norms = ids[keep], unit[keep], norms[keep]
                if payloads is not None:
                    payloads = [payloads[i] for i in keep]
        keys = self._keys(unit)
        present = _lookup(self._idkeys, self._idvals, self._idshift, ids) >= 0
        self._reserve(ids.size)  # may refuse: before anything changes
        if present.any():
            self._unlink_ids(ids[present])
        self._link(ids, unit, norms, keys)
        if payloads is None:
            if self._payloads and present.any():
                for i in ids[present].tolist():
                    self._payloads.pop(i, None)
        else:
            for i, p in zip(ids.tolist(), payloads):
                if p is None:
                    self._payloads.pop(i, None)
                else:
                    self._payloads[i] = p

    def remove(self, ids) -> int:
        """Delete ``ids`` (one or many); all must be present, else KeyError and no change.

        Returns the number of vectors removed (duplicates in ``ids`` count once).
        """
        ids = self._as_ids(ids)
        if ids.size > 1:
            ids = np.unique(ids)
        if ids.size == 0:
            return 0
        slots = _lookup(self._idkeys, self._idvals, self._idshift, ids)
        if np.any(slots < 0):
            missing = ids[slots < 0]
            raise KeyError(f"{missing.size} id(s) not in the index: {missing[:10].tolist()}")
        self._unlink_ids(ids)
        if self._payloads:
            for i in ids.tolist():
                self._payloads.pop(i, None)
        return int(ids.size)

    def _unlink_ids(self, ids: np.ndarray) -> None:
        """Delete present, distinct ids; big batches split the tables between threads."""
        slots = _release_ids(ids, self._slot_ids, self._idkeys, self._idvals, self._idshift)
        workers = max(1, min(_WORKERS, self._L, ids.size // _DELETES_PER_WORKER))
        bounds = [self._L * i // workers for i in range(workers + 1)]
        freed = _in_threads(lambda i: _unlink(slots, bounds[i], bounds[i + 1], self._where,
                                              self._pool, self._bmap, self._bcap, self._bused,
                                              self._bshift), workers)
        self._pstate[1] += sum(freed)
        self._free[self._n_free:self._n_free + slots.size] = slots
        self._n_free += slots.size
        self._n -= ids.size

    def clear(self) -> None:
        """Remove every vector (the hyperplanes stay)."""
        self._setup(self._planes, self._L, self._K, self._seed)

    # -- queries ---------------------------------------------------------------------------

    def _run(self, queries, k: int, probes: int):
        k = _int(k, "k", 1)
        probes = _int(probes, "probes", 0)
        probes = min(probes, 2**self._K - 1)
        unit, _ = self._as_units(queries)
        if self._n == 0:
            m = unit.shape[0]
            return (np.full((m, k), -1, np.int64), np.full((m, k), np.nan),
                    np.zeros(m, np.int64))
        proj = self._hash(unit)

        def search(rows: slice):
            return _search(proj[rows], unit[rows], self._L, self._K, probes, k, self._top,
                           self._slot_ids, self._unit, self._pool, self._bmap, self._bshift)

        m = unit.shape[0]
        workers = max(1, min(_WORKERS, m // _ROWS_PER_WORKER))
        bounds = [m * i // workers for i in range(workers + 1)]
        parts = _in_threads(lambda i: search(slice(bounds[i], bounds[i + 1])), workers)
        ids, scores, counts = (np.concatenate(column) for column in zip(*parts))
        return ids, scores.astype(np.float64), counts

    def query(self, vector, k: int = 10, probes: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The k most cosine-similar stored vectors among the candidates of ``vector``.

        Candidates are the members of the query's bucket plus ``probes`` more buckets per
        table (multi-probe, lowest margins first). Returns (ids, cosine similarities), best
        first, ties to the smaller id; fewer than k when there are fewer candidates.
        """
        if np.ndim(vector) != 1:
            raise ValueError("query takes one vector; use query_batch for many")
        ids, scores, counts = self._run(vector, k, probes)
        found = int(min(counts[0], ids.shape[1]))
        return ids[0, :found], scores[0, :found]

    def query_batch(self, vectors, k: int = 10, probes: int = 0):
        """:meth:`query` for each row of ``vectors``: (ids, scores) of shape (m, k), padded
        with id -1 and score NaN where a query had fewer than k candidates."""
        ids, scores, _ = self._run(vectors, k, probes)
        return ids, scores

    def candidate_counts(self, vectors, probes: int = 0) -> np.ndarray:
        """Number of distinct candidates (vectors re-ranked) for each query."""
        return self._run(vectors, 1, probes)[2]

    def probe_buckets(self, vector, probes: int = 0) -> np.ndarray:
        """(L, 1 + probes) bucket keys a query visits per table, in order; -1 past the
        2^K - 1 possible flips."""
        unit, _ = self._as_units(vector)
        probes = _int(probes, "probes", 0)
        return _probe_keys(self._hash(unit)[0], self._L, self._K,
                           min(probes, 2**self._K - 1))

    # -- inspection ------------------------------------------------------------------------

    def bucket_of(self, item) -> np.ndarray:
        """The bucket key in each table (shape (L,)) of a stored id or of a vector."""
        if np.ndim(item) == 0:
            (slot,) = self._slots(item)
            return self._where[:, slot, 0].copy()
        unit, _ = self._as_units(item)
        if unit.shape[0] != 1:
            raise ValueError("bucket_of takes one id or one vector")
        return _pack_keys(self._hash(unit), self._L, self._K)[0]

    def members(self, table: int, bucket: int) -> np.ndarray:
        """Ids in bucket ``bucket`` of table ``table``, sorted."""
        table = _int(table, "table", 0, self._L - 1)
        bucket = _int(bucket, "bucket", 0, 2**self._K - 1)
        return np.sort(_bucket_members(table, bucket, self._slot_ids, self._pool, self._bmap,
                                       self._bshift))

    def stats(self) -> LSHStats:
        """Occupancy per table: histogram, empty buckets out of 2^K, largest, mean size."""
        n_buckets = 2**self._K
        tables = []
        for t in range(self._L):
            sizes = _bucket_sizes(t, self._pool, self._bmap, self._bused)
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
        slots = _lookup(self._idkeys, self._idvals, self._idshift, ids)
        if np.any(slots < 0):
            raise KeyError(f"id(s) not in the index: {ids[slots < 0][:10].tolist()}")
        return slots

    def vector(self, ident: int) -> np.ndarray:
        """The stored vector of ``ident`` (its float32 direction times its norm)."""
        (slot,) = self._slots(ident)
        return self._unit[slot].astype(np.float64) * float(self._norms[slot])

    def payload(self, ident: int) -> dict | None:
        """A copy of the payload of ``ident`` (None if it has none)."""
        self._slots(ident)
        return copy.deepcopy(self._payloads.get(int(ident)))

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
        return ids.size == 1 and bool(_lookup(self._idkeys, self._idvals, self._idshift,
                                              ids)[0] >= 0)

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
        """Bytes held in arrays (vectors, tables, maps; payloads not counted)."""
        arrays = (self._planes, self._unit, self._norms, self._slot_ids, self._free, self._where,
                  self._pool, self._idkeys, self._idvals, self._bmap, self._bcap)
        return int(sum(a.nbytes for a in arrays))

    # -- files -----------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the index to ``path`` (.npz, no pickle) atomically: a temporary file in the
        same folder, flushed and fsynced, then renamed over the target. On any failure the
        previous file is left as it was."""
        path = Path(path)
        live = self._slot_ids[:self._top] >= 0
        ids = self._slot_ids[:self._top][live].tolist()
        header = {
            "format": FORMAT, "version": FORMAT_VERSION, "dim": self._dim,
            "n_tables": self._L, "n_bits": self._K, "seed": self._seed, "ids": ids,
            "payloads": [self._payloads.get(i) for i in ids],
        }
        blob = json.dumps(header, allow_nan=False).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, header=np.frombuffer(blob, np.uint8),
                         vectors=self._unit[:self._top][live],
                         norms=self._norms[:self._top][live], hyperplanes=self._planes)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:  # make the rename itself durable where the platform allows it
            dir_fd = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

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
            keys = index._keys(unit)
            index._reserve(ids.size)
            index._link(ids, unit, norms, keys)
        index._payloads = {i: p for i, p in zip(header["ids"], header["payloads"])
                           if p is not None}
        return index


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
    if not (np.all(np.isfinite(unit)) and np.all(np.isfinite(norms))
            and np.all(np.isfinite(planes))):
        raise StoreError("the file holds non-finite numbers")
    if n and (np.any(np.abs(np.linalg.norm(unit, axis=1) - 1) > 1e-3) or np.any(norms <= 0)):
        raise StoreError("'vectors' must be unit vectors with positive norms")
    if np.any(np.abs(np.linalg.norm(planes, axis=1) - 1) > 1e-9):
        raise StoreError("'hyperplanes' must be unit vectors")
    return header, np.ascontiguousarray(unit), np.ascontiguousarray(norms), planes
