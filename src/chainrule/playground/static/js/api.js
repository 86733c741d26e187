// Talking to the playground server: JSON requests and the session's event stream.

export class RequestError extends Error {}

async function request(path, options) {
  const response = await fetch(path, options);
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    message = (await response.json()).error || message;
  } catch {
    // not JSON: keep the status line
  }
  throw new RequestError(message);
}

async function postJson(path, body) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  return response.json();
}

// One page's session on the server: its setup, its controls, its messages, its exports.
export class Session {
  static async start() {
    const { id, choices } = await postJson("/api/sessions");
    return new Session(id, choices);
  }

  constructor(id, choices) {
    this.id = id;
    this.choices = choices;
    this.base = `/api/sessions/${id}`;
  }

  sendSetup(setup) {
    return postJson(`${this.base}/setup`, setup);
  }

  control(action) {
    return postJson(`${this.base}/control`, { action });
  }

  upload(name, csv) {
    return postJson(`${this.base}/upload`, { name, csv });
  }

  // The image mode: the user's classes ([{class, name, data}]), and what the network makes of
  // a picture (a data: URL), with one neuron explained and a backward pass when asked.
  uploadImages(images) {
    return postJson(`${this.base}/upload`, { images });
  }

  inside(picture, neuron, backprop) {
    return postJson(`${this.base}/inside`, { picture, neuron: neuron ?? null, backprop: backprop ?? null });
  }

  // A file the server makes (run.zip, train.py), saved by the browser as a download.
  async download(what, fileName) {
    const response = await request(`${this.base}/export/${what}`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = fileName;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // Call onData / onFrame with each message; onLost when the session has ended.
  listen({ onData, onFrame, onLost }) {
    this.events = new EventSource(`${this.base}/events`);
    this.events.addEventListener("data", (event) => onData(JSON.parse(event.data)));
    this.events.addEventListener("frame", (event) => onFrame(JSON.parse(event.data)));
    this.events.addEventListener("error", () => {
      if (this.events.readyState === EventSource.CLOSED) onLost();
    });
  }

  // The page is going away: end the session's training now.
  close() {
    if (this.events) this.events.close();
    navigator.sendBeacon(`${this.base}/close`);
  }
}
