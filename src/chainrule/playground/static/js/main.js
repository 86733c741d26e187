// The page: start a session, show the setup from the address, send every change, draw every
// frame the server streams. window.playground exposes the page's state (for tests, and for
// the curious in the browser's console).

import { Session } from "./api.js";
import { Controls } from "./controls.js";
import {
  CLASS_COLOURS,
  classShade,
  colourScale,
  css,
  diverging,
  drawCost,
  drawLossCurve,
  drawOutput,
  el,
  fromCanvas,
  LOSS_COLOURS,
} from "./draw.js";
import { NetworkView } from "./network.js";
import { addressOf, rounded, setupFromAddress } from "./state.js";

const $ = (id) => document.getElementById(id);
const page = { session: null, setup: null, accepted: null, data: null, frame: null, frames: 0, requests: Promise.resolve() };
window.playground = page;
let controls = null;
let network = null;
let drawPending = false;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function showNotice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

// The setup as the controls show it: what the page holds, over the last accepted setup (or,
// before the first, the server's defaults).
function current() {
  return { ...page.session.choices.defaults, ...(page.accepted ?? {}), ...page.setup };
}

// Change the setup: the server checks it and starts a fresh run, or says what is wrong.
function apply(patch) {
  page.setup = { ...page.setup, ...patch };
  const attempt = page.setup;
  controls.render(current(), page.data);
  page.requests = page.requests.then(async () => {
    try {
      const { setup } = await page.session.sendSetup(attempt);
      page.accepted = setup;
      if (page.setup === attempt) page.setup = setup;
      history.replaceState(null, "", addressOf(setup));
      showError("");
    } catch (error) {
      showError(error.message);
    }
    controls.render(current(), page.data);
  });
  return page.requests;
}

function onData(data) {
  page.data = data;
  network.layout(data);
  controls.render(current(), data);
  $("network-text").textContent = `${data.network}; ${data.train.length} training points (${data.added} added), ${data.test.length} test points`;
  $("fit-line-panel").hidden = !data.fit_line;
  $("legend").replaceChildren();
  const swatch = (colour) => {
    const dot = document.createElement("i");
    dot.style.background = css(colour); // CSSOM: the policy allows no inline style attributes
    return dot;
  };
  data.classes.forEach((name, k) => $("legend").append(swatch(CLASS_COLOURS[k]), `${name} `));
  $("output-scale").replaceChildren(...outputScale(data));
  scheduleDraw();
}

// The colour scale of the output picture (none for one input's curve): for two classes the
// probability of the second, for more each class's shades, for numbers the values.
function outputScale(data) {
  if (data.task === "regression") {
    if (data.inputs === 1) return [];
    const [low, high] = data.value_range;
    const ticks = [low, (low + high) / 2, high].map((v) => v.toPrecision(3));
    return [colourScale((t) => diverging(255 * t), ticks, `${data.target_name}: the network's answer (the picture) and the points' values`, 320)];
  }
  const count = data.classes.length;
  if (count === 2) {
    const shade = (t) => classShade(t < 0.5 ? 0 : 1, Math.abs(2 * t - 1));
    return [colourScale(shade, ["0", "0.5", "1"], `the network's probability of class ${data.classes[1]} (pale: unsure)`, 320)];
  }
  const bars = data.classes.map((name, k) => colourScale((t) => classShade(k, t), [(1 / count).toFixed(2), "1"], `class ${name}`, 90));
  return [el("div", { class: "caption", text: "colour: the most likely class; shade: its probability" }), el("div", { class: "bars" }, bars)];
}

// The neurons' colour scale, and what the lines' colours say.
function neuronScale() {
  return [
    colourScale((t) => diverging(255 * t), ["\u2212s", "0", "+s"], "a neuron's output; s: its largest size in the view (hover a neuron)", 200),
    el("div", { class: "caption" }, [
      "lines: weights, ",
      el("b", { class: "positive", text: "blue" }),
      " positive, ",
      el("b", { class: "negative", text: "orange" }),
      " negative, the thicker the larger",
    ]),
  ];
}

// Hovering a neuron puts its own numbers on the neurons' colour scale (its s), leaving it "s".
function showNeuronScale(event) {
  const { picture } = event.type === "mouseover" ? event.target : {};
  const size = picture ? String(picture.scale) : "s";
  const [low, , high] = $("neuron-scale").querySelectorAll(".ticks span");
  low.textContent = `\u2212${size}`;
  high.textContent = `+${size}`;
}

function onFrame(frame) {
  page.frame = frame;
  page.frames += 1;
  scheduleDraw();
}

function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

// A loss as the page shows it: four decimals, or four digits once it is that small.
function format(value) {
  if (value === null || value === undefined) return "\u2013";
  return value !== 0 && Math.abs(value) < 0.001 ? value.toPrecision(4) : value.toFixed(4);
}

