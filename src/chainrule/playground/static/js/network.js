// The network as a picture: a column of features, one per hidden layer, one of outputs; each
// neuron shows its output over the whole view, each connection is a line coloured by the sign
// of its weight and as thick as the weight is large. The columns' buttons edit the network.

import { CLASS_COLOURS, css, drawNeuron, el, explain, NEGATIVE, POSITIVE } from "./draw.js";

const SVG = "http://www.w3.org/2000/svg";

export class NetworkView {
  // currentSetup(): the setup the page holds now (edits change it); onChange(patch): an edit.
  constructor(container, layerControls, zoom, tooltip, choices, currentSetup, onChange) {
    Object.assign(this, { container, layerControls, zoom, tooltip, choices, currentSetup, onChange });
    this.columns = []; // per column: the neurons' canvases (features: the chosen ones only)
    this.edges = []; // per layer of weights: lines[j][i] from neuron i to neuron j
    this.frame = null;
    window.addEventListener("resize", () => this.placeEdges());
  }

  // Build the columns of the network the server runs now (its data message says which).
  layout(data) {
    this.data = data;
    this.container.replaceChildren();
    this.svg = document.createElementNS(SVG, "svg");
    this.container.append(this.svg);
    this.columns = [this.featureColumn(data)];
    data.columns.slice(1, -1).forEach((size, layer) => this.columns.push(this.hiddenColumn(size, layer, data)));
    this.columns.push(this.outputColumn(data));
    this.layoutLayerControls(data.columns.length - 2);
    this.edges = [];
    for (let layer = 0; layer + 1 < this.columns.length; layer++) {
      const from = this.columns[layer].length;
      const to = this.columns[layer + 1].length;
      this.edges.push(
        Array.from({ length: to }, (_, j) => Array.from({ length: from }, (_, i) => this.edge(layer, i, j))),
      );
    }
    requestAnimationFrame(() => this.placeEdges());
    if (this.frame) this.update(this.frame);
  }

  layoutLayerControls(layers) {
    const { hidden_layers: most } = this.choices.limits;
    const change = (delta) => {
      const setup = this.currentSetup();
      const hidden = [...setup.hidden];
      const activations = [...setup.activations];
      if (delta > 0) {
        hidden.push(2);
        activations.push(activations.at(-1) || "tanh");
      } else {
        hidden.pop();
        activations.pop();
      }
      this.onChange({ hidden, activations });
    };
    this.layerControls.replaceChildren(
      el("button", { type: "button", class: "small-button", title: "add a hidden layer", onclick: () => change(1), text: "+" }),
      el("button", { type: "button", class: "small-button", title: "remove the last hidden layer", onclick: () => change(-1), text: "\u2212" }),
      el("span", { text: `${layers} hidden layer${layers === 1 ? "" : "s"} (at most ${most})` }),
      this.explanation("hidden"),
    );
    this.layerControls.querySelectorAll("button")[0].disabled = layers >= most;
    this.layerControls.querySelectorAll("button")[1].disabled = layers === 0;
  }

  featureColumn(data) {
    const names = data.inputs === 1 ? this.choices.one_input_features : Object.keys(this.choices.features);
    const canvases = [];
    const rows = names.map((name) => {
      const chosen = data.features.includes(name);
      const label = this.choices.features[name];
      const toggle = () => {
        const now = this.currentSetup().features;
        const features = now.includes(name) ? now.filter((f) => f !== name) : [...now, name];
        this.onChange({ features });
      };
      const canvas = this.neuronCanvas(() => `feature ${label}`);
      if (chosen) canvases.push(canvas);
      return el("div", { class: `feature ${chosen ? "on" : "off"}`, "data-feature": name }, [
        el("button", { type: "button", title: chosen ? "leave out" : "feed to the network", onclick: toggle, text: label }),
        canvas,
      ]);
    });
    this.addColumn("features", [], rows, "features");
    return canvases;
  }

  hiddenColumn(size, layer, data) {
    const { neurons: most } = this.choices.limits;
    const resize = (delta) => {
      const hidden = [...this.currentSetup().hidden];
      hidden[layer] = Math.max(1, Math.min(most, hidden[layer] + delta));
      this.onChange({ hidden });
    };
    const activation = el(
      "select",
      {
        title: "activation of this layer",
        "data-layer": layer,
        onchange: (event) => {
          const activations = [...this.currentSetup().activations];
          activations[layer] = event.target.value;
          this.onChange({ activations });
        },
      },
      this.choices.activations.map((name) => el("option", { value: name, text: name })),
    );
    activation.value = data.activations[layer];
    const head = [
      el("div", { class: "row" }, [
        el("button", { type: "button", title: "one neuron more", onclick: () => resize(1), text: "+" }),
        el("button", { type: "button", title: "one neuron fewer", onclick: () => resize(-1), text: "\u2212" }),
      ]),
      el("span", {}, [`${size} neuron${size === 1 ? "" : "s"}`, this.explanation("neurons")]),
      el("span", {}, [activation, this.explanation("activation")]),
    ];
    const canvases = Array.from({ length: size }, (_, k) =>
      this.neuronCanvas(() => `hidden layer ${layer + 1}, neuron ${k + 1} (${data.activations[layer]})`),
    );
    this.addColumn(`layer ${layer + 1}`, head, canvases);
    return canvases;
  }

