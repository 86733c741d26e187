// The image mode's page: choose images and a network, train it live, look inside it.
// window.playground exposes the page's state (for tests, and the curious), as main.js does.

import { Session } from "./api.js";
import { bytes, drawLossCurve, el } from "./draw.js";
import { InsideView, paintGrey, paintSigned } from "./inside.js";

const $ = (id) => document.getElementById(id);
const SENT = ["dataset", "positive", "n", "seed", "network", "hidden", "channels", "activation", "optimizer", "lr", "batch"];
const page = { session: null, setup: {}, accepted: null, data: null, frame: null, frames: 0, inside: null, insides: 0, requests: Promise.resolve() };
window.playground = page;
let inside = null;
let drawPending = false;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// The setup the page shows: its own changes over the last one the server accepted.
function current() {
  return { ...page.session.choices.images.defaults, ...(page.accepted ?? {}), ...page.setup };
}

// Change the setup: the server checks it and starts a fresh run, or says what is wrong.
function apply(patch) {
  page.setup = { ...page.setup, ...patch };
  const attempt = { mode: "images" };
  for (const key of SENT) attempt[key] = current()[key];
  renderControls();
  page.requests = page.requests.then(async () => {
    try {
      const { setup } = await page.session.sendSetup(attempt);
      page.accepted = setup;
      page.setup = {};
      showError("");
    } catch (error) {
      showError(error.message);
    }
    renderControls();
  });
  return page.requests;
}

// "32, 16" -> [32, 16]; anything else is sent as it is, for the server to name.
function sizes(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const numbers = parts.map(Number);
  return numbers.every(Number.isInteger) ? numbers : text;
}

function choiceButtons(container, options, chosen, onChoose, disabled = {}) {
  container.replaceChildren(
    ...Object.entries(options).map(([name, label]) =>
      el("button", {
        type: "button",
        class: name === chosen ? "chosen" : "",
        "data-choice": name,
        ...(disabled[name] ? { disabled: "", title: disabled[name] } : {}),
        text: label,
        onclick: () => onChoose(name),
      }),
    ),
  );
}

function select(options, chosen, onChange) {
  const node = el("select", { onchange: (event) => onChange(event.target.value) });
  for (const [value, label] of options) {
    const option = el("option", { value: String(value), text: label });
    option.selected = String(value) === String(chosen);
    node.append(option);
  }
  return node;
}

function renderControls() {
  const setup = current();
  const { choices } = page.session;
  const images = choices.images;
  const noMnist = images.mnist ? {} : { mnist: "no MNIST files: start the playground with --data-dir FOLDER (or download them once with chainrule train mnist --download)" };
  choiceButtons($("datasets"), images.datasets, setup.dataset, (dataset) => (dataset === "upload" && !page.uploaded ? showUpload() : apply({ dataset, positive: null })), noMnist);
  $("upload").hidden = setup.dataset !== "upload" && !$("upload").dataset.open;
  $("mnist-count").hidden = setup.dataset !== "mnist";
  $("n").value = setup.n;
  $("n").max = images.limits.mnist;
  $("hidden").title = `up to ${images.limits.hidden} layers of up to ${images.limits.neurons} neurons, e.g. 32, 16`;
  $("channels").title = `up to ${images.limits.conv_layers} convolutions of up to ${images.limits.channels} channels, e.g. 6, 12`;
  $("upload-text").title = `up to ${images.limits.upload_images} pictures in all`;
  const classes = setup.dataset === "upload" && page.uploaded ? page.uploaded.classes : [...Array(10).keys()].map(String);
  $("positive").replaceChildren(
    ...[["", "every class"], ...classes.map((name, k) => [k, `is it ${name} or not?`])].map(([value, label]) => {
      const option = el("option", { value: String(value), text: label });
      option.selected = String(value) === String(setup.positive ?? "");
      return option;
    }),
  );
  choiceButtons($("networks"), images.networks, setup.network, (network) => apply({ network }));
  $("channels-field").hidden = setup.network !== "cnn";
  if (document.activeElement !== $("channels")) $("channels").value = setup.channels.join(", ");
  if (document.activeElement !== $("hidden")) $("hidden").value = setup.hidden.join(", ");
  $("seed").value = setup.seed;
  const rates = [...new Set([...choices.learning_rates, setup.lr])].sort((a, b) => a - b);
  const label = (text, control) => el("label", {}, [text, control]);
  $("training").replaceChildren(
    label("activation", select(images.activations.map((a) => [a, a]), setup.activation, (activation) => apply({ activation }))),
    label("optimizer", select(Object.keys(choices.optimizers).map((o) => [o, choices.optimizers[o].label]), setup.optimizer, (optimizer) => apply({ optimizer, lr: null }))),
    label("learning rate", select(rates.map((r) => [r, String(r)]), setup.lr, (lr) => apply({ lr: Number(lr) }))),
    label("batch size", el("input", { type: "number", min: 1, value: setup.batch, id: "batch", onchange: (event) => apply({ batch: Number(event.target.value) }) })),
  );
}

