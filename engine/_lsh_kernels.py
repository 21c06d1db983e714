"""Compiled kernels of the LSH store (:mod:`engine.lsh`): hash maps, bucket blocks, sketches,
probing and search.

Per table t, a bucket is a block of the pool: its size at pool[off - 1], then its slots
pool[off : off + size] (room for 2^bcap[t, c] of them). The map cell bmap[t, c] = (key, off)
finds it; where[t, s] = (key, at | off << 32) says where slot s sits, so a delete goes
straight to the block (no map lookup unless the bucket empties) and swaps the block's last
slot into the hole. A full block moves to the end of the pool at twice its room; the pool
is compacted when it runs out. A bucket that empties keeps its map cell and block (the next
vector to hash there reuses them, and a delete touches no map) until the map is rebuilt to
grow (:func:`rehash`), which drops it. A deleted slot (slot_ids -1) goes on a free list and
is reused by the next insert. bused[t] counts the non-empty buckets of table t, bcells[t]
its occupied map cells (non-empty and kept empty ones).

Every slot also keeps its sketch: all L*K sign bits packed in uint64 words, bit t*K + b in
word (t*K + b) // 64, stored twice: word-major (sketch[w, s]) so that a scan over all slots
reads each word row in order and compiles to vector POPCNT, and slot-major (rows[s, w],
padded to a power of two words) so that the sketch of one bucket candidate is one cache
line rather than W of them. Short sketches are kept a third time, beside each bucket entry
(psk[j] is the sketch of slot pool[j]; psk has no columns otherwise): a probed query reads
its candidates' sketches with the blocks it reads anyway, instead of one scattered line per
candidate. Whatever moves an entry (a block's move, a delete's swap, compaction) moves its
sketch row with it.

The search stages (:func:`gather`, :func:`hamming_scan`, :func:`hamming_of`,
:func:`select_nearest`, :func:`rerank`) are separate functions so that a benchmark can time
them one by one; :func:`search` and :func:`query_one` chain them.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

EMPTY = -1  # a free cell of a hash map; ids and bucket keys are never negative
_LOW = (1 << 32) - 1  # where[t, s, 1] packs at | off << 32
_CHUNK = 1024  # deletes handled per pass (their cache lines fit in L2)
_FEW_UNLINKS = 64  # (slot, table) pairs whose unlinking is prefetched link by link
_AHEAD = 4  # rows prefetched ahead of the one being re-ranked
_FAR = 16  # rows prefetched into L2 ahead of the one being re-ranked
_SAMPLE = 8  # select_nearest guesses its cut from every 8th distance of a long list
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: 2^64 / golden ratio
_JIT = {"cache": True, "nogil": True, "boundscheck": False}


# -- bit tricks -----------------------------------------------------------------------------

@intrinsic
def _popcount(typingctx, x):
    """llvm.ctpop of a uint64: one POPCNT instruction, or VPOPCNT in a vectorised loop."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@intrinsic
