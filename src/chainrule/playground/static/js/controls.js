// The controls: the data panel (data set, noise, split, seed, points to add, a CSV file) and
// the training bar (output, optimizer and its settings, learning rate, batch, L1, L2, dropout).
// Each change is reported as a patch of the setup; render() shows a setup. A "?" beside each
// control explains it (the server's explanations: settings.py).

import { CLASS_COLOURS, css, el, explain } from "./draw.js";

// The value of a number field: a number where it is one, else its text (the server names it).
function numberOf(input) {
  const value = Number(input.value);
  return input.value.trim() !== "" && Number.isFinite(value) ? value : input.value;
}

const SETTING_LABELS = {
  momentum: "momentum",
  nesterov: "Nesterov",
  beta1: "\u03b21",
  beta2: "\u03b22",
  alpha: "\u03b1 (RMS decay)",
  rho: "\u03c1",
  lr_decay: "lr decay",
  weight_decay: "weight decay",
};

export class Controls {
  constructor(dataPanel, trainingBar, choices, onChange, onUpload) {
    Object.assign(this, { dataPanel, trainingBar, choices, onChange, onUpload });
    this.datasets = Object.fromEntries(choices.datasets.map((d) => [d.name, d]));
    this.addClass = 0;
    this.addValue = 0;
    this.buildData();
    this.buildTraining();
  }

  // -- the data panel --------------------------------------------------------------------------

  buildData() {
    const groups = [
      ["classes", ["circles", "xor", "gaussians", "spirals", "moons", "blobs", "custom"]],
      ["numbers", ["line", "plane", "bumps"]],
      ["your file", ["upload"]],
    ];
    this.datasetButtons = {};
    const grid = el("div", { class: "datasets" });
    for (const [title, names] of groups) {
      grid.append(el("div", { class: "group", text: title }));
      for (const name of names) {
        const button = el("button", {
          type: "button",
          "data-dataset": name,
          text: this.datasets[name].label,
          onclick: () => (name === "upload" ? this.file.click() : this.choose(name)),
        });
        this.datasetButtons[name] = button;
        grid.append(button);
      }
    }
    this.file = el("input", { type: "file", accept: ".csv,text/csv", hidden: "", id: "upload" });
    this.file.addEventListener("change", async () => {
      const file = this.file.files[0];
      if (file) await this.onUpload(file.name, await file.text());
      this.file.value = "";
    });
    const ranges = this.choices.ranges;
    this.classes = el(
      "select",
      { id: "classes", onchange: () => this.onChange({ classes: Number(this.classes.value), points: [] }) },
      Array.from({ length: ranges.classes.max - 1 }, (_, k) => el("option", { value: k + 2, text: k + 2 })),
    );
    this.n = this.slider("n", ranges.n.min, ranges.n.max, 10);
    this.noise = this.slider("noise", 0, 1, 0.01);
    this.test = this.slider("test", ranges.test.min, ranges.test.max, 0.1);
    this.seed = el("input", { type: "number", id: "seed", min: 0, max: ranges.seed.max, onchange: () => this.onChange({ seed: numberOf(this.seed) }) });
    const reseed = el("button", {
      type: "button",
      class: "small-button",
      text: "new",
      title: "a new seed: other points and other first weights",
      onclick: () => this.onChange({ seed: Math.floor(Math.random() * 100000) }),
    });
    this.adder = el("div", { class: "row classes", id: "adder" });
    this.clearAdded = el("button", { type: "button", class: "small-button", id: "clear-points", onclick: () => this.onChange({ points: [] }) });
    this.fileName = el("p", { class: "hint", id: "file-name" });
    this.fields = {
      classes: this.field("classes", this.classes, null, "classes"),
      n: this.field("points", this.n.box, this.n.shown, "n"),
      noise: this.field("noise", this.noise.box, this.noise.shown, "noise"),
    };
    this.dataPanel.replaceChildren(
      grid,
      this.file,
      this.fileName,
      this.fields.classes,
      this.fields.n,
      this.fields.noise,
      this.field("test fraction", this.test.box, this.test.shown, "test"),
      this.field("seed", el("div", { class: "row" }, [this.seed, reseed]), null, "seed"),
      el("div", { class: "field" }, [el("span", { text: "click the picture to add a point:" }), this.adder, this.clearAdded]),
    );
  }

