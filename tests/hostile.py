"""Helpers for the hostile-input corpus: run the CLI in-process under a time limit and check
that it refused with one clean line, and write the odd files the cases need."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import struct
import zlib
from pathlib import Path

import numpy as np

from chainrule.cli import main


class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise TookTooLong if the block runs longer than ``seconds`` (a hang is a failure)."""

    def expire(signum, frame):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refused(capsys, argv, *fragments, seconds: float = 30):
    """``chainrule ARGV`` must exit 2 with one line ``chainrule: error: ...`` holding every
    fragment (case-insensitive), no traceback, within ``seconds``. Returns the line."""
    capsys.readouterr()
    with time_limit(seconds):
        status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert status == 2, f"exit {status}: {err}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("chainrule: error:"), err
    for fragment in fragments:
        assert fragment.lower() in err.lower(), f"{fragment!r} not in {err}"
    return err


def succeeds(capsys, argv, seconds: float = 60) -> str:
    """``chainrule ARGV`` must exit 0; returns its output."""
    capsys.readouterr()
    with time_limit(seconds):
        status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


# -- odd files -----------------------------------------------------------------------------------


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def dev_zero(path: Path) -> Path:
    path.symlink_to("/dev/zero")
    return path


def idx_bytes(array: np.ndarray, type_code: int = 0x08, shape=None) -> bytes:
    shape = array.shape if shape is None else shape
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    return header + array.tobytes()


def write_idx(path: Path, array, compress: bool = True, **kwargs) -> Path:
    raw = idx_bytes(np.asarray(array, dtype=np.uint8), **kwargs)
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def npy_header(path: Path, shape, descr: str = "<f4") -> Path:
    """A .npy file whose header declares ``shape`` but that holds no data."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode())
    return path


def png_header(path: Path, width: int, height: int, idat: bytes = b"") -> Path:
    """A PNG of the given size (8-bit grey) whose pixel data is ``idat`` (compressed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    body += chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(body)
    return path


def safetensors_file(path: Path, header: dict, data: bytes = b"", length: int | None = None):
    """A safetensors file with a hand-written header (for headers no library would write)."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth
