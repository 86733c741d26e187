"""The playground in a real browser: Playwright driving headless Chromium.

Chromium comes from the system (Debian's ``chromium`` package; ``.ci/run`` installs it), not
from Playwright's own download: ``CHAINRULE_CHROMIUM`` names another binary. The page's
Content-Security-Policy forbids evaluating strings, so waiting is done by polling
``page.evaluate`` (which the browser runs as its own code, not the page's).
"""

import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install 'chainrule[dev]'")
CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHAINRULE_CHROMIUM)",
        allow_module_level=True,
    )

from chainrule.cli import main  # noqa: E402
from chainrule.playground.registry import Registry  # noqa: E402
from chainrule.playground.server import PlaygroundServer  # noqa: E402
from chainrule.playground.settings import OPTIMIZERS  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server():
    srv = PlaygroundServer("127.0.0.1", 0, Registry(grace=2.0))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


class Page:
    """A page of the playground and what its console said."""

    def __init__(self, browser, server, query: str = "", ready: bool = True):
        self.context = browser.new_context(viewport={"width": 1400, "height": 950})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(server.url + query)
        if ready:
            self.wait("window.playground.data !== null && window.playground.frames > 0")

    def js(self, expression: str):
        return self.page.evaluate(f"() => {expression}")

    def wait(self, expression: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.js(expression)
            except sync_api.Error:  # the page is between two states
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"the page never got to: {expression}")

    def frame(self) -> dict:
        return self.js("window.playground.frame")

    def settled(self):
        """Wait until every setup the page sent has been answered."""
        self.js("window.playground.requests.then(() => true)")

    def drawn(self):
        """Wait until the page has drawn its newest frame (it draws at its next animation
        frame, so the page can lag the stream by one frame)."""
        self.wait(
            "window.playground.frame && document.getElementById('epoch').textContent === "
            "String(window.playground.frame.epoch).padStart(6, '0').replace(/(\\d{3})$/, ',$1')"
            " && document.getElementById('train-loss').textContent !== ''"
        )

    def train(self, epochs: int):
        """Press step until the epoch counter says ``epochs``."""
        for _ in range(epochs):
            done = self.frame()["epoch"]
            self.page.click("#step")
            self.wait(f"window.playground.frame.epoch >= {done + 1}")
        self.drawn()

    def close(self):
        self.context.close()


@pytest.fixture
def pages(browser, server):
    opened = []

    def open_page(query: str = "", ready: bool = True) -> Page:
        page = Page(browser, server, query, ready)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        page.close()


def test_change_the_data_network_and_optimizer_then_play_and_the_loss_falls(pages):
    p = pages()
    p.page.click('[data-dataset="xor"]')
    p.wait("window.playground.data.train.length === 320 && location.search.includes('xor')")
    p.page.click("#layer-controls button:first-child")  # a third hidden layer
    p.wait("window.playground.data.columns.length === 5")
    p.page.click(".column:nth-child(3) .head button:first-child")  # layer 1: a fifth neuron
    p.wait("window.playground.data.columns[1] === 5")
    p.page.select_option('select[data-layer="0"]', "relu")
    p.page.click('[data-feature="xy"] button')
    p.page.select_option("#optimizer", "adam")
    p.settled()
    p.page.fill("#lr", "0.03")
    p.page.press("#lr", "Tab")
    p.wait("window.playground.accepted.lr === 0.03")
    accepted = p.js("window.playground.accepted")
    assert accepted["hidden"] == [5, 2, 2] and accepted["activations"][0] == "relu"
    assert accepted["features"] == ["x", "y", "xy"] and accepted["optimizer"] == "adam"
    p.page.click("#play")
    p.wait("window.playground.frame.epoch >= 40")
    p.page.click("#play")
    p.wait("window.playground.frame.playing === false")
    history = p.frame()["history"]
    assert history["epoch"][0] == 0  # the curve starts at the untrained network
    losses = history["train"]
    assert losses[-1] < 0.5 * losses[0]
    p.drawn()
    assert p.page.text_content("#train-loss") == f"{p.frame()['train']['loss']:.4f}"
    epoch = f"{p.frame()['epoch']:06d}"
    assert p.page.text_content("#epoch") == f"{epoch[:3]},{epoch[3:]}"
    assert p.errors == []


