"""Session files: strict JSON, every kind of bad input refused with a one-line message,
format migrations, atomic saves that survive full disks and read-only folders, and a fuzz
of the loader."""

import errno
import json
import math
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from app import session
from app.session import SessionError
from engine import _atomic
from engine._atomic import AtomicWriteError, atomic_write, remove_stale_temps
from tests.app.session_fuzz_cases import check_decode, session_bytes, typical_document, version_1_document


def _same(a, b) -> bool:
    """Equality in which NaN equals NaN."""
    return session.encode(a) == session.encode(b)


def _refused(data: bytes, *fragments: str) -> str:
    with pytest.raises(SessionError) as caught:
        session.decode(data)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _doc(**panels) -> dict:
    return {"format": session.FORMAT, "format_version": session.FORMAT_VERSION, "panels": panels}


def _temps(folder) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


# --------------------------------------------------------------------------- format

def test_round_trip_keeps_every_value_non_finite_ones_included():
    document = typical_document()
    data = session.encode(document)
    assert _same(session.decode(data), document)
    assert math.isnan(session.decode(data)["panels"]["descent"]["last_loss"])
    assert session.decode(data)["panels"]["lsh"]["floor"] == -math.inf


def test_non_finite_numbers_are_written_as_strict_json():
    data = session.encode(_doc(surface={"a": math.nan, "b": [math.inf, -math.inf], "c": np.float64("nan")}))

    def no_constants(name):
        raise AssertionError(f"{name} in a strict JSON file")

    plain = json.loads(data, parse_constant=no_constants)
    assert plain["panels"]["surface"] == {"a": {"$float": "nan"},
                                          "b": [{"$float": "inf"}, {"$float": "-inf"}],
                                          "c": {"$float": "nan"}}


def test_encoding_refuses_what_could_not_be_read_back():
    with pytest.raises(SessionError, match=r"panels\.surface\.\$x: keys starting with '\$' are reserved"):
        session.encode(_doc(surface={"$x": 1}))
    with pytest.raises(SessionError, match=r"panels\.surface: keys must be text, not int"):
        session.encode(_doc(surface={1: 2}))
    with pytest.raises(SessionError, match=r"panels\.surface\.s: cannot save a value of type set"):
        session.encode(_doc(surface={"s": {1}}))
    deep: list = []
    for _ in range(session.MAX_DEPTH):
        deep = [deep]
    with pytest.raises(SessionError, match="nested deeper than 64"):
        session.encode(_doc(surface={"deep": deep}))
    with pytest.raises(SessionError, match="more than the 5.0 MB"):
        session.encode(_doc(surface={"big": "x" * session.MAX_BYTES}))


def test_tuples_are_saved_as_lists_and_text_stays_readable():
    data = session.encode(_doc(attention={"pair": (1, 2), "text": "∇f · x"}))
    assert "∇f · x" in data.decode("utf-8")
    assert session.decode(data)["panels"]["attention"]["pair"] == [1, 2]


def test_a_lone_surrogate_in_text_survives_the_round_trip():
    data = session.encode(_doc(attention={"text": "a\ud800b"}))
    assert session.decode(data)["panels"]["attention"]["text"] == "a\ud800b"


def test_byte_order_mark_is_accepted():
    assert session.decode(b"\xef\xbb\xbf" + session.encode(_doc()))["panels"] == {}


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("cut", [1, 10, 100, 0.5, -2])
def test_a_truncated_file_is_refused(cut):
    data = session.encode(typical_document())
    at = int(len(data) * cut) if isinstance(cut, float) else cut
    _refused(data[:at])


def test_truncation_is_named():
    _refused(session.encode(typical_document())[:-3], "ends too early")