  slider(name, min, max, step) {
    const input = el("input", { type: "range", id: name, min, max, step });
    const shown = el("span", { class: "value" });
    input.addEventListener("input", () => (shown.textContent = input.value));
    input.addEventListener("change", () => this.onChange({ [name]: Number(input.value) }));
    return { input, shown, box: input };
  }

  // A labelled control: its label, the value it shows, the "?" that explains setting `name`.
  field(label, control, shown, name) {
    const title = el("span", { text: `${label} ` });
    if (shown) title.append(shown);
    title.append(this.explanation(name));
    return el("label", { class: "field" }, [title, control]);
  }

  // A label's text and the "?" that explains setting `name`.
  caption(label, name) {
    return el("span", {}, [label, this.explanation(name)]);
  }

  explanation(name) {
    return explain(name, this.choices.explanations[name]);
  }

  choose(name) {
    // a new data set: its own noise and network defaults, no added points
    const patch = { dataset: name, noise: null, points: [], output: null };
    if (this.datasets[name].inputs === 1) Object.assign(patch, { features: ["x"], hidden: [], activations: [] });
    else if (this.datasets[this.setup.dataset]?.inputs === 1) Object.assign(patch, { features: ["x", "y"] });
    this.onChange(patch);
  }

  // -- the training bar ------------------------------------------------------------------------

  buildTraining() {
    this.output = el("select", { id: "output-choice", onchange: () => this.onChange({ output: this.output.value }) });
    this.optimizer = el(
      "select",
      { id: "optimizer", onchange: () => this.onChange({ optimizer: this.optimizer.value, lr: null, ...Object.fromEntries(Object.keys(SETTING_LABELS).map((name) => [name, null])) }) },
      Object.entries(this.choices.optimizers).map(([name, o]) => el("option", { value: name, text: `${name} (${o.label})` })),
    );
    this.numbers = {};
    const input = (name, step) => {
      const box = el("input", { type: "number", id: name, step, onchange: () => this.onChange({ [name]: numberOf(box) }) });
      this.numbers[name] = box;
      return box;
    };
    const number = (name, label, step) => el("label", { "data-setting": name }, [this.caption(label, name), input(name, step)]);
    this.nesterov = el("input", { type: "checkbox", id: "nesterov", onchange: () => this.onChange({ nesterov: this.nesterov.checked }) });
    this.settingFields = {};
    for (const name of Object.keys(SETTING_LABELS)) {
      this.settingFields[name] =
        name === "nesterov"
          ? el("label", { class: "check", "data-setting": name }, [this.nesterov, this.caption(SETTING_LABELS[name], name)])
          : number(name, SETTING_LABELS[name], "any");
    }
    // the learning rate: a menu of sensible values, or any value typed beside it
    this.lrMenu = el(
      "select",
      { id: "lr-menu", title: "a learning rate from the menu", onchange: () => this.onChange({ lr: Number(this.lrMenu.value) }) },
      [
        el("option", { value: "", text: "typed", disabled: "" }),
        ...this.choices.learning_rates.map((lr) => el("option", { value: lr, text: lr })),
      ],
    );
    this.trainingBar.replaceChildren(
      el("label", {}, [this.caption("output", "output"), this.output]),
      el("label", {}, [this.caption("optimizer", "optimizer"), this.optimizer]),
      el("label", { "data-setting": "lr" }, [this.caption("learning rate", "lr"), el("div", { class: "row" }, [this.lrMenu, input("lr", "any")])]),
      ...Object.values(this.settingFields),
      number("batch", "batch size", 1),
      number("l1", "L1", "any"),
      number("l2", "L2", "any"),
      number("dropout", "dropout", 0.05),
    );
  }

