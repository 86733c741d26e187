"""Data: loaders, IDX files, MNIST (local and downloaded), built-in and generated sets, transforms."""

import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import data
from chainrule.data import datasets as ds

# -- DataLoader ----------------------------------------------------------------------------------


def test_loader_batches_cover_the_data_once_per_epoch():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    loader = data.DataLoader((x, y), batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert isinstance(batches[0][0], cr.Tensor)
    seen = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    second = np.concatenate([b[1].numpy() for b in loader])
    assert list(second) != list(seen)  # a new order each epoch
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in loader.epoch(0)]), seen)


def test_shuffling_ignores_and_keeps_the_global_random_state():
    x = np.arange(20)
    cr.manual_seed(1)
    a = np.concatenate([b[0].numpy() for b in data.DataLoader((x,), 5, shuffle=True, seed=7)])
    state = cr.randn(1).numpy()
    cr.manual_seed(99)
    b = np.concatenate([b[0].numpy() for b in data.DataLoader((x,), 5, shuffle=True, seed=7)])
    np.testing.assert_array_equal(a, b)
    cr.manual_seed(1)
    loader = data.DataLoader((x,), 5, shuffle=True, seed=7)
    list(loader)
    np.testing.assert_array_equal(cr.randn(1).numpy(), state)


def test_batches_are_new_arrays_so_changing_one_leaves_the_data_alone():
    x = np.zeros((100, 3), dtype=np.float32)
    batch = next(iter(data.DataLoader((x,), batch_size=10)))[0]
    assert not np.shares_memory(batch.numpy(), x)  # as PyTorch's stacked batches


def test_full_batch_and_drop_last():
    x = np.arange(10)
    assert len(data.DataLoader((x,), batch_size=None)) == 10  # batching off, as in PyTorch
    assert len(data.DataLoader((x,), batch_size=3, drop_last=True)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader((x,), batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        data.TensorDataset(np.zeros(3), np.zeros(4))


def test_item_wise_datasets_are_stacked():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i], dtype=np.float32), i * i

    (x, y) = next(iter(data.DataLoader(Squares(), batch_size=5)))
    assert x.shape == (5, 1) and y.numpy().tolist() == [0, 1, 4, 9, 16]


# -- IDX and MNIST -------------------------------------------------------------------------------


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 256, (3, 4, 5)).astype(np.uint8)
    write_idx(tmp_path / "a", array, compress)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), array)


def test_corrupt_idx_files_are_named(tmp_path):
    array = np.zeros((3, 4), dtype=np.uint8)
    write_idx(tmp_path / "short", array)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-2])
    with pytest.raises(data.DataFileError, match="short.*truncated"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01\x02\x03\x04" + bytes(20))
    with pytest.raises(data.DataFileError, match="magic.*bad magic"):
        data.read_idx(tmp_path / "magic")
    write_idx(tmp_path / "bad.gz", np.arange(5000).reshape(50, 100) % 251, compress=True)
    (tmp_path / "bad.gz").write_bytes((tmp_path / "bad.gz").read_bytes()[:200])
    with pytest.raises(data.DataFileError, match="bad.gz.*gzip"):
        data.read_idx(tmp_path / "bad.gz")


def test_load_mnist_from_a_folder(mnist_dir):
    (x, y), (xt, yt) = data.load_mnist(mnist_dir)
    assert x.shape == (1000, 28, 28) and x.dtype == np.uint8 and y.shape == (1000,)
    assert xt.shape == (200, 28, 28) and yt.shape == (200,)
    assert 30 < x.mean() < 37  # MNIST's mean pixel is 33.3
    assert set(np.unique(y)) == set(range(10))
    assert y[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's first training labels


@pytest.mark.slow
def test_load_the_full_mnist(full_mnist_dir):
    (x, y), (xt, yt) = data.load_mnist(full_mnist_dir)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert x.mean() == pytest.approx(33.32, abs=0.01)
    assert set(np.unique(y)) == set(range(10))


def test_missing_mnist_names_the_folder_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"train-images-idx3-ubyte.*{tmp_path}.*download"):
        data.load_mnist(tmp_path)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_mirror(tmp_path, mnist_dir, monkeypatch):
    """An HTTP server on 127.0.0.1 serving a copy of the MNIST subset (and one corrupted file);
    the expected SHA-256 are the subset's."""
    hashes = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in mnist_dir.glob("*.gz")}
    monkeypatch.setitem(ds.SOURCES, "mnist", {**ds.SOURCES["mnist"], "sha256": hashes})
    served = tmp_path / "served"
    served.mkdir()
    for f in mnist_dir.iterdir():
        shutil.copy(f, served / f.name)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in served.iterdir():
        shutil.copy(f, corrupt / f.name)
    (corrupt / "train-labels-idx1-ubyte.gz").write_bytes(b"not mnist")
    handler = lambda *a, **k: QuietHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield f"{base}/served/", f"{base}/corrupt/"
    server.shutdown()