PIXEL = """(([x, y]) => {
  const canvas = document.getElementById("output");
  const [[x0, x1], [y0, y1]] = window.playground.data.domain;
  const px = Math.round(((x - x0) / (x1 - x0)) * canvas.width);
  const py = Math.round(((y1 - y) / (y1 - y0)) * canvas.height);
  const near = window.playground.data.train.some(([a, b]) =>
    Math.hypot(((a - x0) / (x1 - x0)) * canvas.width - px, ((y1 - b) / (y1 - y0)) * canvas.height - py) < 8);
  return { near, rgb: Array.from(canvas.getContext("2d").getImageData(px, py, 1, 1).data.slice(0, 3)) };
})"""


def test_heatmap_pixels_on_each_side_of_a_known_boundary(pages):
    # two clouds around (-2, -2) (class 0, orange) and (2, 2) (class 1, blue): the boundary is
    # the line x + y = 0, which one neuron learns
    p = pages("?dataset=gaussians&hidden=&features=x,y&optimizer=adam&lr=0.1")
    p.train(5)
    assert p.frame()["test"]["accuracy"] > 0.97
    for (x, y), side in (((-3.0, 0.8), "orange"), ((0.8, -3.0), "orange"), ((3.0, -0.8), "blue")):
        pixel = p.page.evaluate(PIXEL, [x, y])
        assert not pixel["near"], "the sampled pixel must show the picture, not a point"
        r, g, b = pixel["rgb"]
        assert (r > b + 40) if side == "orange" else (b > r + 40), (x, y, pixel)
    for x, y in ((-0.6, -0.4), (0.6, 0.4)):  # close to the line, on either side
        r, _, b = p.page.evaluate(PIXEL, [x, y])["rgb"]
        assert (r > b) == (x + y < 0)
    assert p.errors == []


def test_adding_points_by_clicking(pages):
    p = pages("?dataset=circles")
    p.page.click('#adder [data-class="1"]')
    p.page.click("#output", position={"x": 40, "y": 60})
    p.wait("window.playground.data.added === 1")
    point = p.js("window.playground.accepted.points[0]")
    expected = p.page.evaluate(
        """(() => {
          const [[x0, x1], [y0, y1]] = window.playground.data.domain;
          return [x0 + (40 / 320) * (x1 - x0), y1 - (60 / 320) * (y1 - y0)];
        })"""
    )
    assert point[2] == 1 and point[:2] == pytest.approx(expected, abs=2e-3)
    assert p.js("window.playground.data.train.at(-1)") == pytest.approx(point, abs=1e-4)
    assert "points=" in p.page.url
    p.page.click("#clear-points")
    p.wait("window.playground.data.added === 0")
    assert p.errors == []


def test_uploading_a_csv_file(pages, tmp_path):
    rows = ["length,width,animal"]
    for i in range(60):
        cat = i % 2 == 0
        rows.append(
            f"{(i % 10) * 0.1 + (0 if cat else 3)},{(i % 7) * 0.1},{'cat' if cat else 'dog'}"
        )
    table = tmp_path / "animals.csv"
    table.write_text("\n".join(rows) + "\n")
    p = pages()
    p.page.set_input_files("#upload", str(table))
    p.wait("window.playground.data.classes.join() === 'cat,dog'")
    assert "animals.csv: 60 rows, length, width" in p.page.text_content("#file-name")
    assert p.js("window.playground.data.feature_names") == ["length", "width"]
    p.page.click("#play")
    p.wait("window.playground.frame.epoch >= 30")
    p.page.click("#play")
    p.wait("window.playground.frame.playing === false")
    assert p.frame()["train"]["accuracy"] > 0.9
    assert p.errors == []


