// lbam app: paint the hole, sketch edges inside it, fill with Edge-LBAM (POST api/inpaint), compare, continue.
// Vanilla JavaScript and canvas, no dependency and nothing from the network but this server.
//
// The hole and the edge sketch are two full-resolution canvas layers over the image. Every action on them is a
// command kept in a history (strokes in image pixels, clear, "edit these edges"); undo/redo replay the history,
// so no snapshot of a large image is kept per stroke. "Keep & continue" makes the result the new image; undo
// with an empty history goes back to the image before it.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    file: $("file"), stage: $("stage"), drop: $("drop"), canvases: $("canvases"), base: $("base"),
    result: $("result"), edgemap: $("edgemap"), mask: $("mask"), sketch: $("sketch"), divider: $("divider"),
    cursor: $("cursor"), fit: $("fit"), busy: $("busy"), busyText: $("busyText"), status: $("status"), error: $("error"),
    toolHole: $("toolHole"), toolEdges: $("toolEdges"), eraser: $("eraser"), size: $("size"), sizeOut: $("sizeOut"),
    undo: $("undo"), redo: $("redo"), clear: $("clear"), dilate: $("dilate"), texture: $("texture"), run: $("run"),
    resultbar: $("resultbar"), compare: $("compare"), showEdges: $("showEdges"), useEdges: $("useEdges"),
    back: $("back"), keep: $("keep"), download: $("download"),
  };
  const COLORS = { mask: "#ff3b3b", sketch: "#00e5ff" };
  const EDGE_RGB = [80, 255, 120];
  const ctx = {
    base: el.base.getContext("2d"),
    mask: el.mask.getContext("2d", { willReadFrequently: true }),
    sketch: el.sketch.getContext("2d", { willReadFrequently: true }),
    result: el.result.getContext("2d"),
    edgemap: el.edgemap.getContext("2d"),
  };

  const S = {
    info: null,
    image: null,        // {blob, name, width, height, bitmap}: what is edited and sent
    tool: "hole",
    erase: false,
    sizes: { hole: 40, edges: 3 },  // screen pixels
    done: [],           // commands since the image was set
    undone: [],
    generations: [],    // [{image, done}] before each "Keep & continue"
    result: null,       // {blob, url, bitmap, edgesBlob, seconds, wall}
    view: "empty",      // empty | edit | result
    busy: false,
    drawing: null,      // the stroke being drawn
  };

  // ---------------------------------------------------------------- messages
  function status(text) { el.status.textContent = text; }
  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = !text;
    document.body.dataset.error = text ? "1" : "";
  }
  function setView(view) {
    S.view = view;
    document.body.dataset.state = view;
    el.drop.hidden = view !== "empty";
    el.canvases.hidden = view === "empty";
    el.resultbar.hidden = view !== "result";
    el.result.hidden = view !== "result";
    el.divider.hidden = view !== "result";
    el.edgemap.hidden = view !== "result" || !el.showEdges.checked;
    el.cursor.hidden = true;
    if (view === "result") compare();
    updateButtons();
  }
  function setBusy(busy, text) {
    S.busy = busy;
    document.body.dataset.busy = busy ? "1" : "";
    el.busy.hidden = !busy;
    if (text) el.busyText.textContent = text;
    updateButtons();
  }
  function updateButtons() {
    const edit = S.view === "edit" && !S.busy;
    el.undo.disabled = !edit || (S.done.length === 0 && S.generations.length === 0);
    el.redo.disabled = !edit || S.undone.length === 0;
    el.clear.disabled = !edit || !layersUsed();
    el.run.disabled = !edit || !layerTouched("mask");
    for (const b of [el.keep, el.back, el.useEdges]) b.disabled = S.busy;
  }
  function layerTouched(layer) {  // drawn on since the last clear ("mask" or "sketch")
    for (let i = S.done.length - 1; i >= 0; i--) {
      const c = S.done[i];
      if (c.type === "clear") return false;
      if ((c.type === "stroke" && c.layer === layer) || (c.type === "sketchImage" && layer === "sketch")) return true;
    }
    return false;
  }
  function layersUsed() {
    for (let i = S.done.length - 1; i >= 0; i--) if (S.done[i].type === "clear") return false; else return true;
    return false;
  }

  // ---------------------------------------------------------------- image
  async function decode(blob) {
    try {
      return await createImageBitmap(blob, { imageOrientation: "from-image" });
    } catch (e) {
      return await createImageBitmap(blob);  // browsers without the option; a real decode error throws again
    }
  }

  async function openFile(file) {
    if (!file || S.busy) return;
    showError("");
    const max = S.info && S.info.max_upload_bytes;
    if (max && file.size > max) {
      showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; this server accepts at most ${(max / 2 ** 20).toFixed(0)} MiB per request`);
      return;
    }
    let bitmap;
    try {
      bitmap = await decode(file);
    } catch (e) {
      showError(`Cannot open ${file.name}: the browser cannot decode it as an image`);
      return;
    }
    const maxPx = S.info && S.info.max_pixels;
    if (maxPx && bitmap.width * bitmap.height > maxPx) {
      showError(`${file.name} is ${bitmap.width}×${bitmap.height}, more than this server's limit of ${(maxPx / 1e6).toFixed(0)} megapixels`);
      return;
    }
    S.generations = [];
    setImage({ blob: file, name: file.name || "image.png", width: bitmap.width, height: bitmap.height, bitmap });
    status(`${S.image.name}: ${bitmap.width}×${bitmap.height}. Paint over what to remove, then Run.`);
  }

  function setImage(image, done) {
    S.image = image;
    for (const c of [el.base, el.result, el.edgemap, el.mask, el.sketch]) {
      c.width = image.width;
      c.height = image.height;
    }
    ctx.base.drawImage(image.bitmap, 0, 0);
    S.done = done || [];
    S.undone = [];
    discardResult();
    replay();
    setView("edit");
    fit();
  }

  // zoom 1 = the image fitted to the stage; x, y: offset of the image centre from the stage centre (CSS px)
  const Z = { zoom: 1, x: 0, y: 0, pan: null, space: false };
  function layout() {
    if (!S.image) return;
    const pad = 16;
    const w = el.stage.clientWidth - 2 * pad, h = el.stage.clientHeight - 2 * pad;
    const scale = Math.max(0.01, Math.min(w / S.image.width, h / S.image.height)) * Z.zoom;
    el.canvases.style.width = `${Math.round(S.image.width * scale)}px`;
    el.canvases.style.height = `${Math.round(S.image.height * scale)}px`;
    el.canvases.style.transform = `translate(${Z.x}px, ${Z.y}px)`;
  }
  function fit() {
    Z.zoom = 1;
    Z.x = Z.y = 0;
    layout();
  }
  el.stage.addEventListener("wheel", (e) => {  // zoom about the pointer
    if (S.view === "empty") return;
    e.preventDefault();
    const old = Z.zoom, z = Math.min(32, Math.max(1, old * Math.pow(1.0015, -e.deltaY)));
    const r = el.stage.getBoundingClientRect();
    const cx = e.clientX - (r.left + r.width / 2), cy = e.clientY - (r.top + r.height / 2);
    Z.x = z === 1 ? 0 : cx - (cx - Z.x) * z / old;
    Z.y = z === 1 ? 0 : cy - (cy - Z.y) * z / old;
    Z.zoom = z;
    layout();
  }, { passive: false });
  el.stage.addEventListener("pointerdown", (e) => {  // pan: middle button, or Space + left button
    if (S.view === "empty" || !(e.button === 1 || (e.button === 0 && Z.space))) return;
    e.preventDefault();
    el.stage.setPointerCapture(e.pointerId);
    Z.pan = { x: e.clientX - Z.x, y: e.clientY - Z.y };
  });
  el.stage.addEventListener("pointermove", (e) => {
    if (!Z.pan) return;
    Z.x = e.clientX - Z.pan.x;
    Z.y = e.clientY - Z.pan.y;
    layout();
  });
  for (const t of ["pointerup", "pointercancel"]) el.stage.addEventListener(t, () => { Z.pan = null; });

  // ---------------------------------------------------------------- layers and history
  function imagePerScreenPixel() {
    return S.image.width / el.base.getBoundingClientRect().width;
  }
  function toImage(e) {
    const r = el.base.getBoundingClientRect();
    return [(e.clientX - r.left) * S.image.width / r.width, (e.clientY - r.top) * S.image.height / r.height];
  }
  function withPen(c, s, draw) {
    c.save();
    c.globalCompositeOperation = s.erase ? "destination-out" : "source-over";
    c.strokeStyle = c.fillStyle = COLORS[s.layer];
    c.lineWidth = s.width;
    c.lineCap = c.lineJoin = "round";
    draw(c);
    c.restore();
  }
  function dot(s, p) {
    withPen(ctx[s.layer], s, (c) => { c.beginPath(); c.arc(p[0], p[1], s.width / 2, 0, 2 * Math.PI); c.fill(); });
  }
  function segment(s, a, b) {
    withPen(ctx[s.layer], s, (c) => { c.beginPath(); c.moveTo(a[0], a[1]); c.lineTo(b[0], b[1]); c.stroke(); });
  }
  function clearLayers() {
    ctx.mask.clearRect(0, 0, el.mask.width, el.mask.height);
    ctx.sketch.clearRect(0, 0, el.sketch.width, el.sketch.height);
  }
  function apply(cmd) {
    if (cmd.type === "clear") {
      clearLayers();
    } else if (cmd.type === "stroke") {
      dot(cmd, cmd.points[0]);
      for (let i = 1; i < cmd.points.length; i++) segment(cmd, cmd.points[i - 1], cmd.points[i]);
    } else if (cmd.type === "sketchImage") {
      ctx.sketch.clearRect(0, 0, el.sketch.width, el.sketch.height);
      ctx.sketch.drawImage(cmd.canvas, 0, 0);
    }
  }
  function replay() {
    clearLayers();
    let start = 0;
    for (let i = S.done.length - 1; i >= 0; i--) if (S.done[i].type === "clear") { start = i + 1; break; }
    for (let i = start; i < S.done.length; i++) apply(S.done[i]);
  }
  function push(cmd) {
    S.done.push(cmd);
    S.undone = [];
    updateButtons();
  }
  function undo() {
    if (S.view !== "edit" || S.busy || S.drawing) return;
    if (S.done.length) {
      S.undone.push(S.done.pop());
      replay();
    } else if (S.generations.length) {  // back to the image before the last "Keep & continue"
      const g = S.generations.pop();
      setImage(g.image, g.done);
      status(`Back to the image before the last fill.`);
    }
    updateButtons();
  }
  function redo() {
    if (S.view !== "edit" || S.busy || S.drawing || !S.undone.length) return;
    S.done.push(S.undone.pop());
    replay();
    updateButtons();
  }
  function clear() {
    if (S.view !== "edit" || S.busy || !layersUsed()) return;
    push({ type: "clear" });
    replay();
  }

  // ---------------------------------------------------------------- pointer
  function moveCursor(e) {
    if (S.view !== "edit") { el.cursor.hidden = true; return; }
    const r = el.canvases.getBoundingClientRect();
    const d = S.sizes[S.tool];
    Object.assign(el.cursor.style, { left: `${e.clientX - r.left}px`, top: `${e.clientY - r.top}px`,
                                     width: `${d}px`, height: `${d}px` });
    el.cursor.hidden = false;
  }
  el.canvases.addEventListener("pointerdown", (e) => {
    if (S.view !== "edit" || S.busy || e.button !== 0 || Z.space) return;  // else: a pan (the stage's handler)
    e.preventDefault();
    el.canvases.setPointerCapture(e.pointerId);
    const p = toImage(e);
    const s = { type: "stroke", layer: S.tool === "hole" ? "mask" : "sketch", erase: S.erase,
                width: Math.max(1, S.sizes[S.tool] * imagePerScreenPixel()), points: [p] };
    S.drawing = s;
    dot(s, p);
  });
  el.canvases.addEventListener("pointermove", (e) => {
    moveCursor(e);
    const s = S.drawing;
    if (!s) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of (events.length ? events : [e])) {
      const p = toImage(ev), q = s.points[s.points.length - 1];
      if (Math.hypot(p[0] - q[0], p[1] - q[1]) < 0.5) continue;
      segment(s, q, p);
      s.points.push(p);
    }
  });
  function endStroke() {
    if (!S.drawing) return;
    push(S.drawing);
    S.drawing = null;
  }
  el.canvases.addEventListener("pointerup", endStroke);
  el.canvases.addEventListener("pointercancel", endStroke);
  el.canvases.addEventListener("pointerleave", () => { el.cursor.hidden = true; });

  // ---------------------------------------------------------------- tools
  function setTool(tool) {
    S.tool = tool;
    el.toolHole.classList.toggle("active", tool === "hole");
    el.toolEdges.classList.toggle("active", tool === "edges");
    el.toolHole.setAttribute("aria-checked", tool === "hole");
    el.toolEdges.setAttribute("aria-checked", tool === "edges");
    el.size.value = S.sizes[tool];
    el.sizeOut.textContent = S.sizes[tool];
  }
  function setErase(on) {
    S.erase = on;
    el.eraser.setAttribute("aria-pressed", String(on));
  }
  function setSize(n) {
    n = Math.max(1, Math.min(200, Math.round(n)));
    S.sizes[S.tool] = n;
    el.size.value = n;
    el.sizeOut.textContent = n;
  }
  el.toolHole.addEventListener("click", () => setTool("hole"));
  el.toolEdges.addEventListener("click", () => setTool("edges"));
  el.eraser.addEventListener("click", () => setErase(!S.erase));
  el.size.addEventListener("input", () => setSize(+el.size.value));
  el.undo.addEventListener("click", undo);
  el.redo.addEventListener("click", redo);
  el.clear.addEventListener("click", clear);
  el.fit.addEventListener("click", fit);

  // ---------------------------------------------------------------- run
  // A layer as a black/white PNG of the image's size: white where the layer's alpha exceeds `threshold`.
  function exportLayer(canvas, threshold) {
    const w = canvas.width, h = canvas.height;
    const data = canvas.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, w, h);
    const a = data.data;
    let any = false;
    for (let i = 0; i < a.length; i += 4) {
      const v = a[i + 3] > threshold ? 255 : 0;
      if (v) any = true;
      a[i] = a[i + 1] = a[i + 2] = v;
      a[i + 3] = 255;
    }
    if (!any) return Promise.resolve(null);
    const out = document.createElement("canvas");
    out.width = w;
    out.height = h;
    out.getContext("2d").putImageData(data, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  async function answerError(r) {
    try {
      const j = await r.json();
      if (j && j.error) return j.error;
    } catch (e) { /* not JSON */ }
    return `${r.status} ${r.statusText}`;
  }

  async function run() {
    if (S.view !== "edit" || S.busy || !S.image) return;
    showError("");
    const mask = layerTouched("mask") ? await exportLayer(el.mask, 0) : null;
    if (!mask) {
      showError("Paint the hole first: the hole brush marks what to remove.");
      return;
    }
    const sketch = layerTouched("sketch") ? await exportLayer(el.sketch, 63) : null;
    const form = new FormData();
    form.append("image", S.image.blob, S.image.name);
    form.append("mask", mask, "mask.png");
    if (sketch) form.append("edges", sketch, "edges.png");
    form.append("dilate", String(Math.max(0, Math.min(64, Math.round(+el.dilate.value || 0)))));
    if (el.texture.checked) form.append("detail", "context");
    const t0 = performance.now();
    setBusy(true, "Filling…");
    const timer = setInterval(() => {
      el.busyText.textContent = `Filling… ${((performance.now() - t0) / 1000).toFixed(0)} s`;
    }, 500);
    try {
      let r;
      try {
        r = await fetch("api/inpaint", { method: "POST", body: form });
      } catch (e) {
        showError(`The lbam server cannot be reached (${e.message}). Is lbam app still running?`);
        return;
      }
      if (!r.ok) {
        showError(await answerError(r));
        return;
      }
      const blob = await r.blob();
      const seconds = parseFloat(r.headers.get("X-Lbam-Seconds"));
      const edgesUrl = r.headers.get("X-Lbam-Edges");
      let edgesBlob = null;
      if (edgesUrl) {
        const re = await fetch(edgesUrl.replace(/^\//, ""));
        if (re.ok) edgesBlob = await re.blob();
      }
      await showResult(blob, edgesBlob, seconds, (performance.now() - t0) / 1000);
    } catch (e) {
      showError(`Unexpected answer: ${e.message}`);
    } finally {
      clearInterval(timer);
      setBusy(false);
    }
  }

  async function showResult(blob, edgesBlob, seconds, wall) {
    const bitmap = await decode(blob);
    discardResult();
    S.result = { blob, bitmap, url: URL.createObjectURL(blob), edgesBlob, seconds, wall };
    ctx.result.clearRect(0, 0, el.result.width, el.result.height);
    ctx.result.drawImage(bitmap, 0, 0);
    ctx.edgemap.clearRect(0, 0, el.edgemap.width, el.edgemap.height);
    if (edgesBlob) {
      const eb = await decode(edgesBlob);
      ctx.edgemap.drawImage(eb, 0, 0);
      const d = ctx.edgemap.getImageData(0, 0, el.edgemap.width, el.edgemap.height);
      const a = d.data;
      for (let i = 0; i < a.length; i += 4) {  // gray edge strength -> colored overlay with that opacity
        a[i + 3] = a[i];
        a[i] = EDGE_RGB[0]; a[i + 1] = EDGE_RGB[1]; a[i + 2] = EDGE_RGB[2];
      }
      ctx.edgemap.putImageData(d, 0, 0);
    }
    el.useEdges.hidden = !edgesBlob;
    const stem = S.image.name.replace(/\.[^.]*$/, "") || "image";
    el.download.href = S.result.url;
    el.download.download = `${stem}_lbam.png`;
    el.compare.value = 0;
    setView("result");
    const server = Number.isFinite(seconds) ? ` (${seconds.toFixed(2)} s filling)` : "";
    status(`Filled in ${wall.toFixed(2)} s${server}. Drag Before/After to compare; Keep & continue to remove the next object.`);
  }

  function discardResult() {
    if (S.result && S.result.url) URL.revokeObjectURL(S.result.url);
    S.result = null;
  }

  function compare() {
    const v = +el.compare.value;
    el.result.style.clipPath = `inset(0 0 0 ${v}%)`;
    el.edgemap.style.clipPath = `inset(0 0 0 ${v}%)`;
    el.divider.style.left = `${v}%`;
  }
  el.compare.addEventListener("input", compare);
  el.showEdges.addEventListener("change", () => { el.edgemap.hidden = S.view !== "result" || !el.showEdges.checked; });

  function back() {
    if (S.view !== "result" || S.busy) return;
    discardResult();
    setView("edit");
    status("Editing again: change the hole or the edges and Run.");
  }
  function keep() {
    if (S.view !== "result" || S.busy) return;
    const r = S.result;
    S.result = null;  // its blob becomes the image; its URL stays valid for the download link
    S.generations.push({ image: S.image, done: S.done });
    if (S.generations.length > 8) S.generations.shift();  // each keeps a decoded image
    const name = S.image.name;
    setImage({ blob: r.blob, name: name.replace(/\.[^.]*$/, "") + ".png", width: r.bitmap.width,
               height: r.bitmap.height, bitmap: r.bitmap });
    status("Continuing on the result: paint the next object to remove (Undo returns to the image before).");
  }
  async function useEdges() {
    if (S.view !== "result" || S.busy || !S.result || !S.result.edgesBlob) return;
    // the completed edges inside the current hole become the sketch, to be corrected with the edge pen
    const eb = await decode(S.result.edgesBlob);
    const w = el.sketch.width, h = el.sketch.height;
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    const cc = c.getContext("2d", { willReadFrequently: true });
    cc.drawImage(eb, 0, 0);
    const d = cc.getImageData(0, 0, w, h), a = d.data;
    const hole = ctx.mask.getImageData(0, 0, w, h).data;
    const rgb = [0, 229, 255];
    for (let i = 0; i < a.length; i += 4) {
      const on = a[i] >= 128 && hole[i + 3] > 0;
      a[i] = rgb[0]; a[i + 1] = rgb[1]; a[i + 2] = rgb[2];
      a[i + 3] = on ? 255 : 0;
    }
    cc.putImageData(d, 0, 0);
    back();
    push({ type: "sketchImage", canvas: c });
    replay();
    setTool("edges");
    status("The completed edges are now your sketch: correct them with the edge pen (and eraser), then Run.");
  }
  el.run.addEventListener("click", run);
  el.back.addEventListener("click", back);
  el.keep.addEventListener("click", keep);
  el.useEdges.addEventListener("click", useEdges);

  // ---------------------------------------------------------------- open, drop, paste, keys
  el.file.addEventListener("change", () => {
    const f = el.file.files[0];
    el.file.value = "";
    openFile(f);
  });
  let dragDepth = 0;
  document.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth++; document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; document.body.classList.remove("dragging"); } });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    dragDepth = 0;
    document.body.classList.remove("dragging");
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) openFile(f);
  });
  document.addEventListener("paste", (e) => {
    const items = e.clipboardData ? [...e.clipboardData.items] : [];
    const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (item) openFile(item.getAsFile());
  });
  document.addEventListener("keyup", (e) => {
    if (e.key === " ") { Z.space = false; document.body.classList.remove("panning"); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type !== "range" && e.target.type !== "checkbox") return;
    const k = e.key.toLowerCase(), mod = e.ctrlKey || e.metaKey;
    if (k === " ") {  // hold Space to pan with the left button
      e.preventDefault();
      Z.space = true;
      document.body.classList.add("panning");
      return;
    }
    if (mod && k === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); }
    else if (mod && k === "y") { e.preventDefault(); redo(); }
    else if (mod && k === "enter") { e.preventDefault(); run(); }
    else if (mod) return;
    else if (k === "b") setTool("hole");
    else if (k === "e") setTool("edges");
    else if (k === "x") setErase(!S.erase);
    else if (k === "[") setSize(S.sizes[S.tool] * 0.8);
    else if (k === "]") setSize(S.sizes[S.tool] * 1.25 + 1);
    else if (k === "0") fit();
  });
  window.addEventListener("resize", layout);

  // ---------------------------------------------------------------- start
  setTool("hole");
  setView("empty");
  fetch("api/info").then(async (r) => {
    if (!r.ok) throw new Error(await answerError(r));
    S.info = await r.json();
    status(`Ready: weights ${S.info.weights} on ${S.info.device}. Open or drop a photo.`);
  }).catch((e) => showError(`Cannot reach the lbam server: ${e.message}`));

  window.lbamApp = { state: S, run, undo, redo, clear, keep, back, useEdges, openFile };
})();
