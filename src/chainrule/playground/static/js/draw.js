// Drawing on canvases: the output picture with its points, neurons' pictures, the loss curve
// and the cost surface. Pictures arrive as base64 bytes, one a cell (see frames.py).

export const NEGATIVE = [245, 147, 34]; // orange
export const POSITIVE = [8, 119, 189]; // blue
export const CLASS_COLOURS = [NEGATIVE, POSITIVE, [44, 160, 44], [148, 103, 189], [214, 39, 40], [23, 190, 207]];
const WHITE = [255, 255, 255];
export const LOSS_COLOURS = { train: "#222", test: "#aaa" }; // the loss curves and their legend

export function bytes(base64) {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

// An HTML element with attributes (text: its text; background: set through the CSSOM, as the
// page's policy allows no inline styles; on...: listeners) and children.
export function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (key === "background") node.style.background = value; // CSSOM: the policy allows no inline styles
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// A visible "?" that explains setting `name` in `text` (hover: the text, as a tooltip). A click on
// it does nothing, so a "?" inside a control's label does not work the control.
export function explain(name, text) {
  const attributes = { class: "explain", "data-explains": name, tabindex: 0, title: text, "aria-label": text, text: "?" };
  return el("span", { ...attributes, onclick: (event) => event.preventDefault() });
}

export function css([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

function mix(a, b, t) {
  return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t));
}

// 0..255 -> orange .. white .. blue
export function diverging(value) {
  const t = value / 255;
  return t < 0.5 ? mix(NEGATIVE, WHITE, t * 2) : mix(WHITE, POSITIVE, (t - 0.5) * 2);
}

// A cell of the class picture: the winning class's colour k, the deeper the surer (confidence 0:
// no better than a guess among all classes, 1: certain).
export function classShade(k, confidence) {
  return mix(WHITE, CLASS_COLOURS[k], 0.1 + 0.5 * confidence);
}

// Paint width x height cells, colour(i) for cell i, over the whole canvas.
function paintCells(canvas, width, height, colour) {
  const cells = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = colour(i);
    cells.data.set([r, g, b, 255], i * 4);
  }
  const small = new OffscreenCanvas(width, height);
  small.getContext("2d").putImageData(cells, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// A neuron's picture: a square of cells, or for one input a strip along x.
export function drawNeuron(canvas, picture, inputs) {
  const values = bytes(picture.map);
  if (inputs === 1) {
    paintCells(canvas, values.length, 1, (i) => diverging(values[i]));
  } else {
    const side = Math.round(Math.sqrt(values.length));
    paintCells(canvas, side, side, (i) => diverging(values[i]));
  }
}

// Where a point of the data lands on a canvas showing `domain`, and back.
export function toCanvas(canvas, domain, x, y) {
  const [[x0, x1], [y0, y1]] = domain;
  return [((x - x0) / (x1 - x0)) * canvas.width, ((y1 - y) / (y1 - y0)) * canvas.height];
}

export function fromCanvas(canvas, domain, px, py) {
  const [[x0, x1], [y0, y1]] = domain;
  return [x0 + (px / canvas.width) * (x1 - x0), y1 - (py / canvas.height) * (y1 - y0)];
}

// The big picture: the network's answer over the view, then the points on top.
export function drawOutput(canvas, data, output, showTest) {
  const ctx = canvas.getContext("2d");
  if (output && output.kind === "classes") {
    const winner = bytes(output.map);
    const confidence = bytes(output.confidence);
    paintCells(canvas, output.size, output.size, (i) => classShade(winner[i], confidence[i] / 255));
  } else if (output && output.kind === "values") {
    const values = bytes(output.map);
    paintCells(canvas, output.size, output.size, (i) => diverging(values[i]));
  } else {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  if (data.inputs === 1) drawAxes(ctx, canvas, data);
  drawPoints(ctx, canvas, data, data.train, false);
  if (showTest) drawPoints(ctx, canvas, data, data.test, true);
  if (output && output.kind === "curve") drawCurve(ctx, canvas, data, output.values);
}

function pointColour(data, target) {
  if (data.task === "classification") return CLASS_COLOURS[target];
  if (data.inputs === 1) return [60, 60, 60];
  const [low, high] = data.value_range;
  return diverging(Math.max(0, Math.min(255, (255 * (target - low)) / (high - low))));
}

function drawPoints(ctx, canvas, data, rows, test) {
  for (const row of rows) {
    const [px, py] = toCanvas(canvas, data.domain, row[0], row[1]);
    ctx.beginPath();
    ctx.arc(px, py, 3.6, 0, 2 * Math.PI);
    ctx.fillStyle = css(pointColour(data, row[row.length - 1]));
    ctx.fill();
    ctx.lineWidth = test ? 1.6 : 1;
    ctx.strokeStyle = test ? "#000" : "#fff";
    ctx.stroke();
  }
}

function drawAxes(ctx, canvas, data) {
  const [[x0, x1], [y0, y1]] = data.domain;
  ctx.fillStyle = "#777";
  ctx.font = "10px system-ui";
  ctx.fillText(`${data.feature_names[0]}: ${x0.toPrecision(3)} .. ${x1.toPrecision(3)}`, 4, canvas.height - 4);
  ctx.fillText(`${data.target_name}: ${y0.toPrecision(3)} .. ${y1.toPrecision(3)}`, 4, 12);
}

function drawCurve(ctx, canvas, data, values) {
  const [[x0, x1]] = data.domain;
  ctx.beginPath();
  values.forEach((y, i) => {
    const x = x0 + ((x1 - x0) * i) / (values.length - 1);
    const [px, py] = toCanvas(canvas, data.domain, x, y);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  ctx.strokeStyle = css(POSITIVE);
  ctx.lineWidth = 2.5;
  ctx.stroke();
}

// Training (dark) and test (grey) loss per epoch.
export function drawLossCurve(canvas, history) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const all = [...history.train, ...history.test].filter((v) => v !== null);
  if (!all.length) return;
  const top = Math.max(...all) || 1;
  const n = history.epoch.length;
  const series = [
    [history.test, LOSS_COLOURS.test],
    [history.train, LOSS_COLOURS.train],
  ];
  for (const [values, colour] of series) {
    ctx.beginPath();
    values.forEach((v, i) => {
      if (v === null) return;
      const px = n > 1 ? (i / (n - 1)) * canvas.width : canvas.width / 2;
      const py = canvas.height - 2 - (v / top) * (canvas.height - 6);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.6;
    ctx.stroke();
  }
  ctx.fillStyle = "#777";
  ctx.font = "10px system-ui";
  ctx.fillText(top.toPrecision(3), 2, 10);
}

// A colour scale: a bar painted colourAt(t) for t from 0 (left) to 1 (right), its ticks spread
// evenly beneath it, and a caption saying what the colours are.
export function colourScale(colourAt, ticks, caption, width = 200) {
  const bar = el("canvas", { class: "bar", width, height: 1 });
  paintCells(bar, width, 1, (i) => colourAt(i / (width - 1)));
  const scale = el("div", { class: "scale" }, [
    bar,
    el("div", { class: "ticks" }, ticks.map((tick) => el("span", { text: tick }))),
    el("div", { class: "caption", text: caption }),
  ]);
  scale.style.width = `${width}px`; // CSSOM: the policy allows no inline styles
  return scale;
}

// The cost over (w, b) (dark: low), the path of (w, b), the least-squares point.
export function drawCost(canvas, fit) {
  const shade = bytes(fit.cost);
  paintCells(canvas, fit.size, fit.size, (i) => mix([20, 50, 110], [235, 242, 250], shade[i] / 255));
  const ctx = canvas.getContext("2d");
  const domain = [fit.w_range, fit.b_range];
  const at = ([w, b]) => toCanvas(canvas, domain, w, b);
  ctx.beginPath();
  fit.path.forEach((point, i) => {
    const [px, py] = at(point);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  ctx.strokeStyle = css(NEGATIVE);
  ctx.lineWidth = 2;
  ctx.stroke();
  const marks = [
    [fit.path[0], "#fff", 4],
    [fit.optimum, "#fff", 2.5],
    [[fit.w, fit.b], css(NEGATIVE), 5],
  ];
  for (const [point, colour, radius] of marks) {
    const [px, py] = at(point);
    ctx.beginPath();
    ctx.arc(px, py, radius, 0, 2 * Math.PI);
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 1;
    ctx.stroke();
  }
  ctx.fillStyle = "#fff";
  ctx.font = "11px system-ui";
  ctx.fillText("w \u2192", canvas.width - 30, canvas.height - 6);
  ctx.fillText("b \u2191", 4, 14);
}