  outputColumn(data) {
    const count = data.columns.at(-1);
    const name = (k) => {
      if (data.task === "regression") return "the output (before undoing the target's scaling)";
      if (data.output === "sigmoid") return "the logit z: p(class 1) = sigmoid(z)";
      return `the logit of class ${data.classes[k]}`;
    };
    const canvases = Array.from({ length: count }, (_, k) => this.neuronCanvas(() => name(k)));
    if (data.task === "classification" && data.output === "softmax") {
      canvases.forEach((canvas, k) => (canvas.style.borderColor = css(CLASS_COLOURS[k])));
    }
    this.addColumn("output", [el("span", { text: data.output })], canvases);
    return canvases;
  }

  // A column: its title (with the "?" explaining setting `explained`), its head, its neurons.
  addColumn(title, head, neurons, explained) {
    const name = el("b", { text: title });
    if (explained) name.append(this.explanation(explained));
    this.container.append(
      el("div", { class: "column" }, [el("div", { class: "head" }, [name, ...head]), el("div", { class: "neurons" }, neurons)]),
    );
  }

  explanation(name) {
    return explain(name, this.choices.explanations[name]);
  }

  neuronCanvas(describe) {
    const canvas = el("canvas", { class: "neuron", width: 32, height: 32 });
    canvas.addEventListener("mouseenter", () => this.showZoom(canvas, describe()));
    canvas.addEventListener("mouseleave", () => (this.zoom.hidden = true));
    return canvas;
  }

  edge(layer, i, j) {
    const line = document.createElementNS(SVG, "line");
    const hit = document.createElementNS(SVG, "line");
    hit.setAttribute("class", "hit");
    hit.addEventListener("mousemove", (event) => this.showWeight(event, layer, i, j));
    hit.addEventListener("mouseleave", () => (this.tooltip.hidden = true));
    this.svg.append(line, hit);
    return { line, hit };
  }

  // Lines from each neuron's right edge to the next column's left edges.
  placeEdges() {
    if (!this.svg) return;
    const box = this.container.getBoundingClientRect();
    this.svg.setAttribute("width", this.container.scrollWidth);
    this.svg.setAttribute("height", this.container.scrollHeight);
    const left = this.container.scrollLeft - box.left;
    const top = this.container.scrollTop - box.top;
    this.edges.forEach((layer, l) => {
      layer.forEach((row, j) => {
        const to = this.columns[l + 1][j].getBoundingClientRect();
        row.forEach(({ line, hit }, i) => {
          const from = this.columns[l][i].getBoundingClientRect();
          for (const node of [line, hit]) {
            node.setAttribute("x1", from.right + left);
            node.setAttribute("y1", from.top + from.height / 2 + top);
            node.setAttribute("x2", to.left + left);
            node.setAttribute("y2", to.top + to.height / 2 + top);
          }
        });
      });
    });
  }

  // A new frame: every neuron's picture, every weight's line.
  update(frame) {
    this.frame = frame;
    if (!this.data) return;
    frame.neurons.forEach((pictures, c) => {
      pictures.forEach((picture, k) => {
        const canvas = this.columns[c] && this.columns[c][k];
        if (canvas) {
          canvas.picture = picture;
          drawNeuron(canvas, picture, this.data.inputs);
        }
      });
    });
    frame.weights.forEach(({ w }, l) => {
      const layer = this.edges[l];
      if (!layer) return;
      w.forEach((row, j) =>
        row.forEach((weight, i) => {
          const edge = layer[j] && layer[j][i];
          if (!edge) return;
          const size = Math.abs(weight ?? 0);
          edge.line.setAttribute("stroke", css(weight >= 0 ? POSITIVE : NEGATIVE));
          edge.line.setAttribute("stroke-width", Math.min(8, 0.4 + 2.2 * size).toFixed(2));
          edge.line.setAttribute("stroke-opacity", Math.min(1, 0.25 + 0.6 * size).toFixed(2));
        }),
      );
    });
  }

  showZoom(canvas, text) {
    const big = this.zoom.querySelector("canvas");
    if (canvas.picture) drawNeuron(big, canvas.picture, this.data.inputs);
    const scale = canvas.picture ? ` Colours span \u00b1${canvas.picture.scale}.` : "";
    this.zoom.querySelector("p").textContent = `${text}.${scale}`;
    const box = canvas.getBoundingClientRect();
    this.zoom.style.left = `${Math.min(box.right + 10, window.innerWidth - 220)}px`;
    this.zoom.style.top = `${Math.max(4, box.top - 80)}px`;
    this.zoom.hidden = false;
  }

  showWeight(event, layer, i, j) {
    const weights = this.frame && this.frame.weights[layer];
    if (!weights) return;
    const weight = weights.w[j][i];
    this.tooltip.textContent = `weight ${weight === null ? "NaN" : weight.toFixed(4)} (layer ${layer + 1}: neuron ${i + 1} \u2192 ${j + 1})`;
    this.tooltip.style.left = `${event.clientX + 12}px`;
    this.tooltip.style.top = `${event.clientY + 12}px`;
    this.tooltip.hidden = false;
  }
}
