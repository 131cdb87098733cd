// The latent pad: a latent map whose decoder runs in the page (Python side: ui/latent_pad.py).
//
// One component definition, two instances. The "model" instance gets the payload bytes of
// vae_core/web_decoder.py and parses them once into MODELS, keyed by the payload's hash. The
// "pad" instance gets small JSON (model hash, axis limits, names, markers), draws the map and
// decodes the point under the pointer on every animation frame; Streamlit hears only the
// released point ("point") and the picked class ("digit"). Both instances import this same
// module (Streamlit loads one blob URL per JS source), so they share MODULE_TOKEN and MODELS.

const MAGIC = "VAEW";
const VERSION = 1;
const BATCH = 10; // rows one forward pass runs at once: the row of ten classes
const SIDE = 28;
const PIXELS = SIDE * SIDE;
const MAX_MODELS = 6;
const PALETTE = ["#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
  "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#6B6B6B"];
const FALLBACK = "The live decoder cannot run in this browser; use the controls below instead.";
const NOT_LOADED = "The live decoder did not load; use the controls below instead.";
const MODULE_TOKEN = Math.random().toString(36).slice(2, 10);
const MODELS = new Map(); // hash -> model, or {error}
const WAITERS = new Map(); // hash -> callbacks waiting for that model
const PADS = new Set(); // live pads, for the test hook
const fround = Math.fround;

// ---- Payload ---------------------------------------------------------------------------------
function parsePayload(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length < 12) throw new Error("no payload");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC || view.getUint32(4, true) !== VERSION) throw new Error("bad payload");
  const length = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  const data = bytes.slice(12 + length).buffer; // one aligned copy of all tensors
  const tensor = (name) => {
    if (name === null || name === undefined) return null;
    const t = header.tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    const Type = { f32: Float32Array, i8: Int8Array, u8: Uint8Array }[t.dtype];
    return new Type(data, t.offset, count);
  };
  return { header, tensor };
}

function payloadHash(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = new TextDecoder().decode(bytes.subarray(12, 12 + view.getUint32(8, true)));
  return JSON.parse(header).hash;
}

// ---- Forward pass ----------------------------------------------------------------------------
// Activations are row-major (batch, H, W, C) Float32Arrays; every buffer is allocated here, once
// per model, so decoding a frame allocates nothing.

const ACTIVATIONS = { linear: 0, relu: 1, sigmoid: 2, tanh: 3 };

function activate(code, v) {
  if (code === 1) return v > 0 ? v : 0;
  if (code === 2) return 1 / (1 + Math.exp(-v));
  if (code === 3) return Math.tanh(v);
  return v;
}

function activationCode(name) {
  if (!(name in ACTIVATIONS)) throw new Error(`unknown activation ${name}`);
  return ACTIVATIONS[name];
}