@pytest.mark.parametrize("document, fragments", [
    ([], ("holds a list, not a session",)),
    ("text", ("holds text",)),
    ({"format_version": 2, "panels": {}}, ("not an ML Calculus Explorer session",)),
    ({"format": "other", "format_version": 2}, ("its format is 'other'",)),
    ({"format": session.FORMAT, "format_version": "2", "panels": {}}, ("format_version: expected a whole number",)),
    ({"format": session.FORMAT, "format_version": True, "panels": {}}, ("format_version",)),
    ({"format": session.FORMAT, "format_version": 0, "panels": {}}, ("format_version: expected a whole number of at least 1",)),
    ({"format": session.FORMAT, "format_version": 2}, ("panels: missing",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": []}, ("panels: expected an object, got a list",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {"surface": 3}}, ("panels.surface: expected an object",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {"graphs": {}}}, ("panels.graphs: unknown panel",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {}, "extra": 1}, ("extra: unknown key",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {}, "title": 5}, ("title: expected text",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {}, "window": {"tab": "nowhere"}},
     ("window.tab: expected one of surface",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {}, "window": {"geometry": "not base64!"}},
     ("window.geometry: expected base64",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {},
      "window": {"splitters": {"surface": ["AAAA", 7]}}}, ("window.splitters.surface[1]: expected text",)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {"surface": {"a": {"$float": "NaN"}}}},
     ('panels.surface.a: expected {"$float": "nan" | "inf" | "-inf"}',)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {"surface": {"a": [{"$float": []}]}}},
     ('panels.surface.a[0]: expected {"$float"',)),
    ({"format": session.FORMAT, "format_version": 2, "panels": {"surface": {"$eval": "x"}}},
     ("panels.surface.$eval: keys starting with '$' are reserved",)),
])
def test_wrong_types_are_refused_with_the_key_path(document, fragments):
    _refused(json.dumps(document).encode(), *fragments)


def test_a_50_megabyte_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    path = tmp_path / "huge.mlcalc.json"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: no 50 MB written
    reads = []
    real_open = open

    class Spy:
        def __init__(self, f):
            self._f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def fileno(self):
            return self._f.fileno()

        def read(self, n=-1):
            reads.append(n)
            return self._f.read(n)

    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **k: Spy(real_open(p, mode, *a, **k)))
    with pytest.raises(SessionError, match=r"the file is 50\.0 MB; a session file is at most 5\.0 MB"):
        session.load(path)
    assert reads == []


def test_50_megabytes_of_bytes_are_refused_before_parsing():
    _refused(b"[" + b"0," * (25 * 1024 * 1024) + b"0]", "the file is 50.0 MB")


