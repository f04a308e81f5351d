// xai-serve console: hand-written, talks only to this console's /api/ (no external script, font or CDN).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid) node.append(kid);
  return node;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

const state = { models: [], specs: {}, image: null, imageName: "IMAGE.png", samples: {}, serverUp: null, last: null, polls: 0 };

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const resp = await fetch(path, options);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = body.error || {};
    throw new ApiError(resp.status, err.code || "HTTP_" + resp.status, err.message || resp.statusText);
  }
  return body;
}

// ---- server health: a banner while the model server is gone, recovery when it returns ----
async function pollHealth() {
  let up = false, message = "";
  try {
    const h = await api("/api/health");
    up = h.up; message = h.message || h.status;
  } catch (e) {
    message = "the console itself does not answer";
  }
  const status = $("#server-status");
  status.textContent = up ? "model server: up" : "model server: down";
  status.className = "status " + (up ? "up" : "down");
  const banner = $("#banner");
  if (!up) {
    banner.textContent = "The model server is not answering (" + message + "). The console retries every 2 s.";
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  if (up && state.serverUp !== true) loadModels();
  else if (up && !$("#tab-models").hidden && ++state.polls % 5 === 0) refreshCards();
  state.serverUp = up;
}

// the Models page's live status: its cards are refreshed every 10 s while it is shown
async function refreshCards() {
  try {
    state.models = await api("/api/models");
    renderModels();
  } catch (e) {
    // the banner says why
  }
}

// ---- Models ----
function credentialBadge(cred) {
  if (!cred || !cred.certified) return el("span", { class: "badge", text: "not certified" });
  const passed = cred.sanity_pass;
  const aopc = cred.aopc_morf === null || cred.aopc_morf === undefined ? "" : " AOPC " + cred.aopc_morf.toFixed(3);
  return el("span", { class: "badge " + (passed ? "pass" : "fail"),
                      title: "sanity check " + (passed ? "passed" : "failed") + aopc,
                      text: (passed ? "✓ sanity" : "✗ sanity") + aopc });
}

function summaryCredential(summary) {
  if (!summary) return null;
  return { certified: !!summary.certified, sanity_pass: !!summary.sanity_pass, aopc_morf: summary.aopc_morf ?? null };
}

function renderModels() {
  const root = $("#model-cards");
  root.replaceChildren();
  for (const m of state.models) {
    const card = m.card || {};
    const labels = card.labels || [];
    const dl = el("dl");
    const add = (k, v) => dl.append(el("dt", { text: k }), el("dd", { text: v }));
    add("architecture", card.model || "?");
    add("dataset", card.dataset || "?");
    add("input", (card.input_shape || []).join("×"));
    add("labels", labels.length + ": " + labels.slice(0, 6).join(", ") + (labels.length > 6 ? ", …" : ""));
    if ((card.outputs || []).length) add("outputs", card.outputs.join(", "));
    add("workers", String(m.workers) + ", batch " + m.batch_size);
    const list = el("ul", { class: "methods-list" });
    for (const name of m.methods) {
      list.append(el("li", {}, el("span", { text: name }), credentialBadge(summaryCredential(m.credentials[name]))));
    }
    const live = m.live ? el("div", { class: "meta", text: "live: " + JSON.stringify(m.live) }) : null;
    root.append(el("div", { class: "card", "data-model": m.name },
      el("h3", {}, el("span", { text: m.name + " " }),
         el("span", { class: "badge " + (m.status === "READY" ? "ready" : "notready"), text: m.status })),
      dl, el("h2", { text: "methods" }), list, live));
  }
}

async function loadModels() {
  try {
    state.models = await api("/api/models");
  } catch (e) {
    return;  // the banner says why
  }
  renderModels();
  for (const sel of ["#model", "#cmp-a", "#cmp-b"]) {
    const select = $(sel), keep = select.value;
    select.replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: m.name })));
    if (keep && state.models.some((m) => m.name === keep)) select.value = keep;
  }
  if (state.models.length > 1 && $("#cmp-b").value === $("#cmp-a").value) $("#cmp-b").selectedIndex = 1;
  await selectModel();
  renderCompareMethods();
}

// ---- Explain: model, image, methods with their parameters, target ----
function currentModel(name = $("#model").value) { return state.models.find((m) => m.name === name); }

async function specsOf(name) {
  if (!state.specs[name]) state.specs[name] = await api("/api/models/" + encodeURIComponent(name) + "/methods");
  return state.specs[name];
}

