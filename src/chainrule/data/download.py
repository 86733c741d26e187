"""Fetching data files over HTTP with SHA-256 checks and atomic writes into a cache folder.

Bounded against a bad mirror: at most ``max_bytes`` per file, or the file's known size plus a
margin (a larger ``Content-Length`` is refused before reading), each read waits at most
``timeout`` seconds, a mirror whose rate stays below ``min_rate`` for ``slow_after`` seconds is
given up on, and the whole download (all mirrors) gives up after ``deadline`` seconds, so a
mirror that streams forever or drips a byte a second cannot hold us. What each mirror did is said
in one line (a connection cut mid-chunk, a redirect loop, ...). A partial or wrong file never
reaches the cache: it is written to a temporary file, checked, fsynced and renamed, and removed on
any failure (or, after a kill, by the next download into that folder).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ..files import DataFileError, open_regular, remove_stale_temporaries, temporary_file

MAX_DOWNLOAD_BYTES = 64 << 20  # the largest file we fetch (Fashion-MNIST's training images): 26 MB
MIN_RATE = 4096.0  # bytes/s: the 26 MB file at this rate would take 1.8 hours
SLOW_AFTER = 30.0  # seconds a mirror may stay below MIN_RATE


def size_cap(size: int) -> int:
    """The most a mirror may send for a file of ``size`` bytes: the size plus a margin (an eighth
    and 1 MiB), so that a mirror streaming without end is cut off soon after the real file's end
    (what is not the file fails its SHA-256 anyway)."""
    return size + size // 8 + (1 << 20)


class _Refused(Exception):
    """A mirror broke one of the bounds; the message says which."""


def cache_dir() -> Path:
    """``$CHAINRULE_DATA`` if set, else ``~/.cache/chainrule``."""
    return Path(os.environ.get("CHAINRULE_DATA") or Path.home() / ".cache" / "chainrule")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file (a download, or a run's CSV file: a run can tell it has changed)."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    name: str,
    sha256: str,
    folder: Path,
    mirrors: list[str],
    timeout: float = 30.0,
    deadline: float = 600.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    size: int | None = None,
    min_rate: float = MIN_RATE,
    slow_after: float = SLOW_AFTER,
) -> Path:
    """Download ``name`` from the first mirror that serves it with the right SHA-256.

    Args:
        timeout: seconds one read (or connecting) may wait.
        deadline: seconds the whole download, over all mirrors, may take.
        max_bytes: the most a mirror may send for this file.
        size: the file's size, where known: a mirror may send at most :func:`size_cap` of it.
        min_rate, slow_after: a mirror sending fewer than ``min_rate`` bytes a second over
            ``slow_after`` seconds is given up on (a drip would otherwise last until ``deadline``).

    Returns the final path ``folder / name``. Raises DataFileError listing what each mirror did.
    """
    if size is not None:
        max_bytes = min(max_bytes, size_cap(size))
    pace = (min_rate, slow_after)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder, {name})
    target = folder / name
    if target.is_file() and sha256_of(target) == sha256:
        return target
    import http.client  # the network stack loads only when something is downloaded
    import urllib.error

    give_up_at = time.monotonic() + deadline
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        if time.monotonic() >= give_up_at:
            failures.append(f"{url}: not tried, the {deadline:g} s deadline had passed")
            continue
        fd, tmp = temporary_file(folder, name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _fetch(url, out, min(timeout, deadline), give_up_at, max_bytes, pace)
                out.flush()
                os.fsync(out.fileno())
            if digest != sha256:
                failures.append(f"{url}: SHA-256 mismatch (got {digest[:12]}...)")
                continue
            os.replace(tmp, target)
            return target
        except http.client.IncompleteRead as exc:  # a chunked transfer cut mid-chunk
            failures.append(f"{url}: the connection was cut mid-transfer ({exc!r})")
        except (
            _Refused,
            urllib.error.URLError,
            http.client.HTTPException,
            OSError,
            ValueError,
        ) as exc:
            failures.append(f"{url}: {' '.join(str(exc).split()) or type(exc).__name__}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DataFileError(f"could not download {name}: " + "; ".join(failures))


def _fetch(url: str, out, timeout: float, give_up_at: float, max_bytes: int, pace) -> str:
    """Stream ``url`` into ``out`` within the bounds; returns the SHA-256 of what was written."""
    digest, total = hashlib.sha256(), 0
    min_rate, slow_after = pace
    window_start, window_total = time.monotonic(), 0  # the rate is judged window by window
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _Refused(f"announces {int(declared):,} bytes, more than {max_bytes:,} allowed")
        while True:
            if time.monotonic() >= give_up_at:
                raise _Refused(f"too slow: {total:,} bytes before the deadline")
            # read1: return what has arrived, so a slow drip still lets us watch the clock
            block = response.read1(1 << 16)
            if not block:
                if declared.isdigit() and total != int(declared):
                    raise _Refused(f"sent {total:,} of the {int(declared):,} bytes it announced")
                return digest.hexdigest()
            total += len(block)
            if total > max_bytes:
                raise _Refused(f"sent more than {max_bytes:,} bytes")
            elapsed = time.monotonic() - window_start
            if elapsed >= slow_after:
                if total - window_total < min_rate * elapsed:
                    raise _Refused(
                        f"too slow: {total - window_total:,} bytes in {elapsed:.0f} s (below "
                        f"{min_rate:,.0f} bytes/s)"
                    )
                window_start, window_total = time.monotonic(), total
            digest.update(block)
            out.write(block)
