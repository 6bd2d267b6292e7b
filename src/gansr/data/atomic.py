"""Atomic file writes, and removing the temporaries of writers that were killed.

:func:`atomic_write` writes into ``.<name>.<8 hex digits>.tmp`` beside the destination and
renames it into place, so a reader never sees a half-written file. A process killed meanwhile
(SIGKILL, power loss) leaves that temporary behind; :func:`remove_stale_temporaries` removes such
leftovers on a later run.

Telling a leftover from a file another process is writing right now (two ``gansr upscale
--shard`` jobs share an output folder) uses a lock: the writer holds an exclusive ``flock`` on
its temporary until it has been renamed, and the operating system drops the lock when the writer
dies, however it dies. So an unlocked temporary is a dead writer's. Where there is no ``flock``
(Windows) only temporaries older than :data:`UNLOCKED_STALE_AFTER` seconds count as stale.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["TEMP_NAME", "UNLOCKED_STALE_AFTER", "atomic_write", "remove_stale_temporaries"]

TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")
"""The names :func:`atomic_write` gives its temporaries: ``.<destination name>.<8 hex>.tmp``."""

UNLOCKED_STALE_AFTER = 24 * 3600.0
"""Without file locks: the age in seconds after which a temporary is taken to be a leftover."""


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; True when taken (or locks do not exist)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: behave as if there were none
        return True
    return True


def _create_temporary(dest: Path) -> tuple[int, Path]:
    """Create and lock a fresh temporary beside ``dest``; returns its descriptor and path."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(16):
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, flags, 0o666)
        # Between creating and locking, a cleaner could see the file unlocked and delete it: then
        # the name no longer leads to this file and a new one is made.
        if _try_lock(fd):
            try:
                if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                    return fd, tmp
            except FileNotFoundError:
                pass
        os.close(fd)
    raise OSError(errno.EAGAIN, "cannot create a temporary file that stays put", str(dest.parent))


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success it is flushed,
    fsynced and ``os.replace``\\ d onto ``path``, on any exception (also ``KeyboardInterrupt``)
    removed. The temporary file is created with mode 0o666 minus the umask, like ``open()``, and
    stays locked until it is renamed (see the module doc).

    Raises:
        IsADirectoryError: ``path`` is an existing folder (the CLI prints it as one line).
    """
    dest = Path(path)
    if dest.is_dir():
        # Checked first: os.replace onto a folder fails late with a confusing EBUSY/EISDIR.
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(dest))
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file stands where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename) from None
    fd, tmp = _create_temporary(dest)
    f = os.fdopen(fd, "wb")
    try:
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, dest)  # while still locked: a cleaner never sees it unlocked
        finally:
            f.close()
        if fcntl is None:
            os.replace(tmp, dest)  # Windows cannot rename a file that is open
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(
    folder: str | os.PathLike[str], *, accept: Callable[[str], bool] | None = None
) -> list[Path]:
    """Delete the temporaries that killed :func:`atomic_write` calls left in ``folder``.

    Only regular files named as :data:`TEMP_NAME` says are candidates, and of those only the ones
    whose destination name ``accept`` returns True for (default: all). A temporary that a live
    writer holds is kept (see the module doc). Files that vanish or cannot be removed meanwhile
    are skipped silently: cleaning up is best effort.

    Returns:
        The paths removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if match is None or (accept is not None and not accept(match["name"])):
            continue
        path = Path(entry.path)
        try:
            if _is_stale(path):
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def _is_stale(path: Path) -> bool:
    """Whether the temporary at ``path`` is a regular file that no live writer holds."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return False  # never follow a link or touch anything else that merely has such a name
    if fcntl is None:
        return time.time() - info.st_mtime > UNLOCKED_STALE_AFTER
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        # Writers never lock an existing temporary again, so it stays stale after this closes.
        return os.path.samestat(os.fstat(fd), info) and _try_lock(fd)
    finally:
        os.close(fd)
