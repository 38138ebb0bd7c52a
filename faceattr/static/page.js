// faceattr's page: plain JavaScript, no library. Every text that comes from the user or the server
// is set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { record: null, image: null, faces: [], current: null, picked: [], editSeq: 0, editBusy: false,
                editPending: false, editedUrl: null, lastRecordName: "faceattr.json" };
const COLORS = ["#00e676", "#40c4ff", "#ffd740", "#ff6e40", "#e040fb"];

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v; else if (k === "class") e.className = v; else e[k] = v;
  }
  for (const c of children) e.appendChild(c);
  return e;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function post(path, form) {
  let response;
  try {
    response = await fetch(path, { method: "POST", body: form });
  } catch (e) {
    throw new Error("the server cannot be reached (" + e.message + ")");
  }
  if (!response.ok) {
    let detail = response.status === 503 || response.status === 504 ? "the server is busy; try again" : response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}

// ---- photo in, faces out ---------------------------------------------------------------------
async function analyse(file) {
  showError("");
  $("status").textContent = "finding faces in " + file.name + " ...";
  const form = new FormData();
  form.append("file", file, file.name);
  const t0 = performance.now();
  try {
    const record = await (await post("/faces?decision=" + encodeURIComponent($("decision").value), form)).json();
    const image = await loadImage(file);
    state.record = record; state.image = image; state.lastRecordName = file.name + ".faceattr.json";
    drawPhoto();
    for (const face of record.faces) addToGallery(face);
    $("status").textContent = record.faces.length
      ? `${record.faces.length} face(s) in ${file.name} (${Math.round(performance.now() - t0)} ms)`
      : `no face found in ${file.name}`;
    $("photo-panel").hidden = false;
    if (record.faces.length) selectFace(record.faces[0], 0); else $("face-panel").hidden = true;
  } catch (e) {
    $("status").textContent = "";
    showError(e.message);
  }
}

function loadImage(file) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);  // the server read it; the browser may not (e.g. TIFF)
    img.src = URL.createObjectURL(file);
  });
}

function drawPhoto() {
  const canvas = $("photo"), img = state.image, faces = state.record.faces;
  const w = img ? img.naturalWidth : 640, h = img ? img.naturalHeight : 480;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  if (img) ctx.drawImage(img, 0, 0); else { ctx.fillStyle = "#ddd"; ctx.fillRect(0, 0, w, h); }
  const line = Math.max(2, Math.round(Math.max(w, h) / 300));
  faces.forEach((face, i) => {
    if (!face.box) return;
    const [x1, y1, x2, y2] = face.box;
    ctx.strokeStyle = COLORS[i % COLORS.length]; ctx.lineWidth = line;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = "#ff1744";
    for (const [x, y] of face.landmarks) { ctx.beginPath(); ctx.arc(x, y, line * 1.5, 0, 2 * Math.PI); ctx.fill(); }
    ctx.font = `${Math.max(14, Math.round(h / 30))}px sans-serif`;
    ctx.fillStyle = COLORS[i % COLORS.length];
    ctx.fillText(String(i + 1), x1 + line, Math.max(y1 - line * 2, 14));
  });
}

function faceAt(x, y) {
  return state.record.faces.findIndex((f) => f.box && x >= f.box[0] && x <= f.box[2] && y >= f.box[1] && y <= f.box[3]);
}

// ---- one face: bars, reconstructions, the slider ---------------------------------------------
function ranked(attributes) {  // present first, each group from the most probable down
  return Object.entries(attributes).sort((a, b) =>
    (b[1].present - a[1].present) || (b[1].probability - a[1].probability));
}

function renderBars() {
  const face = state.current, filter = $("filter").value.trim().toLowerCase();
  const list = $("bars");
  list.replaceChildren();
  for (const [name, a] of ranked(face.attributes)) {
    if (filter && !name.toLowerCase().replaceAll("_", " ").includes(filter.replaceAll("_", " "))) continue;
    const fill = el("div", { class: "fill" });
    fill.style.width = (100 * a.probability).toFixed(1) + "%";
    const item = el("li", { class: a.present ? "present" : "absent" }, [
      el("span", { text: a.present ? "+" : "-" }), el("span", { class: "name", text: name.replaceAll("_", " ") }),
      el("div", { class: "bar" }, [fill]), el("span", { text: (100 * a.probability).toFixed(0) + "%" })]);
    item.dataset.attribute = name;
    item.dataset.probability = String(a.probability);
    list.appendChild(item);
  }
}

async function selectFace(face, index) {
  state.current = face;
  $("face-panel").hidden = false;
  $("face-title").textContent = `face ${index + 1}`;
  $("strength").value = "0"; $("strength-value").textContent = "0.0";
  renderBars();
  const views = $("views");
  views.replaceChildren(figure(face.crop, "aligned 64x64"));
  const form = new FormData();
  form.append("face_id", face.id);
  try {
    const r = await (await post("/reconstruct", form)).json();
    if (state.current !== face) return;
    for (const [view, url] of Object.entries(r.views)) views.appendChild(figure(url, view));
  } catch (e) { showError(e.message); }
  edit();
}