function roundHalfEven(v) { // what tf.round does (Math.round rounds halves up)
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

function makeDense(spec, tensor, inSize) {
  const units = spec.units;
  const raw = tensor(spec.kernel);
  if (raw.length !== inSize * units) throw new Error("dense kernel shape");
  const kernel = Float32Array.from(raw); // int8 kernels keep their integer values
  const bias = tensor(spec.bias) || new Float32Array(units);
  const scale = tensor(spec.kernel_scale);
  const quant = spec.input_quantizer || null;
  if (scale && !quant) { // dequantize once: w = q / scale
    for (let i = 0; i < inSize; i++) {
      for (let o = 0; o < units; o++) {
        kernel[i * units + o] = fround(kernel[i * units + o] / scale[o]);
      }
    }
  }
  const act = activationCode(spec.activation);
  const acc = new Float64Array(units * BATCH);
  const xq = quant ? new Float32Array(inSize * BATCH) : null;
  const rowScale = new Float64Array(BATCH);
  const eps = quant ? fround(quant.epsilon) : 0;

  const nzRow = new Int32Array(inSize), nzValue = new Float64Array(inSize);

  // acc[b] = X[b] @ kernel over the nonzero inputs only (ReLU outputs, one-hot slots), four
  // kernel rows per pass over acc.
  function accumulate(X, n) {
    for (let b = 0; b < n; b++) {
      let m = 0;
      for (let i = 0; i < inSize; i++) {
        const v = X[b * inSize + i];
        if (v !== 0) { nzRow[m] = i * units; nzValue[m++] = v; }
      }
      const a = b * units;
      acc.fill(0, a, a + units);
      let j = 0;
      for (; j + 3 < m; j += 4) {
        const v0 = nzValue[j], v1 = nzValue[j + 1], v2 = nzValue[j + 2], v3 = nzValue[j + 3];
        const k0 = nzRow[j], k1 = nzRow[j + 1], k2 = nzRow[j + 2], k3 = nzRow[j + 3];
        for (let o = 0; o < units; o++) {
          acc[a + o] += v0 * kernel[k0 + o] + v1 * kernel[k1 + o]
            + v2 * kernel[k2 + o] + v3 * kernel[k3 + o];
        }
      }
      for (; j < m; j++) {
        const v = nzValue[j], k = nzRow[j];
        for (let o = 0; o < units; o++) acc[a + o] += v * kernel[k + o];
      }
    }
  }

  // Keras's int8 Dense: round each input row to int8 with its own abs-max scale.
  function quantizeRow(X, b, maxAbs) {
    const s = fround(quant.high / fround(maxAbs + eps));
    rowScale[b] = s;
    for (let i = 0; i < inSize; i++) {
      const q = roundHalfEven(fround(X[b * inSize + i] * s));
      xq[b * inSize + i] = Math.min(quant.high, Math.max(quant.low, q));
    }
  }

  function finish(Y, n) {
    for (let b = 0; b < n; b++) {
      const a = b * units;
      for (let o = 0; o < units; o++) {
        let v = acc[a + o];
        v = quant ? fround(fround(v) / fround(scale[o] * rowScale[b])) : fround(v);
        Y[a + o] = activate(act, fround(v + bias[o]));
      }
    }
  }

  return {
    outSize: units,
    run(X, Y, n) {
      if (quant) {
        for (let b = 0; b < n; b++) {
          let m = 0;
          for (let i = 0; i < inSize; i++) m = Math.max(m, Math.abs(X[b * inSize + i]));
          quantizeRow(X, b, m);
        }
        accumulate(xq, n);
      } else {
        accumulate(X, n);
      }
      finish(Y, n);
    },
    // The ten rows [style, one-hot(c)]: the style part once, then each class's kernel row.
    runClassRows(X, Y, styleDims) {
      let m = 1; // the one-hot slot
      for (let i = 0; i < styleDims; i++) m = Math.max(m, Math.abs(X[i]));
      if (quant) quantizeRow(X, 0, m);
      const src = quant ? xq : X;
      const hot = quant ? Math.min(quant.high, roundHalfEven(fround(rowScale[0]))) : 1;
      acc.fill(0, 0, units);
      for (let i = 0; i < styleDims; i++) {
        const v = src[i];
        if (v === 0) continue;
        const k = i * units;
        for (let o = 0; o < units; o++) acc[o] += v * kernel[k + o];
      }
      for (let c = BATCH - 1; c >= 0; c--) {
        const k = (styleDims + c) * units;
        rowScale[c] = rowScale[0];
        for (let o = 0; o < units; o++) acc[c * units + o] = acc[o] + hot * kernel[k + o];
      }
      finish(Y, BATCH);
    },
  };
}

// Conv geometry of one axis, as TensorFlow computes it (see web_decoder.conv_geometry).
function geometry(transpose, size, k, s, padding) {
  if (!transpose) {
    const out = padding === "same" ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
    const total = padding === "same" ? Math.max((out - 1) * s + k - size, 0) : 0;
    return [out, Math.floor(total / 2)];
  }
  const out = padding === "same" ? size * s : (size - 1) * s + Math.max(k, s);
  return [out, padding === "same" ? Math.floor(Math.max(k - s, 0) / 2) : 0];
}

// For each output index, the (kernel tap, input index) pairs that reach it.
function taps(transpose, size, out, k, s, pad) {
  const start = new Int32Array(out + 1), tap = [], from = [];
  for (let o = 0; o < out; o++) {
    for (let t = 0; t < k; t++) {
      let i;
      if (transpose) { // y[i*s + t - pad] += x[i]
        const j = o + pad - t;
        if (j % s !== 0) continue;
        i = j / s;
      } else { // y[o] += x[o*s + t - pad]
        i = o * s + t - pad;
      }
      if (i >= 0 && i < size) { tap.push(t); from.push(i); }
    }
    start[o + 1] = tap.length;
  }
  return { start, tap: Int32Array.from(tap), from: Int32Array.from(from) };
}

function makeConv(spec, tensor, shape) {
  const [H, W, C] = shape;
  const transpose = spec.type === "conv2d_transpose";
  const [KH, KW] = spec.kernel_size, [SY, SX] = spec.strides, O = spec.filters;
  const [OH, padY] = geometry(transpose, H, KH, SY, spec.padding);
  const [OW, padX] = geometry(transpose, W, KW, SX, spec.padding);
  const kernel = tensor(spec.kernel); // (kh, kw, in, out)
  if (kernel.length !== KH * KW * C * O) throw new Error("conv kernel shape");
  const bias = tensor(spec.bias) || new Float32Array(O);
  const act = activationCode(spec.activation);
  // Per output pixel, the (input pixel offset, kernel offset) pairs that reach it.
  const rows = taps(transpose, H, OH, KH, SY, padY), cols = taps(transpose, W, OW, KW, SX, padX);
  const start = new Int32Array(OH * OW + 1), from = [], weight = [];
  for (let oy = 0; oy < OH; oy++) {
    for (let ox = 0; ox < OW; ox++) {
      for (let r = rows.start[oy]; r < rows.start[oy + 1]; r++) {
        for (let c = cols.start[ox]; c < cols.start[ox + 1]; c++) {
          from.push(rows.from[r] * W + cols.from[c]);
          weight.push((rows.tap[r] * KW + cols.tap[c]) * C * O);
        }
      }
      start[oy * OW + ox + 1] = from.length;
    }
  }
  const fromPixel = Int32Array.from(from), fromW = Int32Array.from(weight);
  const inStride = H * W * C, outStride = OH * OW * O, pixels = OH * OW;
  // The nonzero inputs of one image, pixel by pixel (ReLU leaves many zeros to skip).
  const nzStart = new Int32Array(H * W + 1), nzWeight = new Int32Array(H * W * C);
  const nzValue = new Float64Array(H * W * C);

  function compact(X, xB) {
    let m = 0;
    for (let q = 0; q < H * W; q++) {
      for (let i = 0; i < C; i++) {
        const v = X[xB + q * C + i];
        if (v !== 0) { nzWeight[m] = i * O; nzValue[m++] = v; }
      }
      nzStart[q + 1] = m;
    }
  }

  // Eight output channels at a time in local accumulators (kept in registers).
  function run8(X, Y, n) {
    for (let b = 0; b < n; b++) {
      compact(X, b * inStride);
      const yB = b * outStride;
      for (let p = 0; p < pixels; p++) {
        const t0 = start[p], t1 = start[p + 1], yb = yB + p * O;
        for (let ob = 0; ob < O; ob += 8) {
          let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
          for (let t = t0; t < t1; t++) {
            const q = fromPixel[t], wb = fromW[t] + ob;
            for (let j = nzStart[q], end = nzStart[q + 1]; j < end; j++) {
              const v = nzValue[j], w = wb + nzWeight[j];
              a0 += v * kernel[w]; a1 += v * kernel[w + 1];
              a2 += v * kernel[w + 2]; a3 += v * kernel[w + 3];
              a4 += v * kernel[w + 4]; a5 += v * kernel[w + 5];
              a6 += v * kernel[w + 6]; a7 += v * kernel[w + 7];
            }
          }
          const y = yb + ob;
          Y[y] = activate(act, fround(a0 + bias[ob]));
          Y[y + 1] = activate(act, fround(a1 + bias[ob + 1]));
          Y[y + 2] = activate(act, fround(a2 + bias[ob + 2]));
          Y[y + 3] = activate(act, fround(a3 + bias[ob + 3]));
          Y[y + 4] = activate(act, fround(a4 + bias[ob + 4]));
          Y[y + 5] = activate(act, fround(a5 + bias[ob + 5]));
          Y[y + 6] = activate(act, fround(a6 + bias[ob + 6]));
          Y[y + 7] = activate(act, fround(a7 + bias[ob + 7]));
        }
      }
    }
  }

  const acc = new Float64Array(O);

  function runAny(X, Y, n) { // any channel count (the one-channel logits layer among them)
    for (let b = 0; b < n; b++) {
      compact(X, b * inStride);
      const yB = b * outStride;
      for (let p = 0; p < pixels; p++) {
        acc.fill(0);
        for (let t = start[p]; t < start[p + 1]; t++) {
          const q = fromPixel[t], wb = fromW[t];
          for (let j = nzStart[q], end = nzStart[q + 1]; j < end; j++) {
            const v = nzValue[j], w = wb + nzWeight[j];
            for (let o = 0; o < O; o++) acc[o] += v * kernel[w + o];
          }
        }
        for (let o = 0; o < O; o++) Y[yB + p * O + o] = activate(act, fround(acc[o] + bias[o]));
      }
    }
  }
  return { outShape: [OH, OW, O], run: O % 8 === 0 ? run8 : runAny };
}

function buildModel(bytes) {
  const { header, tensor } = parsePayload(bytes);
  const layers = [];
  let shape = [header.input_dim], largest = header.input_dim;
  for (const spec of header.layers) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (spec.type === "dense") {
      if (shape.length !== 1) throw new Error("dense after a non-flat layer");
      const layer = makeDense(spec, tensor, size);
      layers.push(layer);
      shape = [spec.units];
    } else if (spec.type === "reshape") {
      shape = spec.shape;
    } else if (spec.type === "activation") {
      layers.push({ inPlace: true, act: activationCode(spec.activation), size });
    } else if (spec.type === "conv2d" || spec.type === "conv2d_transpose") {
      if (shape.length !== 3) throw new Error("conv on a flat input");
      const layer = makeConv(spec, tensor, shape);
      layers.push(layer);
      shape = layer.outShape;
    } else {
      throw new Error(`unknown layer ${spec.type}`);
    }
    largest = Math.max(largest, shape.reduce((a, b) => a * b, 1));
  }
  if (shape.reduce((a, b) => a * b, 1) !== PIXELS) throw new Error("output is not 28 x 28");
  const map = header.map ? {
    n: header.map.n, points: tensor(header.map.points), labels: tensor(header.map.labels),
    center: tensor(header.map.center), components: tensor(header.map.components),
  } : null;
  return {
    hash: header.hash, header, map, layers, inputDim: header.input_dim,
    latentDim: header.latent_dim, conditional: header.conditional,
    buffers: [new Float32Array(largest * BATCH), new Float32Array(largest * BATCH)],
    input: new Float32Array(header.input_dim * BATCH),
  };
}

