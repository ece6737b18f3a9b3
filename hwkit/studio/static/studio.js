// hwkit studio: the Write page (stream handwriting as the network draws it) and the Record page
// (capture a line with Pointer Events and save it into an IAM-OnDB corpus folder).
"use strict";

const $ = (id) => document.getElementById(id);
window.studioLog = []; // {event, line, t}: what arrived when (the browser tests read it)

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function postJSON(url, data) {
  return getJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// ---- Write page ------------------------------------------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";

class LineView {
  // One written line: offsets [dx, dy, pen_up] in, one <path> per stroke out, the view fitted to the ink.
  constructor(parent, caption, style) {
    this.box = document.createElement("div");
    this.box.className = "hwline";
    this.svg = document.createElementNS(SVG_NS, "svg");
    this.svg.setAttribute("preserveAspectRatio", "xMinYMid meet");
    this.cap = document.createElement("div");
    this.cap.className = "caption";
    this.cap.textContent = caption;
    this.box.append(this.svg, this.cap);
    parent.append(this.box);
    this.style = style;
    this.reset();
  }
  reset() {
    this.svg.replaceChildren();
    this.x = 0; this.y = 0; this.strokes = [[]]; this.points = 0;
    this.min = [Infinity, Infinity]; this.max = [-Infinity, -Infinity];
  }
  add(rows) {
    for (const [dx, dy, up] of rows) {
      this.x += dx; this.y += dy; this.points += 1;
      this.strokes[this.strokes.length - 1].push([this.x, this.y]);
      this.min = [Math.min(this.min[0], this.x), Math.min(this.min[1], this.y)];
      this.max = [Math.max(this.max[0], this.x), Math.max(this.max[1], this.y)];
      if (up > 0.5) this.strokes.push([]);
    }
    this.draw();
  }
  draw() {
    this.svg.replaceChildren();
    const pad = 20;
    const w = Math.max(this.max[0] - this.min[0], 400), h = Math.max(this.max[1] - this.min[1], 120);
    this.svg.setAttribute("viewBox", `${this.min[0] - pad} ${this.min[1] - pad} ${w + 2 * pad} ${h + 2 * pad}`);
    const scale = (w + 2 * pad) / (this.svg.clientWidth || 800);
    for (const stroke of this.strokes) {
      if (!stroke.length) continue;
      const path = document.createElementNS(SVG_NS, "path");
      const pts = stroke.length === 1 ? [stroke[0], stroke[0]] : stroke;
      path.setAttribute("d", "M" + pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" L"));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", this.style.colour);
      path.setAttribute("stroke-width", (this.style.width * scale).toFixed(2));
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      this.svg.append(path);
    }
  }
}

async function loadHands(model, wanted) {
  const hands = await getJSON(`/api/hands?model=${encodeURIComponent(model)}`);
  const select = $("hand");
  select.replaceChildren();
  const groups = { none: null, recording: "Your recorded lines", style: "Style files", store: "Lines of the model's store" };
  const made = {};
  for (const hand of hands.filter((h) => !groups[h.kind])) select.append(new Option(hand.label, hand.id));
  for (const hand of hands.filter((h) => groups[h.kind])) {
    const group = groups[hand.kind];
    if (!made[group]) { made[group] = document.createElement("optgroup"); made[group].label = group; select.append(made[group]); }
    made[group].append(new Option(hand.label, hand.id));
  }
  if (wanted && hands.some((h) => h.id === wanted)) select.value = wanted;
}

const MAX_TEXT = { lines: 600, page: 4000 }; // as the server's limits (hwkit/studio/service.py)

async function writePage() {
  const params = new URLSearchParams(location.search);
  const models = await getJSON("/api/models");
  for (const m of models) $("model").append(new Option(m.label, m.id));
  await loadHands($("model").value, params.get("hand"));
  $("model").addEventListener("change", () => loadHands($("model").value));
  $("bias").addEventListener("input", () => { $("bias-value").textContent = Number($("bias").value).toFixed(1); });
  $("layout").addEventListener("change", () => {
    const page = $("layout").value !== "";
    for (const el of document.querySelectorAll(".page-only")) el.hidden = !page;
    for (const el of document.querySelectorAll(".lines-only")) el.hidden = page; // pages use a 0.4 mm pen
    $("text").maxLength = page ? MAX_TEXT.page : MAX_TEXT.lines;
  });
  $("form").addEventListener("submit", (event) => { event.preventDefault(); write(); });
}