// -- the user's own classes ------------------------------------------------------------------

function showUpload() {
  $("upload").dataset.open = "yes";
  $("upload").hidden = false;
  if (!$("upload-classes").children.length) {
    addClassRow("class A");
    addClassRow("class B");
  }
}

function addClassRow(name) {
  const row = el("div", { class: "class-row" }, [
    el("input", { type: "text", class: "class-name", value: name, "aria-label": "class name" }),
    el("input", { type: "file", class: "class-files", multiple: "", accept: "image/*" }),
  ]);
  $("upload-classes").append(row);
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`${file.name}: cannot be read`));
    reader.readAsDataURL(file);
  });
}

async function sendImages() {
  try {
    const images = [];
    for (const row of $("upload-classes").children) {
      const name = row.querySelector(".class-name").value;
      for (const file of row.querySelector(".class-files").files) {
        images.push({ class: name, name: file.name, data: await dataUrl(file) });
      }
    }
    const summary = await page.session.uploadImages(images);
    page.uploaded = summary;
    $("upload-text").textContent = summary.classes.map((c, k) => `${c}: ${summary.counts[k]}`).join(", ") + " images";
    await apply({ dataset: "upload", positive: null });
  } catch (error) {
    showError(error.message);
  }
}

// -- messages --------------------------------------------------------------------------------

function onData(data) {
  if (data.mode !== "images") return;
  page.data = data;
  $("network-text").textContent = `${data.network}; ${data.train} training images, ${data.test} test images`;
  $("backprop-label").replaceChildren(...data.classes.map((name, k) => el("option", { value: String(k), text: name })));
  inside.showSamples(data);
  inside.refresh();
  scheduleDraw();
}

function onFrame(frame) {
  if (!page.data) return;
  page.frame = frame;
  page.frames += 1;
  scheduleDraw();
  inside.refresh(); // the drawn digit's answer follows the training
}

function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

function percent(value) {
  return value === null || value === undefined ? "" : `accuracy ${(100 * value).toFixed(1)}%`;
}

function draw() {
  const { data, frame } = page;
  // a frame of the run before the data changed can still arrive: wait for the new run's
  if (!data || !frame || frame.confusion.length !== data.classes.length) return;
  $("epoch").textContent = String(frame.epoch).padStart(6, "0").replace(/(\d{3})$/, ",$1");
  $("play").innerHTML = frame.playing ? "&#x275A;&#x275A;" : "&#x25B6;";
  $("play").dataset.playing = frame.playing;
  for (const which of ["train", "test"]) {
    $(`${which}-loss`).textContent = frame[which].loss === null ? "\u2013" : frame[which].loss.toFixed(4);
    $(`${which}-accuracy`).textContent = percent(frame[which].accuracy);
  }
  const { history } = frame;
  drawLossCurve($("loss-curve"), { epoch: history.epoch, train: history.loss, test: history.val_loss });
  drawLossCurve($("accuracy-curve"), { epoch: history.epoch, train: history.accuracy, test: history.val_accuracy });
  const reached = history.val_accuracy.findIndex((a) => a !== null && a >= 0.95);
  $("speed").textContent =
    `${frame.steps} steps in ${frame.seconds.toFixed(2)} s of training` +
    (reached >= 0 ? `; 95% test accuracy after ${history.seconds[reached].toFixed(2)} s (epoch ${history.epoch[reached]})` : "");
  drawFirstLayer(frame.first_layer);
  drawConfusion(frame.confusion, data.classes);
  const [, height, width] = data.shape;
  $("wrong").replaceChildren(
    ...frame.wrong
      .map((item) => [item, bytes(item.picture)])
      .filter(([, pixels]) => pixels.length === width * height)
      .map(([item, pixels]) => {
      const canvas = el("canvas");
      paintGrey(canvas, pixels, width, height);
      return el("figure", {}, [canvas, el("figcaption", { text: `${data.classes[item.label]}\u2192${data.classes[item.predicted]}` })]);
    }),
  );
  $("notice").textContent = frame.message || "";
  $("notice").hidden = !frame.message;
}