function paramInput(method, p) {
  const id = "p-" + method + "-" + p.name;
  const common = { id, "data-method": method, "data-param": p.name, title: p.doc };
  let input;
  if (p.choices) {
    input = el("select", common, ...p.choices.map((c) => el("option", { value: c, text: c })));
    if (p.default !== null) input.value = String(p.default);
  } else if (p.type === "bool") {
    input = el("input", { ...common, type: "checkbox", checked: p.default === true });
  } else if (p.type === "int" || p.type === "float") {
    input = el("input", { ...common, type: "number", step: p.type === "int" ? "1" : "any",
                          min: p.minimum ?? null, max: p.maximum ?? null,
                          value: p.default === null ? "" : String(p.default), placeholder: "derived" });
  } else {
    const value = Array.isArray(p.default) ? p.default.join(",") : (p.default ?? "");
    input = el("input", { ...common, type: "text", value: String(value), placeholder: "derived" });
  }
  input.addEventListener("change", () => reexplain(method));
  return [el("label", { for: id, text: p.name, title: p.doc }), input];
}

function paramValue(input) { return input.type === "checkbox" ? String(input.checked) : input.value.trim(); }

// the parameters of `method` that differ from its defaults, as `method.key=value` items
function paramItems(method, root = document) {
  const spec = state.specs[$("#model").value][method];
  const items = [];
  for (const input of root.querySelectorAll(`[data-method="${method}"][data-param]`)) {
    const p = spec.params[input.dataset.param];
    const value = paramValue(input);
    const dflt = p.default === null ? "" : Array.isArray(p.default) ? p.default.join(",") : String(p.default);
    if (value !== "" && value !== dflt) items.push(method + "." + p.name + "=" + value);
  }
  return items;
}

async function selectModel() {
  const model = currentModel();
  if (!model) return;
  const specs = await specsOf(model.name);
  if ($("#model").value !== model.name) return;  // chosen again meanwhile: the later call renders
  const root = $("#methods");
  const before = new Set(checkedMethods());
  root.replaceChildren();
  const defaults = new Set(model.default_methods || []);
  for (const [name, spec] of Object.entries(specs)) {
    const checked = before.size ? before.has(name) : defaults.has(name);
    const params = el("div", { class: "params" });
    for (const p of Object.values(spec.params)) params.append(...paramInput(name, p));
    const box = el("input", { type: "checkbox", value: name, id: "m-" + name, checked });
    const row = el("div", { class: "method", "data-method": name },
      box, el("label", { for: "m-" + name, text: " " + name, title: spec.doc.split("\n\n")[0] }),
      credentialBadge(summaryCredential(model.credentials[name])), params);
    params.hidden = !checked;
    box.addEventListener("change", () => { params.hidden = !box.checked; });
    root.append(row);
  }
  const target = $("#target");
  const labels = (model.card || {}).labels || [];
  target.replaceChildren(el("option", { value: "", text: "predicted" }),
    el("option", { value: "top3", text: "top 3 classes" }),
    ...labels.map((l, i) => el("option", { value: String(i), text: i + ": " + l })));
  renderSamples(model);
  root.dataset.model = model.name;  // rendered for this model (the tests wait for it)
}

function checkedMethods() { return [...document.querySelectorAll("#methods input[type=checkbox][value]:checked")].map((b) => b.value); }