// Run layers[first:] on n rows already in model.buffers[which]; returns the output buffer.
function runLayers(model, first, which, n) {
  let cur = model.buffers[which], next = model.buffers[1 - which];
  for (let l = first; l < model.layers.length; l++) {
    const layer = model.layers[l];
    if (layer.inPlace) {
      for (let i = 0; i < n * layer.size; i++) cur[i] = activate(layer.act, cur[i]);
      continue;
    }
    layer.run(cur, next, n);
    const done = next;
    next = cur;
    cur = done;
  }
  return cur;
}

// Decoder inputs z[from:] (n <= BATCH rows of inputDim) -> pixels (n * 784 at the start of the
// returned buffer, valid until the next call).
function decodeBatch(model, z, n, from = 0) {
  const input = model.buffers[0];
  for (let i = 0; i < n * model.inputDim; i++) input[i] = z[from + i];
  return runLayers(model, 0, 0, n);
}

// The plane point p = (x, y) -> the style latent center (+ shift) + p @ components, into `out`.
// A shift moves the plane off the map's centre, e.g. through a visitor's own digit.
function planeToStyle(model, x, y, out, shift = null) {
  const d = model.latentDim, m = model.map;
  for (let j = 0; j < d; j++) {
    const base = shift && shift.length === d ? fround(m.center[j] + shift[j]) : m && m.center[j];
    out[j] = m ? fround(base + fround(x * m.components[j] + y * m.components[d + j]))
      : (j === 0 ? x : j === 1 ? y : 0);
  }
}

