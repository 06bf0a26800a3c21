// ipp-gateway dashboard: the page's whole script. No framework and no build step.
//
// The state lives here, in memory: a snapshot from the live feed (/api/live, see
// gateway/dashboard/live.py) replaces it, `events` batches change it, and the page is drawn
// again from it without a reload. Elements are kept per printer and per job and only their
// text changes, so a button with focus keeps it while progress ticks in.
//
// Actions need a login: "Log in" fetches /api/login, the browser asks for the password
// (HTTP Basic), and the token it answers goes in X-CSRF-Token on every action and, on the
// WebSocket, makes the feed show the jobs as that user sees them.
//
// An administrator also gets the printers form: add, edit and remove printers. The gateway
// writes its configuration file and reloads; the feed is closed (1012), reconnects, and the
// snapshot after it shows the printers as they now are.

const BACKOFF_SECONDS = [1, 2, 5, 10, 30];
const FINISHED_KEPT = 50; // finished jobs kept in memory, as the server's snapshot
const NEWS_KEPT_MS = 8000;

const state = {
  printers: new Map(), // name -> printer view (gateway/dashboard/view.py) + rev
  jobs: new Map(), // id -> job view + rev
  server: null,
  viewer: null,
  revision: 0,
};
const session = { token: null, user: null, admin: false };
const live = { socket: null, attempt: 0, timer: null, connectedOnce: false };

const $ = (id) => document.getElementById(id);
const printerEls = new Map();
const jobEls = new Map();
let renderQueued = false;

// -- the live feed ---------------------------------------------------------------------------

function connect() {
  clearTimeout(live.timer);
  live.timer = null;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let socket;
  try {
    socket = new WebSocket(`${scheme}//${location.host}/api/live`);
  } catch (error) {
    scheduleReconnect();
    return;
  }
  live.socket = socket;
  setConnection("connecting", "Connecting…");
  socket.addEventListener("open", () => {
    // Not live yet: a connection closed before its snapshot counts as a failed attempt, so
    // a gateway that accepts and drops still gets the growing backoff.
    // The server sends a snapshot on connect; after a loss, ask again in case the first one
    // crossed events this page has not seen. A login makes it send one as that user.
    if (session.token) {
      send({ type: "login", token: session.token });
    } else if (live.connectedOnce) {
      send({ type: "resync" });
    }
    live.connectedOnce = true;
  });
  socket.addEventListener("message", (event) => receive(event.data));
  socket.addEventListener("close", () => {
    if (live.socket !== socket) return; // replaced on purpose (a logout)
    live.socket = null;
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  if (live.timer !== null) return;
  const seconds = BACKOFF_SECONDS[Math.min(live.attempt, BACKOFF_SECONDS.length - 1)];
  live.attempt += 1;
  setConnection("offline", `Connection lost: trying again in ${seconds} s`);
  live.timer = setTimeout(connect, seconds * 1000);
}

function reconnectNow() {
  const old = live.socket;
  live.socket = null;
  if (old) old.close(1000, "login changed");
  connect();
}

function send(message) {
  if (live.socket && live.socket.readyState === WebSocket.OPEN) {
    live.socket.send(JSON.stringify(message));
  }
}

function receive(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return;
  }
  if (message.type === "snapshot") {
    applySnapshot(message);
    live.attempt = 0;
    setConnection("live", "Live");
    settleChange();
  } else if (message.type === "events" && Array.isArray(message.events)) {
    for (const event of message.events) applyEvent(event);
  } else if (message.type === "resync") {
    send({ type: "resync" });
  }
  scheduleRender();
}

function applySnapshot(snapshot) {
  const rev = snapshot.revision;
  state.revision = rev;
  state.server = snapshot.server || null;
  state.viewer = snapshot.viewer || null;
  state.printers = new Map((snapshot.printers || []).map((p) => [p.name, { ...p, rev }]));
  const before = state.jobs;
  state.jobs = new Map();
  for (const job of snapshot.jobs || []) {
    state.jobs.set(job.id, { ...job, rev });
    const old = before.get(job.id);
    if (old && old.state !== job.state) announce(job);
  }
}

function applyEvent(event) {
  if (event.type === "job" && event.job) {
    const job = event.job;
    const old = state.jobs.get(job.id);
    // Events queued before a snapshot may arrive after it: older news is dropped.
    if (old && old.rev > event.revision) return;
    state.jobs.set(job.id, { ...job, rev: event.revision });
    if (!old || old.state !== job.state) announce(job);
    state.revision = Math.max(state.revision, event.revision);
  } else if (event.type === "printer-state" && event.printer) {
    const printer = state.printers.get(event.printer.name);
    if (!printer) {
      send({ type: "resync" }); // a printer this page has not heard of
      return;
    }
    if (printer.rev > event.revision) return;
    Object.assign(printer, event.printer, { rev: event.revision });
  } else if (event.type === "resync") {
    send({ type: "resync" });
  }
}

function pruneFinished() {
  const finished = [...state.jobs.values()].filter((j) => j.terminal).sort((a, b) => b.id - a.id);
  for (const job of finished.slice(FINISHED_KEPT)) state.jobs.delete(job.id);
}

// -- drawing ---------------------------------------------------------------------------------

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  // One draw per frame however many messages came in it.
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  pruneFinished();
  renderPrinters();
  renderJobs();
  renderServer();
  renderSession();
}