  // -- showing a setup -------------------------------------------------------------------------

  // The data set a setup names; the first one while it names none the server knows (a bad link).
  datasetOf(setup) {
    return this.datasets[setup.dataset] || this.datasets.circles;
  }

  render(setup, data) {
    this.setup = setup;
    const spec = this.datasetOf(setup);
    for (const [name, button] of Object.entries(this.datasetButtons)) button.classList.toggle("chosen", name === setup.dataset);
    this.fields.classes.hidden = !spec.has_classes;
    this.fields.n.hidden = ["custom", "upload"].includes(spec.name);
    this.fields.noise.hidden = !spec.noise;
    this.classes.value = setup.classes;
    this.n.input.value = setup.n;
    this.n.shown.textContent = setup.n;
    if (spec.noise) {
      this.noise.input.max = spec.noise_max;
      this.noise.input.step = spec.noise_max / 100;
      this.noise.input.value = setup.noise ?? spec.noise_default;
      this.noise.shown.textContent = setup.noise ?? spec.noise_default;
      this.fields.noise.firstChild.firstChild.textContent = `${spec.noise} `;
    }
    this.test.input.value = setup.test;
    this.test.shown.textContent = setup.test;
    this.seed.value = setup.seed;
    this.renderAdder(setup, data);
    this.renderTraining(setup, data);
  }

  renderAdder(setup, data) {
    const task = data ? data.task : this.datasetOf(setup).task;
    const count = Array.isArray(setup.points) ? setup.points.length : 0;
    this.clearAdded.textContent = `remove added points (${count})`;
    this.clearAdded.disabled = count === 0;
    if (task === "classification") {
      const names = data ? data.classes : ["0", "1"];
      this.addClass = Math.min(this.addClass, names.length - 1);
      this.adder.replaceChildren(
        ...names.map((name, k) =>
          el("button", {
            type: "button",
            class: k === this.addClass ? "chosen" : "",
            title: `add points of class ${name}`,
            "data-class": k,
            background: css(CLASS_COLOURS[k]),
            onclick: () => {
              this.addClass = k;
              this.renderAdder(setup, data);
            },
          }),
        ),
      );
    } else if (data && data.inputs === 2) {
      const [low, high] = data.value_range;
      const value = el("input", { type: "range", id: "add-value", min: low, max: high, step: (high - low) / 100, value: this.addValue });
      value.addEventListener("input", () => (this.addValue = Number(value.value)));
      this.addValue = Number(value.value);
      this.adder.replaceChildren("value", value);
    } else {
      this.adder.replaceChildren(el("span", { class: "hint", text: "(x, y) where you click" }));
    }
  }

  renderTraining(setup, data) {
    const task = data ? data.task : this.datasetOf(setup).task;
    const two = data && data.classes.length === 2;
    const outputs = task === "regression" ? ["linear"] : two ? ["softmax", "sigmoid"] : ["softmax"];
    this.output.replaceChildren(...outputs.map((name) => el("option", { value: name, text: this.choices.outputs[name] })));
    this.output.value = setup.output ?? outputs[0];
    this.optimizer.value = setup.optimizer;
    const own = this.choices.optimizers[setup.optimizer]?.settings ?? [];
    for (const [name, field] of Object.entries(this.settingFields)) field.hidden = !own.includes(name);
    this.nesterov.checked = setup.nesterov === true;
    const lr = setup.lr ?? this.choices.optimizers[setup.optimizer]?.lr;
    for (const [name, input] of Object.entries(this.numbers)) {
      if (document.activeElement !== input) input.value = name === "lr" ? lr : setup[name];
    }
    this.lrMenu.value = this.choices.learning_rates.includes(lr) ? String(lr) : "";
  }

  // The point a click at data coordinates (x, y) adds: [x, y, class or value] or [x, value].
  pointAt(x, y, data) {
    if (data.inputs === 1) return [x, y];
    return [x, y, data.task === "classification" ? this.addClass : Math.round(this.addValue * 1000) / 1000];
  }
}