// The ten classes in one style: the first Dense layer once for the style, the rest batched.
function decodeClassRow(model, x, y, shift = null) {
  if (!model.conditional) throw new Error("an unconditional model has no class slots");
  const z = model.input;
  planeToStyle(model, x, y, z, shift);
  z.fill(0, model.latentDim, model.inputDim);
  const first = model.layers[0];
  if (!first.runClassRows) {
    for (let c = BATCH - 1; c >= 0; c--) {
      const row = c * model.inputDim;
      for (let j = 0; j < model.inputDim; j++) z[row + j] = j < model.latentDim ? z[j] : 0;
      z[row + model.latentDim + c] = 1;
    }
    return decodeBatch(model, z, BATCH);
  }
  first.runClassRows(z, model.buffers[1], model.latentDim);
  return runLayers(model, 1, 1, BATCH);
}

function decodePoint(model, x, y, digit, shift = null) {
  const z = model.input;
  planeToStyle(model, x, y, z, shift);
  if (model.conditional) {
    z.fill(0, model.latentDim, model.inputDim);
    z[model.latentDim + digit] = 1;
  }
  return decodeBatch(model, z, 1);
}

// ---- Model registry ---------------------------------------------------------------------------
function registerModel(bytes) {
  let hash;
  try {
    hash = payloadHash(bytes);
    const known = MODELS.get(hash);
    MODELS.delete(hash); // (re)insert: the registry forgets the least recently shown first
    MODELS.set(hash, known && !known.error ? known : buildModel(bytes));
    if (known && !known.error) return;
  } catch (error) {
    console.error("latent pad: cannot load the decoder", error);
    if (hash === undefined) return;
    MODELS.set(hash, { error });
  }
  while (MODELS.size > MAX_MODELS) MODELS.delete(MODELS.keys().next().value);
  for (const callback of WAITERS.get(hash) || []) callback(MODELS.get(hash));
  WAITERS.delete(hash);
}

