"""Reading IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then each
dimension as a big-endian uint32; then the values.

The header is checked before the data is read: the size it declares must fit under a cap, match
the file's size (raw files) or what the compressed file can hold (deflate packs at most ~1032
bytes into one), and the data must end exactly where the header says, so a truncated file, an
absurd header or a decompression bomb is refused without allocating or decompressing more than
the header declared.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

from ..backend import xp
from ..files import DataFileError, open_regular, regular_file_size

GZIP_MAGIC = b"\x1f\x8b"
MAX_BYTES = 1 << 30  # 1 GiB: the largest IDX data set we know (EMNIST) is well below
MAX_DEFLATE_RATIO = 1032  # deflate's limit: no compressed stream expands more than this
TYPE_NAMES = {0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}


def read_idx(path: Path, max_bytes: int = MAX_BYTES):
    """The array stored in an IDX file of unsigned bytes (uint8), after checking its header.

    Raises:
        DataFileError: naming the file, if it is missing, not a regular file, truncated, corrupt,
            of another type, or declares more than ``max_bytes`` of data.
    """
    path = Path(path)
    file_size = regular_file_size(path)
    with open_regular(path) as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if compressed else raw
        try:
            return _read(path, stream, file_size, compressed, max_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def _read(path: Path, stream, file_size: int, compressed: bool, max_bytes: int):
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise DataFileError(f"{path}: not an IDX file (bad magic number)")
    if magic[2] != 0x08:
        kind = TYPE_NAMES.get(magic[2], f"unknown type 0x{magic[2]:02x}")
        raise DataFileError(f"{path}: an IDX file of {kind}; chainrule reads IDX files of bytes")
    ndim = magic[3]
    dims = stream.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DataFileError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    count, header = math.prod(shape), 4 + 4 * ndim
    if count > max_bytes:
        raise DataFileError(
            f"{path}: header declares shape {shape} ({count:,} bytes), more than an IDX file may "
            f"hold here ({max_bytes:,})"
        )
    if compressed and count + header > file_size * MAX_DEFLATE_RATIO:
        raise DataFileError(
            f"{path}: header declares {count:,} bytes, more than {file_size:,} compressed bytes "
            "can hold (corrupt)"
        )
    if not compressed and file_size - header != count:
        raise DataFileError(
            f"{path}: header says shape {shape} ({count:,} bytes) but the file holds "
            f"{file_size - header:,} bytes of data (truncated or corrupt)"
        )
    values = xp.empty(count, dtype=xp.uint8)
    view, filled = memoryview(values), 0
    while filled < count:
        n = stream.readinto(view[filled:])
        if not n:
            raise DataFileError(
                f"{path}: header says shape {shape} ({count:,} bytes) but the data ends after "
                f"{filled:,} bytes (truncated)"
            )
        filled += n
    if stream.read(1):
        raise DataFileError(
            f"{path}: more data than its header's shape {shape} says (corrupt, or not one array)"
        )
    return values.reshape(shape)