async function streamEvents(url, request, onEvent) {
  // POST the request and hand each server-sent event to onEvent as it arrives; an "error" event throws.
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").find((l) => l.startsWith("data: "));
      if (!data) continue;
      const event = JSON.parse(data.slice(6));
      window.studioLog.push({ event: event.event, line: event.line, t: performance.now() - started });
      if (event.event === "error") throw new Error(event.message);
      onEvent(event, (performance.now() - started) / 1000);
    }
  }
}

async function write() {
  const style = { colour: $("colour").value || "black", width: Number($("width").value) || 1.6 };
  const request = {
    text: $("text").value, model: $("model").value, hand: $("hand").value, bias: Number($("bias").value),
    seed: $("seed").value === "" ? null : Number($("seed").value), replace_unknown: $("replace").checked,
    tries: $("tries").value === "" ? null : Number($("tries").value),
  };
  const paper = $("layout").value;
  if (paper) Object.assign(request, { paper, margin: Number($("margin").value), size: Number($("size").value) });
  request.colour = style.colour; // checked before the writing: a bad one would only fail at the downloads
  $("write").disabled = true;
  $("output").replaceChildren(); $("downloads").replaceChildren();
  window.studioLog = [];
  setStatus("writing...");
  try {
    if (paper) await streamEvents("/api/page", request, pageEvents(style));
    else await streamEvents("/api/write", request, lineEvents(style));
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("write").disabled = false;
  }
}

function lineEvents(style) {
  let views = [], tries = 1, notes = "";
  return (event, secs) => {
    if (event.event === "start") {
      views = event.lines.map((text) => new LineView($("output"), text, style));
      tries = event.tries;
      notes = event.notes.length ? ` (${event.notes.join("; ")})` : "";
      const kept = tries > 1 ? `; drawing each ${tries} times, the best read kept` : "";
      setStatus(`writing ${event.lines.length} line(s), seed ${event.seed}${kept}...`);
    } else if (event.event === "points") {
      views[event.line].add(event.offsets);
    } else if (event.event === "line") {
      views[event.line].reset();
      views[event.line].add(event.offsets);
    } else if (event.event === "done") {
      setStatus(`written in ${secs.toFixed(1)} s` + (tries > 1 ? `, the best of ${tries} draws of each line (${2 * tries} where none read right)` : "") + notes);
      showDownloads(event.result, style, views);
    }
  };
}

function pageEvents(style) {
  // A page is written many lines at a time, in rounds of writing and measuring: progress, then the pages.
  const bar = document.createElement("progress");
  let tries = 1;
  return (event, secs) => {
    if (event.event === "start") {
      tries = event.tries;
      $("output").append(bar);
      setStatus(`laying the text out on ${event.paper[0]} x ${event.paper[1]} mm paper, seed ${event.seed}...`);
    } else if (event.event === "progress") {
      bar.max = event.total; bar.value = event.done;
      const each = tries > 1 ? `, each the best of ${tries} draws` : "";
      const measuring = event.round === 1 ? " (the first lines measure how wide the hand writes)" : " (lines that changed)";
      setStatus(`round ${event.round}: ${event.done} of ${event.total} lines written${each}${measuring}...`);
    } else if (event.event === "done") {
      bar.remove();
      const query = `colour=${encodeURIComponent(style.colour)}`;
      const names = { svg: "SVG", png: "PNG", plotter: "plotter SVG", gcode: "G-code", hpgl: "HPGL" };
      for (let k = 0; k < event.pages; k++) {
        const figure = document.createElement("figure");
        figure.className = "sheet";
        const img = new Image();
        img.alt = `page ${k + 1} of ${event.pages}`;
        img.addEventListener("error", () => setStatus(`page ${k + 1} could not be shown`, true));
        img.src = `/api/result/${event.result}/svg?page=${k}&${query}`;
        const caption = document.createElement("figcaption");
        caption.append(`page ${k + 1} of ${event.pages}:`);
        for (const [fmt, label] of Object.entries(names)) caption.append(downloadLink(`/api/result/${event.result}/${fmt}?page=${k}&${query}`, label));
        figure.append(img, caption);
        $("output").append(figure);
      }
      const notes = event.notes.length ? ` (${event.notes.join("; ")})` : "";
      setStatus(`${event.pages} page(s), ${event.lines} lines in ${event.rounds} round(s) of writing and measuring ` +
                `(${event.written} lines written${tries > 1 ? `, each the best of ${tries} draws` : ""}), in ${secs.toFixed(1)} s${notes}`);
      const all = document.createElement("div");
      all.className = "all-pages"; // above the pages: a long document's PDF without scrolling past them
      all.append(downloadLink(`/api/result/${event.result}/pdf?${query}`, `PDF (${event.pages} page${event.pages > 1 ? "s" : ""})`));
      $("output").prepend(all);
    }
  };
}