function whenModel(hash, callback) {
  if (MODELS.has(hash)) return callback(MODELS.get(hash));
  if (!WAITERS.has(hash)) WAITERS.set(hash, []);
  WAITERS.get(hash).push(callback);
}

// ---- The pad ---------------------------------------------------------------------------------
const HTML = `
<div class="pad" hidden>
  <div class="main">
    <div class="map" role="application" tabindex="0"
         aria-label="Latent map: drag to decode a point; arrow keys move it">
      <canvas class="base"></canvas><canvas class="overlay"></canvas>
    </div>
    <div class="side">
      <canvas class="digit" width="28" height="28" role="img" aria-label="Decoded picture"></canvas>
      <div class="coords"></div>
      <div class="classes" hidden><div class="label">Draw as</div><div class="buttons"></div></div>
    </div>
  </div>
  <div class="legend"></div>
  <div class="row" hidden>
    <div class="label">The same style in every class (tap one to draw it)</div>
    <canvas class="ten" width="280" height="28" role="img" aria-label="Ten classes"></canvas>
  </div>
</div>
<div class="note" hidden></div>`;

function supported() {
  return typeof Float32Array === "function" && typeof TextDecoder === "function"
    && typeof requestAnimationFrame === "function" && typeof PointerEvent === "function"
    && !!document.createElement("canvas").getContext;
}

function niceStep(range) {
  const raw = range / 5, power = 10 ** Math.floor(Math.log10(raw)), f = raw / power;
  return power * (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10);
}

function formatNumber(v) {
  return (Math.abs(v) < 5e-3 ? 0 : v).toFixed(2).replace("-", "\u2212");
}

class Pad {
  constructor(root) {
    this.root = root;
    root.innerHTML = HTML;
    const $ = (s) => root.querySelector(s);
    Object.assign(this, {
      pad: $(".pad"), note: $(".note"), mapBox: $(".map"), base: $(".base"),
      overlay: $(".overlay"), digitCanvas: $(".digit"), coords: $(".coords"),
      classBox: $(".classes"), buttons: $(".buttons"), legend: $(".legend"), rowBox: $(".row"),
      rowCanvas: $(".ten"),
    });
    this.digitCtx = this.digitCanvas.getContext("2d");
    this.rowCtx = this.rowCanvas.getContext("2d");
    this.digitImage = this.digitCtx.createImageData(SIDE, SIDE);
    this.rowImage = this.rowCtx.createImageData(SIDE * BATCH, SIDE);
    this.model = null;
    this.data = null;
    this.x = 0;
    this.y = 0;
    this.digit = 0;
    this.pointerId = null;
    this.frameQueued = false;
    this.times = new Float64Array(256); // recent frame durations (ms), for benchmarks
    this.frames = 0;
    this.frame = this.frame.bind(this);
    this.listen();
    PADS.add(this);
  }

  listen() {
    const on = (target, type, handler, options) => {
      target.addEventListener(type, handler, options);
      this.unlisten = [...(this.unlisten || []), () => target.removeEventListener(type, handler)];
    };
    const o = this.overlay;
    on(o, "pointerdown", (e) => this.down(e));
    on(o, "pointermove", (e) => this.move(e));
    on(o, "pointerup", (e) => this.up(e));
    on(o, "pointercancel", (e) => this.up(e));
    on(o, "lostpointercapture", (e) => this.up(e));
    on(this.mapBox, "keydown", (e) => this.key(e));
    on(this.mapBox, "keyup", (e) => this.keyUp(e));
    on(this.buttons, "click", (e) => {
      const button = e.target.closest("button");
      if (button) this.pick(Number(button.dataset.digit));
    });
    on(this.rowCanvas, "click", (e) => {
      const box = this.rowCanvas.getBoundingClientRect();
      this.pick(Math.min(BATCH - 1, Math.floor((e.clientX - box.left) / box.width * BATCH)));
    });
    if (typeof ResizeObserver === "function") {
      this.resizer = new ResizeObserver(() => this.drawMap());
      this.resizer.observe(this.mapBox);
    }
  }