function fill(root, field, text) {
  const el = root.querySelector(`[data-f="${field}"]`);
  if (el && el.textContent !== text) el.textContent = text;
  return el;
}

function showRow(root, row, shown) {
  for (const el of root.querySelectorAll(`[data-row="${row}"]`)) el.hidden = !shown;
}

function place(list, elements) {
  // Move only what is out of place: moving an element would take its focus away.
  elements.forEach((el, index) => {
    if (list.children[index] !== el) list.insertBefore(el, list.children[index] || null);
  });
  while (list.children.length > elements.length) list.lastElementChild.remove();
}

function fromTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

const PRINTER_TONES = { idle: "ok", printing: "busy", stopped: "warn" };
const JOB_TONES = {
  printing: "busy", completed: "ok", failed: "error", held: "warn", stopped: "warn",
  queued: "neutral", canceled: "neutral",
};

function renderPrinters() {
  const printers = [...state.printers.values()].sort((a, b) => a.name.localeCompare(b.name));
  const elements = printers.map((printer) => {
    let el = printerEls.get(printer.name);
    if (!el) {
      el = fromTemplate("printer-template");
      el.dataset.printer = printer.name;
      el.querySelectorAll("[data-act]").forEach((button) => {
        button.addEventListener("click", () =>
          act("printers", printer.name, button.dataset.act, button));
      });
      bindConfigButtons(el, printer.name);
      printerEls.set(printer.name, el);
    }
    drawPrinter(el, printer);
    return el;
  });
  for (const [name] of printerEls) {
    if (!state.printers.has(name)) {
      printerEls.delete(name);
      editForms.delete(name);
    }
  }
  place($("printers"), elements);
  $("printers-empty").hidden = printers.length > 0 || state.server === null;
}

