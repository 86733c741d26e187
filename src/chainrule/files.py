"""Reading files chainrule did not write, without trusting them.

A FIFO, ``/dev/zero`` or a folder in place of a data, settings or model file would make a plain
``open(path).read()`` wait forever or read without end, and a file may be far larger than any
honest one. These helpers refuse such files before reading: only regular files, read up to a cap.

Temporary files: every file chainrule writes goes through a temporary file named
``.<name>.<8 random characters>.tmp`` in the same folder (then fsync and rename). A process killed
mid-write leaves one behind; :func:`remove_stale_temporaries` deletes those of known names (and
nothing else) the next time chainrule writes into that folder.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

# mkstemp's random part: 8 characters from this alphabet
TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")


class DataError(ValueError):
    """Data that cannot be used as given (non-finite values, mismatched shapes); one clear line."""


class DataFileError(DataError):
    """A file is missing, truncated, too large, or not what it claims to be."""


class ChainruleFileError(DataFileError):
    """A saved file is missing, truncated, corrupt, or describes something we will not build."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def brief(value, limit: int = 40) -> str:
    """``value`` as one short line for a message: a name from a file, or a library's error
    about one, may be any length and hold newlines."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def regular_file_size(path, error: type[Exception] = DataFileError) -> int:
    """The size in bytes of ``path``, after checking that it is a regular file.

    Raises ``error`` naming the path if it is missing, unreadable, or a folder, FIFO or device.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is {_kind(info.st_mode)}, not a regular file")
    return info.st_size


def open_regular(path, error: type[Exception] = DataFileError):
    """Open ``path`` for binary reading, refusing anything but a regular file.

    Opened non-blocking and checked again after opening, so a FIFO swapped in after the first
    check cannot make us wait.
    """
    regular_file_size(path, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise error(f"{path}: cannot open it ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{path}: is {_kind(mode)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_capped(path, max_bytes: int, what: str = "file", error=DataFileError) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (else ``error``, before reading)."""
    size = regular_file_size(path, error)
    if size > max_bytes:
        raise error(f"{path}: {size:,} bytes, more than a {what} may have ({max_bytes:,})")
    with open_regular(path, error) as f:
        data = f.read(size + 1)  # read(n) sets n bytes aside: what stat said, not max_bytes
        if len(data) > size:  # it grew since: read on, up to the cap
            data += f.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:  # it grew while we read
        raise error(f"{path}: more than a {what} may have ({max_bytes:,} bytes)")
    return data


def temporary_file(folder: Path, name: str) -> tuple[int, str]:
    """``(fd, path)`` of a new temporary file for ``folder / name`` (see the module docstring)."""
    return tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)


def remove_stale_temporaries(folder: Path, names) -> list[Path]:
    """Delete temporary files left in ``folder`` by killed writes of the files ``names``.

    Only regular files matching chainrule's temporary-file pattern for one of ``names`` are
    removed; anything else in the folder is left alone. Returns the paths removed.
    """
    folder, names, removed = Path(folder), set(names), []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = TEMPORARY_NAME.match(entry.name)
        if match and match["name"] in names and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = temporary_file(path.parent, path.name)
    except OSError as exc:  # name the folder: the temporary file was never made
        raise type(exc)(
            exc.errno, f"cannot write a file in this folder ({exc.strerror})", str(path.parent)
        ) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