function draw() {
  const { data, frame } = page;
  if (!data) return;
  drawOutput($("output"), data, frame && frame.output, $("show-test").checked);
  if (!frame) return;
  $("epoch").textContent = String(frame.epoch).padStart(6, "0").replace(/(\d{3})$/, ",$1");
  $("play").innerHTML = frame.playing ? "&#x275A;&#x275A;" : "&#x25B6;";
  $("play").dataset.playing = frame.playing;
  for (const which of ["train", "test"]) {
    const numbers = frame[which];
    $(`${which}-loss`).textContent = format(numbers && numbers.loss);
    let extra = "";
    if (numbers && numbers.accuracy !== undefined) extra = `accuracy ${(100 * numbers.accuracy).toFixed(1)}%`;
    if (numbers && numbers.rmse !== undefined) extra = `RMSE ${numbers.rmse.toPrecision(3)}`;
    $(`${which}-extra`).textContent = extra;
  }
  network.update(frame);
  drawLossCurve($("loss-curve"), frame.history);
  if (frame.fit_line) {
    const fit = frame.fit_line;
    drawCost($("cost"), fit);
    const [slope, intercept] = fit.line;
    $("fit-line-text").textContent =
      `the line: ${data.target_name} = ${slope.toPrecision(4)} ${data.feature_names[0]} ${intercept < 0 ? "-" : "+"} ${Math.abs(intercept).toPrecision(4)}. ` +
      `The neuron sees standardised x and y: w = ${fit.w.toFixed(3)}, b = ${fit.b.toFixed(3)}, cost J = ${fit.cost_now.toPrecision(3)}; ` +
      `least squares: w = ${fit.optimum[0].toFixed(3)}, b = ${fit.optimum[1].toFixed(3)} (white dot). The path: every optimizer step.`;
  }
  showNotice(frame.message || data.problem);
}

async function onUpload(name, text) {
  try {
    const file = await page.session.upload(name, text);
    $("file-name").textContent = `${file.name}: ${file.rows} rows, ${file.features.join(", ")} \u2192 ${file.target} (${file.task})`;
    const one = file.features.length === 1;
    await apply({ dataset: "upload", points: [], noise: null, output: null, features: one ? ["x"] : ["x", "y"], ...(one ? { hidden: [], activations: [] } : {}) });
  } catch (error) {
    showError(error.message);
  }
}

function onClick(event) {
  const { data } = page;
  if (!data) return;
  const canvas = $("output");
  const px = (event.offsetX * canvas.width) / canvas.clientWidth;
  const py = (event.offsetY * canvas.height) / canvas.clientHeight;
  const [x, y] = fromCanvas(canvas, data.domain, px, py).map(rounded);
  const points = Array.isArray(page.setup.points) ? page.setup.points : [];
  apply({ points: [...points, controls.pointAt(x, y, data)] });
}

async function control(action) {
  try {
    await page.requests;
    await page.session.control(action);
  } catch (error) {
    showError(error.message);
  }
}

async function download(what, name) {
  try {
    await page.session.download(what, name);
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
  const { choices } = page.session;
  page.setup = setupFromAddress(location.search);
  $("neuron-scale").replaceChildren(...neuronScale());
  for (const swatch of document.querySelectorAll("[data-series]")) swatch.style.background = LOSS_COLOURS[swatch.dataset.series];
  controls = new Controls($("data-controls"), $("training"), choices, apply, onUpload);
  network = new NetworkView($("network"), $("layer-controls"), $("zoom"), $("tooltip"), choices, current, apply);
  page.session.listen({
    onData,
    onFrame,
    onLost: () => showError("the server has stopped or ended this page's session: reload the page"),
  });
  $("play").addEventListener("click", () => control(page.frame && page.frame.playing ? "pause" : "play"));
  $("step").addEventListener("click", () => control("step"));
  $("reset").addEventListener("click", () => control("reset"));
  $("network").addEventListener("mouseover", showNeuronScale);
  $("network").addEventListener("mouseout", showNeuronScale);
  $("output").addEventListener("click", onClick);
  $("show-test").addEventListener("change", scheduleDraw);
  $("export-run").addEventListener("click", () => download("run.zip", "chainrule-playground.zip"));
  $("export-script").addEventListener("click", () => download("train.py", "train.py"));
  window.addEventListener("pagehide", () => page.session.close());
  await apply({});
  if (!page.accepted) {
    // the link holds a value the server refused: show the defaults, and say why
    const refused = $("error").textContent;
    page.setup = {};
    await apply({});
    showError(`this link's setup was refused: ${refused}; showing the default setup instead`);
  }
}

start();