  destroy() {
    for (const undo of this.unlisten || []) undo();
    if (this.resizer) this.resizer.disconnect();
    PADS.delete(this);
  }

  show(message) {
    this.note.textContent = message;
    this.note.hidden = !message;
    this.pad.hidden = !!message;
  }

  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    const previous = this.data || {};
    this.data = data;
    // Python's point and class apply when they change, so a stale value never undoes a drag.
    if (data.point && String(data.point) !== String(previous.point) && this.pointerId === null) {
      [this.x, this.y] = this.clamp(data.point[0], data.point[1]);
    }
    if (Number.isInteger(data.digit) && data.digit !== previous.digit) this.digit = data.digit;
    if (!this.model || this.model.hash !== data.model) {
      this.model = null;
      this.show("Loading the decoder\u2026");
      const hash = data.model;
      clearTimeout(this.timeout);
      this.timeout = setTimeout(() => { if (!this.model) this.show(NOT_LOADED); }, 30000);
      whenModel(hash, (model) => {
        if (!this.data || this.data.model !== hash) return;
        clearTimeout(this.timeout);
        if (model.error) return this.show(FALLBACK);
        this.model = model;
        this.render();
      });
      return;
    }
    this.render();
  }

  render() {
    const { model, data } = this;
    this.show("");
    this.root.dataset.module = MODULE_TOKEN;
    this.root.dataset.role = "pad";
    [this.x, this.y] = this.clamp(this.x, this.y);
    this.classBox.hidden = this.rowBox.hidden = !model.conditional;
    this.buildButtons(data.names || []);
    this.buildLegend(data.names || []);
    this.drawMap();
    this.redraw();
  }

  buildButtons(names) {
    const key = JSON.stringify(names);
    if (this.buttonsKey !== key) {
      this.buttonsKey = key;
      this.buttons.replaceChildren(...names.slice(0, BATCH).map((name, d) => {
        const b = document.createElement("button");
        b.type = "button";
        b.dataset.digit = d;
        b.title = name;
        b.textContent = name;
        return b;
      }));
    }
    for (const b of this.buttons.children) {
      b.setAttribute("aria-pressed", Number(b.dataset.digit) === this.digit ? "true" : "false");
    }
  }

  buildLegend(names) {
    const key = JSON.stringify(names);
    if (this.legendKey === key) return;
    this.legendKey = key;
    this.legend.replaceChildren(...names.map((name, c) => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = PALETTE[c % PALETTE.length];
      item.append(swatch, name);
      return item;
    }));
  }

  clamp(x, y) {
    const lim = this.data.lim;
    const c = (v) => Math.min(lim, Math.max(-lim, Number.isFinite(v) ? v : 0));
    return [c(x), c(y)];
  }

  // Plot geometry in CSS pixels: a square [-lim, lim]^2 inside margins for ticks and titles.
  layout() {
    const size = this.mapBox.clientWidth;
    const left = 46, top = 8, side = Math.max(10, size - left - 8);
    return { size, left, top, side };
  }

  toPlane(e) {
    const { left, top, side } = this.geom, lim = this.data.lim, box = this.box;
    const x = -lim + (e.clientX - box.left - left) / side * 2 * lim;
    const y = lim - (e.clientY - box.top - top) / side * 2 * lim;
    return this.clamp(x, y);
  }

  drawMap() {
    if (!this.model) return;
    const g = this.layout();
    if (!g.size) return;
    this.geom = g;
    const ratio = window.devicePixelRatio || 1;
    for (const c of [this.base, this.overlay]) {
      c.width = Math.round(g.size * ratio);
      c.height = Math.round(g.size * ratio);
    }
    const ctx = this.base.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const style = getComputedStyle(this.mapBox);
    const ink = this.ink = style.color || "#333";
    const lim = this.data.lim, { left, top, side } = g;
    const px = (x) => left + (x + lim) / (2 * lim) * side;
    const py = (y) => top + (lim - y) / (2 * lim) * side;
    ctx.clearRect(0, 0, g.size, g.size);
    ctx.font = `11px ${style.fontFamily || "sans-serif"}`;
    ctx.fillStyle = ink;
    ctx.strokeStyle = ink;
    const step = niceStep(2 * lim);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil(-lim / step) * step; t <= lim + 1e-9; t += step) {
      ctx.globalAlpha = Math.abs(t) < 1e-9 ? 0.35 : 0.12;
      ctx.beginPath();
      ctx.moveTo(px(t), top);
      ctx.lineTo(px(t), top + side);
      ctx.moveTo(left, py(t));
      ctx.lineTo(left + side, py(t));
      ctx.stroke();
      ctx.globalAlpha = 0.8;
      ctx.fillText(formatNumber(t).replace(/\.?0+$/, "") || "0", px(t), top + side + 4);
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(formatNumber(t).replace(/\.?0+$/, "") || "0", left - 4, py(t));
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
    }
    ctx.globalAlpha = 0.5;
    ctx.strokeRect(left, top, side, side);
    const [titleX, titleY] = this.data.titles || ["", ""];
    ctx.globalAlpha = 1;
    ctx.font = `12px ${style.fontFamily || "sans-serif"}`;
    ctx.fillText(titleX, left + side / 2, top + side + 20);
    ctx.save();
    ctx.translate(10, top + side / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(titleY, 0, 0);
    ctx.restore();
    const m = this.model.map;
    if (m) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, side, side);
      ctx.clip();
      ctx.globalAlpha = 0.7;
      for (let c = 0; c < PALETTE.length; c++) {
        ctx.fillStyle = PALETTE[c];
        ctx.beginPath();
        for (let i = 0; i < m.n; i++) {
          if (m.labels[i] % PALETTE.length !== c) continue;
          const x = px(m.points[2 * i]), y = py(m.points[2 * i + 1]);
          ctx.moveTo(x + 2.2, y);
          ctx.arc(x, y, 2.2, 0, 2 * Math.PI);
        }
        ctx.fill();
      }
      ctx.restore();
    }
    this.drawMarkers();
  }

  drawMarkers() {
    const g = this.geom;
    if (!g) return;
    const ctx = this.overlay.getContext("2d"), ratio = this.overlay.width / g.size;
    const lim = this.data.lim, { left, top, side } = g;
    const px = (x) => left + (x + lim) / (2 * lim) * side;
    const py = (y) => top + (lim - y) / (2 * lim) * side;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, g.size, g.size);
    const star = this.data.star;
    if (star && Math.abs(star[0]) <= lim && Math.abs(star[1]) <= lim) {
      const x = px(star[0]), y = py(star[1]);
      ctx.beginPath();
      for (let k = 0; k < 10; k++) {
        const r = k % 2 ? 4 : 10, a = -Math.PI / 2 + k * Math.PI / 5;
        ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
      }
      ctx.closePath();
      ctx.fillStyle = "#FFD400";
      ctx.strokeStyle = "#222";
      ctx.lineWidth = 1.5;
      ctx.fill();
      ctx.stroke();
    }
    const x = px(this.x), y = py(this.y);
    ctx.strokeStyle = this.ink;
    ctx.globalAlpha = 0.35;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + side);
    ctx.moveTo(left, y);
    ctx.lineTo(left + side, y);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, 2 * Math.PI);
    ctx.lineWidth = 4;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#111";
    ctx.stroke();
  }

  // Decode the current point and draw the picture (and the ten-class row), all in the page.
  redraw() {
    const model = this.model;
    if (!model) return;
    const start = performance.now();
    if (model.conditional) {
      const pixels = decodeClassRow(model, this.x, this.y, this.data.shift);
      paint(this.rowImage, pixels, 0, BATCH);
      this.rowCtx.putImageData(this.rowImage, 0, 0);
      paint(this.digitImage, pixels, this.digit * PIXELS, 1);
    } else {
      paint(this.digitImage, decodePoint(model, this.x, this.y, 0, this.data.shift), 0, 1);
    }
    this.digitCtx.putImageData(this.digitImage, 0, 0);
    this.times[this.frames++ % this.times.length] = performance.now() - start;
    this.coords.textContent = `(${formatNumber(this.x)}, ${formatNumber(this.y)})`;
    this.drawMarkers();
  }

  frame() {
    this.frameQueued = false;
    this.redraw();
  }

  queue() {
    if (!this.frameQueued) {
      this.frameQueued = true;
      requestAnimationFrame(this.frame);
    }
  }

  down(e) {
    if (!this.model || this.pointerId !== null || !e.isPrimary) return;
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    this.overlay.setPointerCapture(e.pointerId);
    this.pointerId = e.pointerId;
    this.box = this.overlay.getBoundingClientRect();
    this.geom = this.layout();
    [this.x, this.y] = this.toPlane(e);
    this.queue();
  }

  move(e) {
    if (e.pointerId !== this.pointerId) return;
    e.preventDefault();
    [this.x, this.y] = this.toPlane(e);
    this.queue(); // many moves per frame coalesce into one decode
  }

  up(e) {
    if (e.pointerId !== this.pointerId) return;
    if (e.type === "pointerup") [this.x, this.y] = this.toPlane(e);
    this.pointerId = null;
    this.redraw();
    this.commit();
  }

  key(e) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (!this.model || !moves[e.key]) return;
    e.preventDefault();
    const step = this.data.lim / (e.shiftKey ? 10 : 50);
    [this.x, this.y] = this.clamp(this.x + moves[e.key][0] * step, this.y + moves[e.key][1] * step);
    this.queue();
  }

  keyUp(e) {
    if (this.model && e.key.startsWith("Arrow")) this.commit();
  }

  pick(digit) {
    if (!this.model || !this.model.conditional || !(digit >= 0 && digit < BATCH)) return;
    this.digit = digit;
    this.buildButtons(this.data.names || []);
    this.redraw();
    this.setStateValue("digit", digit);
  }

  commit() {
    const round = (v) => Math.round(v * 1e4) / 1e4;
    this.setStateValue("point", [round(this.x), round(this.y)]);
  }
}