def _trailing_zeros(typingctx, x):
    """llvm.cttz of a non-zero uint64: the index of its lowest set bit."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], context.get_constant(types.boolean, True))

    return types.uint64(types.uint64), codegen


@intrinsic
def _leading_zeros(typingctx, x):
    """llvm.ctlz of a non-zero int64: 63 minus the index of its highest set bit."""
    if x != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], context.get_constant(types.boolean, True))

    return types.int64(types.int64), codegen


def _prefetcher(locality: int, doc: str):
    """An intrinsic: llvm.prefetch of &array[index] (a 1-D array) for reading, with the
    given locality (3: into every cache level, prefetcht0; 2: into L2 and beyond,
    prefetcht1)."""

    @intrinsic
    def prefetch(typingctx, array, index):
        if not isinstance(array, types.Array) or array.ndim != 1:
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            byte_ptr = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = builder.module.declare_intrinsic(
                "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]))
            address = builder.bitcast(builder.gep(data, [args[1]]), byte_ptr)
            builder.call(fn, [address, i32(0), i32(locality), i32(1)])  # read, data cache
            return context.get_dummy_value()

        return types.void(array, index), codegen

    prefetch.__doc__ = doc
    return prefetch


_prefetch = _prefetcher(3, "Prefetch into all cache levels: what is read next.")
_prefetch_l2 = _prefetcher(2, "Prefetch into L2: what is read a little later. L1 has few "
                              "slots for misses in flight; L2 has more.")


# -- hash maps ------------------------------------------------------------------------------

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
        if k == EMPTY:
            return -1 - i
        i = (i + 1) & mask


@njit(inline="always", **_JIT)
def _find_bucket(bmap, t, key, shift):
    """:func:`_find` in table t's bucket map, indexed in place: a view per lookup costs
    reference counting that outweighs the lookup."""
    mask = bmap.shape[1] - 1
    i = _home(key, shift)
    while True:
        k = bmap[t, i, 0]
        if k == key:
            return i
        if k == EMPTY:
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
        if k == EMPTY:
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
    idkeys[i] = EMPTY


@njit(**_JIT)
def lookup(idkeys, idvals, idshift, ids):
    """Slot of each id, -1 where absent."""
    out = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        cell = _find(idkeys, ids[i], idshift)
        out[i] = idvals[cell] if cell >= 0 else -1
    return out


@njit(**_JIT)
def refill_ids(slot_ids, top, idkeys, idvals, idshift):
    for s in range(top):
        if slot_ids[s] >= 0:
            cell = -1 - _find(idkeys, slot_ids[s], idshift)
            idkeys[cell] = slot_ids[s]
            idvals[cell] = s


# -- hashing --------------------------------------------------------------------------------

@njit(**_JIT)
def normalize(x):
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
def normalize_one(x):
    """:func:`normalize` of one float32 or float64 vector of any stride: ((1, d) unit row,
    norm, status); the same arithmetic, without copying the vector first."""
    d = x.size
    unit = np.empty((1, d), np.float32)
    acc = 0.0
    for j in range(d):
        v = np.float64(np.float32(x[j]))
        if not np.isfinite(v):
            return unit, np.float32(0.0), 1
        acc += v * v
    if acc == 0.0:
        return unit, np.float32(0.0), 2
    r = math.sqrt(acc)
    for j in range(d):
        unit[0, j] = np.float32(np.float64(np.float32(x[j])) / r)
    return unit, np.float32(r), 0


@njit(fastmath=True, **_JIT)
def project64(unit, planes):
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


@njit(fastmath=True, **_JIT)
def project32(unit, planes):
    """:func:`project64` in float32 (twice the lanes per vector instruction)."""
    out = np.empty((unit.shape[0], planes.shape[0]), np.float32)
    for i in range(unit.shape[0]):
        for h in range(planes.shape[0]):
            acc = np.float32(0.0)
            for j in range(planes.shape[1]):
                acc += planes[h, j] * unit[i, j]
            out[i, h] = acc
    return out


@njit(fastmath=True, **_JIT)  # a separate function: Numba's IR inlining drops fastmath
def _dot64(plane, u):
    """plane . u in float64 (u float32)."""
    acc = 0.0
    for j in range(plane.shape[0]):
        acc += plane[j] * np.float64(u[j])
    return acc


@njit(**_JIT)
def signs(proj, unit, planes, bound, n_tables, n_bits):
    """(bucket keys (m, L), sketches (m, W)): bit t*K + b is set where h . u > 0 for
    hyperplane h = planes[t*K + b].

    ``proj`` holds the projections with an error of at most ``bound`` (float32 products);
    the few within ``bound`` of zero are recomputed in float64, so every bit is the float64
    sign. Pass a negative bound for float64 projections.
    """
    m = proj.shape[0]
    n_planes = n_tables * n_bits
    keys = np.empty((m, n_tables), np.int64)
    words = np.zeros((m, (n_planes + 63) >> 6), np.uint64)
    for i in range(m):
        for t in range(n_tables):
            key = np.int64(0)
            for b in range(n_bits):
                h = t * n_bits + b
                v = proj[i, h]
                if abs(v) <= bound:  # too close to zero to trust the float32 sign
                    on = _dot64(planes[h], unit[i]) > 0.0
                else:
                    on = v > 0.0
                if on:
                    key |= np.int64(1) << b
                    words[i, h >> 6] |= np.uint64(1) << np.uint64(h & 63)
            keys[i, t] = key
    return keys, words


@njit(**_JIT)
def reliable(proj, unit, planes, bound, cut):
    """(m, W) words: bit h is set where the float64 |h . u| >= ``cut``, the query's signs
    the shortlist counts. ``proj`` and ``bound`` as for :func:`signs` (a negative bound:
    float64 projections); projections within ``bound`` of the cut are recomputed in
    float64, so a single query and a batch agree bit for bit."""
    m, n_planes = proj.shape
    out = np.zeros((m, (n_planes + 63) >> 6), np.uint64)
    for i in range(m):
        for h in range(n_planes):
            a = abs(np.float64(proj[i, h]))
            if abs(a - cut) <= bound:
                a = abs(_dot64(planes[h], unit[i]))
            if a >= cut:
                out[i, h >> 6] |= np.uint64(1) << np.uint64(h & 63)
    return out


# -- inserts and deletes --------------------------------------------------------------------

@njit(**_JIT)
def store_rows(ids, slots, unit, norms, words, all_unit, all_norms, sketch, rows, slot_ids,
               idkeys, idvals, idshift):
    """Write new rows at their slots and enter their ids (absent, room made) in the id map."""
    for i in range(ids.size):
        s = slots[i]
        for j in range(unit.shape[1]):
            all_unit[s, j] = unit[i, j]
        all_norms[s] = norms[i]
        for w in range(words.shape[1]):
            sketch[w, s] = words[i, w]
            rows[s, w] = words[i, w]
        cell = -1 - _find(idkeys, ids[i], idshift)
        idkeys[cell] = ids[i]
        idvals[cell] = s
        slot_ids[s] = ids[i]


@njit(**_JIT)
def link_tables(new_keys, new_words, slots, t0, i0, where, pool, psk, pstate, bmap, bcap,
                bused, bcells, bshift):
    """Put slots[i] into their buckets, table by table (one table's map and blocks stay
    in cache), from vector i0 of table t0 on, each entry with its sketch new_words[i] in
    ``psk`` (when it has columns).

    Stops where a bucket map would pass 70% full (pstate[2] = -1) or the pool lacks room
    (pstate[2] = entries wanted) and returns the (table, vector) to resume from; returns
    (L, 0) when done. pstate = [pool top, garbage, room wanted].
    """
    n_tables = where.shape[0]
    n_inline = psk.shape[1]
    limit = bmap.shape[1] * 7 // 10
    start = i0
    for t in range(t0, n_tables):
        for i in range(start, new_keys.shape[0]):
            key = new_keys[i, t]
            cell = _find_bucket(bmap, t, key, bshift)
            if cell < 0:
                if bcells[t] >= limit:
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
                bcells[t] += 1
            off = bmap[t, cell, 1]
            size = np.int64(pool[off - 1])
            if size == 0:
                bused[t] += 1
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
                    for w in range(n_inline):
                        psk[new + j, w] = psk[off + j, w]
                off = new
                bmap[t, cell, 1] = new
                bcap[t, cell] += 1
                pstate[0] += 2 * size + 1
                pstate[1] += size + 1
            s = slots[i]
            where[t, s, 0] = key
            where[t, s, 1] = (off + size) | (off << 32)
            pool[off + size] = s
            for w in range(n_inline):
                psk[off + size, w] = new_words[i, w]
            pool[off - 1] = size + 1
        start = 0
    return n_tables, 0


@njit(**_JIT)
def _prefetch_links(keys, s, where, pool, psk, bmap, bshift):
    """Prefetch what linking slot s under ``keys`` (one per table) will touch, in three
    rounds - every table's map cell and where-entry, then every found block's header,
    then the sketch row the entry will take - so that one vector's cache misses in L
    tables overlap instead of following each other (linking is a chain of misses per
    table)."""
    n_tables = keys.size
    cells = bmap.reshape(-1)
    places = where.reshape(-1)
    for t in range(n_tables):
        _prefetch(cells, 2 * (t * bmap.shape[1] + _home(keys[t], bshift)))
        _prefetch(places, 2 * (t * where.shape[1] + s))
    for t in range(n_tables):
        cell = _find_bucket(bmap, t, keys[t], bshift)
        if cell >= 0:
            _prefetch(pool, bmap[t, cell, 1] - 1)
    if psk.shape[1]:
        rows = psk.reshape(-1)
        for t in range(n_tables):
            cell = _find_bucket(bmap, t, keys[t], bshift)
            if cell >= 0:
                off = bmap[t, cell, 1]
                _prefetch(rows, (off + pool[off - 1]) * psk.shape[1])


@njit(**_JIT)
def insert_one(ident, x, planes32, planes, bound, n_bits, n, top, n_free, max_pool, free,
               all_unit, all_norms, sketch, rows, slot_ids, idkeys, idvals, idshift, where,
               pool, psk, pstate, bmap, bcap, bused, bcells, bshift):
    """Insert one new id (no payload; ``x`` float32 or float64) in a single call: the
    steady state of a mutable memory, where every step of the general path costs a Python
    round trip.

    Returns (0, slot, table, keys, words): inserted, linked up to ``table`` (< L when a
    bucket map or the pool needs room first; the caller resumes from there with the keys
    and sketch words). Or (code, -1, 0, keys, words) with nothing changed: 1 the vector is
    not finite or zero, 2 the id is present, 3 an array must grow; the caller's general
    path handles (and explains) all three.
    """
    n_tables = where.shape[0]
    unit, norm, status = normalize_one(x)
    keys = np.empty((1, n_tables), np.int64)
    words = np.empty((1, sketch.shape[0]), np.uint64)
    if status != 0:
        return 1, -1, 0, keys, words
    if _find(idkeys, ident, idshift) >= 0:
        return 2, -1, 0, keys, words
    if ((n_free == 0 and top == all_unit.shape[0]) or 2 * (n + 1) > idkeys.size
            or pool.size - pstate[0] < n_tables or 2 * (n + 1) * n_tables > max_pool):
        return 3, -1, 0, keys, words
    keys, words = signs(project32(unit, planes32), unit, planes, bound, n_tables, n_bits)
    slots = np.empty(1, np.int64)
    slots[0] = free[n_free - 1] if n_free else top
    _prefetch_links(keys[0], slots[0], where, pool, psk, bmap, bshift)
    ids = np.empty(1, np.int64)
    ids[0] = ident
    norms = np.empty(1, np.float32)
    norms[0] = norm
    store_rows(ids, slots, unit, norms, words, all_unit, all_norms, sketch, rows, slot_ids,
               idkeys, idvals, idshift)
    start = np.int64(0)  # not a literal 0: the caller's specialisation of link_tables serves
    table, _ = link_tables(keys, words, slots, start, start, where, pool, psk, pstate, bmap,
                           bcap, bused, bcells, bshift)
    return 0, slots[0], table, keys, words


@njit(**_JIT)
def release_ids(ids, slot_ids, idkeys, idvals, idshift):
    """Take present, distinct ids out of the id map; returns their slots (now free)."""
    slots = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        cell = _find(idkeys, ids[i], idshift)
        slots[i] = idvals[cell]
        _id_delete(idkeys, idvals, cell, idshift)
        slot_ids[slots[i]] = -1
    return slots


@njit(**_JIT)
def unlink(slots, t0, t1, where, pool, psk, bused):
    """Swap-remove the slots from their bucket blocks in tables t0 <= t < t1 (threads may
    work on disjoint table ranges). A block that empties stays mapped (see the module
    notes): no map is read. Returns 0 (a value that keeps the warm-up loads alive)."""
    m = slots.size
    warm = 0
    for t in range(t0, t1):
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
                    for w in range(psk.shape[1]):
                        psk[at, w] = psk[last, w]
                pool[off - 1] -= 1
                if last == off:
                    bused[t] -= 1
    return np.int64(warm < 0)


@njit(**_JIT)
def _prefetch_unlinks(slots, where, pool, psk):
    """Prefetch what swap-removing a few slots will touch. In each table that is a chain of
    four cache misses (where-entry, block header, block's last entry, that entry's
    where-entry), plus the two sketch rows of the swap: the chains of all the slots' tables
    are walked a link at a time, so that their misses overlap instead of following each
    other."""
    places = where.reshape(-1)
    row = where.shape[1]
    inline = psk.shape[1]
    lines = psk.reshape(-1)
    for s in slots:
        for t in range(where.shape[0]):
            _prefetch(places, 2 * (t * row + s))
    for s in slots:
        for t in range(where.shape[0]):
            _prefetch(pool, (where[t, s, 1] >> 32) - 1)
    for s in slots:
        for t in range(where.shape[0]):
            off = where[t, s, 1] >> 32
            _prefetch(pool, off + pool[off - 1] - 1)
            if inline:
                _prefetch(lines, (where[t, s, 1] & _LOW) * inline)
                _prefetch(lines, (off + pool[off - 1] - 1) * inline)
    for s in slots:
        for t in range(where.shape[0]):
            off = where[t, s, 1] >> 32
            _prefetch(places, 2 * (t * row + pool[off + pool[off - 1] - 1]))


@njit(**_JIT)
def remove_one(ident, slot_ids, idkeys, idvals, idshift, where, pool, psk, bused, free,
               n_free):
    """:func:`remove_ids` of one id given as an integer (no array to build for it); returns
    False, with nothing changed, if the id is absent."""
    cell = _find(idkeys, ident, idshift)
    if cell < 0:
        return False
    slots = np.empty(1, np.int64)
    slots[0] = idvals[cell]
    _id_delete(idkeys, idvals, cell, idshift)
    slot_ids[slots[0]] = -1
    _prefetch_unlinks(slots, where, pool, psk)
    unlink(slots, np.int64(0), np.int64(where.shape[0]), where, pool, psk, bused)
    free[n_free] = slots[0]
    return True


@njit(**_JIT)
def remove_ids(ids, slot_ids, idkeys, idvals, idshift, where, pool, psk, bused, free,
               n_free):
    """Delete distinct ids in one call (small batches: no thread hand-off), their slots
    appended to the free list at free[n_free:]. Returns the index of the first absent id,
    with nothing changed, or -1."""
    for i in range(ids.size):
        if _find(idkeys, ids[i], idshift) < 0:
            return i
    slots = release_ids(ids, slot_ids, idkeys, idvals, idshift)
    if slots.size * where.shape[0] <= _FEW_UNLINKS:
        _prefetch_unlinks(slots, where, pool, psk)
    unlink(slots, np.int64(0), np.int64(where.shape[0]), where, pool, psk, bused)
    for i in range(slots.size):
        free[n_free + i] = slots[i]
    return -1


@njit(**_JIT)
def rehash(bmap, bcap, pool, new_map, new_cap, new_shift, bcells):
    """Copy every table's non-empty buckets into fresh map arrays (the blocks stay where
    they are); returns the pool entries of the empty buckets dropped."""
    garbage = 0
    for t in range(bmap.shape[0]):
        bcells[t] = 0
        for c in range(bmap.shape[1]):
            key = bmap[t, c, 0]
            if key == EMPTY:
                continue
            if pool[bmap[t, c, 1] - 1] == 0:
                garbage += (np.int64(1) << bcap[t, c]) + 1
                continue
            d = -1 - _find_bucket(new_map, t, key, new_shift)
            new_map[t, d, 0] = key
            new_map[t, d, 1] = bmap[t, c, 1]
            new_cap[t, d] = bcap[t, c]
            bcells[t] += 1
    return garbage


@njit(**_JIT)
def compact(pool, new_pool, psk, new_psk, where, bmap, bcap):
    """Copy the live blocks into ``new_pool`` (their sketch rows into ``new_psk``) back to
    back, each with room for the smallest power of 2 that holds it; returns the new pool
    top."""
    top = 0
    for t in range(bmap.shape[0]):
        for c in range(bmap.shape[1]):
            if bmap[t, c, 0] == EMPTY:
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
                for w in range(psk.shape[1]):
                    new_psk[new + j, w] = psk[off + j, w]
            bmap[t, c, 1] = new
            bcap[t, c] = log2
            top = new + (np.int64(1) << log2)
    return top


# -- probing --------------------------------------------------------------------------------

@njit(**_JIT)
def _probe_tables(keys, margins, n_bits, probes, out, z, order, heap_cost, heap_mask):
    """Fill out[t] (1 + probes keys, -1 past the 2^K - 1 flips) for every table t, whose
    own bucket is keys[t] and whose projections are margins[t*K : t*K + K]. One call per
    query: a call per table cost more than the work here (argument reference counts).

    out[t, 0] is the query's bucket; then flip sets in increasing sum of squared margins,
    generated by Lv et al.'s shift/expand rule over the bits sorted by margin, from a
    binary min-heap of pending sets. Only the probes + 1 smallest margins can take part
    (each single flip of a smaller one is cheaper), so only they are sorted. A set is a
    mask over sorted positions; its highest position is the one shift/expand move.
    """
    for t in range(keys.size):
        key = keys[t]
        base = t * n_bits
        out[t, 0] = key
        for p in range(1, probes + 1):
            out[t, p] = -1
        if probes == 0:
            continue
        limit = min(n_bits, probes + 1)
        count = 0
        for b in range(n_bits):  # insertion into the sorted `limit` smallest (stable)
            v = margins[base + b]
            zb = v * v
            if count == limit:
                if zb >= z[limit - 1]:
                    continue
                j = limit - 1
            else:
                j = count
                count += 1
            while j > 0 and z[j - 1] > zb:
                z[j] = z[j - 1]
                order[j] = order[j - 1]
                j -= 1
            z[j] = zb
            order[j] = b
        heap_cost[0] = z[0]
        heap_mask[0] = 1
        size = 1
        for p in range(probes):
            if size == 0:
                break
            cost, mask = heap_cost[0], heap_mask[0]
            size -= 1  # drop the root: the last entry sifts down from it
            last_cost, last_mask = heap_cost[size], heap_mask[size]
            i = 0
            while True:
                child = 2 * i + 1
                if child >= size:
                    break
                if child + 1 < size and heap_cost[child + 1] < heap_cost[child]:
                    child += 1
                if last_cost <= heap_cost[child]:
                    break
                heap_cost[i], heap_mask[i] = heap_cost[child], heap_mask[child]
                i = child
            heap_cost[i], heap_mask[i] = last_cost, last_mask
            flips = np.int64(0)
            rest = np.uint64(mask)
            while rest:
                flips |= np.int64(1) << order[_trailing_zeros(rest)]
                rest &= rest - np.uint64(1)
            out[t, 1 + p] = key ^ flips
            top = 63 - _leading_zeros(mask)
            if top + 1 < limit:
                new_bit = np.int64(1) << (top + 1)
                for expand in range(2):  # shift: the top moves up one; expand: one is added
                    if expand:
                        new_cost, new_mask = cost + z[top + 1], mask | new_bit
                    else:
                        new_cost = cost - z[top] + z[top + 1]
                        new_mask = (mask ^ (np.int64(1) << top)) | new_bit
                    i = size
                    while i > 0:
                        parent = (i - 1) >> 1
                        if heap_cost[parent] <= new_cost:
                            break
                        heap_cost[i], heap_mask[i] = heap_cost[parent], heap_mask[parent]
                        i = parent
                    heap_cost[i], heap_mask[i] = new_cost, new_mask
                    size += 1


@njit(**_JIT)
def probe_scratch(n_tables, n_bits, probes):
    """(keys per table, sorted squared margins, their bits, heap costs, heap masks) for
    probe generation."""
    return (np.empty((n_tables, 1 + probes), np.int64), np.empty(n_bits),
            np.empty(n_bits, np.int64), np.empty(probes + 2), np.empty(probes + 2, np.int64))


@njit(**_JIT)
def probe_keys(keys, margins, n_bits, probes):
    """Keys each table visits, (L, 1 + probes): see :func:`_probe_tables`."""
    probe, z, order, heap_cost, heap_mask = probe_scratch(keys.size, n_bits, probes)
    _probe_tables(keys, margins, n_bits, probes, probe, z, order, heap_cost, heap_mask)
    return probe


# -- search stages --------------------------------------------------------------------------

@njit(**_JIT)
def gather(keys, margins, n_bits, probes, pool, psk, query, mask, measure, bmap, bshift,
           seen, cand, dist, scratch, blocks):
    """Members of the probed buckets, each once: slots into ``cand`` (room for one more
    than them) and bits into the ``seen`` bitmap (clear on entry); returns their number.
    With ``measure``, also each one's distance (see :func:`hamming_of`) into ``dist``
    (room for one more too), from the sketch rows ``psk`` kept beside the entries: read
    with the blocks, where a slot's own row would be one more scattered line.

    The buckets are scattered through memory: every map cell, then every block's first
    line, then the rest of every block, is prefetched before the first is read, so their
    cache misses overlap. The duplicate test is branch-free: a member seen before is
    written and then overwritten (a branch on it mispredicted about once in three).
    """
    probe, z, order, heap_cost, heap_mask = scratch
    n_tables = keys.size
    cap = bmap.shape[1]
    cells = bmap.reshape(-1)
    inline = psk.shape[1] if measure else 0
    lines = psk.reshape(-1)
    _probe_tables(keys, margins, n_bits, probes, probe, z, order, heap_cost, heap_mask)
    for t in range(n_tables):
        for p in range(1 + probes):
            if probe[t, p] >= 0:
                _prefetch(cells, 2 * (t * cap + _home(probe[t, p], bshift)))
    nb = 0
    for t in range(n_tables):
        for p in range(1 + probes):
            key = probe[t, p]
            if key < 0:
                break
            cell = _find_bucket(bmap, t, key, bshift)
            if cell >= 0:
                blocks[nb] = bmap[t, cell, 1]
                _prefetch(pool, blocks[nb] - 1)
                nb += 1
    for b in range(nb):
        off = blocks[b]
        for j in range(off + 15, off + pool[off - 1], 16):  # 16 int32 per 64-byte line
            _prefetch(pool, j)
        if inline:
            for j in range(off * inline, (off + pool[off - 1]) * inline, 8):  # 8 words
                _prefetch(lines, j)
    nc = 0
    for b in range(nb):
        off = blocks[b]
        for j in range(off, off + pool[off - 1]):
            s = pool[j]
            w = s >> 6
            bit = np.uint64(1) << np.uint64(s & 63)
            before = seen[w]
            seen[w] = before | bit
            cand[nc] = s
            if inline:
                acc = np.uint64(0)
                for x in range(inline):
                    acc += _popcount((psk[j, x] ^ query[x]) & mask[x])
                dist[nc] = np.uint16(acc)
            nc += (before & bit) == 0
    return nc


@njit(**_JIT)
def hamming_scan(sketch, query, mask, top, dist):
    """dist[s] = number of the ``mask`` bits in which slot s's sketch differs from ``query``,
    for every s < top, two word rows per pass (sequential reads, vectorised popcounts, half
    the passes over ``dist``; blocking the passes to keep ``dist`` in L1 defeated the
    vectoriser)."""
    n_words = sketch.shape[0]
    w = 0
    if n_words % 2:
        q, m, row = query[0], mask[0], sketch[0]
        for s in range(top):
            dist[s] = np.uint16(_popcount((row[s] ^ q) & m))
        w = 1
    else:
        for s in range(top):
            dist[s] = 0
    while w < n_words:
        q0, q1, m0, m1 = query[w], query[w + 1], mask[w], mask[w + 1]
        row0, row1 = sketch[w], sketch[w + 1]
        for s in range(top):
            dist[s] += np.uint16(_popcount((row0[s] ^ q0) & m0)
                                 + _popcount((row1[s] ^ q1) & m1))
        w += 2


@njit(**_JIT)
def hamming_of(rows, query, mask, cand, nc, dist):
    """dist[c] = number of the ``mask`` bits in which slot cand[c]'s sketch row differs
    from ``query``, c < nc (the row 2 * _AHEAD candidates on is prefetched: candidates lie
    anywhere). Rows may be padded beyond the query's words."""
    flat = rows.reshape(-1)
    stride = rows.shape[1]
    for c in range(nc):
        if c + 2 * _AHEAD < nc:
            _prefetch(flat, cand[c + 2 * _AHEAD] * stride)
        s = cand[c]
        acc = np.uint64(0)
        for w in range(query.size):
            acc += _popcount((rows[s, w] ^ query[w]) & mask[w])
        dist[c] = np.uint16(acc)


