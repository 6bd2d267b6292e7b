// gansr serve: the page's behaviour. Plain JavaScript, no framework, no build step.
//
// Flow: pick or drop an image -> POST /api/upscale with the chosen model (upload progress from
// XHR, then a processing indicator) -> POST again with model=bicubic for the comparison ->
// before/after slider, 1:1 detail view and a download link, all from in-memory blob URLs.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    form: $("upscale-form"),
    file: $("file"),
    dropzone: $("dropzone"),
    fileInfo: $("file-info"),
    thumb: $("thumb"),
    fileName: $("file-name"),
    fileDetails: $("file-details"),
    model: $("model"),
    modelDesc: $("model-desc"),
    outscale: $("outscale"),
    outscaleHint: $("outscale-hint"),
    format: $("format"),
    submit: $("submit"),
    progress: $("progress"),
    uploadLabel: $("upload-label"),
    uploadPercent: $("upload-percent"),
    uploadProgress: $("upload-progress"),
    processing: $("processing"),
    processingText: $("processing-text"),
    status: $("status"),
    error: $("error"),
    serverStatus: $("server-status"),
    empty: $("empty"),
    result: $("result"),
    compare: $("compare"),
    before: $("before-img"),
    after: $("after-img"),
    beforeBadge: $("before-badge"),
    afterBadge: $("after-badge"),
    handle: $("handle"),
    marker: $("zoom-marker"),
    cmpBicubic: $("cmp-bicubic"),
    cmpLr: $("cmp-lr"),
    download: $("download"),
    zoom: $("zoom"),
    detail: $("detail"),
    detailBefore: $("detail-before"),
    detailAfter: $("detail-after"),
    detailBeforeCaption: $("detail-before-caption"),
    detailAfterCaption: $("detail-after-caption"),
    detailPos: $("detail-pos"),
    stats: $("stats"),
  };

  const MAX_RETRIES = 3;
  const state = {
    limits: null,
    models: [],
    file: null,
    fileUrl: null,
    fileDims: null, // [w, h] when the browser can decode the upload itself
    outscaleTouched: false,
    busy: false,
    result: null, // {srUrl, bicubicUrl, lrUrl, width, height, lrWidth, lrHeight}
    split: 50,
    center: null, // detail centre in output pixels
  };

  // ------------------------------------------------------------------ small helpers

  function formatBytes(n) {
    if (n < 1000) return `${n} B`;
    if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
    return `${(n / 1e6).toFixed(1)} MB`;
  }

  function setStatus(text) {
    el.status.textContent = text;
  }

  function showError(text) {
    el.error.textContent = text.charAt(0).toUpperCase() + text.slice(1);
    el.error.hidden = false;
  }

  function clearError() {
    el.error.hidden = true;
    el.error.textContent = "";
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  function selectedModel() {
    return state.models.find((m) => m.name === el.model.value) || null;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("the browser cannot display this image"));
      img.src = url;
    });
  }

  // ------------------------------------------------------------------ start-up

  async function init() {
    try {
      const [health, models] = await Promise.all([getJSON("/api/health"), getJSON("/api/models")]);
      state.limits = health.limits;
      state.models = models;
      el.model.replaceChildren(
        ...models.map((m) => {
          const option = new Option(`${m.name} (×${m.scale})`, m.name);
          option.title = m.description || ""; // the full line on hover; the hint shows it too
          option.selected = m.default;
          return option;
        }),
      );
      el.outscale.min = String(health.limits.min_outscale);
      el.outscale.max = String(health.limits.max_outscale);
      $("file-hint").textContent =
        `PNG, JPEG, WebP, BMP or TIFF · up to ${formatBytes(health.limits.max_upload_bytes)}`;
      el.serverStatus.dataset.state = "ok";
      el.serverStatus.textContent = `Ready · ${health.device.toUpperCase()}`;
      onModelChange();
    } catch (err) {
      el.serverStatus.dataset.state = "down";
      el.serverStatus.textContent = "Server unreachable";
      showError(`Cannot reach the server (${err.message}). Reload the page to try again.`);
    }
  }

  // ------------------------------------------------------------------ choosing a file and settings

  function onModelChange() {
    const model = selectedModel();
    if (!model) return;
    el.modelDesc.textContent = model.description || `${model.name}, ×${model.scale}`;
    if (!state.outscaleTouched) el.outscale.value = String(model.scale);
    updateOutscaleHint();
  }

  function outscaleValue() {
    const value = Number(el.outscale.value);
    const { min_outscale: lo, max_outscale: hi } = state.limits || { min_outscale: 1, max_outscale: 8 };
    if (el.outscale.value.trim() === "" || !Number.isFinite(value) || value < lo || value > hi) return null;
    return value;
  }

  function updateOutscaleHint() {
    const scale = outscaleValue();
    const limits = state.limits;
    el.outscale.setAttribute("aria-invalid", scale === null ? "true" : "false");
    if (scale === null) {
      const lo = limits ? limits.min_outscale : 1;
      const hi = limits ? limits.max_outscale : 8;
      el.outscaleHint.textContent = `Enter a scale between ${lo}× and ${hi}×.`;
      return;
    }
    if (!state.fileDims) {
      el.outscaleHint.textContent = `The result will be ${scale}× the input's width and height.`;
      return;
    }
    const [w, h] = state.fileDims;
    const ow = Math.max(1, Math.round(w * scale));
    const oh = Math.max(1, Math.round(h * scale));
    let text = `Result: ${ow} × ${oh} px.`;
    if (limits && ow * oh > limits.max_output_pixels) {
      text += ` That is over the server's limit of ${(limits.max_output_pixels / 1e6).toFixed(0)} megapixels.`;
    }
    el.outscaleHint.textContent = text;
  }

  async function pickFile(file) {
    clearError();
    if (!file) return;
    if (state.limits && file.size > state.limits.max_upload_bytes) {
      showError(
        `${file.name} is ${formatBytes(file.size)}; the server accepts up to ${formatBytes(state.limits.max_upload_bytes)}.`,
      );
      return;
    }
    if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
    state.file = file;
    state.fileUrl = URL.createObjectURL(file);
    state.fileDims = null;
    el.fileInfo.hidden = false;
    el.fileName.textContent = file.name;
    el.fileDetails.textContent = formatBytes(file.size);
    el.thumb.hidden = false;
    el.thumb.src = state.fileUrl;
    el.submit.disabled = state.busy;
    try {
      const img = await loadImage(state.fileUrl);
      if (state.file !== file) return; // another file was picked meanwhile
      state.fileDims = [img.naturalWidth, img.naturalHeight];
      el.fileDetails.textContent = `${img.naturalWidth} × ${img.naturalHeight} px · ${formatBytes(file.size)}`;
    } catch {
      el.thumb.hidden = true;
      el.thumb.removeAttribute("src");
      el.fileDetails.textContent = `${formatBytes(file.size)} · no preview in this browser`;
    }
    updateOutscaleHint();
    setStatus(`Selected ${file.name}.`);
  }

  // ------------------------------------------------------------------ talking to the API

  function parseFilename(disposition) {
    const match = /filename="([^"]+)"/.exec(disposition || "");
    return match ? match[1] : "upscaled.png";
  }

  // One POST /api/upscale with upload progress; rejects with {message, status, retryAfter}.
  function postUpscale(fields, label) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      body.append("image", state.file, state.file.name);
      for (const [key, value] of Object.entries(fields)) {
        if (value !== null && value !== undefined) body.append(key, String(value));
      }
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/upscale");
      xhr.responseType = "blob";
      let timer = null;
      const started = performance.now();

      el.uploadLabel.textContent = label;
      el.uploadProgress.value = 0;
      el.uploadPercent.textContent = "0%";
      el.processing.hidden = true;

      xhr.upload.onprogress = (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.round((100 * event.loaded) / event.total);
        el.uploadProgress.value = percent;
        el.uploadPercent.textContent = `${percent}%`;
      };
      xhr.upload.onload = () => {
        el.uploadProgress.value = 100;
        el.uploadPercent.textContent = "100%";
        el.processing.hidden = false;
        el.processingText.textContent = "Processing on the server…";
        timer = setInterval(() => {
          const seconds = Math.round((performance.now() - started) / 1000);
          el.processingText.textContent = `Processing on the server… ${seconds} s`;
        }, 1000);
      };
      xhr.onloadend = () => clearInterval(timer);
      xhr.onerror = () => reject(Object.assign(new Error("The connection to the server failed."), { status: 0 }));
      xhr.onload = async () => {
        if (xhr.status === 200) {
          resolve({
            blob: xhr.response,
            filename: parseFilename(xhr.getResponseHeader("Content-Disposition")),
            model: xhr.getResponseHeader("X-Gansr-Model"),
            inputSize: xhr.getResponseHeader("X-Gansr-Input-Size"),
            outputSize: xhr.getResponseHeader("X-Gansr-Output-Size"),
            seconds: Number(xhr.getResponseHeader("X-Gansr-Seconds")),
          });
          return;
        }
        let detail = `The server answered HTTP ${xhr.status}.`;
        try {
          detail = JSON.parse(await xhr.response.text()).detail || detail;
        } catch {
          // not JSON: keep the generic message
        }
        const retryAfter = Number(xhr.getResponseHeader("Retry-After")) || 2;
        reject(Object.assign(new Error(detail), { status: xhr.status, retryAfter }));
      };
      xhr.send(body);
    });
  }

  // POST with retries while the server is busy (503 + Retry-After).
  async function upscaleWithRetry(fields, label) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await postUpscale(fields, label);
      } catch (err) {
        if (err.status !== 503 || attempt >= MAX_RETRIES) throw err;
        for (let left = Math.min(err.retryAfter, 30); left > 0; left -= 1) {
          setStatus(`The server is busy; retrying in ${left} s…`);
          await sleep(1000);
        }
      }
    }
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (state.busy) return;
    clearError();
    if (!state.file) {
      showError("Choose an image first.");
      el.file.focus();
      return;
    }
    const outscale = outscaleValue();
    if (outscale === null) {
      updateOutscaleHint();
      showError(el.outscaleHint.textContent);
      el.outscale.focus();
      return;
    }
    const model = el.model.value;
    const format = el.format.value;
    state.busy = true;
    el.submit.disabled = true;
    el.progress.hidden = false;
    setStatus(`Upscaling ${state.file.name} with ${model}…`);
    try {
      const sr = await upscaleWithRetry({ model, outscale, format }, "Uploading");
      let bicubic = null;
      if (model === "bicubic") {
        bicubic = sr.blob;
      } else {
        try {
          const ref = await upscaleWithRetry({ model: "bicubic", outscale, format: "png" }, "Bicubic reference");
          bicubic = ref.blob;
        } catch {
          bicubic = null; // the comparison falls back to the input
        }
      }
      let lrUrl = state.fileUrl;
      if (!state.fileDims) {
        // The browser cannot show the upload itself (e.g. TIFF): let the server convert it to PNG.
        const lr = await upscaleWithRetry({ model: "bicubic", outscale: 1, format: "png" }, "Preparing the input");
        lrUrl = URL.createObjectURL(lr.blob);
      }
      await showResult(sr, bicubic, lrUrl);
      setStatus(`Done: ${sr.outputSize.replace("x", " × ")} px in ${sr.seconds.toFixed(2)} s.`);
    } catch (err) {
      setStatus("");
      showError(err.message);
    } finally {
      state.busy = false;
      el.submit.disabled = !state.file;
      el.progress.hidden = true;
    }
  }

  // ------------------------------------------------------------------ the result view

  function revokeResult() {
    const r = state.result;
    if (!r) return;
    URL.revokeObjectURL(r.srUrl);
    if (r.bicubicUrl && r.bicubicUrl !== r.srUrl) URL.revokeObjectURL(r.bicubicUrl);
    if (r.lrUrl && r.lrUrl !== state.fileUrl) URL.revokeObjectURL(r.lrUrl);
  }

  async function showResult(sr, bicubicBlob, lrUrl) {
    const srUrl = URL.createObjectURL(sr.blob);
    const bicubicUrl = bicubicBlob === sr.blob ? srUrl : bicubicBlob ? URL.createObjectURL(bicubicBlob) : null;
    const [srImg, lrImg] = await Promise.all([loadImage(srUrl), loadImage(lrUrl)]);
    const bicubicImg = bicubicUrl ? await loadImage(bicubicUrl) : null;
    revokeResult();
    state.result = {
      srUrl,
      bicubicUrl,
      lrUrl,
      srImg,
      lrImg,
      bicubicImg,
      width: srImg.naturalWidth,
      height: srImg.naturalHeight,
      model: sr.model,
    };

    el.after.src = srUrl;
    el.after.alt = `Result: ${sr.filename}, ${srImg.naturalWidth} × ${srImg.naturalHeight} pixels, upscaled with ${sr.model}`;
    el.afterBadge.textContent = sr.model;
    el.detailAfterCaption.textContent = `Result (${sr.model})`;
    const ratio = srImg.naturalWidth / srImg.naturalHeight;
    el.compare.style.aspectRatio = `${srImg.naturalWidth} / ${srImg.naturalHeight}`;
    el.compare.style.maxWidth = `calc(62vh * ${ratio.toFixed(5)})`;

    el.cmpBicubic.disabled = !bicubicUrl;
    const useLr = !bicubicUrl || sr.model === "bicubic";
    (useLr ? el.cmpLr : el.cmpBicubic).checked = true;
    setCompareMode(useLr ? "lr" : "bicubic");

    const kind = sr.blob.type.replace("image/", "").toUpperCase();
    el.download.href = srUrl;
    el.download.download = sr.filename;
    el.download.textContent = `Download ${kind} · ${formatBytes(sr.blob.size)}`;
    el.download.setAttribute("aria-label", `Download ${sr.filename} (${kind}, ${formatBytes(sr.blob.size)})`);

    const stats = [
      ["Model", sr.model],
      ["Input", `${sr.inputSize.replace("x", " × ")} px`],
      ["Output", `${sr.outputSize.replace("x", " × ")} px`],
      ["Server time", `${sr.seconds.toFixed(2)} s`],
      ["File", `${kind} · ${formatBytes(sr.blob.size)}`],
    ];
    el.stats.replaceChildren(
      ...stats.map(([term, value]) => {
        const div = document.createElement("div");
        const dt = document.createElement("dt");
        const dd = document.createElement("dd");
        dt.textContent = term;
        dd.textContent = value;
        div.append(dt, dd);
        return div;
      }),
    );

    el.empty.hidden = true;
    el.result.hidden = false;
    setSplit(50);
    state.center = [state.result.width / 2, state.result.height / 2];
    renderDetail();
  }

  function setCompareMode(mode) {
    const r = state.result;
    if (!r) return;
    const lr = mode === "lr" || !r.bicubicUrl;
    el.before.src = lr ? r.lrUrl : r.bicubicUrl;
    el.before.classList.toggle("pixelated", lr);
    const name = lr ? "Input (LR)" : "Bicubic";
    el.before.alt = lr ? "The uploaded input, enlarged without smoothing" : "Bicubic upscaling of the input";
    el.beforeBadge.textContent = name;
    el.detailBeforeCaption.textContent = name;
    setSplit(state.split);
    renderDetail();
  }

  function setSplit(value) {
    const split = Math.min(100, Math.max(0, value));
    state.split = split;
    el.compare.style.setProperty("--split", `${split}%`);
    const rounded = Math.round(split);
    el.handle.setAttribute("aria-valuenow", String(rounded));
    el.handle.setAttribute("aria-valuetext", `${rounded}% ${el.beforeBadge.textContent.toLowerCase()}`);
  }

  function onHandleKey(event) {
    const big = event.shiftKey ? 10 : 1;
    const moves = {
      ArrowLeft: -big,
      ArrowDown: -big,
      ArrowRight: big,
      ArrowUp: big,
      PageDown: -10,
      PageUp: 10,
    };
    if (event.key in moves) setSplit(state.split + moves[event.key]);
    else if (event.key === "Home") setSplit(0);
    else if (event.key === "End") setSplit(100);
    else return;
    event.preventDefault();
  }

  function splitFromPointer(event) {
    const rect = el.compare.getBoundingClientRect();
    setSplit((100 * (event.clientX - rect.left)) / rect.width);
  }

  // ------------------------------------------------------------------ the 1:1 detail view

  function detailRegion() {
    const r = state.result;
    const zoom = Number(el.zoom.value);
    const cssSize = el.detailAfter.clientWidth || 256;
    const size = Math.max(4, Math.min(cssSize / zoom, r.width, r.height));
    const half = size / 2;
    const cx = Math.min(r.width - half, Math.max(half, state.center[0]));
    const cy = Math.min(r.height - half, Math.max(half, state.center[1]));
    state.center = [cx, cy];
    return { x: cx - half, y: cy - half, size, cssSize };
  }

  function drawCrop(canvas, img, region, scaleX, scaleY, cssSize) {
    const dpr = window.devicePixelRatio || 1;
    const side = Math.round(cssSize * dpr);
    if (canvas.width !== side) canvas.width = canvas.height = side;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, side, side);
    ctx.drawImage(
      img,
      region.x * scaleX,
      region.y * scaleY,
      region.size * scaleX,
      region.size * scaleY,
      0,
      0,
      side,
      side,
    );
  }

  function renderDetail() {
    const r = state.result;
    if (!r || !state.center || el.result.hidden) return;
    const region = detailRegion();
    const lr = el.cmpLr.checked || !r.bicubicImg;
    const beforeImg = lr ? r.lrImg : r.bicubicImg;
    drawCrop(el.detailAfter, r.srImg, region, 1, 1, region.cssSize);
    drawCrop(
      el.detailBefore,
      beforeImg,
      region,
      beforeImg.naturalWidth / r.width,
      beforeImg.naturalHeight / r.height,
      region.cssSize,
    );
    Object.assign(el.marker.style, {
      left: `${(100 * region.x) / r.width}%`,
      top: `${(100 * region.y) / r.height}%`,
      width: `${(100 * region.size) / r.width}%`,
      height: `${(100 * region.size) / r.height}%`,
    });
    const size = Math.round(region.size);
    el.detailPos.textContent =
      `Showing ${size} × ${size} output pixels around (${Math.round(state.center[0])}, ` +
      `${Math.round(state.center[1])}) at ${el.zoom.value}:1.`;
  }

  function onDetailKey(event) {
    if (!state.result) return;
    const region = detailRegion();
    const step = region.size / (event.shiftKey ? 2 : 8);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    state.center = [state.center[0] + move[0], state.center[1] + move[1]];
    renderDetail();
  }

  function onCompareClick(event) {
    if (!state.result || event.target === el.handle || el.handle.contains(event.target)) return;
    const rect = el.compare.getBoundingClientRect();
    state.center = [
      ((event.clientX - rect.left) / rect.width) * state.result.width,
      ((event.clientY - rect.top) / rect.height) * state.result.height,
    ];
    renderDetail();
  }

  // ------------------------------------------------------------------ wiring

  el.file.addEventListener("change", () => pickFile(el.file.files[0]));
  el.model.addEventListener("change", onModelChange);
  el.outscale.addEventListener("input", () => {
    state.outscaleTouched = true;
    updateOutscaleHint();
  });
  el.form.addEventListener("submit", onSubmit);

  for (const type of ["dragenter", "dragover"]) {
    el.dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      el.dropzone.classList.add("dragover");
    });
  }
  el.dropzone.addEventListener("dragleave", () => el.dropzone.classList.remove("dragover"));
  el.dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    el.dropzone.classList.remove("dragover");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) pickFile(file);
  });
  // A file dropped beside the drop zone must not make the browser navigate away to it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  el.handle.addEventListener("keydown", onHandleKey);
  el.handle.addEventListener("pointerdown", (event) => {
    el.handle.setPointerCapture(event.pointerId);
    el.handle.focus();
    event.preventDefault();
  });
  el.handle.addEventListener("pointermove", (event) => {
    if (el.handle.hasPointerCapture(event.pointerId)) splitFromPointer(event);
  });
  el.compare.addEventListener("click", onCompareClick);
  el.cmpBicubic.addEventListener("change", () => setCompareMode("bicubic"));
  el.cmpLr.addEventListener("change", () => setCompareMode("lr"));
  el.zoom.addEventListener("change", renderDetail);
  el.detail.addEventListener("keydown", onDetailKey);
  window.addEventListener("resize", renderDetail);

  init();
})();
