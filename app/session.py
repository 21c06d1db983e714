"""Session files: every panel's parameters and the window layout as strict JSON.

A session file is untrusted input. :func:`decode` caps its size and its nesting before
the JSON parser sees it, checks every type, refuses files of a newer format and brings
older ones up to date through :data:`MIGRATIONS`; anything wrong raises
:class:`SessionError` with a one-line message naming the key path. Nothing in a file is
ever executed: expressions in it are plain strings, which the panels validate exactly as
they validate typed ones (the ``expect_*`` validators below keep their checks alike).

Format 2::

    {"format": "mlcalc-session", "format_version": 2, "title": "optional",
     "panels": {"surface": {...}, "descent": {...}, ...},
     "window": {"tab": "descent", "geometry": "<base64>", "splitters": {"surface": ["<base64>"]}}}

Non-finite numbers, which strict JSON cannot hold, are written as ``{"$float": "nan"}``,
``{"$float": "inf"}`` or ``{"$float": "-inf"}``; keys starting with ``$`` are reserved.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import numbers
import os
import re
from pathlib import Path

import numpy as np

from engine._atomic import atomic_write

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no guard against a second instance
    fcntl = None

FORMAT = "mlcalc-session"
FORMAT_VERSION = 2
MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64  # nesting of [ and {; the top-level object is depth 1
PANEL_KEYS = ("surface", "descent", "backprop", "playground", "attention", "lsh")
SUFFIX = ".mlcalc.json"
FLOAT_KEY = "$float"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_TOP_KEYS = ("format", "format_version", "title", "description", "panels", "window")
_MAX_TITLE, _MAX_DESCRIPTION = 200, 4000
_MAX_LAYOUT_BLOB = 16384  # characters of base64 for one saved Qt geometry or splitter state
_MAX_SPLITTERS = 64
_MAX_INT_DIGITS = 40

# A string, or an unterminated one running to the end: never a failed match, so the scan
# stays linear even on '"\\"\\"\\"...' (a pattern that can fail would retry at every quote).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class SessionError(ValueError):
    """A session that cannot be read or written; ``str()`` is one line for the user.

    ``path`` is the key path of the offending value (``"panels.descent.lr"``), or "".
    """

    def __init__(self, message: str, path: str = ""):
        self.message = message
        self.path = path
        shown = _printable(path)
        super().__init__(f"{shown if len(shown) <= 120 else shown[:120] + '…'}: {message}" if path else message)

    def within(self, prefix: str) -> SessionError:
        """The same error, its key path placed under the path ``prefix``."""
        if not self.path:
            return SessionError(self.message, prefix)
        return SessionError(self.message, prefix + ("" if self.path.startswith("[") else ".") + self.path)

    def under(self, key: str | int) -> SessionError:
        """The same error, its key path placed under one more key or list index."""
        return self.within(f"[{key}]" if isinstance(key, int) else key)


# --------------------------------------------------------------------------- encoding

def encode(document: dict, *, compact: bool = False) -> bytes:
    """``document`` as strict UTF-8 JSON; non-finite floats become ``{"$float": ...}``.

    Files are indented for people to read; ``compact`` is about twice as fast, for comparisons.
    """
    if not isinstance(document, dict):
        raise SessionError(f"a session is an object, not {_kind(document)}")
    plain = _plain(document, 1)
    layout = {"separators": (",", ":")} if compact else {"indent": 1}
    try:
        data = json.dumps(plain, allow_nan=False, ensure_ascii=False, **layout).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in some text: keep it, as a \u escape
        data = json.dumps(plain, allow_nan=False, **layout).encode("ascii")
    if len(data) > MAX_BYTES:
        raise SessionError(f"the session would take {_megabytes(len(data))}, more than the "
                           f"{_megabytes(MAX_BYTES)} a session file may hold")
    return data


def _plain(value, depth: int):
    """``value`` with only JSON types; the key path of a refusal is built on the way out."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return value
    if kind is float or (isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)):
        value = float(value)
        if math.isfinite(value):
            return value
        if depth > MAX_DEPTH:
            raise SessionError(f"nested deeper than {MAX_DEPTH} levels")
        return {FLOAT_KEY: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple, dict)) and depth > MAX_DEPTH:
        raise SessionError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            try:
                out.append(_plain(item, depth + 1))
            except SessionError as error:
                raise error.under(i) from None
        return out
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SessionError(f"keys must be text, not {type(key).__name__}")
            if key.startswith("$"):
                raise SessionError("keys starting with '$' are reserved", key)
            try:
                out[key] = _plain(item, depth + 1)
            except SessionError as error:
                raise error.under(key) from None
        return out
    if isinstance(value, str):  # an str-based enum, say
        return str(value)
    raise SessionError(f"cannot save a value of type {type(value).__name__}")


