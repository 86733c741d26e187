// The setup of a run: what the controls show, what the server checks, and what the address
// holds, so that a link reproduces the run. Values are parsed as far as they look like what
// they should be; anything else is passed on as text, for the server to refuse by name.

const TEXT_LISTS = new Set(["features", "activations"]);

// The settings in the address (?dataset=spirals&hidden=4,2&...); the server fills in the rest
// with its defaults (some depend on the data set: one input x takes the feature x alone).
export function setupFromAddress(search) {
  const setup = {};
  for (const [key, text] of new URLSearchParams(search)) {
    setup[key] = parseValue(key, text);
  }
  return setup;
}

// The address part (?...) that holds a setup: every value given, null ones (server defaults) left out.
export function addressOf(setup) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(setup)) {
    if (value === null || value === undefined) continue;
    if (key === "points") {
      if (value.length) params.set(key, value.map((point) => point.join(",")).join(";"));
    } else {
      params.set(key, Array.isArray(value) ? value.join(",") : String(value));
    }
  }
  return "?" + params.toString();
}

function parseValue(key, text) {
  if (key === "points") {
    return text === "" ? [] : text.split(";").map((point) => point.split(",").map(asNumber));
  }
  if (key === "nesterov") return text === "true" ? true : text === "false" ? false : text;
  if (key === "hidden") return text === "" ? [] : text.split(",").map(asNumber);
  if (TEXT_LISTS.has(key)) return text === "" ? [] : text.split(",");
  return asNumber(text);
}

// A number where the text is one, else the text itself.
function asNumber(text) {
  const value = Number(text);
  return text.trim() !== "" && Number.isFinite(value) ? value : text;
}

// Round a clicked coordinate, so that the address holds exactly the point that was trained on.
export function rounded(value) {
  return Math.round(value * 1000) / 1000;
}
