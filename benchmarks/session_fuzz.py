"""Session-file benchmark: a long fuzz of the loader, and the cost of saving and opening.

    .venv/bin/python benchmarks/session_fuzz.py [--cases 10000] [--seed 0]

(1) The test suite's fuzz (tests/app/session_fuzz_cases.py: random bytes, valid files with
random damage, random JSON in a session's shape, nesting up to 20 000 deep) run for many
more cases. Every case must end as a valid document or a ``SessionError``; any other
exception is counted and printed, and makes the exit status 1. The slowest single case is
reported, and timed again: a case that hangs would show there.
                                             target: 0 other exceptions, slowest < 1 s
(2) ``encode`` and ``decode`` of a typical session and of one holding a 20 000-point trail,
against plain ``json.dumps``/``json.loads`` of the same data (which check nothing and cannot
write NaN as strict JSON): the ratio is the price of the checks.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from app import session  # noqa: E402
from tests.app.session_fuzz_cases import check_decode, session_bytes, typical_document  # noqa: E402

REPEATS = 15


def fuzz(cases: int, random_seed: int) -> int:
    outcomes = {"ok": 0, "refused": 0}
    failures: list[tuple[bytes, str]] = []
    slowest = (0.0, b"")

    @seed(random_seed)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(session_bytes)
    def one(data: bytes) -> None:
        nonlocal slowest
        started = time.perf_counter()
        try:
            outcomes[check_decode(data)] += 1
        except Exception as error:  # noqa: BLE001 - counted, not raised: the run goes on
            failures.append((data, f"{type(error).__name__}: {error}"))
        seconds = time.perf_counter() - started
        if seconds > slowest[0]:
            slowest = (seconds, data)

    started = time.perf_counter()
    one()
    total = time.perf_counter() - started
    n = outcomes["ok"] + outcomes["refused"] + len(failures)
    print(f"(1) fuzz of session.decode: {n} cases in {total:.1f} s ({n / total:.0f} cases/s, "
          "generation included)")
    print(f"    read as valid sessions: {outcomes['ok']}; refused with SessionError: "
          f"{outcomes['refused']}; other exceptions: {len(failures)}")
    again = best(check_decode, slowest[1])  # a one-off pause (GC, a busy core) or the input?
    print(f"    slowest case: {slowest[0] * 1000:.1f} ms, {again * 1000:.1f} ms when timed again, "
          f"on {len(slowest[1])} bytes ({slowest[1][:40]!r}…)")
    for data, message in failures[:10]:
        print(f"    FAILED on {data[:80]!r}…: {message}")
    return len(failures)


def large_document() -> dict:
    document = typical_document()
    document["panels"]["descent"]["trail"] = [[math.sin(k / 50), math.cos(k / 70)] for k in range(20_000)]
    return document


def best(function, *args) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def timings() -> None:
    print("(2) encode/decode, best of", REPEATS, "(baseline: plain json.dumps/json.loads, no checks)")
    for name, document in (("typical session", typical_document()), ("20 000-point trail", large_document())):
        data = session.encode(document)
        plain = json.dumps(document)  # writes bare NaN: not strict JSON
        rows = (("encode", best(session.encode, document), best(json.dumps, document)),
                ("encode compact", best(lambda d: session.encode(d, compact=True), document),
                 best(json.dumps, document)),
                ("decode", best(session.decode, data), best(json.loads, plain)))
        print(f"    {name}: {len(data) / 1024:.1f} KiB as saved")
        for what, ours, baseline in rows:
            print(f"      {what:15s} {ours * 1000:8.3f} ms   json {baseline * 1000:8.3f} ms   "
                  f"ratio {ours / baseline:5.1f}x")
    deep = b"[" * 100_000 + b"]" * 100_000
    refused = best(lambda: _refuse(deep))
    print(f"    refusing 100 000-deep nesting: {refused * 1000:.2f} ms "
          f"(json.loads would raise RecursionError)")
    huge = b" " * (50 * 1024 * 1024)
    print(f"    refusing 50 MB: {best(lambda: _refuse(huge)) * 1e6:.1f} µs")


def _refuse(data: bytes) -> None:
    try:
        session.decode(data)
    except session.SessionError:
        return
    raise AssertionError("accepted")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="fuzz cases (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fuzz (default 0)")
    args = parser.parse_args()
    failures = fuzz(args.cases, args.seed)
    timings()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
