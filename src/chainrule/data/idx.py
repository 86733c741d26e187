"""Reading IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then each
dimension as a big-endian uint32; then the values.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ..backend import xp

GZIP_MAGIC = b"\x1f\x8b"
MAX_BYTES = 1 << 31  # no IDX data set we read is near 2 GiB; refuse absurd headers


class DataFileError(ValueError):
    """A data file is missing, truncated or not what it claims to be."""


def read_idx(path: Path):
    """The array stored in an IDX file (uint8), after checking its header against its size."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataFileError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataFileError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = 1
    for n in shape:
        expected *= n
    if expected > MAX_BYTES or len(raw) - header != expected:
        raise DataFileError(
            f"{path}: header says shape {shape} ({expected:,} bytes) but the file holds "
            f"{len(raw) - header:,} bytes of data (truncated or corrupt)"
        )
    return xp.frombuffer(raw, dtype=xp.uint8, offset=header).reshape(shape).copy()