function drawFirstLayer(first) {
  if (!first.map) return $("first-layer").replaceChildren();
  $("first-layer-title").textContent = `first layer's weights: ${first.layer} (up to \u00b1${first.scale})`;
  const values = bytes(first.map);
  const [height, width] = first.size;
  const pictures = [];
  for (let k = 0; k < first.count; k++) {
    const canvas = el("canvas", { title: `unit ${k}` });
    paintSigned(canvas, values, width, height, k * width * height);
    pictures.push(canvas);
  }
  $("first-layer").replaceChildren(...pictures);
}

function drawConfusion(matrix, classes) {
  const largest = Math.max(1, ...matrix.flat());
  const head = el("tr", {}, [el("th"), ...classes.map((c) => el("th", { text: c.slice(0, 5) }))]);
  const rows = matrix.map((row, i) =>
    el("tr", {}, [
      el("th", { text: classes[i].slice(0, 5) }),
      ...row.map((count, j) => {
        const cell = el("td", { text: count ? String(count) : "" });
        const t = count / largest;
        cell.style.background = i === j ? `rgba(8, 119, 189, ${0.1 + 0.6 * t})` : `rgba(245, 147, 34, ${count ? 0.2 + 0.6 * t : 0})`;
        return cell;
      }),
    ]),
  );
  $("confusion").replaceChildren(head, ...rows);
}

async function control(action) {
  try {
    await page.requests;
    await page.session.control(action);
  } catch (error) {
    showError(error.message);
  }
}

async function start() {
  try {
    page.session = await Session.start();
  } catch (error) {
    showError(`cannot start a session: ${error.message}`);
    return;
  }
  inside = new InsideView(
    {
      draw: $("draw"), clear: $("clear"), seen: $("seen"), prepared: $("prepared"), layers: $("layers"),
      answer: $("answer"), bars: $("bars"), neuronView: $("neuron-view"), samples: $("samples"),
      backpropText: $("backprop-text"),
    },
    (picture, neuron, backprop) => page.session.inside(picture, neuron, backprop),
    (answer) => {
      page.inside = answer;
      page.insides += 1;
      if (page.insideError) showError(""); // the drawing that was refused has been redrawn
      page.insideError = false;
    },
    (message) => {
      page.insideError = true;
      showError(message);
    },
  );
  page.view = inside;
  page.session.listen({
    onData,
    onFrame,
    onLost: () => showError("the server has stopped or ended this page's session: reload the page"),
  });
  $("play").addEventListener("click", () => control(page.frame && page.frame.playing ? "pause" : "play"));
  $("step").addEventListener("click", () => control("step"));
  $("reset").addEventListener("click", () => control("reset"));
  $("positive").addEventListener("change", (event) => apply({ positive: event.target.value === "" ? null : Number(event.target.value) }));
  $("n").addEventListener("change", (event) => apply({ n: Number(event.target.value) }));
  $("seed").addEventListener("change", (event) => apply({ seed: Number(event.target.value) }));
  $("hidden").addEventListener("change", (event) => apply({ hidden: sizes(event.target.value) }));
  $("channels").addEventListener("change", (event) => apply({ channels: sizes(event.target.value) }));
  $("add-class").addEventListener("click", () => addClassRow(`class ${String.fromCharCode(65 + $("upload-classes").children.length)}`));
  $("send-images").addEventListener("click", sendImages);
  $("open-picture").addEventListener("change", async (event) => {
    const [file] = event.target.files;
    if (!file) return;
    try {
      await inside.open(await dataUrl(file));
    } catch {
      showError(`${file.name}: not a picture the browser can read`);
    }
  });
  const download = (what, name) => page.session.download(what, name).catch((error) => showError(error.message));
  $("export-run").addEventListener("click", () => download("run.zip", "chainrule-playground.zip"));
  $("export-script").addEventListener("click", () => download("train.py", "train.py"));
  $("backprop").addEventListener("click", () => inside.backpropAs(Number($("backprop-label").value)));
  $("backprop-off").addEventListener("click", () => inside.backpropAs(null));
  window.addEventListener("pagehide", () => page.session.close());
  await apply({});
}

start();