def test_download_checks_sha256_and_writes_into_the_cache(tmp_path, local_mirror, monkeypatch):
    good, corrupt = local_mirror
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))
    with pytest.raises(data.DataFileError, match="SHA-256 mismatch"):
        data.load_mnist(download=True, mirrors=[corrupt])
    cache = tmp_path / "cache" / "mnist"
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no partial files left
    (x, y), _ = data.load_mnist(download=True, mirrors=["http://127.0.0.1:9/unreachable/", good])
    assert x.shape == (1000, 28, 28)
    for name, sha in ds.SOURCES["mnist"]["sha256"].items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == sha


# -- built-in and generated sets -----------------------------------------------------------------


def test_builtin_sets():
    x, y = data.load_digits()
    assert x.shape == (1797, 8, 8) and y.max() == 9 and x.max() == 16
    faces, labels = data.load_faces()
    assert faces.shape == (200, 25, 25) and labels.sum() == 100 and labels[0] == 1


@pytest.mark.parametrize("make", [data.spirals, data.moons, data.circles, data.xor, data.blobs])
def test_generated_sets_are_seeded_2d_classification(make):
    x, y = make(n=200, seed=1)
    assert x.shape == (200, 2) and x.dtype == np.float32 and y.shape == (200,)
    assert len(np.unique(y)) >= 2
    np.testing.assert_array_equal(make(n=200, seed=1)[0], x)


# -- transforms ----------------------------------------------------------------------------------


def test_transforms():
    images = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    np.testing.assert_allclose(data.scale(images), [[0, 1], [0.2, 0.4]])
    train = np.array([[1.0, 2.0], [3.0, 4.0]])
    s = data.Standardizer.fit(train)
    assert s(train).mean() == pytest.approx(0) and s(train).std() == pytest.approx(1)
    np.testing.assert_allclose(s(np.array([[2.5, 2.5]])), [[0.0, 0.0]], atol=1e-6)
    assert data.Standardizer.from_dict(s.to_dict()).mean == pytest.approx(s.mean)
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError):
        data.one_hot(np.array([3]), 3)
    np.testing.assert_array_equal(data.one_vs_rest(np.array([7, 1, 7]), 7), [1, 0, 1])


def test_train_val_split_is_seeded_and_stratified():
    x, y = np.arange(100), np.repeat([0, 1], [80, 20])
    (xt, yt), (xv, yv) = data.train_val_split(x, y, val_fraction=0.25, seed=0, stratify=y)
    assert len(xv) == 25 and (yv == 1).sum() == 5
    assert sorted(np.concatenate([xt, xv])) == list(range(100))
    again = data.train_val_split(x, y, val_fraction=0.25, seed=0, stratify=y)
    np.testing.assert_array_equal(again[1][0], xv)


def test_the_library_never_reads_the_shared_folder():
    source = Path(cr.__file__).parent
    for path in source.rglob("*.py"):
        assert "shared/data" not in path.read_text(), path