function drawPrinter(el, printer) {
  const stateWord = printer.paused ? "paused" : printer.state;
  el.dataset.state = stateWord;
  el.dataset.queued = String(printer.queued);
  fill(el, "name", printer.name);
  const badge = fill(el, "state", stateWord);
  badge.dataset.tone = printer.paused ? "warn" : PRINTER_TONES[printer.state] || "neutral";
  fill(el, "message", printer.message || "");
  fill(el, "reasons", printer.reasons.length ? printer.reasons.join(", ") : "none");
  fill(el, "queued", plural(printer.queued, "job", "jobs") + " waiting or printing");
  fill(el, "device", printer.device || "none");
  fill(el, "driver", printer.driver || "unknown");
  fill(el, "model", printer.model || "unknown");
  const where = [printer.location, printer.info].filter(Boolean).join(" — ");
  fill(el, "location", where);
  showRow(el, "location", Boolean(where));
  // The remote LPD queue's state or the PJL display, where the transport reports one.
  fill(el, "device_status", printer.device_status || "");
  showRow(el, "device_status", Boolean(printer.device_status));
  const supplies = printer.supplies || [];
  const list = el.querySelector('[data-f="supplies"]');
  if (list.dataset.shown !== JSON.stringify(supplies)) {
    list.replaceChildren(...supplies.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    list.dataset.shown = JSON.stringify(supplies);
  }
  showRow(el, "supplies", supplies.length > 0);
  const link = el.querySelector('[data-f="page"]');
  if (printer.path && link.getAttribute("href") !== printer.path) link.href = printer.path;
  link.parentElement.hidden = !printer.path;
  link.setAttribute("aria-label", `Status page of ${printer.name}`);
  el.querySelector("[data-admin]").hidden = !session.token;
  el.querySelector("[data-config]").hidden = !(session.token && session.admin);
  el.querySelector('[data-act="pause"]').hidden = printer.paused;
  el.querySelector('[data-act="resume"]').hidden = !printer.paused;
  labelButtons(el, printer.name);
}

function renderJobs() {
  const jobs = [...state.jobs.values()].sort((a, b) =>
    Number(a.terminal) - Number(b.terminal) || b.id - a.id);
  const elements = jobs.map((job) => {
    let el = jobEls.get(job.id);
    if (!el) {
      el = fromTemplate("job-template");
      el.id = `job-${job.id}`;
      el.dataset.job = String(job.id);
      el.querySelectorAll("[data-act]").forEach((button) => {
        button.addEventListener("click", () => act("jobs", job.id, button.dataset.act, button));
      });
      jobEls.set(job.id, el);
    }
    drawJob(el, job);
    return el;
  });
  for (const [id, el] of jobEls) {
    if (!state.jobs.has(id)) jobEls.delete(id);
  }
  place($("jobs"), elements);
  $("jobs-empty").hidden = jobs.length > 0;
}

function drawJob(el, job) {
  el.dataset.state = job.state;
  el.dataset.bytes = String(job.bytes);
  el.dataset.pages = String(job.pages);
  fill(el, "title", `Job ${job.id}`);
  const badge = fill(el, "state", job.state);
  badge.dataset.tone = JOB_TONES[job.state] || "neutral";
  // view.py leaves out the owner and the name for a viewer who may not see them.
  fill(el, "owner", "owner" in job ? job.owner || "unknown" : "hidden");
  fill(el, "name", "name" in job ? job.name || "untitled" : "hidden");
  fill(el, "printer", job.printer);
  fill(el, "format", job.format || "unknown");
  fill(el, "pages", String(job.pages));
  fill(el, "bytes", job.size ? `${bytes(job.bytes)} / ${bytes(job.size)}` : bytes(job.bytes));
  fill(el, "error", job.error || "");
  showRow(el, "error", Boolean(job.error));
  const bar = el.querySelector('[data-f="progress"]');
  // Converted jobs send more (or fewer) bytes than the document holds: a bar only where the
  // bytes sent measure the way through the document.
  const measurable = !job.terminal && job.size > 0 && job.bytes <= job.size;
  bar.hidden = !measurable;
  if (measurable) {
    bar.max = job.size;
    bar.value = job.bytes;
    bar.setAttribute("aria-label", `Job ${job.id}: ${percent(job.bytes, job.size)} sent`);
  }
  el.querySelector("[data-admin]").hidden = !session.token || job.terminal;
  el.querySelector('[data-act="cancel"]').hidden = job.terminal;
  el.querySelector('[data-act="hold"]').hidden = job.state !== "queued";
  el.querySelector('[data-act="release"]').hidden = job.state !== "held";
  labelButtons(el, `job ${job.id}`);
}

function labelButtons(el, what) {
  // "Cancel job 7": the visible word alone is ambiguous in a screen reader's button list.
  for (const button of el.querySelectorAll("[data-act]")) {
    const label = `${button.textContent.trim()} ${what}`;
    if (button.getAttribute("aria-label") !== label) button.setAttribute("aria-label", label);
  }
}

function renderServer() {
  const server = state.server;
  if (!server) return;
  const root = $("server");
  fill(root, "version", server.version || "unknown");
  fill(root, "auth", server.auth_enabled
    ? "on: actions need an account of the gateway"
    : "off: actions need [auth] enabled = true and an account (ipp-gateway passwd)");
  fill(root, "fingerprint", server.certificate_sha256 || "no TLS certificate");
  fill(root, "expires", expiry(server.certificate_expires));
  const names = Object.entries(server.dnssd_names || {});
  fill(root, "dnssd", names.length
    ? names.map(([printer, name]) => `${printer}: “${name}”`).join("; ")
    : "none advertised");
}

function renderSession() {
  const loggedIn = Boolean(session.token);
  $("login").hidden = loggedIn;
  $("logout").hidden = !loggedIn;
  $("printer-admin").hidden = !(loggedIn && session.admin);
  const who = loggedIn
    ? `Logged in as ${session.user}${session.admin ? " (administrator)" : ""}`
    : "Not logged in";
  if ($("who").textContent !== who) $("who").textContent = who;
}

function setConnection(kind, text) {
  const el = $("connection");
  el.dataset.state = kind;
  if (el.textContent !== text) el.textContent = text;
}

let newsTimer = null;
function announce(job) {
  // The job list itself is not a live region: progress would be read out at every tick.
  // Changes of state are, in one polite sentence.
  const news = $("job-news");
  const name = "name" in job && job.name ? ` (${job.name})` : "";
  news.textContent = `Job ${job.id}${name} on ${job.printer}: ${job.state}` +
    (job.error ? `: ${job.error}` : "");
  clearTimeout(newsTimer);
  newsTimer = setTimeout(() => { news.textContent = ""; }, NEWS_KEPT_MS);
}

// -- words -----------------------------------------------------------------------------------

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function bytes(n) {
  if (n < 1000) return plural(n, "byte", "bytes");
  const units = ["kB", "MB", "GB", "TB"];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 100 ? 1 : 0)} ${units[unit]}`;
}

function percent(done, total) {
  return `${Math.floor((100 * done) / total)}%`;
}

function expiry(text) {
  if (!text) return "no TLS certificate";
  const when = new Date(text);
  if (Number.isNaN(when.getTime())) return text;
  const days = Math.floor((when.getTime() - Date.now()) / 86400000);
  const left = days < 0 ? "expired" : `in ${plural(days, "day", "days")}`;
  return `${when.toLocaleString()} (${left})`;
}

// -- login and actions -----------------------------------------------------------------------

function showNotice(parts, tone = "info") {
  const box = $("notice");
  const text = $("notice-text");
  text.replaceChildren(...parts.map((part) =>
    typeof part === "string" ? document.createTextNode(part) : part));
  box.dataset.tone = tone;
  box.hidden = false;
}

function httpsAddress() {
  return `https://${location.host}${location.pathname}`;
}

