"""The playground's image mode in a real browser (Playwright driving headless Chromium, as in
test_playground_browser.py): draw a digit and get an answer, train and watch it change, click a
neuron and a feature map, upload two generated classes and train "is it X or not", and an upload
that is refused while the server keeps serving."""

import io
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

import chainrule as cr
from chainrule.playground.registry import Registry
from chainrule.playground.server import PlaygroundServer
from test_playground_browser import Page, browser  # noqa: F401 - the browser fixture

MNIST = cr.data.MNIST_SUBSET


@pytest.fixture(scope="module")
def server():
    srv = PlaygroundServer("127.0.0.1", 0, Registry(grace=2.0, data_dir=str(MNIST)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.stop()


@pytest.fixture
def images_page(browser, server):  # noqa: F811 - the browser fixture imported above
    opened = Page(browser, server, "images")
    yield opened
    opened.close()


def draw_stroke(p, points):
    """Drag the mouse over the drawing canvas through ``points`` (fractions of its size)."""
    box = p.page.locator("#draw").bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    p.page.mouse.move(*at[0])
    p.page.mouse.down()
    for x, y in at[1:]:
        p.page.mouse.move(x, y, steps=6)
    p.page.mouse.up()


def play_until(p, condition: str):
    """Press play, wait for a frame that says it plays, then for ``condition``, and pause."""
    p.page.click("#play")
    p.wait("window.playground.frame.playing === true")
    p.wait(condition, timeout=30)
    p.page.click("#play")
    p.wait("window.playground.frame.playing === false")


def test_draw_a_digit_train_and_the_answer_changes(images_page):
    p = images_page
    ring = np.linspace(0, 2 * np.pi, 25)
    draw_stroke(p, list(zip(0.5 + 0.25 * np.sin(ring), 0.5 - 0.35 * np.cos(ring))))  # a "0"
    p.wait("window.playground.inside !== null")
    before = p.js("window.playground.inside")
    assert len(before["probabilities"]) == 10 and "as digits was made" in before["prepared"]
    assert p.page.text_content("#answer").startswith(before["answer"])
    shapes = [layer["shape"] for layer in before["layers"]]
    assert shapes == [[32], [32], [10]]  # every layer (Flatten passes its input on)
    assert p.page.locator("#bars .bar-row").count() == 10
    play_until(p, "window.playground.frame.test.accuracy >= 0.95")
    history = p.frame()["history"]
    assert history["val_accuracy"][-1] > history["val_accuracy"][0] + 0.5
    p.js("window.playground.view.refresh().then(() => true)")  # the answer of the last weights
    p.wait("!window.playground.view.busy")  # (a request on its way asks once more when done)
    after = p.js("window.playground.inside")
    change = np.abs(np.subtract(after["probabilities"], before["probabilities"])).max()
    assert change > 0.2 and after["answer"] == "0"
    assert "95% test accuracy after" in p.page.text_content("#speed")
    p.page.select_option("#backprop-label", "7")  # one backward pass, as if it were a 7
    p.page.click("#backprop")
    p.wait("window.playground.inside.backprop && window.playground.inside.backprop.label === 7")
    assert p.page.locator("#layers canvas.gradient").count() == 3
    assert "as if it were 7" in p.page.text_content("#backprop-text")
    assert p.page.locator("#first-layer canvas").count() == 16
    assert p.page.locator("#confusion tr").count() == 11
    assert p.errors == []


def test_click_a_neuron_then_a_feature_map(images_page):
    p = images_page
    p.page.click("#samples canvas[data-sample='3']")  # a test image instead of a drawing
    p.wait("window.playground.inside !== null")
    p.page.click("#layers canvas.output[data-layer='1']", position={"x": 5, "y": 5})  # neuron 0
    p.wait("window.playground.inside.neuron && window.playground.inside.neuron.kind === 'sum'")
    neuron = p.js("window.playground.inside.neuron")
    text = p.page.text_content("#neuron-view")
    assert "neuron 0: z = " in text and "then the activation: ReLU()" in text
    assert p.page.locator("#neuron-view canvas.terms").count() == 1  # weights over the input
    assert p.page.locator("#neuron-view tr").count() == len(neuron["terms"]) + 4
    p.page.click("#networks [data-choice=cnn]")
    p.wait("window.playground.data.layers.length === 10")
    p.wait("window.playground.inside && window.playground.inside.layers.length === 9")
    p.page.click(
        "#layers canvas.output[data-layer='0'][data-channel='2']", position={"x": 28, "y": 28}
    )
    p.wait("window.playground.inside.neuron && window.playground.inside.neuron.kind === 'kernel'")
    kernel = p.js("window.playground.inside.neuron")
    assert kernel["index"] == [2, 4, 4]
    assert "map 2 at row 4, column 4" in p.page.text_content("#neuron-view")
    assert p.errors == []


def test_open_a_picture_of_ones_own(images_page):
    p = images_page
    paper = Image.new("L", (90, 150), 255)  # dark ink on light paper, not square
    ImageDraw.Draw(paper).ellipse([15, 20, 75, 130], outline=0, width=9)
    buffer = io.BytesIO()
    paper.save(buffer, format="PNG")
    picture = {"name": "zero.png", "mimeType": "image/png", "buffer": buffer.getvalue()}
    p.page.locator("#open-picture").set_input_files([picture])
    p.wait("window.playground.inside !== null")
    assert p.js("window.playground.inside.prepared").startswith("inverted (light background)")
    assert p.errors == []


def test_mnist_from_the_data_folder(images_page):
    p = images_page
    p.page.click("#datasets [data-choice=mnist]")
    p.wait("window.playground.data.shape[1] === 28")
    assert p.js("window.playground.data.train") == 1000  # the test subset's training images
    p.page.click("#samples canvas[data-sample='0']")
    p.wait("window.playground.inside !== null && window.playground.inside.shape[1] === 28")
    assert "centre of mass" in p.js("window.playground.inside.prepared")
    p.page.click("#step")
    p.wait("window.playground.frame.epoch === 1")
    assert p.frame()["test"]["accuracy"] > 0.5
    assert p.errors == []


def png_file(name: str, level: int, seed: int) -> dict:
    """A generated 24x24 picture, a flat grey with noise, as a file for the upload input."""
    pixels = np.clip(level + np.random.default_rng(seed).normal(0, 12, (24, 24)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return {"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()}


def test_upload_two_classes_and_train_is_it_x(images_page):
    p = images_page
    p.page.click("#datasets [data-choice=upload]")
    p.wait("!document.getElementById('upload').hidden")
    inputs = p.page.locator("#upload-classes .class-files")
    p.page.locator("#upload-classes .class-name").nth(1).fill("night")
    inputs.nth(0).set_input_files([png_file(f"day{i}.png", 210, i) for i in range(4)])
    inputs.nth(1).set_input_files([png_file(f"night{i}.png", 40, 10 + i) for i in range(4)])
    p.page.click("#send-images")
    p.wait("window.playground.data.classes.join() === 'class A,night'")
    p.page.select_option("#positive", "1")
    p.wait("window.playground.data.classes.join() === 'not night,night'")
    assert p.page.text_content("#upload-text") == "class A: 4, night: 4 images"
    play_until(
        p, "window.playground.frame.epoch >= 3 && window.playground.frame.test.accuracy === 1"
    )
    assert p.js("window.playground.data.shape") == [1, 16, 16]
    assert p.errors == []


def test_bad_uploads_are_named_and_the_server_keeps_serving(images_page, server):
    p = images_page
    p.page.click("#datasets [data-choice=upload]")
    inputs = p.page.locator("#upload-classes .class-files")
    broken = {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n junk"}
    inputs.nth(0).set_input_files([png_file("a.png", 200, 0), broken])
    inputs.nth(1).set_input_files([png_file(f"b{i}.png", 40, i) for i in range(2)])
    p.page.click("#send-images")
    p.wait("document.getElementById('error').textContent.startsWith('broken.png: not a readable')")
    buffer = io.BytesIO()
    Image.new("L", (1500, 1500)).save(buffer, format="PNG")
    inputs.nth(0).set_input_files(
        [
            png_file("a.png", 200, 0),
            {"name": "huge.png", "mimeType": "image/png", "buffer": buffer.getvalue()},
        ]
    )
    p.page.click("#send-images")
    p.wait("document.getElementById('error').textContent.startsWith('huge.png: 1500x1500 pixels')")
    assert p.js("window.playground.data.classes.length") == 10  # still the digits' run
    other = Page(p.page.context.browser, server)  # the points page still works
    assert other.js("window.playground.data.train.length") > 0
    other.close()
    assert all("status of 400" in e for e in p.errors), p.errors  # the refused uploads only