function figure(src, caption) {
  return el("figure", {}, [el("img", { src: src, alt: caption }), el("figcaption", { text: caption })]);
}

// A slider step asks for one decoder pass. While one is in flight, only the newest value waits:
// dragging never queues up work, and a stale answer is dropped.
async function edit() {
  if (!state.current) return;
  if (state.editBusy) { state.editPending = true; return; }
  state.editBusy = true;
  const seq = ++state.editSeq, face = state.current;
  const form = new FormData();
  form.append("face_id", face.id);
  form.append("attribute", $("attribute").value);
  form.append("view", $("view").value);
  form.append("strength", $("strength").value);
  try {
    const blob = await (await post("/manipulate", form)).blob();
    if (seq === state.editSeq && face === state.current) {
      if (state.editedUrl) URL.revokeObjectURL(state.editedUrl);
      state.editedUrl = URL.createObjectURL(blob);
      $("edited").src = state.editedUrl;
    }
  } catch (e) { showError(e.message); }
  state.editBusy = false;
  if (state.editPending) { state.editPending = false; edit(); }
}

// ---- all faces so far: pick two, interpolate -------------------------------------------------
function addToGallery(face) {
  state.faces.push(face);
  const fig = figure(face.crop, `face ${state.faces.length}`);
  fig.addEventListener("click", () => {
    const i = state.picked.indexOf(face);
    if (i >= 0) { state.picked.splice(i, 1); fig.classList.remove("picked"); }
    else {
      if (state.picked.length === 2) {
        const old = state.picked.shift();
        $("gallery").children[state.faces.indexOf(old)].classList.remove("picked");
      }
      state.picked.push(face); fig.classList.add("picked");
    }
    $("interpolate").disabled = state.picked.length !== 2;
  });
  $("gallery").appendChild(fig);
  $("gallery-panel").hidden = false;
}

async function interpolate() {
  const form = new FormData();
  form.append("face_a", state.picked[0].id);
  form.append("face_b", state.picked[1].id);
  form.append("view", $("view").value);
  try {
    const blob = await (await post("/interpolate", form)).blob();
    $("strip").src = URL.createObjectURL(blob);
    $("strip").hidden = false;
  } catch (e) { showError(e.message); }
}

// ---- downloads, webcam, wiring ---------------------------------------------------------------
function download(url, name) {
  const a = el("a", { href: url, download: name });
  document.body.appendChild(a); a.click(); a.remove();
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("this browser gives no webcam to this page (it needs https or localhost)"); return;
  }
  try {
    $("video").srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    $("webcam").hidden = false;
  } catch (e) { showError("the webcam could not be opened: " + e.message); }
}

function snap() {
  const video = $("video"), canvas = el("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => analyse(new File([blob], "webcam.png", { type: "image/png" })), "image/png");
}

async function init() {
  const meta = await (await fetch("/metadata")).json();
  for (const rule of meta.decision_rules) $("decision").appendChild(el("option", { value: rule, text: rule }));
  for (const name of meta.attributes) {
    $("attribute").appendChild(el("option", { value: name, text: name.replaceAll("_", " "), selected: name === "Smiling" }));
  }
  for (const view of meta.views) $("view").appendChild(el("option", { value: view, text: view, selected: view === "relu3_1" }));
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) analyse(e.target.files[0]); e.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files[0]) analyse(e.dataTransfer.files[0]);
  });
  $("photo").addEventListener("click", (e) => {
    const r = e.target.getBoundingClientRect(), sx = e.target.width / r.width, sy = e.target.height / r.height;
    const i = faceAt((e.clientX - r.left) * sx, (e.clientY - r.top) * sy);
    if (i >= 0) selectFace(state.record.faces[i], i);
  });
  $("filter").addEventListener("input", renderBars);
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = Number($("strength").value).toFixed(1); edit();
  });
  $("attribute").addEventListener("change", edit);
  $("view").addEventListener("change", edit);
  $("interpolate").addEventListener("click", interpolate);
  $("camera").addEventListener("click", startCamera);
  $("snap").addEventListener("click", snap);
  $("download-json").addEventListener("click", () => {
    const blob = new Blob([JSON.stringify(state.record, null, 1)], { type: "application/json" });
    download(URL.createObjectURL(blob), state.lastRecordName);
  });
  $("download-face").addEventListener("click", () => { if (state.editedUrl) download(state.editedUrl, "edited-face.png"); });
  $("decision").addEventListener("change", () => { /* applies to the next photo */ });
}

document.addEventListener("DOMContentLoaded", init);
