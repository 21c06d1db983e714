"""Session-file inputs for fuzzing the loader, shared by the test suite and
``benchmarks/session_fuzz.py``: random bytes, valid files with random damage, random JSON
in a session's shape, and very deep nesting."""

from __future__ import annotations

import functools
import json
import math

from hypothesis import strategies as st

from app import session


def typical_document() -> dict:
    """A session of the size and shape the app writes, non-finite numbers included."""
    return {
        "format": session.FORMAT, "format_version": session.FORMAT_VERSION,
        "title": "Himmelblau race",
        "panels": {
            "surface": {"text": "(x**2 + y - 11)**2 + (x + y**2 - 7)**2", "params": {},
                        "x_range": [-5.0, 5.0], "y_range": [-5.0, 5.0], "resolution": 128,
                        "levels": 30, "spacing": "log", "pinned": None},
            "descent": {"methods": ["sgd", "momentum", "adam"], "lr": 0.01, "steps": 300,
                        "start": [-0.27, -0.92], "clip": math.inf, "noise": 0.0,
                        "last_loss": math.nan, "trail": [[0.1 * i, -0.05 * i] for i in range(200)]},
            "backprop": {"x1": 1.0, "x2": 2.0, "y": 2.0, "lr": 0.05, "pair": ["w11_2", "w12_2"],
                         "weights": {f"w{i}": 0.1 * i for i in range(9)}, "position": 0, "path": []},
            "attention": {"text": "The cat sat on the mat because it was tired.", "layer": 0,
                          "head": 3, "k": 3, "mask": "elementwise"},
            "lsh": {"bits": 8, "tables": 4, "probes": 2, "floor": -math.inf},
        },
        "window": {"tab": "descent", "geometry": "AdnQywADAAAAAAAAAAAAAAAABZ8AAANv",
                   "splitters": {"descent": ["AAAA/wAAAAEAAAACAAABLAAABAAB/////wEAAAAB"] * 3}},
    }


def version_1_document() -> dict:
    """The same session as format 1 wrote it: no window block, the tab at the top."""
    document = typical_document()
    del document["window"]
    document["format_version"] = 1
    document["current_tab"] = "descent"
    return document


_TOKENS = [b"{", b"}", b"[", b"]", b'"', b"\\", b",", b":", b"NaN", b"-Infinity", b"1e999",
           b"-0", b"null", b"true", b'{"$float": "nan"}', b'{"$float": "?"}', b'{"$float": []}', b'{"$float": {}}', b'"$x": 1',
           b'"format_version": 99', b'"format_version": 0', b'"panels": []', b"\x00", b"\xff\xfe",
           b"\xed\xa0\x80", b"9" * 60, b'"\\ud800"', b'"__import__(\'os\').system(\'true\')"',
           b"[" * 70, b"]" * 3, b'"window": {"tab": "nowhere"}', b'"geometry": "@@@"']

_json_leaves = (st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(_json_leaves,
                           lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8) | st.just("$float"), inner, max_size=5),
                           max_leaves=25)


@functools.cache
def _valid_files() -> tuple[bytes, ...]:
    return (session.encode(typical_document()), session.encode(version_1_document()),
            json.dumps(session.decode(session.encode(typical_document())), allow_nan=True).encode())


@st.composite
def mutated_files(draw) -> bytes:
    """A valid file (current, format 1, or with bare NaN) with up to eight random edits."""
    data = bytearray(draw(st.sampled_from(_valid_files())))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(_TOKENS))
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        else:
            del data[at:]
    return bytes(data)


@st.composite
def session_shaped(draw) -> bytes:
    """Random JSON where a session's parts belong: wrong types, unknown keys, odd versions."""
    document = {"format": draw(st.sampled_from([session.FORMAT, "mlcalc-session ", None])),
                "format_version": draw(st.integers(-1, 4) | json_values),
                "panels": draw(st.dictionaries(st.sampled_from(session.PANEL_KEYS) | st.text(max_size=6),
                                               json_values, max_size=4) | json_values),
                "window": draw(st.fixed_dictionaries(
                    {}, optional={"tab": json_values | st.sampled_from(session.PANEL_KEYS),
                                  "geometry": st.text(max_size=20) | json_values,
                                  "splitters": json_values})
                    | json_values)}
    for key in draw(st.lists(st.sampled_from(list(document)), max_size=2)):
        document.pop(key, None)
    if draw(st.booleans()):
        document[draw(st.text(max_size=6))] = draw(json_values)
    return json.dumps(document).encode("ascii")  # bare NaN and Infinity where floats were drawn


deep_nesting = st.builds(lambda n, opener, closer, inside: opener * n + inside + closer * n,
                         st.integers(60, 20_000), st.sampled_from([b"[", b'{"a":', b'[{"a":']),
                         st.sampled_from([b"]", b"}", b"}]"]), st.sampled_from([b"1", b"", b'"x'])) \
    | st.builds(lambda n: b'{"format": "mlcalc-session", "format_version": 2, "panels": {"surface": '
                          + b'{"a":' * n + b"1" + b"}" * n + b"}}", st.integers(50, 5000))

session_bytes = st.one_of(st.binary(max_size=4096), mutated_files(), session_shaped(), deep_nesting)


def check_decode(data: bytes) -> str:
    """Decode ``data``: "ok" for a valid session (which must re-encode to itself), "refused"
    for a :class:`session.SessionError`; any other exception propagates."""
    try:
        document = session.decode(data)
    except session.SessionError as error:
        assert str(error) and "\n" not in str(error), repr(str(error))
        return "refused"
    assert isinstance(document, dict) and document["format_version"] == session.FORMAT_VERSION
    encoded = session.encode(document)
    assert session.encode(session.decode(encoded)) == encoded
    return "ok"
