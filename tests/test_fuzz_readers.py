"""Fuzzing the readers of users' files: a few hundred mutations of a valid CSV table and of
valid IDX files (raw and gzip), each generated here from a seeded random stream, each required
to end in a result or in an error the command line prints as one ``chainrule: error:`` line
(never another exception, a hang, or an allocation the file did not pay for).

A failure names the seed and the mutation's number, so that it can be replayed.
"""

import gzip
import random
import time

import numpy as np
import pytest

from chainrule import data
from chainrule.cli import EXPECTED_ERRORS
from hostile import idx_bytes, time_limit

MUTATIONS = 300
BUDGET = 10.0  # seconds for all of them: a slow machine runs fewer, but at least MINIMUM
MINIMUM = 60

CSV_TOKENS = [
    b",", b'"', b'""', b"\n", b"\r\n", b"\r", b" ", b"nan", b"inf", b"-inf", b"1e400", b"-",
    b"0x10", b"1_000", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", "é".encode(), b"\xe2\x80\xa8",
    b"a" * 300, b"," * 5000, b"\n" * 50, b"label", b"x", b"7", b"3.5",
]  # fmt: skip
IDX_TOKENS = [
    b"\x00", b"\xff", b"\x08", b"\x0d", b"\x03", b"\x00\x00\x08\x03", b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00", b"\x1f\x8b", bytes(64),
]  # fmt: skip


def mutate(original: bytes, tokens: list, rng: random.Random) -> bytes:
    """One to four edits: replace, insert or delete bytes, splice in a token, repeat a span,
    or cut the end off."""
    b = bytearray(original)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(b))
        edit = rng.randrange(6)
        if edit == 0 and b:
            b[min(at, len(b) - 1)] = rng.randrange(256)
        elif edit == 1:
            b[at:at] = rng.choice(tokens)
        elif edit == 2:
            del b[at : at + rng.randint(1, 16)]
        elif edit == 3:
            token = rng.choice(tokens)
            b[at : at + len(token)] = token
        elif edit == 4:
            b[at:at] = b[at : at + rng.randint(1, 64)] * rng.randint(2, 50)
        else:
            del b[at:]
    return bytes(b)


def fuzz(tmp_path, seeds: list[bytes], tokens: list, read, seed: int) -> int:
    """Feed mutations of ``seeds`` to ``read(path)`` until MUTATIONS or BUDGET; returns how
    many ran. Each must return, or raise one of the errors the CLI reports in one line."""
    rng, path = random.Random(seed), tmp_path / "fuzzed"
    started, done = time.monotonic(), 0
    while done < MUTATIONS and time.monotonic() - started < BUDGET:
        path.write_bytes(mutate(rng.choice(seeds), tokens, rng))
        try:
            with time_limit(5):
                read(path)
        except EXPECTED_ERRORS as exc:
            assert str(exc).strip(), f"seed {seed}, mutation {done}: an empty message"
        except Exception as exc:  # noqa: BLE001 (what is being looked for)
            pytest.fail(f"seed {seed}, mutation {done}: {type(exc).__name__}: {exc}"[:500])
        done += 1
    assert done >= MINIMUM, f"only {done} mutations in {BUDGET} s"
    return done


def test_fuzz_the_csv_reader(tmp_path):
    rows = "".join(f"{i * 0.5},{i % 4},{'ab'[i % 2]}\n" for i in range(12))
    numbers = "".join(f"{i},{i * 1.5},{i % 3}\n" for i in range(12))
    seeds = [f"x,y,label\n{rows}".encode(), f"a,b,target\n{numbers}".encode()]

    def read(path):
        table = data.read_csv(path)
        assert len(table.target) == len(table.features) > 0
        assert all(len(name) <= data.csv.MAX_NAME for name in table.feature_names)
        if table.task == "classification":
            assert 0 <= table.target.min() and table.target.max() < len(table.classes)
        data.read_features(path, table.feature_names, ignore=[table.target_name])

    fuzz(tmp_path, seeds, CSV_TOKENS, read, seed=25)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_fuzz_the_idx_reader(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = idx_bytes(rng.integers(0, 256, (6, 5, 4)).astype(np.uint8))
    labels = idx_bytes(rng.integers(0, 10, 6).astype(np.uint8))
    seeds = [gzip.compress(s, mtime=0) if compress else s for s in (images, labels)]

    def read(path):
        array = data.read_idx(path, max_bytes=1 << 20)
        assert array.dtype == np.uint8 and array.size <= 1 << 20

    fuzz(tmp_path, seeds, IDX_TOKENS, read, seed=20 + compress)
