"""The playground's image mode without a browser: its setup and data, the user's uploaded
classes (checked and capped, every bad picture named), training, the inside view's numbers
against the network's own, and its routes over HTTP."""

import base64
import http.client
import io
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import chainrule as cr
from chainrule.cli import main
from chainrule.playground import images as image_data
from chainrule.playground.image_export import exported_image_model, write_image_run_folder
from chainrule.playground.image_run import ImageTrainer, data_message, frame_message
from chainrule.playground.image_script import image_script
from chainrule.playground.images import (
    ImageSetup,
    build_images,
    decode_picture,
    read_uploaded_images,
)
from chainrule.playground.inside_view import inside
from chainrule.playground.points import PlaygroundError
from chainrule.playground.registry import Registry
from chainrule.playground.server import PlaygroundServer
from chainrule.tensor import Tensor
from test_playground_server import call, new_session  # noqa: E402 - the HTTP helpers

MNIST = cr.data.MNIST_SUBSET


def png(array) -> str:
    """A grey PNG file of ``array`` (levels 0..255), as base64 text."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def stroke(size: int = 140) -> str:
    """A drawn "1": a white vertical stroke on black."""
    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).line([(size // 2, size // 6), (size // 2, 5 * size // 6)], 255, 12)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def two_classes(per_class: int = 4) -> list:
    """Generated pictures of two classes: bright squares and dark squares, 20x20."""
    rng = np.random.default_rng(0)
    files = []
    for name, level in (("bright", 220), ("dark", 30)):
        for i in range(per_class):
            pixels = np.clip(level + rng.normal(0, 10, (20, 20)), 0, 255)
            files.append({"class": name, "name": f"{name}{i}.png", "data": png(pixels)})
    return files


# -- setup and data ----------------------------------------------------------------------------


def test_setup_defaults_and_every_bad_setting_named():
    setup = ImageSetup.from_dict({"mode": "images"})
    assert (setup.dataset, setup.network, setup.hidden, setup.optimizer) == (
        "digits",
        "mlp",
        [32],
        "adam",
    )
    refused = {
        "dataset": ({"dataset": "cifar"}, "dataset must be one of"),
        "hidden": ({"hidden": [500]}, "dense layer 1: 1 to 128 neurons"),
        "layers": ({"hidden": [8, 8, 8, 8]}, "at most 3"),
        "channels": ({"network": "cnn", "channels": [99]}, "convolution 1: 1 to 16 channels"),
        "no conv": ({"network": "cnn", "channels": []}, "needs at least one convolution"),
        "positive": ({"positive": 10}, "X must be a class from 0 to 9"),
        "batch": ({"batch": 0}, "batch size (batch) must be a whole number"),
        "n": ({"n": 10**9}, "MNIST training images (n)"),
        "unknown": ({"points": []}, "unknown setting"),
        "upload": ({"dataset": "upload"}, "upload a few images"),
        "lr": ({"lr": -1}, "learning rate"),
    }
    for name, (values, message) in refused.items():
        with pytest.raises(PlaygroundError, match=message.replace("(", r"\(").replace(")", r"\)")):
            ImageSetup.from_dict({"mode": "images", **values})
        assert name  # every case ran


def test_digits_mnist_and_is_it_x():
    digits = build_images(ImageSetup.from_dict({"mode": "images"}), None, None)
    assert digits.shape == (1, 8, 8) and digits.x_train.dtype == np.float32
    assert 0 <= digits.x_train.min() and digits.x_train.max() <= 1
    assert len(digits.x_train) + len(digits.x_test) == 1797
    threes = build_images(ImageSetup.from_dict({"mode": "images", "positive": 3}), None, None)
    assert threes.classes == ["not 3", "3"]
    assert set(np.unique(threes.y_train)) == {0, 1}
    assert (threes.y_train == 1).sum() == (digits.y_train == 3).sum()
    setup = ImageSetup.from_dict({"mode": "images", "dataset": "mnist", "n": 300})
    mnist = build_images(setup, None, str(MNIST))
    assert mnist.shape == (1, 28, 28) and len(mnist.x_train) == 300 and len(mnist.x_test) == 60
    assert mnist.prepared_as == "mnist"
    with pytest.raises(PlaygroundError, match="--data-dir"):
        build_images(setup, None, str(MNIST / "nowhere"))


def test_uploaded_classes_and_their_refusals():
    uploaded = read_uploaded_images(two_classes())
    assert uploaded.classes == ["bright", "dark"]
    assert uploaded.images.shape == (8, 1, 16, 16)
    assert uploaded.summary()["counts"] == [4, 4]
    setup = ImageSetup.from_dict({"mode": "images", "dataset": "upload", "positive": 1}, uploaded)
    found = build_images(setup, uploaded, None)
    assert found.classes == ["not dark", "dark"] and len(found.x_test) == 2
    good = two_classes()
    huge = Image.new("L", (2000, 2000))
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")  # a few KiB that decode to 4 megapixels
    whole = base64.b64decode(good[0]["data"])
    cut = base64.b64encode(whole[: len(whole) // 2]).decode()  # a truncated file
    cases = {
        "corrupt": ([{**good[0], "name": "bad.png", "data": cut}], "bad.png: not a readable"),
        "not base64": ([{**good[0], "name": "x.png", "data": "%%%"}], "x.png: not base64"),
        "pixels": (
            [{**good[0], "name": "huge.png", "data": base64.b64encode(buffer.getvalue()).decode()}],
            "huge.png: 2000x2000 pixels",
        ),
        "bytes": (
            [{**good[0], "name": "big.png", "data": "A" * (400 << 10)}],
            "big.png: more than 256 KiB",
        ),
        "count": (good * 20, "at most 120"),
        "one class": (good[:4], "at least 2 classes"),
        "no class": ([{**good[0], "class": ""}], "no class given"),
        "not a list": ("nope", "images: send"),
    }
    for name, (files, message) in cases.items():
        files = files if isinstance(files, str) else [*files, *(good if name == "corrupt" else [])]
        with pytest.raises(PlaygroundError, match=message):
            read_uploaded_images(files)


# -- training and the inside view ----------------------------------------------------------------


def test_mlp_learns_the_digits_and_the_frames_say_so():
    setup = ImageSetup.from_dict({"mode": "images"})
    run = ImageTrainer(setup, build_images(setup, None, None))
    assert run.start["val_accuracy"] < 0.3
    for _ in range(4):
        run.train_epoch()
    assert run.history[-1]["val_accuracy"] > 0.9
    frame = frame_message(run, False, None)
    assert frame["epoch"] == 4 and len(frame["history"]["val_accuracy"]) == 5
    matrix = np.array(frame["confusion"])
    assert matrix.shape == (10, 10) and matrix.sum() == len(run.images.x_test)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(frame["test"]["accuracy"])
    assert len(frame["wrong"]) == min(12, matrix.sum() - np.trace(matrix))
    assert frame["first_layer"]["count"] == 16 and frame["first_layer"]["size"] == [8, 8]
    data = data_message(run)
    assert [layer["shape"] for layer in data["layers"]] == [[64], [32], [32], [10]]


def test_inside_view_matches_the_network_and_the_sum_adds_up():
    setup = ImageSetup.from_dict({"mode": "images", "network": "cnn", "channels": [3]})
    run = ImageTrainer(setup, build_images(setup, None, None))
    run.train_epoch()
    answer = inside(run, stroke(), {"layer": 4, "index": [7]})
    seen = np.frombuffer(base64.b64decode(answer["input"]), np.uint8).reshape(8, 8) / 255
    run.model.eval()
    logits = run.model(Tensor(seen[None, None].astype(np.float32))).detach().numpy()[0]
    assert np.allclose(answer["outputs"], logits, atol=2e-3, rtol=1e-3)
    assert (
        answer["prediction"]
        == int(np.argmax(logits))
        == answer["probabilities"].index(max(answer["probabilities"]))
    )
    names = [layer["name"] for layer in answer["layers"]]
    assert names[0].startswith("Conv2d") and "Flatten()" not in names  # passes its input on
    neuron = answer["neuron"]
    listed = sum(t["product"] for t in neuron["terms"])
    assert listed + neuron["rest"] + neuron["bias"] == pytest.approx(neuron["total"], abs=1e-4)
    assert neuron["activation"]["value"] == pytest.approx(max(neuron["total"], 0), abs=1e-4)
    # a click on the ReLU explains the sum before it
    relu = inside(run, stroke(), {"layer": 5, "index": [7]})["neuron"]
    assert relu["layer"] == 4 and relu["total"] == pytest.approx(neuron["total"])
    kernel = inside(run, stroke(), {"layer": 0, "index": [2, 3, 4]})["neuron"]
    assert kernel["kind"] == "kernel" and np.shape(kernel["products"]) == (1, 3, 3)
    conv = run.model[0](Tensor(seen[None, None].astype(np.float32))).detach().numpy()[0]
    assert kernel["total"] == pytest.approx(float(conv[2, 3, 4]), abs=1e-3)
    for neuron, message in (
        ({"layer": 99, "index": [0]}, "layer must be"),
        ({"layer": 4, "index": [40]}, "index must be within"),
        ({"layer": 2, "index": [0, 0, 0]}, "no weighted sums"),
        ("all", "neuron: send"),
    ):
        with pytest.raises(PlaygroundError, match=message):
            inside(run, stroke(), neuron)
    with pytest.raises(PlaygroundError, match="the drawing: .*all one grey"):
        inside(run, png(np.zeros((20, 20))))


def test_one_backward_pass_on_the_drawing():
    setup = ImageSetup.from_dict({"mode": "images"})
    run = ImageTrainer(setup, build_images(setup, None, None))
    run.train_epoch()
    before = [p.detach().numpy().copy() for p in run.model.parameters()]
    answer = inside(run, stroke(), None, 7)
    assert sorted(answer["backprop"]["layers"]) == [1, 2, 3]  # as the layers shown
    p = np.asarray(answer["probabilities"])
    assert answer["backprop"]["loss"] == pytest.approx(-np.log(p[7]), rel=1e-3)
    # at the logits dJ/dz = softmax(z) - onehot(7): largest size at class 7 (p - 1 < 0)
    gradient = answer["backprop"]["layers"][3]
    values = np.frombuffer(base64.b64decode(gradient["map"]), np.uint8)
    assert values.argmin() == 7 and gradient["scale"] == pytest.approx(1 - p[7], rel=1e-3)
    after = [p.detach().numpy() for p in run.model.parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # nothing changed
    assert all(p.grad is None or not p.grad.numpy().any() for p in run.model.parameters())
    with pytest.raises(PlaygroundError, match="backprop: the class must be 0 to 9"):
        inside(run, stroke(), None, 10)


def test_the_script_repeats_the_run(tmp_path):
    setup = ImageSetup.from_dict(
        {"mode": "images", "network": "cnn", "channels": [3], "positive": 2, "optimizer": "sgd"}
    )
    run = ImageTrainer(setup, build_images(setup, None, None))
    run.train_epoch()
    script = tmp_path / "train.py"
    script.write_text(image_script(run))
    source = str(Path(__file__).parents[1] / "src")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": source},
    )
    assert done.returncode == 0, done.stderr
    row = run.history[-1]
    assert done.stdout.splitlines() == [
        f"after 1 epochs: train loss {row['loss']:.8g}, accuracy {row['accuracy']:.4f}",
        f"after 1 epochs: test loss {row['val_loss']:.8g}, accuracy {row['val_accuracy']:.4f}",
    ]
    uploaded = read_uploaded_images(two_classes())
    own = ImageSetup.from_dict({"mode": "images", "dataset": "upload"}, uploaded)
    with pytest.raises(PlaygroundError, match="your own images stay on the page"):
        image_script(ImageTrainer(own, build_images(own, uploaded, None)))


def test_the_run_folder_is_one_of_trains(tmp_path, capsys):
    """predict, evaluate and info read the exported folder: "is it 7 or not" with a CNN."""
    setup = ImageSetup.from_dict({"mode": "images", "network": "cnn", "positive": 7})
    run = ImageTrainer(setup, build_images(setup, None, None))
    run.train_epoch()
    run.train_epoch()
    out = write_image_run_folder(run, tmp_path / "run")
    seven = Image.new("L", (140, 140), 255)  # dark ink on white, as a photo of paper
    ImageDraw.Draw(seven).line([(30, 30), (110, 30), (60, 125)], 0, 12)
    seven.save(tmp_path / "seven.png")
    assert main(["predict", str(out), str(tmp_path / "seven.png")]) == 0
    assert "inverted (light background)" in capsys.readouterr().out
    assert main(["evaluate", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"test accuracy {run.history[-1]['val_accuracy']:.4f}" in shown
    assert main(["info", str(out)]) == 0
    assert "Linear(32 -> 1)" in capsys.readouterr().out  # the two logits folded into one
    logits = run.logits(run.images.x_test[:5])
    folded = exported_image_model(run)(Tensor(run.images.x_test[:5, 0])).detach().numpy()
    assert np.allclose(folded[:, 0], logits[:, 1] - logits[:, 0], atol=1e-5)
    uploaded = read_uploaded_images(two_classes())
    own = ImageSetup.from_dict({"mode": "images", "dataset": "upload"}, uploaded)
    own_run = ImageTrainer(own, build_images(own, uploaded, None))
    with pytest.raises(PlaygroundError, match="your own images stay on the page"):
        write_image_run_folder(own_run, tmp_path / "own")


def test_decode_picture_takes_a_data_url():
    grey = decode_picture("x", "data:image/png;base64," + png(np.full((3, 5), 255)))
    assert grey.shape == (3, 5) and grey.min() == 1.0


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def server():
    registry = Registry(max_sessions=3, grace=1.0, data_dir=str(MNIST))
    srv = PlaygroundServer("127.0.0.1", 0, registry)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.stop()


def wait_for_run(server, session_id, timeout=10.0):
    """Ask the inside view until the session's thread has built the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer, _ = call(
            server, "POST", f"/api/sessions/{session_id}/inside", {"picture": stroke()}
        )
        if status == 200:
            return answer
        time.sleep(0.05)
    raise AssertionError(answer)


