"""Fetching data files over HTTP with SHA-256 checks and atomic writes into a cache folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .idx import DataFileError


def cache_dir() -> Path:
    """``$CHAINRULE_DATA`` if set, else ``~/.cache/chainrule``."""
    return Path(os.environ.get("CHAINRULE_DATA") or Path.home() / ".cache" / "chainrule")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    name: str, sha256: str, folder: Path, mirrors: list[str], timeout: float = 60
) -> Path:
    """Download ``name`` from the first mirror that serves it with the right SHA-256.

    The file is written to a temporary file in ``folder``, checked, fsynced and renamed, so the
    folder never holds a partial or wrong file. Returns the final path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists() and sha256_of(target) == sha256:
        return target
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        try:
            digest = hashlib.sha256()
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=timeout) as response,
            ):
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                failures.append(f"{url}: SHA-256 mismatch (got {digest.hexdigest()[:12]}...)")
                continue
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DataFileError(f"could not download {name}:\n  " + "\n  ".join(failures))
