"""Atomic file replacement: a reader sees the old file or the new one, never a mixture.

The bytes go to a temporary file in the target's own folder (so the final rename never
crosses a file system), are flushed and fsynced, and the temporary file is renamed over
the target with ``os.replace``; the folder is fsynced last so that the rename survives a
power cut. A save killed half-way leaves the previous file intact plus a hidden temporary
file, which the next save of the same target removes.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from pathlib import Path

try:  # POSIX: a writer holds a lock on its temporary file, so a live save is never "stale"
    import fcntl
except ImportError:  # Windows: no advisory locks; an open temporary file cannot be deleted there
    fcntl = None

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied (the folder may be read-only)",
    errno.EPERM: "permission denied (the folder may be read-only)",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the folder's path is a file, not a folder",
    errno.EISDIR: "the target is a folder",
}


class AtomicWriteError(OSError):
    """A failed atomic save; ``str()`` is a one-line message naming the file and the reason,
    ``errno`` is the cause's. The previous file, if any, is left as it was."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def temp_name_pattern(name: str) -> re.Pattern:
    """The names of the temporary files :func:`atomic_write` makes for a target called ``name``."""
    return re.compile(re.escape(f".{name}.") + r"[0-9a-f]{16}\.tmp")


def atomic_write(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Raises :class:`AtomicWriteError` (an ``OSError``) with a clear message on any failure;
    the previous file is then unchanged and no temporary file is left behind.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write needs bytes, got {type(data).__name__}")
    path = Path(path)
    folder = path.parent
    try:
        remove_stale_temps(path)
        fd, tmp = _locked_temp(path)
    except OSError as exc:
        raise _error(path, exc) from exc
    try:
        try:
            _keep_mode(path, fd)
            view = memoryview(data).cast("B")
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            if fcntl is None:  # Windows cannot rename an open file
                os.close(fd)
                fd = -1
            os.replace(tmp, path)  # still locked on POSIX: no clean-up can take it meanwhile
        finally:
            if fd >= 0:
                os.close(fd)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _error(path, exc) from exc
        raise
    _sync_folder(folder)


def _locked_temp(path: Path) -> tuple[int, Path]:
    """Create and lock a new temporary file beside ``path``.

    Another process's clean-up may remove the file between its creation and the lock; a
    file found unlinked once locked is given up for a fresh one.
    """
    for _ in range(8):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                return fd, tmp
        except OSError:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, "another program keeps removing the temporary file")


def remove_stale_temps(path) -> list[Path]:
    """Delete the temporary files an earlier, killed save of ``path`` left; return them.

    A temporary file whose writer is still alive holds a lock and is kept.
    """
    path = Path(path)
    pattern = temp_name_pattern(path.name)
    removed = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        candidate = path.parent / name
        if _in_use(candidate):
            continue
        try:
            os.unlink(candidate)
        except OSError:  # gone meanwhile, or not ours to remove: the save goes on
            continue
        removed.append(candidate)
    return removed


def _in_use(candidate: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return True  # gone already, or not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _keep_mode(path: Path, fd: int) -> None:
    """Give the new file the permission bits of the file it replaces."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable where the platform can fsync a folder (Linux, macOS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse; the file itself is already complete
    finally:
        os.close(fd)


def _error(path: Path, exc: OSError) -> AtomicWriteError:
    reason = _REASONS.get(exc.errno) or exc.strerror or str(exc) or type(exc).__name__
    return AtomicWriteError(exc.errno or errno.EIO, f"cannot save {path}: {reason}")