function downloadLink(href, label) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = label;
  a.setAttribute("download", "");
  return a;
}


function showDownloads(result, style, views) {
  const query = `?colour=${encodeURIComponent(style.colour)}&width=${style.width}`;
  const names = { svg: "SVG", png: "PNG", animate: "animated SVG", npz: "NPZ", json: "JSON" };
  for (const [fmt, label] of Object.entries(names)) $("downloads").append(downloadLink(`/api/result/${result}/${fmt}${query}`, label));
  if ($("show-attention").checked) {  // each line's attention window, under that line
    views.forEach((view, k) => {
      const img = new Image();
      img.alt = `attention window of line ${k + 1}`;
      img.className = "attention";
      img.src = `/api/result/${result}/attention?line=${k}`;
      view.box.append(img);
    });
  }
}

// ---- Record page -----------------------------------------------------------------------------------

function recordPage() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  let strokes = [], current = null, t0 = null;

  function fit() {
    const ratio = window.devicePixelRatio || 1;
    pad.width = pad.clientWidth * ratio; pad.height = pad.clientHeight * ratio;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    redraw();
  }
  function redraw() {
    ctx.clearRect(0, 0, pad.clientWidth, pad.clientHeight);
    ctx.strokeStyle = "#d8d4cc"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(16, pad.clientHeight * 0.62); ctx.lineTo(pad.clientWidth - 16, pad.clientHeight * 0.62); ctx.stroke();
    ctx.strokeStyle = "#1a1a1a"; ctx.lineWidth = 2; ctx.lineCap = "round"; ctx.lineJoin = "round";
    for (const s of strokes) {
      ctx.beginPath(); ctx.moveTo(s[0][0], s[0][1]);
      for (const p of s.slice(1)) ctx.lineTo(p[0], p[1]);
      if (s.length === 1) ctx.lineTo(s[0][0] + 0.1, s[0][1]);
      ctx.stroke();
    }
  }
  function sample(event) {
    const rect = pad.getBoundingClientRect();
    if (t0 === null) t0 = event.timeStamp;
    const point = [event.clientX - rect.left, event.clientY - rect.top, Math.round(event.timeStamp - t0)];
    if (event.pointerType === "pen" && event.pressure) point.push(event.pressure);
    return point;
  }
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    current = [sample(event)];
    strokes.push(current);
    redraw();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!current) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) current.push(sample(e));
    redraw();
  });
  const end = () => { current = null; };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);

  const clear = () => { strokes = []; current = null; t0 = null; redraw(); };
  $("undo").addEventListener("click", () => { strokes.pop(); redraw(); });
  $("clear").addEventListener("click", clear);
  async function newPrompt() { $("prompt").value = (await getJSON("/api/prompt")).text; }
  $("new-prompt").addEventListener("click", () => { newPrompt(); clear(); });

  async function listSaved() {
    const corpus = $("corpus").value.trim();
    let lines = [];
    try { lines = await getJSON(`/api/recordings?corpus=${encodeURIComponent(corpus)}`); } catch (e) { lines = []; }
    $("saved").replaceChildren();
    $("count").textContent = lines.length ? `(${lines.length} in data/${corpus}/)` : "";
    for (const line of lines) {
      const li = document.createElement("li");
      li.textContent = `${line.line_id}: ${line.text}`;
      const use = document.createElement("button");
      use.textContent = "Write in this hand";
      use.addEventListener("click", async () => {
        try {
          // the style file is for the CLI (--style); the page uses the recording itself, which the
          // server scales to whichever model is chosen there
          await postJSON("/api/style", { hand: `rec:${corpus}/${line.line_id}` });
          location.href = `/?hand=${encodeURIComponent(`rec:${corpus}/${line.line_id}`)}`;
        } catch (error) { setStatus(error.message, true); }
      });
      li.append(use);
      $("saved").append(li);
    }
  }
  $("corpus").addEventListener("change", listSaved);
  $("save").addEventListener("click", async () => {
    try {
      const saved = await postJSON("/api/record", { corpus: $("corpus").value.trim(), text: $("prompt").value, strokes });
      setStatus(`saved ${saved.line_id}`);
      clear();
      await newPrompt();
      await listSaved();
    } catch (error) { setStatus(error.message, true); }
  });
  window.addEventListener("resize", fit);
  fit();
  newPrompt();
  listSaved();
}

if (document.body.dataset.page === "write") writePage().catch((e) => setStatus(e.message, true));
if (document.body.dataset.page === "record") recordPage();