def test_the_address_reproduces_a_setup(pages):
    p = pages()
    p.page.click('[data-dataset="spirals"]')
    p.settled()
    p.page.fill("#seed", "5")
    p.page.press("#seed", "Tab")
    p.settled()
    p.page.click("#layer-controls button:first-child")
    p.settled()
    p.page.select_option("#optimizer", "rmsprop")
    p.settled()
    p.page.fill("#l2", "0.001")
    p.page.press("#l2", "Tab")
    p.settled()
    p.page.click("#output", position={"x": 200, "y": 100})
    p.wait("window.playground.data.added === 1 && window.playground.accepted.l2 === 0.001")
    p.train(3)
    first = (p.frame()["train"], p.frame()["test"], p.js("window.playground.accepted"))
    link = p.page.url
    again = pages(link[link.index("?") :])
    assert again.js("window.playground.accepted") == first[2]
    again.train(3)
    assert (again.frame()["train"], again.frame()["test"]) == first[:2]
    assert first[2]["seed"] == 5 and first[2]["hidden"] == [4, 2, 2] and first[2]["l2"] == 0.001
    assert p.errors == [] and again.errors == []


def test_the_exports_are_a_run_folder_and_a_script(pages, tmp_path, capsys):
    p = pages("?dataset=moons&hidden=4&optimizer=adam&lr=0.03")
    p.train(4)
    with p.page.expect_download() as download:
        p.page.click("#export-run")
    archive = tmp_path / "run.zip"
    download.value.save_as(archive)
    zipfile.ZipFile(archive).extractall(tmp_path)
    run = tmp_path / "playground-run"
    query = tmp_path / "points.csv"
    query.write_text("x,y\n-1.0,0.4\n2.0,0.0\n")
    assert main(["predict", str(run), str(query)]) == 0
    answers = capsys.readouterr().out.splitlines()
    assert [a.split(": ")[1].split()[0] for a in answers] == ["0", "1"]  # the moons' two ends
    assert main(["info", str(run)]) == 0 and main(["evaluate", str(run)]) == 0
    with p.page.expect_download() as download:
        p.page.click("#export-script")
    script = tmp_path / "train.py"
    download.value.save_as(script)
    printed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    words = printed.replace(",", "").split()
    frame = p.frame()
    assert float(words[words.index("train") + 2]) == pytest.approx(frame["train"]["loss"], rel=1e-6)
    assert float(words[-1]) == pytest.approx(frame["test"]["loss"], rel=1e-6)
    assert p.errors == []


