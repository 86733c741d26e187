// The image mode's inside view: a canvas to draw on, what the network sees, every layer's
// output, the output bars, and one neuron's weighted sum (or a convolution at one position).
// The server computes it all (inside_view.py); this file only draws its answer.

import { bytes, css, diverging, el } from "./draw.js";

const CELL = 14; // pixels of a dense neuron's cell
const MAP = 56; // pixels of a feature map's side

// Grey levels (one byte a pixel) on a canvas of that many pixels.
export function paintGrey(canvas, values, width, height) {
  canvas.width = width;
  canvas.height = height;
  const picture = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    picture.data.set([values[i], values[i], values[i], 255], 4 * i);
  }
  canvas.getContext("2d").putImageData(picture, 0, 0);
}

// Signed values (bytes around 127.5) in the orange-white-blue scale, a pixel each.
export function paintSigned(canvas, values, width, height, offset = 0) {
  canvas.width = width;
  canvas.height = height;
  const picture = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const value = values[offset + i];
    picture.data.set([...(value === undefined ? [240, 240, 240] : diverging(value)), 255], 4 * i);
  }
  canvas.getContext("2d").putImageData(picture, 0, 0);
}

// How a layer of n neurons is laid out: columns a row.
function columnsOf(n) {
  return n <= 10 ? n : n <= 64 ? 8 : 16;
}