function httpsAdvice(what) {
  const link = document.createElement("a");
  link.href = httpsAddress();
  link.textContent = link.href;
  return [`${what}: passwords are only taken over HTTPS. Open `, link, " and log in there."];
}

async function errorText(response) {
  const type = response.headers.get("content-type") || "";
  try {
    if (type.includes("json")) {
      const body = await response.json();
      return body.error || body.message || `HTTP ${response.status}`;
    }
    const text = (await response.text()).trim();
    return text || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function login() {
  const button = $("login");
  button.disabled = true;
  try {
    // On 401 the browser asks for the user name and password itself and tries again.
    const response = await fetch("/api/login", {
      credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store",
    });
    if (response.status === 426) {
      showNotice(httpsAdvice("Cannot log in here"), "error");
      return;
    }
    if (response.status === 401) {
      showNotice(["Not logged in: the user name or password was not accepted."], "error");
      return;
    }
    if (!response.ok) {
      showNotice([`Cannot log in: ${await errorText(response)}`], "error");
      return;
    }
    const answer = await response.json();
    session.token = answer.token;
    session.user = answer.user;
    session.admin = Boolean(answer.admin);
    showNotice([`Logged in as ${answer.user}.`]);
    send({ type: "login", token: session.token });
    render();
  } catch (error) {
    showNotice([`Cannot log in: the gateway did not answer (${error.message}).`], "error");
  } finally {
    button.disabled = false;
  }
}

function forgetLogin() {
  session.token = null;
  session.user = null;
  session.admin = false;
  render();
}

function logout() {
  forgetLogin();
  showNotice(["Logged out of this page. The browser keeps the password until it is closed."]);
  reconnectNow(); // the feed goes back to what anyone may see
}

const ACTION_WORDS = {
  cancel: "Cancel", hold: "Hold", release: "Release", pause: "Pause", resume: "Resume",
  identify: "Identify", "test-page": "Test page",
};

async function refusal(response) {
  const reason = await errorText(response);
  // A token from before a restart of the gateway (its key is made at start) is refused:
  // the page forgets it and offers the login again.
  const stale = response.status === 401 ||
    (response.status === 403 && /token/i.test(reason));
  if (stale) forgetLogin();
  return `${reason}${stale ? " Log in again." : ""}`;
}

async function act(kind, id, verb, button) {
  const what = `${ACTION_WORDS[verb] || verb} ${kind === "jobs" ? "job" : "printer"} ${id}`;
  if (!session.token) {
    showNotice([`${what}: log in first.`], "error");
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch(`/api/${kind}/${encodeURIComponent(id)}/${verb}`, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "X-CSRF-Token": session.token, Accept: "application/json" },
    });
    if (response.status === 426) {
      showNotice(httpsAdvice(what), "error");
    } else if (!response.ok) {
      showNotice([`${what} was refused: ${await refusal(response)}`], "error");
    } else {
      const answer = await response.json().catch(() => ({}));
      const made = answer.job && verb === "test-page" ? ` as job ${answer.job}` : "";
      showNotice([`${what}: done${made}.`]);
    }
  } catch (error) {
    showNotice([`${what} failed: the gateway did not answer (${error.message}).`], "error");
  } finally {
    button.disabled = false;
  }
}