def test_bad_parameters_show_an_error_and_do_not_crash_the_server(pages, server):
    p = pages("?hidden=99,2", ready=False)
    p.wait("document.getElementById('error').textContent.includes('showing the default')")
    assert "hidden layer 1: 1 to 8 neurons, got 99" in p.page.text_content("#error")
    p.page.fill("#lr", "-1")
    p.page.press("#lr", "Tab")
    p.wait("document.getElementById('error').textContent.includes('learning rate')")
    answer = p.page.request.post(
        server.url + "api/sessions/" + p.js("window.playground.session.id") + "/setup",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 400 and "not valid JSON" in answer.json()["error"]
    assert all("status of 400" in e for e in p.errors), p.errors  # the refused requests, only
    fine = pages("?dataset=xor")
    fine.train(1)
    assert fine.errors == []


@pytest.mark.parametrize(
    "query, message",
    [
        ("?hidden=99,2", "hidden layer 1: 1 to 8 neurons, got 99"),
        ("?dataset=nosuch&lr=0.1", "dataset must be one of"),
        ("?lr=abc", "learning rate (lr) must be a number"),
        ("?colour=red", "unknown setting"),
    ],
)
def test_a_bad_value_in_a_link_shows_the_server_s_message_and_a_network(pages, query, message):
    p = pages(query)  # ready: the defaults' network is drawn and streaming
    p.wait("document.getElementById('error').textContent.includes('showing the default')")
    shown = p.page.text_content("#error")
    assert shown.startswith("this link's setup was refused: ") and message in shown, shown
    assert p.js("window.playground.data.columns") == [2, 4, 2, 2]
    p.train(1)  # play and step work: no "no setup yet"
    assert "no setup yet" not in p.page.text_content("#error")
    assert all("status of 400" in e for e in p.errors), p.errors  # the refused link, only


def test_tabs_are_independent(pages):
    first, second = pages("?dataset=circles"), pages("?dataset=xor&hidden=3")
    first.page.click("#play")
    first.wait("window.playground.frame.epoch >= 20")
    assert second.frame()["epoch"] == 0
    assert second.js("window.playground.data.columns") == [2, 3, 2]
    first.page.click("#play")
    second.train(2)
    assert first.js("window.playground.data.columns") == [2, 4, 2, 2]


def test_hovering_shows_a_neuron_large_and_a_weight_s_value(pages):
    p = pages("?dataset=circles&hidden=3")
    p.train(1)
    p.page.hover(".column:nth-child(3) .neuron")  # hidden layer 1, neuron 1
    p.wait("!document.getElementById('zoom').hidden")
    assert p.page.text_content("#zoom p").startswith("hidden layer 1, neuron 1 (tanh).")
    big = p.page.evaluate(
        """(() => {
          const c = document.querySelector("#zoom canvas");
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          return new Set(Array.from(d.filter((_, i) => i % 4 === 2))).size;
        })"""
    )
    assert big > 20  # the neuron's picture, enlarged: many shades, not a blank square
    ticks = (
        "Array.from(document.querySelectorAll('#neuron-scale .ticks span'), (s) => s.textContent)"
    )
    size = p.frame()["neurons"][1][0]["scale"]
    low, zero, high = p.js(ticks)  # the colour scale's numbers: this neuron's own
    assert (low[0], zero, high[0]) == ("\u2212", "0", "+")
    assert float(low[1:]) == float(high[1:]) == size
    p.page.mouse.move(5, 5)
    p.wait("document.getElementById('zoom').hidden")
    assert p.js(ticks) == ["\u2212s", "0", "+s"]
    p.page.hover("svg line.hit >> nth=0")
    tip = p.wait(
        "!document.getElementById('tooltip').hidden && document.getElementById('tooltip').textContent"
    )
    # "weight 0.1234 (layer L: neuron i -> j)": the value of that weight in the latest frame
    words = tip.replace("(", " ").replace(")", " ").replace(":", " ").split()
    layer, i, j = int(words[3]), int(words[5]), int(words[7])
    assert float(words[1]) == pytest.approx(
        p.frame()["weights"][layer - 1]["w"][j - 1][i - 1], abs=1e-4
    )
    assert p.errors == []


def test_closing_a_page_stops_its_training(pages, server):
    p = pages("?dataset=spirals")
    session_id = p.js("window.playground.session.id")
    session = server.registry.get(session_id)
    p.page.click("#play")
    p.wait("window.playground.frame.playing === true")
    p.page.close()
    deadline = time.monotonic() + 8
    while server.registry.get(session_id) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.registry.get(session_id) is None
    session.thread.join(5)
    assert not session.thread.is_alive() and not session.playing


def test_the_best_fit_line_mode(pages):
    p = pages("?dataset=line&optimizer=gd&lr=0.5&batch=400")  # one full-batch step an epoch
    assert p.js("window.playground.accepted.hidden") == [4, 2]
    p.page.click('[data-dataset="line"]')  # the line's own defaults: one neuron, y = w x + b
    p.wait("window.playground.data.fit_line === true")
    assert p.page.is_visible("#fit-line-panel")
    p.page.click("#play")
    p.wait("window.playground.frame.epoch >= 30")
    p.page.click("#play")
    fit = p.wait("window.playground.frame.playing === false && window.playground.frame.fit_line")
    assert fit["w"] == pytest.approx(fit["optimum"][0], abs=1e-3)
    assert fit["b"] == pytest.approx(fit["optimum"][1], abs=1e-3)
    assert len(fit["path"]) > 30
    p.drawn()
    words = p.page.text_content("#fit-line-text").split()
    assert words[:4] == ["the", "line:", "y", "="]  # y = a x + b around the data's 2 x + 1
    assert float(words[4]) == pytest.approx(2.0, abs=0.05) and words[5] == "x"
    assert float(words[7].rstrip(".")) == pytest.approx(1.0, abs=0.1) and words[6] == "+"
    darkest = p.page.evaluate(
        """(() => {
          const c = document.getElementById("cost");
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let low = 255;
          for (let i = 0; i < d.length; i += 4) low = Math.min(low, d[i]);
          return low;
        })"""
    )
    assert darkest < 60  # the valley of the cost is drawn dark
    assert p.errors == []


# Cells of the output picture (away from the points) and of the first hidden neuron's picture,
# each with the colour its scale's bar shows for that cell's value: [picture's, bar's].
SCALES_AGREE = """(() => {
  const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const rgb = (canvas, x, y) =>
    Array.from(canvas.getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3));
  const at = (bar, t) => rgb(bar, Math.round(t * (bar.width - 1)), 0);
  const { data, frame } = window.playground;
  const canvas = document.getElementById("output");
  const bars = Array.from(document.querySelectorAll("#output-scale canvas"));
  const { size, map, confidence } = frame.output;
  const values = bytes(map);
  const sure = confidence ? bytes(confidence) : null;
  const [[x0, x1], [y0, y1]] = data.domain;
  const cell = canvas.width / size;
  const output = [];
  for (let i = 0; i < values.length; i += 7) {
    const px = (i % size + 0.5) * cell, py = (Math.floor(i / size) + 0.5) * cell;
    const near = data.train.some(([a, b]) => Math.hypot(((a - x0) / (x1 - x0)) * canvas.width - px,
      ((y1 - b) / (y1 - y0)) * canvas.height - py) < 9);
    let bar = bars[0], t = values[i] / 255;  // numbers: the value
    if (sure && bars.length > 1) [bar, t] = [bars[values[i]], sure[i] / 255];  // its class's shade
    else if (sure) t = values[i] ? (1 + sure[i] / 255) / 2 : (1 - sure[i] / 255) / 2;  // p(class 1)
    if (!near && !(sure && bars.length === 1 && Math.abs(t - 0.5) < 0.03))  // 0.5: either class
      output.push([rgb(canvas, Math.floor(px), Math.floor(py)), at(bar, t)]);
  }
  const neuron = document.querySelector(".column:nth-child(3) .neuron");
  const cells = bytes(frame.neurons[1][0].map);
  const bar = document.querySelector("#neuron-scale canvas");
  const neurons = Array.from(cells, (v, i) => [rgb(neuron, i % 32, Math.floor(i / 32)), at(bar, v / 255)]);
  const ticks = (scale) => Array.from(scale.querySelectorAll(".ticks span"), (s) => s.textContent);
  return { output, neurons, ticks: Array.from(document.querySelectorAll(".scale"), ticks),
    captions: Array.from(document.querySelectorAll(".scales .caption"), (c) => c.textContent) };
})"""


@pytest.mark.parametrize(
    "query, ticks, caption",
    [
        ("?dataset=gaussians&hidden=2", [["0", "0.5", "1"]], "probability of class 1"),
        ("?dataset=blobs&classes=3&hidden=3", [["0.33", "1"]] * 3, "class 2"),
        ("?dataset=plane&hidden=3", None, "value: the network's answer"),
    ],
)
def test_the_colour_scales_show_the_colours_of_the_pictures(pages, query, ticks, caption):
    p = pages(query)
    p.train(2)
    found = p.page.evaluate(SCALES_AGREE)
    assert len(found["output"]) > 200 and len(found["neurons"]) == 32 * 32
    for picture, bar in found["output"] + found["neurons"]:
        assert max(abs(a - b) for a, b in zip(picture, bar)) <= 4, (picture, bar)
    neuron_ticks, *output_ticks = found["ticks"]
    assert neuron_ticks == ["\u2212s", "0", "+s"]
    if ticks is None:  # numbers: the range the data's values span
        low, high = p.js("window.playground.data.value_range")
        ticks = [[f"{low:#.3g}", f"{(low + high) / 2:#.3g}", f"{high:#.3g}"]]  # toPrecision(3)
    assert output_ticks == ticks
    assert any(caption in text for text in found["captions"]), found["captions"]
    assert p.page.is_visible("#neuron-scale") and p.page.is_visible("#output-scale")
    assert p.errors == []


def test_one_input_has_no_output_scale_but_its_neurons_have_theirs(pages):
    p = pages("?dataset=line&hidden=3")
    p.train(1)
    assert p.js("document.querySelectorAll('#output-scale .scale').length") == 0
    assert p.page.is_visible("#neuron-scale canvas")
    assert p.errors == []


def test_the_loss_legend_has_the_colours_of_the_curves(pages):
    p = pages("?dataset=spirals&n=40&optimizer=adam&lr=0.1")  # test and train loss apart
    p.train(4)
    legend = p.page.evaluate(
        """(() => Array.from(document.querySelectorAll("#loss-legend > div"), (row) => [
          row.textContent.split(/\\d/)[0].trim(),
          getComputedStyle(row.querySelector("i")).backgroundColor]))"""
    )
    assert [name for name, _ in legend] == ["train loss", "test loss"]
    ends = p.page.evaluate(  # each curve's colour where it ends: the last epoch's loss
        """(() => {
          const c = document.getElementById("loss-curve");
          const { train, test } = window.playground.frame.history;
          const top = Math.max(...train, ...test);
          const pixel = (v) => c.getContext("2d")
            .getImageData(c.width - 2, Math.round(c.height - 2 - (v / top) * (c.height - 6)), 1, 1).data;
          return [train, test].map((v) => Array.from(pixel(v.at(-1))));
        })"""
    )
    for (name, colour), end in zip(legend, ends):
        rgb = [int(c) for c in colour[4:-1].split(",")]
        assert end[3] > 60 and max(abs(a - b) for a, b in zip(end, rgb)) <= 3, (name, colour, end)
    assert legend[0][1] != legend[1][1]
    assert p.errors == []


EXPLAINED = ["n", "classes", "noise", "test", "seed", "features", "hidden", "neurons", "activation"]
EXPLAINED += ["output", "optimizer", "lr", "batch", "l1", "l2", "dropout", "momentum", "nesterov"]


def test_every_control_has_a_question_mark_that_explains_it(pages):
    p = pages("?dataset=spirals&hidden=3,2")
    explanations = p.js("window.playground.session.choices.explanations")
    for name in EXPLAINED:
        marks = p.page.locator(f'[data-explains="{name}"]')
        count = 2 if name in ("neurons", "activation") else 1  # one per hidden layer
        assert marks.count() == count, name
        for k in range(count):
            mark = marks.nth(k)
            assert mark.is_visible() and mark.text_content() == "?", name
            assert mark.get_attribute("title") == explanations[name], name
    assert "the test loss" in explanations["test"]
    p.page.click('[data-explains="nesterov"]')  # inside the checkbox's label: does not tick it
    p.settled()
    assert p.page.is_checked("#nesterov") is False
    assert p.js("window.playground.accepted.nesterov") is False
    p.page.select_option("#optimizer", "adamw")
    p.settled()
    decay = p.page.locator('[data-explains="weight_decay"]')
    assert decay.is_visible() and decay.get_attribute("title") == explanations["weight_decay"]
    assert not p.page.is_visible('[data-explains="momentum"]')  # adamw has none
    assert p.errors == []


def test_a_learning_rate_from_the_menu_reaches_the_server(pages, server):
    p = pages()
    menu = p.js("Array.from(document.querySelectorAll('#lr-menu option'), (o) => o.value)")
    assert [float(v) for v in menu[1:]] == p.js("window.playground.session.choices.learning_rates")
    # sgd's own rate, an item of the menu
    assert float(p.page.input_value("#lr-menu")) == OPTIMIZERS["sgd"][1]
    session = server.registry.get(p.js("window.playground.session.id"))
    p.page.select_option("#lr-menu", "0.3")
    p.wait("window.playground.accepted.lr === 0.3")
    deadline = time.monotonic() + 10
    while session.trainer.setup.lr != 0.3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.trainer.optimizer.param_groups[0]["lr"] == 0.3
    assert p.page.input_value("#lr") == "0.3" and "lr=0.3" in p.page.url
    p.page.fill("#lr", "0.02")  # any other rate can be typed: the menu then says so
    p.page.press("#lr", "Tab")
    p.wait("window.playground.accepted.lr === 0.02")
    assert p.page.input_value("#lr-menu") == ""
    assert p.page.locator("#lr-menu option:checked").text_content() == "typed"
    p.page.select_option("#optimizer", "adam")  # a new optimizer starts at its own rate
    p.wait("window.playground.accepted.optimizer === 'adam'")
    adam_lr = OPTIMIZERS["adam"][1]  # the rate Adam suggests
    assert float(p.page.input_value("#lr-menu")) == adam_lr
    p.train(1)
    assert session.trainer.optimizer.param_groups[0]["lr"] == adam_lr
    assert p.errors == []


def test_the_page_loads_nothing_from_elsewhere(pages, server):
    p = pages(ready=False)
    requested = []
    p.page.on("request", lambda r: requested.append(r.url))
    p.page.reload()
    p.wait("window.playground.frames > 0")
    assert requested and all(url.startswith(server.url) for url in requested), requested
    policy = p.page.evaluate(
        "(() => fetch('/').then((r) => r.headers.get('Content-Security-Policy')))"
    )
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    json.dumps(requested)


ATTACKER = """<!doctype html><title>another site</title><script>
window.sent = 0;
(async () => {
  for (let i = 0; i < 40; i++) {  // more than the server's cap of sessions
    // a "simple" request: no preflight, so the browser sends it; its answer stays unreadable
    await fetch("TARGET/api/sessions", { method: "POST", mode: "no-cors",
      headers: { "Content-Type": "text/plain" }, body: "" });
    window.sent += 1;
  }
})();
</script>"""


@pytest.fixture
def attacker(server):
    """A page of another origin (another port of 127.0.0.1) that posts to the playground."""
    page = ATTACKER.replace("TARGET", server.url.rstrip("/")).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{other.server_address[1]}/"
    other.shutdown()
    other.server_close()


def test_a_page_of_another_origin_cannot_start_sessions(browser, server, attacker, pages):
    before = set(server.registry.sessions)
    context = browser.new_context()
    evil = context.new_page()
    evil.goto(attacker)
    deadline = time.monotonic() + 20
    while evil.evaluate("() => window.sent") < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert evil.evaluate("() => window.sent") == 40  # every request was sent and answered
    context.close()
    assert set(server.registry.sessions) <= before  # none new (earlier pages may end)
    mine = pages("?dataset=xor")  # the user's own page gets its session
    mine.train(1)
    assert mine.errors == []


def test_a_page_past_the_cap_is_told_why(browser):
    small = PlaygroundServer("127.0.0.1", 0, Registry(max_sessions=2, grace=2.0))
    threading.Thread(target=small.serve_forever, daemon=True).start()
    opened = []
    try:
        opened += [Page(browser, small), Page(browser, small)]
        late = Page(browser, small, ready=False)
        opened.append(late)
        late.wait("!document.getElementById('error').hidden")
        assert late.page.text_content("#error") == (
            "cannot start a session: 2 pages are open already (the server's limit): close one "
            "and reload this one"
        )
        assert all(p.errors == [] for p in opened[:2])
    finally:
        for page in opened:
            page.close()
        small.stop()