export class InsideView {
  // elements: draw, clear, seen, prepared, layers, answer, bars, neuronView, samples,
  // backpropText; ask(picture, neuron, backprop) -> Promise of the server's answer; onAnswer(answer) after each.
  constructor(elements, ask, onAnswer, onError) {
    Object.assign(this, { elements, ask, onAnswer, onError });
    this.drawn = false;
    this.busy = false;
    this.again = false;
    this.neuron = null;
    this.backprop = null; // the class a backprop step takes the picture to be (null: none)
    this.answer = null;
    this.classes = [];
    const canvas = elements.draw;
    const ctx = canvas.getContext("2d");
    this.clear();
    let last = null;
    const at = (event) => [
      (event.offsetX * canvas.width) / canvas.clientWidth,
      (event.offsetY * canvas.height) / canvas.clientHeight,
    ];
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      last = at(event);
      this.stroke(ctx, last, last);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!last) return;
      const next = at(event);
      this.stroke(ctx, last, next);
      last = next;
    });
    const end = () => {
      last = null;
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    elements.clear.addEventListener("click", () => this.clear());
  }

  // A white line on the black canvas (light ink on black, as the digit sets are), then ask.
  stroke(ctx, [x0, y0], [x1, y1]) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 22;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1 + 0.01, y1);
    ctx.stroke();
    this.drawn = true;
    this.refresh();
  }

  clear() {
    const { draw } = this.elements;
    const ctx = draw.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, draw.width, draw.height);
    this.drawn = false;
  }

  // A test image (one byte a pixel, width x height) put on the canvas to be looked at.
  pick(values, width, height) {
    const small = document.createElement("canvas");
    paintGrey(small, values, width, height);
    const ctx = this.elements.draw.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, this.elements.draw.width, this.elements.draw.height);
    this.drawn = true;
    this.refresh();
  }

  // A picture of the user's (a data: URL) drawn over the whole canvas, its aspect kept, on
  // the colour of its own corner: the server prepares it as chainrule predict does.
  async open(url) {
    const picture = new Image();
    picture.src = url;
    await picture.decode();
    const { draw } = this.elements;
    const ctx = draw.getContext("2d");
    const scale = Math.min(draw.width / picture.width, draw.height / picture.height);
    const [width, height] = [picture.width * scale, picture.height * scale];
    ctx.drawImage(picture, 0, 0, 1, 1, 0, 0, draw.width, draw.height); // its corner's colour
    ctx.drawImage(picture, (draw.width - width) / 2, (draw.height - height) / 2, width, height);
    this.drawn = true;
    this.refresh();
  }

  // The samples the page offers to pick from (data message).
  showSamples(data) {
    const [, height, width] = data.shape;
    this.classes = data.classes;
    this.neuron = null;
    this.backprop = null;
    this.elements.neuronView.hidden = true;
    this.elements.samples.replaceChildren(
      ...data.samples.map((picture, i) => {
        const canvas = el("canvas", { title: `test image ${i}: ${data.classes[data.sample_labels[i]]}`, "data-sample": i });
        const values = bytes(picture);
        paintGrey(canvas, values, width, height);
        canvas.addEventListener("click", () => this.pick(values, width, height));
        return canvas;
      }),
    );
  }

  // Ask the server about the canvas (one request at a time; the newest drawing goes next).
  async refresh() {
    if (!this.drawn) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      const answer = await this.ask(this.elements.draw.toDataURL("image/png"), this.neuron, this.backprop);
      this.answer = answer;
      this.render(answer);
      this.onAnswer(answer);
    } catch (error) {
      this.neuron = null; // asked of another network (the setup changed): ask again afresh
      this.backprop = null;
      this.onError(error.message);
    } finally {
      this.busy = false;
    }
    if (this.again) {
      this.again = false;
      this.refresh();
    }
  }

  render(answer) {
    const { elements } = this;
    const [, height, width] = answer.shape;
    paintGrey(elements.seen, bytes(answer.input), width, height);
    elements.prepared.textContent = answer.prepared;
    const gradients = answer.backprop ? answer.backprop.layers : {};
    elements.layers.replaceChildren(...answer.layers.map((layer) => this.layerView(layer, gradients[layer.index])));
    elements.backpropText.textContent = answer.backprop
      ? `one backward pass: the cost J = ${answer.backprop.loss.toPrecision(4)} (cross-entropy, as if it were ${this.classes[answer.backprop.label]}); under each layer, the gradient of J reaching it (the weights are not changed)`
      : "";
    elements.answer.textContent = `${answer.answer} (the most activated output neuron)`;
    elements.bars.replaceChildren(
      ...answer.probabilities.map((p, k) => {
        const bar = el("i");
        bar.style.width = `${Math.max(1, 100 * p)}%`;
        const row = el("div", { class: `bar-row${k === answer.prediction ? " top" : ""}`, "data-class": k }, [
          el("b", { text: this.classes[k] ?? String(k) }),
          el("span", {}, [bar]),
          el("span", { text: `${(100 * p).toFixed(1)}%` }),
        ]);
        return row;
      }),
    );
    if (answer.neuron) this.showNeuron(answer);
  }

  // One layer's output (and, after a backprop step, the gradient reaching it): cells for
  // neurons, small pictures for feature maps; a click on the output explains.
  layerView(layer, gradient) {
    const title = el("span", { text: `${layer.index}: ${layer.name}` });
    const parts = [title, this.cells(layer, bytes(layer.map), true), el("span", { class: "scale-note", text: `output up to \u00b1${layer.scale}` })];
    if (gradient) {
      parts.push(this.cells(layer, bytes(gradient.map), false));
      parts.push(el("span", { class: "scale-note", text: `\u2202J/\u2202output up to \u00b1${gradient.scale.toPrecision(3)}` }));
    }
    return el("div", { class: "layer", "data-layer": layer.index }, parts);
  }

  // Values of a layer's shape drawn as cells (neurons) or small pictures (feature maps).
  cells(layer, values, clickable) {
    const kind = clickable ? "output" : "gradient";
    if (layer.shape.length === 3) {
      const [channels, height, width] = layer.shape;
      const maps = [];
      for (let c = 0; c < channels; c++) {
        const canvas = el("canvas", { class: kind, "data-layer": layer.index, "data-channel": c });
        paintSigned(canvas, values, width, height, c * width * height);
        canvas.style.width = `${MAP}px`;
        canvas.style.height = `${(MAP * height) / width}px`;
        if (clickable) {
          canvas.title = `feature map ${c}: click a position`;
          canvas.addEventListener("click", (event) => {
            const row = Math.min(height - 1, Math.floor((event.offsetY / canvas.clientHeight) * height));
            const col = Math.min(width - 1, Math.floor((event.offsetX / canvas.clientWidth) * width));
            this.explain({ layer: layer.index, index: [c, row, col] });
          });
        }
        maps.push(canvas);
      }
      return el("div", { class: "maps" }, maps);
    }
    const n = layer.shape[0];
    const columns = columnsOf(n);
    const rows = Math.ceil(n / columns);
    const canvas = el("canvas", { class: kind, "data-layer": layer.index });
    paintSigned(canvas, values, columns, rows);
    canvas.style.width = `${columns * CELL}px`;
    canvas.style.height = `${rows * CELL}px`;
    if (clickable) {
      canvas.title = "a neuron each: click one for its weighted sum";
      canvas.addEventListener("click", (event) => {
        const col = Math.floor((event.offsetX / canvas.clientWidth) * columns);
        const row = Math.floor((event.offsetY / canvas.clientHeight) * rows);
        const j = row * columns + col;
        if (j < n) this.explain({ layer: layer.index, index: [j] });
      });
    }
    return canvas;
  }

  explain(neuron) {
    this.neuron = neuron;
    this.refresh();
  }

  // One backward pass for the picture taken as class `label` (null: stop showing it).
  backpropAs(label) {
    this.backprop = label;
    this.refresh();
  }

  showNeuron(answer) {
    const { neuron } = answer;
    const view = this.elements.neuronView;
    view.hidden = false;
    const close = el("button", { type: "button", class: "small-button", text: "close", onclick: () => this.closeNeuron() });
    const head = el("div", { class: "row" }, [el("b", { text: `layer ${neuron.layer}: ${neuron.name}` }), close]);
    const parts = neuron.kind === "kernel" ? this.kernelParts(neuron) : this.sumParts(neuron, answer);
    const activation = neuron.activation
      ? el("p", { text: `then the activation: ${neuron.activation.name} gives ${neuron.activation.value.toPrecision(4)}` })
      : el("p", { text: "no activation after it: this is an output neuron (softmax turns the outputs into probabilities)" });
    view.replaceChildren(head, ...parts, activation);
  }

  // A dense neuron: its weights as a picture (over the input image when they are one per pixel),
  // the weighted sum written out and its largest terms.
  sumParts(neuron, answer) {
    const [, height, width] = answer.shape;
    const weights = bytes(neuron.weights.map);
    const pictures = [];
    if (neuron.weights.size === width * height) {
      const w = el("canvas", { class: "weights" });
      paintSigned(w, weights, width, height);
      const input = bytes(answer.input);
      const terms = el("canvas", { class: "terms" });
      const product = Array.from(weights, (v, i) => 127.5 + ((v - 127.5) * input[i]) / 255);
      paintSigned(terms, product, width, height);
      for (const canvas of [w, terms]) {
        canvas.style.width = "112px";
        canvas.style.height = `${(112 * height) / width}px`;
      }
      pictures.push(
        el("figure", {}, [w, el("figcaption", { text: "its weights over the input's pixels" })]),
        el("figure", {}, [terms, el("figcaption", { text: "weight \u00d7 pixel: the terms" })]),
      );
    } else {
      const columns = columnsOf(neuron.weights.size);
      const w = el("canvas", { class: "weights" });
      paintSigned(w, weights, columns, Math.ceil(neuron.weights.size / columns));
      w.style.width = `${columns * CELL}px`;
      pictures.push(el("figure", {}, [w, el("figcaption", { text: "its weights, one per neuron of the layer before" })]));
    }
    const rows = neuron.terms.map((t) =>
      el("tr", {}, [t.input, t.weight, t.value, t.product].map((v, i) => el("td", { text: i ? v.toPrecision(3) : `#${v}` }))),
    );
    if (neuron.others) rows.push(el("tr", {}, [el("td", { text: `${neuron.others} more` }), el("td"), el("td"), el("td", { text: neuron.rest.toPrecision(3) })]));
    rows.push(el("tr", {}, [el("td", { text: "bias" }), el("td"), el("td"), el("td", { text: neuron.bias.toPrecision(3) })]));
    rows.push(el("tr", { class: "total" }, [el("th", { text: "z" }), el("td"), el("td"), el("th", { text: neuron.total.toPrecision(4) })]));
    const table = el("table", {}, [
      el("tr", {}, ["input", "weight", "value", "product"].map((text) => el("th", { text }))),
      ...rows,
    ]);
    return [el("div", { class: "pictures" }, pictures), el("code", { text: neuron.text }), table];
  }

  // A position of a feature map: for each input channel the kernel, the window of the input
  // under it and their products; the sum of all products plus the bias.
  kernelParts(neuron) {
    const grid = (values) =>
      el("table", {}, values.map((row) => el("tr", {}, row.map((v) => {
        const cell = el("td", { text: v.toFixed(2) });
        cell.style.background = css(diverging(127.5 + 127.5 * Math.max(-1, Math.min(1, v))));
        return cell;
      }))));
    const channels = neuron.kernel.map((kernel, c) =>
      el("div", { class: "row" }, [
        el("span", { text: `input map ${c}:` }),
        grid(kernel), el("span", { text: "\u00d7" }),
        grid(neuron.window[c]), el("span", { text: "=" }),
        grid(neuron.products[c]),
      ]),
    );
    return [el("code", { text: neuron.text }), el("p", { class: "hint", text: "kernel \u00d7 the input window under it (zero padding outside the image) = the products" }), ...channels.slice(0, 6)];
  }

  closeNeuron() {
    this.neuron = null;
    this.elements.neuronView.hidden = true;
  }
}