// ---- images: upload, drop, built-in samples ----
function setImage(blob, name) {
  state.image = blob;
  state.imageName = name || "IMAGE.png";
  const preview = $("#preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
}

function renderSamples(model) {
  const root = $("#samples");
  const list = state.samples[(model.card || {}).dataset] || [];
  root.replaceChildren(...list.map((s) => el("button", {
    title: "sample " + s.name, "data-sample": s.name,
    onclick: async () => { const r = await fetch(s.url); setImage(await r.blob(), s.name + ".png"); } },
    el("img", { src: s.url, alt: s.name }))));
}

// ---- explanations ----
function showError(id, message) {
  const box = $(id);
  box.textContent = message || "";
  box.hidden = !message;
}

async function postExplain(model, methods, target, params) {
  const form = new FormData();
  form.append("image", state.image, state.imageName);
  form.append("model", model);
  form.append("methods", methods.join(","));
  form.append("target", target || "");
  for (const p of params) form.append("param", p);
  return api("/api/explain", { method: "POST", body: form });
}

function fmt(x) { return Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(2) : x.toFixed(3); }

function panel(h, timings) {
  const title = h.method + (h.component ? " @ " + h.component : h.target !== undefined ? " → class " + h.target : "");
  const node = el("div", { class: "panel", "data-method": h.method, "data-target": String(h.target) },
    el("h3", {}, el("span", { text: title }), credentialBadge(h.credential)));
  if (h.png) node.append(el("img", { class: "heatmap", src: h.png, alt: h.method + " heatmap" }));
  if (h.colour_bar) {
    node.append(el("div", { class: "bar" }, el("span", { text: fmt(h.range[0]) }),
      el("img", { src: h.colour_bar, alt: "colour bar" }), el("span", { text: fmt(h.range[1]) })));
  }
  node.append(el("div", { class: "meta", text: (h.signed ? "signed" : "unsigned") + " · " + h.kind +
    (h.layer ? " · layer " + h.layer : "") }));
  const params = Object.entries(h.params || {}).map(([k, v]) => k + "=" + v).join(", ");
  if (params) node.append(el("div", { class: "meta", text: "params: " + params }));
  if (timings) node.append(el("div", { class: "meta", text: "server: explain " + timings.explain_ms.toFixed(1) +
    " ms, total " + timings.total_ms.toFixed(1) + " ms" }));
  const stem = h.method + "_t" + h.target;
  const links = el("div", { class: "links" });
  if (h.png) links.append(el("a", { href: h.png, download: stem + ".png", text: "PNG" }));
  if (h.npy) links.append(el("a", { href: h.npy, download: stem + ".npy", text: ".npy" }));
  node.append(links);
  if (h.filters && h.filters.length) {
    node.append(el("div", { class: "meta", text: "filters of the class (contribution W·h):" }),
      el("div", { class: "filters" }, ...h.filters.map((f) => el("figure", {},
        el("img", { src: f.png, alt: "filter " + f.filter }),
        el("figcaption", { text: "#" + f.filter + " " + fmt(f.contribution) })))));
  }
  if (h.units && h.units.length) {
    node.append(el("div", { class: "meta", text: "dissected units of " + h.units[0].layer + ":" }), el("ol", { class: "units" },
      ...h.units.map((u) => el("li", { text: "unit " + u.unit + " `" + u.formula + "` IoU " + u.iou.toFixed(2) +
        " (" + fmt(u.contribution) + ")" }))));
  }
  return node;
}

function drawTopK(top) {
  const chart = $("#topk");
  chart.replaceChildren();
  const rowH = 22, width = 360, labelW = 110;
  chart.setAttribute("height", String(top.length * rowH + 4));
  top.forEach((s, i) => {
    const y = i * rowH + 2;
    const t = svg("text", { x: 0, y: y + 15, "font-size": "12" });
    t.textContent = s.index + ": " + s.label;
    const w = Math.max(1, s.probability * (width - labelW - 50));
    const r = svg("rect", { x: labelW, y: y + 3, width: w, height: rowH - 8, fill: i ? "#9db4e6" : "#2357c6" });
    const p = svg("text", { x: labelW + w + 4, y: y + 15, "font-size": "12" });
    p.textContent = (100 * s.probability).toFixed(1) + " %";
    chart.append(t, r, p);
  });
}

const PALETTE = ["#f2f2f2", "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
                 "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#000075"];

function drawOutputs(outputs) {
  const root = $("#gpt-maps");
  root.replaceChildren();
  const names = Object.keys(outputs || {});
  $("#gpt-box").hidden = names.length === 0;
  for (const name of names) {
    const map = outputs[name], rows = map.length, cols = map[0].length, scale = 8;
    const canvas = el("canvas", { width: cols * scale, height: rows * scale, "data-output": name });
    const ctx = canvas.getContext("2d");
    map.forEach((row, r) => row.forEach((v, c) => {
      ctx.fillStyle = PALETTE[v % PALETTE.length];
      ctx.fillRect(c * scale, r * scale, scale, scale);
    }));
    canvas.addEventListener("click", (ev) => {
      const rect = canvas.getBoundingClientRect();
      const col = Math.min(cols - 1, Math.floor((ev.clientX - rect.left) / rect.width * cols));
      const row = Math.min(rows - 1, Math.floor((ev.clientY - rect.top) / rect.height * rows));
      explainComponent(name + ":" + row + "," + col + ":predicted");
    });
    root.append(el("figure", {}, canvas, el("figcaption", { text: name + " (predicted channel per pixel)" })));
  }
}

async function explainComponent(target) {
  const methods = checkedMethods().filter((m) => state.specs[$("#model").value][m].targeted);
  if (!methods.length) return;
  showError("#error", "");
  $("#component-title").hidden = false;
  $("#component-title").textContent = "Component heatmaps: " + target;
  try {
    const params = methods.flatMap((m) => paramItems(m));
    const answer = await postExplain($("#model").value, methods, target, params);
    $("#component-panels").replaceChildren(...answer.heatmaps.map((h) => panel(h, answer.timings)));
  } catch (e) {
    showError("#error", e.message);
  }
}

function showCommand(command) {
  $("#command").textContent = command;
  $("#command-download").href = "data:text/plain;charset=utf-8," + encodeURIComponent(command + "\n");
}

async function explainAll() {
  showError("#error", "");
  const methods = checkedMethods();
  if (!state.image) return showError("#error", "Choose an image first (upload, drop or a sample).");
  if (!methods.length) return showError("#error", "Choose at least one method.");
  const run = $("#run");
  run.disabled = true;
  try {
    const answer = await postExplain($("#model").value, methods, $("#target").value,
                                     methods.flatMap((m) => paramItems(m)));
    state.last = { model: $("#model").value, methods, target: $("#target").value };
    $("#result").hidden = false;
    drawTopK(answer.prediction.top);
    drawOutputs(answer.prediction.outputs);
    showCommand(answer.command);
    $("#panels").replaceChildren(...answer.heatmaps.map((h) => panel(h, answer.timings)));
    $("#component-panels").replaceChildren();
    $("#component-title").hidden = true;
  } catch (e) {
    showError("#error", e.message);
  } finally {
    run.disabled = false;
  }
}

// a changed parameter re-explains only its own method, replacing only that method's panels
async function reexplain(method) {
  const last = state.last;
  if (!last || last.model !== $("#model").value || !last.methods.includes(method) || !state.image) return;
  const old = [...document.querySelectorAll(`#panels .panel[data-method="${method}"]`)];
  old.forEach((p) => p.classList.add("busy"));
  showError("#error", "");
  try {
    const answer = await postExplain(last.model, [method], last.target, paramItems(method));
    const fresh = answer.heatmaps.map((h) => panel(h, answer.timings));
    if (old.length) { old[0].replaceWith(...fresh); old.slice(1).forEach((p) => p.remove()); }
    else $("#panels").append(...fresh);
    showCommand(answer.command);  // the command line of the last request
  } catch (e) {
    old.forEach((p) => p.classList.remove("busy"));
    showError("#error", e.message);
  }
}

// ---- Compare: two models, the same image ----
function renderCompareMethods() {
  const a = currentModel($("#cmp-a").value), b = currentModel($("#cmp-b").value);
  const root = $("#cmp-methods");
  if (!a || !b) return root.replaceChildren();
  const common = a.methods.filter((m) => b.methods.includes(m));
  root.replaceChildren(...common.map((m) => el("label", {},
    el("input", { type: "checkbox", value: m, checked: m === "gradient" || m === "gradcam" }), " " + m + " ")));
}

async function compare() {
  showError("#cmp-error", "");
  if (!state.image) return showError("#cmp-error", "Choose an image on the Explain page first.");
  const methods = [...document.querySelectorAll("#cmp-methods input:checked")].map((b) => b.value);
  if (!methods.length) return showError("#cmp-error", "Choose at least one method both models serve.");
  for (const [sel, col] of [["#cmp-a", "#cmp-col-a"], ["#cmp-b", "#cmp-col-b"]]) {
    const model = $(sel).value;
    try {
      const answer = await postExplain(model, methods, "", []);
      const best = answer.prediction.top[0];
      $(col).replaceChildren(el("h2", { text: model + ": " + best.label + " (" + (100 * best.probability).toFixed(1) + " %)" }),
        ...answer.heatmaps.map((h) => panel(h, answer.timings)));
    } catch (e) {
      $(col).replaceChildren(el("h2", { text: model }), el("div", { class: "error", text: e.message }));
    }
  }
}

// ---- wiring ----
function showTab(name) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tabpage")) s.hidden = s.id !== "tab-" + name;
}

function init() {
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#model").addEventListener("change", () => { state.last = null; selectModel(); });
  $("#cmp-a").addEventListener("change", renderCompareMethods);
  $("#cmp-b").addEventListener("change", renderCompareMethods);
  $("#file").addEventListener("change", (ev) => { const f = ev.target.files[0]; if (f) setImage(f, f.name); });
  const drop = $("#drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault(); drop.classList.remove("over");
    const f = ev.dataTransfer.files[0]; if (f) setImage(f, f.name);
  });
  $("#run").addEventListener("click", explainAll);
  $("#cmp-run").addEventListener("click", compare);
  api("/api/samples").then((s) => { state.samples = s; const m = currentModel(); if (m) renderSamples(m); });
  pollHealth();
  setInterval(pollHealth, 2000);
}

init();