def oversized_upload(server, path: str) -> int:
    """The status of a POST that says it brings 3 MiB (refused before a byte of it is read)."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(3 << 20))
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def test_routes_of_the_image_mode(server):
    status, page, _ = call(server, "GET", "/images")
    assert status == 200 and b"images.js" in page
    status, answer, _ = call(server, "POST", "/api/sessions")
    assert answer["choices"]["images"]["mnist"] is True
    session = new_session(server, {"mode": "images", "dataset": "mnist", "n": 200})
    answer = wait_for_run(server, session)
    assert answer["shape"] == [1, 28, 28] and len(answer["probabilities"]) == 10
    base = f"/api/sessions/{session}"
    status, answer, _ = call(server, "POST", f"{base}/upload", {"images": two_classes()})
    assert status == 200 and answer["counts"] == [4, 4]
    header_only = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(8)).decode()
    bad = [*two_classes(), {"class": "dark", "name": "broken.png", "data": header_only}]
    status, answer, _ = call(server, "POST", f"{base}/upload", {"images": bad})
    assert status == 400 and answer["error"].startswith("broken.png: not a readable image")
    assert oversized_upload(server, f"{base}/upload") == 413
    status, page, _ = call(server, "GET", "/")  # still serving the other pages
    assert status == 200 and b"main.js" in page
    status, answer, _ = call(server, "POST", f"{base}/setup", {"mode": "images", "hidden": [0]})
    assert status == 400 and "dense layer 1" in answer["error"]
    status, script, response = call(server, "GET", f"{base}/export/train.py")
    assert status == 200 and b"cr.data.load_mnist(" in script
    assert response.getheader("Content-Disposition") == 'attachment; filename="train.py"'
    status, answer, _ = call(server, "GET", f"{base}/export/run.zip")
    assert status == 409 and "train at least one epoch" in answer["error"]
    assert call(server, "POST", f"{base}/control", {"action": "step"})[0] == 200
    status, body, _ = call(server, "GET", f"{base}/export/run.zip")
    assert status == 200
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert "playground-run/model.safetensors" in names and "playground-run/train.py" in names


def test_hostile_pictures_for_the_inside_view(server):
    session = new_session(server, {"mode": "images"})
    wait_for_run(server, session)
    big = io.BytesIO()
    Image.new("L", (1200, 1000)).save(big, format="PNG")  # a few KiB, 1.2 megapixels
    cases = [
        ({"picture": 42}, "the drawing: send the picture as base64 text"),
        ({"picture": base64.b64encode(big.getvalue()).decode()}, "1200x1000 pixels"),
        ({"picture": "data:image/png;base64," + "A" * (400 << 10)}, "more than 256 KiB"),
        ({"picture": stroke(), "neuron": {"layer": "1", "index": [0]}}, "layer must be"),
        ({"picture": stroke(), "backprop": -1}, "backprop: the class must be"),
    ]
    for body, message in cases:
        status, answer, _ = call(server, "POST", f"/api/sessions/{session}/inside", body)
        assert status == 400 and message in answer["error"], answer
    status, answer, _ = call(
        server, "POST", f"/api/sessions/{session}/inside", {"picture": stroke()}
    )
    assert status == 200 and answer["answer"] in [str(k) for k in range(10)]


def test_inside_view_refused_in_the_points_mode(server):
    session = new_session(server, {"dataset": "xor"})
    time.sleep(0.2)
    status, answer, _ = call(server, "POST", f"/api/sessions/{session}/inside", {"picture": ""})
    assert status == 400 and "image mode" in answer["error"]


def test_mnist_needs_its_files(tmp_path, monkeypatch):
    assert image_data.mnist_folder(str(MNIST)) == MNIST
    assert image_data.mnist_folder(str(MNIST / "nowhere")) is None
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))  # an empty cache: the shipped subset
    assert image_data.mnist_folder(None) == cr.data.MNIST_SUBSET