// -- the printers form (administrators) ------------------------------------------------------

const NETWORK_HOST = /^[^\s/?#@]+$/;
let formCount = 0;
let addForm = null;
const editForms = new Map(); // printer name -> its open edit form
// What the last saved change should look like once the gateway has reloaded: the snapshot
// that shows it says so in the notice.
let pendingChange = null;

function postJson(path, body) {
  return fetch(path, {
    method: "POST", credentials: "same-origin", cache: "no-store",
    headers: {
      "X-CSRF-Token": session.token || "", "Content-Type": "application/json",
      Accept: "application/json",
    },
    body: JSON.stringify(body),
  });
}

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

function expectChange(text, check) {
  pendingChange = { text, check };
  settleChange(); // a reload in place may have shown the change before the answer came
}

function settleChange() {
  if (pendingChange && pendingChange.check(state.printers)) {
    showNotice([pendingChange.text]);
    pendingChange = null;
  }
}

// A device URI in the builder's parts, where the builder can make it again as it is.
function splitDevice(uri) {
  const scheme = uri.slice(0, Math.max(uri.indexOf(":"), 0)).toLowerCase();
  if (scheme === "usb" || scheme === "serial") return { kind: "local", local: uri };
  if (scheme === "lpd" || scheme === "socket") {
    let url;
    try {
      url = new URL(uri);
    } catch {
      return { kind: "other", uri };
    }
    const plain = !url.username && !url.password && !url.search && !url.hash && url.hostname;
    const path = url.pathname;
    if (plain && scheme === "lpd" && !url.port && /^\/[^/]+$/.test(path)) {
      return { kind: "lpd", host: url.hostname, queue: decodeURIComponent(path.slice(1)) };
    }
    if (plain && scheme === "socket" && url.port && (path === "" || path === "/")) {
      return { kind: "socket", host: url.hostname, port: url.port };
    }
  }
  return { kind: "other", uri };
}

function hostPart(host) {
  // An IPv6 address goes in brackets in a URI.
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

class PrinterForm {
  // mode "add" (under the list) or "edit" (in the card of `printer`).
  constructor(mode, printer, onClose) {
    this.mode = mode;
    this.name = printer ? printer.name : "";
    this.initialUri = printer ? printer.device || "" : "";
    this.onClose = onClose;
    this.devicesLoaded = false;
    const form = fromTemplate("printer-form-template");
    this.form = form;
    formCount += 1;
    const prefix = `printer-form-${formCount}`;
    for (const el of form.querySelectorAll("[data-k]")) el.id = `${prefix}-${el.dataset.k}`;
    for (const label of form.querySelectorAll("[data-for]")) {
      label.htmlFor = `${prefix}-${label.dataset.for}`;
    }
    for (const el of form.querySelectorAll("[data-hint]")) {
      el.setAttribute("aria-describedby", `${prefix}-${el.dataset.hint}`);
    }
    form.setAttribute("aria-labelledby", `${prefix}-title`);
    for (const el of form.querySelectorAll('[data-only="add"]')) {
      el.hidden = mode !== "add";
      for (const control of el.querySelectorAll("input, select")) control.disabled = mode !== "add";
    }
    if (mode === "edit") {
      this.k("title").textContent = `Edit ${printer.name}`;
      this.fillFrom(printer);
    }
    form.addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid"); // said wrong of what is no longer there
      this.update();
    });
    form.addEventListener("change", (event) => {
      if (event.target === this.k("kind") && this.kind() === "local" && !this.devicesLoaded) {
        this.loadDevices();
      }
      if (event.target === this.k("local")) this.explainDevice(this.mode === "add");
      this.update();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.button("probe").addEventListener("click", () => this.probe());
    this.button("devices").addEventListener("click", () => this.loadDevices());
    this.button("close").addEventListener("click", () => this.close());
    this.update();
  }

  k(key) {
    return this.form.querySelector(`[data-k="${key}"]`);
  }

  button(action) {
    return this.form.querySelector(`[data-do="${action}"]`);
  }

  kind() {
    return this.k("kind").value;
  }

  fillFrom(printer) {
    const parts = splitDevice(printer.device || "");
    this.k("kind").value = parts.kind;
    for (const key of ["host", "queue", "port", "uri"]) {
      if (parts[key] !== undefined) this.k(key).value = parts[key];
    }
    if (parts.kind === "local") this.loadDevices(parts.local);
    const driver = this.k("driver");
    if (printer.driver && ![...driver.options].some((o) => o.value === printer.driver)) {
      driver.append(new Option(printer.driver, printer.driver));
    }
    driver.value = printer.driver || "raw";
    this.k("location").value = printer.location || "";
    this.k("info").value = printer.info || "";
  }

  // The device URI the parts make; "" while a part is missing.
  uri() {
    const value = (key) => this.k(key).value.trim();
    switch (this.kind()) {
      case "lpd":
        return value("host") && value("queue")
          ? `lpd://${hostPart(value("host"))}/${encodeURIComponent(value("queue"))}` : "";
      case "socket":
        return value("host") && value("port")
          ? `socket://${hostPart(value("host"))}:${value("port")}` : "";
      case "local":
        return this.k("local").value;
      default:
        return value("uri");
    }
  }

  update() {
    const kind = this.kind();
    for (const field of this.form.querySelectorAll("[data-kinds]")) {
      const shown = field.dataset.kinds.split(" ").includes(kind);
      field.hidden = !shown;
      // A hidden part is left out of the form's checks.
      for (const control of field.querySelectorAll("input, select")) control.disabled = !shown;
    }
    const uri = this.uri();
    const built = this.k("built");
    const text = uri || "not complete yet";
    if (built.textContent !== text) built.textContent = text;
  }

  async loadDevices(wanted) {
    this.devicesLoaded = true;
    const select = this.k("local");
    const hint = this.k("local-hint");
    const keep = wanted || select.value;
    hint.textContent = "Looking for USB printers and serial ports…";
    try {
      const response = await fetch("/api/devices", {
        credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        hint.textContent = `Cannot list the devices: ${await refusal(response)}`;
        return;
      }
      const found = (await response.json()).devices || [];
      this.devices = new Map(found.map((d) => [d.uri, d]));
      const options = found.map((d) => new Option(
        (d.name ? `${d.name} (${d.uri})` : d.uri) + (d.driver ? `: ${d.driver}` : ""), d.uri));
      if (keep && !found.some((d) => d.uri === keep)) {
        options.unshift(new Option(`${keep} (not found now)`, keep));
      }
      select.replaceChildren(...options);
      if (keep) select.value = keep;
      hint.textContent = found.length
        ? `${plural(found.length, "device", "devices")} found.`
        : "No USB printers or serial ports found: plug one in and look again.";
      this.explainDevice(this.mode === "add");
    } catch (error) {
      hint.textContent = `Cannot list the devices: the gateway did not answer (${error.message}).`;
    } finally {
      this.update();
    }
  }

  // What auto-setup reads from the chosen device: its 1284 id and the driver it calls for,
  // with the reason; when adding, that driver is preselected (the person may change it).
  explainDevice(choose) {
    const device = this.devices && this.devices.get(this.k("local").value);
    const out = this.k("device-explained");
    if (!device) {
      out.replaceChildren();
      return;
    }
    const lines = [];
    if (device.device_id) lines.push(element("p", `Device ID: ${device.device_id}`));
    if (device.driver) {
      lines.push(element("p", `Driver ${device.driver}: ${device.reason}`));
      const driver = this.k("driver");
      if (choose && [...driver.options].some((o) => o.value === device.driver)) {
        driver.value = device.driver;
      }
    }
    out.replaceChildren(...lines);
  }

  async probe() {
    const out = this.k("probe");
    const uri = this.uri();
    delete out.dataset.tone;
    if (!uri) {
      out.replaceChildren(element("p", "Fill in the device first."));
      return;
    }
    if (uri === this.initialUri && uri.includes(":***@")) {
      out.replaceChildren(element("p", "The device's password is not shown here: " +
        "type the URI again, with it, to probe."));
      return;
    }
    const button = this.button("probe");
    button.disabled = true;
    button.textContent = "Probing…";
    out.replaceChildren(element("p", `Probing ${uri}…`));
    try {
      const response = await postJson("/api/probe", { uri });
      if (!response.ok) {
        out.dataset.tone = "error";
        out.replaceChildren(element("p", `Cannot probe: ${await refusal(response)}`));
        return;
      }
      this.showProbe(await response.json());
    } catch (error) {
      out.dataset.tone = "error";
      out.replaceChildren(element("p",
        `Cannot probe: the gateway did not answer (${error.message}).`));
    } finally {
      button.disabled = false;
      button.textContent = "Probe";
    }
  }

  showProbe(result) {
    const out = this.k("probe");
    out.dataset.tone = result.ok ? "ok" : "error";
    const reachable = { true: "yes", false: "no", null: "cannot tell without printing" };
    const facts = element("dl", undefined, "facts");
    const row = (term, value) => facts.append(element("dt", term), element("dd", value));
    row("Device", result.uri);
    row("Reachable", reachable[String(result.reachable)] || "cannot tell without printing");
    if (result.message) row("Status", result.message);
    row("Reasons", result.reasons && result.reasons.length ? result.reasons.join(", ") : "none");
    row("Device ID", result.device_id || "none reported");
    if (result.error) row("Error", result.error);
    const headline = result.ok
      ? "Probed: a job could print on it."
      : "Probed: a job would not print on it now.";
    out.replaceChildren(element("p", headline, "headline"), facts);
  }

  // The form's own checks (the browser's constraint validation), said next to the form.
  checked() {
    const problems = [];
    let first = null;
    for (const control of this.form.querySelectorAll("input, select")) {
      const bad = control.willValidate && !control.checkValidity();
      if (bad) {
        control.setAttribute("aria-invalid", "true");
        const label = this.form.querySelector(`label[for="${control.id}"]`);
        problems.push(`${label ? label.textContent : control.name}: ${problemOf(control)}`);
        first = first || control;
      } else {
        control.removeAttribute("aria-invalid");
      }
    }
    const kind = this.kind();
    const host = this.k("host");
    if ((kind === "lpd" || kind === "socket") && host.value.trim() &&
        !NETWORK_HOST.test(host.value.trim())) {
      host.setAttribute("aria-invalid", "true");
      problems.push("Host: a name or address only, without spaces, “/” or “@”.");
      first = first || host;
    }
    if (problems.length) {
      this.showError([`Not saved. ${problems.join(" ")}`]);
      first.focus();
      return false;
    }
    return true;
  }

  values() {
    const text = (key) => this.k(key).value.trim();
    const values = { driver: this.k("driver").value, location: text("location"),
                     info: text("info") };
    if (this.mode === "add") {
      values.name = text("name");
      values.device = this.uri();
    } else if (this.uri() !== this.initialUri) {
      values.device = this.uri(); // a redacted password is not sent back as "***"
    }
    return values;
  }

  showError(parts) {
    const box = this.k("error");
    box.replaceChildren(...parts.map((part) =>
      typeof part === "string" ? document.createTextNode(part) : part));
    box.hidden = false;
  }

  async save() {
    this.k("error").hidden = true;
    if (!this.checked()) return;
    const values = this.values();
    const name = this.mode === "add" ? values.name : this.name;
    const path = this.mode === "add"
      ? "/api/printers" : `/api/printers/${encodeURIComponent(name)}/edit`;
    const what = `${this.mode === "add" ? "Add" : "Change"} printer ${name}`;
    const button = this.button("save");
    button.disabled = true;
    try {
      const response = await postJson(path, values);
      if (response.status === 426) {
        this.showError(httpsAdvice(`${what}: not saved`));
      } else if (!response.ok) {
        this.showError([`Not saved: ${await refusal(response)}`]);
      } else {
        const answer = await response.json().catch(() => ({}));
        showNotice([`${what}: ${answer.message || "saved; the gateway reloads"}.`]);
        if (this.mode === "add") {
          expectChange(`Printer ${name} added: it is on the list.`, (printers) =>
            printers.has(name));
        } else {
          expectChange(`Printer ${name} changed.`, (printers) => {
            const now = printers.get(name);
            return Boolean(now) && now.driver === values.driver &&
              now.location === values.location && now.info === values.info;
          });
        }
        this.close();
      }
    } catch (error) {
      this.showError([`Not saved: the gateway did not answer (${error.message}).`]);
    } finally {
      button.disabled = false;
    }
  }

  close() {
    this.form.remove();
    this.onClose();
  }
}

function problemOf(control) {
  const v = control.validity;
  if (v.valueMissing) return control.tagName === "SELECT" ? "choose one." : "needed.";
  if (v.patternMismatch && control.dataset.hint) {
    return `${$(control.getAttribute("aria-describedby")).textContent.replace(/\s+/g, " ")}`;
  }
  if (v.rangeUnderflow || v.rangeOverflow || v.badInput || v.stepMismatch) {
    return `a number from ${control.min} to ${control.max}.`;
  }
  return control.validationMessage;
}

function openAddForm() {
  const opener = $("add-open");
  if (!addForm) {
    addForm = new PrinterForm("add", null, () => {
      addForm = null;
      opener.setAttribute("aria-expanded", "false");
      opener.focus();
    });
    $("add-slot").append(addForm.form);
    opener.setAttribute("aria-expanded", "true");
  }
  addForm.k("name").focus();
}

function bindConfigButtons(el, name) {
  const edit = el.querySelector('[data-do="edit"]');
  const remove = el.querySelector('[data-do="remove"]');
  const confirm = el.querySelector('[data-f="confirm"]');
  const yes = el.querySelector('[data-do="remove-yes"]');
  const no = el.querySelector('[data-do="remove-no"]');
  edit.setAttribute("aria-label", `Edit ${name}`);
  remove.setAttribute("aria-label", `Remove ${name}`);
  yes.textContent = "Yes, remove";
  yes.setAttribute("aria-label", `Yes, remove ${name}`);
  no.setAttribute("aria-label", `Keep ${name}`);
  confirm.setAttribute("aria-label", `Remove ${name}?`);
  const error = element("p", undefined, "form-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  confirm.append(error);

  edit.addEventListener("click", () => {
    let form = editForms.get(name);
    if (!form) {
      const printer = state.printers.get(name);
      if (!printer) return;
      form = new PrinterForm("edit", printer, () => {
        editForms.delete(name);
        edit.setAttribute("aria-expanded", "false");
        edit.focus();
      });
      editForms.set(name, form);
      el.querySelector('[data-f="edit-slot"]').append(form.form);
      edit.setAttribute("aria-expanded", "true");
    }
    form.k("kind").focus();
  });

  const closeConfirm = (focus) => {
    confirm.hidden = true;
    remove.setAttribute("aria-expanded", "false");
    if (focus) remove.focus();
  };
  remove.addEventListener("click", () => {
    fill(el, "confirm-text", `Remove ${name} from the configuration? Jobs it has not ` +
      "printed yet are kept aside in the spool (ipp-gateway jobs lists them).");
    error.hidden = true;
    confirm.hidden = false;
    remove.setAttribute("aria-expanded", "true");
    no.focus(); // the safe choice has the focus
  });
  no.addEventListener("click", () => closeConfirm(true));
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    error.hidden = true;
    try {
      const response = await postJson(`/api/printers/${encodeURIComponent(name)}/remove`, {});
      if (response.status === 426) {
        error.replaceChildren(...httpsAdvice(`Remove printer ${name}: not done`).map((part) =>
          typeof part === "string" ? document.createTextNode(part) : part));
        error.hidden = false;
      } else if (!response.ok) {
        error.textContent = `Not removed: ${await refusal(response)}`;
        error.hidden = false;
      } else {
        const answer = await response.json().catch(() => ({}));
        closeConfirm(false);
        $("printers-heading").focus(); // the card with the focus is about to go
        showNotice([`Remove printer ${name}: ${answer.message || "saved; the gateway reloads"}.`]);
        expectChange(`Printer ${name} removed.`, (printers) => !printers.has(name));
      }
    } catch (err) {
      error.textContent = `Not removed: the gateway did not answer (${err.message}).`;
      error.hidden = false;
    } finally {
      yes.disabled = false;
    }
  });
}

function start() {
  $("login").addEventListener("click", login);
  $("logout").addEventListener("click", logout);
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
  $("add-open").addEventListener("click", openAddForm);
  // A phone coming back online or to the front should not wait out its backoff.
  window.addEventListener("online", () => { if (!live.socket) connect(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !live.socket) connect();
  });
  renderSession();
  connect();
}

start();