@njit(**_JIT)
def select_nearest(dist, cand, count, identity, shortlist, hist, slot_ids, near, near_dist,
                   picked):
    """Slots of the ``shortlist`` items of smallest distance among items c < count (the
    item is slot c if ``identity``, else slot cand[c]), ties to the smaller id, into
    ``picked``; returns their number.

    A long list is histogrammed at every 8th distance only, to guess a cut that keeps
    about twice the shortlist (``near``; all items if that falls short), and just those
    are ranked exactly: it is read twice rather than three times. Distances index
    ``hist``, whose last bin is for free slots: at least shortlist items must be nearer.
    """
    _zero(hist)
    if count < 64 * shortlist:  # short: the exact cut at once
        for c in range(count):
            hist[dist[c]] += 1
        cut, below = _cut(hist, shortlist)
        n = _within(dist, cand, count, identity, cut, near, near_dist)
    else:
        for c in range(0, count, _SAMPLE):
            hist[dist[c]] += 1
        guess, _ = _cut(hist, 2 * shortlist // _SAMPLE + 4)
        n = _within(dist, cand, count, identity, guess, near, near_dist)
        if n < shortlist:  # the sample misled: keep every item
            n = _within(dist, cand, count, identity, hist.size - 2, near, near_dist)
        _zero(hist)
        for c in range(n):
            hist[near_dist[c]] += 1
        cut, below = _cut(hist, shortlist)
    need = shortlist - below  # taken from the items at distance ``cut``, smallest ids first
    last_id = np.iinfo(np.int64).max
    if need < hist[cut]:
        ties = np.empty(hist[cut], np.int64)
        nt = 0
        for c in range(n):
            if near_dist[c] == cut:
                ties[nt] = slot_ids[near[c]]
                nt += 1
        last_id = _kth_smallest(ties, need - 1)
    taken = 0
    for c in range(n):
        d = near_dist[c]
        if d < cut or (d == cut and slot_ids[near[c]] <= last_id):
            picked[taken] = near[c]
            taken += 1
    return taken


@njit(**_JIT)
def _kth_smallest(values, kth):
    """The kth smallest (from 0) of distinct ``values``, which it reorders (quickselect,
    Hoare partition; a few lines compile in a fraction of np.partition's time)."""
    lo, hi = 0, values.size - 1
    while lo < hi:
        pivot = values[(lo + hi) >> 1]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            return values[kth]
    return values[kth]


@njit(inline="always", **_JIT)
def _zero(values):
    for i in range(values.size):
        values[i] = 0


@njit(inline="always", **_JIT)
def _cut(hist, wanted):
    """(smallest distance d with at least ``wanted`` items at <= d, items below d)."""
    below = 0
    cut = 0
    while cut < hist.size - 1 and below + hist[cut] < wanted:
        below += hist[cut]
        cut += 1
    return cut, below


@njit(inline="always", **_JIT)
def _within(dist, cand, count, identity, cut, near, near_dist):
    """Slots and distances of the items at distance <= cut into near / near_dist."""
    n = 0
    for c in range(count):
        d = dist[c]
        if d <= cut:
            near[n] = c if identity else cand[c]
            near_dist[n] = d
            n += 1
    return n


@njit(inline="always", **_JIT)
def _keep(score, ident, k, filled, best_s, best_i):
    """Insert (score, id) into the best-first top-k lists (ties to the smaller id);
    returns the new fill."""
    if filled == k:
        worst = best_s[k - 1]
        if score < worst or (score == worst and ident > best_i[k - 1]):
            return filled
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
    return filled


@njit(fastmath=True, **_JIT)  # the scores are finite: fastmath only vectorises the dots
def rerank(query, slots, count, unit, slot_ids, k, best_s, best_i):
    """Exact cosine top-k of slots[:count] into best_s / best_i; returns how many.

    Rows are scattered through memory: each one is prefetched, every cache line of it,
    ``_AHEAD`` rows before it is scored (it halved the time of a cold re-ranking here), and
    into L2 ``_FAR`` rows before (a tenth off re-ranking 400 rows of 384 here).
    """
    flat = unit.reshape(-1)
    dim = unit.shape[1]
    filled = 0
    for c in range(count):
        if c + _FAR < count:
            row = slots[c + _FAR] * dim
            for j in range(0, dim, 16):
                _prefetch_l2(flat, row + j)
        if c + _AHEAD < count:
            row = slots[c + _AHEAD] * dim
            for j in range(0, dim, 16):  # 16 float32 per 64-byte line
                _prefetch(flat, row + j)
        s = slots[c]
        score = np.float32(0.0)
        for j in range(dim):  # indexed in place: a row view per candidate costs more
            score += query[j] * unit[s, j]
        filled = _keep(score, slot_ids[s], k, filled, best_s, best_i)
    return filled


@njit(fastmath=True, **_JIT)
def _rerank_live(query, top, unit, slot_ids, k, best_s, best_i):
    """Exact cosine top-k of every live slot below ``top``."""
    filled = 0
    for s in range(top):
        if slot_ids[s] >= 0:
            score = np.float32(0.0)
            for j in range(unit.shape[1]):
                score += query[j] * unit[s, j]
            filled = _keep(score, slot_ids[s], k, filled, best_s, best_i)
    return filled


@njit(**_JIT)
def _drain(seen, cand):
    """Slots of the set bits of ``seen`` in increasing order into ``cand``, clearing them
    (scoring in storage order reads the rows front to back)."""
    n = 0
    for w in range(seen.size):
        bits = seen[w]
        seen[w] = 0
        while bits:
            cand[n] = (w << 6) + np.int64(_trailing_zeros(bits))
            n += 1
            bits &= bits - np.uint64(1)
    return n


@njit(**_JIT)
def search(queries, keys, words, masks, margins, probes, k, shortlist, scan, n_bits, n_live,
           top, slot_ids, unit, sketch, rows, free, pool, psk, bmap, bshift, ints, shorts,
           seen):
    """Top-k (score desc, id asc) of each query among its candidates, and the number of
    candidates.

    Candidates are every live slot (``scan``) or the members of the probed buckets. With
    0 < shortlist < candidates, only the ``shortlist`` candidates whose sketches differ from
    the query's in the fewest of its reliable bits (``masks``, from :func:`reliable`; ties
    to the smaller id) are scored exactly: bucket candidates' sketches come from ``psk``
    beside the bucket entries when it has columns, else from ``rows``. ``free``
    lists the free slots below ``top``; ``margins`` are the float64 projections, read only
    when probes > 0. Working arrays, for at least ``top`` slots (a caller may keep them: a
    fresh megabyte per query costs page faults): ``ints`` int64 x (2 top + 1), ``shorts``
    uint16 x (2 top + 1) and ``seen`` an all-zero bitmap of top bits, left all zero.
    """
    m = queries.shape[0]
    n_tables = keys.shape[1]
    far = n_tables * n_bits + 1  # the distance given to free slots: never selected
    out_ids = np.full((m, k), -1, np.int64)
    out_scores = np.full((m, k), np.nan, np.float32)
    counts = np.zeros(m, np.int64)
    cand, near = ints[:top + 1], ints[top + 1:2 * top + 1]
    dist, near_dist = shorts[:top + 1], shorts[top + 1:2 * top + 1]
    hist = np.empty(far + 1 if shortlist > 0 else 0, np.int64)
    picked = np.empty(min(max(shortlist, 0), top), np.int64)
    best_s = np.empty(k, np.float32)
    best_i = np.empty(k, np.int64)
    scratch = probe_scratch(n_tables, n_bits, probes)
    blocks = np.empty(n_tables * (1 + probes), np.int64)
    for qi in range(m):
        q = queries[qi]
        if scan:
            counts[qi] = n_live
            if 0 < shortlist < n_live:
                hamming_scan(sketch, words[qi], masks[qi], top, dist)
                for f in range(free.size):
                    dist[free[f]] = far
                n = select_nearest(dist, cand, top, scan, shortlist, hist, slot_ids, near,
                                   near_dist, picked)
                filled = rerank(q, picked, n, unit, slot_ids, k, best_s, best_i)
            else:
                filled = _rerank_live(q, top, unit, slot_ids, k, best_s, best_i)
        else:
            measure = shortlist > 0 and psk.shape[1] > 0
            nc = gather(keys[qi], margins[qi], n_bits, probes, pool, psk, words[qi], masks[qi],
                        measure, bmap, bshift, seen, cand, dist, scratch, blocks)
            counts[qi] = nc
            if 0 < shortlist < nc:
                for c in range(nc):
                    seen[cand[c] >> 6] = 0
                if not measure:
                    hamming_of(rows, words[qi], masks[qi], cand, nc, dist)
                n = select_nearest(dist, cand, nc, scan, shortlist, hist, slot_ids, near,
                                   near_dist, picked)
                filled = rerank(q, picked, n, unit, slot_ids, k, best_s, best_i)
            else:
                if nc * 8 > top:  # many candidates: score them in storage order
                    nc = _drain(seen, cand)
                else:
                    for c in range(nc):
                        seen[cand[c] >> 6] = 0
                filled = rerank(q, cand, nc, unit, slot_ids, k, best_s, best_i)
        for j in range(filled):
            out_ids[qi, j] = best_i[j]
            out_scores[qi, j] = best_s[j]
    return out_ids, out_scores, counts


@njit(**_JIT)
def query_one(x, planes32, planes, bound, bound64, cut, n_bits, probes, k, shortlist, scan,
              n_live, top, slot_ids, unit, sketch, rows, free, pool, psk, bmap, bshift, ints,
              shorts, seen):
    """:func:`search` for one raw query vector (float32 or float64), normalised and hashed
    in the same call (a single query is dominated by Python round trips otherwise).
    Returns (status, ids, float64 scores, found): status 1 when the vector is not finite
    or zero (nothing searched)."""
    n_tables = bmap.shape[0]
    u, _, status = normalize_one(x)
    if status != 0:
        return status, np.empty(0, np.int64), np.empty(0), 0
    masks = np.empty((1, 0), np.uint64)  # the reliable bits: read only by a shortlist
    if probes > 0:  # the margins decide the probing order: float64
        margins = project64(u, planes)
        keys, words = signs(margins, u, planes, -1.0, n_tables, n_bits)
        if shortlist > 0:
            masks = reliable(margins, u, planes, bound64, cut)
    else:
        margins = np.empty((1, 0))
        proj = project32(u, planes32)
        keys, words = signs(proj, u, planes, bound, n_tables, n_bits)
        if shortlist > 0:
            masks = reliable(proj, u, planes, bound, cut)
    ids, scores, _ = search(u, keys, words, masks, margins, probes, k, shortlist, scan,
                            n_bits, n_live, top, slot_ids, unit, sketch, rows, free, pool,
                            psk, bmap, bshift, ints, shorts, seen)
    found = 0
    while found < k and ids[0, found] >= 0:
        found += 1
    return 0, ids[0, :found], scores[0, :found].astype(np.float64), found


# -- inspection -----------------------------------------------------------------------------

@njit(**_JIT)
def bucket_members(t, key, slot_ids, pool, bmap, bshift):
    cell = _find_bucket(bmap, t, key, bshift)
    if cell < 0:
        return np.empty(0, np.int64)
    off = bmap[t, cell, 1]
    out = np.empty(pool[off - 1], np.int64)
    for j in range(out.size):
        out[j] = slot_ids[pool[off + j]]
    return out


@njit(**_JIT)
def bucket_sizes(t, pool, bmap, bused):
    """Sizes of the non-empty buckets of table t."""
    out = np.empty(bused[t], np.int64)
    j = 0
    for cell in range(bmap.shape[1]):
        if bmap[t, cell, 0] != EMPTY and pool[bmap[t, cell, 1] - 1] > 0:
            out[j] = pool[bmap[t, cell, 1] - 1]
            j += 1
    return out