@pytest.mark.parametrize("opener, closer", [(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")])
def test_nesting_10000_deep_is_refused_without_recursion_errors(opener, closer):
    message = _refused(opener * 10_000 + b"1" + closer * 10_000, "levels deep; a session file is at most 64")
    assert "10000" in message or "20000" in message


def test_nesting_inside_a_valid_session_is_refused():
    inner = b'{"a":' * 100 + b"1" + b"}" * 100
    data = b'{"format": "mlcalc-session", "format_version": 2, "panels": {"surface": ' + inner + b"}}"
    _refused(data, "nested 102 levels deep")


def test_nesting_depth_ignores_brackets_in_strings():
    assert session.nesting_depth('{"a": "[[[[{{{{", "b": ["\\"[[[", 1]}') == 2
    assert session.nesting_depth('["\\\\", [1]]') == 2
    assert session.nesting_depth('["unterminated [[[[[') == 1
    assert session.nesting_depth("") == 0


def test_a_file_from_a_future_version_is_refused():
    document = dict(_doc(), format_version=session.FORMAT_VERSION + 1)
    _refused(json.dumps(document).encode(), "made by a newer version of ML Calculus Explorer",
             f"format {session.FORMAT_VERSION + 1}")


def test_a_malicious_expression_is_only_ever_text(tmp_path):
    marker = tmp_path / "pwned"
    attack = f"__import__('os').system('touch {marker}')"
    document = session.decode(json.dumps(_doc(surface={"text": attack, "params": {"a": attack}})).encode())
    assert document["panels"]["surface"]["text"] == attack
    assert not marker.exists()


@pytest.mark.parametrize("data, fragment", [
    (b"", "the file is empty"),
    (b"  \n ", "the file is empty"),
    (b"\xff\xfe{}", "invalid UTF-8 at byte 0"),
    (b'{"a": NaN}', 'NaN is not allowed in strict JSON; write {"$float": "nan"}'),
    (b'{"a": -Infinity}', '{"$float": "-inf"}'),
    (b'{"a": 1e999}', "the number 1e999 is out of range"),
    (b'{"a": ' + b"9" * 5000 + b"}", "has more than 40 digits"),
    (b'{"a": 1, "a": 2}', "the key 'a' appears twice"),
    (b"{'a': 1}", "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
])
def test_broken_json_is_named(data, fragment):
    _refused(data, fragment)


def test_messages_stay_on_one_line_whatever_the_keys():
    data = json.dumps(_doc(surface={"a\nb": {"$x\u2028": 1}})).encode()
    _refused(data, r"panels.surface.a\nb.$x\u2028: keys starting with '$' are reserved")


def test_a_foreign_file_is_named_before_its_content_is_judged():
    _refused(json.dumps({"format": "other", "$float": 1}).encode(), "not an ML Calculus Explorer session")


def test_decode_wants_bytes():
    with pytest.raises(SessionError, match="expected the bytes of a file, got str"):
        session.decode("{}")


# --------------------------------------------------------------------------- migrations

def test_every_older_version_has_a_migration():
    assert sorted(session.MIGRATIONS) == list(range(1, session.FORMAT_VERSION))


def test_format_1_moves_its_tab_into_the_window_block():
    document = session.decode(session.encode(version_1_document()))
    assert document["format_version"] == 2
    assert document["window"] == {"tab": "descent"}
    assert "current_tab" not in document
    assert _same(document["panels"], typical_document()["panels"])


def test_format_1_without_a_tab_gets_an_empty_window_block():
    v1 = {"format": session.FORMAT, "format_version": 1, "panels": {}}
    assert session.decode(json.dumps(v1).encode())["window"] == {}


def test_format_1_with_a_bad_tab_is_refused():
    v1 = {"format": session.FORMAT, "format_version": 1, "panels": {}, "current_tab": 3}
    _refused(json.dumps(v1).encode(), "current_tab: expected text, got 3")


def test_migrations_run_in_order(monkeypatch):
    calls = []

    def step(n):
        def migrate(document):
            calls.append(n)
            return dict(document)
        return migrate

    monkeypatch.setattr(session, "FORMAT_VERSION", 4)
    monkeypatch.setattr(session, "MIGRATIONS", {1: step(1), 2: step(2), 3: step(3)})
    document = session.migrate({"format": session.FORMAT, "format_version": 2, "panels": {}})
    assert calls == [2, 3] and document["format_version"] == 4


# --------------------------------------------------------------------------- validators

def test_validators_name_the_key_path():
    state = {"lr": "fast", "steps": 2.5, "on": 1, "name": "adam", "items": [1, "two"], "big": 10**30}
    with pytest.raises(SessionError, match=r"^panels\.descent\.lr: expected a number, got 'fast'$"):
        session.expect_number(state, "lr", "panels.descent")
    with pytest.raises(SessionError, match=r"^steps: expected a whole number, got 2\.5$"):
        session.expect_int(state, "steps")
    with pytest.raises(SessionError, match=r"^on: expected true or false, got 1$"):
        session.expect_bool(state, "on")
    with pytest.raises(SessionError, match=r"^name: expected one of sgd, momentum, got 'adam'$"):
        session.expect_str(state, "name", choices=("sgd", "momentum"))
    with pytest.raises(SessionError, match=r"^items\[1\]: expected a number, got 'two'$"):
        session.expect_number(state["items"], 1, "items")
    with pytest.raises(SessionError, match=r"^x\.missing: missing$"):
        session.expect_number(state, "missing", "x")
    with pytest.raises(SessionError, match=r"^big: expected a whole number of at most 100, got 1000000000000000000000000000000$"):
        session.expect_int(state, "big", high=100)
    with pytest.raises(SessionError, match=r"^items: a list of 2 items; at most 1 allowed$"):
        session.expect_list(state, "items", max_length=1)
    with pytest.raises(SessionError, match=r"^p: expected an object, got a list$"):
        session.expect_number([], "k", "p")


def test_validators_check_ranges_and_finiteness():
    assert session.expect_number({"v": 3}, "v", low=0, high=5) == 3.0
    with pytest.raises(SessionError, match=r"expected a number from 0 to 1, got 2"):
        session.expect_number({"v": 2}, "v", low=0, high=1)
    with pytest.raises(SessionError, match=r"expected a finite number, got nan"):
        session.expect_number({"v": math.nan}, "v")
    assert math.isinf(session.expect_number({"v": math.inf}, "v", finite=False))
    with pytest.raises(SessionError, match="out of range"):
        session.expect_number({"v": 10**400}, "v")
    with pytest.raises(SessionError, match="expected a number, got true"):
        session.expect_number({"v": True}, "v")
    assert session.expect_int({"v": 3.0}, "v") == 3
    with pytest.raises(SessionError, match="at most 3 allowed"):
        session.expect_str({"v": "abcd"}, "v", max_length=3)


def test_validators_defaults_apply_only_to_missing_keys():
    assert session.expect_number({}, "v", default=0.5) == 0.5
    assert session.expect_str({}, "v", default=None) is None
    with pytest.raises(SessionError, match="expected text, got null"):
        session.expect_str({"v": None}, "v", default="x")
    assert session.expect_layout_blob({"g": "AAEC"}, "g") == b"\x00\x01\x02"


# --------------------------------------------------------------------------- files and atomic saves

def test_save_and_load(tmp_path):
    path = tmp_path / "race.mlcalc.json"
    session.save(path, typical_document())
    assert _same(session.load(path), typical_document())
    assert session.read_title(path) == "Himmelblau race"
    assert _temps(tmp_path) == []


def test_save_refuses_a_document_it_could_not_load_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.mlcalc.json"
    with pytest.raises(SessionError, match=r"panels\.graphs: unknown panel"):
        session.save(path, _doc(graphs={}))
    assert os.listdir(tmp_path) == []


def test_load_names_a_missing_file(tmp_path):
    with pytest.raises(SessionError, match="cannot read the file: No such file or directory"):
        session.load(tmp_path / "nowhere.json")


def test_atomic_write_replaces_and_keeps_the_permissions(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert _temps(tmp_path) == []


def test_atomic_write_finishes_short_writes(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(_atomic.os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    atomic_write(tmp_path / "a.json", b"0123456789" * 10)
    assert (tmp_path / "a.json").read_bytes() == b"0123456789" * 10


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_full_disk_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "s.mlcalc.json"
    session.save(path, typical_document())
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic.os, failing, full)
    with pytest.raises(AtomicWriteError) as caught:
        session.save(path, _doc(surface={"changed": True}))
    assert str(caught.value) == f"cannot save {path}: the disk is full"
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert path.read_bytes() == before
    assert _temps(tmp_path) == []


def test_a_read_only_folder_gives_a_clear_message(tmp_path, monkeypatch):
    # Tests run as root, for whom chmod does not stop writes: the refusal is simulated.
    real_open = os.open

    def read_only(path, flags, mode=0o777, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(_atomic.os, "open", read_only)
    with pytest.raises(AtomicWriteError, match=r"cannot save .*s\.json: the folder is on a read-only file system"):
        atomic_write(tmp_path / "s.json", b"x")
    assert os.listdir(tmp_path) == []


def test_a_folder_that_is_a_file_gives_a_clear_message(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(AtomicWriteError, match="a part of the folder's path is a file, not a folder"):
        atomic_write(tmp_path / "plain" / "s.json", b"x")
    with pytest.raises(AtomicWriteError, match="the folder does not exist"):
        atomic_write(tmp_path / "missing" / "s.json", b"x")


def test_an_interrupt_during_the_write_removes_the_temp(tmp_path, monkeypatch):
    (tmp_path / "s.json").write_bytes(b"old")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "s.json", b"new")
    assert (tmp_path / "s.json").read_bytes() == b"old" and _temps(tmp_path) == []


def test_stale_temps_of_the_same_target_are_removed_by_the_next_save(tmp_path):
    stale = tmp_path / ".s.json.0123456789abcdef.tmp"
    other_target = tmp_path / ".t.json.0123456789abcdef.tmp"
    not_ours = tmp_path / ".s.json.backup.tmp"
    for path in (stale, other_target, not_ours):
        path.write_bytes(b"partial")
    atomic_write(tmp_path / "s.json", b"x")
    assert not stale.exists() and other_target.exists() and not_ours.exists()


def test_a_temp_being_written_by_a_live_save_is_kept(tmp_path):
    import fcntl

    live = tmp_path / ".s.json.fedcba9876543210.tmp"
    live.write_bytes(b"in progress")
    fd = os.open(live, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        atomic_write(tmp_path / "s.json", b"x")
        assert live.exists()
    finally:
        os.close(fd)
    assert remove_stale_temps(tmp_path / "s.json") == [live]


def test_temp_names_are_recognisable():
    pattern = _atomic.temp_name_pattern("s.json")
    assert pattern.fullmatch(".s.json.0123456789abcdef.tmp")
    assert not pattern.fullmatch(".s.json.0123.tmp") and not pattern.fullmatch("s.json")
    assert re.escape("s.json") in pattern.pattern


# --------------------------------------------------------------------------- recovery store

def test_recovery_store_is_held_by_one_instance(tmp_path):
    first, second = session.RecoveryStore(tmp_path), session.RecoveryStore(tmp_path)
    assert first.acquire() and not second.acquire()
    first.write(typical_document())
    assert first.pending() and _same(first.read(), typical_document())
    first.release()
    assert second.acquire()
    second.discard()
    assert not second.pending()
    second.release()


# --------------------------------------------------------------------------- fuzz

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(session_bytes)
def test_fuzzed_files_are_read_or_refused_with_a_session_error(data):
    assert check_decode(data) in ("ok", "refused")