// Pixel probabilities pixels[from:] of `count` pictures -> grey RGBA, side by side.
function paint(image, pixels, from, count) {
  const out = image.data, width = SIDE * count;
  for (let k = 0; k < count; k++) {
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        const v = pixels[from + k * PIXELS + r * SIDE + c];
        const g = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
        const o = 4 * (r * width + k * SIDE + c);
        out[o] = out[o + 1] = out[o + 2] = g;
        out[o + 3] = 255;
      }
    }
  }
}

// ---- Test hook --------------------------------------------------------------------------------
globalThis.vaeLabDecoder = {
  moduleToken: MODULE_TOKEN,
  models: () => [...MODELS.keys()].filter((h) => !MODELS.get(h).error),
  // Decoder inputs (n rows of input_dim, flat) -> n * 784 pixel probabilities.
  decode(hash, z, n) {
    const model = MODELS.get(hash), out = new Float32Array(n * PIXELS);
    const rows = Float32Array.from(z);
    for (let s = 0; s < n; s += BATCH) {
      const k = Math.min(BATCH, n - s);
      out.set(decodeBatch(model, rows, k, s * model.inputDim).subarray(0, k * PIXELS), s * PIXELS);
    }
    return out;
  },
  decodePoint: (hash, x, y, digit) => Float32Array.from(
    decodePoint(MODELS.get(hash), x, y, digit || 0).subarray(0, PIXELS)),
  decodeClassRow: (hash, x, y) => Float32Array.from(
    decodeClassRow(MODELS.get(hash), x, y).subarray(0, BATCH * PIXELS)),
  pads: () => [...PADS].map((p) => ({
    model: p.model && p.model.hash, x: p.x, y: p.y, digit: p.digit, frames: p.frames,
    times: Array.from(p.times.subarray(0, Math.min(p.frames, p.times.length))),
  })),
};

// ---- Entry point ------------------------------------------------------------------------------
const INSTANCES = new WeakMap(); // parentElement -> Pad (the DOM is reused across data updates)

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".vae-latent-pad");
  try {
    if (data instanceof Uint8Array) { // the model instance: parse once, show nothing
      root.dataset.module = MODULE_TOKEN;
      root.dataset.role = "model";
      registerModel(data);
      return undefined;
    }
    let pad = INSTANCES.get(parentElement);
    if (!pad) {
      if (!supported()) throw new Error("unsupported browser");
      pad = new Pad(root);
      INSTANCES.set(parentElement, pad);
    }
    pad.update(data || {}, setStateValue);
    return () => {
      pad.destroy();
      INSTANCES.delete(parentElement);
    };
  } catch (error) {
    console.error("latent pad:", error);
    if (root) {
      root.textContent = "";
      const note = document.createElement("div");
      note.className = "note";
      note.textContent = FALLBACK;
      root.append(note);
    }
    return undefined;
  }
}
