"""Regression data: the generated line, plane and bumps, scikit-learn's diabetes, and California
housing (from a local archive, a local mirror, and offline)."""

import http.server
import io
import shutil
import tarfile
import threading

import numpy as np
import pytest

from chainrule import data
from chainrule.data import datasets as ds


def test_line_scatters_around_y_equals_a_x_plus_b():
    x, y = data.line(n=2000, a=-1.5, b=4.0, noise=0.3, seed=1)
    assert x.shape == (2000, 1) and y.shape == (2000,)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 4.0
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    # standard errors of a and b here are about 0.006 and 0.013: 5 of them is a safe margin
    assert a == pytest.approx(-1.5, abs=0.03) and b == pytest.approx(4.0, abs=0.07)
    residual = y - (a * x[:, 0] + b)
    assert residual.std() == pytest.approx(0.3, rel=0.1)
    again, _ = data.line(n=2000, a=-1.5, b=4.0, noise=0.3, seed=1)
    other, _ = data.line(n=2000, a=-1.5, b=4.0, noise=0.3, seed=2)
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, other)
    x, y = data.line(n=5, a=2.0, b=1.0, noise=0.0, x_range=(-1.0, 1.0))
    np.testing.assert_allclose(y, 2 * x[:, 0] + 1, rtol=1e-6)
    assert -1 <= x.min() and x.max() <= 1


def test_plane_and_bumps_are_the_playgrounds_regression_sets():
    points, y = data.plane(n=3000, noise=0.05, seed=0)
    assert points.shape == (3000, 2) and y.shape == (3000,)
    assert np.abs(points).max() <= 1
    assert (y - points.sum(axis=1) / 2).std() == pytest.approx(0.05, rel=0.1)

    points, y = data.bumps(n=500, noise=0.0, seed=0)
    assert points.shape == (500, 2) and np.abs(y).max() <= 1.05
    # at each centre the value is that bump's sign (the others are far enough to add < 0.05)
    centres = np.array(ds.BUMP_CENTRES, dtype=np.float32)
    width = 0.2
    squared = ((centres[:, None] - centres[None]) ** 2).sum(axis=2)
    at_centres = (np.array(ds.BUMP_SIGNS) * np.exp(-squared / (2 * width**2))).sum(axis=1)
    np.testing.assert_allclose(at_centres, ds.BUMP_SIGNS, atol=0.05)
    near = np.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1)
    close = np.linalg.norm(points - centres[near], axis=1) < 0.05
    assert close.any()
    np.testing.assert_allclose(y[close], np.array(ds.BUMP_SIGNS)[near[close]], atol=0.1)
    noisy = data.bumps(n=500, noise=0.1, seed=0)[1]
    assert (noisy - y).std() == pytest.approx(0.1, rel=0.15)


@pytest.mark.parametrize("make", [data.line, data.plane, data.bumps])
def test_generated_sets_refuse_a_bad_size(make):
    with pytest.raises(ValueError, match="n must be a positive"):
        make(n=0)


def test_diabetes_comes_with_scikit_learn():
    x, y = data.load_diabetes()
    assert x.shape == (442, 10) and y.shape == (442,) and x.dtype == np.float32
    assert 25 <= y.min() and y.max() <= 346


# -- California housing ----------------------------------------------------------------------------

# Four districts as they appear in the archive: longitude, latitude, median age, total rooms,
# total bedrooms, population, households, median income, median house value.
ROWS = [
    [-122.23, 37.88, 41.0, 880.0, 129.0, 322.0, 126.0, 8.3252, 452600.0],
    [-122.22, 37.86, 21.0, 7099.0, 1106.0, 2401.0, 1138.0, 8.3014, 358500.0],
    [-122.24, 37.85, 52.0, 1467.0, 190.0, 496.0, 177.0, 7.2574, 352100.0],
    [-121.09, 39.48, 25.0, 1665.0, 374.0, 845.0, 330.0, 1.5603, 78100.0],
]


def fake_archive(folder, rows=ROWS, member="CaliforniaHousing/cal_housing.data"):
    """A small cal_housing.tgz laid out like the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows).encode()
    path = folder / "cal_housing.tgz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return path


def test_california_from_an_archive_matches_scikit_learns_fetcher(tmp_path, monkeypatch):
    archive = fake_archive(tmp_path / "ours")
    x, y = data.load_california(root=tmp_path / "ours")
    assert x.shape == (4, 8) and y.shape == (4,) and x.dtype == np.float32
    assert y[0] == pytest.approx(4.526) and x[0, 0] == pytest.approx(8.3252)
    assert x[0, 2] == pytest.approx(880 / 126)  # rooms per household

    # scikit-learn's own fetcher, handed the same archive instead of downloading it
    from sklearn.datasets import _california_housing as sk

    def fetch_remote(remote, dirname, **_):
        return shutil.copy(archive, tmp_path / "sk" / remote.filename)

    (tmp_path / "sk").mkdir()
    monkeypatch.setattr(sk, "_fetch_remote", fetch_remote)
    sk_x, sk_y = sk.fetch_california_housing(data_home=tmp_path / "sk", return_X_y=True)
    np.testing.assert_allclose(x, sk_x, rtol=1e-6)
    np.testing.assert_allclose(y, sk_y, rtol=1e-6)
    assert list(sk.fetch_california_housing(data_home=tmp_path / "sk").feature_names) == (
        ds.CALIFORNIA_FEATURES
    )


def test_california_offline_fails_with_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as missing:
        data.load_california()
    message = str(missing.value)
    assert "\n" not in message and "download=True" in message and str(tmp_path) in message
    monkeypatch.setitem(ds.CALIFORNIA, "mirrors", ["http://127.0.0.1:9/files/5976036#"])
    with pytest.raises(data.DataFileError) as offline:
        data.load_california(download=True)
    message = str(offline.value)
    assert "\n" not in message and "could not download" in message and "offline" in message
    assert "--data-dir FOLDER" in message  # how to do without the network
    assert not list((tmp_path / "california").glob("*"))  # nothing half-written left behind


def test_california_downloads_through_a_mirror_into_the_cache(tmp_path, monkeypatch):
    served = tmp_path / "served"
    archive = fake_archive(served / "files")
    (served / "files" / "5976036").write_bytes(archive.read_bytes())
    sha256 = data.download.sha256_of(archive)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: Quiet(*a, directory=str(served), **k)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/files/5976036#"
        monkeypatch.setitem(ds.CALIFORNIA, "mirrors", [base])
        monkeypatch.setitem(ds.CALIFORNIA, "sha256", sha256)
        monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))
        x, y = data.load_california(download=True)
    finally:
        server.shutdown()
    assert (tmp_path / "cache" / "california" / "cal_housing.tgz").is_file()
    assert x.shape == (4, 8) and y[3] == pytest.approx(0.781)
    x_again, _ = data.load_california()  # from the cache, no server needed
    np.testing.assert_array_equal(x, x_again)


def test_a_damaged_california_archive_is_named(tmp_path):
    (tmp_path / "cal_housing.tgz").write_bytes(b"not an archive")
    with pytest.raises(data.DataFileError, match="not the housing archive"):
        data.load_california(root=tmp_path)
    fake_archive(tmp_path, rows=[[1.0, 2.0, 3.0]])
    with pytest.raises(data.DataFileError, match="9 numeric columns"):
        data.load_california(root=tmp_path)
    fake_archive(tmp_path, member="CaliforniaHousing/other.data")
    with pytest.raises(data.DataFileError, match="not the housing archive"):
        data.load_california(root=tmp_path)