# --------------------------------------------------------------------------- decoding

def decode(data: bytes) -> dict:
    """Parse, check and migrate a session file's bytes into a current-format document.

    Raises :class:`SessionError` for anything but a valid session, before any large or
    deep structure is built.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise SessionError(f"expected the bytes of a file, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise SessionError(f"the file is {_megabytes(len(data))}; a session file is at most "
                           f"{_megabytes(MAX_BYTES)}")
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SessionError(f"not a text file: invalid UTF-8 at byte {exc.start}") from None
    if not text.strip():
        raise SessionError("the file is empty")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise SessionError(f"nested {depth} levels deep; a session file is at most {MAX_DEPTH}")
    try:
        raw = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                         parse_int=_short_int, object_pairs_hook=_no_duplicates)
    except SessionError:
        raise
    except json.JSONDecodeError as exc:
        if not text[exc.pos:].strip():
            raise SessionError("the file ends too early (truncated?)") from None
        raise SessionError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SessionError(f"not valid JSON: {_one_line(exc)}") from None
    if not isinstance(raw, dict):
        raise SessionError(f"the file holds {_kind(raw)}, not a session object")
    _check_format(raw)
    return migrate(_revive(raw))


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings, found without recursion."""
    structure = _STRING.sub("0", text)
    brackets = _NOT_BRACKET.sub("", structure).encode("ascii")
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def _refuse_constant(name: str):
    raise SessionError(f"{name} is not allowed in strict JSON; write {{\"{FLOAT_KEY}\": "
                       f"\"{'nan' if name == 'NaN' else ('-inf' if name.startswith('-') else 'inf')}\"}}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise SessionError(f"the number {text[:30]} is out of range")
    return value


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise SessionError(f"the number {text[:20]}… has more than {_MAX_INT_DIGITS} digits")
    return int(text)


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise SessionError(f"the key {_show(key)} appears twice in one object")
            seen.add(key)
    return out


def _revive(value):
    """Turn ``{"$float": ...}`` back into floats; refuse other reserved keys (depth is capped)."""
    kind = type(value)
    if kind is list:
        out = []
        for i, item in enumerate(value):
            try:
                out.append(_revive(item))
            except SessionError as error:
                raise error.under(i) from None
        return out
    if kind is not dict:
        return value
    if FLOAT_KEY in value:
        name = value[FLOAT_KEY]
        if len(value) != 1 or not isinstance(name, str) or name not in _NON_FINITE:
            raise SessionError(f'expected {{"{FLOAT_KEY}": "nan" | "inf" | "-inf"}}')
        return _NON_FINITE[name]
    out = {}
    for key, item in value.items():
        if key.startswith("$"):
            raise SessionError("keys starting with '$' are reserved", key)
        try:
            out[key] = _revive(item)
        except SessionError as error:
            raise error.under(key) from None
    return out


# --------------------------------------------------------------------------- versions

def migrate_1_to_2(document: dict) -> dict:
    """Format 1 kept only the current tab, as ``current_tab`` at the top; format 2 holds the
    whole window layout in a ``window`` block."""
    document = dict(document)
    window = {}
    if "current_tab" in document:
        window["tab"] = expect_str(document, "current_tab", choices=PANEL_KEYS)
        del document["current_tab"]
    document["window"] = window
    return document


MIGRATIONS = {1: migrate_1_to_2}  # version n -> a function returning the document in n + 1


def migrate(document: dict) -> dict:
    """Check ``format`` and ``format_version``, apply the migrations in order, validate."""
    _check_format(document)
    version = expect_int(document, "format_version", low=1)
    if version > FORMAT_VERSION:
        raise SessionError(f"this session was made by a newer version of ML Calculus Explorer "
                           f"(format {_show(version)}; this version reads formats 1 to {FORMAT_VERSION})")
    while version < FORMAT_VERSION:
        document = MIGRATIONS[version](document)
        version += 1
        document["format_version"] = version
    _validate(document)
    return document


def _check_format(document: dict) -> None:
    if document.get("format") != FORMAT:
        found = document.get("format")
        detail = f" (its format is {_show(found)})" if found is not None else ""
        raise SessionError(f"not an ML Calculus Explorer session file{detail}")


def _validate(document: dict) -> None:
    """Types and bounds of a current-format document; the panels check their own states."""
    for key in document:
        if key not in _TOP_KEYS:
            raise SessionError("unknown key", key)
    expect_str(document, "title", max_length=_MAX_TITLE, default=None)
    expect_str(document, "description", max_length=_MAX_DESCRIPTION, default=None)
    panels = expect_dict(document, "panels")
    for key in panels:
        if key not in PANEL_KEYS:
            raise SessionError(f"unknown panel (known: {', '.join(PANEL_KEYS)})", _join("panels", key))
        expect_dict(panels, key, "panels")
    window = expect_dict(document, "window", default={})
    for key in window:
        if key not in ("tab", "geometry", "splitters"):
            raise SessionError("unknown key", _join("window", key))
    expect_str(window, "tab", "window", choices=PANEL_KEYS, default=None)
    expect_layout_blob(window, "geometry", "window", default=None)
    splitters = expect_dict(window, "splitters", "window", default={})
    for key in splitters:
        if key not in PANEL_KEYS:
            raise SessionError("unknown panel", _join("window.splitters", key))
        states = expect_list(splitters, key, "window.splitters", max_length=_MAX_SPLITTERS)
        for i in range(len(states)):
            expect_layout_blob(states, i, f"window.splitters.{key}")


# --------------------------------------------------------------------------- files

def save(path, document: dict) -> None:
    """Write ``document`` to ``path`` atomically, after checking that :func:`load` reads it back.

    Raises :class:`SessionError` for content that cannot be saved and
    :class:`engine._atomic.AtomicWriteError` (an ``OSError``) when the file cannot be written.
    """
    data = encode(document)
    decode(data)  # never write a file this version would refuse
    atomic_write(path, data)


def load(path) -> dict:
    """Read and :func:`decode` the session file at ``path``; a file over the size cap is not read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                raise SessionError(f"the file is {_megabytes(size)}; a session file is at most "
                                   f"{_megabytes(MAX_BYTES)}")
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SessionError(f"cannot read the file: {exc.strerror or exc}") from None
    return decode(data)


def read_title(path) -> str:
    """A session file's ``title``, or its name without the suffix; raises :class:`SessionError`."""
    path = Path(path)
    return load(path).get("title") or path.name.removesuffix(SUFFIX).removesuffix(".json")


class RecoveryStore:
    """The autosave file of the running app, guarded so that a second instance leaves it alone.

    The instance that :meth:`acquire` s the folder's lock writes the recovery file while it
    runs and removes it on a clean exit; a recovery file found at start-up with the lock
    free was left by a crash or a kill.
    """

    FILE_NAME = "recovery" + SUFFIX
    LOCK_NAME = "recovery.lock"

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / self.FILE_NAME
        self._lock_fd: int | None = None

    def acquire(self) -> bool:
        """Take the folder for this process; False when another running instance holds it."""
        if self._lock_fd is not None:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / self.LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        """Let the folder go (the lock also goes when the process dies)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def pending(self) -> bool:
        """Whether a recovery file is waiting to be restored or discarded."""
        return self.path.is_file()

    def write(self, document: dict) -> None:
        save(self.path, document)

    def read(self) -> dict:
        return load(self.path)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- validators

_REQUIRED = object()
_ABSENT = object()


def expect_number(state, key, path: str = "", low: float | None = None, high: float | None = None,
                  *, default=_REQUIRED, finite: bool = True) -> float:
    """``state[key]`` as a float within [low, high]; NaN and infinities only if not ``finite``."""
    value = _get(state, key, path, default)
    if value is _ABSENT:
        return default
    where = _join(path, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SessionError(f"expected a number, got {_show(value)}", where)
    try:
        value = float(value)
    except OverflowError:
        raise SessionError(f"the number {_show(value)} is out of range", where) from None
    if not math.isfinite(value):
        if finite:
            raise SessionError(f"expected a finite number, got {value}", where)
        return value
    _check_range(value, low, high, "a number", where)
    return value


def expect_int(state, key, path: str = "", low: int | None = None, high: int | None = None,
               *, default=_REQUIRED) -> int:
    """``state[key]`` as a whole number within [low, high] (``3.0`` counts as 3)."""
    value = _get(state, key, path, default)
    if value is _ABSENT:
        return default
    where = _join(path, key)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SessionError(f"expected a whole number, got {_show(value)}", where)
    _check_range(value, low, high, "a whole number", where)
    return value


def expect_bool(state, key, path: str = "", *, default=_REQUIRED) -> bool:
    value = _get(state, key, path, default)
    if value is _ABSENT:
        return default
    if not isinstance(value, bool):
        raise SessionError(f"expected true or false, got {_show(value)}", _join(path, key))
    return value


def expect_str(state, key, path: str = "", *, choices=None, max_length: int = 10_000,
               default=_REQUIRED) -> str:
    """``state[key]`` as text of at most ``max_length`` characters, one of ``choices`` if given."""
    value = _get(state, key, path, default)
    if value is _ABSENT:
        return default
    where = _join(path, key)
    if not isinstance(value, str):
        raise SessionError(f"expected text, got {_show(value)}", where)
    if choices is not None and value not in choices:
        raise SessionError(f"expected one of {', '.join(map(str, choices))}, got {_show(value)}", where)
    if len(value) > max_length:
        raise SessionError(f"text of {len(value)} characters; at most {max_length} allowed", where)
    return value


def expect_list(state, key, path: str = "", *, max_length: int | None = None,
                default=_REQUIRED) -> list:
    value = _get(state, key, path, default)
    if value is _ABSENT:
        return default
    where = _join(path, key)
    if not isinstance(value, list):
        raise SessionError(f"expected a list, got {_show(value)}", where)
    if max_length is not None and len(value) > max_length:
        raise SessionError(f"a list of {len(value)} items; at most {max_length} allowed", where)
    return value


def expect_dict(state, key, path: str = "", *, default=_REQUIRED) -> dict:
    value = _get(state, key, path, default)
    if value is _ABSENT:
        return default
    if not isinstance(value, dict):
        raise SessionError(f"expected an object, got {_show(value)}", _join(path, key))
    return value


def expect_layout_blob(state, key, path: str = "", *, default=_REQUIRED) -> bytes:
    """``state[key]`` as the bytes of a saved Qt layout state, stored as base64 text."""
    if _get(state, key, path, default) is _ABSENT:
        return default
    text = expect_str(state, key, path, max_length=_MAX_LAYOUT_BLOB)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SessionError("expected base64 text", _join(path, key)) from None


def _get(state, key, path: str, default):
    """``state[key]``, or ``_ABSENT`` when it is missing and has a default."""
    if isinstance(key, int):
        if not isinstance(state, list):
            raise SessionError(f"expected a list, got {_show(state)}", path)
        present = 0 <= key < len(state)
    else:
        if not isinstance(state, dict):
            raise SessionError(f"expected an object, got {_show(state)}", path)
        present = key in state
    if present:
        return state[key]
    if default is _REQUIRED:
        raise SessionError("missing", _join(path, key))
    return _ABSENT


def _check_range(value, low, high, what: str, where: str) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"from {low:g} to {high:g}"
        elif low is not None:
            bounds = f"of at least {low:g}"
        else:
            bounds = f"of at most {high:g}"
        raise SessionError(f"expected {what} {bounds}, got {_show(value)}", where)


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false",
            type(None): "null"}.get(type(value), "a number" if isinstance(value, (int, float)) else
                                     type(value).__name__)


def _show(value) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 40 else text[:40] + "…"
    return _kind(value)


def _printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped: messages stay one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
